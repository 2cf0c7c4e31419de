/* dataset.c: request datasets for `mlc-bench run` (see dataset.h for the formats).
 *
 * Files are read whole (at most MLC_DATASET_MAX_FILE) into a buffer we may write to: lone
 * UTF-16 surrogate escapes ("\ud800" without its pair, which Python's json module writes and
 * cJSON refuses) are rewritten in place to "\ufffd", the same six bytes. JSONL is parsed a
 * line at a time; a ShareGPT file is cut into its top-level array's elements by a small
 * scanner and each element parsed on its own, so a 600 MB file never becomes one cJSON tree
 * and every error can name the line its element starts on.
 *
 * Loading is all or nothing: prompts collect in a growing vector, and on any error the
 * vector is freed and *out left empty. Selection (num_prompts) works on indices, so ShareGPT
 * reply lengths are only tokenized for the conversations actually kept. */
#include "dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed.h"
#include "mlc/tokenizer.h"
#include "strbuf.h"

/* ------------------------------------------------------------------ random numbers */

/* splitmix64: small, fast, and good enough for sampling; one independent stream per use. */
typedef struct rng {
    uint64_t s;
} rng;

enum { STREAM_SHUFFLE = 1, STREAM_RANDOM = 2, STREAM_TRACE = 3, STREAM_PREFIX = 4 };

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static rng rng_make(uint64_t seed, uint64_t stream)
{
    rng r = {seed ^ (stream * 0xD1B54A32D192ED03ull)};
    rng_next(&r);
    return r;
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static uint64_t rng_below(rng *r, uint64_t n)
{
    uint64_t lim = -n % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= lim)
            return x % n;
    }
}

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one (overlong forms,
 * surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static bool utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* A copy of s[0..n) with each byte that starts no valid sequence replaced by U+FFFD. */
static char *utf8_sanitize(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    char *out = malloc(3 * n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    return out;
}

/* ------------------------------------------------------------------ JSON text helpers */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of "\uXXXX" at s[i] (s[i] == '\\'), or -1 when it is not one. */
static long u_escape(const char *s, size_t n, size_t i)
{
    if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Rewrites, inside the JSON strings of s[0..n), every "\uD800".."\uDFFF" escape that is not
 * half of a well-formed pair as "\ufffd". Also walks strings correctly, so "\\ud800" (an
 * escaped backslash) is left alone. */
static void fix_surrogates(char *s, size_t n)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!in_str) {
            if (ch == '"')
                in_str = true;
            continue;
        }
        if (ch == '"') {
            in_str = false;
            continue;
        }
        if (ch != '\\')
            continue;
        long u = u_escape(s, n, i);
        if (u < 0xD800 || u > 0xDFFF) {
            i++; /* skip the escaped character (a quote, a backslash, a 'u') */
            continue;
        }
        long lo = u <= 0xDBFF ? u_escape(s, n, i + 6) : -1;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            i += 11; /* a good pair */
            continue;
        }
        memcpy(s + i + 2, "fffd", 4);
        i += 5;
    }
}

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_ws(s[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------------ prompts */

typedef struct pvec {
    mlc_prompt *p;
    size_t n, cap;
} pvec;

static void prompt_free(mlc_prompt *p)
{
    free(p->text);
    free(p->messages_json);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

static void pvec_free(pvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        prompt_free(&v->p[i]);
    free(v->p);
    memset(v, 0, sizeof *v);
}

/* A new prompt at the end of v with nothing known yet, or NULL when out of memory. */
static mlc_prompt *pvec_push(pvec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        mlc_prompt *np = realloc(v->p, cap * sizeof *np);
        if (!np)
            return NULL;
        v->p = np;
        v->cap = cap;
    }
    mlc_prompt *p = &v->p[v->n++];
    *p = (mlc_prompt){.max_tokens = -1, .input_tokens = -1, .timestamp = -1, .prefix_id = -1};
    return p;
}

static bool prompt_copy(mlc_prompt *dst, const mlc_prompt *src)
{
    *dst = *src;
    dst->text = NULL;
    dst->messages_json = NULL;
    dst->ids = NULL;
    if (src->text && !(dst->text = strdup(src->text)))
        goto fail;
    if (src->messages_json && !(dst->messages_json = strdup(src->messages_json)))
        goto fail;
    if (src->ids) {
        dst->ids = malloc((size_t)src->n_ids * sizeof *dst->ids);
        if (!dst->ids)
            goto fail;
        memcpy(dst->ids, src->ids, (size_t)src->n_ids * sizeof *dst->ids);
    }
    return true;
fail:
    prompt_free(dst);
    return false;
}

/* ------------------------------------------------------------------ random token ids */

/* Ids to draw from: ids[0..n) when a tokenizer picked them, else [low, high). */
typedef struct idpool {
    int32_t *ids;
    int32_t n, low, high;
    bool ready;
} idpool;

static mlc_status pool_init(idpool *p, const mlc_dataset_opts *o, const char *who, mlc_err *err)
{
    if (p->ready)
        return MLC_OK;
    int32_t n_vocab = o->n_vocab;
    if (o->tok) {
        int32_t tv = mlc_tokenizer_n_vocab(o->tok);
        n_vocab = n_vocab > 0 && n_vocab < tv ? n_vocab : tv;
    }
    if (n_vocab <= MLC_DATASET_RANDOM_LOW)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "%s: random token ids need a vocabulary size over %d (n_vocab %d) "
                           "or a tokenizer",
                           who, MLC_DATASET_RANDOM_LOW, (int)n_vocab);
    p->low = MLC_DATASET_RANDOM_LOW;
    p->high = n_vocab;
    if (o->tok) {
        p->ids = malloc((size_t)n_vocab * sizeof *p->ids);
        if (!p->ids)
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
        for (int32_t id = p->low; id < n_vocab; id++)
            if (mlc_tokenizer_token_type(o->tok, id) == MLC_TOKEN_NORMAL &&
                !mlc_tokenizer_is_eog(o->tok, id))
                p->ids[p->n++] = id;
        if (p->n == 0)
            return mlc_err_set(err, MLC_ERR_ARG, "%s: the tokenizer has no normal tokens to draw",
                               who);
    }
    p->ready = true;
    return MLC_OK;
}

static void pool_free(idpool *p)
{
    free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Fills p with n random ids (and, with a tokenizer, their text). */
static mlc_status random_ids(mlc_prompt *p, int32_t n, const idpool *pool, rng *r,
                             const struct mlc_tokenizer *tok, const char *who, mlc_err *err)
{
    p->ids = malloc((size_t)n * sizeof *p->ids);
    if (!p->ids)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
    for (int32_t i = 0; i < n; i++)
        p->ids[i] = pool->ids
                        ? pool->ids[rng_below(r, (uint64_t)pool->n)]
                        : pool->low + (int32_t)rng_below(r, (uint64_t)(pool->high - pool->low));
    p->n_ids = n;
    p->input_tokens = n;
    if (tok) {
        char *s = NULL;
        size_t len = 0;
        mlc_status st = mlc_detokenize(tok, p->ids, (size_t)n, false, &s, &len, err);
        if (st != MLC_OK)
            return st;
        p->text = utf8_sanitize(s, len);
        free(s);
        if (!p->text)
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", who);
    }
    return MLC_OK;
}

/* A length around len: exactly len when ratio is 0, else uniform over the integers of
 * [len * (1 - ratio), len * (1 + ratio)], at least 1. */
static int32_t draw_len(rng *r, int32_t len, double ratio)
{
    if (ratio <= 0)
        return len;
    double lo_f = ceil(len * (1 - ratio) - 1e-9), hi_f = floor(len * (1 + ratio) + 1e-9);
    int64_t lo = lo_f < 1 ? 1 : (int64_t)lo_f;
    int64_t hi = hi_f > INT32_MAX ? INT32_MAX : (int64_t)hi_f;
    if (hi < lo)
        hi = lo;
    return (int32_t)(lo + (int64_t)rng_below(r, (uint64_t)(hi - lo + 1)));
}

/* ------------------------------------------------------------------ line-level parsing */

typedef struct ctx {
    const char *file; /* name in messages */
    const mlc_dataset_opts *o;
    mlc_err *err;
    idpool pool;      /* traces with input_length */
    rng r;
    /* traces: the earliest and latest time so far (s) and their lines (0: none yet) */
    double t_min, t_max;
    size_t line_min, line_max;
} ctx;

static mlc_status at(const ctx *c, size_t line, mlc_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mlc_status at(const ctx *c, size_t line, mlc_status s, const char *fmt, ...)
{
    char msg[MLC_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mlc_err_set(c->err, s, "%s:%zu: %s", c->file, line, msg);
}

static mlc_status nomem(const ctx *c)
{
    return mlc_err_set(c->err, MLC_ERR_NOMEM, "%s: out of memory", c->file);
}

/* An optional positive integer at most max; JSON null counts as absent. */
static mlc_status get_count(const ctx *c, size_t line, const cJSON *obj, const char *key,
                            int32_t max, bool *found, int32_t *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *found = false;
    if (!it || cJSON_IsNull(it))
        return MLC_OK;
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || !(d >= 1) || d != floor(d) || d > INT32_MAX)
        return at(c, line, MLC_ERR_FORMAT, "\"%s\" must be a positive integer", key);
    if (d > max)
        return at(c, line, MLC_ERR_FORMAT, "\"%s\" is %.0f, over the limit of %ld", key, d,
                  (long)max);
    *found = true;
    *v = (int32_t)d;
    return MLC_OK;
}

/* "messages": a non-empty array of {"role": string, "content": string}; kept as compact
 * JSON text. */
static mlc_status get_messages(const ctx *c, size_t line, const cJSON *m, mlc_prompt *p)
{
    if (!cJSON_IsArray(m))
        return at(c, line, MLC_ERR_FORMAT, "\"messages\" must be an array");
    if (!m->child)
        return at(c, line, MLC_ERR_FORMAT, "\"messages\" is empty");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, m)
    {
        if (!cJSON_IsObject(e))
            return at(c, line, MLC_ERR_FORMAT, "messages[%d] must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsString(role))
            return at(c, line, MLC_ERR_FORMAT, "messages[%d].role must be a string", i);
        if (!role->valuestring[0])
            return at(c, line, MLC_ERR_FORMAT, "messages[%d].role is empty", i);
        if (!cJSON_IsString(content))
            return at(c, line, MLC_ERR_FORMAT, "messages[%d].content must be a string", i);
        if (!utf8_valid(role->valuestring) || !utf8_valid(content->valuestring))
            return at(c, line, MLC_ERR_FORMAT, "messages[%d] is not valid UTF-8", i);
        i++;
    }
    p->messages_json = cJSON_PrintUnformatted(m);
    return p->messages_json ? MLC_OK : nomem(c);
}

static mlc_status get_prompt(const ctx *c, size_t line, const cJSON *s, mlc_prompt *p)
{
    if (!cJSON_IsString(s))
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" must be a string");
    if (!s->valuestring[0])
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" is empty");
    if (!utf8_valid(s->valuestring))
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" is not valid UTF-8");
    p->text = strdup(s->valuestring);
    return p->text ? MLC_OK : nomem(c);
}

