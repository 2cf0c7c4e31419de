/* test_cuda.c: the cuda backend (the .cu files of kernels/cuda, nvcc) and the hip backend (the same
 * sources through hipcc): on a machine with a device, the full conformance suite and the
 * golden models against the reference CPU; everywhere, the one-line errors of a machine
 * without a driver or device (what CI, which has no GPU, can check).
 *
 * Without a CUDA device the device tests skip, unless MLC_REQUIRE_CUDA=1 (a GPU runner sets
 * it), where a missing device fails them; MLC_REQUIRE_HIP=1 likewise for hip. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../conformance/model_conformance.h"
#include "../conformance/tolerance.h"
#include "../kernels/ref/ref.h"
#include "../kernels/cpu/vecdot.h"
#include "backend.h"
#include "mlc/backend_info.h"
#include "mlc/quant.h"
#include "mlc/sampler.h"
#include "util.h"

/* Skips the test when the build lacks backend name (or, with device, when it has no device);
 * under MLC_REQUIRE_<NAME>=1 fails it instead. */
static void need(const char *name, bool device)
{
    const int b = mlc_backend_find(name);
    if (mlc_backend_built(b) && (!device || mlc_backend_device_count(b) > 0))
        return;
    char var[64];
    snprintf(var, sizeof var, "MLC_REQUIRE_%s", strcmp(name, "cuda") ? "HIP" : "CUDA");
    const char *req = getenv(var);
    if (req && !strcmp(req, "1"))
        cr_assert_fail("no %s device (%s %s), and %s=1", name, name, mlc_backend_built(b) ? "built" : "not built", var);
    cr_skip_test("no %s device%s (set %s=1 to fail instead)", name, mlc_backend_built(b) ? "" : " (not built)", var);
}

/* Skips the test when backend name is not built or has a device (the no-device tests). */
static void need_no_device(const char *name)
{
    const int b = mlc_backend_find(name);
    if (!mlc_backend_built(b))
        cr_skip_test("%s is not built into this binary", name);
    if (mlc_backend_device_count(b) > 0)
        cr_skip_test("this machine has a %s device", name);
}

/* ---- on a device ------------------------------------------------------------------------ */

/* supports() says yes to get_rows and matmul of every type the CPU backend computes. */
static void supports_cpu_types(const char *name)
{
    need(name, true);
    mlc_backend b;
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open(name, NULL, &b, &err), MLC_OK, "%s", err.msg);
    const int64_t shape[4] = {512, 8, 1, 1};
    int n = 0;
    for (uint32_t t = 0; t < MLC_TYPE_COUNT; t++) {
        if (!mlc_type_supported(t))
            continue;
        n++;
        cr_expect(b.vt->supports(b.ctx, MLC_OP_MATMUL, t, shape), "matmul %s", mlc_type_name(t));
        cr_expect(b.vt->supports(b.ctx, MLC_OP_GET_ROWS, t, shape), "get_rows %s", mlc_type_name(t));
    }
    cr_expect_eq(n, 15);
    mlc_backend_close(&b);
}

Test(cuda, supports_cpu_types) { supports_cpu_types("cuda"); }
Test(hip, supports_cpu_types) { supports_cpu_types("hip"); }

/* Every op, type and shape of the full suite passes; none is declined. */
static void conformance_full(const char *name)
{
    need(name, true);
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "%s conformance --backend %s --device 0 --full --no-store -o json 2>&1", tu_bin(), name);
    cr_assert_eq(tu_run(cmd, &out), 0, "%.2000s", out);
    cJSON *root = cJSON_Parse(strchr(out, '{'));
    cr_assert(root, "not JSON: %.400s", out);
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "devices"), 0);
    cr_assert_not_null(d);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d, "backend")), name);
    const int cases = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "cases"));
    cr_expect_gt(cases, 500);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "unsupported")), 0);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "passed")), cases);
    cJSON_Delete(root);
    free(out);
}

Test(cuda, conformance_full, .timeout = 900) { conformance_full("cuda"); }
Test(hip, conformance_full, .timeout = 900) { conformance_full("hip"); }

/* The golden models on the device against the reference CPU on the same tokens (logits NMSE,
 * argmax agreement, perplexity and greedy tokens within model_conformance's thresholds). */
