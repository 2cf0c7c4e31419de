/* cli.c: argument parsing helpers and the monotonic clock for the command modules. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* strto* skip leading white space; a value is the number and nothing else. */
static bool bare(const char *val)
{
    return *val && !isspace((unsigned char)*val);
}

bool mlc_cli_int(const char *cmd, const char *flag, const char *val, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!bare(val) || errno || end == val || *end || v < min || v > max) {
        fprintf(stderr, "mlc-bench %s: %s: '%s' is not an integer in [%ld, %ld]\n", cmd, flag, val,
                min, max);
        return false;
    }
    *out = (int)v;
    return true;
}

bool mlc_cli_float(const char *cmd, const char *flag, const char *val, double min, double max,
                   float *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!bare(val) || errno || end == val || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "mlc-bench %s: %s: '%s' is not a number in [%g, %g]\n", cmd, flag, val, min, max);
        return false;
    }
    *out = (float)v;
    return true;
}

bool mlc_cli_u64(const char *cmd, const char *flag, const char *val, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!bare(val) || errno || end == val || *end || val[0] == '-') {
        fprintf(stderr, "mlc-bench %s: %s: '%s' is not a non-negative integer\n", cmd, flag, val);
        return false;
    }
    *out = v;
    return true;
}

bool mlc_cli_int_list(const char *cmd, const char *flag, const char *val, long min, long max, int *out,
                      int cap, int *n)
{
    *n = 0;
    for (const char *p = val;; p++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        int v;
        bool ok = len > 0 && len < sizeof item && *n < cap;
        if (ok) {
            memcpy(item, p, len);
            item[len] = 0;
            char *end;
            errno = 0;
            long x = strtol(item, &end, 10);
            ok = bare(item) && !errno && !*end && x >= min && x <= max;
            v = (int)x;
        }
        if (!ok) {
            fprintf(stderr, "mlc-bench %s: %s: '%s' is not a list of at most %d integers in [%ld, %ld]\n", cmd,
                    flag, val, cap, min, max);
            return false;
        }
        out[(*n)++] = v;
        if (!comma)
            return true;
        p = comma;
    }
}

const char *mlc_cli_option_value(const char *cmd, const char *const *valued, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (const char *const *k = valued; *k; k++)
        if (!strcmp(a, *k))
            return mlc_cli_value(cmd, argc, argv, i);
    fprintf(stderr, "mlc-bench %s: unknown option '%s' (see mlc-bench %s --help)\n", cmd, a, cmd);
    return NULL;
}

const char *mlc_cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "mlc-bench %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

double mlc_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
