/* export.c: --save-requests, one JSON object per request (export.h). */
#include "export.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "outfile.h"

struct mlc_request_export {
    mlc_outfile out;
};

mlc_status mlc_export_open(const char *path, mlc_request_export **out, mlc_err *err)
{
    mlc_request_export *x = calloc(1, sizeof *x);
    *out = NULL;
    if (!x)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
    mlc_status s = mlc_outfile_open(&x->out, path, err);
    if (s) {
        free(x);
        return s;
    }
    *out = x;
    return MLC_OK;
}

/* The request as vLLM names it (export.h); NULL on out of memory. */
static cJSON *request_json(const char *load, const mlc_request_record *r, int64_t conversation, int turn)
{
    cJSON *o = cJSON_CreateObject(), *itl = cJSON_CreateArray();
    if (!o || !itl) {
        cJSON_Delete(o);
        cJSON_Delete(itl);
        return NULL;
    }
    cJSON_AddStringToObject(o, "load", load);
    cJSON_AddNumberToObject(o, "phase", (double)r->phase);
    cJSON_AddNumberToObject(o, "idx", (double)r->idx);
    cJSON_AddNumberToObject(o, "scheduled_time", r->scheduled);
    cJSON_AddNumberToObject(o, "start_time", r->sent);
    if (r->first_token >= 0)
        cJSON_AddNumberToObject(o, "ttft", r->first_token - r->sent);
    else
        cJSON_AddNullToObject(o, "ttft");
    for (int32_t i = 0; i < r->n_itl; i++)
        cJSON_AddItemToArray(itl, cJSON_CreateNumber((double)r->itl_ms[i] / 1e3));
    cJSON_AddItemToObject(o, "itl", itl);
    cJSON_AddNumberToObject(o, "latency", r->done - r->sent);
    cJSON_AddNumberToObject(o, "prompt_len", (double)r->input_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", (double)r->output_tokens);
    cJSON_AddBoolToObject(o, "tokens_approximate", r->tokens_approx);
    cJSON_AddBoolToObject(o, "success", r->ok);
    cJSON_AddStringToObject(o, "error", r->ok || !r->error ? "" : r->error);
    if (!r->ok && r->error_kind)
        cJSON_AddStringToObject(o, "error_kind", r->error_kind);
    else
        cJSON_AddNullToObject(o, "error_kind");
    if (r->http_status > 0)
        cJSON_AddNumberToObject(o, "http_status", r->http_status);
    else
        cJSON_AddNullToObject(o, "http_status");
    if (conversation >= 0) {
        cJSON_AddNumberToObject(o, "conversation", (double)conversation);
        cJSON_AddNumberToObject(o, "turn", turn);
    }
    return o;
}

mlc_status mlc_export_add(mlc_request_export *x, const char *load, const mlc_request_record *r,
                          int64_t conversation, int turn, mlc_err *err)
{
    cJSON *o = request_json(load, r, conversation, turn);
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line)
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", x->out.path);
    int rc = fprintf(x->out.f, "%s\n", line);
    free(line);
    if (rc < 0)
        return mlc_err_set(err, MLC_ERR_IO, "%s: write failed", x->out.path);
    return MLC_OK;
}

mlc_status mlc_export_commit(mlc_request_export *x, mlc_err *err)
{
    mlc_status s = mlc_outfile_commit(&x->out, err);
    free(x);
    return s;
}

void mlc_export_discard(mlc_request_export *x)
{
    if (!x)
        return;
    mlc_outfile_discard(&x->out);
    free(x);
}
