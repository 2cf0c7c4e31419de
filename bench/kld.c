/* kld.c: the KL-divergence base file and the per-token comparison (format and approximation
 * in kld.h). */
#include "kld.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "outfile.h"
#include "stats.h"

uint64_t mlc_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_f32(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

static float get_f32(const unsigned char *p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

uint64_t mlc_kld_tokens_hash(uint64_t h, const int32_t *ids, size_t n)
{
    unsigned char b[4];
    for (size_t i = 0; i < n; i++) {
        put_u32(b, (uint32_t)ids[i]);
        h = mlc_fnv1a64(h, b, 4);
    }
    return h;
}

mlc_status mlc_kld_model_hash(const char *path, uint64_t *out, mlc_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mlc_err_set(err, MLC_ERR_IO, "%s: cannot open", path);
    mlc_status s = MLC_OK;
    unsigned char *buf = malloc(1 << 16);
    long size = -1;
    if (!buf)
        s = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    else if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        s = mlc_err_set(err, MLC_ERR_IO, "%s: cannot seek", path);
    if (!s) {
        unsigned char sz[8];
        put_u64(sz, (uint64_t)size);
        uint64_t h = mlc_fnv1a64(MLC_FNV1A64_INIT, sz, 8);
        size_t left = (uint64_t)size < MLC_KLD_MODEL_HASH_BYTES ? (size_t)size : MLC_KLD_MODEL_HASH_BYTES;
        while (!s && left) {
            size_t want = left < (1u << 16) ? left : (1u << 16), got = fread(buf, 1, want, f);
            if (got != want)
                s = mlc_err_set(err, MLC_ERR_IO, "%s: read failed", path);
            h = mlc_fnv1a64(h, buf, got);
            left -= got;
        }
        *out = h;
    }
    free(buf);
    fclose(f);
    return s;
}

size_t mlc_kld_record_bytes(uint32_t top_k)
{
    return 8 * (size_t)top_k + 8;
}

static void encode_header(const mlc_kld_header *h, unsigned char *b)
{
    memset(b, 0, MLC_KLD_HEADER_BYTES);
    memcpy(b, MLC_KLD_MAGIC, 8);
    put_u32(b + 8, h->version);
    put_u32(b + 12, h->top_k);
    put_u32(b + 16, h->n_vocab);
    put_u32(b + 20, h->n_ctx);
    put_u32(b + 24, h->n_chunks);
    put_u64(b + 32, h->n_scored);
    put_u64(b + 40, h->model_hash);
    put_u64(b + 48, h->tokens_hash);
    uint64_t v;
    memcpy(&v, &h->base_mean_nll, 8);
    put_u64(b + 56, v);
}

/* Log-softmax pieces of one logits row: max and log(sum exp(l - max)), in double as mlc_nll
 * computes them. */
static void log_norm(const float *lg, int n_vocab, float *max, double *log_sum)
{
    float mx = lg[0];
    for (int i = 1; i < n_vocab; i++)
        mx = lg[i] > mx ? lg[i] : mx;
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)(lg[i] - mx));
    *max = mx;
    *log_sum = log(sum);
}

/* log of the mass outside the marked ids (scratch[i] != 0), normalised: log(rest) - log_sum;
 * -inf when every id is marked. */
static float log_rest(const float *lg, int n_vocab, float mx, double log_sum, const unsigned char *mark)
{
    double rest = 0;
    for (int i = 0; i < n_vocab; i++)
        if (!mark[i])
            rest += exp((double)(lg[i] - mx));
    return rest > 0 ? (float)(log(rest) - log_sum) : -INFINITY;
}

struct mlc_kld_writer {
    mlc_outfile out;      /* the stream is out.f */
    mlc_kld_header h;
    int32_t *ids;         /* [K] */
    float *vals;          /* [K] logits of ids, descending */
    unsigned char *rec;   /* [record bytes] */
    unsigned char *mark;  /* [n_vocab] */
};

