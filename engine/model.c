/* model.c: llama-family models (llama, qwen2) from GGUF: loading, the KV-cache context, and
 * the forward pass.
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
#include "mlc/tokenizer.h"

#define MAX_HEAD_DIM 1024 /* the CPU attention keeps one head's query on the stack */

/* A weight matrix [n_out rows, n_in values] on the device, in its file type. */
typedef struct weight {
    uint32_t type;
    int64_t n_in, n_out;
    void *dev;
} weight;

typedef struct layer {
    float *attn_norm, *ffn_norm;  /* [n_embd] f32, device */
    float *bq, *bk, *bv;          /* qwen2 QKV biases, or NULL */
    weight wq, wk, wv, wo;
    weight w_gate, w_up, w_down;
} layer;

struct mlc_model {
    mlc_gguf *g;
    mlc_backend be;
    mlc_tokenizer *tok;
    mlc_model_info info;
    bool neox;              /* NeoX-style RoPE (qwen2) */
    weight tok_embd;        /* [n_vocab, n_embd]; get_rows reads it */
    weight output;          /* [n_vocab, n_embd]; token_embd when tied */
    float *output_norm;
    layer *layers;
    float **f32_bufs;       /* device copies of 1-D tensors, released with the model */
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

static mlc_status read_hparams(mlc_model *m, mlc_err *err)
{
    const mlc_gguf *g = m->g;
    mlc_gguf_str a;
    mlc_model_info *in = &m->info;
    mlc_status s = mlc_gguf_get_str(g, "general.architecture", &a, err);
    if (s)
        return s;
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(a.len < 15 ? a.len : 15), a.ptr);
    if (strcmp(m->arch, "llama") && strcmp(m->arch, "qwen2"))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: key 'general.architecture': architecture '%.*s' is not supported (llama, qwen2 are)",
                           mlc_gguf_path(g), (int)(a.len > 64 ? 64 : a.len), a.ptr);
    m->neox = !strcmp(m->arch, "qwen2");
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
    if (in->n_head % in->n_head_kv || in->head_dim > MAX_HEAD_DIM || in->n_rot > in->head_dim ||
        in->n_rot % 2)
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: %s: heads %d / kv heads %d / head dim %d / rope dims %d are not supported",
                           mlc_gguf_path(g), ar, in->n_head, in->n_head_kv, in->head_dim, in->n_rot);
    if (mlc_gguf_find_tensor(g, "rope_freqs.weight"))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED,
                           "%s: tensor 'rope_freqs.weight': RoPE frequency factors are not supported yet",
                           mlc_gguf_path(g));
    return MLC_OK;
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
    if (!mlc_type_supported(t->type))
        return mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: tensor '%s': type %s is not supported",
                           mlc_gguf_path(m->g), name, mlc_type_name(t->type));
    return MLC_OK;
}

static mlc_status load_matrix(mlc_model *m, const char *name, int64_t n_in, int64_t n_out,
                              weight *w, mlc_err *err)
{
    const mlc_gguf_tensor *t;
    mlc_status s = find_tensor(m, name, n_in, n_out, false, &t, err);
    if (s)
        return s;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->dev = m->be.vt->weights(m->be.ctx, t->data, (size_t)t->nbytes);
    if (!w->dev)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tensor '%s': cannot place %" PRIu64 " bytes on the device",
                           mlc_gguf_path(m->g), name, t->nbytes);
    return MLC_OK;
}

/* 1-D tensors (norms, biases) become f32 device buffers whatever their file type. */
static mlc_status load_vector(mlc_model *m, const char *name, int64_t n, bool optional,
                              float **out, mlc_err *err)
{
    const mlc_gguf_tensor *t;
    *out = NULL;
    mlc_status s = find_tensor(m, name, n, 0, optional, &t, err);
    if (s || !t)
        return s;
    float *host = malloc((size_t)n * sizeof *host);
    float *dev = m->be.vt->alloc(m->be.ctx, (size_t)n * sizeof *dev);
    float **list = realloc(m->f32_bufs, (size_t)(m->n_f32_bufs + 1) * sizeof *list);
    if (list)
        m->f32_bufs = list;
    if (!host || !dev || !list) {
        free(host);
        if (dev)
            m->be.vt->release(m->be.ctx, dev);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: tensor '%s': out of memory", mlc_gguf_path(m->g), name);
    }
    mlc_dequantize_row((mlc_type)t->type, t->data, host, n);
    m->be.vt->upload(m->be.ctx, dev, host, (size_t)n * sizeof *dev);
    free(host);
    m->f32_bufs[m->n_f32_bufs++] = dev;
    *out = dev;
    return MLC_OK;
}

