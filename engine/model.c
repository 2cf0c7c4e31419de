/* model.c: llama-family models (llama, qwen2, gemma3) from GGUF: loading, the KV-cache
 * context, and the forward pass.
 *
 * Everything about the architecture comes from GGUF metadata; the tensors are checked
 * against the shapes that metadata implies before any is used. The forward pass is plain C
 * calling backend ops in order, like llama2.c's forward(), so every backend runs the same
 * model code. */
#include "mlc/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "mlc/gguf.h"
#include "mlc/quant.h"
#include "mlc/sampler.h"
#include "mlc/tokenizer.h"

/* A weight matrix [n_out rows, n_in values]: its file type and shape, and its tensor on the
 * device (which the backend may have repacked). */
typedef struct weight {
    uint32_t type;
    int64_t n_in, n_out;
    mlc_tensor t; /* t.buf NULL: not loaded */
} weight;

typedef struct layer {
    mlc_tensor attn_norm, ffn_norm; /* [n_embd] f32, device */
    mlc_tensor bq, bk, bv;          /* qwen2 QKV biases; buf NULL when absent */
    mlc_tensor q_norm, k_norm;      /* gemma3 per-head norms [head_dim]; buf NULL when absent */
    mlc_tensor post_attn_norm, post_ffn_norm; /* gemma3 [n_embd]; buf NULL when absent */
    weight wq, wk, wv, wo;
    weight w_gate, w_up, w_down;
    bool swa;                       /* sliding-window (local) attention */
    float rope_base;                /* the global or the local base */
} layer;

typedef enum arch_kind { ARCH_LLAMA, ARCH_QWEN2, ARCH_GEMMA3 } arch_kind;

struct mlc_model {
    mlc_gguf *g;
    mlc_backend be;
    mlc_tokenizer *tok;
    mlc_model_info info;
    arch_kind kind;
    bool neox;              /* NeoX-style RoPE (qwen2, gemma3) */
    float embd_scale;       /* embeddings are multiplied by it (gemma3: sqrt(n_embd)); 0: not */
    float attn_scale;       /* on q.k */
    weight tok_embd;        /* [n_vocab, n_embd]; get_rows reads it */
    weight output;          /* [n_vocab, n_embd]; token_embd when tied */
    mlc_tensor output_norm;
    mlc_tensor rope_freqs;  /* llama [n_rot/2] f32 frequency factors; buf NULL when absent */
    layer *layers;
    mlc_buffer **f32_bufs;  /* device copies of 1-D tensors, released with the model */
    int n_f32_bufs;
    char arch[16], name[128], type_desc[256], backend_desc[256];
};

/* ---------------------------------------------------------------- hyper-parameters */

static mlc_status hp_int(const mlc_gguf *g, const char *arch, const char *suffix, int dflt,
                         int *out, mlc_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    mlc_status s = mlc_gguf_get_u32(g, key, &v, err);
    if (s == MLC_ERR_NOT_FOUND && dflt >= 0) {
        *out = dflt;
        return MLC_OK;
    }
    if (s)
        return s;
    if (v == 0 || v > (1u << 30))
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: key '%s': %u is out of range",
                           mlc_gguf_path(g), key, v);
    *out = (int)v;
    return MLC_OK;
}

static mlc_status hp_float(const mlc_gguf *g, const char *arch, const char *suffix,
                           float dflt, float *out, mlc_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    mlc_status s = mlc_gguf_get_f32(g, key, out, err);
    if (s == MLC_ERR_NOT_FOUND && dflt >= 0) {
        *out = dflt;
        return MLC_OK;
    }
    if (!s && !(*out > 0))
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: key '%s': %g must be positive",
                           mlc_gguf_path(g), key, (double)*out);
    return s;
}

/* Keys of features the forward pass does not implement: a file that sets one is refused,
 * naming it, rather than run wrong. */
static mlc_status refuse_unsupported(const mlc_model *m, mlc_err *err)
{
    static const char *const sfx[] = {"attention.logit_softcapping", "final_logit_softcapping",
                                      "rope.scaling.factor", "rope.scaling.type",
                                      "rope.scale_linear", "rope.scaling.attn_factor"};
    char key[128];
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", m->arch, sfx[i]);
        const mlc_gguf_value *v = mlc_gguf_get(m->g, key);
        float f;
        mlc_gguf_str str;
        if (!v || (mlc_gguf_get_f32(m->g, key, &f, NULL) == MLC_OK && (f == 0 || f == 1)) ||
            (mlc_gguf_get_str(m->g, key, &str, NULL) == MLC_OK && str.len == 4 && !memcmp(str.ptr, "none", 4)))
            continue; /* absent, or a value that changes nothing */
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: key '%s': not supported yet",
                           mlc_gguf_path(m->g), key);
    }
    if (m->kind != ARCH_LLAMA && mlc_gguf_find_tensor(m->g, "rope_freqs.weight"))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: tensor 'rope_freqs.weight': RoPE frequency factors are supported for llama only",
                           mlc_gguf_path(m->g));
    return MLC_OK;
}

/* gemma3: local (sliding-window) layers with their own RoPE base, and the attention scale.
 * As llama.cpp reads these files: five of every six layers are local (il % 6 < 5) unless
 * {arch}.attention.sliding_window_pattern gives another period; the local base is 10000
 * unless {arch}.rope.freq_base_swa says otherwise; q.k is scaled by 1/sqrt(head_dim), except
 * in the 62-layer 27B, whose query_pre_attn_scalar is n_embd / n_head. */
