/* vecdot_gelu.c: GEGLU (tanh-approximated GELU of the gate times up) of every set, with
 * the same bits in each.
 *
 * The tanh is the double tanh rounded to float: glibc's tanhf is an ulp off on 14% of
 * [-4, 4], and a one-ulp change flips roundings of the 8-bit activations that follow, so a
 * GPU backend computing it correctly rounded would disagree with this one on Gemma's logits.
 * libm's double tanh cost a quarter of Gemma 3's prefill, so it is computed here by one fixed
 * sequence of double operations, relative error ~1e-16, which rounds to the same float as
 * libm's except where the exact value lies within that error of a float rounding boundary
 * (a fraction ~1e-8 of arguments):
 *   tanh(y) = sign(y) * E / (E + 2), E = e^z - 1, z = 2 |y| clamped to 40 (E / (E + 2) is
 *   1.0 in double from there on); e^z - 1 = 2^n * p(r) + (2^n - 1) with n = round(z / ln 2)
 *   by the 1.5 * 2^52 trick, r = z - n ln 2 by a two-constant reduction (|r| <= 0.347), and
 *   p(r) = e^r - 1 by its Taylor series to r^13 (truncation < 2e-17 relative); every term is
 *   >= 0 or small against 2^n - 1, so nothing cancels. No fused multiply-add anywhere.
 * The vector set does 8 values at a time and leaves the rest to the scalar code. */
#include "vecdot.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f
#define Z_MAX 40.0
#define LOG2E 1.4426950408889634
#define LN2_HI 0.693147180369123816490 /* low 32 bits of the mantissa zero: n * LN2_HI exact */
#define LN2_LO 1.90821492927058770002e-10
#define ROUND_D 6755399441055744.0 /* 1.5 * 2^52: t + this - this rounds t to an integer */
/* bits of ROUND_D + n, minus those of ROUND_D, plus the exponent bias: 2^n's exponent */
#define EXP_BITS_ADJ (1023 - 0x4338000000000000LL)

/* 1 / k! for k = 2 .. 13, highest first (Horner). */
static const double INV_FACT[12] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
    1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,      1.0 / 720.0,
    1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,         1.0 / 2.0,
};

/* tanh(|y|) for y not NaN, by the recipe above. */
static double tanh_abs(double y)
{
    double z = 2.0 * fabs(y);
    z = z > Z_MAX ? Z_MAX : z;
    const double t = z * LOG2E + ROUND_D;
    const double n = t - ROUND_D;
    const double r = (z - n * LN2_HI) - n * LN2_LO;
    double p = INV_FACT[0];
    for (int i = 1; i < 12; i++)
        p = p * r + INV_FACT[i];
    p = (p * r + 1.0) * r;
    int64_t bits;
    memcpy(&bits, &t, 8);
    bits = (bits + EXP_BITS_ADJ) << 52;
    double s;
    memcpy(&s, &bits, 8);
    const double e = s * p + (s - 1.0);
    return e / (e + 2.0);
}

static float gelu_up(float x, float up)
{
    const float y = GELU_K * (x + GELU_A * x * x * x);
    float t;
    if (isnan(y))
        t = y;
    else
        t = (float)(y < 0 ? -tanh_abs((double)y) : tanh_abs((double)y));
    return 0.5f * x * (1.0f + t) * up;
}

static void geglu_scalar(int64_t n, const float *gate, const float *up, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = gelu_up(gate[i], up[i]);
}

static T_AVX512 void geglu_avx512(int64_t n, const float *gate, const float *up, float *out)
{
    const __m256 k = _mm256_set1_ps(GELU_K), a = _mm256_set1_ps(GELU_A), half = _mm256_set1_ps(0.5f),
                 one_f = _mm256_set1_ps(1.0f);
    const __m512d zmax = _mm512_set1_pd(Z_MAX), log2e = _mm512_set1_pd(LOG2E), rnd = _mm512_set1_pd(ROUND_D),
                  hi = _mm512_set1_pd(LN2_HI), lo = _mm512_set1_pd(LN2_LO), one = _mm512_set1_pd(1.0),
                  two = _mm512_set1_pd(2.0);
    const __m512i adj = _mm512_set1_epi64(EXP_BITS_ADJ);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i);
        const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(a, x), x), x);
        const __m256 y = _mm256_mul_ps(k, _mm256_add_ps(x, x3));
        const __m512d yd = _mm512_cvtps_pd(y);
        __m512d z = _mm512_mul_pd(two, _mm512_abs_pd(yd));
        z = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(z, zmax, _CMP_GT_OQ), z, zmax);
        const __m512d t = _mm512_add_pd(_mm512_mul_pd(z, log2e), rnd);
        const __m512d nd = _mm512_sub_pd(t, rnd);
        const __m512d r = _mm512_sub_pd(_mm512_sub_pd(z, _mm512_mul_pd(nd, hi)), _mm512_mul_pd(nd, lo));
        __m512d p = _mm512_set1_pd(INV_FACT[0]);
        for (int j = 1; j < 12; j++)
            p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(INV_FACT[j]));
        p = _mm512_mul_pd(_mm512_add_pd(_mm512_mul_pd(p, r), one), r);
        const __m512d s =
            _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_castpd_si512(t), adj), 52));
        const __m512d e = _mm512_add_pd(_mm512_mul_pd(s, p), _mm512_sub_pd(s, one));
        __m512d th = _mm512_div_pd(e, _mm512_add_pd(e, two));
        /* the sign of y back; a NaN y stays NaN */
        th = _mm512_mask_sub_pd(th, _mm512_cmp_pd_mask(yd, _mm512_setzero_pd(), _CMP_LT_OQ),
                                _mm512_setzero_pd(), th);
        th = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(yd, yd, _CMP_UNORD_Q), th, yd);
        const __m256 tf = _mm512_cvtpd_ps(th);
        const __m256 o = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one_f, tf)),
                                       _mm256_loadu_ps(up + i));
        _mm256_storeu_ps(out + i, o);
    }
    geglu_scalar(n - i, gate + i, up + i, out + i);
}

void mlc_cpu_kernels_gelu(mlc_cpu_kernels *k, int level)
{
    k->geglu = level >= 2 ? geglu_avx512 : geglu_scalar;
}
