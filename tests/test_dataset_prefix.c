/* test_dataset_prefix.c: the shared-prefix dataset of bench/dataset.c ("prefix"): P distinct
 * prefixes of exactly L ids, each prompt one of them and S ids of its own. */
#include <criterion/criterion.h>
#include <string.h>

#include "../bench/dataset.h"

static void load(mlc_dataset_opts o, mlc_dataset *d)
{
    mlc_err err;
    cr_assert_eq(mlc_dataset_load(&o, d, &err), MLC_OK, "%s", err.msg);
}

Test(dataset_prefix, prefixes_and_exact_lengths)
{
    mlc_dataset d;
    load((mlc_dataset_opts){.spec = "prefix", .n_prefixes = 3, .prefix_len = 16, .suffix_len = 5, .output_len = 7,
                            .n_vocab = 1000, .num_prompts = 60, .seed = 11}, &d);
    cr_assert_eq(d.n, 60);
    cr_expect_str_eq(d.name, "prefix");
    cr_expect_not(d.timed);
    const int32_t *first[3] = {NULL, NULL, NULL};
    for (int32_t i = 0; i < d.n; i++) {
        const mlc_prompt *p = &d.p[i];
        cr_assert(p->ids && p->n_ids == 21 && p->input_tokens == 21, "prompt %d: %d ids", i, p->n_ids);
        cr_expect_eq(p->max_tokens, 7);
        cr_assert(p->prefix_id >= 0 && p->prefix_id < 3, "prompt %d: prefix %d", i, p->prefix_id);
        for (int32_t k = 0; k < p->n_ids; k++)
            cr_expect(p->ids[k] >= MLC_DATASET_RANDOM_LOW && p->ids[k] < 1000);
        if (!first[p->prefix_id])
            first[p->prefix_id] = p->ids;
        cr_expect_eq(memcmp(p->ids, first[p->prefix_id], 16 * sizeof *p->ids), 0, "prompt %d: another prefix", i);
    }
    /* 60 uniform draws from 3 prefixes miss one with probability 3 (2/3)^60 ~ 1e-10. */
    for (int k = 0; k < 3; k++)
        cr_assert_not_null(first[k], "prefix %d never drawn", k);
    /* The prefixes are distinct, and so are the suffixes that share one. */
    cr_expect_neq(memcmp(first[0], first[1], 16 * sizeof(int32_t)), 0);
    cr_expect_neq(memcmp(first[1], first[2], 16 * sizeof(int32_t)), 0);
    int same_suffix = 0;
    for (int32_t i = 1; i < d.n; i++)
        same_suffix += !memcmp(d.p[i].ids + 16, d.p[0].ids + 16, 5 * sizeof(int32_t));
    cr_expect_eq(same_suffix, 0);
    mlc_dataset_free(&d);
}

Test(dataset_prefix, seeded_and_suffix_may_be_empty)
{
    mlc_dataset a, b;
    mlc_dataset_opts o = {.spec = "prefix", .n_prefixes = 2, .prefix_len = 4, .suffix_len = 0, .output_len = 1,
                          .n_vocab = 50, .num_prompts = 5, .seed = 3};
    load(o, &a);
    load(o, &b);
    for (int32_t i = 0; i < a.n; i++) {
        cr_expect_eq(a.p[i].n_ids, 4);
        cr_expect_eq(a.p[i].prefix_id, b.p[i].prefix_id);
        cr_expect_eq(memcmp(a.p[i].ids, b.p[i].ids, 4 * sizeof(int32_t)), 0);
    }
    mlc_dataset_free(&a);
    mlc_dataset_free(&b);
}

Test(dataset_prefix, bad_options)
{
    const mlc_dataset_opts good = {.spec = "prefix", .n_prefixes = 2, .prefix_len = 4, .suffix_len = 1,
                                   .output_len = 1, .n_vocab = 50, .num_prompts = 5};
    mlc_dataset_opts bad[5];
    for (int i = 0; i < 5; i++)
        bad[i] = good;
    bad[0].n_prefixes = 0;
    bad[1].prefix_len = 0;
    bad[2].suffix_len = -1;
    bad[3].num_prompts = 0;
    bad[4].prefix_len = MLC_DATASET_MAX_INPUT_LEN;
    for (int i = 0; i < 5; i++) {
        mlc_dataset d;
        mlc_err err;
        cr_expect_eq(mlc_dataset_load(&bad[i], &d, &err), MLC_ERR_ARG, "case %d", i);
        cr_expect(!strncmp(err.msg, "prefix: ", 8), "case %d: %s", i, err.msg);
        cr_expect(d.n == 0 && !d.p);
    }
    mlc_dataset_opts fmt = good;
    fmt.format = "jsonl";
    mlc_dataset d;
    mlc_err err;
    cr_expect_eq(mlc_dataset_load(&fmt, &d, &err), MLC_ERR_ARG);
}