typedef mlc_status (*line_fn)(ctx *c, size_t line, const cJSON *obj, mlc_prompt *p);

/* JSONL: {"prompt": S} or {"messages": [...]}, optional "max_tokens"; other keys ignored. */
static mlc_status jsonl_line(ctx *c, size_t line, const cJSON *obj, mlc_prompt *p)
{
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    mlc_status st;
    if (prompt && msgs)
        return at(c, line, MLC_ERR_FORMAT, "has both \"prompt\" and \"messages\"");
    if (prompt)
        st = get_prompt(c, line, prompt, p);
    else if (msgs)
        st = get_messages(c, line, msgs, p);
    else
        return at(c, line, MLC_ERR_FORMAT, "needs \"prompt\" or \"messages\"");
    if (st != MLC_OK)
        return st;
    bool found;
    return get_count(c, line, obj, "max_tokens", INT32_MAX, &found, &p->max_tokens);
}

/* Trace: "timestamp" (s) or "timestamp_ms"; "prompt", "messages" or "input_length";
 * optional "output_length" or "max_tokens". The absolute time goes in p->timestamp. */
static mlc_status trace_line(ctx *c, size_t line, const cJSON *obj, mlc_prompt *p)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(obj, "timestamp");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(obj, "timestamp_ms");
    if (ts && ms)
        return at(c, line, MLC_ERR_FORMAT, "has both \"timestamp\" and \"timestamp_ms\"");
    if (!ts && !ms)
        return at(c, line, MLC_ERR_FORMAT, "needs \"timestamp\" (seconds) or \"timestamp_ms\"");
    const cJSON *t = ts ? ts : ms;
    const char *tkey = ts ? "timestamp" : "timestamp_ms";
    if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble < 0)
        return at(c, line, MLC_ERR_FORMAT, "\"%s\" must be a non-negative number", tkey);
    p->timestamp = ts ? t->valuedouble : t->valuedouble / 1000.0;
    if (p->timestamp > MLC_DATASET_MAX_TIMESTAMP)
        return at(c, line, MLC_ERR_FORMAT, "\"%s\" is %g s, beyond %g s%s", tkey, p->timestamp,
                  MLC_DATASET_MAX_TIMESTAMP, ts ? " (milliseconds go in \"timestamp_ms\")" : "");
    if (!c->line_min || p->timestamp < c->t_min) {
        c->t_min = p->timestamp;
        c->line_min = line;
    }
    if (!c->line_max || p->timestamp > c->t_max) {
        c->t_max = p->timestamp;
        c->line_max = line;
    }
    if (c->t_max - c->t_min > MLC_DATASET_MAX_TRACE_SPAN)
        return at(c, line, MLC_ERR_FORMAT, "\"%s\" is %g s from line %zu's, beyond the %g s a trace may span",
                  tkey, c->t_max - c->t_min, line == c->line_max ? c->line_min : c->line_max,
                  MLC_DATASET_MAX_TRACE_SPAN);

    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    const cJSON *inlen = cJSON_GetObjectItemCaseSensitive(obj, "input_length");
    if ((prompt != NULL) + (msgs != NULL) + (inlen != NULL) > 1)
        return at(c, line, MLC_ERR_FORMAT,
                  "needs only one of \"prompt\", \"messages\" and \"input_length\"");
    mlc_status st;
    if (prompt)
        st = get_prompt(c, line, prompt, p);
    else if (msgs)
        st = get_messages(c, line, msgs, p);
    else if (inlen) {
        bool found;
        int32_t n = 0;
        st = get_count(c, line, obj, "input_length", MLC_DATASET_MAX_INPUT_LEN, &found, &n);
        if (st == MLC_OK && !found)
            st = at(c, line, MLC_ERR_FORMAT, "\"input_length\" must be a positive integer");
        if (st == MLC_OK) {
            st = pool_init(&c->pool, c->o, c->file, c->err);
            if (st == MLC_OK)
                st = random_ids(p, n, &c->pool, &c->r, c->o->tok, c->file, c->err);
        }
    } else
        return at(c, line, MLC_ERR_FORMAT, "needs \"prompt\", \"messages\" or \"input_length\"");
    if (st != MLC_OK)
        return st;

    bool f1, f2;
    int32_t v1 = 0, v2 = 0;
    if ((st = get_count(c, line, obj, "output_length", INT32_MAX, &f1, &v1)) != MLC_OK ||
        (st = get_count(c, line, obj, "max_tokens", INT32_MAX, &f2, &v2)) != MLC_OK)
        return st;
    if (f1 && f2)
        return at(c, line, MLC_ERR_FORMAT, "has both \"output_length\" and \"max_tokens\"");
    if (f1 || f2)
        p->max_tokens = f1 ? v1 : v2;
    return MLC_OK;
}

