/* tests/test_vecdot.c: the SIMD kernel sets of kernels/cpu (vecdot_avx2.c, vecdot_avx512.c)
 * against the scalar reference of vecdot.c, for every ISA this CPU runs.
 *
 * - Quantized weights (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 *   IQ4_XS) and the activation quantizers (Q8_0, Q8_1, Q8_K):
 *   bit-identical to the scalar set (memcmp of activation rows, equal float bits of dots),
 *   on random data and on edge cases (zeros, huge and tiny values, negative-only blocks,
 *   ties of magnitude, inf).
 * - Float weights (F32, F16, BF16): within 1e-5 of a double-precision dot of the same
 *   (dequantized) values, relative to sum |w*a| (the scale of the rounding error of any
 *   summation order), on odd lengths too; the activation values of every set are equal.
 * - dot4 gives exactly the four dots, on unaligned rows with an odd stride; so does dotw4
 *   (four weight rows against one activation row).
 * Data come from a fixed-seed generator, so every run sees the same inputs. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/vecdot.h"
#include "mlc/quant.h"
#include "rng.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* Same result: equal bits, or both NaN (NaN payloads may depend on operand order). */
static bool same_float(float a, float b)
{
    return tu_f32_bits(a) == tu_f32_bits(b) || (isnan(a) && isnan(b));
}

static const mlc_type QTYPES[] = {MLC_TYPE_Q8_0, MLC_TYPE_Q4_0, MLC_TYPE_Q4_K, MLC_TYPE_Q6_K,
                                  MLC_TYPE_Q5_0, MLC_TYPE_Q4_1, MLC_TYPE_Q5_1, MLC_TYPE_Q2_K,
                                  MLC_TYPE_Q3_K, MLC_TYPE_Q5_K, MLC_TYPE_IQ4_NL, MLC_TYPE_IQ4_XS};
#define N_QTYPES (sizeof QTYPES / sizeof QTYPES[0])
static const mlc_type FTYPES[] = {MLC_TYPE_F32, MLC_TYPE_F16, MLC_TYPE_BF16};

/* The kernel sets this CPU runs, scalar first. */
static int kernel_sets(mlc_cpu_kernels *k, int max)
{
    char isas[64];
    snprintf(isas, sizeof isas, "%s", mlc_cpu_isas_available());
    int n = 0;
    for (char *save = NULL, *t = strtok_r(isas, " ", &save); t && n < max;
         t = strtok_r(NULL, " ", &save)) {
        mlc_err err = {0};
        cr_assert_eq(mlc_cpu_kernels_init(&k[n], t, &err), MLC_OK, "%s: %s", t, err.msg);
        cr_assert_str_eq(k[n].isa, t);
        n++;
    }
    cr_assert_str_eq(k[0].isa, "scalar");
    return n;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    return p;
}

/* Fills x with one of several value patterns (mode), block by block for mode 1. */
static void fill(float *x, int64_t n, int mode, uint64_t *s)
{
    for (int64_t i = 0; i < n; i++) {
        float v = tu_rng_gauss24(s);
        switch (mode) {
        case 0: /* plain gaussian */
            break;
        case 1: /* blocks of 32 that are negative-only, positive-only, or mixed, with scales
                   over many orders of magnitude */
            v = ((i / 32) % 3 == 0) ? -fabsf(v) : ((i / 32) % 3 == 1) ? fabsf(v) : v;
            v *= ldexpf(1.0f, (int)((i / 32) % 17) - 8);
            break;
        case 2: /* small integers: many exact ties of magnitude */
            v = (float)((int)(mlc_rng_next(s) % 9) - 4);
            break;
        case 3: /* a few outliers */
            if (mlc_rng_next(s) % 61 == 0)
                v *= 1000.0f;
            break;
        default:
            break;
        }
        x[i] = v;
    }
}

/* Decodes an activation row of n values of set k for weight type t into floats. */
static void act_values(const mlc_cpu_kernels *k, mlc_type t, const void *a, int64_t n, float *out)
{
    switch (k->act_type[t]) {
    case MLC_TYPE_F32:
        memcpy(out, a, (size_t)n * sizeof(float));
        break;
    case MLC_TYPE_F16:
    case MLC_TYPE_BF16:
        mlc_dequantize_row((mlc_type)k->act_type[t], a, out, n);
        break;
    default:
        cr_assert_fail("activation type %u is not a float type", k->act_type[t]);
    }
}

