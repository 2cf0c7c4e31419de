/* tests/util.c: helpers shared by the Criterion tests. */
#include "util.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rng.h"

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

long tu_png_nonwhite_pixels(const char *png)
{
    char py[1100];
    snprintf(py, sizeof py, "%s/count.py", tu_tmpdir());
    static const char src[] =
        "import sys, zlib, struct\n"
        "d = open(sys.argv[1], 'rb').read()\n"
        "assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
        "i, idat = 8, b''\n"
        "while i < len(d):\n"
        "    n, t = struct.unpack('>I4s', d[i:i+8]); c = d[i+8:i+8+n]; i += 12 + n\n"
        "    if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])\n"
        "    elif t == b'IDAT': idat += c\n"
        "bpp = {2: 3, 6: 4}[ct]; assert bd == 8\n"
        "raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); out = 0; pos = 0\n"
        "for y in range(h):\n"
        "    f = raw[pos]; line = bytearray(raw[pos+1:pos+1+stride]); pos += 1 + stride\n"
        "    for x in range(stride):\n"
        "        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0\n"
        "        if f == 1: line[x] = (line[x] + a) & 255\n"
        "        elif f == 2: line[x] = (line[x] + b) & 255\n"
        "        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255\n"
        "        elif f == 4:\n"
        "            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)\n"
        "            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255\n"
        "    out += sum(1 for x in range(0, stride, bpp) if min(line[x:x+3]) < 240)\n"
        "    prev = line\n"
        "print(out)\n";
    cr_assert_eq(tu_write_file(py, src, sizeof src - 1), 0);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "python3 %s %s", py, png);
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s: %s", cmd, out ? out : "");
    long n = strtol(out, NULL, 10);
    free(out);
    return n;
}

uint32_t tu_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float tu_rng_gauss(uint64_t *s)
{
    return (float)mlc_rng_gauss(s);
}

float tu_rng_unit24(uint64_t *s)
{
    return ((float)(mlc_rng_next(s) >> 40) + 0.5f) / 16777216.0f; /* 2^24 */
}

float tu_rng_gauss24(uint64_t *s)
{
    const double u = tu_rng_unit24(s), v = tu_rng_unit24(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

void tu_fill_gauss(uint64_t *s, float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = tu_rng_gauss(s) * scale;
}

bool tu_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

float tu_f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float tu_lcg_pm1(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}
