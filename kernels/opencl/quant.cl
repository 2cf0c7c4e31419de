/* quant.cl: GGUF block formats on the device: dequantization (get_rows), activation
 * conversion (the activation format of each weight type, as the CPU backend's vecdot.c:
 * F16/BF16 weights see activations rounded to their type; Q8_0, Q4_0, Q5_0 and IQ4_NL see
 * Q8_0 blocks; Q4_1 and Q5_1 see Q8_1 blocks; the K-quants and IQ4_XS see Q8_K blocks) and
 * the per-block dot products of the matmul kernels.
 *
 * Quantized activations are kept as two arrays per matmul: q [n, n_in] i8 and d
 * [n, n_in / bs, ds] f32: ds = 1 (the block scale; Q8_0's already rounded to half, as the
 * CPU's 34-byte block stores it) or ds = 2 for Q8_1 (its half scale d, then its half s =
 * d * sum q). Q8_K's per-16 sums are not stored: the dots sum q themselves (exact). */

/* The IQ4_NL / IQ4_XS value table (ggml's kvalues_iq4nl). */
constant char IQ4_VALUES[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

uint ld_u32(global const uchar *p)
{
    return (uint)p[0] | (uint)p[1] << 8 | (uint)p[2] << 16 | (uint)p[3] << 24;
}

/* The 32 levels (0..15, or 0..31 with qh) of a Q4_0-style block: byte j of qs holds value j
 * (low nibble) and j + 16 (high); bit i of the little-endian u32 qh is value i's fifth bit. */
int level32(global const uchar *qs, uint h, int j)
{
    const int v = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
    return v | (int)(((h >> j) & 1u) << 4);
}

/* ---------------------------------------------------------------- dequantization */

void deq_f32(global const uchar *b, global float *y) { y[0] = *(global const float *)b; }
void deq_f16(global const uchar *b, global float *y) { y[0] = ld_f16(b); }
void deq_bf16(global const uchar *b, global float *y) { y[0] = bf16_to_f32(*(global const ushort *)b); }

void deq_q8_0(global const uchar *b, global float *y)
{
    const float d = ld_f16(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)((global const char *)b)[2 + j] * d;
}

void deq_q4_0(global const uchar *b, global float *y)
{
    const float d = ld_f16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 15) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

void deq_q5_0(global const uchar *b, global float *y)
{
    const float d = ld_f16(b);
    const uint h = ld_u32(b + 2);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(level32(b + 6, h, j) - 16) * d;
}

/* Q4_1 (no qh) and Q5_1: x = d * q + m. */
void deq_affine(global const uchar *b, global const uchar *qs, uint h, global float *y)
{
    const float d = ld_f16(b), m = ld_f16(b + 2);
    for (int j = 0; j < 32; j++)
        y[j] = (float)level32(qs, h, j) * d + m;
}

void deq_q4_1(global const uchar *b, global float *y) { deq_affine(b, b + 4, 0, y); }
void deq_q5_1(global const uchar *b, global float *y) { deq_affine(b, b + 8, ld_u32(b + 4), y); }

void deq_iq4_32(global const uchar *qs, float d, global float *y)
{
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)IQ4_VALUES[qs[j] & 15];
        y[j + 16] = d * (float)IQ4_VALUES[qs[j] >> 4];
    }
}

void deq_iq4_nl(global const uchar *b, global float *y) { deq_iq4_32(b + 2, ld_f16(b), y); }

/* The 6-bit scale of IQ4_XS sub-block ib (0..7), plus 32. */
int iq4xs_scale(global const uchar *b, int ib)
{
    const int sh = b[2] | (b[3] << 8);
    return ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
}

void deq_iq4_xs(global const uchar *b, global float *y)
{
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++)
        deq_iq4_32(b + 8 + 16 * ib, d * (float)(iq4xs_scale(b, ib) - 32), y + 32 * ib);
}

