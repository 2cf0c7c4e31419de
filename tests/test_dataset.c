/* test_dataset.c: request datasets: the built-in prompt set, the sample of each format in
 * tests/data/ with exact expected values, the line numbers of malformed input, random
 * prompts (exact and ranged lengths, seeds, no special ids, text from a real tokenizer),
 * num_prompts sampling and cycling, and trace ordering. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench/dataset.h"
#include "mlc/gguf.h"
#include "mlc/tokenizer.h"
#include "util.h"

/* ------------------------------------------------------------------ helpers */

static mlc_dataset load(const mlc_dataset_opts *o)
{
    mlc_dataset d;
    mlc_err err = {0};
    mlc_status st = mlc_dataset_load(o, &d, &err);
    cr_assert_eq(st, MLC_OK, "%s: %s", o->spec ? o->spec : "(null)", err.msg);
    return d;
}

static mlc_dataset load_file(const char *path, const char *format, int32_t num, uint64_t seed)
{
    mlc_dataset_opts o = {.spec = path, .format = format, .num_prompts = num, .seed = seed,
                          .n_vocab = 1000};
    return load(&o);
}

/* A file in this process's temporary directory holding text; returns its path. */
static const char *write_tmp(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", tu_tmpdir(), name);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0, "%s", path);
    return path;
}

/* Loading text from a file named name fails with status st and a message holding want. */
static void expect_error(const char *name, const char *text, const char *format, mlc_status st,
                         const char *want)
{
    char path[1024];
    write_tmp(path, sizeof path, name, text);
    mlc_dataset_opts o = {.spec = path, .format = format, .n_vocab = 100};
    mlc_dataset d;
    mlc_err err = {0};
    mlc_status got = mlc_dataset_load(&o, &d, &err);
    cr_assert_eq(got, st, "%s: status %d, wanted %d (%s)", name, got, st, err.msg);
    cr_assert(strstr(err.msg, want), "%s: message '%s' lacks '%s'", name, err.msg, want);
    cr_assert(!strchr(err.msg, '\n'), "%s: message has a newline: %s", name, err.msg);
    cr_assert_eq(d.n, 0);
    cr_assert_null(d.p);
}

static mlc_tokenizer *llama_tokenizer(void)
{
    char path[1024];
    tu_require_shared(path, sizeof path, "vocab/ggml-vocab-llama-spm.gguf");
    mlc_gguf *g = NULL;
    mlc_tokenizer *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_gguf_open(path, &g, &err), MLC_OK, "%s", err.msg);
    cr_assert_eq(mlc_tokenizer_load(g, &t, &err), MLC_OK, "%s", err.msg);
    mlc_gguf_close(g);
    return t;
}

static bool same_prompt(const mlc_prompt *a, const mlc_prompt *b)
{
    if ((a->text == NULL) != (b->text == NULL) || (a->text && strcmp(a->text, b->text)))
        return false;
    if ((a->messages_json == NULL) != (b->messages_json == NULL) ||
        (a->messages_json && strcmp(a->messages_json, b->messages_json)))
        return false;
    if (a->n_ids != b->n_ids || (a->n_ids && memcmp(a->ids, b->ids, (size_t)a->n_ids * 4)))
        return false;
    return a->max_tokens == b->max_tokens && a->input_tokens == b->input_tokens &&
           a->timestamp == b->timestamp;
}

/* ------------------------------------------------------------------ built-in prompts */

Test(dataset, default_prompts)
{
    mlc_dataset_opts o = {.spec = "default"};
    mlc_dataset d = load(&o);
    cr_assert_str_eq(d.name, "default");
    cr_assert_geq(d.n, 200, "only %d built-in prompts", d.n);
    cr_assert(!d.timed);
    size_t shortest = (size_t)-1, longest = 0, over_1k = 0;
    int chat = 0, min_out = 1 << 30, max_out = 0;
    for (int32_t i = 0; i < d.n; i++) {
        const mlc_prompt *p = &d.p[i];
        cr_assert((p->text != NULL) != (p->messages_json != NULL), "prompt %d", i);
        cr_assert_null(p->ids);
        cr_assert_eq(p->input_tokens, -1);
        cr_assert_eq(p->timestamp, -1);
        cr_assert(p->max_tokens >= 16 && p->max_tokens <= 512, "prompt %d: max_tokens %d", i,
                  p->max_tokens);
        min_out = p->max_tokens < min_out ? p->max_tokens : min_out;
        max_out = p->max_tokens > max_out ? p->max_tokens : max_out;
        size_t len;
        if (p->messages_json) {
            chat++;
            cJSON *m = cJSON_Parse(p->messages_json);
            cr_assert(cJSON_IsArray(m) && cJSON_GetArraySize(m) >= 2, "prompt %d: %s", i,
                      p->messages_json);
            const cJSON *last = cJSON_GetArrayItem(m, cJSON_GetArraySize(m) - 1);
            cr_assert_str_eq(cJSON_GetObjectItem(last, "role")->valuestring, "user",
                             "prompt %d ends with no user turn", i);
            cJSON_Delete(m);
            len = strlen(p->messages_json);
        } else
            len = strlen(p->text);
        shortest = len < shortest ? len : shortest;
        longest = len > longest ? len : longest;
        over_1k += len >= 1024;
    }
    cr_assert_geq(chat, 15, "%d chat prompts", chat);
    cr_assert_leq(shortest, 40, "the shortest prompt has %zu bytes", shortest);
    cr_assert_geq(longest, 1500, "the longest prompt has %zu bytes", longest);
    cr_assert_geq(over_1k, 10, "%zu prompts of 1 KB or more", over_1k);
    cr_assert_eq(min_out, 16);
    cr_assert_eq(max_out, 512);
    mlc_dataset_free(&d);
    cr_assert_null(d.p);
    mlc_dataset_free(&d); /* twice is harmless */

    /* NULL and "" mean the default too; format jsonl is accepted, others refused */
    mlc_dataset_opts o2 = {.spec = NULL, .format = "jsonl"};
    mlc_dataset d2 = load(&o2);
    cr_assert_geq(d2.n, 200);
    mlc_dataset_free(&d2);
    mlc_dataset_opts o3 = {.spec = "default", .format = "trace"};
    mlc_err err = {0};
    cr_assert_eq(mlc_dataset_load(&o3, &d2, &err), MLC_ERR_ARG);
}

