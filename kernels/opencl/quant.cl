/* quant.cl: GGUF block formats on the device: dequantization (get_rows), activation
 * conversion (the activation format of each weight type, as the CPU backend's vecdot.h:
 * F16/BF16 weights see activations rounded to their type, Q8_0/Q4_0 see Q8_0 blocks, Q4_K/Q6_K
 * see Q8_K blocks) and the per-block dot products of the matmul kernels.
 *
 * Quantized activations are kept as two arrays per matmul: q [n, n_in] i8 and d [n, n_in / bs]
 * f32 (the Q8_0 scale already rounded to half, as the CPU's 34-byte block stores it). */

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

void deq_q4_k(global const uchar *b, global float *y)
{
    const float d = ld_f16(b), mn = ld_f16(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_sm(j, b + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = mn * (float)m;
        global const uchar *q = b + 16 + (j / 2) * 32;
        for (int l = 0; l < 32; l++)
            y[j * 32 + l] = d1 * (float)((j & 1) ? (q[l] >> 4) : (q[l] & 15)) - m1;
    }
}

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

/* Weight block w against activation values q (block of the same length) of scale da, in the
 * CPU's arithmetic: integer sums per block, then the float scale products in its order.
 * AS is where the activations are: global (decode) or local (the tiled prefill kernel). */
#define BLOCK_DOTS(AS)                                                                           \
    float dot_q8_0_##AS(global const uchar *w, AS const char *q, float da)                       \
    {                                                                                            \
        global const char *wq = (global const char *)(w + 2);                                    \
        const int s = hsum16(convert_int16(vload16(0, wq)) * convert_int16(vload16(0, q))) +     \
                      hsum16(convert_int16(vload16(1, wq)) * convert_int16(vload16(1, q)));      \
        return (float)s * (ld_f16(w) * da);                                                      \
    }                                                                                            \
    float dot_q4_0_##AS(global const uchar *w, AS const char *q, float da)                       \
    {                                                                                            \
        const int16 b = convert_int16(vload16(0, w + 2));                                        \
        const int s = hsum16(((b & 15) - 8) * convert_int16(vload16(0, q))) +                    \
                      hsum16(((b >> 4) - 8) * convert_int16(vload16(1, q)));                     \
        return (float)s * (ld_f16(w) * da);                                                      \
    }                                                                                            \
    float dot_q4_k_##AS(global const uchar *w, AS const char *q, float da)                       \
    {                                                                                            \
        int sumi = 0, summs = 0;                                                                 \
        for (int j = 0; j < 8; j++) {                                                            \
            int sc, m;                                                                           \
            q4k_sm(j, w + 4, &sc, &m);                                                           \
            global const uchar *qs = w + 16 + (j / 2) * 32;                                      \
            int isum = 0, qsum = 0;                                                              \
            for (int h = 0; h < 2; h++) {                                                        \
                const int16 b = convert_int16(vload16(h, qs));                                   \
                const int16 a = convert_int16(vload16(2 * j + h, q));                            \
                isum += hsum16(((j & 1) ? (b >> 4) : (b & 15)) * a);                             \
                qsum += hsum16(a);                                                               \
            }                                                                                    \
            sumi += sc * isum;                                                                   \
            summs += m * qsum;                                                                   \
        }                                                                                        \
        return (da * ld_f16(w)) * (float)sumi - (da * ld_f16(w + 2)) * (float)summs;             \
    }                                                                                            \
    float dot_q6_k_##AS(global const uchar *w, AS const char *q, float da)                       \
    {                                                                                            \
        global const char *sc = (global const char *)(w + 192);                                  \
        int sumi = 0;                                                                            \
        for (int g = 0; g < 16; g++) {                                                           \
            const int hf = g / 8, quarter = (g % 8) / 2, l0 = (g % 2) * 16;                    \
            const int16 lb = convert_int16(vload16(0, w + hf * 64 + (quarter & 1) * 32 + l0)); \
            const int16 hb = convert_int16(vload16(0, w + 128 + hf * 32 + l0));                \
            const int16 lo = quarter < 2 ? (lb & 15) : (lb >> 4);                                \
            const int16 v = (lo | (((hb >> (2 * quarter)) & 3) << 4)) - 32;                     \
            sumi += (int)sc[g] * hsum16(v * convert_int16(vload16(g, q)));                       \
        }                                                                                        \
        return ld_f16(w + 208) * da * (float)sumi;                                               \
    }
BLOCK_DOTS(global)
BLOCK_DOTS(local)

/* Weight value i of a row of the float types. */
float wv_f32(global const uchar *w, int i) { return ((global const float *)w)[i]; }
float wv_f16(global const uchar *w, int i) { return vload_half(i, (global const half *)w); }
float wv_bf16(global const uchar *w, int i) { return bf16_to_f32(((global const ushort *)w)[i]); }