static mlc_status load_layer(mlc_model *m, int il, mlc_err *err)
{
    const mlc_model_info *in = &m->info;
    layer *L = &m->layers[il];
    int64_t e = in->n_embd, qd = (int64_t)in->n_head * in->head_dim,
            kvd = (int64_t)in->n_head_kv * in->head_dim, ff = in->n_ff;
    char n[14][64];
    static const char *sfx[] = {"attn_norm.weight", "ffn_norm.weight", "attn_q.weight",
                                "attn_k.weight", "attn_v.weight", "attn_output.weight",
                                "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
                                "attn_q.bias", "attn_k.bias", "attn_v.bias"};
    for (int i = 0; i < 12; i++)
        snprintf(n[i], sizeof n[i], "blk.%d.%s", il, sfx[i]);
    mlc_status s;
    bool bias = m->neox; /* qwen2 has QKV biases */
    if ((s = load_vector(m, n[0], e, false, &L->attn_norm, err)) ||
        (s = load_vector(m, n[1], e, false, &L->ffn_norm, err)) ||
        (s = load_matrix(m, n[2], e, qd, &L->wq, err)) ||
        (s = load_matrix(m, n[3], e, kvd, &L->wk, err)) ||
        (s = load_matrix(m, n[4], e, kvd, &L->wv, err)) ||
        (s = load_matrix(m, n[5], qd, e, &L->wo, err)) ||
        (s = load_matrix(m, n[6], e, ff, &L->w_gate, err)) ||
        (s = load_matrix(m, n[7], e, ff, &L->w_up, err)) ||
        (s = load_matrix(m, n[8], ff, e, &L->w_down, err)) ||
        (s = load_vector(m, n[9], qd, !bias, &L->bq, err)) ||
        (s = load_vector(m, n[10], kvd, !bias, &L->bk, err)) ||
        (s = load_vector(m, n[11], kvd, !bias, &L->bv, err)))
        return s;
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
    } names[] = {{0, "F32"}, {1, "F16"}, {2, "Q4_0"}, {7, "Q8_0"}, {14, "Q4_K - Small"},
                 {15, "Q4_K - Medium"}, {18, "Q6_K"}, {32, "BF16"}};
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
    if ((s = load_matrix(m, "token_embd.weight", in->n_embd, in->n_vocab, &m->tok_embd, err)) ||
        (s = load_vector(m, "output_norm.weight", in->n_embd, false, &m->output_norm, err)))
        return s;
    m->output = m->tok_embd; /* tied embeddings unless output.weight exists */
    if (mlc_gguf_find_tensor(m->g, "output.weight") &&
        (s = load_matrix(m, "output.weight", in->n_embd, in->n_vocab, &m->output, err)))
        return s;
    if (!(m->layers = calloc((size_t)in->n_layer, sizeof *m->layers)))
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", mlc_gguf_path(m->g));
    for (int l = 0; l < in->n_layer; l++)
        if ((s = load_layer(m, l, err)))
            return s;
    return MLC_OK;
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
        (s = mlc_backend_open(p->backend ? p->backend : "cpu", p->device, p->n_threads, &m->be, err)) ||
        (s = load_weights(m, err))) {
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
            m->be.vt->release(m->be.ctx, m->f32_bufs[i]);
        if (m->layers) {
            for (int l = 0; l < m->info.n_layer; l++) {
                weight *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv,
                                &m->layers[l].wo, &m->layers[l].w_gate, &m->layers[l].w_up,
                                &m->layers[l].w_down};
                for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                    if (ws[i]->dev)
                        m->be.vt->release_weights(m->be.ctx, ws[i]->dev);
            }
        }
        if (m->output.dev && m->output.dev != m->tok_embd.dev)
            m->be.vt->release_weights(m->be.ctx, m->output.dev);
        if (m->tok_embd.dev)
            m->be.vt->release_weights(m->be.ctx, m->tok_embd.dev);
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
    mlc_kv_geom kv;
    void **k_cache, **v_cache; /* [n_layer] device buffers of [n_slots, n_ctx, kv_dim] */
    int32_t *slot_len;         /* host: filled positions per slot */
    int32_t *tmp_len;          /* host: slot_len as a batch being checked would leave it */
    /* Device activations, sized for n_batch tokens. */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits;
    int32_t *d_tokens, *d_pos, *d_slot, *d_rows;
    /* Host copies. */
    float *h_logits;   /* [n_batch, n_vocab] */
    int32_t *h_rows;   /* [n_batch] indices of tokens that want logits */
    int n_out;
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
        if (c->k_cache[l])
            be->vt->release(be->ctx, c->k_cache[l]);
        if (c->v_cache[l])
            be->vt->release(be->ctx, c->v_cache[l]);
    }
    void *bufs[] = {c->x, c->xb, c->q, c->k, c->v, c->att, c->hb, c->hb2, c->logits,
                    c->d_tokens, c->d_pos, c->d_slot, c->d_rows};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            be->vt->release(be->ctx, bufs[i]);
    free(c->k_cache);
    free(c->v_cache);
    free(c->slot_len);
    free(c->tmp_len);
    free(c->h_logits);
    free(c->h_rows);
    free(c);
}