/* Parses the JSON object in s[0..n) (line `line` of the file), or reports where it is not
 * one. *obj is NULL on error. */
static mlc_status parse_object(const ctx *c, size_t line, char *s, size_t n, const char *what,
                               cJSON **obj)
{
    *obj = NULL;
    fix_surrogates(s, n);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (!j) {
        if (!end || end < s || end > s + n)
            return at(c, line, MLC_ERR_FORMAT, "invalid JSON");
        size_t ln = line, col = 1;
        for (const char *q = s; q < end; q++) {
            if (*q == '\n') {
                ln++;
                col = 1;
            } else
                col++;
        }
        return at(c, ln, MLC_ERR_FORMAT, "invalid JSON (column %zu)", col);
    }
    if (!blank(end, (size_t)(s + n - end))) {
        cJSON_Delete(j);
        return at(c, line, MLC_ERR_FORMAT, "text after the JSON value");
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return at(c, line, MLC_ERR_FORMAT, "%s must be a JSON object", what);
    }
    *obj = j;
    return MLC_OK;
}

/* Runs fn on every non-blank line of buf[0..len). */
static mlc_status each_line(ctx *c, char *buf, size_t len, line_fn fn, pvec *v)
{
    size_t line = 0;
    for (size_t pos = 0; pos < len;) {
        line++;
        char *s = buf + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        if (n > MLC_DATASET_MAX_LINE)
            return at(c, line, MLC_ERR_FORMAT, "line longer than %zu MiB",
                      MLC_DATASET_MAX_LINE >> 20);
        if (blank(s, n))
            continue;
        cJSON *obj;
        mlc_status st = parse_object(c, line, s, n, "a line", &obj);
        if (st != MLC_OK)
            return st;
        mlc_prompt *p = pvec_push(v);
        st = p ? fn(c, line, obj, p) : nomem(c);
        cJSON_Delete(obj);
        if (st != MLC_OK)
            return st;
        if (v->n > INT32_MAX)
            return at(c, line, MLC_ERR_FORMAT, "more than %d prompts", INT32_MAX);
    }
    return MLC_OK;
}

