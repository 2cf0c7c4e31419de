/* dataset_format.h: the dataset file formats, ShareGPT, JSONL and traces (dataset.h describes
 * them): which one a file is, and its text parsed into prompts. For dataset.c only. */
#ifndef MLC_BENCH_DATASET_FORMAT_H
#define MLC_BENCH_DATASET_FORMAT_H

#include "dataset.h"
#include "dataset_random.h"

typedef enum mlc_dataset_fmt {
    MLC_DATASET_FMT_AUTO,
    MLC_DATASET_FMT_SHAREGPT,
    MLC_DATASET_FMT_JSONL,
    MLC_DATASET_FMT_TRACE
} mlc_dataset_fmt;

/* One file's parse. */
typedef struct mlc_dataset_parser {
    const char *file; /* name in messages */
    const mlc_dataset_opts *o;
    mlc_err *err;
    mlc_dataset_idpool pool; /* traces with input_length */
    mlc_dataset_rng r;
    /* traces: the earliest and latest time so far (s) and their lines (0: none yet) */
    double t_min, t_max;
    size_t line_min, line_max;
} mlc_dataset_parser;

/* What a ShareGPT file leaves to do once the prompts to keep are chosen. */
typedef struct mlc_dataset_replies {
    char **reply;      /* reply[i]: the first reply to prompt i (until lengths are known) */
    size_t n, cap;
    size_t skipped;
} mlc_dataset_replies;

void mlc_dataset_replies_free(mlc_dataset_replies *sg);

/* The format of the file at path, whose text is buf[0..len) (dataset.h, "format auto"). */
mlc_status mlc_dataset_detect(const char *path, char *buf, size_t len, mlc_dataset_fmt *f,
                              mlc_err *err);
/* Parses buf[0..len) (rewritten in place) in format f, appending its prompts to v; ShareGPT
 * replies and skipped conversations go to sg. No prompts is an error. */
mlc_status mlc_dataset_parse_text(mlc_dataset_parser *c, mlc_dataset_fmt f, char *buf, size_t len,
                                  mlc_prompt_list *v, mlc_dataset_replies *sg);
/* A ShareGPT prompt's max_tokens: its reply's length in tokens (with a tokenizer, no BOS/EOS)
 * or ceil(bytes / 4), at least 1. */
mlc_status mlc_dataset_reply_tokens(const mlc_dataset_parser *c, const char *reply, int32_t *out);

#endif