mlc_status mlc_kld_writer_open(const char *path, const mlc_kld_header *h, mlc_kld_writer **out,
                               mlc_err *err)
{
    *out = NULL;
    mlc_kld_writer *w = calloc(1, sizeof *w);
    mlc_status s = MLC_OK;
    if (h->top_k < 1 || h->top_k > MLC_KLD_TOP_MAX || h->top_k > h->n_vocab)
        s = mlc_err_set(err, MLC_ERR_ARG, "%s: K = %u (1..%d and at most n_vocab %u allowed)", path, h->top_k,
                        MLC_KLD_TOP_MAX, h->n_vocab);
    else if (!w || !(w->ids = malloc(h->top_k * sizeof *w->ids)) || !(w->vals = malloc(h->top_k * sizeof *w->vals)) ||
        !(w->rec = malloc(mlc_kld_record_bytes(h->top_k))) || !(w->mark = calloc(h->n_vocab, 1))) {
        s = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    } else {
        w->h = *h;
        w->h.version = MLC_KLD_VERSION;
        w->h.n_scored = 0;
        unsigned char hb[MLC_KLD_HEADER_BYTES];
        encode_header(&w->h, hb);
        if ((s = mlc_outfile_open(&w->out, path, err)) == MLC_OK &&
            fwrite(hb, 1, sizeof hb, w->out.f) != sizeof hb)
            s = mlc_err_set(err, MLC_ERR_IO, "%s: write failed", path);
    }
    if (s)
        mlc_kld_writer_free(w);
    else
        *out = w;
    return s;
}

mlc_status mlc_kld_writer_add(mlc_kld_writer *w, const float *lg, int n_vocab, int32_t target,
                              mlc_err *err)
{
    uint32_t k = w->h.top_k;
    if ((uint32_t)n_vocab != w->h.n_vocab || target < 0 || target >= n_vocab)
        return mlc_err_set(err, MLC_ERR_ARG, "%s: logits of %d tokens (header says %u), target %d",
                           w->out.path, n_vocab, w->h.n_vocab, (int)target);
    /* Top K by insertion into a sorted array: strict > keeps the lower id first on ties,
     * and most logits fail the first comparison with the K-th value. */
    uint32_t have = 0;
    for (int i = 0; i < n_vocab; i++) {
        float v = lg[i];
        if (have == k && !(v > w->vals[k - 1]))
            continue;
        uint32_t j = have < k ? have++ : k - 1;
        while (j > 0 && v > w->vals[j - 1]) {
            w->vals[j] = w->vals[j - 1];
            w->ids[j] = w->ids[j - 1];
            j--;
        }
        w->vals[j] = v;
        w->ids[j] = i;
    }
    float mx;
    double ls;
    log_norm(lg, n_vocab, &mx, &ls);
    unsigned char *b = w->rec;
    for (uint32_t j = 0; j < k; j++) {
        put_u32(b + 4 * j, (uint32_t)w->ids[j]);
        put_f32(b + 4 * (k + j), (float)((double)(w->vals[j] - mx) - ls));
        w->mark[w->ids[j]] = 1;
    }
    put_f32(b + 8 * k, (float)((double)(lg[target] - mx) - ls));
    put_f32(b + 8 * k + 4, log_rest(lg, n_vocab, mx, ls, w->mark));
    for (uint32_t j = 0; j < k; j++)
        w->mark[w->ids[j]] = 0;
    size_t rb = mlc_kld_record_bytes(k);
    if (fwrite(b, 1, rb, w->out.f) != rb)
        return mlc_err_set(err, MLC_ERR_IO, "%s: write failed", w->out.path);
    w->h.n_scored++;
    return MLC_OK;
}

mlc_status mlc_kld_writer_finish(mlc_kld_writer *w, double base_mean_nll, mlc_err *err)
{
    unsigned char hb[MLC_KLD_HEADER_BYTES];
    w->h.base_mean_nll = base_mean_nll;
    encode_header(&w->h, hb);
    /* A character device (/dev/null) is written directly and need not seek: its header
     * stays as first written. */
    if (w->out.tmp && (fseek(w->out.f, 0, SEEK_SET) || fwrite(hb, 1, sizeof hb, w->out.f) != sizeof hb))
        return mlc_err_set(err, MLC_ERR_IO, "%s: write failed", w->out.path);
    return mlc_outfile_commit(&w->out, err);
}

void mlc_kld_writer_free(mlc_kld_writer *w)
{
    if (!w)
        return;
    mlc_outfile_discard(&w->out);
    free(w->ids);
    free(w->vals);
    free(w->rec);
    free(w->mark);
    free(w);
}

