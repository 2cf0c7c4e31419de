/* test_model_step.c: the engine's use of the backend's optional hooks (engine/backend.h):
 * begin_step/end_step around each forward pass, a re-issue when end_step says nothing ran,
 * and the device argmax of greedy decodes, on the CPU table wrapped with test hooks. The
 * picks must be the host sampler's (mlc_argmax) token for token. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend.h"
#include "mlc/model.h"
#include "mlc/sampler.h"
#include "mlc/sched.h"
#include "util.h"

/* What the wrapped table saw (each Criterion test runs in its own process). */
static struct {
    int begin, end, argmax, matmul;
    int fail_end;     /* end_step fails (says it ran nothing) this many times */
    bool decline;     /* argmax declines with MLC_ERR_UNSUPPORTED */
    bool in_step;
} seen;

static mlc_status t_begin(void *ctx)
{
    (void)ctx;
    cr_assert(!seen.in_step, "begin_step twice without end_step");
    seen.in_step = true;
    seen.begin++;
    return MLC_OK;
}

static mlc_status t_end(void *ctx)
{
    (void)ctx;
    cr_assert(seen.in_step, "end_step without begin_step");
    seen.in_step = false;
    seen.end++;
    if (seen.fail_end > 0) {
        seen.fail_end--;
        return MLC_ERR_BACKEND;
    }
    return MLC_OK;
}

static mlc_status t_matmul(void *ctx, mlc_tensor w, mlc_tensor x, mlc_tensor y)
{
    seen.matmul++;
    return mlc_backend_cpu.matmul(ctx, w, x, y);
}

/* The host's pick per row, written back as the device's would be: CPU buffers are host
 * memory, reached through download and upload. */
static mlc_status t_argmax(void *ctx, mlc_tensor logits, mlc_tensor out)
{
    if (seen.decline)
        return MLC_ERR_UNSUPPORTED;
    seen.argmax++;
    const int64_t nv = logits.ne[0], n = logits.ne[1];
    cr_assert_eq(out.type, MLC_TYPE_I32);
    cr_assert_eq(out.ne[0], n);
    float *row = malloc((size_t)nv * sizeof *row);
    cr_assert_not_null(row);
    for (int64_t r = 0; r < n; r++) {
        mlc_backend_cpu.download(ctx, row, logits.buf, logits.offset + (size_t)(r * nv) * 4, (size_t)nv * 4);
        const int32_t id = mlc_argmax(row, (int32_t)nv);
        mlc_backend_cpu.upload(ctx, out.buf, out.offset + (size_t)r * 4, &id, 4);
    }
    free(row);
    return MLC_OK;
}

static mlc_backend_vt hooked(void)
{
    mlc_backend_vt vt = mlc_backend_cpu;
    vt.begin_step = t_begin;
    vt.end_step = t_end;
    vt.argmax = t_argmax;
    vt.matmul = t_matmul;
    return vt;
}

static mlc_model *load(const mlc_backend_vt *vt)
{
    char path[1024];
    tu_require_shared(path, sizeof path, "golden/tiny-llama-q8_0.gguf");
    const mlc_model_params p = {.n_threads = 1, .backend_vt = vt};
    mlc_model *m = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_model_load(path, &p, &m, &err), MLC_OK, "%s", err.msg);
    return m;
}

enum { NT = 12, NV_MAX = 32000 };

/* A prompt of NT tokens in slot 0, every row wanting its logits. */
static void prompt(int32_t *tok, int32_t *pos, int32_t *slot, bool *want)
{
    for (int i = 0; i < NT; i++) {
        tok[i] = 1 + (i * 977) % 31000;
        pos[i] = i;
        slot[i] = 0;
        want[i] = true;
    }
}