/* ---- activation quantizers ----------------------------------------------------------- */

/* Activation rows of set i and of the scalar set for the same floats must be equal bytes
 * (float weights: equal values). */
static void check_act(const mlc_cpu_kernels *ks, const mlc_cpu_kernels *kv, mlc_type t,
                      const float *x, int64_t n, const char *what)
{
    const size_t bs = mlc_cpu_act_row_bytes(ks, t, n), bv = mlc_cpu_act_row_bytes(kv, t, n);
    uint8_t *as = xmalloc(bs + 1), *av = xmalloc(bv + 4);
    ks->act[t](x, as, n);
    /* unaligned on purpose: odd for the byte formats, 4 bytes off for the float ones */
    const size_t off = kv->act_type[t] == MLC_TYPE_F32 ? 4 : 1;
    kv->act[t](x, av + off, n);
    if (kv->act_type[t] != MLC_TYPE_F32 && kv->act_type[t] != MLC_TYPE_F16 &&
        kv->act_type[t] != MLC_TYPE_BF16) {
        cr_assert_eq(bs, bv);
        for (size_t i = 0; i < bs; i++)
            cr_assert_eq(as[i], av[off + i], "%s: %s act, %s, n=%lld: byte %zu differs (%u vs scalar %u)",
                         kv->isa, mlc_type_name(t), what, (long long)n, i, av[off + i], as[i]);
    } else {
        float *fs = xmalloc((size_t)n * sizeof(float)), *fv = xmalloc((size_t)n * sizeof(float));
        act_values(ks, t, as, n, fs);
        act_values(kv, t, av + off, n, fv);
        for (int64_t i = 0; i < n; i++)
            cr_assert(tu_f32_bits(fs[i]) == tu_f32_bits(fv[i]),
                      "%s: %s act, %s: value %lld of %a is %a, scalar %a", kv->isa,
                      mlc_type_name(t), what, (long long)i, (double)x[i], (double)fv[i], (double)fs[i]);
        free(fs);
        free(fv);
    }
    free(as);
    free(av);
}

Test(vecdot, act_quantizers_match_scalar)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    const int64_t ns[] = {256, 512, 768, 4096};
    uint64_t seed = 1;
    float *x = xmalloc(4096 * sizeof(float));
    for (int i = 1; i < nk; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            for (int mode = 0; mode < 4; mode++) {
                fill(x, ns[j], mode, &seed);
                check_act(&k[0], &k[i], MLC_TYPE_Q8_0, x, ns[j], "random");
                check_act(&k[0], &k[i], MLC_TYPE_Q4_1, x, ns[j], "random");
                check_act(&k[0], &k[i], MLC_TYPE_Q4_K, x, ns[j], "random");
                check_act(&k[0], &k[i], MLC_TYPE_F16, x, ns[j], "random");
                check_act(&k[0], &k[i], MLC_TYPE_BF16, x, ns[j], "random");
            }
    free(x);
}

