/* strbuf.h: a growable NUL-terminated string buffer for building responses and reports.
 * Out of memory is sticky (oom) so builders can append freely and check once at the end. */
#ifndef MLC_BENCH_STRBUF_H
#define MLC_BENCH_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mlc_strbuf {
    char *p;    /* NUL-terminated when len > 0; owned, free() it */
    size_t len, cap;
    bool oom;
} mlc_strbuf;

void mlc_sb_put(mlc_strbuf *b, const char *s, size_t n);
void mlc_sb_puts(mlc_strbuf *b, const char *s);
void mlc_sb_printf(mlc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