/* The plain decode's picks and a copy of its logits. */
static void plain(mlc_model *m, int32_t *ids, float *logits)
{
    int32_t tok[NT], pos[NT], slot[NT];
    bool want[NT];
    prompt(tok, pos, slot, want);
    mlc_context *c;
    mlc_err err = {0};
    cr_assert_eq(mlc_context_new(m, &(mlc_context_params){.n_ctx = 64, .n_batch = NT}, &c, &err), MLC_OK);
    const mlc_batch b = {NT, tok, pos, slot, want};
    cr_assert_eq(mlc_context_decode(c, &b, &err), MLC_OK, "%s", err.msg);
    const int nv = mlc_context_n_vocab(c);
    cr_assert_leq(nv, NV_MAX);
    for (int k = 0; k < NT; k++) {
        const float *lg = mlc_context_logits(c, k);
        cr_assert_not_null(lg);
        ids[k] = mlc_argmax(lg, nv);
        if (logits)
            memcpy(logits + (size_t)k * NV_MAX, lg, (size_t)nv * sizeof *lg);
        cr_assert_eq(mlc_context_argmax(c, k), -1, "a plain decode has no picks");
    }
    mlc_context_free(c);
}

/* A greedy decode of the same prompt: its picks. */
static void greedy(mlc_model *m, int32_t *ids)
{
    int32_t tok[NT], pos[NT], slot[NT];
    bool want[NT];
    prompt(tok, pos, slot, want);
    mlc_context *c;
    mlc_err err = {0};
    cr_assert_eq(mlc_context_new(m, &(mlc_context_params){.n_ctx = 64, .n_batch = NT}, &c, &err), MLC_OK);
    const mlc_batch b = {NT, tok, pos, slot, want};
    cr_assert_eq(mlc_context_decode_greedy(c, &b, &err), MLC_OK, "%s", err.msg);
    for (int k = 0; k < NT; k++) {
        ids[k] = mlc_context_argmax(c, k);
        cr_expect_null(mlc_context_logits(c, k), "a greedy decode returns no logits");
    }
    cr_expect_eq(mlc_context_argmax(c, NT), -1);
    cr_expect_eq(mlc_context_argmax(c, -1), -1);
    mlc_context_free(c);
}

/* Without hooks (the plain CPU table) the greedy picks are the host's. */
Test(model_step, greedy_without_hooks_is_host_argmax, .timeout = 60)
{
    mlc_model *m = load(&mlc_backend_cpu);
    int32_t want[NT], got[NT];
    plain(m, want, NULL);
    greedy(m, got);
    for (int k = 0; k < NT; k++)
        cr_expect_eq(got[k], want[k], "row %d", k);
    mlc_model_free(m);
}

/* With hooks: one begin/end pair per decode, the device argmax once per greedy decode and
 * never for a plain one, and the same picks and logits as the plain table. */
Test(model_step, hooks_bracket_steps_and_pick_on_device, .timeout = 60)
{
    static float ref[NT * NV_MAX], got_lg[NT * NV_MAX];
    mlc_model *m0 = load(&mlc_backend_cpu);
    int32_t want[NT], got[NT];
    plain(m0, want, ref);
    mlc_model_free(m0);
    const mlc_backend_vt vt = hooked();
    mlc_model *m = load(&vt);
    memset(&seen, 0, sizeof seen);
    plain(m, got, got_lg);
    cr_expect_eq(seen.begin, 1);
    cr_expect_eq(seen.end, 1);
    cr_expect_eq(seen.argmax, 0, "a plain decode asked for the device argmax");
    cr_expect_eq(memcmp(ref, got_lg, sizeof ref), 0, "hooks changed the logits");
    greedy(m, got);
    cr_expect_eq(seen.begin, 2);
    cr_expect_eq(seen.end, 2);
    cr_expect_eq(seen.argmax, 1);
    for (int k = 0; k < NT; k++)
        cr_expect_eq(got[k], want[k], "row %d", k);
    mlc_model_free(m);
}

/* end_step failing means the backend ran nothing: the engine issues the step again without
 * the hooks (every matmul twice), with the same result. */