Test(dataset, default_sampled)
{
    mlc_dataset_opts o = {.spec = "default", .num_prompts = 50, .seed = 7};
    mlc_dataset a = load(&o), b = load(&o);
    cr_assert_eq(a.n, 50);
    for (int32_t i = 0; i < a.n; i++)
        cr_assert(same_prompt(&a.p[i], &b.p[i]), "prompt %d differs between equal seeds", i);
    mlc_dataset_free(&a);
    mlc_dataset_free(&b);
}

/* ------------------------------------------------------------------ format samples */

Test(dataset, sharegpt_sample)
{
    mlc_dataset d = load_file("tests/data/sample-sharegpt.json", "auto", 0, 0);
    cr_assert_str_eq(d.name, "sample-sharegpt.json");
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.n_skipped, 2); /* one turn only; no human turn */
    cr_assert(!d.timed);
    cr_assert_str_eq(d.p[0].text, "What is a cache line?");
    cr_assert_eq(d.p[0].max_tokens, 18); /* 72 bytes */
    cr_assert_str_eq(d.p[1].text, "Name a prime number."); /* the system turn is not it */
    cr_assert_eq(d.p[1].max_tokens, 2);                    /* "Seven." */
    cr_assert_str_eq(d.p[2].text,
                     "Line one,\nline two with \"quotes\", a ] bracket, a } brace and caf\xC3\xA9.");
    cr_assert_eq(d.p[2].max_tokens, 21); /* 82 bytes */
    for (int i = 0; i < 3; i++) {
        cr_assert_null(d.p[i].messages_json);
        cr_assert_null(d.p[i].ids);
        cr_assert_eq(d.p[i].input_tokens, -1);
        cr_assert_eq(d.p[i].timestamp, -1);
    }
    mlc_dataset_free(&d);
}

Test(dataset, sharegpt_tokenizer_lengths)
{
    mlc_tokenizer *t = llama_tokenizer();
    mlc_dataset_opts o = {.spec = "tests/data/sample-sharegpt.json", .tok = t};
    mlc_dataset d = load(&o);
    cr_assert_eq(d.n, 3);
    const char *replies[3] = {
        "The unit of data moved between memory and a CPU cache, usually 64 bytes.", "Seven.",
        "Noted: two lines, one quote pair, one bracket, one brace, one accent \xE2\x80\x94 all kept."};
    for (int i = 0; i < 3; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        mlc_err err = {0};
        cr_assert_eq(mlc_tokenize(t, replies[i], strlen(replies[i]), false, false, &ids, &n, &err),
                     MLC_OK);
        free(ids);
        cr_assert_eq(d.p[i].max_tokens, (int32_t)n, "reply %d: %d, tokenizer says %zu", i,
                     d.p[i].max_tokens, n);
    }
    mlc_dataset_free(&d);
    mlc_tokenizer_free(t);
}

Test(dataset, jsonl_sample)
{
    mlc_dataset d = load_file("tests/data/sample.jsonl", NULL, 0, 0);
    cr_assert_eq(d.n, 4);
    cr_assert(!d.timed);
    cr_assert_str_eq(d.p[0].text, "Say hello in three languages.");
    cr_assert_eq(d.p[0].max_tokens, 24);
    cr_assert_null(d.p[1].text);
    cr_assert_str_eq(d.p[1].messages_json,
                     "[{\"role\":\"system\",\"content\":\"You are brief.\"},"
                     "{\"role\":\"user\",\"content\":\"What is two plus two?\"}]");
    cr_assert_eq(d.p[1].max_tokens, 8);
    cr_assert_str_eq(d.p[2].text, "No output limit is given for this one.");
    cr_assert_leq(d.p[2].max_tokens, 0);
    cr_assert_str_eq(d.p[3].text, "Tabs\tand newlines\nsurvive; so does \xC3\xBC.");
    cr_assert_eq(d.p[3].max_tokens, 512);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(d.p[i].timestamp, -1);
    mlc_dataset_free(&d);
}

