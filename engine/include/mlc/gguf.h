/* mlc/gguf.h: GGUF (v2, v3) reader and the value types (the writer: mlc/gguf_writer.h).
 *
 * The reader maps the file and validates every length, count, offset and shape against the
 * file size before anything is used, so a handle that opened successfully can be read
 * without further bounds checks. Strings point into the mapping and are NOT NUL-terminated
 * (use .len); keys and tensor names are copied and NUL-terminated. Everything returned is
 * owned by the handle and lives until mlc_gguf_close().
 *
 * File layout (little-endian):
 *   u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 value type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset },
 *   padding to general.alignment (default 32), tensor data (each tensor at an aligned offset).
 *   string = u64 length + bytes; array = u32 element type + u64 count + elements.
 */
#ifndef MLC_GGUF_H
#define MLC_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MLC_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define MLC_GGUF_DEFAULT_ALIGNMENT 32
#define MLC_GGUF_MAX_DIMS 4
/* Arrays of arrays are allowed to this depth; deeper nesting is refused (it would only
 * serve to exhaust the stack). */
#define MLC_GGUF_MAX_NESTING 8

typedef enum mlc_gguf_vtype {
    MLC_GGUF_UINT8 = 0,
    MLC_GGUF_INT8 = 1,
    MLC_GGUF_UINT16 = 2,
    MLC_GGUF_INT16 = 3,
    MLC_GGUF_UINT32 = 4,
    MLC_GGUF_INT32 = 5,
    MLC_GGUF_FLOAT32 = 6,
    MLC_GGUF_BOOL = 7,
    MLC_GGUF_STRING = 8,
    MLC_GGUF_ARRAY = 9,
    MLC_GGUF_UINT64 = 10,
    MLC_GGUF_INT64 = 11,
    MLC_GGUF_FLOAT64 = 12,
    MLC_GGUF_VTYPE_COUNT
} mlc_gguf_vtype;

typedef struct mlc_gguf_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} mlc_gguf_str;

/* A metadata value. Scalars are widened: unsigned types into .u, signed into .i, floats into
 * .f, so a getter can accept any integer width the writer chose. */
typedef struct mlc_gguf_value {
    mlc_gguf_vtype type;
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
        mlc_gguf_str s;
        struct {
            mlc_gguf_vtype type; /* element type */
            uint64_t n;
            /* Fixed-size elements: n packed little-endian values, possibly unaligned; read
             * them with the mlc_gguf_arr_* accessors. NULL for string/array elements. */
            const void *data;
            /* String and array elements: n decoded values. NULL for fixed-size elements. */
            const struct mlc_gguf_value *items;
        } arr;
    };
} mlc_gguf_value;

typedef struct mlc_gguf_tensor {
    const char *name;   /* NUL-terminated copy */
    uint32_t type;      /* ggml type id (mlc_type for the supported ones) */
    uint32_t n_dims;
    int64_t ne[MLC_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused = 1 */
    int64_t n_elements;
    uint64_t offset;    /* from the start of the data section */
    uint64_t nbytes;
    const void *data;   /* into the mapping */
} mlc_gguf_tensor;

typedef struct mlc_gguf mlc_gguf;

/* Opens and validates a file (mmap, read-only). On failure *out is NULL and err holds
 * "PATH: offset N: key 'K': what". */
mlc_status mlc_gguf_open(const char *path, mlc_gguf **out, mlc_err *err);
/* Same over a caller-owned buffer (not copied; must outlive the handle). name is used in
 * messages. */
mlc_status mlc_gguf_open_memory(const void *data, size_t size, const char *name, mlc_gguf **out,
                                mlc_err *err);
void mlc_gguf_close(mlc_gguf *g);

const char *mlc_gguf_path(const mlc_gguf *g);
uint32_t mlc_gguf_version(const mlc_gguf *g);
uint64_t mlc_gguf_alignment(const mlc_gguf *g);
uint64_t mlc_gguf_file_size(const mlc_gguf *g);
uint64_t mlc_gguf_data_offset(const mlc_gguf *g); /* start of the tensor data section */

/* Metadata, in file order. */
int64_t mlc_gguf_n_kv(const mlc_gguf *g);
const char *mlc_gguf_kv_key(const mlc_gguf *g, int64_t i);
const mlc_gguf_value *mlc_gguf_kv_value(const mlc_gguf *g, int64_t i);
/* NULL when the key is absent. */
const mlc_gguf_value *mlc_gguf_get(const mlc_gguf *g, const char *key);

/* Typed getters. Absent key: MLC_ERR_NOT_FOUND; wrong type: MLC_ERR_TYPE; an integer that
 * does not fit: MLC_ERR_RANGE. Messages name the file and key. Integer getters accept any
 * integer type; get_f64 accepts floats and integers. */
mlc_status mlc_gguf_get_u64(const mlc_gguf *g, const char *key, uint64_t *out, mlc_err *err);
mlc_status mlc_gguf_get_i64(const mlc_gguf *g, const char *key, int64_t *out, mlc_err *err);
mlc_status mlc_gguf_get_u32(const mlc_gguf *g, const char *key, uint32_t *out, mlc_err *err);
mlc_status mlc_gguf_get_f64(const mlc_gguf *g, const char *key, double *out, mlc_err *err);
mlc_status mlc_gguf_get_f32(const mlc_gguf *g, const char *key, float *out, mlc_err *err);
mlc_status mlc_gguf_get_bool(const mlc_gguf *g, const char *key, bool *out, mlc_err *err);
mlc_status mlc_gguf_get_str(const mlc_gguf *g, const char *key, mlc_gguf_str *out, mlc_err *err);
/* An array whose elements have type elem (MLC_GGUF_VTYPE_COUNT: any). */
mlc_status mlc_gguf_get_arr(const mlc_gguf *g, const char *key, mlc_gguf_vtype elem,
                            const mlc_gguf_value **out, mlc_err *err);

/* Element i of an array value (caller checks i < n and the element type). */
uint64_t mlc_gguf_arr_u64(const mlc_gguf_value *arr, uint64_t i); /* unsigned and bool */
int64_t mlc_gguf_arr_i64(const mlc_gguf_value *arr, uint64_t i);  /* any integer */
double mlc_gguf_arr_f64(const mlc_gguf_value *arr, uint64_t i);   /* floats and integers */
mlc_gguf_str mlc_gguf_arr_str(const mlc_gguf_value *arr, uint64_t i);

/* Size in bytes of one scalar of type t (0 for string/array). */
size_t mlc_gguf_vtype_size(mlc_gguf_vtype t);
const char *mlc_gguf_vtype_name(mlc_gguf_vtype t);
/* INT8 to INT64: written and read two's complement. */
bool mlc_gguf_vtype_is_signed(mlc_gguf_vtype t);

/* Tensors, in file order. */
int64_t mlc_gguf_n_tensors(const mlc_gguf *g);
const mlc_gguf_tensor *mlc_gguf_tensor_at(const mlc_gguf *g, int64_t i);
const mlc_gguf_tensor *mlc_gguf_find_tensor(const mlc_gguf *g, const char *name);

#ifdef __cplusplus
}
#endif
#endif