Test(model_step, failed_end_step_reissues, .timeout = 60)
{
    static float ref[NT * NV_MAX], got_lg[NT * NV_MAX];
    const mlc_backend_vt vt = hooked();
    mlc_model *m = load(&vt);
    int32_t want[NT], got[NT];
    memset(&seen, 0, sizeof seen);
    plain(m, want, ref);
    const int per_step = seen.matmul;
    cr_assert_gt(per_step, 0);
    memset(&seen, 0, sizeof seen);
    seen.fail_end = 1;
    plain(m, got, got_lg);
    cr_expect_eq(seen.begin, 1);
    cr_expect_eq(seen.end, 1, "end_step called for the plain re-issue");
    cr_expect_eq(seen.matmul, 2 * per_step);
    cr_expect_eq(memcmp(ref, got_lg, sizeof ref), 0);
    seen.fail_end = 1;
    greedy(m, got);
    cr_expect_eq(seen.argmax, 2, "the re-issued step picks on the device again");
    for (int k = 0; k < NT; k++)
        cr_expect_eq(got[k], want[k], "row %d", k);
    mlc_model_free(m);
}

/* An argmax that declines leaves the engine to download the logits and pick on the host. */
Test(model_step, declined_argmax_picks_on_host, .timeout = 60)
{
    const mlc_backend_vt vt = hooked();
    mlc_model *m = load(&vt);
    int32_t want[NT], got[NT];
    plain(m, want, NULL);
    memset(&seen, 0, sizeof seen);
    seen.decline = true;
    greedy(m, got);
    cr_expect_eq(seen.argmax, 0);
    for (int k = 0; k < NT; k++)
        cr_expect_eq(got[k], want[k], "row %d", k);
    mlc_model_free(m);
}

/* Runs two requests to the end through the scheduler; toks[r] gets request r's tokens. */
static void sched_run(mlc_model *m, float temperature, int32_t toks[2][8])
{
    mlc_context *c;
    mlc_sched *s;
    mlc_err err = {0};
    cr_assert_eq(mlc_context_new(m, &(mlc_context_params){.n_ctx = 64, .n_slots = 2, .n_batch = 16}, &c, &err),
                 MLC_OK);
    cr_assert_eq(mlc_sched_new(c, &(mlc_sched_params){0}, &s, &err), MLC_OK, "%s", err.msg);
    mlc_request_params rp = {.sampling = mlc_sampler_default_params(), .max_tokens = 8, .ignore_eos = true};
    rp.sampling.temperature = temperature;
    const int32_t p0[] = {5, 77, 901, 12}, p1[] = {3000, 41, 7};
    int64_t id;
    cr_assert_eq(mlc_sched_submit(s, p0, 4, &rp, &id, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_sched_submit(s, p1, 3, &rp, &id, &err), MLC_OK, "%s", err.msg);
    int got[2] = {0, 0};
    for (int step = 0; step < 64 && mlc_sched_pending(s) > 0; step++) {
        cr_assert_eq(mlc_sched_step(s, &err), MLC_OK, "%s", err.msg);
        int n;
        const mlc_sched_event *ev = mlc_sched_events(s, &n);
        for (int i = 0; i < n; i++)
            if (ev[i].token >= 0 && got[ev[i].id] < 8)
                toks[ev[i].id][got[ev[i].id]++] = ev[i].token;
    }
    cr_assert_eq(got[0], 8);
    cr_assert_eq(got[1], 8);
    mlc_sched_free(s);
    mlc_context_free(c);
}

/* Greedy requests go through the device argmax and generate what the plain table does;
 * sampled ones never ask for it. */
Test(model_step, sched_greedy_uses_device_argmax, .timeout = 120)
{
    int32_t want[2][8], got[2][8];
    mlc_model *m0 = load(&mlc_backend_cpu);
    sched_run(m0, 0.0f, want);
    mlc_model_free(m0);
    const mlc_backend_vt vt = hooked();
    mlc_model *m = load(&vt);
    memset(&seen, 0, sizeof seen);
    sched_run(m, 0.0f, got);
    cr_expect_gt(seen.argmax, 0);
    cr_expect_eq(seen.begin, seen.end);
    cr_expect_eq(memcmp(want, got, sizeof want), 0, "greedy tokens differ with the device argmax");
    memset(&seen, 0, sizeof seen);
    sched_run(m, 0.8f, got);
    cr_expect_eq(seen.argmax, 0, "a sampled request asked for the device argmax");
    mlc_model_free(m);
}