Test(dataset, trace_sample)
{
    mlc_dataset d = load_file("tests/data/sample-trace.jsonl", "auto", 0, 3);
    cr_assert(d.timed);
    cr_assert_eq(d.n, 4);
    /* sorted by time, file order among equal times, relative to the first */
    cr_assert_eq(d.p[0].timestamp, 0.0);
    cr_assert_null(d.p[0].text);
    cr_assert_eq(d.p[0].n_ids, 16);
    cr_assert_eq(d.p[0].input_tokens, 16);
    cr_assert_eq(d.p[0].max_tokens, 32);
    for (int i = 0; i < 16; i++)
        cr_assert(d.p[0].ids[i] >= MLC_DATASET_RANDOM_LOW && d.p[0].ids[i] < 1000);
    cr_assert_eq(d.p[1].timestamp, 1.25);
    cr_assert_str_eq(d.p[1].text, "Arrives second.");
    cr_assert_leq(d.p[1].max_tokens, 0);
    cr_assert_eq(d.p[2].timestamp, 2.5);
    cr_assert_str_eq(d.p[2].text, "Arrives third.");
    cr_assert_eq(d.p[2].max_tokens, 20);
    cr_assert_eq(d.p[3].timestamp, 2.5);
    cr_assert_str_eq(d.p[3].messages_json,
                     "[{\"role\":\"user\",\"content\":\"Arrives fourth, same time as the third.\"}]");
    cr_assert_eq(d.p[3].max_tokens, 8);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(d.p[i].input_tokens, -1);
    mlc_dataset_free(&d);

    /* the same file read as plain JSONL: timestamps are ignored keys, input_length is not a
     * prompt */
    mlc_dataset_opts o = {.spec = "tests/data/sample-trace.jsonl", .format = "jsonl"};
    mlc_err err = {0};
    cr_assert_eq(mlc_dataset_load(&o, &d, &err), MLC_ERR_FORMAT);
    cr_assert(strstr(err.msg, "sample-trace.jsonl:2: needs \"prompt\" or \"messages\""), "%s",
              err.msg);
}

Test(dataset, trace_milliseconds)
{
    mlc_dataset d = load_file("tests/data/sample-trace-ms.jsonl", NULL, 0, 0);
    cr_assert(d.timed);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.p[0].timestamp, 0.0);
    cr_assert_eq(d.p[0].n_ids, 3);
    cr_assert_eq(d.p[0].max_tokens, 4);
    cr_assert_float_eq(d.p[1].timestamp, 0.25, 1e-9);
    cr_assert_eq(d.p[1].n_ids, 5);
    cr_assert_eq(d.p[1].max_tokens, 7);
    cr_assert_float_eq(d.p[2].timestamp, 1.5, 1e-9);
    cr_assert_str_eq(d.p[2].text, "Late one.");
    cr_assert_eq(d.p[2].max_tokens, 2);
    mlc_dataset_free(&d);
}

Test(dataset, trace_num_prompts)
{
    /* the first N by time; never shuffled or repeated */
    mlc_dataset d = load_file("tests/data/sample-trace.jsonl", NULL, 2, 99);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.p[0].n_ids, 16);
    cr_assert_str_eq(d.p[1].text, "Arrives second.");
    mlc_dataset_free(&d);
    d = load_file("tests/data/sample-trace.jsonl", NULL, 10, 99);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.p[3].timestamp, 2.5);
    mlc_dataset_free(&d);
}

Test(dataset, trace_seeded_ids)
{
    mlc_dataset a = load_file("tests/data/sample-trace.jsonl", NULL, 0, 5);
    mlc_dataset b = load_file("tests/data/sample-trace.jsonl", NULL, 0, 5);
    mlc_dataset c = load_file("tests/data/sample-trace.jsonl", NULL, 0, 6);
    cr_assert(same_prompt(&a.p[0], &b.p[0]));
    cr_assert(!same_prompt(&a.p[0], &c.p[0]));
    mlc_dataset_free(&a);
    mlc_dataset_free(&b);
    mlc_dataset_free(&c);

    /* input_length without a vocabulary size is an argument error that names the file */
    mlc_dataset_opts o = {.spec = "tests/data/sample-trace.jsonl"};
    mlc_err err = {0};
    cr_assert_eq(mlc_dataset_load(&o, &a, &err), MLC_ERR_ARG);
    cr_assert(strstr(err.msg, "sample-trace.jsonl"), "%s", err.msg);
}

