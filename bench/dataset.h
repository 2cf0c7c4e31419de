/* dataset.h: request datasets for `mlc-bench run` (DESIGN.md, Harness).
 *
 * Formats: the built-in default (datasets/prompts.jsonl, embedded in the binary), ShareGPT
 * JSON (first human turn as prompt, first gpt turn's length as output length), JSONL with
 * {"prompt": ...} or {"messages": [...]} and optional "max_tokens", "random" (prompts built
 * from token ids so input lengths are exact; output lengths exact or from a range), and
 * timestamped traces (JSONL with "timestamp" seconds (or "timestamp_ms"), plus prompt or
 * input_length/output_length), replayed on their own clock (times at most
 * MLC_DATASET_MAX_TIMESTAMP, spanning at most MLC_DATASET_MAX_TRACE_SPAN). Malformed input is reported as
 * "FILE:LINE: what" and nothing is loaded. datasets/README.md describes each format.
 *
 * "prefix" is a shared-prefix workload for prefix-cache studies: random token ids, each
 * prompt one of n_prefixes prefixes (prefix_len ids) and a suffix of its own (suffix_len ids),
 * so lengths are exact (prefix_len + suffix_len) and .prefix_id says which prefix.
 *
 * spec: "default" (also NULL or ""), "random", "prefix", or a file path (a file really named
 * "random" or "prefix" is reached as "./random"). format "auto" (or NULL): ".json" is ShareGPT; ".jsonl" (and
 * any other name) is a trace when its first non-blank line has "timestamp" or
 * "timestamp_ms", else JSONL; a name with neither extension is judged by its first
 * character ('[' ShareGPT, '{' JSONL or trace).
 *
 * num_prompts > 0: a larger dataset is cut to a seeded shuffle's first num_prompts; a
 * smaller one is repeated in file order until it has num_prompts; a trace is never
 * shuffled nor repeated: it keeps its first num_prompts requests by time (all when it has
 * fewer). "random" and "prefix" need num_prompts > 0.
 *
 * Random token ids are drawn uniformly from [MLC_DATASET_RANDOM_LOW, n_vocab), where
 * n_vocab is opts.n_vocab, or the tokenizer's when opts.tok is set (the smaller of the two
 * when both are). With a tokenizer only normal tokens are drawn (no control, unknown,
 * byte-fallback, unused or end-of-generation ids) and .text holds their detokenized text
 * (invalid UTF-8, possible with byte-level BPE pieces, replaced by U+FFFD): re-tokenizing
 * that text need not give the same ids, so only .ids have the exact length.
 *
 * Errors: MLC_ERR_ARG for bad options, MLC_ERR_NOT_FOUND / MLC_ERR_IO for files,
 * MLC_ERR_FORMAT for bad content ("FILE:LINE: what"), MLC_ERR_NOMEM. */
#ifndef MLC_BENCH_DATASET_H
#define MLC_BENCH_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlc/status.h"

struct mlc_tokenizer;

#define MLC_DATASET_MAX_LINE ((size_t)16 << 20)  /* longest JSONL line / ShareGPT entry */
#define MLC_DATASET_MAX_FILE ((size_t)1 << 30)   /* largest dataset file */
#define MLC_DATASET_MAX_INPUT_LEN (1 << 20)      /* longest random / trace input_length */
#define MLC_DATASET_RANDOM_LOW 3                 /* random ids skip [0, 3): special tokens */
#define MLC_DATASET_MAX_TIMESTAMP 1e11           /* latest trace time, s (epoch seconds fit) */
#define MLC_DATASET_MAX_TRACE_SPAN 1e6           /* last - first trace time, s (11.6 days) */

typedef struct mlc_prompt {
    char *text;           /* completion prompt, or NULL */
    char *messages_json;  /* chat messages as a JSON array text, or NULL */
    int32_t *ids;         /* prompt as token ids (random datasets), or NULL */
    int32_t n_ids;
    int32_t max_tokens;   /* output length asked for; <= 0: the run's default */
    int32_t input_tokens; /* known input length in tokens, or -1 */
    double timestamp;     /* trace arrival time in seconds from the first, or -1 */
    int32_t prefix_id;    /* "prefix": which shared prefix the prompt starts with, or -1 */
} mlc_prompt;

typedef struct mlc_dataset {
    mlc_prompt *p;
    int32_t n;
    bool timed;           /* a trace: replay on its timestamps */
    char name[128];       /* "default", "random", or the file's base name */
    int32_t n_skipped;    /* ShareGPT conversations left out: fewer than 2 turns, no human
                           * turn followed by a reply, or an empty prompt or reply */
} mlc_dataset;

typedef struct mlc_dataset_opts {
    const char *spec;     /* "default", "random", or a file path */
    const char *format;   /* "auto" (by extension/content), "sharegpt", "jsonl", "trace" */
    /* random: input/output lengths; range_ratio r draws lengths uniformly in
     * [len * (1 - r), len * (1 + r)] (0: exact; 0 <= r < 1) */
    int32_t input_len, output_len;
    double range_ratio;
    int32_t n_vocab;      /* random token ids are drawn in [low, n_vocab) avoiding specials */
    const struct mlc_tokenizer *tok; /* optional: detokenize random ids into text for
                                      * endpoints; count ShareGPT reply tokens exactly
                                      * (without it: ceil(bytes / 4)) */
    int32_t num_prompts;  /* > 0: sample/cycle to exactly this many; else all */
    /* "prefix": n_prefixes distinct prefixes of prefix_len random ids; each prompt is one of
     * them, drawn uniformly, followed by suffix_len random ids of its own */
    int32_t n_prefixes, prefix_len, suffix_len;
    /* ShareGPT: also keep each whole conversation as messages_json (human turns "user",
     * replies "assistant", "system" kept, other roles left out) for multi-turn replay */
    bool conversations;
    uint64_t seed;        /* shuffling, random lengths and random ids */
} mlc_dataset_opts;

/* Loads the dataset o describes into *out (zeroed on failure; free with mlc_dataset_free). */
mlc_status mlc_dataset_load(const mlc_dataset_opts *o, mlc_dataset *out, mlc_err *err);
/* Chat messages (messages_json: a JSON array of {"role", "content"} strings) as one
 * plain-text prompt for a completions API, which takes no messages: one "ROLE: CONTENT"
 * line per message in order, then "assistant:" asking for the reply. *out is malloc'd.
 * MLC_ERR_FORMAT when the text is not a non-empty array of such objects. */
mlc_status mlc_messages_text(const char *messages_json, char **out, mlc_err *err);
/* Frees everything *d holds and zeroes it; d may be NULL or already freed. */
void mlc_dataset_free(mlc_dataset *d);

/* ---- shared by the dataset's own files (dataset_format.c, dataset_random.c) ---- */

/* Prompts as they are loaded, before selection. */
typedef struct mlc_prompt_list {
    mlc_prompt *p;
    size_t n, cap;
} mlc_prompt_list;

/* A new prompt at the end of v with nothing known yet, or NULL when out of memory. */
mlc_prompt *mlc_prompt_list_push(mlc_prompt_list *v);
/* Whether str is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
bool mlc_dataset_utf8_valid(const char *str);
/* A malloc'd copy of str[0..n) with each byte that starts no valid UTF-8 sequence replaced by
 * U+FFFD, or NULL when out of memory. */
char *mlc_dataset_utf8_sanitize(const char *str, size_t n);

#endif