/* Values chosen to hit every special path of the quantizers. */
Test(vecdot, act_quantizers_edge_cases)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    enum { N = 1024 };
    float x[N];
    uint64_t seed = 2;
    for (int i = 1; i < nk; i++) {
        for (int c = 0; c < 11; c++) {
            const char *what = "";
            for (int j = 0; j < N; j++) {
                float g = tu_rng_gauss24(&seed);
                switch (c) {
                case 0: what = "all zero"; x[j] = 0; break;
                case 1: what = "signed zeros"; x[j] = (j & 1) ? -0.0f : 0.0f; break;
                case 2: what = "huge"; x[j] = g * 1e38f; break;
                case 3: what = "f16 scale overflow"; x[j] = g * 3e6f; break;
                case 4: what = "tiny (subnormal scales)"; x[j] = g * 1e-40f; break;
                case 5: what = "negative only"; x[j] = -fabsf(g); break;
                case 6: /* equal magnitudes of both signs: the first one decides the sign */
                    what = "magnitude ties";
                    x[j] = (mlc_rng_next(&seed) & 1) ? 2.5f : -2.5f;
                    break;
                case 7: /* halves: x * id lands on .5 often, round to even decides */
                    what = "rounding ties";
                    x[j] = (float)((int)(mlc_rng_next(&seed) % 255) - 127);
                    break;
                case 8: /* one block zero, next ones not, in turn */
                    what = "zero blocks";
                    x[j] = ((j / 32) % 2) ? g : 0.0f;
                    break;
                case 9: what = "infinities"; x[j] = (j % 97 == 5) ? ((j & 2) ? INFINITY : -INFINITY) : g; break;
                case 10: /* quiet NaNs carry their payload into nearest_int: meaningless
                            integers, but the same ones (and the Q8_K clamp at 127 gets
                            used). Not signaling NaNs, which no arithmetic produces: glibc's
                            fmaxf makes them the Q8_0 reference's amax. */
                    what = "NaN payloads";
                    x[j] = g;
                    if (j % 7 == 3) {
                        uint32_t u = 0x7FC00000u | ((uint32_t)mlc_rng_next(&seed) & 0x803FFFFFu);
                        memcpy(&x[j], &u, 4);
                    }
                    break;
                default: break;
                }
            }
            check_act(&k[0], &k[i], MLC_TYPE_Q8_0, x, N, what);
            check_act(&k[0], &k[i], MLC_TYPE_Q4_1, x, N, what);
            check_act(&k[0], &k[i], MLC_TYPE_Q4_K, x, N, what);
            check_act(&k[0], &k[i], MLC_TYPE_F16, x, N, what);
            check_act(&k[0], &k[i], MLC_TYPE_BF16, x, N, what);
        }
    }
}

/* f16 and bf16 rounding of the float-weight activations over many bit patterns: every
 * exponent, random mantissas, NaNs with payloads, and the f16 overflow threshold. */
Test(vecdot, act_float_rounding_bit_patterns)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    enum { N = 1 << 16 };
    float *x = xmalloc(N * sizeof(float));
    uint64_t seed = 3;
    for (int i = 1; i < nk; i++)
        for (int round = 0; round < 8; round++) {
            for (int j = 0; j < N; j++) {
                uint32_t u = (uint32_t)mlc_rng_next(&seed);
                if (round == 0) /* around the f16 limits: 65504 .. 65536, subnormal edge */
                    u = (j & 1 ? 0x477FE000u : 0x33000000u) + (uint32_t)(j >> 1) * 7u;
                memcpy(&x[j], &u, 4);
            }
            x[0] = 65519.996f;
            x[1] = 65520.0f;
            x[2] = -65520.0f;
            x[3] = 0x1p-25f;
            x[4] = 0x1.000002p-25f;
            x[5] = 0x1.8p-24f;
            x[7] = NAN;
            check_act(&k[0], &k[i], MLC_TYPE_F16, x, N - round, "bit patterns");
            check_act(&k[0], &k[i], MLC_TYPE_BF16, x, N - round, "bit patterns");
        }
    free(x);
}

/* ---- dots ---------------------------------------------------------------------------- */

/* Weight rows of one type, 4 activation rows (as set 0, the scalar one, and as set kv
 * writes them), at addresses no vector load would like: odd addresses and an odd stride
 * for the quantized types (byte streams), 4 bytes off 64-byte alignment for the float
 * types (the scalar set reads those through float and uint16_t pointers). */
typedef struct bench {
    mlc_type t;
    int64_t n;
    uint8_t *wbuf, *w;
    uint8_t *abuf_s, *abuf_v, *as, *av; /* 4 rows each */
    size_t astride_s, astride_v;
    float *xw, *xa; /* the floats (weights n, activations 4n) */
} bench;

