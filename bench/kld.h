/* kld.h: KL-divergence of a model against a base model's saved top-K log-probabilities
 * (`mlc-bench ppl --kld-base FILE` writes the file, `--kld FILE` compares against it).
 *
 * File format (all integers and floats little-endian; floats IEEE-754 binary32/64):
 *
 *   header, 64 bytes
 *     0  char[8]  magic "MLCKLD\0\0"
 *     8  u32      version (1)
 *    12  u32      K: log-probabilities kept per scored token, 1..MLC_KLD_TOP_MAX
 *    16  u32      n_vocab of the base model
 *    20  u32      n_ctx: chunk length the base run used
 *    24  u32      n_chunks evaluated
 *    28  u32      reserved, 0
 *    32  u64      n_scored: records that follow (n_chunks * (n_ctx - 1 - n_ctx/2))
 *    40  u64      model hash: FNV-1a 64 of the model file's size (u64 LE) followed by its
 *                 first min(size, 16 MiB) bytes (GGUF header, metadata, tensor table, start
 *                 of the data): tells "same file" from "another file", cheaply
 *    48  u64      tokens hash: FNV-1a 64 of the evaluated token ids, n_chunks * n_ctx int32 LE
 *                 values, each chunk's first id already replaced by BOS when the model adds
 *                 BOS (so it covers the tokenizer, the text, --ctx and --chunks)
 *    56  f64      base mean NLL (nats) over the scored tokens; PPL(base) = exp of it
 *   then n_scored records of 8*K + 8 bytes, in the order the positions are scored:
 *     i32[K]  token ids of the base's K most probable tokens, most probable first (ties: lower
 *             id first)
 *     f32[K]  their log-probabilities (log-softmax of the logits, nats), descending
 *     f32     log-probability of the actual next token
 *     f32     log of the remaining mass, log(sum of p over the other n_vocab - K ids),
 *             computed by summing those ids directly (-inf when K == n_vocab)
 *
 * KL estimate per token (an approximation, and a lower bound of the full KL(base || cand)):
 * the base's K ids plus one "rest" bucket form a K+1-way partition of the vocabulary. P is
 * the base's probability of each bucket (its top-K, and the remaining mass), Q the
 * candidate's probability of the same buckets (its log-softmax at those K ids, and the log
 * of its own summed mass over all other ids). KL = sum_i P_i (ln P_i - ln Q_i) over the K+1
 * buckets. Merging the tail into one bucket can only lower KL (log-sum inequality), so this
 * under-estimates by however the two models differ inside the tail; with K = 32 on real
 * models the tail holds little mass. The candidate's log-probabilities are rounded to float
 * exactly as the base's were, so the same model gives KL = 0 exactly. */
#ifndef MLC_BENCH_KLD_H
#define MLC_BENCH_KLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mlc/status.h"

#define MLC_KLD_MAGIC "MLCKLD\0\0"
#define MLC_KLD_VERSION 1u
#define MLC_KLD_HEADER_BYTES 64
#define MLC_KLD_TOP_DEFAULT 32
#define MLC_KLD_TOP_MAX 1024
#define MLC_KLD_MODEL_HASH_BYTES (16u << 20) /* bytes of the model file hashed */

#define MLC_FNV1A64_INIT 0xcbf29ce484222325ull
/* FNV-1a 64 of p[0..n), continuing from h (start with MLC_FNV1A64_INIT). */
uint64_t mlc_fnv1a64(uint64_t h, const void *p, size_t n);
/* The model hash of the header (see above). Errors name the file. */
mlc_status mlc_kld_model_hash(const char *path, uint64_t *out, mlc_err *err);
/* The tokens hash of the header, continued over ids[0..n) (int32 LE bytes). */
uint64_t mlc_kld_tokens_hash(uint64_t h, const int32_t *ids, size_t n);

typedef struct mlc_kld_header {
    uint32_t version, top_k, n_vocab, n_ctx, n_chunks;
    uint64_t n_scored, model_hash, tokens_hash;
    double base_mean_nll;
} mlc_kld_header;