/* Bytes of one layer's K (or V) cache: n_slots * n_ctx * kv_dim elements; 0 when the
 * product does not fit a size_t (no allocator could satisfy it anyway). */
static size_t kv_layer_bytes(const mlc_context *c)
{
    size_t elt = c->kv.type == MLC_TYPE_F32 ? 4 : 2;
    size_t dims[] = {(size_t)c->n_slots, (size_t)c->n_ctx, (size_t)c->kv.kv_dim}, bytes = elt;
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
    size_t kvd = (size_t)c->kv.kv_dim;
    size_t wide = (size_t)in->n_embd > qd ? (size_t)in->n_embd : qd;
    struct {
        void **p;
        size_t bytes;
    } want[] = {
        {(void **)&c->x, nb * (size_t)in->n_embd * f}, {(void **)&c->xb, nb * wide * f},
        {(void **)&c->q, nb * qd * f}, {(void **)&c->k, nb * kvd * f}, {(void **)&c->v, nb * kvd * f},
        {(void **)&c->att, nb * qd * f}, {(void **)&c->hb, nb * (size_t)in->n_ff * f},
        {(void **)&c->hb2, nb * (size_t)in->n_ff * f},
        {(void **)&c->logits, nb * (size_t)in->n_vocab * f},
        {(void **)&c->d_tokens, nb * 4}, {(void **)&c->d_pos, nb * 4}, {(void **)&c->d_slot, nb * 4},
        {(void **)&c->d_rows, nb * 4},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!(*want[i].p = be->vt->alloc(be->ctx, want[i].bytes)))
            return false;
    size_t cache = kv_layer_bytes(c);
    if (cache == 0)
        return false;
    c->k_cache = calloc((size_t)in->n_layer, sizeof *c->k_cache);
    c->v_cache = calloc((size_t)in->n_layer, sizeof *c->v_cache);
    if (!c->k_cache || !c->v_cache)
        return false;
    for (int l = 0; l < in->n_layer; l++)
        if (!(c->k_cache[l] = be->vt->alloc(be->ctx, cache)) ||
            !(c->v_cache[l] = be->vt->alloc(be->ctx, cache)))
            return false;
    c->slot_len = calloc((size_t)c->n_slots, sizeof *c->slot_len);
    c->tmp_len = calloc((size_t)c->n_slots, sizeof *c->tmp_len);
    c->h_logits = malloc(nb * (size_t)in->n_vocab * f);
    c->h_rows = malloc(nb * 4);
    return c->slot_len && c->tmp_len && c->h_logits && c->h_rows;
}

