/* dataset_format.c: the dataset file formats, ShareGPT, JSONL and traces (dataset.h describes
 * them; dataset_format.h says what the loader calls).
 *
 * Lone UTF-16 surrogate escapes ("\ud800" without its pair, which Python's json module writes
 * and cJSON refuses) are rewritten in place to "\ufffd", the same six bytes. JSONL is parsed a
 * line at a time; a ShareGPT file is cut into its top-level array's elements by a small
 * scanner and each element parsed on its own, so a 600 MB file never becomes one cJSON tree
 * and every error can name the line its element starts on. */
#include "dataset_format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc/tokenizer.h"

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

/* ------------------------------------------------------------------ line-level parsing */

static mlc_status at(const mlc_dataset_parser *c, size_t line, mlc_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mlc_status at(const mlc_dataset_parser *c, size_t line, mlc_status s, const char *fmt, ...)
{
    char msg[MLC_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mlc_err_set(c->err, s, "%s:%zu: %s", c->file, line, msg);
}

static mlc_status nomem(const mlc_dataset_parser *c)
{
    return mlc_err_set(c->err, MLC_ERR_NOMEM, "%s: out of memory", c->file);
}

/* An optional positive integer at most max; JSON null counts as absent. */
static mlc_status get_count(const mlc_dataset_parser *c, size_t line, const cJSON *obj,
                            const char *key, int32_t max, bool *found, int32_t *v)
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
static mlc_status get_messages(const mlc_dataset_parser *c, size_t line, const cJSON *m,
                               mlc_prompt *p)
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
        if (!mlc_dataset_utf8_valid(role->valuestring) || !mlc_dataset_utf8_valid(content->valuestring))
            return at(c, line, MLC_ERR_FORMAT, "messages[%d] is not valid UTF-8", i);
        i++;
    }
    p->messages_json = cJSON_PrintUnformatted(m);
    return p->messages_json ? MLC_OK : nomem(c);
}

static mlc_status get_prompt(const mlc_dataset_parser *c, size_t line, const cJSON *s, mlc_prompt *p)
{
    if (!cJSON_IsString(s))
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" must be a string");
    if (!s->valuestring[0])
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" is empty");
    if (!mlc_dataset_utf8_valid(s->valuestring))
        return at(c, line, MLC_ERR_FORMAT, "\"prompt\" is not valid UTF-8");
    p->text = strdup(s->valuestring);
    return p->text ? MLC_OK : nomem(c);
}

typedef mlc_status (*line_fn)(mlc_dataset_parser *c, size_t line, const cJSON *obj, mlc_prompt *p);

/* JSONL: {"prompt": S} or {"messages": [...]}, optional "max_tokens"; other keys ignored. */
static mlc_status jsonl_line(mlc_dataset_parser *c, size_t line, const cJSON *obj, mlc_prompt *p)
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
static mlc_status trace_line(mlc_dataset_parser *c, size_t line, const cJSON *obj, mlc_prompt *p)
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
            st = mlc_dataset_pool_init(&c->pool, c->o, c->file, c->err);
            if (st == MLC_OK)
                st = mlc_dataset_random_ids(p, n, &c->pool, &c->r, c->o->tok, c->file, c->err);
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
static mlc_status parse_object(const mlc_dataset_parser *c, size_t line, char *s, size_t n,
                               const char *what, cJSON **obj)
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
static mlc_status each_line(mlc_dataset_parser *c, char *buf, size_t len, line_fn fn,
                            mlc_prompt_list *v)
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
        mlc_prompt *p = mlc_prompt_list_push(v);
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

void mlc_dataset_replies_free(mlc_dataset_replies *sg)
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
        if (!cJSON_IsString(from) || !cJSON_IsString(val) || !mlc_dataset_utf8_valid(val->valuestring))
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
static mlc_status sharegpt_entry(mlc_dataset_parser *c, size_t line, size_t idx, const cJSON *e,
                                 mlc_prompt_list *v, mlc_dataset_replies *sg)
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
            if (!mlc_dataset_utf8_valid(val->valuestring))
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
    mlc_prompt *p = mlc_prompt_list_push(v);
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
static mlc_status load_sharegpt(mlc_dataset_parser *c, char *buf, size_t len, mlc_prompt_list *v,
                                mlc_dataset_replies *sg)
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
mlc_status mlc_dataset_reply_tokens(const mlc_dataset_parser *c, const char *reply, int32_t *out)
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

/* ------------------------------------------------------------------ which format */

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

mlc_status mlc_dataset_detect(const char *path, char *buf, size_t len, mlc_dataset_fmt *f,
                              mlc_err *err)
{
    if (ends_with(path, ".json")) {
        *f = MLC_DATASET_FMT_SHAREGPT;
        return MLC_OK;
    }
    if (!ends_with(path, ".jsonl")) {
        size_t i = 0;
        while (i < len && is_ws(buf[i]))
            i++;
        if (i < len && buf[i] == '[') {
            *f = MLC_DATASET_FMT_SHAREGPT;
            return MLC_OK;
        }
        if (i < len && buf[i] != '{')
            return mlc_err_set(err, MLC_ERR_FORMAT,
                               "%s: cannot tell the dataset format (neither .json nor .jsonl, "
                               "and not JSON); name one (sharegpt, jsonl, trace)",
                               path);
    }
    *f = looks_like_trace(buf, len) ? MLC_DATASET_FMT_TRACE : MLC_DATASET_FMT_JSONL;
    return MLC_OK;
}

mlc_status mlc_dataset_parse_text(mlc_dataset_parser *c, mlc_dataset_fmt f, char *buf, size_t len,
                                  mlc_prompt_list *v, mlc_dataset_replies *sg)
{
    /* a UTF-8 byte order mark is allowed and skipped */
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
        buf[0] = buf[1] = buf[2] = ' ';
    }
    mlc_status st;
    if (f == MLC_DATASET_FMT_SHAREGPT)
        st = load_sharegpt(c, buf, len, v, sg);
    else
        st = each_line(c, buf, len, f == MLC_DATASET_FMT_TRACE ? trace_line : jsonl_line, v);
    if (st == MLC_OK && v->n == 0)
        st = sg->skipped
                 ? mlc_err_set(c->err, MLC_ERR_FORMAT,
                               "%s: no usable conversation (%zu skipped: fewer than 2 turns, "
                               "no human turn with a reply, or empty text)",
                               c->file, sg->skipped)
                 : mlc_err_set(c->err, MLC_ERR_FORMAT, "%s: no prompts", c->file);
    return st;
}