/* Bytes of one record for K kept log-probabilities. */
size_t mlc_kld_record_bytes(uint32_t top_k);

/* One scored token of the base (ids and lp hold top_k entries). */
typedef struct mlc_kld_record {
    int32_t *ids;
    float *lp;
    float lp_target, lp_rest;
} mlc_kld_record;

/* Writer: records go to PATH.tmp, renamed to PATH by mlc_kld_writer_finish, so a failed
 * or interrupted run never leaves a half-written file under the final name. */
typedef struct mlc_kld_writer mlc_kld_writer;
mlc_status mlc_kld_writer_open(const char *path, const mlc_kld_header *h, mlc_kld_writer **out,
                               mlc_err *err);
/* Appends the record of one scored position: logits [n_vocab], the token they predict. */
mlc_status mlc_kld_writer_add(mlc_kld_writer *w, const float *logits, int n_vocab, int32_t target,
                              mlc_err *err);
/* Rewrites the header with n_scored (records written) and base_mean_nll, flushes, renames. */
mlc_status mlc_kld_writer_finish(mlc_kld_writer *w, double base_mean_nll, mlc_err *err);
/* Frees; an unfinished file (PATH.tmp) is removed. NULL is a no-op. */
void mlc_kld_writer_free(mlc_kld_writer *w);

/* Reader: the header is checked at open (magic, version, K, sizes; the file's length must
 * be exactly header + n_scored records), records are checked as they are read (ids in
 * range, log-probabilities finite, <= 0 and descending). Errors: "FILE: at byte OFFSET: what". */
typedef struct mlc_kld_reader mlc_kld_reader;
mlc_status mlc_kld_reader_open(const char *path, mlc_kld_reader **out, mlc_kld_header *h, mlc_err *err);
/* The next record (owned by the reader, valid until the next call). */
mlc_status mlc_kld_reader_next(mlc_kld_reader *r, const mlc_kld_record **rec, mlc_err *err);
void mlc_kld_reader_free(mlc_kld_reader *r);

/* One candidate token against its base record. */
typedef struct mlc_kld_token {
    double kld;          /* nats, >= 0 */
    bool same_top1;      /* candidate's argmax (lowest id on ties) == base's top id */
    double nll_cand;     /* candidate NLL of the target (double, like mlc_nll) */
    double nll_base;     /* -lp_target of the record */
} mlc_kld_token;

/* Compares candidate logits [n_vocab] with base record rec (top_k entries); scratch is
 * n_vocab bytes, all zero on entry and on return. */
void mlc_kld_compare(const mlc_kld_record *rec, uint32_t top_k, const float *logits, int n_vocab,
                     int32_t target, unsigned char *scratch, mlc_kld_token *out);

/* Per-token values kept for the summary. */
typedef struct mlc_kld_acc {
    double *kld, *dnll; /* kld[i]; dnll[i] = nll_cand - nll_base */
    int64_t n, cap, same_top1;
} mlc_kld_acc;
bool mlc_kld_acc_add(mlc_kld_acc *a, const mlc_kld_token *t);
void mlc_kld_acc_free(mlc_kld_acc *a);

typedef struct mlc_kld_summary {
    int64_t n;
    double kld_mean, kld_mean_err;            /* nats; err = sd / sqrt(n) */
    double kld_min, kld_median, kld_p90, kld_p99, kld_max; /* linear interpolation */
    double same_top1_pct, same_top1_err_pct;  /* %, err = sqrt(p(1-p)/(n-1)) */
    double ppl, ppl_base;
    double ln_ratio, ln_ratio_err;            /* ln(PPL/PPL(base)) = mean NLL difference */
    double ppl_ratio, ppl_ratio_err;
} mlc_kld_summary;
/* Sorts a->kld. cand_mean_nll: the candidate's mean NLL (mlc_ppl_result.mean_nll). */
void mlc_kld_summarize(mlc_kld_acc *a, double cand_mean_nll, double base_mean_nll, mlc_kld_summary *s);
/* Prints the summary in the style of llama-perplexity's KL-divergence output. */
void mlc_kld_print(const mlc_kld_summary *s, FILE *f);

#endif