static mlc_status gemma3_hparams(mlc_model *m, mlc_err *err)
{
    mlc_model_info *in = &m->info;
    const char *ar = m->arch;
    int period, v_len;
    mlc_status s;
    if ((s = hp_int(m->g, ar, "attention.sliding_window", -1, &in->n_swa, err)) ||
        (s = hp_int(m->g, ar, "attention.sliding_window_pattern", 6, &period, err)) ||
        (s = hp_int(m->g, ar, "attention.value_length", in->head_dim, &v_len, err)) ||
        (s = hp_float(m->g, ar, "rope.freq_base_swa", 10000.0f, &in->rope_base_swa, err)))
        return s;
    if (v_len != in->head_dim)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: key '%s.attention.value_length': %d differs from the key length %d (not supported)",
                           mlc_gguf_path(m->g), ar, v_len, in->head_dim);
    in->swa_period = period;
    m->neox = true;
    m->embd_scale = sqrtf((float)in->n_embd);
    m->attn_scale = 1.0f / sqrtf(in->n_layer == 62 ? (float)(in->n_embd / in->n_head) : (float)in->head_dim);
    return MLC_OK;
}

static mlc_status read_hparams(mlc_model *m, mlc_err *err)
{
    const mlc_gguf *g = m->g;
    mlc_gguf_str a;
    mlc_model_info *in = &m->info;
    mlc_status s = mlc_gguf_get_str(g, "general.architecture", &a, err);
    if (s)
        return s;
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(a.len < 15 ? a.len : 15), a.ptr);
    static const char *const names[] = {"llama", "qwen2", "gemma3"};
    size_t k = 0;
    while (k < 3 && (strcmp(m->arch, names[k]) || a.len != strlen(names[k])))
        k++;
    if (k == 3)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: key 'general.architecture': architecture '%.*s' is not supported (llama, qwen2, gemma3 are)",
                           mlc_gguf_path(g), (int)(a.len > 64 ? 64 : a.len), a.ptr);
    m->kind = (arch_kind)k;
    m->neox = m->kind == ARCH_QWEN2;
    const char *ar = m->arch;
    if ((s = hp_int(g, ar, "embedding_length", -1, &in->n_embd, err)) ||
        (s = hp_int(g, ar, "block_count", -1, &in->n_layer, err)) ||
        (s = hp_int(g, ar, "feed_forward_length", -1, &in->n_ff, err)) ||
        (s = hp_int(g, ar, "attention.head_count", -1, &in->n_head, err)) ||
        (s = hp_int(g, ar, "attention.head_count_kv", in->n_head, &in->n_head_kv, err)) ||
        (s = hp_int(g, ar, "context_length", 2048, &in->n_ctx_train, err)) ||
        (s = hp_int(g, ar, "attention.key_length", in->n_embd / in->n_head, &in->head_dim, err)) ||
        (s = hp_int(g, ar, "rope.dimension_count", in->head_dim, &in->n_rot, err)) ||
        (s = hp_float(g, ar, "attention.layer_norm_rms_epsilon", 1e-5f, &in->rms_eps, err)) ||
        (s = hp_float(g, ar, "rope.freq_base", 10000.0f, &in->rope_base, err)))
        return s;
    if (in->n_head % in->n_head_kv || in->n_rot > in->head_dim || in->n_rot % 2)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: %s: heads %d / kv heads %d / head dim %d / rope dims %d are not supported",
                           mlc_gguf_path(g), ar, in->n_head, in->n_head_kv, in->head_dim, in->n_rot);
    m->attn_scale = 1.0f / sqrtf((float)in->head_dim);
    in->rope_base_swa = in->rope_base;
    if (m->kind == ARCH_GEMMA3 && (s = gemma3_hparams(m, err)))
        return s;
    return refuse_unsupported(m, err);
}

/* ---------------------------------------------------------------- tensors */

/* Finds a tensor and checks its shape [ne0, ne1] (ne1 = 0: a vector). */
static mlc_status find_tensor(mlc_model *m, const char *name, int64_t ne0, int64_t ne1,
                              bool optional, const mlc_gguf_tensor **out, mlc_err *err)
{
    *out = mlc_gguf_find_tensor(m->g, name);
    if (!*out) {
        if (optional)
            return MLC_OK;
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: tensor '%s': missing", mlc_gguf_path(m->g), name);
    }
    const mlc_gguf_tensor *t = *out;
    bool ok = ne1 ? (t->n_dims == 2 && t->ne[0] == ne0 && t->ne[1] == ne1)
                  : (t->n_dims == 1 && t->ne[0] == ne0);
    if (!ok)
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: tensor '%s': shape [%" PRId64 ", %" PRId64 "], expected [%" PRId64 ", %" PRId64 "]",
                           mlc_gguf_path(m->g), name, t->ne[0], t->n_dims > 1 ? t->ne[1] : 0, ne0, ne1);
    return MLC_OK;
}

/* Refuses a model whose forward pass needs an op the device declines, naming the op, the
 * type and the shape (and what needs it): nothing runs half on another device. */
static mlc_status need(const mlc_model *m, mlc_op op, uint32_t type, int64_t s0, int64_t s1,
                       int64_t s2, int64_t s3, const char *what, mlc_err *err)
{
    const int64_t shape[4] = {s0, s1, s2, s3};
    if (m->be.vt->supports(m->be.ctx, op, type, shape))
        return MLC_OK;
    char dims[96];
    int k = snprintf(dims, sizeof dims, "%" PRId64, s0);
    for (int i = 1; i < 4 && shape[i]; i++)
        k += snprintf(dims + k, sizeof dims - (size_t)k, ", %" PRId64, shape[i]);
    return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                       "%s: %s: backend '%s' does not support op %s with type %s, shape [%s]",
                       mlc_gguf_path(m->g), what, m->be.vt->name, mlc_op_name(op),
                       mlc_tensor_type_name(type), dims);
}

#define USE(op) (1u << MLC_OP_##op)

/* A matrix for the ops in the mask uses (USE(MATMUL), USE(GET_ROWS)). */
static mlc_status load_matrix(mlc_model *m, const char *name, int64_t n_in, int64_t n_out,
                              unsigned uses, weight *w, mlc_err *err)
{
    const mlc_gguf_tensor *t;
    char what[96];
    snprintf(what, sizeof what, "tensor '%s'", name);
    mlc_status s = find_tensor(m, name, n_in, n_out, false, &t, err);
    if (s || ((uses & USE(MATMUL)) && (s = need(m, MLC_OP_MATMUL, t->type, n_in, n_out, 0, 0, what, err))) ||
        ((uses & USE(GET_ROWS)) && (s = need(m, MLC_OP_GET_ROWS, t->type, n_in, n_out, 0, 0, what, err))))
        return s;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    mlc_err e = {0};
    if ((s = m->be.vt->weights(m->be.ctx, t->data, t->type, n_in, n_out, &w->t, &e)))
        return mlc_err_set(err, s, "%s: tensor '%s': cannot place %" PRIu64 " bytes on the device: %s",
                           mlc_gguf_path(m->g), name, t->nbytes, e.msg);
    return MLC_OK;
}