static void bench_make(bench *b, const mlc_cpu_kernels *ks, const mlc_cpu_kernels *kv, mlc_type t,
                       int64_t n, int wmode, int amode, uint64_t *seed)
{
    b->t = t;
    b->n = n;
    b->xw = xmalloc((size_t)n * sizeof(float));
    b->xa = xmalloc(4 * (size_t)n * sizeof(float));
    fill(b->xw, n, wmode, seed);
    for (int r = 0; r < 4; r++)
        fill(b->xa + r * n, n, amode, seed);
    const bool fl = t == MLC_TYPE_F32 || t == MLC_TYPE_F16 || t == MLC_TYPE_BF16;
    const size_t off = fl ? 4 : 1, pad = fl ? 4 : 3;
    const size_t wbytes = mlc_type_row_bytes(t, n);
    cr_assert(wbytes > 0);
    b->wbuf = xmalloc(wbytes + off);
    b->w = b->wbuf + off;
    mlc_quantize_row(t, b->xw, b->w, n);
    b->astride_s = mlc_cpu_act_row_bytes(ks, t, n) + pad;
    b->astride_v = mlc_cpu_act_row_bytes(kv, t, n) + pad;
    b->abuf_s = xmalloc(4 * b->astride_s + off);
    b->abuf_v = xmalloc(4 * b->astride_v + off);
    b->as = b->abuf_s + off;
    b->av = b->abuf_v + off;
    for (int r = 0; r < 4; r++) {
        ks->act[t](b->xa + r * n, b->as + r * b->astride_s, n);
        kv->act[t](b->xa + r * n, b->av + r * b->astride_v, n);
    }
}

static void bench_free(bench *b)
{
    free(b->xw);
    free(b->xa);
    free(b->wbuf);
    free(b->abuf_s);
    free(b->abuf_v);
}

/* dot4 of set kv equals its four dots exactly. */
static void check_dot4(const mlc_cpu_kernels *kv, const bench *b, const char *what)
{
    if (!kv->dot4[b->t])
        return;
    float o[4];
    kv->dot4[b->t](b->n, b->w, b->av, b->astride_v, o);
    for (int r = 0; r < 4; r++) {
        float d = kv->dot[b->t](b->n, b->w, b->av + r * b->astride_v);
        cr_assert(same_float(o[r], d), "%s: %s dot4 row %d, %s, n=%lld: %a, dot gives %a", kv->isa,
                  mlc_type_name(b->t), r, what, (long long)b->n, (double)o[r], (double)d);
    }
}

/* dotw4 of set kv equals its four dots exactly: four weight rows (the four activation
 * rows' floats as weights, at an odd address and stride) against one activation row
 * (the weight row's floats). */
static void check_dotw4(const mlc_cpu_kernels *kv, const bench *b, const char *what)
{
    if (!kv->dotw4[b->t])
        return;
    const mlc_type t = b->t;
    const int64_t n = b->n;
    const bool fl = t == MLC_TYPE_F32 || t == MLC_TYPE_F16 || t == MLC_TYPE_BF16;
    const size_t off = fl ? 4 : 1, pad = fl ? 4 : 3;
    const size_t ws = mlc_type_row_bytes(t, n) + pad;
    uint8_t *wbuf = xmalloc(4 * ws + off), *w = wbuf + off;
    for (int r = 0; r < 4; r++)
        mlc_quantize_row(t, b->xa + r * n, w + r * ws, n);
    uint8_t *abuf = xmalloc(mlc_cpu_act_row_bytes(kv, t, n) + off), *a = abuf + off;
    kv->act[t](b->xw, a, n);
    float o[4];
    kv->dotw4[t](n, w, ws, a, o);
    for (int r = 0; r < 4; r++) {
        float d = kv->dot[t](n, w + r * ws, a);
        cr_assert(same_float(o[r], d), "%s: %s dotw4 row %d, %s, n=%lld: %a, dot gives %a", kv->isa,
                  mlc_type_name(t), r, what, (long long)n, (double)o[r], (double)d);
    }
    free(wbuf);
    free(abuf);
}

