/* tests/util.c: helpers shared by the Criterion tests. */
#include "util.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *mkdtemp(char *template);

const char *tu_shared_path(char *out, size_t cap, const char *rel)
{
    const char *root = getenv("MLC_SHARED");
    snprintf(out, cap, "%s/%s", root && *root ? root : "../shared", rel);
    return out;
}

const char *tu_require_shared(char *out, size_t cap, const char *rel)
{
    tu_shared_path(out, cap, rel);
    if (access(out, R_OK) == 0)
        return out;
    const char *req = getenv("MLC_REQUIRE_SHARED");
    if (req && !strcmp(req, "1"))
        cr_assert_fail("%s: not readable, and MLC_REQUIRE_SHARED=1", out);
    cr_skip_test("%s not found (set MLC_SHARED to the shared data folder)", out);
    return out;
}

const char *tu_tmpdir(void)
{
    /* One directory per test process: Criterion forks a process per test. */
    static char dir[512];
    static pid_t owner;
    if (owner != getpid() || !dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/mlc-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir))
            return "/tmp";
        owner = getpid();
    }
    return dir;
}

char *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = 0;
    if (size)
        *size = n;
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

int tu_run(const char *cmd, char **out)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (buf)
        buf[n] = 0;
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tu_bin(void)
{
    const char *b = getenv("MLC_BIN");
    return b && *b ? b : "build/mlc-bench";
}