/* The 2-bit level (0..3) of value k (0..255) of a Q2_K / Q3_K block's qs[64]. */
int k2_level(global const uchar *qs, int k)
{
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

void deq_q2_k(global const uchar *b, global float *y)
{
    const float d = ld_f16(b + 80), mn = ld_f16(b + 82);
    for (int g = 0; g < 16; g++) {
        const float dl = d * (float)(b[g] & 15), ml = mn * (float)(b[g] >> 4);
        for (int l = 0; l < 16; l++)
            y[16 * g + l] = dl * (float)k2_level(b + 16, 16 * g + l) - ml;
    }
}

/* Q3_K's 6-bit scale of sub-block g (0..15) of scales[12] (the value is this minus 32). */
int q3k_scale(global const uchar *sc, int g)
{
    const int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4;
    return lo | (((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4);
}

/* Q3_K's level of value k (0..7; the value is this minus 4): the third bit from hmask. */
int q3k_level(global const uchar *b, int k)
{
    return k2_level(b + 32, k) | (((b[k % 32] >> (k / 32)) & 1) << 2);
}

void deq_q3_k(global const uchar *b, global float *y)
{
    const float d = ld_f16(b + 108);
    for (int g = 0; g < 16; g++) {
        const float dl = d * (float)(q3k_scale(b + 96, g) - 32);
        for (int l = 0; l < 16; l++)
            y[16 * g + l] = dl * (float)(q3k_level(b, 16 * g + l) - 4);
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K block's scales[12]. */
void q4k_sm(int j, global const uchar *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K (no qh) and Q5_K: 64-value group g holds values 64g + l in the low nibble and
 * 64g + 32 + l in the high nibble of qs[32g + l]; Q5_K's fifth bit of sub-block j is bit j
 * of qh[l]. */
void deq_k4(global const uchar *b, global const uchar *qs, global const uchar *qh, global float *y)
{
    const float d = ld_f16(b), mn = ld_f16(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_sm(j, b + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = mn * (float)m;
        global const uchar *q = qs + (j / 2) * 32;
        for (int l = 0; l < 32; l++) {
            const int hb = qh ? ((qh[l] >> j) & 1) << 4 : 0;
            y[j * 32 + l] = d1 * (float)(((j & 1) ? (q[l] >> 4) : (q[l] & 15)) | hb) - m1;
        }
    }
}

void deq_q4_k(global const uchar *b, global float *y) { deq_k4(b, b + 16, 0, y); }
void deq_q5_k(global const uchar *b, global float *y) { deq_k4(b, b + 48, b + 16, y); }

/* The 6-bit value k (0..255) of a Q6_K block (ql[128], qh[64]), minus 32. */
int q6k_value(global const uchar *b, int k)
{
    const int hf = k / 128, r = k % 128, l = r % 32, quarter = r / 32;
    global const uchar *L = b + hf * 64, *H = b + 128 + hf * 32;
    int lo = (quarter & 1) ? L[l + 32] : L[l];
    lo = quarter < 2 ? (lo & 15) : (lo >> 4);
    return (lo | (((H[l] >> (2 * quarter)) & 3) << 4)) - 32;
}

void deq_q6_k(global const uchar *b, global float *y)
{
    const float d = ld_f16(b + 208);
    global const char *sc = (global const char *)(b + 192);
    for (int k = 0; k < 256; k++)
        y[k] = d * (float)sc[k / 16] * (float)q6k_value(b, k);
}

/* out [row_len, n] = rows ids [n] of table [row_len, rows]; one work item per block. */
#define GET_ROWS(NAME, BS, BB)                                                                   \
    kernel void get_rows_##NAME(global const uchar *tab, ulong toff, ulong row_bytes, int n_rows,  \
                                global const uchar *ib, ulong ioff, global uchar *ob, ulong ooff,  \
                                int row_len, int n, global int *err)                             \
    {                                                                                            \
        const int blk = get_global_id(0), i = get_global_id(1);                                  \
        if (blk * BS >= row_len || i >= n)                                                       \
            return;                                                                              \
        const int id = CPTR(int, ib, ioff)[i];                                                   \
        if (id < 0 || id >= n_rows) {                                                            \
            flag(err, E_GET_ROWS, i, id);                                                        \
            return;                                                                              \
        }                                                                                        \
        deq_##NAME(tab + toff + (ulong)id * row_bytes + (ulong)blk * BB,                         \
                   PTR(float, ob, ooff) + (ulong)i * row_len + blk * BS);                        \
    }
GET_ROWS(f32, 1, 4)
GET_ROWS(f16, 1, 2)
GET_ROWS(bf16, 1, 2)
GET_ROWS(q8_0, 32, 34)
GET_ROWS(q4_0, 32, 18)
GET_ROWS(q4_k, 256, 144)
GET_ROWS(q6_k, 256, 210)
GET_ROWS(q5_0, 32, 22)
GET_ROWS(q4_1, 32, 20)
GET_ROWS(q5_1, 32, 24)
GET_ROWS(iq4_nl, 32, 18)
GET_ROWS(q5_k, 256, 176)
GET_ROWS(q3_k, 256, 110)
GET_ROWS(q2_k, 256, 84)
GET_ROWS(iq4_xs, 256, 136)

/* ---------------------------------------------------------------- activations */

/* a [n] = x rounded to half (F16 weights) or bfloat16 (BF16 weights), kept as floats. */
kernel void act_f16(global const uchar *xb, ulong xoff, global float *a, int n)
{
    const int i = get_global_id(0);
    if (i < n)
        a[i] = round_f16(CPTR(float, xb, xoff)[i]);
}

kernel void act_bf16(global const uchar *xb, ulong xoff, global float *a, int n)
{
    const int i = get_global_id(0);
    if (i < n)
        a[i] = bf16_to_f32(f32_to_bf16(CPTR(float, xb, xoff)[i]));
}

/* Q8_0 blocks as the CPU's (llama.cpp's x86 path): inverse scale 127/amax, round to
 * nearest even, d stored as half. One work item per block of 32. */
kernel void act_q8_0(global const uchar *xb, ulong xoff, global uchar *ab, ulong qoff, ulong doff,
                     int nblk)
{
    global char *q = PTR(char, ab, qoff);
    global float *d = PTR(float, ab, doff);
    const int k = get_global_id(0);
    if (k >= nblk)
        return;
    global const float *x = CPTR(float, xb, xoff) + (ulong)k * 32;
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmax(amax, fabs(x[j]));
    const float id = amax != 0 ? 127.f / amax : 0.0f;
    d[k] = round_f16(amax / 127.f);
    for (int j = 0; j < 32; j++)
        q[(ulong)k * 32 + j] = (char)convert_int_rte(x[j] * id);
}

/* Q8_1 blocks: Q8_0's values and half scale d, plus the half s = (amax / 127) * sum q (the
 * scale before rounding, as the CPU's). d holds (d, s) per block. */
kernel void act_q8_1(global const uchar *xb, ulong xoff, global uchar *ab, ulong qoff, ulong doff,
                     int nblk)
{
    global char *q = PTR(char, ab, qoff);
    global float *d = PTR(float, ab, doff);
    const int k = get_global_id(0);
    if (k >= nblk)
        return;
    global const float *x = CPTR(float, xb, xoff) + (ulong)k * 32;
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmax(amax, fabs(x[j]));
    const float id = amax != 0 ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        const int v = convert_int_rte(x[j] * id);
        q[(ulong)k * 32 + j] = (char)v;
        sum += v;
    }
    d[2 * k] = round_f16(amax / 127.f);
    d[2 * k + 1] = round_f16((amax / 127.f) * (float)sum);
}

/* Q8_K blocks of 256: scale -127/max of the signed value of largest magnitude (ggml). */
kernel void act_q8_k(global const uchar *xb, ulong xoff, global uchar *ab, ulong qoff, ulong doff,
                     int nblk)
{
    global char *q = PTR(char, ab, qoff);
    global float *d = PTR(float, ab, doff);
    const int k = get_global_id(0);
    if (k >= nblk)
        return;
    global const float *x = CPTR(float, xb, xoff) + (ulong)k * 256;
    global char *qs = q + (ulong)k * 256;
    float amax = 0, mx = 0;
    for (int j = 0; j < 256; j++)
        if (fabs(x[j]) > amax) {
            amax = fabs(x[j]);
            mx = x[j];
        }
    if (amax == 0) {
        for (int j = 0; j < 256; j++)
            qs[j] = 0;
        d[k] = 0;
        return;
    }
    const float iscale = -127.f / mx;
    for (int j = 0; j < 256; j++)
        qs[j] = (char)min(convert_int_rte(iscale * x[j]), 127);
    d[k] = 1 / iscale;
}

/* ---------------------------------------------------------------- block dots */

int hsum16(int16 v)
{
    int8 a = v.lo + v.hi;
    int4 b = a.lo + a.hi;
    int2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* Bits shift..shift + 15 of h, as 0 / 1 (the fifth bits of a Q5_0 / Q5_1 block). */
int16 bits16(uint h, int shift)
{
    const uint16 k = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return convert_int16(((uint16)(h >> shift) >> k) & 1u);
}

/* The 2-bit levels of sub-block g (values 16g..16g+15) of a Q2_K / Q3_K block's qs[64]. */
int16 k2_levels16(global const uchar *qs, int g)
{
    const int16 b = convert_int16(vload16(0, qs + 32 * (g / 8) + (g % 2) * 16));
    return (b >> (2 * ((g % 8) / 2))) & 3;
}

/* Weight block w against activation values q (block of the same length) of scales da (one
 * per block, two for Q8_1), in the CPU's arithmetic: integer sums per block, then the float
 * scale products in its order. AS is where the activations are: global (decode) or local
 * (the tiled prefill kernel). */
#define BLOCK_DOTS(AS)                                                                           \
    float dot_q8_0_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        global const char *wq = (global const char *)(w + 2);                                    \
        const int s = hsum16(convert_int16(vload16(0, wq)) * convert_int16(vload16(0, q))) +     \
                      hsum16(convert_int16(vload16(1, wq)) * convert_int16(vload16(1, q)));      \
        return (float)s * (ld_f16(w) * da[0]);                                                   \
    }                                                                                            \
    float dot_q4_0_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        const int16 b = convert_int16(vload16(0, w + 2));                                        \
        const int s = hsum16(((b & 15) - 8) * convert_int16(vload16(0, q))) +                    \
                      hsum16(((b >> 4) - 8) * convert_int16(vload16(1, q)));                     \
        return (float)s * (ld_f16(w) * da[0]);                                                   \
    }                                                                                            \
    /* Integer dot of the 32 levels (4-bit, or 5-bit with h) of qs, minus off, with q. */        \
    int dot32_##AS(global const uchar *qs, uint h, int off, AS const char *q)                    \
    {                                                                                            \
        const int16 b = convert_int16(vload16(0, qs));                                           \
        return hsum16((((b & 15) | (bits16(h, 0) << 4)) - off) * convert_int16(vload16(0, q))) +  \
               hsum16((((b >> 4) | (bits16(h, 16) << 4)) - off) * convert_int16(vload16(1, q)));  \
    }                                                                                            \
    float dot_q5_0_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        return (float)dot32_##AS(w + 6, ld_u32(w + 2), 16, q) * (ld_f16(w) * da[0]);             \
    }                                                                                            \
    /* Q4_1 / Q5_1 against Q8_1: the min's term from the activation's s. */                      \
    float dot_q4_1_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        const float t1 = (float)dot32_##AS(w + 4, 0, 0, q) * (ld_f16(w) * da[0]);                \
        return t1 + ld_f16(w + 2) * da[1];                                                       \
    }                                                                                            \
    float dot_q5_1_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        const float t1 = (float)dot32_##AS(w + 8, ld_u32(w + 4), 0, q) * (ld_f16(w) * da[0]);    \
        return t1 + ld_f16(w + 2) * da[1];                                                       \
    }                                                                                            \
    int iq4_dot32_##AS(global const uchar *qs, AS const char *q)                                 \
    {                                                                                            \
        int s = 0;                                                                               \
        for (int j = 0; j < 16; j++)                                                             \
            s += IQ4_VALUES[qs[j] & 15] * q[j] + IQ4_VALUES[qs[j] >> 4] * q[j + 16];             \
        return s;                                                                                \
    }                                                                                            \
    float dot_iq4_nl_##AS(global const uchar *w, AS const char *q, AS const float *da)           \
    {                                                                                            \
        return (float)iq4_dot32_##AS(w + 2, q) * (ld_f16(w) * da[0]);                            \
    }                                                                                            \
    float dot_iq4_xs_##AS(global const uchar *w, AS const char *q, AS const float *da)           \
    {                                                                                            \
        int sumi = 0;                                                                            \
        for (int ib = 0; ib < 8; ib++)                                                           \
            sumi += (iq4xs_scale(w, ib) - 32) * iq4_dot32_##AS(w + 8 + 16 * ib, q + 32 * ib);    \
        return ld_f16(w) * da[0] * (float)sumi;                                                  \
    }                                                                                            \
    /* Q4_K (no qh) and Q5_K against Q8_K: sums of sub-block j's q give the min's term. */       \
    float dot_k4_##AS(global const uchar *w, global const uchar *qs0, global const uchar *qh,    \
                      AS const char *q, float da)                                                \
    {                                                                                            \
        int sumi = 0, summs = 0;                                                                 \
        for (int j = 0; j < 8; j++) {                                                            \
            int sc, m;                                                                           \
            q4k_sm(j, w + 4, &sc, &m);                                                           \
            global const uchar *qs = qs0 + (j / 2) * 32;                                         \
            int isum = 0, qsum = 0;                                                              \
            for (int h = 0; h < 2; h++) {                                                        \
                const int16 b = convert_int16(vload16(h, qs));                                   \
                const int16 hh = convert_int16(vload16(h, qh != 0 ? qh : qs));                   \
                const int16 hb = qh != 0 ? ((hh >> j) & 1) << 4 : (int16)0;                      \
                const int16 a = convert_int16(vload16(2 * j + h, q));                            \
                isum += hsum16((((j & 1) ? (b >> 4) : (b & 15)) | hb) * a);                      \
                qsum += hsum16(a);                                                               \
            }                                                                                    \
            sumi += sc * isum;                                                                   \
            summs += m * qsum;                                                                   \
        }                                                                                        \
        return (da * ld_f16(w)) * (float)sumi - (da * ld_f16(w + 2)) * (float)summs;             \
    }                                                                                            \
    float dot_q4_k_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        return dot_k4_##AS(w, w + 16, 0, q, da[0]);                                              \
    }                                                                                            \
    float dot_q5_k_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        return dot_k4_##AS(w, w + 48, w + 16, q, da[0]);                                         \
    }                                                                                            \
    float dot_q2_k_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        int sumi = 0, summs = 0;                                                                 \
        for (int g = 0; g < 16; g++) {                                                           \
            const int16 a = convert_int16(vload16(g, q));                                        \
            sumi += (w[g] & 15) * hsum16(k2_levels16(w + 16, g) * a);                            \
            summs += (w[g] >> 4) * hsum16(a);                                                    \
        }                                                                                        \
        return (da[0] * ld_f16(w + 80)) * (float)sumi - (da[0] * ld_f16(w + 82)) * (float)summs; \
    }                                                                                            \
    float dot_q3_k_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        int sumi = 0;                                                                            \
        for (int g = 0; g < 16; g++) {                                                           \
            const int16 hm = convert_int16(vload16(0, w + (g % 2) * 16));                        \
            const int16 v = (k2_levels16(w + 32, g) | (((hm >> (g / 2)) & 1) << 2)) - 4;         \
            sumi += (q3k_scale(w + 96, g) - 32) * hsum16(v * convert_int16(vload16(g, q)));      \
        }                                                                                        \
        return ld_f16(w + 108) * da[0] * (float)sumi;                                            \
    }                                                                                            \
    float dot_q6_k_##AS(global const uchar *w, AS const char *q, AS const float *da)             \
    {                                                                                            \
        global const char *sc = (global const char *)(w + 192);                                  \
        int sumi = 0;                                                                            \
        for (int g = 0; g < 16; g++) {                                                           \
            const int hf = g / 8, quarter = (g % 8) / 2, l0 = (g % 2) * 16;                      \
            const int16 lb = convert_int16(vload16(0, w + hf * 64 + (quarter & 1) * 32 + l0));   \
            const int16 hb = convert_int16(vload16(0, w + 128 + hf * 32 + l0));                  \
            const int16 lo = quarter < 2 ? (lb & 15) : (lb >> 4);                                \
            const int16 v = (lo | (((hb >> (2 * quarter)) & 3) << 4)) - 32;                      \
            sumi += (int)sc[g] * hsum16(v * convert_int16(vload16(g, q)));                       \
        }                                                                                        \
        return ld_f16(w + 208) * da[0] * (float)sumi;                                            \
    }
BLOCK_DOTS(global)
BLOCK_DOTS(local)

/* Weight value i of a row of the float types. */
float wv_f32(global const uchar *w, int i) { return ((global const float *)w)[i]; }
float wv_f16(global const uchar *w, int i) { return LD_HALF(w, i); }
float wv_bf16(global const uchar *w, int i) { return bf16_to_f32(((global const ushort *)w)[i]); }