/* ------------------------------------------------------------------ ShareGPT */

typedef struct sharegpt {
    char **reply;      /* reply[i]: the first reply to prompt i (until lengths are known) */
    size_t n, cap;
    size_t skipped;
} sharegpt;

static void sharegpt_free(sharegpt *sg)
{
    for (size_t i = 0; i < sg->n; i++)
        free(sg->reply[i]);
    free(sg->reply);
    memset(sg, 0, sizeof *sg);
}

static bool role_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

static const char *const HUMAN[] = {"human", "user", NULL};
static const char *const REPLY[] = {"gpt", "assistant", "chatgpt", "bard", "bing", "model", NULL};

/* A ShareGPT conversation as chat messages: human turns as "user", replies as "assistant",
 * "system" as is, other turns left out (their text is checked by the caller's loop only up
 * to the first reply, so invalid UTF-8 later is left out too). NULL on out of memory. */
static char *sharegpt_messages(const cJSON *conv)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *t;
    cJSON_ArrayForEach(t, conv)
    {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(t, "from");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(t, "value");
        if (!cJSON_IsString(from) || !cJSON_IsString(val) || !utf8_valid(val->valuestring))
            continue;
        const char *role = role_in(from->valuestring, HUMAN) ? "user"
                         : role_in(from->valuestring, REPLY) ? "assistant"
                         : !strcmp(from->valuestring, "system") ? "system" : NULL;
        if (!role)
            continue;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", role);
        cJSON_AddStringToObject(m, "content", val->valuestring);
        cJSON_AddItemToArray(out, m);
    }
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return s;
}

/* One element of the top-level array. */
static mlc_status sharegpt_entry(ctx *c, size_t line, size_t idx, const cJSON *e, pvec *v,
                                 sharegpt *sg)
{
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(e, "conversations");
    if (!conv)
        return at(c, line, MLC_ERR_FORMAT, "[%zu]: needs \"conversations\"", idx);
    if (!cJSON_IsArray(conv))
        return at(c, line, MLC_ERR_FORMAT, "[%zu].conversations must be an array", idx);
    if (cJSON_GetArraySize(conv) < 2) {
        sg->skipped++;
        return MLC_OK;
    }
    const cJSON *human = NULL, *reply = NULL, *t;
    int i = 0;
    cJSON_ArrayForEach(t, conv)
    {
        if (!cJSON_IsObject(t))
            return at(c, line, MLC_ERR_FORMAT, "[%zu].conversations[%d] must be an object",
                      idx, i);
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(t, "from");
        if (!cJSON_IsString(from))
            return at(c, line, MLC_ERR_FORMAT,
                      "[%zu].conversations[%d].from must be a string", idx, i);
        bool want = human ? role_in(from->valuestring, REPLY) : role_in(from->valuestring, HUMAN);
        if (want) {
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(t, "value");
            if (!cJSON_IsString(val))
                return at(c, line, MLC_ERR_FORMAT,
                          "[%zu].conversations[%d].value must be a string", idx, i);
            if (!utf8_valid(val->valuestring))
                return at(c, line, MLC_ERR_FORMAT,
                          "[%zu].conversations[%d].value is not valid UTF-8", idx, i);
            if (human) {
                reply = val;
                break;
            }
            human = val;
        }
        i++;
    }
    if (!human || !reply || !human->valuestring[0] || !reply->valuestring[0]) {
        sg->skipped++;
        return MLC_OK;
    }
    if (v->n == sg->cap) {
        size_t cap = sg->cap ? sg->cap * 2 : 64;
        char **nr = realloc(sg->reply, cap * sizeof *nr);
        if (!nr)
            return nomem(c);
        sg->reply = nr;
        sg->cap = cap;
    }
    mlc_prompt *p = pvec_push(v);
    if (!p)
        return nomem(c);
    sg->reply[v->n - 1] = NULL;
    sg->n = v->n;
    if (!(p->text = strdup(human->valuestring)) ||
        !(sg->reply[v->n - 1] = strdup(reply->valuestring)))
        return nomem(c);
    if (c->o->conversations && !(p->messages_json = sharegpt_messages(conv)))
        return nomem(c);
    return MLC_OK;
}

/* Moves *i to the first non-blank byte at or after it, counting lines. */
static void skip_ws(const char *buf, size_t len, size_t *i, size_t *line)
{
    for (; *i < len && is_ws(buf[*i]); ++*i)
        *line += buf[*i] == '\n';
}