/* 1-D tensors (norms, biases) become f32 device buffers whatever their file type. */
static mlc_status load_vector(mlc_model *m, const char *name, int64_t n, bool optional,
                              mlc_tensor *out, mlc_err *err)
{
    const mlc_gguf_tensor *t;
    *out = (mlc_tensor){0};
    mlc_status s = find_tensor(m, name, n, 0, optional, &t, err);
    if (s || !t)
        return s;
    if (!mlc_type_supported(t->type)) /* converted to f32 here, on the host */
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: tensor '%s': type %s is not supported",
                           mlc_gguf_path(m->g), name, mlc_tensor_type_name(t->type));
    float *host = malloc((size_t)n * sizeof *host);
    mlc_buffer *dev = NULL;
    mlc_buffer **list = realloc(m->f32_bufs, (size_t)(m->n_f32_bufs + 1) * sizeof *list);
    if (list)
        m->f32_bufs = list;
    if (!host || !list || m->be.vt->buffer_alloc(m->be.ctx, (size_t)n * sizeof(float), &dev, NULL)) {
        free(host);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tensor '%s': out of memory", mlc_gguf_path(m->g), name);
    }
    m->f32_bufs[m->n_f32_bufs++] = dev;
    mlc_dequantize_row((mlc_type)t->type, t->data, host, n);
    s = m->be.vt->upload(m->be.ctx, dev, 0, host, (size_t)n * sizeof(float));
    free(host);
    mlc_err e = {0};
    const mlc_status synced = m->be.vt->sync(m->be.ctx, &e); /* the message of a failed upload */
    if (s || synced)
        return mlc_err_set(err, s ? s : synced, "%s: tensor '%s': upload: %s", mlc_gguf_path(m->g), name, e.msg);
    *out = mlc_tensor_make(dev, 0, MLC_TYPE_F32, n, 1, 1);
    return MLC_OK;
}

/* Llama 3.1-style RoPE scaling. Its GGUFs carry no rope.scaling.* key: the converter turns
 * rope_scaling {rope_type llama3, factor, low/high_freq_factor, original context} into
 * rope_freqs.weight [n_rot/2] F32, and pair i's angle is divided by factor i (as llama.cpp and
 * ggml's rope read it). Factors must be finite and positive: 0 would make every angle inf. */
static mlc_status load_rope_freqs(mlc_model *m, mlc_err *err)
{
    static const char name[] = "rope_freqs.weight";
    const int64_t half = m->info.n_rot / 2;
    const mlc_gguf_tensor *t;
    mlc_status s = find_tensor(m, name, half, 0, true, &t, err);
    if (s || !t)
        return s;
    if (t->type != MLC_TYPE_F32)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: tensor '%s': type %s, expected F32",
                           mlc_gguf_path(m->g), name, mlc_tensor_type_name(t->type));
    for (int64_t i = 0; i < half; i++) {
        float f;
        memcpy(&f, (const char *)t->data + i * (int64_t)sizeof f, sizeof f);
        if (!(f > 0) || !isfinite(f))
            return mlc_err_set(err, MLC_ERR_FORMAT, "%s: tensor '%s': factor %" PRId64 " is %g, not a positive number",
                               mlc_gguf_path(m->g), name, i, (double)f);
    }
    return load_vector(m, name, half, false, &m->rope_freqs, err);
}

static mlc_status load_layer(mlc_model *m, int il, mlc_err *err)
{
    const mlc_model_info *in = &m->info;
    layer *L = &m->layers[il];
    int64_t e = in->n_embd, hd = in->head_dim, qd = (int64_t)in->n_head * hd,
            kvd = (int64_t)in->n_head_kv * hd, ff = in->n_ff;
    char n[16][64];
    static const char *sfx[] = {"attn_norm.weight", "ffn_norm.weight", "attn_q.weight",
                                "attn_k.weight", "attn_v.weight", "attn_output.weight",
                                "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
                                "attn_q.bias", "attn_k.bias", "attn_v.bias",
                                "attn_q_norm.weight", "attn_k_norm.weight",
                                "post_attention_norm.weight", "post_ffw_norm.weight"};
    for (int i = 0; i < 16; i++)
        snprintf(n[i], sizeof n[i], "blk.%d.%s", il, sfx[i]);
    mlc_status s;
    bool bias = m->kind == ARCH_QWEN2, gemma = m->kind == ARCH_GEMMA3;
    if ((s = load_vector(m, n[0], e, false, &L->attn_norm, err)) ||
        (s = load_vector(m, n[1], e, false, &L->ffn_norm, err)) ||
        (s = load_matrix(m, n[2], e, qd, USE(MATMUL), &L->wq, err)) ||
        (s = load_matrix(m, n[3], e, kvd, USE(MATMUL), &L->wk, err)) ||
        (s = load_matrix(m, n[4], e, kvd, USE(MATMUL), &L->wv, err)) ||
        (s = load_matrix(m, n[5], qd, e, USE(MATMUL), &L->wo, err)) ||
        (s = load_matrix(m, n[6], e, ff, USE(MATMUL), &L->w_gate, err)) ||
        (s = load_matrix(m, n[7], e, ff, USE(MATMUL), &L->w_up, err)) ||
        (s = load_matrix(m, n[8], ff, e, USE(MATMUL), &L->w_down, err)) ||
        (s = load_vector(m, n[9], qd, !bias, &L->bq, err)) ||
        (s = load_vector(m, n[10], kvd, !bias, &L->bk, err)) ||
        (s = load_vector(m, n[11], kvd, !bias, &L->bv, err)) ||
        (s = load_vector(m, n[12], hd, !gemma, &L->q_norm, err)) ||
        (s = load_vector(m, n[13], hd, !gemma, &L->k_norm, err)) ||
        (s = load_vector(m, n[14], e, !gemma, &L->post_attn_norm, err)) ||
        (s = load_vector(m, n[15], e, !gemma, &L->post_ffn_norm, err)))
        return s;
    L->swa = in->n_swa > 0 && il % in->swa_period < in->swa_period - 1;
    L->rope_base = L->swa ? in->rope_base_swa : in->rope_base;
    return MLC_OK;
}

