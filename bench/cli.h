/* cli.h: small helpers shared by the command modules: strict number parsing with one-line
 * errors naming the command and flag, and a timer. */
#ifndef MLC_BENCH_CLI_H
#define MLC_BENCH_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Parse val as an integer in [min, max]; on failure prints
 * "mlc-bench CMD: FLAG: 'VAL' is not an integer in [min, max]" and returns false. */
bool mlc_cli_int(const char *cmd, const char *flag, const char *val, long min, long max, int *out);
bool mlc_cli_float(const char *cmd, const char *flag, const char *val, double min, double max,
                   float *out);
/* A comma list of 1..cap integers in [min, max] ("1,8,64"); empty items are errors. */
bool mlc_cli_int_list(const char *cmd, const char *flag, const char *val, long min, long max, int *out,
                      int cap, int *n);
bool mlc_cli_u64(const char *cmd, const char *flag, const char *val, uint64_t *out);
/* The value after flag argv[*i], advancing *i; prints "FLAG needs a value" when missing. */
const char *mlc_cli_value(const char *cmd, int argc, char **argv, int *i);
/* Like mlc_cli_value for a command whose options that take a value are the NULL-terminated
 * list valued: any other argv[*i] is "unknown option" (not "needs a value", which a flag
 * given last would otherwise read). */
const char *mlc_cli_option_value(const char *cmd, const char *const *valued, int argc, char **argv, int *i);
/* Monotonic clock in seconds. */
double mlc_cli_now(void);

#endif
