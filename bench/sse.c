/* sse.c: incremental server-sent events parser (WHATWG HTML, "Interpreting an event stream").
 *
 * The parser sees the bytes of one response in whatever pieces the transport hands over.
 * Whole lines inside a piece are parsed in place; only a line cut by a piece boundary is
 * copied into `line` to wait for its end. Data lines are appended to `data` (each followed by
 * '\n', the spec's join), and a blank line dispatches the event with that last '\n' replaced
 * by a NUL. Both buffers grow on demand up to the event limit and are kept across
 * mlc_sse_reset(), so a parser reused for many responses stops allocating after the first. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

/* Event names longer than this are truncated: they are only compared with short names. */
#define SSE_EVENT_MAX 63
/* A raw line may exceed the data limit by its field name and separator. */
#define SSE_LINE_SLACK 64

struct mlc_sse {
    size_t max_event;
    mlc_sse_event_fn fn;
    void *ctx;

    char *data;              /* data lines of the current event, each followed by '\n' */
    size_t data_len, data_cap;
    char *line;              /* start of a line that the previous piece cut */
    size_t line_len, line_cap;
    char event[SSE_EVENT_MAX + 1];
    size_t event_len;

    bool cr_pending;         /* the last piece ended with '\r': a leading '\n' belongs to it */
    bool in_comment;         /* inside a cut comment line: its bytes are dropped, not kept */
    bool started;            /* past the optional byte order mark at the stream's start */
    unsigned bom_seen;       /* bytes of a BOM matched so far (a BOM cut by a piece boundary) */
    const char *error;       /* why parsing stopped; NULL while fine */
};

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

mlc_sse *mlc_sse_new(size_t max_event, mlc_sse_event_fn fn, void *ctx)
{
    if (!fn || max_event == 0)
        return NULL;
    mlc_sse *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max_event = max_event;
    p->fn = fn;
    p->ctx = ctx;
    return p;
}

void mlc_sse_free(mlc_sse *p)
{
    if (!p)
        return;
    free(p->data);
    free(p->line);
    free(p);
}

void mlc_sse_reset(mlc_sse *p)
{
    p->data_len = 0;
    p->line_len = 0;
    p->event_len = 0;
    p->event[0] = 0;
    p->cr_pending = false;
    p->in_comment = false;
    p->started = false;
    p->bom_seen = 0;
    p->error = NULL;
}

bool mlc_sse_pending(const mlc_sse *p)
{
    return p->line_len > 0 || p->in_comment || p->data_len > 0 || p->event_len > 0;
}

const char *mlc_sse_error(const mlc_sse *p)
{
    return p->error;
}

/* Grows *buf to hold need bytes, doubling (so appends are amortized O(1)) but never past
 * cap_max: the caller has already checked need against the limit. */
static bool grow(char **buf, size_t *cap, size_t need, size_t cap_max)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    if (n > cap_max)
        n = cap_max;
    char *nb = realloc(*buf, n);
    if (!nb)
        return false;
    *buf = nb;
    *cap = n;
    return true;
}

static bool fail(mlc_sse *p, const char *why)
{
    p->error = why;
    return false;
}

static bool dispatch(mlc_sse *p)
{
    if (p->data_len == 0) {
        /* No data field: the spec drops the event (and its name). */
        p->event_len = 0;
        return true;
    }
    size_t len = p->data_len - 1;
    p->data[len] = 0; /* the final '\n' of the join becomes the terminator */
    p->event[p->event_len] = 0;
    const char *name = p->event_len ? p->event : "message";
    /* Reset first: the callback may be the last code to look at this parser (it can stop). */
    p->data_len = 0;
    p->event_len = 0;
    if (!p->fn(p->ctx, name, p->data, len))
        return fail(p, "stopped by the event handler");
    return true;
}

/* One complete line without its terminator. */
static bool process_line(mlc_sse *p, const char *s, size_t n)
{
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return true; /* comment (": keep-alive") */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && !memcmp(s, "data", 4)) {
        /* The event's data is data_len + vlen bytes once this line's '\n' becomes its end. */
        if (p->data_len + vlen > p->max_event)
            return fail(p, "event larger than the limit");
        if (!grow(&p->data, &p->data_cap, p->data_len + vlen + 1, p->max_event + 1))
            return fail(p, "out of memory");
        memcpy(p->data + p->data_len, v, vlen);
        p->data_len += vlen;
        p->data[p->data_len++] = '\n';
    } else if (flen == 5 && !memcmp(s, "event", 5)) {
        size_t k = vlen < SSE_EVENT_MAX ? vlen : SSE_EVENT_MAX;
        memcpy(p->event, v, k);
        p->event_len = k;
    }
    /* "id", "retry" and unknown fields are ignored, as the spec says: this client never
     * reconnects, so neither the last event id nor the retry delay matters. */
    return true;
}

/* Keeps the start of a line that this piece does not finish. */
static bool keep_partial(mlc_sse *p, const char *s, size_t n)
{
    if (p->in_comment)
        return true;
    if (p->line_len == 0 && s[0] == ':') {
        /* A comment can be any length and carries nothing: drop it instead of buffering. */
        p->in_comment = true;
        return true;
    }
    if (p->line_len + n > p->max_event + SSE_LINE_SLACK)
        return fail(p, "event larger than the limit");
    if (!grow(&p->line, &p->line_cap, p->line_len + n, p->max_event + SSE_LINE_SLACK))
        return fail(p, "out of memory");
    memcpy(p->line + p->line_len, s, n);
    p->line_len += n;
    return true;
}

static bool feed_lines(mlc_sse *p, const char *buf, size_t len)
{
    const char *s = buf, *end = buf + len;
    while (s < end) {
        if (p->cr_pending) {
            p->cr_pending = false;
            if (*s == '\n') {
                s++;
                continue;
            }
        }
        /* The line ends at the first CR or LF; memchr is vectorized, a byte loop is not. */
        const char *lf = memchr(s, '\n', (size_t)(end - s));
        const char *stop = lf ? lf : end;
        const char *cr = memchr(s, '\r', (size_t)(stop - s));
        const char *eol = cr ? cr : lf;
        if (!eol)
            return keep_partial(p, s, (size_t)(end - s));
        bool ok = true;
        if (p->in_comment) {
            p->in_comment = false;
        } else if (p->line_len > 0) {
            ok = keep_partial(p, s, (size_t)(eol - s));
            if (ok) {
                size_t n = p->line_len;
                p->line_len = 0;
                ok = process_line(p, p->line, n);
            }
        } else {
            ok = process_line(p, s, (size_t)(eol - s));
        }
        if (!ok)
            return false;
        s = eol + 1;
        if (*eol == '\r') {
            if (s < end && *s == '\n')
                s++;
            else if (s == end)
                p->cr_pending = true;
        }
    }
    return true;
}

bool mlc_sse_feed(mlc_sse *p, const char *buf, size_t len)
{
    if (p->error)
        return false;
    if (!p->started) {
        /* A UTF-8 byte order mark at the very start is skipped, even when cut. */
        while (len > 0 && p->bom_seen < 3 && (unsigned char)*buf == utf8_bom[p->bom_seen]) {
            p->bom_seen++;
            buf++;
            len--;
        }
        if (p->bom_seen == 3) {
            p->started = true;
        } else if (len > 0) {
            /* Not a BOM after all: the bytes matched so far are ordinary data. */
            p->started = true;
            if (p->bom_seen && !feed_lines(p, (const char *)utf8_bom, p->bom_seen))
                return false;
        }
        if (len == 0)
            return true;
    }
    return feed_lines(p, buf, len);
}