static uint64_t matrix_bytes(const weight *w)
{
    return (uint64_t)mlc_type_row_bytes(w->type, w->n_in) * (uint64_t)w->n_out;
}

/* llama.cpp's names for general.file_type; without the key, the type of token_embd. */
static const char *ftype_name(const mlc_model *m)
{
    static const struct {
        uint32_t id;
        const char *name;
    } names[] = {{0, "F32"},           {1, "F16"},           {2, "Q4_0"},           {3, "Q4_1"},
                 {7, "Q8_0"},          {8, "Q5_0"},          {9, "Q5_1"},           {10, "Q2_K - Medium"},
                 {11, "Q3_K - Small"}, {12, "Q3_K - Medium"}, {13, "Q3_K - Large"}, {14, "Q4_K - Small"},
                 {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"}, {18, "Q6_K"},
                 {21, "Q2_K - Small"}, {25, "IQ4_NL - 4.5 bpw"}, {30, "IQ4_XS - 4.25 bpw"}, {32, "BF16"}};
    uint32_t ft;
    if (mlc_gguf_get_u32(m->g, "general.file_type", &ft, NULL) == MLC_OK)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].id == ft)
                return names[i].name;
    return mlc_type_name(m->tok_embd.type);
}

static void describe(mlc_model *m)
{
    mlc_model_info *in = &m->info;
    int64_t count[MLC_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < mlc_gguf_n_tensors(m->g); i++) {
        const mlc_gguf_tensor *t = mlc_gguf_tensor_at(m->g, i);
        count[t->type]++;
        in->n_params += t->n_elements;
        in->weight_bytes += t->nbytes;
    }
    size_t n = 0;
    m->type_desc[0] = 0;
    for (int t = 0; t < MLC_TYPE_COUNT; t++)
        if (count[t] && n < sizeof m->type_desc)
            n += (size_t)snprintf(m->type_desc + n, sizeof m->type_desc - n, "%s%s (%" PRId64 ")",
                                  n ? ", " : "", mlc_type_name((uint32_t)t), count[t]);
    uint64_t b = matrix_bytes(&m->output);
    for (int l = 0; l < in->n_layer; l++) {
        const layer *L = &m->layers[l];
        b += matrix_bytes(&L->wq) + matrix_bytes(&L->wk) + matrix_bytes(&L->wv) +
             matrix_bytes(&L->wo) + matrix_bytes(&L->w_gate) + matrix_bytes(&L->w_up) +
             matrix_bytes(&L->w_down);
    }
    in->matmul_bytes_per_token = b;
    in->ftype = ftype_name(m);
    char bd[200];
    m->be.vt->describe(m->be.ctx, bd, sizeof bd);
    snprintf(m->backend_desc, sizeof m->backend_desc, "%s: %s", m->be.vt->name, bd);
    in->type_desc = m->type_desc;
    in->backend_desc = m->backend_desc;
}

static mlc_status load_weights(mlc_model *m, mlc_err *err)
{
    mlc_model_info *in = &m->info;
    const mlc_gguf_tensor *emb = mlc_gguf_find_tensor(m->g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: tensor 'token_embd.weight': missing or not 2-D",
                           mlc_gguf_path(m->g));
    in->n_vocab = (int)emb->ne[1];
    if (in->n_vocab != mlc_tokenizer_n_vocab(m->tok))
        return mlc_err_set(err, MLC_ERR_FORMAT,
                           "%s: tensor 'token_embd.weight': %d rows but the tokenizer has %d tokens",
                           mlc_gguf_path(m->g), in->n_vocab, mlc_tokenizer_n_vocab(m->tok));
    mlc_status s;
    const bool tied = !mlc_gguf_find_tensor(m->g, "output.weight");
    if ((s = load_matrix(m, "token_embd.weight", in->n_embd, in->n_vocab,
                         USE(GET_ROWS) | (tied ? USE(MATMUL) : 0), &m->tok_embd, err)) ||
        (s = load_vector(m, "output_norm.weight", in->n_embd, false, &m->output_norm, err)))
        return s;
    if ((s = load_rope_freqs(m, err)))
        return s;
    m->output = m->tok_embd; /* tied embeddings unless output.weight exists */
    if (!tied && (s = load_matrix(m, "output.weight", in->n_embd, in->n_vocab, USE(MATMUL), &m->output, err)))
        return s;
    if (!(m->layers = calloc((size_t)in->n_layer, sizeof *m->layers)))
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", mlc_gguf_path(m->g));
    for (int l = 0; l < in->n_layer; l++)
        if ((s = load_layer(m, l, err)))
            return s;
    return MLC_OK;
}

/* The activation ops of the forward pass, asked for at their shapes (the matrices were asked
 * as they loaded; the KV cache ops for F16, the default cache, here and again for the cache a
 * context asks for). */
