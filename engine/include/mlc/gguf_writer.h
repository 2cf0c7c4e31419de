/* mlc/gguf_writer.h: GGUF (v2, v3) writer; the value types are mlc/gguf.h's. */
#ifndef MLC_GGUF_WRITER_H
#define MLC_GGUF_WRITER_H

#include "mlc/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collect metadata and tensor infos, then write the file in one pass. Tensor data is either
 * borrowed (must stay valid until the write) or produced on demand by a fill callback, so
 * multi-gigabyte synthetic models need only one tensor in memory at a time. */
typedef struct mlc_gguf_writer mlc_gguf_writer;

/* Fills dst (nbytes) with the data of tensor index i (in add order). */
typedef mlc_status (*mlc_gguf_fill_fn)(void *ctx, int64_t i, void *dst, size_t nbytes,
                                       mlc_err *err);

mlc_gguf_writer *mlc_gguf_writer_new(void);
void mlc_gguf_writer_free(mlc_gguf_writer *w);
/* Version 3 by default; 2 is allowed (same layout). */
void mlc_gguf_writer_set_version(mlc_gguf_writer *w, uint32_t version);

/* Setting a key twice replaces the earlier value. Values (strings, arrays) are copied.
 * mlc_gguf_writer_set handles any value including nested arrays. general.alignment, when set,
 * must be a power of two and is used for the data layout. */
mlc_status mlc_gguf_writer_set(mlc_gguf_writer *w, const char *key, const mlc_gguf_value *v);
mlc_status mlc_gguf_writer_set_u32(mlc_gguf_writer *w, const char *key, uint32_t v);
mlc_status mlc_gguf_writer_set_i32(mlc_gguf_writer *w, const char *key, int32_t v);
mlc_status mlc_gguf_writer_set_u64(mlc_gguf_writer *w, const char *key, uint64_t v);
mlc_status mlc_gguf_writer_set_f32(mlc_gguf_writer *w, const char *key, float v);
mlc_status mlc_gguf_writer_set_bool(mlc_gguf_writer *w, const char *key, bool v);
mlc_status mlc_gguf_writer_set_str(mlc_gguf_writer *w, const char *key, const char *s);
/* Array of n fixed-size elements of type elem, packed as in the file. */
mlc_status mlc_gguf_writer_set_arr(mlc_gguf_writer *w, const char *key, mlc_gguf_vtype elem,
                                   const void *data, uint64_t n);
/* Array of n NUL-terminated strings. */
mlc_status mlc_gguf_writer_set_arr_str(mlc_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n);

/* Adds a tensor; ne[0..n_dims-1]; data borrowed, or NULL to use the fill callback. */
mlc_status mlc_gguf_writer_add_tensor(mlc_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      mlc_err *err);

/* Writes the file (to path.tmp, then renamed, so a failed write leaves no half file). */
mlc_status mlc_gguf_writer_write(mlc_gguf_writer *w, const char *path, mlc_gguf_fill_fn fill,
                                 void *fill_ctx, mlc_err *err);
/* Writes to a malloc'd buffer (*out, *size; caller frees). */
mlc_status mlc_gguf_writer_write_mem(mlc_gguf_writer *w, void **out, size_t *size,
                                     mlc_gguf_fill_fn fill, void *fill_ctx, mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