/* Quantized weights: every dot of set kv bit-identical to the scalar set's. */
static void check_quant(const mlc_cpu_kernels *ks, const mlc_cpu_kernels *kv, mlc_type t, int64_t n,
                        int wmode, int amode, uint64_t *seed, const char *what)
{
    bench b;
    bench_make(&b, ks, kv, t, n, wmode, amode, seed);
    for (int r = 0; r < 4; r++) {
        cr_assert_eq(memcmp(b.as + r * b.astride_s, b.av + r * b.astride_v,
                            mlc_cpu_act_row_bytes(ks, t, n)), 0,
                     "%s: %s activations differ from scalar", kv->isa, mlc_type_name(t));
        float want = ks->dot[t](n, b.w, b.as + r * b.astride_s);
        float got = kv->dot[t](n, b.w, b.av + r * b.astride_v);
        cr_assert(same_float(got, want), "%s: %s dot, %s, n=%lld, row %d: %a, scalar %a (%.9g vs %.9g)",
                  kv->isa, mlc_type_name(t), what, (long long)n, r, (double)got, (double)want,
                  (double)got, (double)want);
    }
    check_dot4(kv, &b, what);
    check_dotw4(kv, &b, what);
    bench_free(&b);
}

Test(vecdot, quantized_bit_identical_to_scalar)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    uint64_t seed = 4;
    /* Q8_0/Q4_0: every tail length of the 4- and 8-block groups, and long rows */
    const int64_t n32[] = {32, 64, 96, 128, 160, 192, 224, 256, 416, 512, 768, 4096};
    const int64_t n256[] = {256, 512, 768, 4096};
    for (int i = 0; i < nk; i++)
        for (size_t ti = 0; ti < sizeof QTYPES / sizeof QTYPES[0]; ti++) {
            const mlc_type t = QTYPES[ti];
            const bool k_quant = mlc_type_block_size(t) == MLC_QK_K;
            const int64_t *ns = k_quant ? n256 : n32;
            const size_t nn = k_quant ? sizeof n256 / sizeof n256[0] : sizeof n32 / sizeof n32[0];
            for (size_t j = 0; j < nn; j++)
                for (int wm = 0; wm < 4; wm++)
                    check_quant(&k[0], &k[i], t, ns[j], wm, (wm + 1) % 4, &seed, "random");
        }
}

Test(vecdot, quantized_edge_cases)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    uint64_t seed = 5;
    enum { N = 768 };
    for (int i = 0; i < nk; i++)
        for (size_t ti = 0; ti < sizeof QTYPES / sizeof QTYPES[0]; ti++) {
            const mlc_type t = QTYPES[ti];
            for (int c = 0; c < 6; c++) {
                bench b;
                bench_make(&b, &k[0], &k[i], t, N, 0, 0, &seed);
                const char *what = "";
                for (int j = 0; j < N; j++) {
                    switch (c) {
                    case 0: what = "zero activations"; b.xa[j] = 0; break;
                    case 1: what = "huge activations"; b.xa[j] *= 1e30f; break;
                    case 2: what = "negative-only blocks"; b.xa[j] = -fabsf(b.xa[j]); b.xw[j] = -fabsf(b.xw[j]); break;
                    case 3: what = "zero weights"; b.xw[j] = 0; break;
                    case 4: what = "huge weights"; b.xw[j] *= 1e4f; b.xa[j] *= 1e20f; break;
                    case 5: what = "activation infinities"; if (j % 101 == 7) b.xa[j] = INFINITY; break;
                    default: break;
                    }
                }
                mlc_quantize_row(t, b.xw, b.w, N);
                k[0].act[t](b.xa, b.as, N);
                k[i].act[t](b.xa, b.av, N);
                cr_assert_eq(memcmp(b.as, b.av, mlc_cpu_act_row_bytes(&k[0], t, N)), 0,
                             "%s: %s activations (%s) differ from scalar", k[i].isa, mlc_type_name(t), what);
                float want = k[0].dot[t](N, b.w, b.as), got = k[i].dot[t](N, b.w, b.av);
                cr_assert(same_float(got, want), "%s: %s dot, %s: %a, scalar %a", k[i].isa,
                          mlc_type_name(t), what, (double)got, (double)want);
                bench_free(&b);
            }
        }
}

/* Extreme weight blocks written by hand: Q8_0 values -128 and 127 (ggml never writes -128,
 * other writers may), Q4_K/Q6_K with every scale and min at its largest, every 5-bit level
 * at 31 (Q5_0 value 15, Q5_1 31). */
