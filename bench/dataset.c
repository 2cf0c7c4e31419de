/* dataset.c: request datasets for `mlc-bench run` (see dataset.h for the formats): which
 * dataset a spec names, reading its file, and selecting num_prompts of its prompts. The file
 * formats are parsed in dataset_format.c, random token ids drawn in dataset_random.c.
 *
 * Files are read whole (at most MLC_DATASET_MAX_FILE) into a buffer the parser may write to.
 * Loading is all or nothing: prompts collect in a growing list, and on any error the list is
 * freed and *out left empty. Selection (num_prompts) works on indices, so ShareGPT reply
 * lengths are only tokenized for the conversations actually kept. */
#include "dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset_format.h"
#include "dataset_random.h"
#include "embed.h"
#include "strbuf.h"

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

bool mlc_dataset_utf8_valid(const char *str)
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
char *mlc_dataset_utf8_sanitize(const char *str, size_t n)
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

/* ------------------------------------------------------------------ prompts */

static void prompt_free(mlc_prompt *p)
{
    free(p->text);
    free(p->messages_json);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

static void prompt_list_free(mlc_prompt_list *v)
{
    for (size_t i = 0; i < v->n; i++)
        prompt_free(&v->p[i]);
    free(v->p);
    memset(v, 0, sizeof *v);
}

/* A new prompt at the end of v with nothing known yet, or NULL when out of memory. */
mlc_prompt *mlc_prompt_list_push(mlc_prompt_list *v)
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
        mlc_dataset_rng r = mlc_dataset_rng_make(seed, MLC_DATASET_STREAM_SHUFFLE);
        for (size_t i = 0; i < k; i++) { /* the first k of a Fisher-Yates shuffle */
            size_t j = i + (size_t)mlc_dataset_rng_below(&r, n - i);
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
static bool apply_selection(mlc_prompt_list *v, const size_t *sel, size_t m)
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
static bool finish_trace(mlc_prompt_list *v, int32_t want)
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

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
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
    mlc_dataset_fmt f;
    if (!strcmp(fs, "auto"))
        f = MLC_DATASET_FMT_AUTO;
    else if (!strcmp(fs, "sharegpt"))
        f = MLC_DATASET_FMT_SHAREGPT;
    else if (!strcmp(fs, "jsonl"))
        f = MLC_DATASET_FMT_JSONL;
    else if (!strcmp(fs, "trace"))
        f = MLC_DATASET_FMT_TRACE;
    else
        return mlc_err_set(err, MLC_ERR_ARG,
                           "dataset format '%s' is not one of auto, sharegpt, jsonl, trace", fs);

    mlc_prompt_list v = {0};
    mlc_dataset_replies sg = {0};
    mlc_dataset_parser c = {.file = spec, .o = o, .err = err,
                            .r = mlc_dataset_rng_make(o->seed, MLC_DATASET_STREAM_TRACE)};
    char *buf = NULL;
    size_t len = 0;
    mlc_status st = MLC_OK;

    if (!strcmp(spec, "random")) {
        if (f != MLC_DATASET_FMT_AUTO)
            return mlc_err_set(err, MLC_ERR_ARG, "random: takes no format (got '%s')", fs);
        st = mlc_dataset_load_random(o, &v, err);
        if (st != MLC_OK)
            goto done;
        snprintf(out->name, sizeof out->name, "random");
    } else if (!strcmp(spec, "prefix")) {
        if (f != MLC_DATASET_FMT_AUTO)
            return mlc_err_set(err, MLC_ERR_ARG, "prefix: takes no format (got '%s')", fs);
        st = mlc_dataset_load_prefix(o, &v, err);
        if (st != MLC_OK)
            goto done;
        snprintf(out->name, sizeof out->name, "prefix");
    } else {
        if (!strcmp(spec, "default")) {
            if (f != MLC_DATASET_FMT_AUTO && f != MLC_DATASET_FMT_JSONL)
                return mlc_err_set(err, MLC_ERR_ARG,
                                   "default: the built-in prompts are JSONL, not %s", fs);
            f = MLC_DATASET_FMT_JSONL;
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
            if (f == MLC_DATASET_FMT_AUTO &&
                (st = mlc_dataset_detect(spec, buf, len, &f, err)) != MLC_OK)
                goto done;
            snprintf(out->name, sizeof out->name, "%.127s", base_name(spec));
        }
        if ((st = mlc_dataset_parse_text(&c, f, buf, len, &v, &sg)) != MLC_OK)
            goto done;
        free(buf);
        buf = NULL;

        if (f == MLC_DATASET_FMT_TRACE) {
            if (!finish_trace(&v, o->num_prompts)) {
                st = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", spec);
                goto done;
            }
            out->timed = true;
        } else {
            size_t m = 0, *sel = select_indices(v.n, o->num_prompts, o->seed, &m);
            if (!sel) {
                st = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", spec);
                goto done;
            }
            if (f == MLC_DATASET_FMT_SHAREGPT) /* reply lengths, only of the conversations kept */
                for (size_t i = 0; i < m && st == MLC_OK; i++)
                    if (v.p[sel[i]].max_tokens <= 0)
                        st = mlc_dataset_reply_tokens(&c, sg.reply[sel[i]], &v.p[sel[i]].max_tokens);
            bool ok = st == MLC_OK && apply_selection(&v, sel, m);
            free(sel);
            if (st != MLC_OK)
                goto done;
            if (!ok) {
                st = mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", spec);
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
        prompt_list_free(&v);
        memset(out, 0, sizeof *out);
    }
    mlc_dataset_replies_free(&sg);
    free(buf);
    mlc_dataset_pool_free(&c.pool);
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
