/* conv.c: a conversation replayed turn by turn (conv.h). */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

struct mlc_conv {
    cJSON *msgs;       /* the dataset's messages */
    cJSON *history;    /* what the next request carries before its user message */
    int next;          /* index in msgs of the next user message, -1: none */
    int asked;         /* index of the user message of the turn in flight, -1: none */
    int turns;
    bool dataset_history;
};

static const char *role_of(const cJSON *m)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(r) ? r->valuestring : "";
}

/* The first message at or after i with this role, before the next "user" one when stop. */
static int find_role(const cJSON *msgs, int i, const char *role, bool stop)
{
    for (int n = cJSON_GetArraySize(msgs); i < n; i++) {
        const char *r = role_of(cJSON_GetArrayItem(msgs, i));
        if (!strcmp(r, role))
            return i;
        if (stop && !strcmp(r, "user"))
            return -1;
    }
    return -1;
}

static bool push_copy(cJSON *arr, const cJSON *m)
{
    cJSON *d = cJSON_Duplicate(m, true);
    return d && cJSON_AddItemToArray(arr, d);
}

mlc_status mlc_conv_new(const char *messages_json, bool dataset_history, mlc_conv **out, mlc_err *err)
{
    *out = NULL;
    mlc_conv *c = calloc(1, sizeof *c);
    if (!c)
        return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
    c->msgs = cJSON_Parse(messages_json ? messages_json : "");
    c->history = cJSON_CreateArray();
    c->dataset_history = dataset_history;
    c->asked = -1;
    if (!cJSON_IsArray(c->msgs) || !c->history || (c->next = find_role(c->msgs, 0, "user", false)) < 0) {
        mlc_conv_free(c);
        return mlc_err_set(err, MLC_ERR_FORMAT, "a conversation needs chat messages with a \"user\" one");
    }
    for (int i = 0; i < c->next; i++) /* leading system messages */
        if (!strcmp(role_of(cJSON_GetArrayItem(c->msgs, i)), "system") &&
            !push_copy(c->history, cJSON_GetArrayItem(c->msgs, i))) {
            mlc_conv_free(c);
            return mlc_err_set(err, MLC_ERR_NOMEM, "out of memory");
        }
    *out = c;
    return MLC_OK;
}

char *mlc_conv_next(mlc_conv *c, bool *oom)
{
    *oom = false;
    if (c->next < 0)
        return NULL;
    cJSON *req = cJSON_Duplicate(c->history, true);
    char *s = req && push_copy(req, cJSON_GetArrayItem(c->msgs, c->next)) ? cJSON_PrintUnformatted(req) : NULL;
    cJSON_Delete(req);
    if (!s) {
        *oom = true;
        return NULL;
    }
    c->asked = c->next;
    c->next = -1;
    c->turns++;
    return s;
}

bool mlc_conv_answer(mlc_conv *c, const char *text, size_t len)
{
    if (c->asked < 0)
        return true;
    int a = c->asked;
    c->asked = -1;
    if (!push_copy(c->history, cJSON_GetArrayItem(c->msgs, a)))
        return false;
    int ds = c->dataset_history ? find_role(c->msgs, a + 1, "assistant", true) : -1;
    if (ds >= 0) {
        if (!push_copy(c->history, cJSON_GetArrayItem(c->msgs, ds)))
            return false;
    } else {
        char *t = malloc(len + 1);
        cJSON *m = cJSON_CreateObject();
        if (!t || !m) {
            free(t);
            cJSON_Delete(m);
            return false;
        }
        memcpy(t, text, len);
        t[len] = 0;
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", t);
        free(t);
        if (!cJSON_AddItemToArray(c->history, m))
            return false;
    }
    c->next = find_role(c->msgs, a + 1, "user", false);
    return true;
}

bool mlc_conv_more(const mlc_conv *c)
{
    return c->next >= 0;
}

int mlc_conv_turns(const mlc_conv *c)
{
    return c->turns;
}

void mlc_conv_free(mlc_conv *c)
{
    if (!c)
        return;
    cJSON_Delete(c->msgs);
    cJSON_Delete(c->history);
    free(c);
}