Test(dataset, format_detection)
{
    char path[1024];
    /* .jsonl whose first non-blank line has a timestamp: a trace */
    write_tmp(path, sizeof path, "t.jsonl", "\n  \n{\"timestamp_ms\": 5, \"prompt\": \"a\"}\n");
    mlc_dataset d = load_file(path, "auto", 0, 0);
    cr_assert(d.timed);
    cr_assert_eq(d.n, 1);
    mlc_dataset_free(&d);
    /* no known extension: judged by the first character */
    write_tmp(path, sizeof path, "conv.txt",
              "[{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, "
              "{\"from\": \"gpt\", \"value\": \"hello there\"}]}]");
    d = load_file(path, NULL, 0, 0);
    cr_assert(!d.timed);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.p[0].max_tokens, 3);
    mlc_dataset_free(&d);
    write_tmp(path, sizeof path, "lines", "{\"prompt\": \"x\"}\n{\"prompt\": \"y\"}");
    d = load_file(path, NULL, 0, 0);
    cr_assert(!d.timed);
    cr_assert_eq(d.n, 2);
    cr_assert_str_eq(d.p[1].text, "y"); /* no final newline */
    mlc_dataset_free(&d);
    /* an explicit format wins over the extension; CRLF line ends and a BOM are fine */
    write_tmp(path, sizeof path, "crlf.json",
              "\xEF\xBB\xBF{\"timestamp\": 1, \"prompt\": \"a\"}\r\n{\"timestamp\": 3, "
              "\"prompt\": \"b\"}\r\n");
    d = load_file(path, "trace", 0, 0);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.p[1].timestamp, 2.0);
    cr_assert_str_eq(d.p[1].text, "b");
    mlc_dataset_free(&d);
    expect_error("plain.txt", "hello\n", NULL, MLC_ERR_FORMAT, "cannot tell the dataset format");
    expect_error("x.jsonl", "{\"prompt\": \"a\"}\n", "csv", MLC_ERR_ARG, "'csv'");
}

Test(dataset, lone_surrogates)
{
    char path[1024];
    write_tmp(path, sizeof path, "sur.jsonl",
              "{\"prompt\": \"a\\ud800b \\ud83d\\ude00 \\\\ud800 \\udc00\"}\n");
    mlc_dataset d = load_file(path, NULL, 0, 0);
    cr_assert_eq(d.n, 1);
    cr_assert_str_eq(d.p[0].text, "a\xEF\xBF\xBD" "b \xF0\x9F\x98\x80 \\ud800 \xEF\xBF\xBD");
    mlc_dataset_free(&d);
}

/* ------------------------------------------------------------------ errors */

Test(dataset, missing_file)
{
    mlc_dataset_opts o = {.spec = "tests/data/no-such-file.jsonl"};
    mlc_dataset d;
    mlc_err err = {0};
    cr_assert_eq(mlc_dataset_load(&o, &d, &err), MLC_ERR_NOT_FOUND);
    cr_assert_str_eq(err.msg, "tests/data/no-such-file.jsonl: No such file or directory");
    cr_assert_eq(mlc_dataset_load(&(mlc_dataset_opts){.spec = "tests/data"}, &d, &err),
                 MLC_ERR_IO);
    cr_assert_str_eq(err.msg, "tests/data: Is a directory");
}

Test(dataset, malformed_jsonl)
{
    const char *good = "{\"prompt\": \"fine\"}\n";
    struct {
        const char *body; /* after two good lines and a blank one: errors are on line 4 */
        const char *want;
    } cases[] = {
        {"{\"prompt\": \"x\",}", ":4: invalid JSON"},
        {"{\"prompt\": \"unterminated}", ":4: invalid JSON"},
        {"[1, 2]", ":4: a line must be a JSON object"},
        {"{\"prompt\": \"x\"} {}", ":4: text after the JSON value"},
        {"{\"text\": \"x\"}", ":4: needs \"prompt\" or \"messages\""},
        {"{\"prompt\": 3}", ":4: \"prompt\" must be a string"},
        {"{\"prompt\": \"\"}", ":4: \"prompt\" is empty"},
        {"{\"prompt\": \"\xC3\x28\"}", ":4: \"prompt\" is not valid UTF-8"},
        {"{\"prompt\": \"x\", \"max_tokens\": 0}", ":4: \"max_tokens\" must be a positive integer"},
        {"{\"prompt\": \"x\", \"max_tokens\": 2.5}", ":4: \"max_tokens\" must be a positive integer"},
        {"{\"prompt\": \"x\", \"max_tokens\": \"8\"}", ":4: \"max_tokens\" must be a positive integer"},
        {"{\"prompt\": \"x\", \"max_tokens\": 1e12}", ":4: \"max_tokens\" must be a positive integer"},
        {"{\"prompt\": \"x\", \"messages\": []}", ":4: has both \"prompt\" and \"messages\""},
        {"{\"messages\": {}}", ":4: \"messages\" must be an array"},
        {"{\"messages\": []}", ":4: \"messages\" is empty"},
        {"{\"messages\": [\"hi\"]}", ":4: messages[0] must be an object"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": 1, \"content\": \"b\"}]}",
         ":4: messages[1].role must be a string"},
        {"{\"messages\": [{\"role\": \"\", \"content\": \"a\"}]}", ":4: messages[0].role is empty"},
        {"{\"messages\": [{\"role\": \"user\"}]}", ":4: messages[0].content must be a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s\n%s\n%s", good, good, cases[i].body, good);
        char name[32], want[256];
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        snprintf(want, sizeof want, "%s%s", name, cases[i].want);
        expect_error(name, text, NULL, MLC_ERR_FORMAT, want);
    }
    /* a line number deep in a file, with CRLF ends */
    char big[64 * 40 + 64] = "";
    for (int i = 0; i < 40; i++)
        strcat(big, "{\"prompt\": \"ok\", \"max_tokens\": 4}\r\n");
    strcat(big, "{\"prompt\": \"ok\", \"max_tokens\": -4}\r\n");
    expect_error("deep.jsonl", big, NULL, MLC_ERR_FORMAT,
                 "deep.jsonl:41: \"max_tokens\" must be a positive integer");
    expect_error("empty.jsonl", "\n\n  \n", NULL, MLC_ERR_FORMAT, "empty.jsonl: no prompts");
}