struct mlc_kld_reader {
    FILE *f;
    char *path;
    mlc_kld_header h;
    uint64_t next;        /* index of the next record */
    unsigned char *buf;   /* [record bytes] */
    mlc_kld_record rec;
};

mlc_status mlc_kld_reader_open(const char *path, mlc_kld_reader **out, mlc_kld_header *hd, mlc_err *err)
{
    *out = NULL;
    mlc_kld_reader *r = calloc(1, sizeof *r);
    unsigned char b[MLC_KLD_HEADER_BYTES];
    mlc_status s = MLC_OK;
    long size = -1;
    size_t got = 0;
    if (!r || !(r->path = strdup(path)))
        s = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    else if (!(r->f = fopen(path, "rb")))
        s = mlc_err_set(err, MLC_ERR_IO, "%s: cannot open", path);
    else if (fseek(r->f, 0, SEEK_END) || (size = ftell(r->f)) < 0 || fseek(r->f, 0, SEEK_SET))
        s = mlc_err_set(err, MLC_ERR_IO, "%s: cannot seek", path);
    else if (got = fread(b, 1, sizeof b, r->f), memcmp(b, MLC_KLD_MAGIC, got < 8 ? got : 8))
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 0: not an mlc-bench KL-divergence file (bad magic)", path);
    else if (got < sizeof b)
        s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %zu: truncated header (%d bytes expected)", path, got,
                        MLC_KLD_HEADER_BYTES);
    mlc_kld_header *h = r ? &r->h : NULL;
    if (!s) {
        h->version = get_u32(b + 8);
        h->top_k = get_u32(b + 12);
        h->n_vocab = get_u32(b + 16);
        h->n_ctx = get_u32(b + 20);
        h->n_chunks = get_u32(b + 24);
        h->n_scored = get_u64(b + 32);
        h->model_hash = get_u64(b + 40);
        h->tokens_hash = get_u64(b + 48);
        uint64_t v = get_u64(b + 56);
        memcpy(&h->base_mean_nll, &v, 8);
        uint64_t per_chunk = h->n_ctx >= 4 ? h->n_ctx - 1 - h->n_ctx / 2 : 0;
        if (h->version != MLC_KLD_VERSION)
            s = mlc_err_set(err, MLC_ERR_UNSUPPORTED, "%s: at byte 8: version %u (this build reads %u)", path,
                            h->version, MLC_KLD_VERSION);
        else if (h->top_k < 1 || h->top_k > MLC_KLD_TOP_MAX)
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 12: K = %u (1..%d allowed)", path, h->top_k,
                            MLC_KLD_TOP_MAX);
        else if (h->n_vocab < h->top_k)
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 16: n_vocab %u is less than K %u", path, h->n_vocab,
                            h->top_k);
        else if (h->n_ctx < 4 || h->n_ctx > (1u << 24))
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 20: chunk length %u", path, h->n_ctx);
        else if (h->n_chunks < 1 || h->n_scored != (uint64_t)h->n_chunks * per_chunk)
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 32: %llu scored tokens do not match %u chunks of %u",
                            path, (unsigned long long)h->n_scored, h->n_chunks, h->n_ctx);
        else if (!isfinite(h->base_mean_nll) || h->base_mean_nll < 0)
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte 56: base mean NLL %g", path, h->base_mean_nll);
    }
    if (!s) {
        /* Whole records present, computed without multiplying the header's count (a corrupt
         * count could overflow). */
        size_t rb = mlc_kld_record_bytes(h->top_k);
        uint64_t avail = (uint64_t)size - MLC_KLD_HEADER_BYTES, whole = avail / rb;
        uint64_t want = MLC_KLD_HEADER_BYTES + (whole < h->n_scored ? whole : h->n_scored) * rb;
        if (whole < h->n_scored) {
            s = mlc_err_set(err, MLC_ERR_FORMAT,
                            "%s: at byte %ld: truncated: the file ends in record %llu of %llu (%zu bytes each)",
                            path, size, (unsigned long long)whole + 1, (unsigned long long)h->n_scored, rb);
        } else if ((uint64_t)size > want) {
            s = mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %llu: %llu unexpected bytes after the last record",
                            path, (unsigned long long)want, (unsigned long long)((uint64_t)size - want));
        } else if (!(r->buf = malloc(rb)) || !(r->rec.ids = malloc(h->top_k * sizeof *r->rec.ids)) ||
                   !(r->rec.lp = malloc(h->top_k * sizeof *r->rec.lp))) {
            s = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (s) {
        mlc_kld_reader_free(r);
    } else {
        *hd = r->h;
        *out = r;
    }
    return s;
}