static void model_level_golden(const char *name)
{
    static const char *const golden[] = {"tiny-llama-f16.gguf", "tiny-llama-q8_0.gguf", "tiny-llama-q4_0.gguf",
                                         "tiny-llama-q4_k_m.gguf"};
    need(name, true);
    char text_path[1024];
    tu_require_shared(text_path, sizeof text_path, "golden/text.txt");
    size_t len;
    char *text = tu_read_file(text_path, &len);
    cr_assert_not_null(text);
    for (int i = 0; i < 4; i++) {
        char path[1024], rel[256];
        snprintf(rel, sizeof rel, "golden/%s", golden[i]);
        tu_require_shared(path, sizeof path, rel);
        mlc_conf_model_params p = {.path = path, .ref_threads = 2, .text = text, .text_len = len,
                                   .n_tokens = 128, .n_greedy = 32, .target = {.backend = name}};
        mlc_conf_model_result r;
        mlc_err err = {0};
        cr_assert_eq(mlc_conf_model_run(&p, &r, &err), MLC_OK, "%s: %s", golden[i], err.msg);
        cr_log_info("%s on %s: logits NMSE max %g, argmax %.1f%%, ppl rel %g, greedy %d/%d", golden[i], name,
                    r.logits_nmse_max, 100 * r.top1_agree, r.ppl_rel, r.greedy_match, r.n_greedy);
        cr_expect(r.pass, "%s: %s", golden[i], r.error);
    }
    free(text);
}

Test(cuda, model_level_golden, .timeout = 600) { model_level_golden("cuda"); }
Test(hip, model_level_golden, .timeout = 600) { model_level_golden("hip"); }

/* ---- without a device (this is what CI checks) ------------------------------------------ */

/* The kernels' dequantization (kernels/cuda/cuda_quant.cuh, compiled for the host too) of
 * every weight type agrees with the engine's on quantized random rows: a wrong block layout
 * shows up here, without a GPU. Weak: NULL when the backend is not built into the tests. */
bool mlc_cuda_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n) __attribute__((weak));
bool mlc_hip_host_dequantize_row(uint32_t type, const void *row, float *out, int64_t n) __attribute__((weak));

static void dequantize_like_engine(const char *name, bool (*deq)(uint32_t, const void *, float *, int64_t))
{
    if (!deq)
        cr_skip_test("%s is not built into the tests", name);
    enum { N = 1024 };
    static float src[N], want[N], got[N];
    static uint8_t q[N * 4];
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        src[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 8.0f : 1.0f);
    }
    int n_types = 0;
    for (uint32_t t = 0; t < MLC_TYPE_COUNT; t++) {
        if (!mlc_type_supported(t))
            continue;
        n_types++;
        mlc_quantize_row((mlc_type)t, src, q, N);
        mlc_dequantize_row((mlc_type)t, q, want, N);
        cr_assert(deq(t, q, got, N), "%s: no kernels for %s", name, mlc_type_name(t));
        float amax = 0;
        for (int i = 0; i < N; i++)
            amax = fabsf(want[i]) > amax ? fabsf(want[i]) : amax;
        int bad = 0;
        for (int i = 0; i < N && bad < 3; i++)
            if (!(fabsf(got[i] - want[i]) <= 1e-6f * amax)) {
                bad++;
                cr_expect_fail("%s %s: value %d is %g, the engine's %g", name, mlc_type_name(t), i, (double)got[i],
                               (double)want[i]);
            }
    }
    cr_expect_eq(n_types, 15);
}

Test(cuda_errors, dequantize_like_engine) { dequantize_like_engine("cuda", mlc_cuda_host_dequantize_row); }
Test(hip_errors, dequantize_like_engine) { dequantize_like_engine("hip", mlc_hip_host_dequantize_row); }

/* The int8 decode path (kernels/cuda/cuda_q8.cuh, compiled for the host too) of each type it
 * takes, on a row of random weights and activations: the quantized activations are the CPU
 * scalar quantizer's value for value, and the dot, the kernel's block terms (each lane's
 * integer part in turn, then the block's float expression) summed in block order, is the
 * CPU scalar dot bit for bit. On the device only the order of summing block terms differs.
 * The activations hold 32 zeros (a Q8_0 block), a block whose largest magnitude comes twice with
 * opposite signs (Q8_K takes the first) and values 8 times larger every 7th. */