Test(vecdot, quantized_extreme_blocks)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    uint64_t seed = 6;
    enum { N = 512 };
    float x[N];
    for (int j = 0; j < N; j++)
        x[j] = (j & 1) ? 127.0f : -127.0f;
    for (size_t ti = 0; ti < sizeof QTYPES / sizeof QTYPES[0]; ti++) {
        const mlc_type t = QTYPES[ti];
        const size_t wb = mlc_type_row_bytes(t, N);
        uint8_t *w = xmalloc(wb), *as = xmalloc(mlc_cpu_act_row_bytes(&k[0], t, N));
        for (int c = 0; c < 3; c++) {
            for (size_t j = 0; j < wb; j++)
                w[j] = c == 0 ? 0xFF : c == 1 ? 0x80 : (uint8_t)mlc_rng_next(&seed);
            /* keep the f16 scales finite and moderate */
            const size_t bb = mlc_type_block_bytes(t);
            for (size_t o = 0; o < wb; o += bb) {
                const uint16_t one = 0x3C00;
                size_t f16_at[2] = {0, 0}; /* offsets of the block's f16 scales */
                int nf = 1;
                switch (t) {
                case MLC_TYPE_Q6_K: f16_at[0] = 208; break;
                case MLC_TYPE_Q3_K: f16_at[0] = 108; break;
                case MLC_TYPE_Q2_K: f16_at[0] = 80, f16_at[1] = 82, nf = 2; break;
                case MLC_TYPE_Q4_K: case MLC_TYPE_Q5_K: case MLC_TYPE_Q4_1: case MLC_TYPE_Q5_1:
                    f16_at[1] = 2, nf = 2;
                    break;
                default: break;
                }
                for (int f = 0; f < nf; f++)
                    memcpy(w + o + f16_at[f], &one, 2);
            }
            k[0].act[t](x, as, N);
            const float want = k[0].dot[t](N, w, as);
            for (int i = 1; i < nk; i++) {
                uint8_t *av = xmalloc(mlc_cpu_act_row_bytes(&k[i], t, N));
                k[i].act[t](x, av, N);
                const float got = k[i].dot[t](N, w, av);
                cr_assert(same_float(got, want), "%s: %s extreme block %d: %a, scalar %a", k[i].isa,
                          mlc_type_name(t), c, (double)got, (double)want);
                free(av);
            }
        }
        free(w);
        free(as);
    }
}

/* dot44 of set kv (float types): 4 weight rows (the activation floats, odd stride) against
 * the 4 activation rows, each result within 1e-5 of sum |w a| of the double product. */
static void check_dot44(const mlc_cpu_kernels *kv, const bench *b)
{
    const mlc_type t = b->t;
    if (!kv->dot44[t])
        return;
    const int64_t n = b->n;
    const size_t ws = mlc_type_row_bytes(t, n) + 4;
    uint8_t *wbuf = xmalloc(4 * ws + 4), *w = wbuf + 4;
    float *wv = xmalloc((size_t)n * sizeof(float)), *av = xmalloc((size_t)n * sizeof(float));
    for (int r = 0; r < 4; r++)
        mlc_quantize_row(t, b->xa + r * n, w + r * ws, n);
    float o[16];
    kv->dot44[t](n, w, ws, b->av, b->astride_v, o);
    for (int c = 0; c < 4; c++) {
        act_values(kv, t, b->av + c * b->astride_v, n, av);
        for (int r = 0; r < 4; r++) {
            mlc_dequantize_row(t, w + r * ws, wv, n);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)wv[i] * (double)av[i];
                mag += fabs((double)wv[i] * (double)av[i]);
            }
            const double err = fabs((double)o[4 * c + r] - ref);
            cr_assert(err <= 1e-5 * mag + 1e-30, "%s: %s dot44 w%d a%d, n=%lld: %.9g, double %.9g",
                      kv->isa, mlc_type_name(t), r, c, (long long)n, (double)o[4 * c + r], ref);
        }
    }
    free(wbuf);
    free(wv);
    free(av);
}