mlc_status mlc_kld_reader_next(mlc_kld_reader *r, const mlc_kld_record **out, mlc_err *err)
{
    uint32_t k = r->h.top_k;
    size_t rb = mlc_kld_record_bytes(k);
    unsigned long long at = MLC_KLD_HEADER_BYTES + r->next * rb;
    if (r->next >= r->h.n_scored)
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: at byte %llu: no record %llu (the file has %llu)", r->path, at,
                           (unsigned long long)r->next + 1, (unsigned long long)r->h.n_scored);
    size_t got = fread(r->buf, 1, rb, r->f);
    if (got != rb)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %llu: truncated record %llu", r->path, at + got,
                           (unsigned long long)r->next + 1);
    const unsigned char *b = r->buf;
    for (uint32_t j = 0; j < k; j++) {
        int32_t id = (int32_t)get_u32(b + 4 * j);
        float lp = get_f32(b + 4 * (k + j));
        if (id < 0 || (uint32_t)id >= r->h.n_vocab)
            return mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %llu: token id %d out of range (n_vocab %u)",
                               r->path, at + 4 * j, (int)id, r->h.n_vocab);
        if (!isfinite(lp) || lp > 0 || (j && lp > r->rec.lp[j - 1]))
            return mlc_err_set(err, MLC_ERR_FORMAT,
                               "%s: at byte %llu: log-probability %g is not finite, <= 0 and descending",
                               r->path, at + 4 * (k + j), (double)lp);
        r->rec.ids[j] = id;
        r->rec.lp[j] = lp;
    }
    r->rec.lp_target = get_f32(b + 8 * k);
    r->rec.lp_rest = get_f32(b + 8 * k + 4);
    if (!isfinite(r->rec.lp_target) || r->rec.lp_target > 0)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %llu: target log-probability %g", r->path,
                           at + 8 * k, (double)r->rec.lp_target);
    if (isnan(r->rec.lp_rest) || r->rec.lp_rest > 0 || r->rec.lp_rest == INFINITY)
        return mlc_err_set(err, MLC_ERR_FORMAT, "%s: at byte %llu: remainder log-mass %g", r->path, at + 8 * k + 4,
                           (double)r->rec.lp_rest);
    r->next++;
    *out = &r->rec;
    return MLC_OK;
}

void mlc_kld_reader_free(mlc_kld_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r->rec.ids);
    free(r->rec.lp);
    free(r);
}

/* p * (ln p - ln q) for one bucket, with 0 * anything = 0. */
static double kl_term(float lp, float lq)
{
    if (lp == -INFINITY)
        return 0;
    return exp((double)lp) * ((double)lp - (double)lq);
}

void mlc_kld_compare(const mlc_kld_record *rec, uint32_t top_k, const float *lg, int n_vocab,
                     int32_t target, unsigned char *mark, mlc_kld_token *out)
{
    float mx;
    double ls, kl = 0;
    log_norm(lg, n_vocab, &mx, &ls);
    int best = 0;
    for (int i = 1; i < n_vocab; i++)
        best = lg[i] > lg[best] ? i : best;
    for (uint32_t j = 0; j < top_k; j++) {
        /* Rounded to float like the base's values, so identical logits give KL = 0 exactly. */
        float lq = (float)((double)(lg[rec->ids[j]] - mx) - ls);
        kl += kl_term(rec->lp[j], lq);
        mark[rec->ids[j]] = 1;
    }
    kl += kl_term(rec->lp_rest, log_rest(lg, n_vocab, mx, ls, mark));
    for (uint32_t j = 0; j < top_k; j++)
        mark[rec->ids[j]] = 0;
    out->kld = kl > 0 ? kl : 0; /* rounding can leave a tiny negative sum */
    out->same_top1 = best == rec->ids[0];
    out->nll_cand = -((double)(lg[target] - mx) - ls);
    out->nll_base = -(double)rec->lp_target;
}