typedef bool (*q8_dot_fn)(uint32_t, const void *, const float *, int64_t, float *, int8_t *, float *, int *);
bool mlc_cuda_host_q8_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out, int8_t *qs,
                              float *d, int *s32) __attribute__((weak));
bool mlc_hip_host_q8_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out, int8_t *qs,
                             float *d, int *s32) __attribute__((weak));

enum { Q8N = 1024 };

/* The CPU's activations of x for weights of type t against the host int8 path's qs, d, s32. */
static void expect_act_like_cpu(const char *name, uint32_t t, const mlc_cpu_kernels *k, const uint8_t *a,
                                const int8_t *qs, const float *d, const int *s32)
{
    const bool kq = k->act_type[t] == MLC_TYPE_Q8_K;
    const int bs = kq ? MLC_QK_K : 32, bb = kq ? MLC_Q8_K_BYTES : 34, q0 = kq ? 4 : 2;
    int bad = 0;
    for (int ib = 0; ib < Q8N / bs && bad < 3; ib++) {
        const uint8_t *b = a + (size_t)ib * bb;
        float want_d;
        if (kq) {
            memcpy(&want_d, b, 4);
        } else {
            want_d = mlc_fp16_to_fp32((uint16_t)(b[0] | b[1] << 8));
        }
        if (memcmp(&want_d, &d[ib], 4) || memcmp(b + q0, qs + ib * bs, (size_t)bs)) {
            bad++;
            cr_expect_fail("%s %s: activation block %d (scale %g, the CPU's %g) differs", name, mlc_type_name(t), ib,
                           (double)d[ib], (double)want_d);
        }
        for (int g = 0; kq && g < 8; g++) {
            int16_t bs2[2];
            memcpy(bs2, b + 4 + MLC_QK_K + 4 * g, 4);
            cr_expect_eq(s32[ib * 8 + g], bs2[0] + bs2[1], "%s %s: sum %d of block %d", name, mlc_type_name(t), g,
                         ib);
        }
    }
}

static void q8_dot_like_cpu(const char *name, q8_dot_fn dot)
{
    if (!dot)
        cr_skip_test("%s is not built into the tests", name);
    static float src[Q8N], x[Q8N], d[Q8N / 32];
    static uint8_t w[Q8N * 4], a[Q8N * 2];
    static int8_t qs[Q8N] __attribute__((aligned(16)));
    static int s32[Q8N / 32];
    uint32_t seed = 777;
    for (int i = 0; i < Q8N; i++) {
        seed = seed * 1664525u + 1013904223u;
        src[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (i % 5 == 0 ? 4.0f : 1.0f);
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 8.0f : 1.0f);
    }
    for (int i = 256; i < 512; i++)
        x[i] = i < 288 ? 0.0f : x[i] * 0.5f;
    x[300] = -7.5f;
    x[400] = 7.5f;
    mlc_cpu_kernels k;
    mlc_cpu_kernels_scalar(&k);
    const uint32_t types[] = {MLC_TYPE_Q8_0, MLC_TYPE_Q4_0, MLC_TYPE_Q5_0, MLC_TYPE_Q4_K, MLC_TYPE_Q5_K, MLC_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const uint32_t t = types[i];
        mlc_quantize_row((mlc_type)t, src, w, Q8N);
        k.act[t](x, a, Q8N);
        const float want = k.dot[t](Q8N, w, a);
        float got = NAN;
        cr_assert(dot(t, w, x, Q8N, &got, qs, d, s32), "%s: no int8 path for %s", name, mlc_type_name(t));
        expect_act_like_cpu(name, t, &k, a, qs, d, s32);
        cr_expect(!memcmp(&got, &want, sizeof got), "%s %s: int8 dot %.9g, the CPU's %.9g", name, mlc_type_name(t),
                  (double)got, (double)want);
    }
    float got;
    cr_expect(!dot(MLC_TYPE_Q2_K, w, x, Q8N, &got, qs, d, s32), "%s: Q2_K takes the f32 path", name);
}

