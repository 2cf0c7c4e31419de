/* pretok.c: llama.cpp's pre-tokenizers as hand-written matchers (see pretok.h).
 *
 * Each regex of a set is a matcher: the length of the match at a position, 0 for none. A
 * pass runs one matcher over every piece as std::regex_iterator does: leftmost match, then
 * on after it; the text between matches stays a piece of its own. Matchers give the match
 * ECMAScript picks (first alternative that succeeds, greedy with backtracking), worked out
 * per regex in the comments. Character classes follow what llama.cpp's regexes see:
 *   - regexes with \p{..} run on a copy where a non-ASCII code point is one byte standing
 *     for its category (white space for \s); ASCII keeps its own characters, and llama.cpp
 *     files '~' under no category, so its [\p{S}] never matches '~';
 *   - the other regexes run on the code points, except that non-ASCII white space reads
 *     as \v (wcp_at), so it matches \s and none of the ranges. */
#include "pretok.h"

#include <stdbool.h>
#include <string.h>

#include "unicode.h"

enum {
    L = MLC_CP_LETTER,
    N = MLC_CP_NUMBER,
    P = MLC_CP_PUNCT,
    SP = MLC_CP_SPACE,
    ANY = MLC_CP_ANY,
    M = MLC_CP_MARK,
    S = MLC_CP_SYMBOL,
};

#define NONE 0xFFFFFFFFu

typedef struct seg {
    const uint32_t *cp;
    const uint8_t *fl;
    size_t start, end;
} seg;

static uint8_t fl_at(const seg *s, size_t p) { return p < s->end ? s->fl[p] : 0; }
static uint32_t cp_at(const seg *s, size_t p) { return p < s->end ? s->cp[p] : NONE; }

static uint32_t wcp_at(const seg *s, size_t p)
{
    uint32_t c = cp_at(s, p);
    return c != NONE && c > 0x7F && (s->fl[p] & SP) ? 0x0B : c;
}

