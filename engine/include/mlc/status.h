/* mlc/status.h: status codes and error messages shared by every libmlc call.
 *
 * Every fallible call returns an mlc_status and takes an optional mlc_err* (may be NULL).
 * On failure the message is one line that names what was wrong and where: the file, the
 * byte offset, the key or tensor. Callers print it as is. */
#ifndef MLC_STATUS_H
#define MLC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mlc_status {
    MLC_OK = 0,
    MLC_ERR_IO,          /* open/read/write/mmap failed */
    MLC_ERR_FORMAT,      /* malformed input: bad magic, truncated, out of bounds */
    MLC_ERR_UNSUPPORTED, /* well-formed but not handled: version, type, architecture */
    MLC_ERR_NOMEM,
    MLC_ERR_ARG,         /* bad argument from the caller */
    MLC_ERR_NOT_FOUND,   /* key, tensor or file absent */
    MLC_ERR_TYPE,        /* value present with another type */
    MLC_ERR_RANGE,       /* value present but out of range */
    MLC_ERR_BACKEND,     /* backend or device failure */
} mlc_status;

#define MLC_ERR_MSG_MAX 512

typedef struct mlc_err {
    mlc_status status;
    char msg[MLC_ERR_MSG_MAX];
} mlc_err;

/* Short constant name of a status ("format error"). */
const char *mlc_status_str(mlc_status s);

/* Fills err (when not NULL) with a printf-style message and returns s, so callers can
 * write `return mlc_err_set(err, MLC_ERR_FORMAT, "%s: ...", path);`. */
mlc_status mlc_err_set(mlc_err *err, mlc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
