/* detokenize.c: token ids back to text, as llama.cpp's token_to_piece and detokenize (see
 * mlc/tokenizer.h): SentencePiece and gemma4 pieces turn U+2581 back into spaces, byte-level
 * BPE pieces map their code points back to bytes, byte tokens give their byte, and BPE
 * output gets llama.cpp's clean-up of spaces where the vocabulary asks for it. */
#include "mlc/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

/* Output that counts what does not fit. strip: drop one leading space of the next bytes
 * (llama.cpp's lstrip for the first token of a detokenization). */
typedef struct sink {
    char *buf;
    size_t cap, len;
    bool strip;
} sink;

static void sink_put(sink *k, const char *s, size_t n)
{
    if (k->strip && n) {
        if (s[0] == ' ') {
            s++;
            n--;
        }
        k->strip = false;
    }
    if (k->len < k->cap) {
        size_t room = k->cap - k->len;
        memcpy(k->buf + k->len, s, n < room ? n : room);
    }
    k->len += n;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* <0xXX> -> XX, parsed from the 4th byte on as llama.cpp does. */
static unsigned char byte_token_value(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 3; i < n && hex_digit(s[i]) >= 0; i++)
        v = v * 16 + (unsigned)hex_digit(s[i]);
    return (unsigned char)v;
}

static void spm_unescape(const char *s, size_t n, sink *k)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            sink_put(k, s + run, i - run);
            sink_put(k, " ", 1);
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    sink_put(k, s + run, n - run);
}

/* Byte-level code points back to bytes; one that is not in the alphabet is written as
 * llama.cpp writes it: "[UNK_BYTE_0x" + its UTF-8 in hex + the whole token text + "]". */
static void bpe_unmap(const char *s, size_t n, sink *k)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += mlc_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = mlc_cp_to_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            sink_put(k, &c, 1);
            continue;
        }
        char u[4], hex[32];
        size_t un = mlc_utf8_encode(cp, u), o = 0;
        for (size_t j = 0; j < un; j++)
            o += (size_t)snprintf(hex + o, sizeof hex - o, "%02x", (unsigned char)u[j]);
        sink_put(k, "[UNK_BYTE_0x", 12);
        sink_put(k, hex, o);
        sink_put(k, s, n);
        sink_put(k, "]", 1);
    }
}

static void put_piece(const mlc_tokenizer *t, int32_t id, bool special, sink *k)
{
    const tok_info *e = &t->toks[id];
    const char *s = t->text + e->off;
    if (e->attr & (A_CONTROL | A_UNKNOWN | A_USER)) {
        if (special || (e->attr & A_USER))
            sink_put(k, s, e->len);
    } else if (e->attr & A_NORMAL) {
        if (t->kind == KIND_SPM || t->escape_spaces)
            spm_unescape(s, e->len, k);
        else
            bpe_unmap(s, e->len, k);
    } else if (e->attr & A_BYTE) {
        char b = (char)byte_token_value(s, e->len);
        sink_put(k, &b, 1);
    } /* unused and undefined tokens have no text */
}

size_t mlc_token_to_piece(const mlc_tokenizer *t, int32_t id, char *buf, size_t cap, bool special)
{
    if (!t || id < 0 || id >= t->n_vocab)
        return 0;
    sink k = {buf, buf ? cap : 0, 0, false};
    put_piece(t, id, special, &k);
    return k.len;
}

/* llama.cpp's clean_up_tokenization, three passes in place, kept byte for byte. */
static size_t clean_pass1(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            w--;
        s[w++] = x;
    }
    return w;
}

static size_t clean_pass2(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            w--;          /* the space before */
            s[++i] = '\0'; /* and the one after, which is skipped */
        }
        s[w++] = x;
    }
    return w;
}

static bool drops_space(const char *s, size_t i, size_t n)
{
    char a = s[i + 1];
    if (a == 's' || a == 'm')
        return true;
    if (a == 't' || a == 'd' || i + 2 >= n)
        return false;
    char b = s[i + 2];
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e');
}

static size_t clean_pass3(char *s, size_t n)
{
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n && drops_space(s, i, n))
            w--;
        s[w++] = x;
    }
    return w;
}

static void write_pieces(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                         sink *k)
{
    for (size_t i = 0; i < n; i++) {
        k->strip = i == 0 && t->add_space_prefix;
        put_piece(t, ids[i], special, k);
    }
    k->strip = false;
}

mlc_status mlc_detokenize(const mlc_tokenizer *t, const int32_t *ids, size_t n, bool special,
                          char **out, size_t *out_len, mlc_err *err)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t || !out || (!ids && n))
        return mlc_err_set(err, MLC_ERR_ARG, "mlc_detokenize: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return mlc_err_set(err, MLC_ERR_RANGE, "%s: detokenize: token id %d at %zu out of "
                               "range (vocabulary of %d tokens)", t->path, ids[i], i, t->n_vocab);
    sink k = {0};
    write_pieces(t, ids, n, special, &k);
    size_t len = k.len;
    char *s = malloc(len + 1);
    if (!s)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: detokenize: out of memory", t->path);
    k = (sink){s, len, 0, false};
    write_pieces(t, ids, n, special, &k);
    if (t->clean_spaces)
        len = clean_pass3(s, clean_pass2(s, clean_pass1(s, len)));
    s[len] = '\0';
    *out = s;
    if (out_len)
        *out_len = len;
    return MLC_OK;
}