static mlc_status need_ops(const mlc_model *m, mlc_err *err)
{
    const mlc_model_info *in = &m->info;
    const int64_t e = in->n_embd, qd = (int64_t)in->n_head * in->head_dim;
    const uint32_t f = MLC_TYPE_F32;
    const bool gemma = m->kind == ARCH_GEMMA3;
    const int64_t ff = m->rope_freqs.buf != NULL; /* rope's shape[3]: with frequency factors */
    mlc_status s;
    if ((s = need(m, MLC_OP_RMS_NORM, f, e, 0, 0, 0, "norms", err)) ||
        (s = need(m, MLC_OP_ROPE, f, in->head_dim, in->n_head, in->n_rot, ff, "queries", err)) ||
        (s = need(m, MLC_OP_ROPE, f, in->head_dim, in->n_head_kv, in->n_rot, ff, "keys", err)) ||
        (s = need(m, gemma ? MLC_OP_GEGLU : MLC_OP_SWIGLU, f, in->n_ff, 0, 0, 0, "feed-forward", err)) ||
        (gemma && (s = need(m, MLC_OP_RMS_NORM, f, in->head_dim, 0, 0, 0, "per-head norms", err))) ||
        (m->embd_scale > 0 && (s = need(m, MLC_OP_SCALE, f, e, 0, 0, 0, "embedding scale", err))) ||
        (s = need(m, MLC_OP_ADD, f, e, 0, 0, 0, "residuals", err)) ||
        (m->layers[0].bq.buf && (s = need(m, MLC_OP_ADD, f, qd, 0, 0, 0, "QKV biases", err))) ||
        (s = need(m, MLC_OP_GATHER, f, e, 0, 0, 0, "output rows", err)))
        return s;
    return MLC_OK;
}

/* The KV cache ops for a cache of type kv and n_ctx positions. */
static mlc_status need_kv_ops(const mlc_model *m, uint32_t kv, int64_t n_ctx, int64_t n_slots,
                              mlc_err *err)
{
    const mlc_model_info *in = &m->info;
    const int64_t kvd = (int64_t)in->n_head_kv * in->head_dim;
    mlc_status s;
    if ((s = need(m, MLC_OP_KV_STORE, kv, kvd, n_ctx, n_slots, 0, "KV cache", err)) ||
        (s = need(m, MLC_OP_ATTENTION, kv, in->head_dim, in->n_head, in->n_head_kv, n_ctx,
                  "attention", err)))
        return s;
    return MLC_OK;
}

static mlc_status open_backend(mlc_model *m, const mlc_model_params *p, mlc_err *err)
{
    const mlc_backend_params bp = {.device = p->device, .n_threads = p->n_threads, .isa = p->isa};
    if (p->backend_vt)
        return mlc_backend_open_vt(p->backend_vt, &bp, &m->be, err);
    return mlc_backend_open(p->backend ? p->backend : "cpu", &bp, &m->be, err);
}

mlc_status mlc_model_load(const char *path, const mlc_model_params *p, mlc_model **out,
                          mlc_err *err)
{
    *out = NULL;
    mlc_model *m = calloc(1, sizeof *m);
    if (!m)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    mlc_model_params dflt = {0};
    if (!p)
        p = &dflt;
    mlc_status s;
    if ((s = mlc_gguf_open(path, &m->g, err)) || (s = read_hparams(m, err)) ||
        (s = mlc_tokenizer_load(m->g, &m->tok, err)) ||
        (s = open_backend(m, p, err)) || (s = load_weights(m, err)) || (s = need_ops(m, err)) ||
        (s = need_kv_ops(m, MLC_TYPE_F16, m->info.n_ctx_train, 1, err))) {
        mlc_model_free(m);
        return s;
    }
    mlc_gguf_str name;
    if (mlc_gguf_get_str(m->g, "general.name", &name, NULL) == MLC_OK)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len < 127 ? name.len : 127), name.ptr);
    m->info.n_threads = p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->info.path = mlc_gguf_path(m->g);
    m->info.arch = m->arch;
    m->info.name = m->name;
    describe(m);
    *out = m;
    return MLC_OK;
}

void mlc_model_free(mlc_model *m)
{
    if (!m)
        return;
    if (m->be.vt) {
        for (int i = 0; i < m->n_f32_bufs; i++)
            m->be.vt->buffer_free(m->be.ctx, m->f32_bufs[i]);
        if (m->layers) {
            for (int l = 0; l < m->info.n_layer; l++) {
                weight *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv,
                                &m->layers[l].wo, &m->layers[l].w_gate, &m->layers[l].w_up,
                                &m->layers[l].w_down};
                for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                    if (ws[i]->t.buf)
                        m->be.vt->release_weights(m->be.ctx, &ws[i]->t);
            }
        }
        if (m->output.t.buf && m->output.t.buf != m->tok_embd.t.buf)
            m->be.vt->release_weights(m->be.ctx, &m->output.t);
        if (m->tok_embd.t.buf)
            m->be.vt->release_weights(m->be.ctx, &m->tok_embd.t);
        mlc_backend_close(&m->be);
    }
    free(m->f32_bufs);
    free(m->layers);
    mlc_tokenizer_free(m->tok);
    mlc_gguf_close(m->g);
    free(m);
}

const mlc_model_info *mlc_model_get_info(const mlc_model *m)
{
    return &m->info;
}

const mlc_tokenizer *mlc_model_tokenizer(const mlc_model *m)
{
    return m->tok;
}

/* ---------------------------------------------------------------- context */

struct mlc_context {
    mlc_model *m;
    int n_ctx, n_slots, n_batch;
    uint32_t kv_type;               /* MLC_TYPE_F16 or MLC_TYPE_F32 */
    int64_t kv_dim;                 /* n_head_kv * head_dim */
    mlc_attn_params attn, attn_swa; /* global layers; local (sliding-window) layers */
    mlc_buffer **k_cache, **v_cache; /* [n_layer] device buffers of [kv_dim, n_ctx, n_slots] */
    int32_t *slot_len;         /* host: filled positions per slot */
    int32_t *tmp_len;          /* host: slot_len as a batch being checked would leave it */
    /* Device activations, sized for n_batch tokens. */
    mlc_buffer *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits;
    mlc_buffer *d_tokens, *d_pos, *d_slot, *d_rows, *d_argmax; /* I32 */
    /* Host copies. */
    float *h_logits;   /* [n_batch, n_vocab] */
    int32_t *h_rows;   /* [n_batch] indices of tokens that want logits */
    int32_t *h_argmax; /* [n_batch] greedy picks of the wanted rows (greedy decodes) */
    int n_out;
    bool greedy;       /* the last decode was greedy: h_argmax holds its picks */
};