Test(cuda_errors, q8_dot_like_cpu) { q8_dot_like_cpu("cuda", mlc_cuda_host_q8_dot_row); }
Test(hip_errors, q8_dot_like_cpu) { q8_dot_like_cpu("hip", mlc_hip_host_q8_dot_row); }

/* The tensor-core prefill matmul's numerics (kernels/cuda/cuda_matmul.cu, compiled for the
 * host: weights dequantized by the kernels' function and rounded to half, activations rounded
 * to half, fp32 sums) hold the conformance matmul thresholds for the 14 types it takes, on
 * conformance's data (rows of Gaussian weights, each with its own scale; Gaussian activations),
 * pooled over 64 rows x 16 tokens of 768 inputs as the thresholds were measured. The bound
 * 1e-6 is 10x the worst measured, 1.0e-7; F32 weights are not taken. */
bool mlc_cuda_host_mma_dot_row(uint32_t type, const void *w, const float *x, int64_t n, float *out)
    __attribute__((weak));

Test(cuda_errors, mma_scheme_within_thresholds)
{
    if (!mlc_cuda_host_mma_dot_row)
        cr_skip_test("cuda is not built into the tests");
    enum { NI = 768, NO = 64, NT = 16 };
    static float row[NI], x[NT * NI];
    static uint8_t w[NO * NI * 4];
    static double ref[NT * NO];
    uint64_t seed = 2024;
    float dummy;
    cr_expect(!mlc_cuda_host_mma_dot_row(MLC_TYPE_F32, row, x, NI, &dummy), "F32 takes the fp32 kernel");
    int n_types = 0;
    double worst = 0;
    for (uint32_t t = 0; t < MLC_TYPE_COUNT; t++) {
        if (!mlc_type_supported(t) || t == MLC_TYPE_F32)
            continue;
        n_types++;
        const size_t rb = mlc_type_row_bytes(t, NI);
        for (int r = 0; r < NO; r++) {
            tu_fill_gauss(&seed, row, NI, (float)exp(0.5 * (double)tu_rng_gauss(&seed)) * 0.05f);
            mlc_quantize_row((mlc_type)t, row, w + (size_t)r * rb, NI);
        }
        tu_fill_gauss(&seed, x, NT * NI, 1.0f);
        cr_assert(mlc_ref_matmul(t, w, NI, NO, x, NT, ref));
        double err = 0, sum = 0;
        for (int k = 0; k < NT; k++)
            for (int r = 0; r < NO; r++) {
                float got;
                cr_assert(mlc_cuda_host_mma_dot_row(t, w + (size_t)r * rb, x + k * NI, NI, &got));
                const double d = got - ref[k * NO + r];
                err += d * d;
                sum += ref[k * NO + r] * ref[k * NO + r];
            }
        const double nmse = err / sum, thr = mlc_conf_threshold(MLC_OP_MATMUL, t);
        worst = nmse > worst ? nmse : worst;
        cr_expect(nmse <= 1e-6 && nmse <= thr, "%s: NMSE %.3g (conformance threshold %.3g)", mlc_type_name(t), nmse,
                  thr);
    }
    cr_expect_eq(n_types, 14);
    cr_log_info("tensor-core matmul scheme: worst NMSE %.3g", worst);
}

/* The flash attention kernel's online softmax (kernels/cuda/cuda_flash.cuh, compiled for the
 * host too: tiles of 16 positions, the running maximum raised tile by tile and the sums so far
 * rescaled) against a two-pass softmax in double, on score rows built to catch a wrong
 * rescale: the maximum rising in every tile, falling, masked (-inf) leading tiles, masked
 * positions inside tiles, a peaky row (scores spread over 80), lengths around the tile size,
 * and a row with every position masked (all zero). The error of each output is taken relative
 * to the largest |v| (the outputs are convex combinations of the values): measured worst 2.0e-7. */
typedef void (*flash_fn)(const float *, const float *, int, int, float *);
void mlc_cuda_host_flash_row(const float *s, const float *v, int n, int hd, float *out) __attribute__((weak));
void mlc_hip_host_flash_row(const float *s, const float *v, int n, int hd, float *out) __attribute__((weak));