/* The end of the array element starting at buf[i]: the first ',' or closing bracket at
 * depth 0 outside strings, or len. Only brackets are counted: cJSON checks the rest. */
static size_t element_end(const char *buf, size_t len, size_t i)
{
    int depth = 0;
    bool in_str = false;
    for (size_t j = i; j < len; j++) {
        char ch = buf[j];
        if (in_str) {
            if (ch == '\\')
                j++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"')
            in_str = true;
        else if (ch == '[' || ch == '{')
            depth++;
        else if (ch == ']' || ch == '}') {
            if (depth == 0)
                return j;
            depth--;
        } else if (ch == ',' && depth == 0)
            return j;
    }
    return len;
}

/* Cuts buf[0..len) (a JSON array) into elements and parses each. */
static mlc_status load_sharegpt(ctx *c, char *buf, size_t len, pvec *v, sharegpt *sg)
{
    size_t i = 0, line = 1;
    skip_ws(buf, len, &i, &line);
    if (i == len || buf[i] != '[')
        return at(c, line, MLC_ERR_FORMAT,
                  "expected a JSON array of conversations (ShareGPT format)%s",
                  i < len && buf[i] == '{' ? "; for JSON Lines use format jsonl or trace" : "");
    i++;
    for (size_t idx = 0;; idx++) {
        skip_ws(buf, len, &i, &line);
        if (i == len)
            return at(c, line, MLC_ERR_FORMAT, "unexpected end of file: the array is not closed");
        if (buf[i] == ']' && idx == 0)
            break;
        size_t start = i, end = element_end(buf, len, i), next = end;
        while (end > start && is_ws(buf[end - 1]))
            end--;
        if (end == start)
            return at(c, line, MLC_ERR_FORMAT, "[%zu]: expected a value", idx);
        if (end - start > MLC_DATASET_MAX_LINE)
            return at(c, line, MLC_ERR_FORMAT, "[%zu]: entry longer than %zu MiB", idx,
                      MLC_DATASET_MAX_LINE >> 20);
        char what[48];
        snprintf(what, sizeof what, "[%zu]", idx);
        cJSON *e;
        mlc_status st = parse_object(c, line, buf + start, end - start, what, &e);
        if (st != MLC_OK)
            return st;
        st = sharegpt_entry(c, line, idx, e, v, sg);
        cJSON_Delete(e);
        if (st != MLC_OK)
            return st;
        if (v->n > INT32_MAX)
            return at(c, line, MLC_ERR_FORMAT, "more than %d prompts", INT32_MAX);
        for (; i < next; i++)
            line += buf[i] == '\n';
        if (i == len)
            return at(c, line, MLC_ERR_FORMAT, "unexpected end of file: the array is not closed");
        if (buf[i] == ']')
            break;
        if (buf[i] != ',')
            return at(c, line, MLC_ERR_FORMAT, "[%zu]: expected ',' or ']' after the entry", idx);
        i++;
    }
    i++; /* past the closing ']' */
    skip_ws(buf, len, &i, &line);
    if (i < len)
        return at(c, line, MLC_ERR_FORMAT, "text after the top-level array");
    return MLC_OK;
}

/* A ShareGPT prompt's max_tokens: its reply's length in tokens (with a tokenizer, no BOS/EOS)
 * or ceil(bytes / 4), at least 1. */
static mlc_status reply_tokens(const ctx *c, const char *reply, int32_t *out)
{
    size_t n = strlen(reply);
    if (c->o->tok) {
        int32_t *ids = NULL;
        mlc_status st = mlc_tokenize(c->o->tok, reply, n, false, false, &ids, &n, c->err);
        if (st != MLC_OK)
            return st;
        free(ids);
    } else
        n = (n + 3) / 4;
    *out = n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int32_t)n;
    return MLC_OK;
}

/* ------------------------------------------------------------------ selection */

/* Indices of the prompts to keep, in order: all of them; a seeded shuffle's first want; or
 * 0..n-1 repeated until there are want. *m is the count. */
static size_t *select_indices(size_t n, int32_t want, uint64_t seed, size_t *m)
{
    size_t k = want > 0 && n > 0 ? (size_t)want : n;
    size_t *sel = malloc((n > k ? n : k) * sizeof *sel + 1);
    if (!sel)
        return NULL;
    for (size_t i = 0; i < n; i++)
        sel[i] = i;
    if (k < n) {
        rng r = rng_make(seed, STREAM_SHUFFLE);
        for (size_t i = 0; i < k; i++) { /* the first k of a Fisher-Yates shuffle */
            size_t j = i + (size_t)rng_below(&r, n - i);
            size_t t = sel[i];
            sel[i] = sel[j];
            sel[j] = t;
        }
    } else
        for (size_t i = n; i < k; i++)
            sel[i] = i % n;
    *m = k;
    return sel;
}

/* Replaces v by its prompts sel[0..m): moved on first use, copied after. On failure v is
 * unchanged. */
static bool apply_selection(pvec *v, const size_t *sel, size_t m)
{
    mlc_prompt *np = malloc((m ? m : 1) * sizeof *np);
    bool *seen = calloc(v->n + m + 1, sizeof *seen), *dup = seen + v->n;
    if (!np || !seen) {
        free(np);
        free(seen);
        return false;
    }
    for (size_t i = 0; i < m; i++) { /* the copies first, while failing is still clean */
        if (!seen[sel[i]]) {
            seen[sel[i]] = true;
            continue;
        }
        if (!prompt_copy(&np[i], &v->p[sel[i]])) {
            for (size_t k = 0; k < i; k++)
                if (dup[k])
                    prompt_free(&np[k]);
            free(np);
            free(seen);
            return false;
        }
        dup[i] = true;
    }
    for (size_t i = 0; i < m; i++)
        if (!dup[i])
            np[i] = v->p[sel[i]];
    for (size_t i = 0; i < v->n; i++)
        if (!seen[i])
            prompt_free(&v->p[i]);
    free(v->p);
    free(seen);
    v->p = np;
    v->n = v->cap = m;
    return true;
}