bool mlc_kld_acc_add(mlc_kld_acc *a, const mlc_kld_token *t)
{
    if (a->n == a->cap) {
        int64_t cap = a->cap ? a->cap * 2 : 1024;
        double *k = realloc(a->kld, (size_t)cap * sizeof *k);
        if (!k)
            return false;
        a->kld = k;
        double *d = realloc(a->dnll, (size_t)cap * sizeof *d);
        if (!d)
            return false;
        a->dnll = d;
        a->cap = cap;
    }
    a->kld[a->n] = t->kld;
    a->dnll[a->n] = t->nll_cand - t->nll_base;
    a->n++;
    a->same_top1 += t->same_top1;
    return true;
}

void mlc_kld_acc_free(mlc_kld_acc *a)
{
    free(a->kld);
    free(a->dnll);
    *a = (mlc_kld_acc){0};
}

/* Mean and standard error of the mean of v[0..n). */
static void mean_err(const double *v, int64_t n, double *mean, double *err)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    double m = n ? s / (double)n : 0;
    for (int64_t i = 0; i < n; i++)
        s2 += (v[i] - m) * (v[i] - m);
    *mean = m;
    *err = n > 1 ? sqrt(s2 / (double)(n - 1) / (double)n) : 0;
}

void mlc_kld_summarize(mlc_kld_acc *a, double cand_mean_nll, double base_mean_nll, mlc_kld_summary *s)
{
    int64_t n = a->n;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->ppl = exp(cand_mean_nll);
    s->ppl_base = exp(base_mean_nll);
    if (n < 1)
        return;
    double dm;
    mean_err(a->kld, n, &s->kld_mean, &s->kld_mean_err);
    /* The ratio comes from the two runs' exact mean NLLs; its error from the per-token
     * differences (correlated tokens cancel, as in llama-perplexity). */
    mean_err(a->dnll, n, &dm, &s->ln_ratio_err);
    s->ln_ratio = cand_mean_nll - base_mean_nll;
    s->ppl_ratio = exp(s->ln_ratio);
    s->ppl_ratio_err = s->ppl_ratio * s->ln_ratio_err;
    s->kld_min = mlc_quantile(a->kld, (size_t)n, 0);
    s->kld_median = mlc_quantile(a->kld, (size_t)n, 0.5);
    s->kld_p90 = mlc_quantile(a->kld, (size_t)n, 0.9);
    s->kld_p99 = mlc_quantile(a->kld, (size_t)n, 0.99);
    s->kld_max = mlc_quantile(a->kld, (size_t)n, 1);
    double p = (double)a->same_top1 / (double)n;
    s->same_top1_pct = 100 * p;
    s->same_top1_err_pct = n > 1 ? 100 * sqrt(p * (1 - p) / (double)(n - 1)) : 0;
}

void mlc_kld_print(const mlc_kld_summary *s, FILE *f)
{
    fprintf(f, "\n====== Perplexity statistics ======\n");
    fprintf(f, "Mean PPL(Q)                   : %12.6f\n", s->ppl);
    fprintf(f, "Mean PPL(base)                : %12.6f\n", s->ppl_base);
    fprintf(f, "Mean ln(PPL(Q)/PPL(base))     : %10.6f +/- %10.6f\n", s->ln_ratio, s->ln_ratio_err);
    fprintf(f, "Mean PPL(Q)/PPL(base)         : %10.6f +/- %10.6f\n", s->ppl_ratio, s->ppl_ratio_err);
    fprintf(f, "\n====== KL divergence statistics (top-K + rest, see README) ======\n");
    fprintf(f, "Mean    KLD: %10.6f +/- %10.6f\n", s->kld_mean, s->kld_mean_err);
    fprintf(f, "Maximum KLD: %10.6f\n", s->kld_max);
    fprintf(f, "99.0%%   KLD: %10.6f\n", s->kld_p99);
    fprintf(f, "90.0%%   KLD: %10.6f\n", s->kld_p90);
    fprintf(f, "Median  KLD: %10.6f\n", s->kld_median);
    fprintf(f, "Minimum KLD: %10.6f\n", s->kld_min);
    fprintf(f, "\n====== Token probability statistics ======\n");
    fprintf(f, "Same top p: %7.3f +/- %6.3f %% (%lld tokens)\n", s->same_top1_pct, s->same_top1_err_pct,
            (long long)s->n);
}