int mlc_context_n_ctx(const mlc_context *c) { return c->n_ctx; }
int mlc_context_n_slots(const mlc_context *c) { return c->n_slots; }
int mlc_context_n_batch(const mlc_context *c) { return c->n_batch; }
int mlc_context_n_vocab(const mlc_context *c) { return c->m->info.n_vocab; }
mlc_model *mlc_context_model(const mlc_context *c) { return c->m; }

void mlc_context_free(mlc_context *c)
{
    if (!c)
        return;
    const mlc_backend *be = &c->m->be;
    for (int l = 0; c->k_cache && l < c->m->info.n_layer; l++) {
        be->vt->buffer_free(be->ctx, c->k_cache[l]);
        be->vt->buffer_free(be->ctx, c->v_cache[l]);
    }
    mlc_buffer *bufs[] = {c->x, c->xb, c->q, c->k, c->v, c->att, c->hb, c->hb2, c->logits,
                          c->d_tokens, c->d_pos, c->d_slot, c->d_rows, c->d_argmax};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->vt->buffer_free(be->ctx, bufs[i]);
    free(c->k_cache);
    free(c->v_cache);
    free(c->slot_len);
    free(c->tmp_len);
    free(c->h_logits);
    free(c->h_rows);
    free(c->h_argmax);
    free(c);
}

/* Bytes of one layer's K (or V) cache: n_slots * n_ctx * kv_dim elements; 0 when the
 * product does not fit a size_t (no allocator could satisfy it anyway). */
static size_t kv_layer_bytes(const mlc_context *c)
{
    size_t elt = c->kv_type == MLC_TYPE_F32 ? 4 : 2;
    size_t dims[] = {(size_t)c->n_slots, (size_t)c->n_ctx, (size_t)c->kv_dim}, bytes = elt;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i] && bytes > SIZE_MAX / dims[i])
            return 0;
        bytes *= dims[i];
    }
    return bytes;
}

static bool alloc_buffers(mlc_context *c)
{
    const mlc_model_info *in = &c->m->info;
    const mlc_backend *be = &c->m->be;
    size_t nb = (size_t)c->n_batch, f = sizeof(float);
    size_t qd = (size_t)in->n_head * (size_t)in->head_dim;
    size_t kvd = (size_t)c->kv_dim;
    size_t wide = (size_t)in->n_embd > qd ? (size_t)in->n_embd : qd;
    struct {
        mlc_buffer **p;
        size_t bytes;
    } want[] = {
        {&c->x, nb * (size_t)in->n_embd * f}, {&c->xb, nb * wide * f},
        {&c->q, nb * qd * f}, {&c->k, nb * kvd * f}, {&c->v, nb * kvd * f},
        {&c->att, nb * qd * f}, {&c->hb, nb * (size_t)in->n_ff * f},
        {&c->hb2, nb * (size_t)in->n_ff * f}, {&c->logits, nb * (size_t)in->n_vocab * f},
        {&c->d_tokens, nb * 4}, {&c->d_pos, nb * 4}, {&c->d_slot, nb * 4}, {&c->d_rows, nb * 4},
        {&c->d_argmax, nb * 4},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (be->vt->buffer_alloc(be->ctx, want[i].bytes, want[i].p, NULL))
            return false;
    size_t cache = kv_layer_bytes(c);
    if (cache == 0)
        return false;
    c->k_cache = calloc((size_t)in->n_layer, sizeof *c->k_cache);
    c->v_cache = calloc((size_t)in->n_layer, sizeof *c->v_cache);
    if (!c->k_cache || !c->v_cache)
        return false;
    for (int l = 0; l < in->n_layer; l++)
        if (be->vt->buffer_alloc(be->ctx, cache, &c->k_cache[l], NULL) ||
            be->vt->buffer_alloc(be->ctx, cache, &c->v_cache[l], NULL))
            return false;
    c->slot_len = calloc((size_t)c->n_slots, sizeof *c->slot_len);
    c->tmp_len = calloc((size_t)c->n_slots, sizeof *c->tmp_len);
    c->h_logits = malloc(nb * (size_t)in->n_vocab * f);
    c->h_rows = malloc(nb * 4);
    c->h_argmax = malloc(nb * 4);
    return c->slot_len && c->tmp_len && c->h_logits && c->h_rows && c->h_argmax;
}

mlc_status mlc_context_new(mlc_model *m, const mlc_context_params *p, mlc_context **out,
                           mlc_err *err)
{
    *out = NULL;
    mlc_context_params dflt = {0};
    if (!p)
        p = &dflt;
    mlc_status s = need_kv_ops(m, p->kv_type == MLC_KV_F32 ? MLC_TYPE_F32 : MLC_TYPE_F16,
                               p->n_ctx > 0 ? p->n_ctx : m->info.n_ctx_train,
                               p->n_slots > 0 ? p->n_slots : 1, err);
    if (s)
        return s;
    mlc_context *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "context: out of memory");
    c->m = m;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : m->info.n_ctx_train;
    c->n_slots = p->n_slots > 0 ? p->n_slots : 1;
    c->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    /* A batch places each token at a position of a slot, so it never holds more tokens than
     * there are positions; sizing for more only wastes memory ([n_batch, n_vocab] logits are
     * 512 MiB for a 262,144-token vocabulary). */
    if ((int64_t)c->n_batch > (int64_t)c->n_ctx * c->n_slots)
        c->n_batch = (int)((int64_t)c->n_ctx * c->n_slots);
    c->kv_type = p->kv_type == MLC_KV_F32 ? MLC_TYPE_F32 : MLC_TYPE_F16;
    c->kv_dim = (int64_t)m->info.n_head_kv * m->info.head_dim;
    c->attn = (mlc_attn_params){.scale = m->attn_scale};
    c->attn_swa = (mlc_attn_params){.scale = m->attn_scale, .window = m->info.n_swa};
    if (!alloc_buffers(c)) {
        /* The message is formatted before the context (and the sizes it holds) is freed. */
        double kv_mib = 2.0 * m->info.n_layer * (double)c->n_slots * c->n_ctx * (double)c->kv_dim *
                        (c->kv_type == MLC_TYPE_F32 ? 4 : 2) / (1024.0 * 1024.0);
        mlc_err_set(err, MLC_ERR_NOMEM,
                    "context: out of memory for %d slots x %d positions (KV cache %.0f MiB) and a batch of %d",
                    c->n_slots, c->n_ctx, kv_mib, c->n_batch);
        mlc_context_free(c);
        return MLC_ERR_NOMEM;
    }
    *out = c;
    return MLC_OK;
}