Test(dataset, malformed_trace)
{
    const char *ok = "{\"timestamp\": 1, \"prompt\": \"a\"}\n";
    struct {
        const char *body; /* line 2 */
        const char *want;
    } cases[] = {
        {"{\"prompt\": \"a\"}", ":2: needs \"timestamp\" (seconds) or \"timestamp_ms\""},
        {"{\"timestamp\": \"1\", \"prompt\": \"a\"}", ":2: \"timestamp\" must be a non-negative number"},
        {"{\"timestamp_ms\": -5, \"prompt\": \"a\"}", ":2: \"timestamp_ms\" must be a non-negative number"},
        {"{\"timestamp\": 1, \"timestamp_ms\": 1, \"prompt\": \"a\"}", ":2: has both"},
        {"{\"timestamp\": 1}", ":2: needs \"prompt\", \"messages\" or \"input_length\""},
        {"{\"timestamp\": 1, \"prompt\": \"a\", \"input_length\": 3}", ":2: needs only one of"},
        {"{\"timestamp\": 1, \"input_length\": 0}", ":2: \"input_length\" must be a positive integer"},
        {"{\"timestamp\": 1, \"input_length\": 99999999}", ":2: \"input_length\" is 99999999, over the limit"},
        {"{\"timestamp\": 1, \"prompt\": \"a\", \"output_length\": -1}", ":2: \"output_length\" must be a positive integer"},
        {"{\"timestamp\": 1, \"prompt\": \"a\", \"output_length\": 3, \"max_tokens\": 3}", ":2: has both \"output_length\" and \"max_tokens\""},
        {"{\"timestamp\": 1, \"messages\": [{\"role\": \"user\", \"content\": 5}]}", ":2: messages[0].content must be a string"},
        {"{\"timestamp\": 1, \"prompt\": \"a\"", ":2: invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s\n", ok, cases[i].body);
        char name[32], want[256];
        snprintf(name, sizeof name, "badtrace%zu.jsonl", i);
        snprintf(want, sizeof want, "%s%s", name, cases[i].want);
        expect_error(name, text, "trace", MLC_ERR_FORMAT, want);
    }
}

Test(dataset, malformed_sharegpt)
{
    const char *conv = "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, "
                       "{\"from\": \"gpt\", \"value\": \"a\"}]}";
    struct {
        const char *body; /* the third element, on line 4 */
        const char *want;
    } cases[] = {
        {"{\"conversations\": [}", ":4: invalid JSON"},
        {"{\"id\": 1}", ":4: [2]: needs \"conversations\""},
        {"{\"conversations\": \"no\"}", ":4: [2].conversations must be an array"},
        {"{\"conversations\": [1, 2]}", ":4: [2].conversations[0] must be an object"},
        {"{\"conversations\": [{\"from\": 1}, {}]}", ":4: [2].conversations[0].from must be a string"},
        {"{\"conversations\": [{\"from\": \"human\", \"value\": 1}, {}]}",
         ":4: [2].conversations[0].value must be a string"},
        {"{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"},\n {\"from\": \"gpt\"}]}",
         ":4: [2].conversations[1].value must be a string"},
        {"42", ":4: [2] must be a JSON object"},
        {"", ":5: [2]: expected a value"}, /* found the ']' on line 5 instead */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "[\n  %s,\n  %s,\n  %s\n]\n", conv, conv, cases[i].body);
        char name[32], want[256];
        snprintf(name, sizeof name, "badsg%zu.json", i);
        snprintf(want, sizeof want, "%s%s", name, cases[i].want);
        expect_error(name, text, NULL, MLC_ERR_FORMAT, want);
    }
    /* an error inside a multi-line element is reported on its own line */
    char text[1024];
    snprintf(text, sizeof text, "[\n%s,\n{\n  \"conversations\": [\n    {\"from\": \"human\",,}\n  ]\n}\n]",
             conv);
    expect_error("inner.json", text, NULL, MLC_ERR_FORMAT, "inner.json:5: invalid JSON");
    expect_error("obj.json", "{\"conversations\": []}", NULL, MLC_ERR_FORMAT,
                 "obj.json:1: expected a JSON array");
    snprintf(text, sizeof text, "[%s,\n%s", conv, conv);
    expect_error("open.json", text, NULL, MLC_ERR_FORMAT, "open.json:2: unexpected end of file");
    snprintf(text, sizeof text, "[%s]\n\n]", conv);
    expect_error("after.json", text, NULL, MLC_ERR_FORMAT,
                 "after.json:3: text after the top-level array");
    expect_error("none.json", "[{\"conversations\": []}]", NULL, MLC_ERR_FORMAT,
                 "none.json: no usable conversation (1 skipped");
    expect_error("emptyarr.json", " [ ] ", NULL, MLC_ERR_FORMAT, "emptyarr.json: no prompts");
}