mlc_status mlc_context_new(mlc_model *m, const mlc_context_params *p, mlc_context **out,
                           mlc_err *err)
{
    *out = NULL;
    mlc_context_params dflt = {0};
    if (!p)
        p = &dflt;
    mlc_context *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "context: out of memory");
    c->m = m;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : m->info.n_ctx_train;
    c->n_slots = p->n_slots > 0 ? p->n_slots : 1;
    c->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    c->kv = (mlc_kv_geom){p->kv_type == MLC_KV_F32 ? MLC_TYPE_F32 : MLC_TYPE_F16, c->n_ctx,
                          (int64_t)m->info.n_head_kv * m->info.head_dim};
    if (!alloc_buffers(c)) {
        /* The message is formatted before the context (and the sizes it holds) is freed. */
        double kv_mib = 2.0 * m->info.n_layer * (double)c->n_slots * c->n_ctx * (double)c->kv.kv_dim *
                        (c->kv.type == MLC_TYPE_F32 ? 4 : 2) / (1024.0 * 1024.0);
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

/* One transformer block over the batch in c->x ([n, n_embd]), in place. */
static void forward_layer(mlc_context *c, int il, int n)
{
    const mlc_model *m = c->m;
    const mlc_model_info *in = &m->info;
    const mlc_backend_vt *vt = m->be.vt;
    void *bx = m->be.ctx;
    const layer *L = &m->layers[il];
    int64_t e = in->n_embd, qd = (int64_t)in->n_head * in->head_dim, kvd = c->kv.kv_dim;

    /* attention: xb = norm(x); q, k, v = xb Wq, xb Wk, xb Wv; rope; cache; attend */
    vt->rms_norm(bx, c->x, L->attn_norm, n, e, in->rms_eps, c->xb);        /* [n, e] */
    vt->matmul(bx, L->wq.type, L->wq.dev, e, qd, c->xb, n, c->q);           /* [n, qd] */
    vt->matmul(bx, L->wk.type, L->wk.dev, e, kvd, c->xb, n, c->k);          /* [n, kvd] */
    vt->matmul(bx, L->wv.type, L->wv.dev, e, kvd, c->xb, n, c->v);          /* [n, kvd] */
    if (L->bq) {
        vt->add_bias(bx, c->q, L->bq, n, qd);
        vt->add_bias(bx, c->k, L->bk, n, kvd);
        vt->add_bias(bx, c->v, L->bv, n, kvd);
    }
    vt->rope(bx, c->q, c->d_pos, n, in->n_head, in->head_dim, in->n_rot, in->rope_base, m->neox);
    vt->rope(bx, c->k, c->d_pos, n, in->n_head_kv, in->head_dim, in->n_rot, in->rope_base, m->neox);
    vt->kv_store(bx, &c->kv, c->k, c->v, c->k_cache[il], c->v_cache[il], c->d_slot, c->d_pos, n);
    mlc_attn_args a = {c->q, c->k_cache[il], c->v_cache[il], c->d_slot, c->d_pos, n,
                       in->n_head, in->n_head_kv, in->head_dim,
                       1.0f / sqrtf((float)in->head_dim), c->att};
    vt->attention(bx, &c->kv, &a);                                          /* [n, qd] */
    vt->matmul(bx, L->wo.type, L->wo.dev, qd, e, c->att, n, c->xb);         /* [n, e] */
    vt->add(bx, c->x, c->xb, n * e, c->x);

    /* feed-forward: x += (silu(xb Wgate) * (xb Wup)) Wdown */
    vt->rms_norm(bx, c->x, L->ffn_norm, n, e, in->rms_eps, c->xb);
    vt->matmul(bx, L->w_gate.type, L->w_gate.dev, e, in->n_ff, c->xb, n, c->hb);  /* [n, ff] */
    vt->matmul(bx, L->w_up.type, L->w_up.dev, e, in->n_ff, c->xb, n, c->hb2);     /* [n, ff] */
    vt->swiglu(bx, c->hb, c->hb2, n * (int64_t)in->n_ff, c->hb);
    vt->matmul(bx, L->w_down.type, L->w_down.dev, in->n_ff, e, c->hb, n, c->xb);  /* [n, e] */
    vt->add(bx, c->x, c->xb, n * e, c->x);
}

mlc_status mlc_context_decode(mlc_context *c, const mlc_batch *b, mlc_err *err)
{
    mlc_status s = check_batch(c, b, err);
    if (s)
        return s;
    const mlc_model *m = c->m;
    const mlc_model_info *in = &m->info;
    const mlc_backend_vt *vt = m->be.vt;
    void *bx = m->be.ctx;
    int n = b->n;
    c->n_out = 0;
    for (int i = 0; i < n; i++)
        if (b->want_logits ? b->want_logits[i] : i == n - 1)
            c->h_rows[c->n_out++] = i;
    vt->upload(bx, c->d_tokens, b->tokens, (size_t)n * 4);
    vt->upload(bx, c->d_pos, b->pos, (size_t)n * 4);
    vt->upload(bx, c->d_slot, b->slot, (size_t)n * 4);
    vt->upload(bx, c->d_rows, c->h_rows, (size_t)c->n_out * 4);

    vt->get_rows(bx, m->tok_embd.type, m->tok_embd.dev, in->n_embd, c->d_tokens, n, c->x);
    for (int l = 0; l < in->n_layer; l++)
        forward_layer(c, l, n);
    memcpy(c->slot_len, c->tmp_len, (size_t)c->n_slots * sizeof *c->slot_len);
    if (c->n_out == 0)
        return vt->sync(bx, err);

    /* Only the rows that want logits go through the output norm and the vocabulary matmul. */
    vt->gather(bx, c->x, c->d_rows, c->n_out, in->n_embd, c->xb);
    vt->rms_norm(bx, c->xb, m->output_norm, c->n_out, in->n_embd, in->rms_eps, c->xb);
    vt->matmul(bx, m->output.type, m->output.dev, in->n_embd, in->n_vocab, c->xb, c->n_out, c->logits);
    vt->download(bx, c->h_logits, c->logits, (size_t)c->n_out * (size_t)in->n_vocab * sizeof(float));
    return vt->sync(bx, err);
}

const float *mlc_context_logits(const mlc_context *c, int k)
{
    if (k < 0 || k >= c->n_out)
        return NULL;
    return c->h_logits + (size_t)k * (size_t)c->m->info.n_vocab;
}
