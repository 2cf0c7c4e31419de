/* test_sse.c: the incremental SSE parser (bench/sse.c) against the WHATWG rules. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/sse.h"

/* Every event delivered, as "event|data" records separated by '\x1e' (data may hold '\n'). */
typedef struct sse_log {
    char text[16384];
    size_t len;
    int n;
    int stop_after; /* > 0: the callback returns false on that event */
} sse_log;

static bool log_event(void *ctx, const char *event, const char *data, size_t len)
{
    sse_log *l = ctx;
    cr_assert_eq(strlen(data), len, "data must be NUL-terminated at len");
    int w = snprintf(l->text + l->len, sizeof l->text - l->len, "%s|%s\x1e", event, data);
    cr_assert(w > 0 && (size_t)w < sizeof l->text - l->len, "log overflow");
    l->len += (size_t)w;
    l->n++;
    return !(l->stop_after > 0 && l->n == l->stop_after);
}

/* Parses s fed in the given piece sizes (cycled); returns whether every feed succeeded. */
static bool parse_pieces(const char *s, size_t n, size_t max_event, const size_t *sizes,
                         int n_sizes, sse_log *l)
{
    memset(l, 0, sizeof *l);
    mlc_sse *p = mlc_sse_new(max_event, log_event, l);
    cr_assert_not_null(p);
    bool ok = true;
    size_t off = 0;
    for (int k = 0; off < n; k++) {
        size_t m = n_sizes ? sizes[k % n_sizes] : n;
        if (m > n - off)
            m = n - off;
        ok = mlc_sse_feed(p, s + off, m) && ok;
        off += m;
    }
    mlc_sse_free(p);
    return ok;
}

static bool parse_all(const char *s, sse_log *l)
{
    return parse_pieces(s, strlen(s), 4096, NULL, 0, l);
}

Test(sse, single_event)
{
    sse_log l;
    cr_assert(parse_all("data: hello\n\n", &l));
    cr_expect_eq(l.n, 1);
    cr_expect_str_eq(l.text, "message|hello\x1e");
}

Test(sse, line_endings_lf_crlf_cr_mixed)
{
    static const char *const variants[] = {
        "data: a\n\ndata: b\ndata: c\n\n",
        "data: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n",
        "data: a\r\rdata: b\rdata: c\r\r",
        "data: a\r\n\ndata: b\rdata: c\n\r\n",
    };
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        sse_log l;
        cr_assert(parse_all(variants[v], &l));
        cr_expect_str_eq(l.text, "message|a\x1emessage|b\nc\x1e", "variant %zu", v);
    }
}

Test(sse, comments_are_ignored)
{
    sse_log l;
    cr_assert(parse_all(": keep-alive\n\n:\n\ndata: x\n: inside an event\ndata: y\n\n"
                        ": tail\n",
                        &l));
    cr_expect_str_eq(l.text, "message|x\ny\x1e");
}

Test(sse, multiline_data_and_empty_values)
{
    sse_log l;
    cr_assert(parse_all("data: {\"a\":1,\ndata: \"b\":2}\n\n"
                        "data\n\n"
                        "data:\n\n"
                        "data:no-space\n\n"
                        "data:  two-spaces\n\n"
                        "data: x\ndata\ndata: y\n\n",
                        &l));
    cr_expect_str_eq(l.text, "message|{\"a\":1,\n\"b\":2}\x1e"
                             "message|\x1e"
                             "message|\x1e"
                             "message|no-space\x1e"
                             "message| two-spaces\x1e"
                             "message|x\n\ny\x1e");
}

Test(sse, event_id_retry_and_unknown_fields)
{
    sse_log l;
    cr_assert(parse_all("event: update\nid: 7\nretry: 1000\ndata: 1\n\n"
                        "data: 2\n\n"                 /* the name does not carry over */
                        "event: lonely\n\n"           /* no data: nothing, name dropped */
                        "data: 3\n\n"
                        "garbage line without colon\nfoo: bar\n\n"
                        "event:close\ndata: 4\n\n",
                        &l));
    cr_expect_str_eq(l.text, "update|1\x1emessage|2\x1emessage|3\x1e"
                             "close|4\x1e");
}