Test(dataset, long_line)
{
    /* one line over the 16 MiB limit, after a good one */
    size_t n = MLC_DATASET_MAX_LINE + 64;
    char *text = malloc(n + 64);
    cr_assert_not_null(text);
    size_t k = (size_t)sprintf(text, "{\"prompt\": \"ok\"}\n{\"prompt\": \"");
    memset(text + k, 'a', n - k);
    strcpy(text + n, "\"}\n");
    char path[1024];
    snprintf(path, sizeof path, "%s/long.jsonl", tu_tmpdir());
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    free(text);
    mlc_dataset_opts o = {.spec = path};
    mlc_dataset d;
    mlc_err err = {0};
    cr_assert_eq(mlc_dataset_load(&o, &d, &err), MLC_ERR_FORMAT);
    cr_assert(strstr(err.msg, "long.jsonl:2: line longer than 16 MiB"), "%s", err.msg);
}

/* ------------------------------------------------------------------ random */

static mlc_dataset random_set(int32_t in, int32_t out, double r, int32_t n, uint64_t seed)
{
    mlc_dataset_opts o = {.spec = "random", .input_len = in, .output_len = out,
                          .range_ratio = r, .n_vocab = 500, .num_prompts = n, .seed = seed};
    return load(&o);
}

Test(dataset, random_exact)
{
    mlc_dataset d = random_set(128, 64, 0, 20, 1);
    cr_assert_str_eq(d.name, "random");
    cr_assert(!d.timed);
    cr_assert_eq(d.n, 20);
    int seen_low = 0, seen_high = 0;
    for (int32_t i = 0; i < d.n; i++) {
        const mlc_prompt *p = &d.p[i];
        cr_assert_eq(p->n_ids, 128);
        cr_assert_eq(p->input_tokens, 128);
        cr_assert_eq(p->max_tokens, 64);
        cr_assert_null(p->text); /* no tokenizer */
        cr_assert_null(p->messages_json);
        cr_assert_eq(p->timestamp, -1);
        for (int32_t j = 0; j < p->n_ids; j++) {
            cr_assert(p->ids[j] >= MLC_DATASET_RANDOM_LOW && p->ids[j] < 500, "id %d", p->ids[j]);
            seen_low += p->ids[j] < 50;
            seen_high += p->ids[j] >= 450;
        }
    }
    cr_assert(seen_low > 0 && seen_high > 0, "ids not spread over the vocabulary");
    mlc_dataset_free(&d);
}

Test(dataset, random_seeds)
{
    mlc_dataset a = random_set(32, 16, 0.5, 10, 42), b = random_set(32, 16, 0.5, 10, 42);
    mlc_dataset c = random_set(32, 16, 0.5, 10, 43);
    bool differs = false;
    for (int32_t i = 0; i < a.n; i++) {
        cr_assert(same_prompt(&a.p[i], &b.p[i]), "prompt %d differs for the same seed", i);
        differs |= !same_prompt(&a.p[i], &c.p[i]);
    }
    cr_assert(differs, "another seed gave the same prompts");
    mlc_dataset_free(&a);
    mlc_dataset_free(&b);
    mlc_dataset_free(&c);
}

Test(dataset, random_range)
{
    const double r = 0.25;
    mlc_dataset d = random_set(100, 40, r, 400, 9);
    int in_min = 1 << 30, in_max = 0, out_min = 1 << 30, out_max = 0;
    for (int32_t i = 0; i < d.n; i++) {
        int in = d.p[i].n_ids, out = d.p[i].max_tokens;
        cr_assert_eq(d.p[i].input_tokens, in);
        cr_assert(in >= 75 && in <= 125, "input length %d", in);
        cr_assert(out >= 30 && out <= 50, "output length %d", out);
        in_min = in < in_min ? in : in_min;
        in_max = in > in_max ? in : in_max;
        out_min = out < out_min ? out : out_min;
        out_max = out > out_max ? out : out_max;
    }
    /* 400 draws cover the ends of the ranges */
    cr_assert_eq(in_min, 75);
    cr_assert_eq(in_max, 125);
    cr_assert_eq(out_min, 30);
    cr_assert_eq(out_max, 50);
    mlc_dataset_free(&d);

    /* tiny lengths never reach 0 */
    d = random_set(1, 1, 0.9, 50, 9);
    for (int32_t i = 0; i < d.n; i++)
        cr_assert(d.p[i].n_ids == 1 && d.p[i].max_tokens >= 1 && d.p[i].max_tokens <= 1);
    mlc_dataset_free(&d);
}