/* Checks a batch before anything is written, so a bad token leaves every slot intact.
 * A token at position p of a slot truncates the slot to p positions and appends itself, so
 * p may not exceed what is filled (no gaps) but may rewrite earlier positions. */
static mlc_status check_batch(mlc_context *c, const mlc_batch *b, mlc_err *err)
{
    if (b->n < 1 || b->n > c->n_batch)
        return mlc_err_set(err, MLC_ERR_ARG, "decode: batch of %d tokens (1..%d allowed)", b->n, c->n_batch);
    memcpy(c->tmp_len, c->slot_len, (size_t)c->n_slots * sizeof *c->tmp_len);
    for (int i = 0; i < b->n; i++) {
        int32_t t = b->tokens[i], s = b->slot[i], p = b->pos[i];
        if (t < 0 || t >= c->m->info.n_vocab)
            return mlc_err_set(err, MLC_ERR_ARG, "decode: token %d: id %d outside the vocabulary of %d",
                               i, t, c->m->info.n_vocab);
        if (s < 0 || s >= c->n_slots)
            return mlc_err_set(err, MLC_ERR_ARG, "decode: token %d: slot %d (the context has %d)", i, s, c->n_slots);
        if (p < 0 || p >= c->n_ctx)
            return mlc_err_set(err, MLC_ERR_RANGE, "decode: token %d: position %d exceeds the context of %d",
                               i, p, c->n_ctx);
        if (p > c->tmp_len[s])
            return mlc_err_set(err, MLC_ERR_ARG, "decode: token %d: position %d leaves a gap in slot %d (filled to %d)",
                               i, p, s, c->tmp_len[s]);
        c->tmp_len[s] = p + 1;
    }
    return MLC_OK;
}

/* Views of the context's buffers: activations [ne0, n] (or per head [head_dim, heads, n]),
 * index vectors [n], cache layers [kv_dim, n_ctx, n_slots]. */
static mlc_tensor act(mlc_buffer *b, int64_t ne0, int64_t n)
{
    return mlc_tensor_make(b, 0, MLC_TYPE_F32, ne0, n, 1);
}

static mlc_tensor heads(mlc_buffer *b, int64_t head_dim, int64_t n_head, int64_t n)
{
    return mlc_tensor_make(b, 0, MLC_TYPE_F32, head_dim, n_head, n);
}

static mlc_tensor idx(mlc_buffer *b, int64_t n)
{
    return mlc_tensor_make(b, 0, MLC_TYPE_I32, n, 1, 1);
}

static mlc_tensor cache(const mlc_context *c, mlc_buffer *b)
{
    return mlc_tensor_make(b, 0, c->kv_type, c->kv_dim, c->n_ctx, c->n_slots);
}

/* One transformer block over the batch in c->x ([n_embd, n]), in place. Ops record their
 * errors in the backend, which the caller's sync() returns. gemma3 adds per-head norms of q
 * and k before RoPE, norms of each sublayer's output before its residual add, and GeGLU. */
static void forward_layer(mlc_context *c, int il, int n)
{
    const mlc_model *m = c->m;
    const mlc_model_info *in = &m->info;
    const mlc_backend_vt *vt = m->be.vt;
    void *bx = m->be.ctx;
    const layer *L = &m->layers[il];
    const int64_t e = in->n_embd, hd = in->head_dim, qd = in->n_head * hd, kvd = c->kv_dim;
    const mlc_tensor x = act(c->x, e, n), xb = act(c->xb, e, n), att = act(c->att, qd, n);
    const mlc_tensor q = act(c->q, qd, n), k = act(c->k, kvd, n), v = act(c->v, kvd, n);
    const mlc_tensor qh = heads(c->q, hd, in->n_head, n), kh = heads(c->k, hd, in->n_head_kv, n);
    const mlc_tensor hb = act(c->hb, in->n_ff, n), hb2 = act(c->hb2, in->n_ff, n);
    const mlc_tensor pos = idx(c->d_pos, n), slot = idx(c->d_slot, n);
    const mlc_tensor kc = cache(c, c->k_cache[il]), vc = cache(c, c->v_cache[il]);

    /* attention: xb = norm(x); q, k, v = xb Wq, xb Wk, xb Wv; rope; cache; attend */
    vt->rms_norm(bx, x, L->attn_norm, in->rms_eps, xb);              /* [e, n] */
    vt->matmul(bx, L->wq.t, xb, q);                                  /* [qd, n] */
    vt->matmul(bx, L->wk.t, xb, k);                                  /* [kvd, n] */
    vt->matmul(bx, L->wv.t, xb, v);                                  /* [kvd, n] */
    if (L->bq.buf) {
        vt->add(bx, q, L->bq, q);                                    /* + [qd] per row */
        vt->add(bx, k, L->bk, k);
        vt->add(bx, v, L->bv, v);
    }
    if (L->q_norm.buf) {
        vt->rms_norm(bx, qh, L->q_norm, in->rms_eps, qh);            /* each [hd] head */
        vt->rms_norm(bx, kh, L->k_norm, in->rms_eps, kh);
    }
    vt->rope(bx, qh, pos, m->rope_freqs, in->n_rot, L->rope_base, m->neox); /* [hd, n_head, n] */
    vt->rope(bx, kh, pos, m->rope_freqs, in->n_rot, L->rope_base, m->neox); /* [hd, n_head_kv, n] */
    vt->kv_store(bx, k, v, kc, vc, slot, pos);                       /* cache[slot, pos] */
    vt->attention(bx, qh, kc, vc, slot, pos, L->swa ? &c->attn_swa : &c->attn,
                  heads(c->att, hd, in->n_head, n));
    vt->matmul(bx, L->wo.t, att, xb);                                /* [e, n] */
    if (L->post_attn_norm.buf)
        vt->rms_norm(bx, xb, L->post_attn_norm, in->rms_eps, xb);
    vt->add(bx, x, xb, x);

    /* feed-forward: x += (act(xb Wgate) * (xb Wup)) Wdown, act silu or gelu */
    vt->rms_norm(bx, x, L->ffn_norm, in->rms_eps, xb);               /* [e, n] */
    vt->matmul(bx, L->w_gate.t, xb, hb);                             /* [ff, n] */
    vt->matmul(bx, L->w_up.t, xb, hb2);                              /* [ff, n] */
    if (m->kind == ARCH_GEMMA3)
        vt->geglu(bx, hb, hb2, hb);                                  /* [ff, n] */
    else
        vt->swiglu(bx, hb, hb2, hb);
    vt->matmul(bx, L->w_down.t, hb, xb);                             /* [e, n] */
    if (L->post_ffn_norm.buf)
        vt->rms_norm(bx, xb, L->post_ffn_norm, in->rms_eps, xb);
    vt->add(bx, x, xb, x);
}