Test(sse, byte_order_mark_only_at_start)
{
    sse_log l;
    cr_assert(parse_all("\xEF\xBB\xBF" "data: x\n\n\xEF\xBB\xBF" "data: y\n\n", &l));
    /* The second BOM starts a line whose field name is "\xEF\xBB\xBFdata": unknown. */
    cr_expect_str_eq(l.text, "message|x\x1e");
    cr_assert(parse_all("\xEF\xBB" "data: x\n\n", &l)); /* a broken BOM is just bytes */
    cr_expect_eq(l.n, 0);
}

/* One stream with every feature; every split must give the events of the whole. */
static const char rich[] =
    "\xEF\xBB\xBF: welcome\r\n"
    "event: first\r\ndata: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\n"
    ": keep-alive\n\n"
    "data: line1\rdata: line2\r\r"
    "id: 5\nretry: 10\ndata: {\"x\":\n"
    ": comment inside\ndata: 1}\n\n"
    "data:\n\n"
    "data: [DONE]\r\n\r\n";

Test(sse, split_at_every_byte_boundary)
{
    sse_log whole, part;
    size_t n = sizeof rich - 1;
    cr_assert(parse_pieces(rich, n, 4096, NULL, 0, &whole));
    cr_assert_eq(whole.n, 5, "%s", whole.text);
    cr_expect_str_eq(whole.text, "first|{\"choices\":[{\"text\":\"a\"}]}\x1e"
                                 "message|line1\nline2\x1e"
                                 "message|{\"x\":\n1}\x1e"
                                 "message|\x1e"
                                 "message|[DONE]\x1e");
    for (size_t k = 1; k < n; k++) {
        size_t sizes[2] = {k, n};
        cr_assert(parse_pieces(rich, n, 4096, sizes, 2, &part));
        cr_assert_str_eq(part.text, whole.text, "split at %zu", k);
    }
    /* Every pair of cuts, too (all three-piece splits). */
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a + 1; b < n; b++) {
            size_t sizes[3] = {a, b - a, n};
            cr_assert(parse_pieces(rich, n, 4096, sizes, 3, &part));
            cr_assert_str_eq(part.text, whole.text, "cuts at %zu and %zu", a, b);
        }
    }
    static const size_t one[] = {1}, odd[] = {3, 1, 7, 2};
    cr_assert(parse_pieces(rich, n, 4096, one, 1, &part));
    cr_expect_str_eq(part.text, whole.text, "byte by byte");
    cr_assert(parse_pieces(rich, n, 4096, odd, 4, &part));
    cr_expect_str_eq(part.text, whole.text, "odd pieces");
}

Test(sse, oversized_event_is_an_error)
{
    sse_log l;
    /* Exactly at the limit: fine. */
    cr_assert(parse_pieces("data: 0123456789abcdef\n\n", 24, 16, NULL, 0, &l));
    cr_expect_eq(l.n, 1);
    /* One byte over, on one line, on two lines (joined with '\n'), and with the line cut
     * by piece boundaries (the partial line is bounded too). */
    cr_expect_not(parse_pieces("data: 0123456789abcdefg\n\n", 25, 16, NULL, 0, &l));
    cr_expect_not(parse_pieces("data: 01234567\ndata: 89abcdef\n\n", 32, 16, NULL, 0, &l));
    static const size_t one[] = {1};
    cr_expect_not(parse_pieces("data: 0123456789abcdefg\n\n", 25, 16, one, 1, &l));

    /* A line with no end never grows past the limit: the parser fails instead. */
    mlc_sse *p = mlc_sse_new(16, log_event, &l);
    memset(&l, 0, sizeof l);
    cr_assert(mlc_sse_feed(p, "data: ", 6));
    bool ok = true;
    int fed = 0;
    for (; fed < 1000 && ok; fed++)
        ok = mlc_sse_feed(p, "xxxxxxxx", 8);
    cr_expect_not(ok);
    cr_expect_lt(fed, 20, "failed only after %d pieces", fed);
    cr_expect_str_eq(mlc_sse_error(p), "event larger than the limit");
    cr_expect_not(mlc_sse_feed(p, "\n\n", 2), "stays failed");
    /* Reset makes it usable again. */
    mlc_sse_reset(p);
    cr_expect_null(mlc_sse_error(p));
    cr_assert(mlc_sse_feed(p, "data: ok\n\n", 10));
    cr_expect_str_eq(l.text, "message|ok\x1e");
    mlc_sse_free(p);
}

