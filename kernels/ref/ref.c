/* ref.c: float64 reference ops (see ref.h). Plain loops, written for clarity over speed:
 * these are the yardstick every backend is measured with. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables and weights */

bool mlc_ref_get_rows(uint32_t type, const void *table, int64_t row_len, const int32_t *ids,
                      int64_t n, double *out)
{
    const size_t rb = mlc_type_row_bytes(type, row_len);
    if (!mlc_type_supported(type) || rb == 0 || row_len <= 0)
        return false;
    float *row = malloc((size_t)row_len * sizeof *row);
    if (!row)
        return false;
    for (int64_t i = 0; i < n; i++) {
        mlc_dequantize_row((mlc_type)type, (const uint8_t *)table + (size_t)ids[i] * rb, row,
                           row_len);
        for (int64_t j = 0; j < row_len; j++)
            out[i * row_len + j] = row[j];
    }
    free(row);
    return true;
}

bool mlc_ref_matmul(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                    int64_t n, double *y)
{
    const size_t rb = mlc_type_row_bytes(type, n_in);
    if (!mlc_type_supported(type) || rb == 0 || n_in <= 0)
        return false;
    float *row = malloc((size_t)n_in * sizeof *row);
    if (!row)
        return false;
    for (int64_t r = 0; r < n_out; r++) {
        mlc_dequantize_row((mlc_type)type, (const uint8_t *)w + (size_t)r * rb, row, n_in);
        for (int64_t t = 0; t < n; t++) {
            const float *xt = x + t * n_in;
            double s = 0;
            for (int64_t i = 0; i < n_in; i++)
                s += (double)row[i] * (double)xt[i];
            y[t * n_out + r] = s;
        }
    }
    free(row);
    return true;
}

/* ---------------------------------------------------------------- normalization, rotary */

void mlc_ref_rms_norm(const float *x, const float *w, int64_t n, int64_t dim, float eps,
                      double *y)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++)
            ss += (double)xt[i] * (double)xt[i];
        const double scale = 1.0 / sqrt(ss / (double)dim + (double)eps);
        for (int64_t i = 0; i < dim; i++)
            y[t * dim + i] = (double)xt[i] * scale * (double)w[i];
    }
}

void mlc_ref_rope(const float *x, const int32_t *pos, const float *ff, int64_t n, int n_head,
                  int head_dim, int n_rot, float freq_base, bool neox, double *out)
{
    const int half = n_rot / 2;
    for (int64_t t = 0; t < n; t++) {
        for (int h = 0; h < n_head; h++) {
            const int64_t off = (t * n_head + h) * (int64_t)head_dim;
            const float *v = x + off;
            double *o = out + off;
            for (int d = 0; d < head_dim; d++)
                o[d] = v[d];
            for (int i = 0; i < half; i++) {
                const double theta =
                    (double)pos[t] * pow((double)freq_base, -2.0 * (double)i / (double)n_rot) /
                    (ff ? (double)ff[i] : 1.0);
                const double c = cos(theta), s = sin(theta);
                const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                const double x0 = v[a], x1 = v[b];
                o[a] = x0 * c - x1 * s;
                o[b] = x0 * s + x1 * c;
            }
        }
    }
}

void mlc_ref_llama3_rope_factors(int n_rot, float freq_base, float factor, float low, float high,
                                 float orig_ctx, float *ff)
{
    const double two_pi = 6.283185307179586;
    for (int i = 0; i < n_rot / 2; i++) {
        const double w = two_pi * pow((double)freq_base, 2.0 * (double)i / (double)n_rot);
        const double k = ((double)orig_ctx / w - (double)low) / ((double)high - (double)low);
        if (w < (double)orig_ctx / (double)high)
            ff[i] = 1.0f;
        else if (w > (double)orig_ctx / (double)low)
            ff[i] = factor;
        else
            ff[i] = (float)(1.0 / ((1.0 - k) / (double)factor + k));
    }
}

/* ---------------------------------------------------------------- KV cache, attention */

static void ref_store_row(uint32_t type, const float *src, void *cache, size_t idx, int64_t dim)
{
    if (type == MLC_TYPE_F32) {
        memcpy((float *)cache + idx * (size_t)dim, src, (size_t)dim * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)cache + idx * (size_t)dim;
    for (int64_t i = 0; i < dim; i++)
        dst[i] = mlc_fp32_to_fp16(src[i]);
}

void mlc_ref_kv_store(const mlc_ref_kv_geom *g, const float *k, const float *v, void *k_cache,
                      void *v_cache, const int32_t *slot, const int32_t *pos, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        const size_t idx = (size_t)slot[t] * (size_t)g->n_ctx + (size_t)pos[t];
        ref_store_row(g->type, k + t * g->kv_dim, k_cache, idx, g->kv_dim);
        ref_store_row(g->type, v + t * g->kv_dim, v_cache, idx, g->kv_dim);
    }
}

