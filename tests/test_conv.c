/* test_conv.c: a conversation replayed turn by turn (bench/conv.c): what each turn's request
 * carries, with real and with dataset history. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/conv.h"

static const char msgs[] =
    "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
    "{\"role\":\"assistant\",\"content\":\"A1\"},{\"role\":\"user\",\"content\":\"U2\"},"
    "{\"role\":\"user\",\"content\":\"U3\"},{\"role\":\"assistant\",\"content\":\"A3\"}]";

static char *next(mlc_conv *c)
{
    bool oom;
    char *s = mlc_conv_next(c, &oom);
    cr_assert_not(oom);
    return s;
}

static void expect_next(mlc_conv *c, const char *want)
{
    char *s = next(c);
    cr_assert_not_null(s, "no turn left, want %s", want);
    cr_expect_str_eq(s, want);
    free(s);
}

Test(conv, real_history)
{
    mlc_conv *c;
    mlc_err err;
    cr_assert_eq(mlc_conv_new(msgs, false, &c, &err), MLC_OK, "%s", err.msg);
    cr_expect(mlc_conv_more(c));
    expect_next(c, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"}]");
    cr_expect_not(mlc_conv_more(c), "the next turn waits for the answer");
    cr_assert(mlc_conv_answer(c, "R1xx", 2));
    expect_next(c, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
                   "{\"role\":\"assistant\",\"content\":\"R1\"},{\"role\":\"user\",\"content\":\"U2\"}]");
    cr_assert(mlc_conv_answer(c, "R2", 2));
    expect_next(c, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
                   "{\"role\":\"assistant\",\"content\":\"R1\"},{\"role\":\"user\",\"content\":\"U2\"},"
                   "{\"role\":\"assistant\",\"content\":\"R2\"},{\"role\":\"user\",\"content\":\"U3\"}]");
    cr_assert(mlc_conv_answer(c, "R3", 2));
    cr_expect_not(mlc_conv_more(c));
    cr_expect_null(next(c));
    cr_expect_eq(mlc_conv_turns(c), 3);
    mlc_conv_free(c);
}

/* The dataset's answer where it has one (A1), the model's where it has none (after U2). */
Test(conv, dataset_history)
{
    mlc_conv *c;
    mlc_err err;
    cr_assert_eq(mlc_conv_new(msgs, true, &c, &err), MLC_OK, "%s", err.msg);
    free(next(c));
    cr_assert(mlc_conv_answer(c, "R1", 2));
    free(next(c));
    cr_assert(mlc_conv_answer(c, "R2", 2));
    expect_next(c, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
                   "{\"role\":\"assistant\",\"content\":\"A1\"},{\"role\":\"user\",\"content\":\"U2\"},"
                   "{\"role\":\"assistant\",\"content\":\"R2\"},{\"role\":\"user\",\"content\":\"U3\"}]");
    mlc_conv_free(c);
}

Test(conv, not_a_conversation)
{
    static const char *const bad[] = {NULL, "", "{}", "[1]", "[{\"role\":\"assistant\",\"content\":\"x\"}]", "[x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mlc_conv *c = (mlc_conv *)1;
        mlc_err err;
        cr_expect_eq(mlc_conv_new(bad[i], false, &c, &err), MLC_ERR_FORMAT, "case %zu", i);
        cr_expect_null(c);
    }
}