typedef struct tkey {
    double t;
    size_t i;
} tkey;

static int tkey_cmp(const void *a, const void *b)
{
    const tkey *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Orders a trace by time (file order among equal times), keeps the first want (want > 0),
 * and makes the times relative to the first. */
static bool finish_trace(pvec *v, int32_t want)
{
    size_t n = v->n;
    tkey *k = malloc((n ? n : 1) * sizeof *k);
    size_t *sel = malloc((n ? n : 1) * sizeof *sel);
    if (!k || !sel) {
        free(k);
        free(sel);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (tkey){v->p[i].timestamp, i};
    qsort(k, n, sizeof *k, tkey_cmp);
    for (size_t i = 0; i < n; i++)
        sel[i] = k[i].i;
    size_t m = want > 0 && (size_t)want < n ? (size_t)want : n;
    free(k);
    bool ok = apply_selection(v, sel, m);
    free(sel);
    if (!ok)
        return false;
    double t0 = v->n ? v->p[0].timestamp : 0;
    for (size_t i = 0; i < v->n; i++)
        v->p[i].timestamp -= t0;
    return true;
}

/* ------------------------------------------------------------------ files */

static mlc_status read_whole(const char *path, char **buf, size_t *len, mlc_err *err)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return mlc_err_set(err, errno == ENOENT ? MLC_ERR_NOT_FOUND : MLC_ERR_IO, "%s: %s", path,
                           strerror(errno));
    struct stat sb;
    int e = fstat(fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > MLC_DATASET_MAX_FILE) {
        close(fd);
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: %llu bytes, over the limit of %zu MiB", path,
                           (unsigned long long)sb.st_size, MLC_DATASET_MAX_FILE >> 20);
    }
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 65536, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        close(fd);
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > MLC_DATASET_MAX_FILE) {
                free(b);
                close(fd);
                return mlc_err_set(err, MLC_ERR_RANGE, "%s: over the limit of %zu MiB", path,
                                   MLC_DATASET_MAX_FILE >> 20);
            }
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                close(fd);
                return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            e = errno;
            free(b);
            close(fd);
            return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(e));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (n > MLC_DATASET_MAX_FILE) {
        free(b);
        return mlc_err_set(err, MLC_ERR_RANGE, "%s: over the limit of %zu MiB", path,
                           MLC_DATASET_MAX_FILE >> 20);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return MLC_OK;
}

typedef enum fmt { FMT_AUTO, FMT_SHAREGPT, FMT_JSONL, FMT_TRACE } fmt;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        char ch = s[n - k + i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != suffix[i])
            return false;
    }
    return true;
}

/* Whether the first non-blank line of buf is an object with a timestamp key. */
static bool looks_like_trace(char *buf, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        char *s = buf + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        if (blank(s, n))
            continue;
        if (n > MLC_DATASET_MAX_LINE)
            return false;
        fix_surrogates(s, n);
        cJSON *j = cJSON_ParseWithLengthOpts(s, n, NULL, false);
        bool t = cJSON_IsObject(j) && (cJSON_GetObjectItemCaseSensitive(j, "timestamp") ||
                                       cJSON_GetObjectItemCaseSensitive(j, "timestamp_ms"));
        cJSON_Delete(j);
        return t;
    }
    return false;
}