/* Float weights: close to the double dot of the values the kernels see. */
static void check_float(const mlc_cpu_kernels *ks, const mlc_cpu_kernels *kv, mlc_type t, int64_t n,
                        int mode, uint64_t *seed)
{
    bench b;
    bench_make(&b, ks, kv, t, n, mode, mode, seed);
    float *wv = xmalloc((size_t)n * sizeof(float)), *av = xmalloc((size_t)n * sizeof(float));
    mlc_dequantize_row(t, b.w, wv, n);
    for (int r = 0; r < 4; r++) {
        act_values(kv, t, b.av + r * b.astride_v, n, av);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)wv[i] * (double)av[i];
            mag += fabs((double)wv[i] * (double)av[i]);
        }
        const float got = kv->dot[t](n, b.w, b.av + r * b.astride_v);
        const double err = fabs((double)got - ref);
        cr_assert(err <= 1e-5 * mag + 1e-30, "%s: %s dot, n=%lld, row %d: %.9g, double %.9g (err %.3g, sum|wa| %.3g)",
                  kv->isa, mlc_type_name(t), (long long)n, r, (double)got, ref, err, mag);
    }
    check_dot4(kv, &b, "random");
    check_dotw4(kv, &b, "random");
    check_dot44(kv, &b);
    free(wv);
    free(av);
    bench_free(&b);
}

Test(vecdot, float_types_close_to_double)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    uint64_t seed = 7;
    const int64_t ns[] = {1, 7, 8, 15, 16, 17, 33, 100, 127, 256, 512, 768, 1000, 4096};
    for (int i = 0; i < nk; i++)
        for (size_t ti = 0; ti < sizeof FTYPES / sizeof FTYPES[0]; ti++)
            for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
                for (int mode = 0; mode < 4; mode++)
                    check_float(&k[0], &k[i], FTYPES[ti], ns[j], mode, &seed);
}

/* A dot of positive values only has no cancellation: plain relative error holds too. */
Test(vecdot, float_types_relative_error)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    uint64_t seed = 8;
    enum { N = 4096 };
    float *x = xmalloc(2 * N * sizeof(float));
    for (int i = 0; i < nk; i++)
        for (size_t ti = 0; ti < sizeof FTYPES / sizeof FTYPES[0]; ti++) {
            const mlc_type t = FTYPES[ti];
            for (int j = 0; j < 2 * N; j++)
                x[j] = tu_rng_unit24(&seed) + 0.01f;
            uint8_t *w = xmalloc(mlc_type_row_bytes(t, N)), *a = xmalloc(mlc_cpu_act_row_bytes(&k[i], t, N));
            float *wv = xmalloc(N * sizeof(float)), *av = xmalloc(N * sizeof(float));
            mlc_quantize_row(t, x, w, N);
            k[i].act[t](x + N, a, N);
            mlc_dequantize_row(t, w, wv, N);
            act_values(&k[i], t, a, N, av);
            double ref = 0;
            for (int j = 0; j < N; j++)
                ref += (double)wv[j] * (double)av[j];
            const float got = k[i].dot[t](N, w, a);
            cr_assert(fabs((double)got - ref) < 1e-5 * fabs(ref), "%s: %s: %.9g vs %.9g", k[i].isa,
                      mlc_type_name(t), (double)got, ref);
            free(w);
            free(a);
            free(wv);
            free(av);
        }
    free(x);
}

/* Every type has a dot and a dot4 in the SIMD sets, and the activation row sizes agree
 * with the activation types. */
Test(vecdot, sets_are_complete)
{
    mlc_cpu_kernels k[3];
    const int nk = kernel_sets(k, 3);
    for (int i = 1; i < nk; i++) {
        for (size_t ti = 0; ti < N_QTYPES; ti++) {
            cr_assert_not_null(k[i].dot[QTYPES[ti]]);
            cr_assert_not_null(k[i].dot4[QTYPES[ti]]);
            cr_assert_eq(k[i].act_type[QTYPES[ti]], k[0].act_type[QTYPES[ti]]);
        }
        for (size_t ti = 0; ti < 3; ti++) {
            cr_assert_not_null(k[i].dot[FTYPES[ti]]);
            cr_assert_not_null(k[i].dot4[FTYPES[ti]]);
            cr_assert_eq(mlc_cpu_act_row_bytes(&k[i], FTYPES[ti], 100),
                         mlc_type_row_bytes(k[i].act_type[FTYPES[ti]], 100));
        }
    }
}