static bool is_nl(uint32_t c) { return c == '\r' || c == '\n'; }
static bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool is_alpha(uint32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool ascii_graph_nonalnum(uint32_t c)
{
    return c >= 0x21 && c <= 0x7E && !is_alpha(c) && !is_digit(c);
}

/* Code points from p on whose flags share a bit with mask. */
static size_t run(const seg *s, size_t p, uint8_t mask)
{
    size_t n = 0;
    while (fl_at(s, p + n) & mask)
        n++;
    return n;
}

/* The same, stopping at max (0: no limit): \p{N}{1,3} must not scan a long run of digits
 * once per group. */
static size_t run_max(const seg *s, size_t p, uint8_t mask, size_t max)
{
    size_t n = 0;
    while ((!max || n < max) && (fl_at(s, p + n) & mask))
        n++;
    return n;
}

/* A code point in the segment with none of the flags in excl: [^\s\p{L}\p{N}] and kin. */
static bool other(const seg *s, size_t p, uint8_t excl)
{
    uint8_t f = fl_at(s, p);
    return (f & ANY) && !(f & excl);
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at p (case-insensitively with fold), or 0. */
static size_t contraction(const seg *s, size_t p, bool fold)
{
    if (cp_at(s, p) != '\'' || p + 1 >= s->end)
        return 0;
    uint32_t a = cp_at(s, p + 1), b = cp_at(s, p + 2);
    if (fold) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (p + 2 < s->end &&
        ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

/* \s*[\r\n]+ (with_nl) | \s+(?!\S) | \s+ : up to the last newline of the white-space run;
 * else the run less its last code point when a non-space follows; else the run. */
static size_t spaces(const seg *s, size_t p, bool with_nl)
{
    size_t n = 0, last_nl = 0;
    for (; fl_at(s, p + n) & SP; n++)
        if (is_nl(cp_at(s, p + n)))
            last_nl = n + 1;
    if (with_nl && last_nl)
        return last_nl;
    return n > 1 && p + n < s->end ? n - 1 : n;
}

typedef struct range {
    uint32_t lo, hi;
} range;

static bool in_ranges(uint32_t c, const range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return true;
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ GPT-2 */

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ as llama.cpp's
 * own splitter runs it (it never fails to match). */
static size_t m_gpt2(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    size_t m = contraction(s, p, false);
    if (m)
        return m;
    const bool sp = cp_at(s, p) == ' ';
    const uint8_t f2 = fl_at(s, p + sp);
    if (f2 & (L | N))
        return sp + run(s, p + sp, f2 & L ? L : N);
    if (other(s, p + sp, SP | L | N)) {
        size_t q = p + sp;
        while (other(s, q, SP | L | N))
            q++;
        return q - p;
    }
    return spaces(s, p, false);
}

/* ------------------------------------------------------------------ Llama 3 and kin */

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?W+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+T*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ with W = \p{L} (or [\p{L}\p{M}], marks then also leaving the
 * third class), D digits (0: any number) and T the characters of tail. */
typedef struct l3opt {
    bool contractions, marks;
    unsigned digits;
    const char *tail;
    bool cascade; /* jais-2: \s{512}(?!\S)|\s{256}(?!\S)|...|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}
                     in place of \s+(?!\S)|\s+ */
} l3opt;

static bool in_tail(const char *tail, uint32_t c)
{
    return c != 0 && c < 0x80 && strchr(tail, (int)c);
}

/* \s*[\r\n]+, then jais-2's cascade: the largest of 512, 256, ..., 4, 2, 1 that fits the
 * white-space run and is followed by white space or the end, else one code point. */
static size_t spaces_cascade(const seg *s, size_t p)
{
    size_t n = 0, last_nl = 0;
    for (; fl_at(s, p + n) & SP; n++)
        if (is_nl(cp_at(s, p + n)))
            last_nl = n + 1;
    if (last_nl)
        return last_nl;
    for (size_t k = 512; k >= 1; k /= 2)
        if (k < n || (k == n && p + n == s->end))
            return k;
    return 1;
}

static size_t m_llama3(const seg *s, size_t p, const void *arg)
{
    const l3opt *o = arg;
    const uint8_t word = o->marks ? (L | M) : L;
    size_t n = o->contractions ? contraction(s, p, true) : 0;
    if (n)
        return n;
    const uint32_t c = cp_at(s, p);
    const uint8_t f = fl_at(s, p);
    if (!is_nl(c) && !(f & (L | N)) && (n = run(s, p + 1, word)))
        return 1 + n;
    if ((n = run(s, p, word)))
        return n;
    if (f & N)
        return run_max(s, p, N, o->digits);
    const uint8_t excl = SP | L | N | (o->marks ? M : 0);
    size_t q = p + (c == ' ');
    if (other(s, q, excl)) {
        while (other(s, q, excl))
            q++;
        while (q < s->end && in_tail(o->tail, s->cp[q]))
            q++;
        return q - p;
    }
    return o->cascade ? spaces_cascade(s, p) : spaces(s, p, true);
}

/* ------------------------------------------------------------------ GPT-4o and kin */

/* llama.cpp's form of [^\r\n\p{L}\p{N}]?U*W+C?|[^\r\n\p{L}\p{N}]?U+W*C?|\p{N}{1,D}|
 * ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+, with U "a letter but not a-z" and
 * W "a letter but not A-Z" (so a non-ASCII letter is both), C an optional contraction. */
typedef struct g4opt {
    bool contractions, marks;
    unsigned digits;
} g4opt;

static bool g_upper(const seg *s, size_t p, uint8_t word)
{
    uint32_t c = cp_at(s, p);
    return (fl_at(s, p) & word) && !(c >= 'a' && c <= 'z');
}

static bool g_lower(const seg *s, size_t p, uint8_t word)
{
    uint32_t c = cp_at(s, p);
    return (fl_at(s, p) & word) && !(c >= 'A' && c <= 'Z');
}

/* U*W+ at q: backtracking gives the longest U run whose next code point starts W+. */
static size_t g_word1(const seg *s, size_t q, uint8_t word)
{
    size_t u = 0;
    while (g_upper(s, q + u, word))
        u++;
    for (size_t k = u + 1; k-- > 0;) {
        if (!g_lower(s, q + k, word))
            continue;
        size_t m = 0;
        while (g_lower(s, q + k + m, word))
            m++;
        return k + m;
    }
    return 0;
}

/* U+W* at q. */
static size_t g_word2(const seg *s, size_t q, uint8_t word)
{
    size_t u = 0, m = 0;
    while (g_upper(s, q + u, word))
        u++;
    if (!u)
        return 0;
    while (g_lower(s, q + u + m, word))
        m++;
    return u + m;
}

static size_t m_gpt4o(const seg *s, size_t p, const void *arg)
{
    const g4opt *o = arg;
    const uint8_t word = o->marks ? (L | M) : L;
    const uint32_t c = cp_at(s, p);
    const uint8_t f = fl_at(s, p);
    const bool lead = !is_nl(c) && !(f & (L | N));
    size_t (*const alts[2])(const seg *, size_t, uint8_t) = {g_word1, g_word2};
    for (int a = 0; a < 2; a++) {
        for (int with = lead; with >= 0; with--) {
            size_t n = alts[a](s, p + (size_t)with, word);
            if (!n)
                continue;
            size_t e = p + (size_t)with + n;
            return e - p + (o->contractions ? contraction(s, e, true) : 0);
        }
    }
    if (f & N)
        return run_max(s, p, N, o->digits);
    size_t q = p + (c == ' ');
    if (other(s, q, SP | L | N)) {
        while (other(s, q, SP | L | N))
            q++;
        while (q < s->end && in_tail("\r\n/", s->cp[q]))
            q++;
        return q - p;
    }
    return spaces(s, p, true);
}

/* ------------------------------------------------------------------ Kimi K2 */

/* Han ideographs (CJK unified ideographs and extensions A-F, compatibility ideographs). */
static bool is_han(uint32_t c)
{
    static const range han[] = {{0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF},
                                {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F}, {0x2B820, 0x2CEAF},
                                {0x2CEB0, 0x2EBEF}, {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F}};
    return in_ranges(c, han, COUNT(han));
}

static bool k2_letter(const seg *s, size_t p)
{
    return (fl_at(s, p) & L) && !is_han(s->cp[p]);
}

/* Kimi K2, as llama.cpp's own splitter runs it: [\p{Han}]+ | [^\r\n\p{L}\p{N}]? and the
 * letters that are not Han, then an optional contraction | \p{N}{1,3} |
 *  ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t m_kimi(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    const uint32_t c = cp_at(s, p);
    const uint8_t f = fl_at(s, p);
    size_t n = 0;
    while (p + n < s->end && is_han(s->cp[p + n]))
        n++;
    if (n)
        return n;
    const bool lead = !is_nl(c) && !(f & (L | N));
    if (k2_letter(s, p) || (lead && k2_letter(s, p + 1))) {
        size_t q = p + lead;
        while (k2_letter(s, q))
            q++;
        return q - p + contraction(s, q, true);
    }
    if (f & N)
        return run_max(s, p, N, 3);
    size_t q = p + (c == ' ');
    if (other(s, q, SP | L | N)) {
        while (other(s, q, SP | L | N))
            q++;
        while (is_nl(cp_at(s, q)))
            q++;
        return q - p;
    }
    n = spaces(s, p, true);
    return n ? n : 1;
}

/* ------------------------------------------------------------------ DeepSeek */

/* \p{P} or \p{S} as llama.cpp's regexes see them (no '~'). */
static bool punct_sym(const seg *s, size_t p)
{
    uint8_t f = fl_at(s, p);
    return (f & P) || ((f & S) && cp_at(s, p) != '~');
}

/* [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
 * ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+  (DeepSeek V3's third regex; digits and
 * code points of no listed class match nothing and stay between matches). Spark 2.5's has
 * no [\r\n]* after punctuation and [\r\n] in place of \s*[\r\n]+ (arg non-NULL). */
static size_t m_deepseek3(const seg *s, size_t p, const void *arg)
{
    const bool spark = arg != NULL;
    const uint32_t c = cp_at(s, p);
    const uint8_t f = fl_at(s, p);
    size_t n = 0;
    if (ascii_graph_nonalnum(c)) {
        while (is_alpha(cp_at(s, p + 1 + n)))
            n++;
        if (n)
            return 1 + n;
    }
    if (!is_nl(c) && !(f & L) && !punct_sym(s, p) && (n = run(s, p + 1, L | M)))
        return 1 + n;
    if ((n = run(s, p, L | M)))
        return n;
    size_t q = p + (c == ' ' && punct_sym(s, p + 1));
    if (punct_sym(s, q)) {
        while (punct_sym(s, q))
            q++;
        while (!spark && is_nl(cp_at(s, q)))
            q++;
        return q - p;
    }
    if (spark && is_nl(c))
        return 1;
    return spaces(s, p, !spark);
}

/* DeepSeek LLM's letters: [A-Za-zµÀ-ÖØ-öø-ƺ ... 𞤀-𞥃], its ranges in order. */
static const range ds_letters[] = {
    {0x0041, 0x005A},   {0x0061, 0x007A},   {0x00B5, 0x00B5},   {0x00C0, 0x00D6},
    {0x00D8, 0x00F6},   {0x00F8, 0x01BA},   {0x01BC, 0x01BF},   {0x01C4, 0x0293},
    {0x0295, 0x02AF},   {0x0370, 0x0373},   {0x0376, 0x0377},   {0x037B, 0x037D},
    {0x037F, 0x037F},   {0x0386, 0x0386},   {0x0388, 0x038A},   {0x038C, 0x038C},
    {0x038E, 0x03A1},   {0x03A3, 0x03F5},   {0x03F7, 0x0481},   {0x048A, 0x052F},
    {0x0531, 0x0556},   {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

/* DeepSeek LLM's punctuation: [!-/:-~！-／：-～‘-‟　-。] */
static const range ds_punct[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
    {0x2018, 0x201F}, {0x3000, 0x3002},
};

/* DeepSeek's CJK: [一-龥ࠀ-一가-퟿] */
static const range ds_cjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};

/* DeepSeek V3's CJK: [一-龥぀-ゟ゠-ヿ] */
static const range ds3_cjk[] = {{0x4E00, 0x9FA5}, {0x3040, 0x309F}, {0x30A0, 0x30FF}};

/* [ranges]+ on the code points. */
static size_t range_run(const seg *s, size_t p, const range *r, size_t n)
{
    size_t k = 0;
    while (p + k < s->end && in_ranges(wcp_at(s, p + k), r, n))
        k++;
    return k;
}

/* \s?[ranges]+ */
static size_t space_opt_ranges(const seg *s, size_t p, const range *r, size_t n)
{
    if (fl_at(s, p) & SP) {
        size_t k = range_run(s, p + 1, r, n);
        return k ? 1 + k : 0;
    }
    return range_run(s, p, r, n);
}

static size_t m_ds_letters(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return space_opt_ranges(s, p, ds_letters, COUNT(ds_letters));
}

static size_t m_ds_punct(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return space_opt_ranges(s, p, ds_punct, COUNT(ds_punct));
}

static size_t m_ds_cjk(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return range_run(s, p, ds_cjk, COUNT(ds_cjk));
}

static size_t m_ds3_cjk(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return range_run(s, p, ds3_cjk, COUNT(ds3_cjk));
}

/* \s+$ : the white space that ends the piece. A position inside a run that started
 * earlier cannot match when the run's start did not. */
static size_t m_trailing_spaces(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    if (p > s->start && (s->fl[p - 1] & SP))
        return 0;
    size_t n = run(s, p, SP);
    return n && p + n == s->end ? n : 0;
}

/* \s?\p{X}+ for one category. */
static size_t space_opt_class(const seg *s, size_t p, uint8_t cls)
{
    if (fl_at(s, p) & SP) {
        size_t n = run(s, p + 1, cls);
        return n ? 1 + n : 0;
    }
    return run(s, p, cls);
}

static size_t m_space_letters(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return space_opt_class(s, p, L);
}

static size_t m_space_punct(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return space_opt_class(s, p, P);
}

/* ------------------------------------------------------------------ single classes */

/* [\r\n] */
static size_t m_newline(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return is_nl(cp_at(s, p));
}

/* [^\n]+|[\n]+ */
static size_t m_lines(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    const bool nl = cp_at(s, p) == '\n';
    size_t n = 0;
    while (p + n < s->end && (s->cp[p + n] == '\n') == nl)
        n++;
    return n;
}

/* \p{N}{1,D} (arg: D, 0 for any number) */
static size_t m_numbers(const seg *s, size_t p, const void *arg)
{
    const unsigned *d = arg;
    return run_max(s, p, N, *d);
}

/* [0-9][0-9][0-9] */
static size_t m_digit3(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    return is_digit(cp_at(s, p)) && is_digit(cp_at(s, p + 1)) && is_digit(cp_at(s, p + 2))
               ? 3 : 0;
}

/* [\p{P}\$\+<=>\^~\|]+ (default), with ` too (falcon; arg non-NULL): every ASCII
 * punctuation or symbol but (for default) `, and non-ASCII punctuation. */
static size_t m_punct_runs(const seg *s, size_t p, const void *arg)
{
    size_t n = 0;
    for (;; n++) {
        uint32_t c = cp_at(s, p + n);
        bool ok = c < 0x80 ? ascii_graph_nonalnum(c) && (arg || c != '`')
                           : c != NONE && (s->fl[p + n] & P) && !(s->fl[p + n] & SP);
        if (!ok)
            return n;
    }
}

/* \p{N}+ on the collapsed text: ASCII digits, non-ASCII numbers. */
static size_t m_number_runs(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    size_t n = 0;
    for (uint32_t c; (c = cp_at(s, p + n)) != NONE; n++)
        if (c < 0x80 ? !is_digit(c) : !(s->fl[p + n] & N) || (s->fl[p + n] & SP))
            break;
    return n;
}

/* ------------------------------------------------------------------ BLOOM, Viking */

/*  ?[^(\s|.,!?…。，、।۔،)]+ */
static bool bloom_char(const seg *s, size_t p)
{
    static const uint32_t stop[] = {'(', '|', '.', ',', '!', '?', ')', 0x2026, 0x3002,
                                    0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C};
    uint32_t c = wcp_at(s, p);
    if (c == NONE || (fl_at(s, p) & SP))
        return false;
    for (size_t i = 0; i < COUNT(stop); i++)
        if (c == stop[i])
            return false;
    return true;
}

static size_t m_bloom(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    size_t q = p + (cp_at(s, p) == ' ' && bloom_char(s, p + 1));
    while (bloom_char(s, q))
        q++;
    return q - p;
}

/* ------------------------------------------------------------------ Chameleon */

/* <sentinel:[0-9]+> */
static size_t m_sentinel(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    static const char lit[] = "<sentinel:";
    size_t n = 0;
    for (; lit[n]; n++)
        if (cp_at(s, p + n) != (uint32_t)(unsigned char)lit[n])
            return 0;
    size_t d = 0;
    while (is_digit(cp_at(s, p + n + d)))
        d++;
    return d && cp_at(s, p + n + d) == '>' ? n + d + 1 : 0;
}

/* (IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z : only the greedy count can be followed by Z. */
static size_t m_image(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    static const char lit[] = "IMGIMG";
    for (size_t i = 0; lit[i]; i++)
        if (cp_at(s, p + i) != (uint32_t)lit[i])
            return 0;
    size_t k = 0;
    while (k < 4 && cp_at(s, p + 6 + k) >= 'A' && cp_at(s, p + 6 + k) <= 'I')
        k++;
    return k && cp_at(s, p + 6 + k) == 'Z' ? 6 + k + 1 : 0;
}

/* ([\t\n]|    |  ) */
static size_t m_tab_nl_spaces(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    uint32_t c = cp_at(s, p);
    if (c == '\t' || c == '\n')
        return 1;
    size_t n = 0;
    while (n < 4 && cp_at(s, p + n) == ' ')
        n++;
    return n == 4 ? 4 : n >= 2 ? 2 : 0;
}

/* [\p{P}!-/:-@\[-`{-~] : one punctuation or ASCII symbol. */
static size_t m_one_punct(const seg *s, size_t p, const void *arg)
{
    (void)arg;
    uint32_t c = cp_at(s, p);
    return c < 0x80 ? ascii_graph_nonalnum(c) : (fl_at(s, p) & P) && !(fl_at(s, p) & SP);
}

/* ------------------------------------------------------------------ the sets */

typedef size_t (*match_fn)(const seg *s, size_t p, const void *arg);

typedef struct pass {
    match_fn fn;
    const void *arg;
} pass;

enum {
    F_DEFAULT, F_GPT2, F_LLAMA3, F_QWEN2, F_QWEN35, F_SEED_CODER, F_UFAKZEKA, F_MINICPM5,
    F_LAGUNA, F_JAIS2, F_STARCODER, F_FALCON, F_DEEPSEEK_LLM, F_DEEPSEEK_CODER, F_DEEPSEEK3,
    F_SPARK, F_KIMI, F_GPT4O, F_TEKKEN, F_GRANITE_EMB, F_BLOOM, F_VIKING, F_CHAMELEON, F_LINES,
    F_COUNT
};

enum { MAX_PASSES = 6 };

static const unsigned one = 1, three = 3, any = 0;
static const int falcon_tick = 1;
static const l3opt o_llama3 = {true, false, 3, "\r\n", false};
static const l3opt o_jais2 = {true, false, 3, "\r\n", true};
static const l3opt o_qwen2 = {true, false, 1, "\r\n", false};
static const l3opt o_qwen35 = {true, true, 1, "\r\n", false};
static const l3opt o_seed = {true, false, 1, "", false};
static const l3opt o_ufakzeka = {false, false, 1, "\r\n", false};
static const l3opt o_minicpm5 = {true, false, 0, "\r\n", false};
static const g4opt o_gpt4o = {true, false, 3};
static const g4opt o_tekken = {false, false, 1};
static const g4opt o_granite = {true, true, 3};

static const pass sets[F_COUNT][MAX_PASSES] = {
    [F_DEFAULT] = {{m_punct_runs, NULL}, {m_gpt2, NULL}, {m_number_runs, NULL},
                   {m_digit3, NULL}},
    [F_GPT2] = {{m_gpt2, NULL}},
    [F_LLAMA3] = {{m_llama3, &o_llama3}},
    [F_QWEN2] = {{m_llama3, &o_qwen2}},
    [F_QWEN35] = {{m_llama3, &o_qwen35}},
    [F_SEED_CODER] = {{m_llama3, &o_seed}},
    [F_UFAKZEKA] = {{m_llama3, &o_ufakzeka}},
    [F_MINICPM5] = {{m_numbers, &three}, {m_llama3, &o_minicpm5}},
    [F_LAGUNA] = {{m_lines, NULL}, {m_llama3, &o_qwen2}},
    [F_JAIS2] = {{m_llama3, &o_jais2}},
    [F_STARCODER] = {{m_numbers, &one}, {m_gpt2, NULL}},
    [F_FALCON] = {{m_punct_runs, &falcon_tick}, {m_gpt2, NULL}, {m_digit3, NULL}},
    [F_DEEPSEEK_LLM] = {{m_newline, NULL}, {m_ds_letters, NULL}, {m_ds_punct, NULL},
                        {m_trailing_spaces, NULL}, {m_ds_cjk, NULL}, {m_numbers, &any}},
    [F_DEEPSEEK_CODER] = {{m_newline, NULL}, {m_space_letters, NULL}, {m_space_punct, NULL},
                          {m_ds_cjk, NULL}, {m_numbers, &one}},
    [F_DEEPSEEK3] = {{m_numbers, &three}, {m_ds3_cjk, NULL}, {m_deepseek3, NULL}},
    [F_SPARK] = {{m_numbers, &three}, {m_ds3_cjk, NULL}, {m_deepseek3, &one}, {m_numbers, &one}},
    [F_KIMI] = {{m_kimi, NULL}},
    [F_GPT4O] = {{m_gpt4o, &o_gpt4o}},
    [F_TEKKEN] = {{m_gpt4o, &o_tekken}},
    [F_GRANITE_EMB] = {{m_gpt4o, &o_granite}},
    [F_BLOOM] = {{m_bloom, NULL}},
    [F_VIKING] = {{m_bloom, NULL}, {m_numbers, &one}},
    [F_CHAMELEON] = {{m_sentinel, NULL}, {m_image, NULL}, {m_tab_nl_spaces, NULL},
                     {m_numbers, &one}, {m_one_punct, NULL}, {m_gpt2, NULL}},
    [F_LINES] = {{m_lines, NULL}},
};

enum {
    IGN = MLC_PRETOK_IGNORE_MERGES,
    BOS = MLC_PRETOK_ADD_BOS,
    KEEP = MLC_PRETOK_KEEP_SPACES,
    NOBOS = MLC_PRETOK_NO_BOS,
    GEMMA4 = MLC_PRETOK_RAW | MLC_PRETOK_NEWLINE_WORDS | MLC_PRETOK_FORCE_BOS,
};

/* llama.cpp's names, the regex set each maps to, and the settings that go with the name. */
static const mlc_pretok names[] = {
    {"default", F_DEFAULT, 0},
    {"llama3", F_LLAMA3, IGN | BOS},
    {"llama-v3", F_LLAMA3, IGN | BOS},
    {"llama-bpe", F_LLAMA3, IGN | BOS},
    {"falcon3", F_LLAMA3, IGN | BOS},
    {"falcon-h1", F_LLAMA3, IGN | BOS},
    {"pixtral", F_LLAMA3, IGN | BOS},
    {"midm-2.0", F_LLAMA3, IGN | BOS},
    {"lfm2", F_LLAMA3, IGN | BOS},
    {"jina-v5-nano", F_LLAMA3, IGN | BOS},
    {"dbrx", F_LLAMA3, 0},
    {"smaug-bpe", F_LLAMA3, 0},
    {"glm4", F_LLAMA3, NOBOS},
    {"chatglm-bpe", F_LLAMA3, NOBOS},
    {"deepseek-llm", F_DEEPSEEK_LLM, KEEP},
    {"deepseek-coder", F_DEEPSEEK_CODER, KEEP},
    {"deepseek-v3", F_DEEPSEEK3, KEEP},
    {"hunyuan-dense", F_DEEPSEEK3, KEEP},
    {"joyai-llm", F_DEEPSEEK3, KEEP},
    {"hy_v4", F_DEEPSEEK3, KEEP},
    {"spark2_5", F_SPARK, KEEP},
    {"falcon", F_FALCON, 0},
    {"gpt-2", F_GPT2, 0},
    {"phi-2", F_GPT2, 0},
    {"mpt", F_GPT2, 0},
    {"olmo", F_GPT2, 0},
    {"jais", F_GPT2, 0},
    {"jina-es", F_GPT2, 0},
    {"jina-de", F_GPT2, 0},
    {"jina-v2-es", F_GPT2, 0},
    {"jina-v2-de", F_GPT2, 0},
    {"gigachat", F_GPT2, 0},
    {"a.x-4.0", F_GPT2, 0},
    {"mellum", F_GPT2, 0},
    {"modern-bert", F_GPT2, 0},
    {"exaone4", F_GPT2, 0},
    {"trillion", F_GPT2, KEEP},
    {"granite-docling", F_GPT2, KEEP},
    {"starcoder", F_STARCODER, 0},
    {"refact", F_STARCODER, 0},
    {"command-r", F_STARCODER, KEEP},
    {"smollm", F_STARCODER, KEEP},
    {"codeshell", F_STARCODER, 0},
    {"exaone", F_STARCODER, 0},
    {"minerva-7b", F_STARCODER, 0},
    {"mellum2", F_STARCODER, 0},
    {"qwen2", F_QWEN2, KEEP},
    {"deepseek-r1-qwen", F_QWEN2, KEEP},
    {"kormo", F_QWEN2, KEEP},
    {"f2llmv2", F_QWEN2, KEEP},
    {"stablelm2", F_QWEN2, 0},
    {"megrez", F_QWEN2, 0},
    {"hunyuan", F_QWEN2, KEEP},
    {"solar-open", F_QWEN2, KEEP},
    {"grok-2", F_QWEN2, KEEP},
    {"bailingmoe", F_QWEN2, KEEP}, /* its regex differs in form only */
    {"bailingmoe2", F_QWEN2, KEEP},
    {"llada-moe", F_QWEN2, KEEP},
    {"qwen35", F_QWEN35, KEEP},
    {"seed-coder", F_SEED_CODER, KEEP},
    {"ufakzeka", F_UFAKZEKA, KEEP},
    {"minicpm5", F_MINICPM5, IGN},
    {"laguna", F_LAGUNA, KEEP},
    {"jais-2", F_JAIS2, 0},
    {"kimi-k2", F_KIMI, KEEP},
    {"gpt-4o", F_GPT4O, KEEP},
    {"llama4", F_GPT4O, KEEP},
    {"kanana2", F_GPT4O, KEEP},
    {"talkie", F_GPT4O, KEEP},
    {"minimax-m2", F_GPT4O, KEEP},
    {"tekken", F_TEKKEN, KEEP | IGN | BOS},
    {"granite-embed-multi-97m", F_GRANITE_EMB, KEEP | IGN},
    {"bloom", F_BLOOM, 0},
    {"gpt3-finnish", F_BLOOM, 0},
    {"poro-chat", F_BLOOM, KEEP},
    {"viking", F_VIKING, KEEP},
    {"chameleon", F_CHAMELEON, BOS | KEEP},
    {"gemma4", F_LINES, GEMMA4},
    {"granite-embed-multi-311m", F_LINES, GEMMA4},
    {"sarvam-moe", F_LINES, MLC_PRETOK_RAW | KEEP},
};

const mlc_pretok *mlc_pretok_find(const char *name, size_t len)
{
    for (size_t i = 0; i < COUNT(names); i++)
        if (strlen(names[i].name) == len && !memcmp(names[i].name, name, len))
            return &names[i];
    return NULL;
}

/* One pass over every piece of in[0..n_in) into out; returns the new count. */
static size_t run_pass(const pass *ps, const uint32_t *cp, const uint8_t *fl, const size_t *in,
                       size_t n_in, size_t *out)
{
    size_t n_out = 0, start = 0;
    for (size_t i = 0; i < n_in; i++) {
        const seg s = {cp, fl, start, start + in[i]};
        size_t gap = start, p = start;
        while (p < s.end) {
            size_t m = ps->fn(&s, p, ps->arg);
            if (!m) {
                p++;
                continue;
            }
            if (p > gap)
                out[n_out++] = p - gap;
            out[n_out++] = m;
            gap = p += m;
        }
        if (p > gap)
            out[n_out++] = p - gap;
        start = s.end;
    }
    return n_out;
}

size_t mlc_pretok_split(const mlc_pretok *pt, const uint32_t *cp, const uint8_t *fl, size_t n,
                        size_t *lens, size_t *tmp)
{
    if (!n)
        return 0;
    size_t count = 1;
    lens[0] = n;
    for (const pass *ps = sets[pt->family]; ps < sets[pt->family] + MAX_PASSES && ps->fn;
         ps++) {
        count = run_pass(ps, cp, fl, lens, count, tmp);
        memcpy(lens, tmp, count * sizeof *lens);
    }
    return count;
}
