/* fuzz_gguf.c: libFuzzer target for the GGUF reader (make fuzz).
 *
 * Opens the input as a GGUF file and, when it is accepted, touches everything the handle
 * exposes: every key and value (recursively), every tensor's bytes, and the dequantization
 * of the first row of each supported tensor, so that any pointer the reader validated
 * wrongly is read and caught by ASan. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mlc/gguf.h"
#include "mlc/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t touch_value(const mlc_gguf_value *v)
{
    uint64_t h = v->type;
    if (v->type == MLC_GGUF_STRING) {
        for (uint64_t i = 0; i < v->s.len; i++)
            h = h * 31 + (uint8_t)v->s.ptr[i];
    } else if (v->type == MLC_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) {
            if (v->arr.items)
                h += touch_value(&v->arr.items[i]);
            else
                h += mlc_gguf_arr_u64(v, i);
        }
    }
    return h;
}

static uint64_t touch_tensor(const mlc_gguf_tensor *t)
{
    uint64_t h = 0;
    const uint8_t *p = t->data;
    for (uint64_t i = 0; p && i < t->nbytes; i += 61)
        h += p[i];
    if (p && t->nbytes)
        h += p[t->nbytes - 1];
    if (mlc_type_supported(t->type) && t->ne[0] > 0 && t->ne[0] <= 4096 && t->nbytes) {
        float *row = malloc((size_t)t->ne[0] * sizeof *row);
        if (row) {
            mlc_dequantize_row((mlc_type)t->type, t->data, row, t->ne[0]);
            h += (uint64_t)(row[0] != row[0]);
            free(row);
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mlc_gguf *g = NULL;
    mlc_err err;
    if (mlc_gguf_open_memory(data, size, "fuzz.gguf", &g, &err) != MLC_OK)
        return 0;
    volatile uint64_t sink = 0;
    for (int64_t i = 0; i < mlc_gguf_n_kv(g); i++)
        sink += touch_value(mlc_gguf_kv_value(g, i)) + mlc_gguf_kv_key(g, i)[0];
    for (int64_t i = 0; i < mlc_gguf_n_tensors(g); i++)
        sink += touch_tensor(mlc_gguf_tensor_at(g, i));
    (void)sink;
    mlc_gguf_close(g);
    return 0;
}