static double ref_cache_at(const mlc_ref_kv_geom *g, const void *cache, size_t idx)
{
    return g->type == MLC_TYPE_F32 ? (double)((const float *)cache)[idx]
                                   : (double)mlc_fp16_to_fp32(((const uint16_t *)cache)[idx]);
}

bool mlc_ref_attention(const mlc_ref_kv_geom *g, const mlc_ref_attn_args *a, double *out)
{
    if (g->type != MLC_TYPE_F32 && g->type != MLC_TYPE_F16)
        return false;
    const int hd = a->head_dim, group = a->n_head / a->n_kv_head;
    double *sc = malloc((size_t)(g->n_ctx > 0 ? g->n_ctx : 1) * sizeof *sc);
    if (!sc)
        return false;
    for (int64_t t = 0; t < a->n; t++) {
        const size_t base = (size_t)a->slot[t] * (size_t)g->n_ctx;
        const int64_t np = (int64_t)a->pos[t] + 1;
        const int64_t lo = a->p.window > 0 && np > a->p.window ? np - a->p.window : 0;
        for (int h = 0; h < a->n_head; h++) {
            const int kvh = h / group;
            const float *q = a->q + (t * a->n_head + h) * (int64_t)hd;
            double *o = out + (t * a->n_head + h) * (int64_t)hd;
            double max = -INFINITY;
            for (int64_t p = lo; p < np; p++) {
                const size_t row = (base + (size_t)p) * (size_t)g->kv_dim + (size_t)kvh * (size_t)hd;
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += (double)q[d] * ref_cache_at(g, a->k, row + (size_t)d);
                sc[p] = s * (double)a->p.scale;
                if (a->p.softcap > 0)
                    sc[p] = (double)a->p.softcap * tanh(sc[p] / (double)a->p.softcap);
                if (sc[p] > max)
                    max = sc[p];
            }
            double sum = 0;
            for (int64_t p = lo; p < np; p++) {
                sc[p] = exp(sc[p] - max);
                sum += sc[p];
            }
            for (int d = 0; d < hd; d++)
                o[d] = 0;
            for (int64_t p = lo; p < np; p++) {
                const double wp = sc[p] / sum;
                const size_t row = (base + (size_t)p) * (size_t)g->kv_dim + (size_t)kvh * (size_t)hd;
                for (int d = 0; d < hd; d++)
                    o[d] += wp * ref_cache_at(g, a->v, row + (size_t)d);
            }
        }
    }
    free(sc);
    return true;
}

/* ---------------------------------------------------------------- elementwise */

void mlc_ref_swiglu(const float *gate, const float *up, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        const double g = gate[i];
        out[i] = g / (1.0 + exp(-g)) * (double)up[i];
    }
}

void mlc_ref_geglu(const float *gate, const float *up, int64_t n, double *out)
{
    const double k = sqrt(2.0 / 3.14159265358979323846);
    for (int64_t i = 0; i < n; i++) {
        const double x = gate[i];
        out[i] = 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x))) * (double)up[i];
    }
}

void mlc_ref_add(const float *a, const float *b, int64_t n, int64_t nb, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)a[i] + (double)b[i % nb];
}

void mlc_ref_mul(const float *a, const float *b, int64_t n, int64_t nb, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)a[i] * (double)b[i % nb];
}

void mlc_ref_scale(const float *x, float s, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (double)x[i] * (double)s;
}

void mlc_ref_gather(const float *x, const int32_t *rows, int64_t n, int64_t dim, double *out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++)
            out[i * dim + j] = x[(int64_t)rows[i] * dim + j];
}

void mlc_ref_softmax(const float *x, int64_t rows, int64_t n, double *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double *o = out + r * n;
        double max = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            if ((double)xr[j] > max)
                max = xr[j];
        if (max == -INFINITY) {
            for (int64_t j = 0; j < n; j++)
                o[j] = 0;
            continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            o[j] = exp((double)xr[j] - max);
            sum += o[j];
        }
        for (int64_t j = 0; j < n; j++)
            o[j] /= sum;
    }
}

/* ---------------------------------------------------------------- comparison */

double mlc_ref_nmse(const float *out, const double *ref, int64_t n)
{
    double err = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)out[i] - ref[i];
        err += d * d;
        norm += ref[i] * ref[i];
    }
    if (isnan(err) || isnan(norm))
        return NAN;
    if (norm == 0)
        return err == 0 ? 0.0 : INFINITY;
    return err / norm;
}

int64_t mlc_ref_first_nonfinite(const float *out, const double *ref, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const double o = out[i], r = ref[i];
        if (isfinite(o))
            continue;
        if (isfinite(r) || isnan(o) != isnan(r) || (isinf(o) && isinf(r) && (o > 0) != (r > 0)))
            return i;
    }
    return -1;
}
