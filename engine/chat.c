/* chat.c: chat template recognition and rendering (see mlc/chat.h). */
#include "mlc/chat.h"

#include "mlc/gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"chatml", "llama2", "llama3", "mistral", "gemma"};

const char *mlc_chat_template_name(mlc_chat_template t)
{
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

bool mlc_chat_template_from_name(const char *name, mlc_chat_template *out)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) {
            *out = (mlc_chat_template)i;
            return true;
        }
    return false;
}

static bool has(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(text + i, needle, n))
            return true;
    return false;
}

bool mlc_chat_template_detect(const char *text, size_t len, mlc_chat_template *out)
{
    *out = MLC_CHAT_CHATML;
    if (!text)
        return false;
    if (has(text, len, "<|start_header_id|>"))
        *out = MLC_CHAT_LLAMA3;
    else if (has(text, len, "<|im_start|>"))
        *out = MLC_CHAT_CHATML;
    else if (has(text, len, "<start_of_turn>"))
        *out = MLC_CHAT_GEMMA;
    else if (has(text, len, "<<SYS>>"))
        *out = MLC_CHAT_LLAMA2;
    else if (has(text, len, "[INST]"))
        *out = MLC_CHAT_MISTRAL;
    else
        return false;
    return true;
}

/* Whether the vocabulary has a token spelled text. */
static bool has_token(const mlc_gguf_value *toks, const char *text)
{
    size_t n = strlen(text);
    for (uint64_t i = 0; i < toks->arr.n; i++) {
        mlc_gguf_str t = mlc_gguf_arr_str(toks, i);
        if (t.len == n && !memcmp(t.ptr, text, n))
            return true;
    }
    return false;
}

bool mlc_chat_template_from_gguf(const mlc_gguf *g, mlc_chat_template *out)
{
    mlc_gguf_str str;
    const mlc_gguf_value *toks;
    *out = MLC_CHAT_CHATML;
    if (mlc_gguf_get_str(g, "tokenizer.chat_template", &str, NULL) == MLC_OK)
        return mlc_chat_template_detect(str.ptr, (size_t)str.len, out);
    if (mlc_gguf_get_arr(g, "tokenizer.ggml.tokens", MLC_GGUF_STRING, &toks, NULL) != MLC_OK)
        return false;
    static const struct {
        const char *token;
        mlc_chat_template t;
    } markers[] = {{"<start_of_turn>", MLC_CHAT_GEMMA}, {"<|start_header_id|>", MLC_CHAT_LLAMA3},
                   {"<|im_start|>", MLC_CHAT_CHATML}};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (has_token(toks, markers[i].token)) {
            *out = markers[i].t;
            return true;
        }
    return false;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static bool is(const char *role, const char *r)
{
    return role && !strcmp(role, r);
}

mlc_status mlc_chat_render(mlc_chat_template t, const mlc_chat_msg *msgs, size_t n, char **out,
                           mlc_err *err)
{
    sbuf b = {0};
    put(&b, "");
    const char *sys = NULL;
    size_t first = 0;
    if (n && is(msgs[0].role, "system") &&
        (t == MLC_CHAT_GEMMA || t == MLC_CHAT_MISTRAL || t == MLC_CHAT_LLAMA2)) {
        sys = msgs[0].content ? msgs[0].content : "";
        first = 1;
    }
    bool first_user = true;
    for (size_t i = first; i < n; i++) {
        const char *role = msgs[i].role ? msgs[i].role : "user";
        const char *c = msgs[i].content ? msgs[i].content : "";
        switch (t) {
        case MLC_CHAT_LLAMA3:
            put(&b, "<|start_header_id|>"), put(&b, role), put(&b, "<|end_header_id|>\n\n");
            put(&b, c), put(&b, "<|eot_id|>");
            break;
        case MLC_CHAT_CHATML:
            put(&b, "<|im_start|>"), put(&b, role), put(&b, "\n"), put(&b, c), put(&b, "<|im_end|>\n");
            break;
        case MLC_CHAT_GEMMA:
            put(&b, "<start_of_turn>"), put(&b, is(role, "assistant") ? "model" : role), put(&b, "\n");
            if (sys && first_user && !is(role, "assistant"))
                put(&b, sys), put(&b, "\n\n"), first_user = false;
            put(&b, c), put(&b, "<end_of_turn>\n");
            break;
        case MLC_CHAT_LLAMA2:
        case MLC_CHAT_MISTRAL:
            if (is(role, "assistant")) {
                put(&b, t == MLC_CHAT_LLAMA2 ? " " : ""), put(&b, c);
                put(&b, t == MLC_CHAT_LLAMA2 ? " </s><s>" : "</s>");
            } else {
                put(&b, "[INST] ");
                if (sys && first_user) {
                    if (t == MLC_CHAT_LLAMA2)
                        put(&b, "<<SYS>>\n"), put(&b, sys), put(&b, "\n<</SYS>>\n\n");
                    else
                        put(&b, sys), put(&b, "\n\n");
                }
                first_user = false;
                put(&b, c), put(&b, " [/INST]");
            }
            break;
        }
    }
    if (t == MLC_CHAT_LLAMA3)
        put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    else if (t == MLC_CHAT_CHATML)
        put(&b, "<|im_start|>assistant\n");
    else if (t == MLC_CHAT_GEMMA)
        put(&b, "<start_of_turn>model\n");
    if (b.oom) {
        free(b.p);
        return mlc_err_set(err, MLC_ERR_NOMEM, "chat template: out of memory");
    }
    *out = b.p;
    return MLC_OK;
}