Test(dataset, random_bad_options)
{
    struct {
        mlc_dataset_opts o;
        const char *want;
    } cases[] = {
        {{.spec = "random", .input_len = 0, .output_len = 8, .n_vocab = 100, .num_prompts = 1},
         "input length 0"},
        {{.spec = "random", .input_len = 8, .output_len = 0, .n_vocab = 100, .num_prompts = 1},
         "output length 0"},
        {{.spec = "random", .input_len = 8, .output_len = 8, .range_ratio = 1.0, .n_vocab = 100,
          .num_prompts = 1},
         "range ratio 1"},
        {{.spec = "random", .input_len = 8, .output_len = 8, .range_ratio = -0.1, .n_vocab = 100,
          .num_prompts = 1},
         "range ratio"},
        {{.spec = "random", .input_len = 8, .output_len = 8, .n_vocab = 100}, "number of prompts"},
        {{.spec = "random", .input_len = MLC_DATASET_MAX_INPUT_LEN, .output_len = 8,
          .range_ratio = 0.5, .n_vocab = 100, .num_prompts = 1},
         "over the limit"},
        {{.spec = "random", .input_len = 8, .output_len = 8, .n_vocab = 3, .num_prompts = 1},
         "vocabulary size"},
        {{.spec = "random", .format = "jsonl", .input_len = 8, .output_len = 8, .n_vocab = 100,
          .num_prompts = 1},
         "takes no format"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mlc_dataset d;
        mlc_err err = {0};
        cr_assert_eq(mlc_dataset_load(&cases[i].o, &d, &err), MLC_ERR_ARG, "case %zu", i);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
        cr_assert_eq(d.n, 0);
    }
    mlc_dataset d;
    cr_assert_eq(mlc_dataset_load(NULL, &d, NULL), MLC_ERR_ARG);
}

Test(dataset, random_with_tokenizer)
{
    mlc_tokenizer *t = llama_tokenizer();
    mlc_dataset_opts o = {.spec = "random", .input_len = 48, .output_len = 16, .tok = t,
                          .num_prompts = 8, .seed = 11};
    mlc_dataset d = load(&o);
    cr_assert_eq(d.n, 8);
    for (int32_t i = 0; i < d.n; i++) {
        const mlc_prompt *p = &d.p[i];
        cr_assert_eq(p->n_ids, 48);
        cr_assert_eq(p->max_tokens, 16);
        for (int32_t j = 0; j < p->n_ids; j++) {
            cr_assert_eq(mlc_tokenizer_token_type(t, p->ids[j]), MLC_TOKEN_NORMAL, "id %d",
                         p->ids[j]);
            cr_assert(!mlc_tokenizer_is_eog(t, p->ids[j]));
            cr_assert(p->ids[j] != mlc_tokenizer_bos(t));
        }
        cr_assert_not_null(p->text);
        cr_assert_gt(strlen(p->text), 48, "prompt %d: '%s'", i, p->text);
        /* the text is the ids' detokenization */
        char *s = NULL;
        size_t len = 0;
        mlc_err err = {0};
        cr_assert_eq(mlc_detokenize(t, p->ids, (size_t)p->n_ids, false, &s, &len, &err), MLC_OK);
        cr_assert_str_eq(p->text, s);
        free(s);
    }
    mlc_dataset_free(&d);

    /* n_vocab below the tokenizer's limits the ids */
    o.n_vocab = 1000;
    d = load(&o);
    for (int32_t i = 0; i < d.n; i++)
        for (int32_t j = 0; j < d.p[i].n_ids; j++)
            cr_assert_lt(d.p[i].ids[j], 1000);
    mlc_dataset_free(&d);
    mlc_tokenizer_free(t);
}

/* ------------------------------------------------------------------ num_prompts */

Test(dataset, num_prompts_shuffle)
{
    char path[1024], text[4096] = "";
    for (int i = 0; i < 30; i++) {
        char line[64];
        snprintf(line, sizeof line, "{\"prompt\": \"p%02d\", \"max_tokens\": %d}\n", i, i + 1);
        strcat(text, line);
    }
    write_tmp(path, sizeof path, "thirty.jsonl", text);

    mlc_dataset all = load_file(path, NULL, 0, 0);
    cr_assert_eq(all.n, 30);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(all.p[i].max_tokens, i + 1); /* file order */
    mlc_dataset_free(&all);

    mlc_dataset a = load_file(path, NULL, 10, 1), b = load_file(path, NULL, 10, 1);
    mlc_dataset c = load_file(path, NULL, 10, 2);
    cr_assert_eq(a.n, 10);
    bool seen[30] = {0}, in_order = true, differs = false;
    for (int i = 0; i < 10; i++) {
        int k = atoi(a.p[i].text + 1);
        cr_assert(k >= 0 && k < 30);
        cr_assert(!seen[k], "p%02d taken twice", k);
        seen[k] = true;
        cr_assert_eq(a.p[i].max_tokens, k + 1);
        in_order &= k == i;
        cr_assert(same_prompt(&a.p[i], &b.p[i]));
        differs |= !same_prompt(&a.p[i], &c.p[i]);
    }
    cr_assert(!in_order, "not shuffled");
    cr_assert(differs, "the seed changes nothing");
    mlc_dataset_free(&a);
    mlc_dataset_free(&b);
    mlc_dataset_free(&c);
}

Test(dataset, num_prompts_cycle)
{
    mlc_dataset d = load_file("tests/data/sample.jsonl", NULL, 10, 3);
    cr_assert_eq(d.n, 10);
    mlc_dataset ref = load_file("tests/data/sample.jsonl", NULL, 0, 0);
    for (int i = 0; i < 10; i++)
        cr_assert(same_prompt(&d.p[i], &ref.p[i % 4]), "prompt %d is not prompt %d", i, i % 4);
    /* copies, not shared pointers */
    cr_assert_neq(d.p[0].text, d.p[4].text);
    cr_assert_neq(d.p[1].messages_json, d.p[5].messages_json);
    mlc_dataset_free(&d);
    mlc_dataset_free(&ref);

    /* ShareGPT repeats too, with its lengths */
    d = load_file("tests/data/sample-sharegpt.json", NULL, 7, 0);
    cr_assert_eq(d.n, 7);
    cr_assert_str_eq(d.p[6].text, "What is a cache line?");
    cr_assert_eq(d.p[6].max_tokens, 18);
    cr_assert_eq(d.p[5].max_tokens, 21);
    mlc_dataset_free(&d);
}

/* Trace times that no replay could wait for are refused at their line: past the latest
 * time allowed, or too far from the other lines (1e300 s used to be slept on). */
Test(dataset, trace_times_bounded)
{
    expect_error("far1.jsonl", "{\"timestamp\": 0, \"prompt\": \"a\"}\n{\"timestamp\": 1e300, \"prompt\": \"b\"}\n",
                 "trace", MLC_ERR_FORMAT, "far1.jsonl:2: \"timestamp\" is 1e+300 s, beyond 1e+11 s");
    expect_error("far2.jsonl", "{\"timestamp\": 1700000000000, \"prompt\": \"a\"}\n", "trace", MLC_ERR_FORMAT,
                 "far2.jsonl:1: \"timestamp\" is 1.7e+12 s, beyond 1e+11 s (milliseconds go in \"timestamp_ms\")");
    expect_error("far3.jsonl",
                 "{\"timestamp\": 5e6, \"prompt\": \"a\"}\n{\"timestamp\": 5e6, \"prompt\": \"a\"}\n"
                 "{\"timestamp\": 1, \"prompt\": \"b\"}\n",
                 "trace", MLC_ERR_FORMAT, "far3.jsonl:3: \"timestamp\" is 5e+06 s from line 1's, beyond the 1e+06 s");
    /* Epoch times are fine, as long as the trace spans less than the limit. */
    char path[1024];
    write_tmp(path, sizeof path, "epoch.jsonl",
              "{\"timestamp_ms\": 1700000000500, \"prompt\": \"b\"}\n{\"timestamp\": 1700000000, \"prompt\": \"a\"}\n");
    mlc_dataset d = load_file(path, "trace", 0, 0);
    cr_assert_eq(d.n, 2);
    cr_expect_eq(d.p[0].timestamp, 0);
    cr_expect_float_eq(d.p[1].timestamp, 0.5, 1e-6);
    mlc_dataset_free(&d);
}

Test(dataset, messages_as_text)
{
    char *t = NULL;
    mlc_err err = {0};
    cr_assert_eq(mlc_messages_text("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                                   "\"content\":\"Hi\\nthere\"},{\"role\":\"assistant\",\"content\":\"Hello.\"},"
                                   "{\"role\":\"user\",\"content\":\"Bye\"}]", &t, &err), MLC_OK, "%s", err.msg);
    cr_expect_str_eq(t, "system: Be brief.\nuser: Hi\nthere\nassistant: Hello.\nuser: Bye\nassistant:");
    free(t);
    static const char *const bad[] = {"[]", "{}", "not json", "[{\"role\":\"user\"}]", "[{\"role\":1,\"content\":\"x\"}]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = (char *)1;
        cr_expect_eq(mlc_messages_text(bad[i], &t, &err), MLC_ERR_FORMAT, "%s", bad[i]);
        cr_expect_null(t);
    }
    /* Every chat entry of the built-in dataset has a text form for the completions API. */
    mlc_dataset_opts o = {.spec = "default", .n_vocab = 100};
    mlc_dataset d = load(&o);
    int chats = 0;
    for (int32_t i = 0; i < d.n; i++) {
        if (!d.p[i].messages_json)
            continue;
        chats++;
        cr_expect_eq(mlc_messages_text(d.p[i].messages_json, &t, &err), MLC_OK, "prompt %d: %s", (int)i, err.msg);
        cr_expect(t && !strncmp(t, "system: ", 8) == !!strstr(d.p[i].messages_json, "\"system\""), "prompt %d", (int)i);
        free(t);
    }
    cr_expect_gt(chats, 0);
    mlc_dataset_free(&d);
}