static void flash_like_two_pass(const char *name, flash_fn fa)
{
    if (!fa)
        cr_skip_test("%s is not built into the tests", name);
    enum { N = 300, HD = 65 };
    static float s[N], v[N * HD], got[HD];
    const int lens[] = {1, 15, 16, 17, 33, 300};
    uint32_t seed = 7;
    double worst = 0;
    for (int kind = 0; kind < 7; kind++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int n = lens[li];
            for (int i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                const float u = (float)(seed >> 8) / 16777216.0f - 0.5f; /* [-0.5, 0.5) */
                switch (kind) {
                case 1: s[i] = 0.25f * (float)i + u; break;                   /* rising */
                case 2: s[i] = -0.25f * (float)i + u; break;                  /* falling */
                case 3: s[i] = i < 20 ? -INFINITY : 4.0f * u; break;          /* masked leading tiles */
                case 4: s[i] = i % 3 == 1 ? -INFINITY : 160.0f * u; break;    /* masked inside, peaky */
                case 5: s[i] = -INFINITY; break;                              /* nothing visible */
                case 6: s[i] = i == n - 1 ? 30.0f : u; break;                 /* the maximum at the end */
                default: s[i] = 4.0f * u; break;
                }
            }
            float vmax = 0;
            for (int i = 0; i < n * HD; i++) {
                seed = seed * 1664525u + 1013904223u;
                v[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
                vmax = fmaxf(vmax, fabsf(v[i]));
            }
            fa(s, v, n, HD, got);
            double m = -INFINITY, l = 0;
            for (int i = 0; i < n; i++)
                m = s[i] > m ? s[i] : m;
            for (int i = 0; i < n; i++)
                l += s[i] == -INFINITY ? 0 : exp(s[i] - m);
            for (int d = 0; d < HD; d++) {
                double o = 0;
                for (int i = 0; i < n; i++)
                    o += s[i] == -INFINITY ? 0 : exp(s[i] - m) * v[i * HD + d];
                const double ref = l > 0 ? o / l : 0;
                const double e = fabs(got[d] - ref) / vmax;
                worst = e > worst ? e : worst;
                cr_expect(e <= 2e-6, "%s: kind %d, %d positions, dim %d: %.9g, two-pass %.9g", name, kind, n, d,
                          (double)got[d], ref);
                if (kind == 5)
                    cr_expect(got[d] == 0.0f, "%s: nothing visible gives %g", name, (double)got[d]);
            }
        }
    cr_log_info("%s: flash online softmax worst error %.3g of max |v|", name, worst);
}

Test(cuda_errors, flash_like_two_pass) { flash_like_two_pass("cuda", mlc_cuda_host_flash_row); }
Test(hip_errors, flash_like_two_pass) { flash_like_two_pass("hip", mlc_hip_host_flash_row); }

/* The device argmax's steps (kernels/cuda/cuda_argmax.cuh, compiled for the host too: each
 * thread's strided scan, then the pairwise reduction) pick mlc_argmax's token on rows built
 * to catch a wrong rule: ties of the maximum across threads (the lowest index wins), NaN at
 * the front, in the middle and everywhere (0), -inf only, signed zeros, +inf, a maximum at
 * the last index, and lengths not a multiple of the block. */
typedef int32_t (*argmax_fn)(const float *, int32_t, int);
int32_t mlc_cuda_host_argmax_row(const float *x, int32_t n, int threads) __attribute__((weak));
int32_t mlc_hip_host_argmax_row(const float *x, int32_t n, int threads) __attribute__((weak));

static void argmax_like_host(const char *name, argmax_fn am)
{
    if (!am)
        cr_skip_test("%s is not built into the tests", name);
    enum { N = 1000 };
    static float x[N];
    const int32_t lens[] = {1, 2, 255, 256, 257, 1000};
    const int threads[] = {256, 32, 1};
    uint32_t seed = 99;
    int rows = 0;
    for (int kind = 0; kind < 10; kind++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int32_t n = lens[li];
            for (int i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                x[i] = (float)(seed >> 20) / 64.0f; /* coarse: ties are common */
            }
            switch (kind) {
            case 1: x[0] = NAN; break;
            case 2: for (int i = 0; i < n; i++) x[i] = NAN; break;
            case 3: for (int i = 0; i < n; i++) x[i] = -INFINITY; break;
            case 4: for (int i = 0; i < n; i++) x[i] = i % 2 ? 0.0f : -0.0f; break;
            case 5: x[n - 1] = INFINITY; x[n / 2] = NAN; break;
            case 6: for (int i = 0; i < n; i++) x[i] = i % 3 ? NAN : 7.0f; break;
            case 7: x[n - 1] = 1e30f; break;
            case 8: for (int i = 0; i < n; i++) x[i] = i >= n / 3 ? 5.0f : -5.0f; break;
            case 9: for (int i = 0; i < n; i++) x[i] = (i * 7) % 5 == 4 ? NAN : (float)((i * 13) % 4); break;
            default: break;
            }
            const int32_t want = mlc_argmax(x, n);
            for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
                const int32_t got = am(x, n, threads[ti]);
                cr_expect_eq(got, want, "%s: row kind %d of %d, %d threads: pick %d, mlc_argmax %d", name, kind, n,
                             threads[ti], got, want);
            }
            rows++;
        }
    cr_expect_eq(rows, 60);
}