Test(sse, long_comments_are_not_buffered)
{
    /* A comment longer than the limit, cut into pieces, costs nothing and fails nothing. */
    sse_log l;
    memset(&l, 0, sizeof l);
    mlc_sse *p = mlc_sse_new(16, log_event, &l);
    cr_assert(mlc_sse_feed(p, ": ", 2));
    for (int i = 0; i < 100; i++)
        cr_assert(mlc_sse_feed(p, "padding padding ", 16));
    cr_assert(mlc_sse_feed(p, "\ndata: x\n\n", 10));
    cr_expect_str_eq(l.text, "message|x\x1e");
    mlc_sse_free(p);
}

Test(sse, pending_detects_a_cut_event)
{
    sse_log l;
    memset(&l, 0, sizeof l);
    mlc_sse *p = mlc_sse_new(1024, log_event, &l);
    cr_expect_not(mlc_sse_pending(p));
    cr_assert(mlc_sse_feed(p, "data: par", 9));
    cr_expect(mlc_sse_pending(p), "partial line");
    cr_assert(mlc_sse_feed(p, "tial\n", 5));
    cr_expect(mlc_sse_pending(p), "data line without the blank line");
    cr_assert(mlc_sse_feed(p, "\n", 1));
    cr_expect_not(mlc_sse_pending(p));
    cr_expect_str_eq(l.text, "message|partial\x1e");
    cr_assert(mlc_sse_feed(p, "event: x\n", 9));
    cr_expect(mlc_sse_pending(p), "event name without data");
    cr_assert(mlc_sse_feed(p, "\n", 1));
    cr_expect_not(mlc_sse_pending(p));
    cr_assert(mlc_sse_feed(p, ": keep", 6));
    cr_expect(mlc_sse_pending(p), "cut comment");
    cr_assert(mlc_sse_feed(p, "-alive\r", 7));
    cr_expect_not(mlc_sse_pending(p), "a CR ends the line; a later LF is not data");
    cr_assert(mlc_sse_feed(p, "\n", 1));
    cr_expect_not(mlc_sse_pending(p));
    cr_expect_eq(l.n, 1);
    /* Reset forgets the partial event. */
    cr_assert(mlc_sse_feed(p, "data: lost", 10));
    mlc_sse_reset(p);
    cr_expect_not(mlc_sse_pending(p));
    cr_assert(mlc_sse_feed(p, "\n\ndata: y\n\n", 11));
    cr_expect_str_eq(l.text, "message|partial\x1emessage|y\x1e");
    mlc_sse_free(p);
}

Test(sse, callback_can_stop_parsing)
{
    sse_log l;
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    mlc_sse *p = mlc_sse_new(1024, log_event, &l);
    cr_expect_not(mlc_sse_feed(p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27));
    cr_expect_eq(l.n, 2, "nothing after the stop");
    cr_expect_str_eq(mlc_sse_error(p), "stopped by the event handler");
    cr_expect_not(mlc_sse_feed(p, "data: 4\n\n", 9));
    cr_expect_eq(l.n, 2);
    mlc_sse_free(p);
}

Test(sse, bad_arguments_and_empty_feeds)
{
    sse_log l;
    cr_expect_null(mlc_sse_new(0, log_event, &l));
    cr_expect_null(mlc_sse_new(16, NULL, &l));
    memset(&l, 0, sizeof l);
    mlc_sse *p = mlc_sse_new(16, log_event, &l);
    cr_expect(mlc_sse_feed(p, "", 0));
    cr_expect(mlc_sse_feed(p, "data: a\n", 8));
    cr_expect(mlc_sse_feed(p, "", 0));
    cr_expect(mlc_sse_feed(p, "\n", 1));
    cr_expect_eq(l.n, 1);
    mlc_sse_free(p);
    mlc_sse_free(NULL);
}

Test(sse, buffers_are_reused_across_responses)
{
    /* Many responses through one parser: results identical each time (reset keeps buffers). */
    sse_log l;
    memset(&l, 0, sizeof l);
    mlc_sse *p = mlc_sse_new(4096, log_event, &l);
    for (int r = 0; r < 50; r++) {
        mlc_sse_reset(p);
        l.len = 0;
        l.n = 0;
        l.text[0] = 0;
        cr_assert(mlc_sse_feed(p, rich, sizeof rich - 1));
        cr_assert_eq(l.n, 5);
    }
    mlc_sse_free(p);
}