static mlc_status detect(const char *path, char *buf, size_t len, fmt *f, mlc_err *err)
{
    if (ends_with(path, ".json")) {
        *f = FMT_SHAREGPT;
        return MLC_OK;
    }
    if (!ends_with(path, ".jsonl")) {
        size_t i = 0;
        while (i < len && is_ws(buf[i]))
            i++;
        if (i < len && buf[i] == '[') {
            *f = FMT_SHAREGPT;
            return MLC_OK;
        }
        if (i < len && buf[i] != '{')
            return mlc_err_set(err, MLC_ERR_FORMAT,
                               "%s: cannot tell the dataset format (neither .json nor .jsonl, "
                               "and not JSON); name one (sharegpt, jsonl, trace)",
                               path);
    }
    *f = looks_like_trace(buf, len) ? FMT_TRACE : FMT_JSONL;
    return MLC_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ------------------------------------------------------------------ the loaders */

static mlc_status load_random(const mlc_dataset_opts *o, pvec *v, mlc_err *err)
{
    if (o->input_len < 1 || o->input_len > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG, "random: input length %ld is not in [1, %d]",
                           (long)o->input_len, MLC_DATASET_MAX_INPUT_LEN);
    if (o->range_ratio > 0 && o->range_ratio < 1 &&
        floor(o->input_len * (1 + o->range_ratio) + 1e-9) > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG,
                           "random: input lengths up to %.0f (length %ld, range ratio %g) are "
                           "over the limit of %d",
                           floor(o->input_len * (1 + o->range_ratio) + 1e-9), (long)o->input_len,
                           o->range_ratio, MLC_DATASET_MAX_INPUT_LEN);
    if (o->output_len < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "random: output length %ld is not positive",
                           (long)o->output_len);
    if (!(o->range_ratio >= 0 && o->range_ratio < 1))
        return mlc_err_set(err, MLC_ERR_ARG, "random: range ratio %g is not in [0, 1)",
                           o->range_ratio);
    if (o->num_prompts < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "random: needs a number of prompts (got %ld)",
                           (long)o->num_prompts);
    idpool pool = {0};
    mlc_status st = pool_init(&pool, o, "random", err);
    rng r = rng_make(o->seed, STREAM_RANDOM);
    for (int32_t i = 0; st == MLC_OK && i < o->num_prompts; i++) {
        mlc_prompt *p = pvec_push(v);
        if (!p) {
            st = mlc_err_set(err, MLC_ERR_NOMEM, "random: out of memory");
            break;
        }
        int32_t in = draw_len(&r, o->input_len, o->range_ratio);
        p->max_tokens = draw_len(&r, o->output_len, o->range_ratio);
        st = random_ids(p, in, &pool, &r, o->tok, "random", err);
    }
    pool_free(&pool);
    return st;
}

static mlc_status check_prefix_opts(const mlc_dataset_opts *o, mlc_err *err)
{
    if (o->n_prefixes < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: needs a number of prefixes (got %ld)", (long)o->n_prefixes);
    if (o->prefix_len < 1 || o->suffix_len < 0 ||
        (int64_t)o->prefix_len + o->suffix_len > MLC_DATASET_MAX_INPUT_LEN)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: prefix length %ld (at least 1) and suffix length %ld "
                           "(at least 0) must add up to at most %d", (long)o->prefix_len, (long)o->suffix_len,
                           MLC_DATASET_MAX_INPUT_LEN);
    if (o->output_len < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: output length %ld is not positive", (long)o->output_len);
    if (o->num_prompts < 1)
        return mlc_err_set(err, MLC_ERR_ARG, "prefix: needs a number of prompts (got %ld)", (long)o->num_prompts);
    return MLC_OK;
}

/* One prompt: prefix k's ids, then suffix_len fresh ones; the text (with a tokenizer) is that
 * of the whole. */
static mlc_status prefix_prompt(mlc_prompt *p, const mlc_prompt *prefix, int32_t k, const mlc_dataset_opts *o,
                                const idpool *pool, rng *r, mlc_err *err)
{
    mlc_prompt suffix = {0};
    mlc_status st = MLC_OK;
    if (o->suffix_len > 0 && (st = random_ids(&suffix, o->suffix_len, pool, r, NULL, "prefix", err)) != MLC_OK)
        return st;
    int32_t n = o->prefix_len + o->suffix_len;
    p->ids = malloc((size_t)n * sizeof *p->ids);
    if (!p->ids) {
        free(suffix.ids);
        return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    memcpy(p->ids, prefix->ids, (size_t)o->prefix_len * sizeof *p->ids);
    if (o->suffix_len > 0)
        memcpy(p->ids + o->prefix_len, suffix.ids, (size_t)o->suffix_len * sizeof *p->ids);
    free(suffix.ids);
    p->n_ids = p->input_tokens = n;
    p->prefix_id = k;
    p->max_tokens = o->output_len;
    if (o->tok) {
        char *s = NULL;
        size_t len = 0;
        if ((st = mlc_detokenize(o->tok, p->ids, (size_t)n, false, &s, &len, err)) != MLC_OK)
            return st;
        p->text = utf8_sanitize(s, len);
        free(s);
        if (!p->text)
            return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    return MLC_OK;
}

static mlc_status load_prefix(const mlc_dataset_opts *o, pvec *v, mlc_err *err)
{
    mlc_status st = check_prefix_opts(o, err);
    if (st != MLC_OK)
        return st;
    idpool pool = {0};
    rng r = rng_make(o->seed, STREAM_PREFIX);
    mlc_prompt *prefixes = calloc((size_t)o->n_prefixes, sizeof *prefixes);
    if (!prefixes)
        return mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    st = pool_init(&pool, o, "prefix", err);
    for (int32_t k = 0; st == MLC_OK && k < o->n_prefixes; k++)
        st = random_ids(&prefixes[k], o->prefix_len, &pool, &r, NULL, "prefix", err);
    for (int32_t i = 0; st == MLC_OK && i < o->num_prompts; i++) {
        mlc_prompt *p = pvec_push(v);
        int32_t k = (int32_t)rng_below(&r, (uint64_t)o->n_prefixes);
        st = p ? prefix_prompt(p, &prefixes[k], k, o, &pool, &r, err)
               : mlc_err_set(err, MLC_ERR_NOMEM, "prefix: out of memory");
    }
    for (int32_t k = 0; k < o->n_prefixes; k++)
        free(prefixes[k].ids);
    free(prefixes);
    pool_free(&pool);
    return st;
}

static mlc_status load_text(ctx *c, fmt f, char *buf, size_t len, pvec *v, sharegpt *sg)
{
    /* a UTF-8 byte order mark is allowed and skipped */
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
        buf[0] = buf[1] = buf[2] = ' ';
    }
    mlc_status st;
    if (f == FMT_SHAREGPT)
        st = load_sharegpt(c, buf, len, v, sg);
    else
        st = each_line(c, buf, len, f == FMT_TRACE ? trace_line : jsonl_line, v);
    if (st == MLC_OK && v->n == 0)
        st = sg->skipped
                 ? mlc_err_set(c->err, MLC_ERR_FORMAT,
                               "%s: no usable conversation (%zu skipped: fewer than 2 turns, "
                               "no human turn with a reply, or empty text)",
                               c->file, sg->skipped)
                 : mlc_err_set(c->err, MLC_ERR_FORMAT, "%s: no prompts", c->file);
    return st;
}

mlc_status mlc_dataset_load(const mlc_dataset_opts *o, mlc_dataset *out, mlc_err *err)
{
    if (!out)
        return mlc_err_set(err, MLC_ERR_ARG, "dataset: no output");
    memset(out, 0, sizeof *out);
    if (!o)
        return mlc_err_set(err, MLC_ERR_ARG, "dataset: no options");
    const char *spec = o->spec && *o->spec ? o->spec : "default";
    const char *fs = o->format && *o->format ? o->format : "auto";
    fmt f;
    if (!strcmp(fs, "auto"))
        f = FMT_AUTO;
    else if (!strcmp(fs, "sharegpt"))
        f = FMT_SHAREGPT;
    else if (!strcmp(fs, "jsonl"))
        f = FMT_JSONL;
    else if (!strcmp(fs, "trace"))
        f = FMT_TRACE;
    else
        return mlc_err_set(err, MLC_ERR_ARG,
                           "dataset format '%s' is not one of auto, sharegpt, jsonl, trace", fs);

    pvec v = {0};
    sharegpt sg = {0};
    ctx c = {.file = spec, .o = o, .err = err, .r = rng_make(o->seed, STREAM_TRACE)};
    char *buf = NULL;
    size_t len = 0;
    mlc_status st = MLC_OK;

    if (!strcmp(spec, "random")) {
        if (f != FMT_AUTO)
            return mlc_err_set(err, MLC_ERR_ARG, "random: takes no format (got '%s')", fs);
        st = load_random(o, &v, err);
        if (st != MLC_OK)
            goto done;
        snprintf(out->name, sizeof out->name, "random");
    } else if (!strcmp(spec, "prefix")) {
        if (f != FMT_AUTO)
            return mlc_err_set(err, MLC_ERR_ARG, "prefix: takes no format (got '%s')", fs);
        st = load_prefix(o, &v, err);
        if (st != MLC_OK)
            goto done;
        snprintf(out->name, sizeof out->name, "prefix");
    } else {
        if (!strcmp(spec, "default")) {
            if (f != FMT_AUTO && f != FMT_JSONL)
                return mlc_err_set(err, MLC_ERR_ARG,
                                   "default: the built-in prompts are JSONL, not %s", fs);
            f = FMT_JSONL;
            len = mlc_embed_prompts_jsonl_len;
            buf = malloc(len + 1);
            if (!buf)
                return mlc_err_set(err, MLC_ERR_NOMEM, "default: out of memory");
            memcpy(buf, mlc_embed_prompts_jsonl, len);
            buf[len] = 0;
            snprintf(out->name, sizeof out->name, "default");
        } else {
            if ((st = read_whole(spec, &buf, &len, err)) != MLC_OK)
                goto done;
            if (f == FMT_AUTO && (st = detect(spec, buf, len, &f, err)) != MLC_OK)
                goto done;
            snprintf(out->name, sizeof out->name, "%.127s", base_name(spec));
        }
        if ((st = load_text(&c, f, buf, len, &v, &sg)) != MLC_OK)
            goto done;
        free(buf);
        buf = NULL;

        if (f == FMT_TRACE) {
            if (!finish_trace(&v, o->num_prompts)) {
                st = nomem(&c);
                goto done;
            }
            out->timed = true;
        } else {
            size_t m = 0, *sel = select_indices(v.n, o->num_prompts, o->seed, &m);
            if (!sel) {
                st = nomem(&c);
                goto done;
            }
            if (f == FMT_SHAREGPT) /* reply lengths, only of the conversations kept */
                for (size_t i = 0; i < m && st == MLC_OK; i++)
                    if (v.p[sel[i]].max_tokens <= 0)
                        st = reply_tokens(&c, sg.reply[sel[i]], &v.p[sel[i]].max_tokens);
            bool ok = st == MLC_OK && apply_selection(&v, sel, m);
            free(sel);
            if (st != MLC_OK)
                goto done;
            if (!ok) {
                st = nomem(&c);
                goto done;
            }
        }
    }
    out->p = v.p;
    out->n = (int32_t)v.n;
    out->n_skipped = sg.skipped > INT32_MAX ? INT32_MAX : (int32_t)sg.skipped;
    v.p = NULL;
    v.n = 0;

done:
    if (st != MLC_OK) {
        pvec_free(&v);
        memset(out, 0, sizeof *out);
    }
    sharegpt_free(&sg);
    free(buf);
    pool_free(&c.pool);
    return st;
}

mlc_status mlc_messages_text(const char *messages_json, char **out, mlc_err *err)
{
    *out = NULL;
    cJSON *msgs = cJSON_Parse(messages_json ? messages_json : "");
    mlc_strbuf b = {0};
    mlc_status st = MLC_OK;
    if (!cJSON_IsArray(msgs) || !msgs->child) {
        st = mlc_err_set(err, MLC_ERR_FORMAT, "prompt messages are not a non-empty JSON array");
        goto done;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            st = mlc_err_set(err, MLC_ERR_FORMAT, "prompt messages need string \"role\" and \"content\"");
            goto done;
        }
        mlc_sb_printf(&b, "%s: %s\n", role->valuestring, content->valuestring);
    }
    mlc_sb_puts(&b, "assistant:");
    if (b.oom) {
        st = mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        goto done;
    }
    *out = b.p;
    b.p = NULL;
done:
    free(b.p);
    cJSON_Delete(msgs);
    return st;
}

void mlc_dataset_free(mlc_dataset *d)
{
    if (!d)
        return;
    for (int32_t i = 0; i < d->n; i++)
        prompt_free(&d->p[i]);
    free(d->p);
    memset(d, 0, sizeof *d);
}