Test(cuda_errors, argmax_like_host) { argmax_like_host("cuda", mlc_cuda_host_argmax_row); }
Test(hip_errors, argmax_like_host) { argmax_like_host("hip", mlc_hip_host_argmax_row); }

/* Opening the backend fails with MLC_ERR_ARG and one line naming it and saying why. */
static void open_says_why(const char *name)
{
    need_no_device(name);
    mlc_backend b;
    mlc_err err = {0};
    cr_assert_eq(mlc_backend_open(name, NULL, &b, &err), MLC_ERR_ARG, "%s", err.msg);
    cr_expect_null(b.vt);
    cr_expect(strstr(err.msg, name), "%s", err.msg);
    cr_expect(strstr(err.msg, "no device 0 (0 present: "), "%s", err.msg);
    cr_expect(!strchr(err.msg, '\n'), "%s", err.msg);
    char why[256] = "";
    const mlc_backend_vt *vt;
    cr_assert_eq(mlc_backend_vt_get(name, &vt, &err), MLC_OK, "%s", err.msg);
    cr_assert_not_null(vt->no_device);
    vt->no_device(why, sizeof why);
    cr_expect(why[0] && strstr(err.msg, why), "reason '%s' in '%s'", why, err.msg);
    /* The reason names the missing driver, or says no device. */
    cr_expect(strstr(why, "driver") || strstr(why, "device"), "%s", why);
}

Test(cuda_errors, open_says_why) { open_says_why("cuda"); }
Test(hip_errors, open_says_why) { open_says_why("hip"); }

/* `micro --backend NAME` exits non-zero with one line naming the backend and the reason. */
static void cli_says_why(const char *name)
{
    need_no_device(name);
    char model[1024], cmd[2048], *out;
    tu_require_shared(model, sizeof model, "golden/tiny-llama-f16.gguf");
    snprintf(cmd, sizeof cmd, "%s micro --backend %s -m %s -p 8 -n 2 -r 1 --no-store 2>&1", tu_bin(), name,
             model);
    const int rc = tu_run(cmd, &out);
    cr_expect_neq(rc, 0, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "backend '%s': no device 0", name);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect(!strstr(out, "Segmentation") && !strstr(out, "Aborted"), "%s", out);
    free(out);
}

Test(cuda_errors, cli_says_why) { cli_says_why("cuda"); }
Test(hip_errors, cli_says_why) { cli_says_why("hip"); }

/* `devices` lists the backend as built, with no device and the reason on the next line. */
static void devices_lists(const char *name)
{
    need_no_device(name);
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "%s devices 2>&1", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "\n%-7s built, 0 devices\n  (", name);
    const char *line = strstr(out, want);
    if (!line && !strncmp(out, want + 1, strlen(want) - 1))
        line = out;
    cr_expect(line, "no line '%s' in:\n%s", want + 1, out);
    free(out);
}

Test(cuda_errors, devices_lists) { devices_lists("cuda"); }
Test(hip_errors, devices_lists) { devices_lists("hip"); }
