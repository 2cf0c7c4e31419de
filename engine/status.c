/* status.c: status names and the error-message helper. */
#include "mlc/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *mlc_status_str(mlc_status s)
{
    switch (s) {
    case MLC_OK: return "ok";
    case MLC_ERR_IO: return "i/o error";
    case MLC_ERR_FORMAT: return "format error";
    case MLC_ERR_UNSUPPORTED: return "unsupported";
    case MLC_ERR_NOMEM: return "out of memory";
    case MLC_ERR_ARG: return "invalid argument";
    case MLC_ERR_NOT_FOUND: return "not found";
    case MLC_ERR_TYPE: return "type mismatch";
    case MLC_ERR_RANGE: return "out of range";
    case MLC_ERR_BACKEND: return "backend error";
    }
    return "unknown status";
}

mlc_status mlc_err_set(mlc_err *err, mlc_status s, const char *fmt, ...)
{
    if (!err)
        return s;
    err->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return s;
}
