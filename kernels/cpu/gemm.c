/* gemm.c: the prefill matmul's dispatch and threading (see gemm.h). */
#include "gemm.h"
#include "gemm_float.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16 /* weight rows per panel */
#define TILE_T 8 /* activation rows per tile call */

typedef struct gemm_job {
    const mlc_gemm_kernel *kern;
    const uint8_t *w;
    size_t w_row;
    int64_t n_in, n_out, n;
    const uint8_t *a;
    size_t a_row;
    uint8_t *aux;    /* [n] rows of aux_row bytes */
    size_t aux_row;
    uint8_t *panels; /* [nth] panels of panel_bytes, 64-byte aligned */
    size_t panel_bytes;
    float *y;
} gemm_job;

const mlc_gemm_kernel *mlc_cpu_gemm_kernel(const mlc_cpu_kernels *k, uint32_t type)
{
    if (!strcmp(k->isa, "avx512"))
        return mlc_cpu_gemm_avx512(type);
    if (!strcmp(k->isa, "avx2"))
        return mlc_cpu_gemm_avx2(type);
    return NULL;
}

size_t mlc_gemm_q8_aux_bytes(int64_t n_in)
{
    return (size_t)(n_in / 32) * 8;
}

void mlc_gemm_q8_prep(const uint8_t *a, int64_t n_in, uint8_t *aux)
{
    for (int64_t b = 0; b < n_in / 32; b++, a += 34, aux += 8) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++)
            s += (int8_t)a[2 + j];
        s *= -128;
        uint16_t h;
        memcpy(&h, a, 2);
        const float d = mlc_fp16_to_fp32(h);
        memcpy(aux, &s, 4);
        memcpy(aux + 4, &d, 4);
    }
}

/* [begin, end) of n items for thread ith of nth. */
static void share(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    const int64_t per = (n + nth - 1) / nth;
    *begin = per * ith < n ? per * ith : n;
    *end = *begin + per < n ? *begin + per : n;
}

static void gemm_prep(void *arg, int ith, int nth)
{
    gemm_job *j = arg;
    int64_t b, e;
    share(j->n, ith, nth, &b, &e);
    for (int64_t t = b; t < e; t++)
        j->kern->prep(j->a + (size_t)t * j->a_row, j->n_in, j->aux + (size_t)t * j->aux_row);
}

/* Asks for the next panel's weight rows into L2 while the tiles run on this one: the
 * packer reads 16 rows at once, and waiting for each of their lines in turn cost it about
 * as much as the tiles. */
static void prefetch_rows(const uint8_t *w, size_t w_row, int rows)
{
    const uint8_t *end = w + (size_t)rows * w_row;
    for (const uint8_t *p = w; p < end; p += 64)
        __builtin_prefetch(p, 0, 2);
}

/* Thread ith packs each of its panels once, then runs every activation row past it. */
static void gemm_run(void *arg, int ith, int nth)
{
    gemm_job *j = arg;
    uint8_t *panel = j->panels + (size_t)ith * j->panel_bytes;
    int64_t pb, pe;
    share((j->n_out + LANES - 1) / LANES, ith, nth, &pb, &pe);
    for (int64_t p = pb; p < pe; p++) {
        const int64_t r0 = p * LANES;
        const int rows = (int)(j->n_out - r0 < LANES ? j->n_out - r0 : LANES);
        j->kern->pack(j->w + (size_t)r0 * j->w_row, j->w_row, rows, j->n_in, panel);
        if (p + 1 < pe)
            prefetch_rows(j->w + (size_t)(r0 + LANES) * j->w_row, j->w_row,
                          (int)(j->n_out - r0 - LANES < LANES ? j->n_out - r0 - LANES : LANES));
        for (int64_t t = 0; t < j->n; t += TILE_T) {
            const int nt = (int)(j->n - t < TILE_T ? j->n - t : TILE_T);
            j->kern->tile(panel, j->n_in, j->a + (size_t)t * j->a_row, j->a_row,
                          j->aux ? j->aux + (size_t)t * j->aux_row : NULL, j->aux_row, nt,
                          j->y + t * j->n_out + r0, (size_t)j->n_out, rows);
        }
    }
}

bool mlc_cpu_gemm(mlc_pool *pool, const mlc_cpu_kernels *k, uint32_t type, const uint8_t *w, size_t w_row,
                  int64_t n_in, int64_t n_out, const uint8_t *a, size_t a_row, int64_t n, float *y)
{
    /* Float weights: the f32 register tiles of gemm_float.c. */
    if (mlc_cpu_gemm_float_has(k, type))
        return n >= MLC_CPU_GEMM_FLOAT_MIN_ROWS &&
               mlc_cpu_gemm_float(pool, k, type, w, w_row, n_in, n_out, a, a_row, n, y);
    const mlc_gemm_kernel *kern = mlc_cpu_gemm_kernel(k, type);
    /* The packers gather 16 rows by int32 byte offsets. */
    if (!kern || n <= 0 || n_out <= 0 || w_row > (size_t)INT32_MAX / LANES)
        return false;
    const int nth = mlc_pool_size(pool);
    gemm_job j = {.kern = kern, .w = w, .w_row = w_row, .n_in = n_in, .n_out = n_out, .n = n, .a = a,
                  .a_row = a_row, .y = y};
    j.panel_bytes = (kern->panel_bytes(n_in) + 63) & ~(size_t)63;
    j.aux_row = kern->aux_bytes ? (kern->aux_bytes(n_in) + 63) & ~(size_t)63 : 0;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, j.panel_bytes * (size_t)nth + j.aux_row * (size_t)n) != 0)
        return false;
    j.panels = mem;
    if (kern->prep) {
        j.aux = j.panels + j.panel_bytes * (size_t)nth;
        mlc_pool_run(pool, gemm_prep, &j);
    }
    mlc_pool_run(pool, gemm_run, &j);
    free(mem);
    return true;
}