/* Issues one forward pass of b (its inputs' uploads included) up to the logits of the rows
 * that want them, [n_vocab, n_out] in c->logits, and with dev_argmax their greedy picks
 * [n_out] in c->d_argmax. Returns whether the device picks were issued (the backend may
 * decline). Errors stay in the backend, for the caller's sync(). */
static bool issue_step(mlc_context *c, const mlc_batch *b, bool dev_argmax)
{
    const mlc_model *m = c->m;
    const mlc_model_info *in = &m->info;
    const mlc_backend_vt *vt = m->be.vt;
    void *bx = m->be.ctx;
    const int n = b->n;
    vt->upload(bx, c->d_tokens, 0, b->tokens, (size_t)n * 4);
    vt->upload(bx, c->d_pos, 0, b->pos, (size_t)n * 4);
    vt->upload(bx, c->d_slot, 0, b->slot, (size_t)n * 4);
    vt->upload(bx, c->d_rows, 0, c->h_rows, (size_t)c->n_out * 4);

    vt->get_rows(bx, m->tok_embd.t, idx(c->d_tokens, n), act(c->x, in->n_embd, n)); /* [e, n] */
    if (m->embd_scale > 0)
        vt->scale(bx, act(c->x, in->n_embd, n), m->embd_scale, act(c->x, in->n_embd, n));
    for (int l = 0; l < in->n_layer; l++)
        forward_layer(c, l, n);

    /* Only the rows that want logits go through the output norm and the vocabulary matmul. */
    if (c->n_out == 0)
        return false;
    const mlc_tensor xo = act(c->xb, in->n_embd, c->n_out);
    const mlc_tensor logits = act(c->logits, in->n_vocab, c->n_out);
    vt->gather(bx, act(c->x, in->n_embd, n), idx(c->d_rows, c->n_out), xo);   /* [e, n_out] */
    vt->rms_norm(bx, xo, m->output_norm, in->rms_eps, xo);
    vt->matmul(bx, m->output.t, xo, logits);                                   /* [vocab, n_out] */
    return dev_argmax && vt->argmax(bx, logits, idx(c->d_argmax, c->n_out)) == MLC_OK; /* [n_out] */
}

/* One forward pass; greedy: the caller wants mlc_context_argmax, not the logits. */
static mlc_status decode(mlc_context *c, const mlc_batch *b, bool greedy, mlc_err *err)
{
    mlc_status s = check_batch(c, b, err);
    if (s)
        return s;
    const mlc_model *m = c->m;
    const mlc_backend_vt *vt = m->be.vt;
    void *bx = m->be.ctx;
    const int64_t nv = m->info.n_vocab;
    c->n_out = 0;
    c->greedy = false;
    for (int i = 0; i < b->n; i++)
        if (b->want_logits ? b->want_logits[i] : i == b->n - 1)
            c->h_rows[c->n_out++] = i;
    const bool want_dev = greedy && vt->argmax;
    const bool stepped = vt->begin_step && vt->end_step && vt->begin_step(bx) == MLC_OK;
    bool dev = issue_step(c, b, want_dev);
    if (stepped && vt->end_step(bx) != MLC_OK)
        dev = issue_step(c, b, want_dev); /* the backend ran none of it: issue it plainly */
    if (dev)
        vt->download(bx, c->h_argmax, c->d_argmax, 0, (size_t)c->n_out * 4);
    else if (c->n_out > 0)
        vt->download(bx, c->h_logits, c->logits, 0, (size_t)c->n_out * (size_t)nv * sizeof(float));
    if ((s = vt->sync(bx, err))) {
        c->n_out = 0; /* no logits from a failed pass */
        return s;
    }
    for (int k = 0; greedy && !dev && k < c->n_out; k++)
        c->h_argmax[k] = mlc_argmax(c->h_logits + (size_t)k * (size_t)nv, (int32_t)nv);
    c->greedy = greedy;
    memcpy(c->slot_len, c->tmp_len, (size_t)c->n_slots * sizeof *c->slot_len);
    return MLC_OK;
}

mlc_status mlc_context_decode(mlc_context *c, const mlc_batch *b, mlc_err *err)
{
    return decode(c, b, false, err);
}

mlc_status mlc_context_decode_greedy(mlc_context *c, const mlc_batch *b, mlc_err *err)
{
    return decode(c, b, true, err);
}

const float *mlc_context_logits(const mlc_context *c, int k)
{
    if (k < 0 || k >= c->n_out || c->greedy)
        return NULL;
    return c->h_logits + (size_t)k * (size_t)c->m->info.n_vocab;
}

int32_t mlc_context_argmax(const mlc_context *c, int k)
{
    return k >= 0 && k < c->n_out && c->greedy ? c->h_argmax[k] : -1;
}
