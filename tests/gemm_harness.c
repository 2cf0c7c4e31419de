/* tests/gemm_harness.c: the data of one prefill tile case (see gemm_harness.h). */
#include "gemm_harness.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "mlc/quant.h"
#include "rng.h"
#include "util.h"

/* One value; uniform: 53 bits / 2^52 - 1, in [-1, 1). */
static float draw(gh_dist dist, uint64_t *s)
{
    if (dist == GH_UNIFORM_SPREAD)
        return (float)((double)(mlc_rng_next(s) >> 11) / 4503599627370496.0 - 1.0);
    return tu_rng_gauss(s);
}

static void fill(float *x, int64_t n, gh_dist dist, bool weights, uint64_t *s)
{
    const bool spread = weights && dist != GH_GAUSS;
    for (int64_t i = 0; i < n; i++) {
        float v = draw(dist, s);
        if (spread && (i / 32) % 3 == 2)
            v *= ldexpf(1.0f, (int)((i / 32) % 13) - 6);
        x[i] = v;
    }
}

void gh_case_init(gh_case *c, const mlc_cpu_kernels *k, mlc_type t, gh_shape sh, gh_dist dist,
                  uint64_t seed)
{
    c->sh = sh;
    c->w_row = mlc_type_row_bytes(t, sh.n_in);
    c->a_row = mlc_cpu_act_row_bytes(k, t, sh.n_in);
    c->wf = malloc(sizeof(float) * (size_t)(sh.n_in * sh.n_out));
    c->xf = malloc(sizeof(float) * (size_t)(sh.n_in * sh.n));
    c->w = malloc(c->w_row * (size_t)sh.n_out);
    c->a = malloc(c->a_row * (size_t)sh.n);
    c->y = malloc(sizeof(float) * (size_t)(sh.n * sh.n_out));
    cr_assert(c->wf && c->xf && c->w && c->a && c->y);
    uint64_t s = seed;
    fill(c->wf, sh.n_in * sh.n_out, dist, true, &s);
    fill(c->xf, sh.n_in * sh.n, dist, false, &s);
    for (int64_t r = 0; r < sh.n_out; r++) {
        mlc_quantize_row(t, c->wf + r * sh.n_in, c->w + (size_t)r * c->w_row, sh.n_in);
        mlc_dequantize_row(t, c->w + (size_t)r * c->w_row, c->wf + r * sh.n_in, sh.n_in);
    }
    for (int64_t i = 0; i < sh.n; i++)
        k->act[t](c->xf + i * sh.n_in, c->a + (size_t)i * c->a_row, sh.n_in);
    for (int64_t i = 0; i < sh.n * sh.n_out; i++)
        c->y[i] = NAN;
}

void gh_case_free(gh_case *c)
{
    free(c->wf);
    free(c->xf);
    free(c->w);
    free(c->a);
    free(c->y);
}
