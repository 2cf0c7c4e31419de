/* tests/util.h: helpers shared by the Criterion tests. */
#ifndef MLC_TESTS_UTIL_H
#define MLC_TESTS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Path of a file under ../shared (MLC_SHARED overrides), in a static-per-call buffer owned
 * by the caller: out must hold at least 1024 bytes. */
const char *tu_shared_path(char *out, size_t cap, const char *rel);
/* Like tu_shared_path, but when the file is missing the test is skipped with a message, or
 * fails when MLC_REQUIRE_SHARED=1 (CI sets it, so missing data can never pass silently). */
const char *tu_require_shared(char *out, size_t cap, const char *rel);
/* A fresh temporary directory for this test process (mkdtemp under $TMPDIR or /tmp). */
const char *tu_tmpdir(void);
/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL on failure. */
char *tu_read_file(const char *path, size_t *size);
/* Writes size bytes to path; 0 on success. */
int tu_write_file(const char *path, const void *data, size_t size);
/* Runs a shell command, capturing stdout+stderr into a malloc'd string; returns the exit status
 * (or -1). *out may be NULL when not wanted. */
int tu_run(const char *cmd, char **out);
/* Path of the mlc-bench binary under test (MLC_BIN, default build/mlc-bench). */
const char *tu_bin(void);

/* True in a build with AddressSanitizer (make SANITIZE=1). That build looks for memory errors
 * in our code; tests whose time goes into repetitions of code the other tests already run
 * under it (statistical rates, every case of every backend) run smaller or skip there, and
 * the plain build runs them whole. */
bool tu_sanitized(void);

/* The bits of f, to compare floats exactly (NaN payloads and signed zeros included). */
uint32_t tu_f32_bits(float f);
/* The float whose bits are u. */
float tu_f32_of_bits(uint32_t u);

/* Seeded test data, drawn from the splitmix64 stream *s of engine/rng.h (mlc_rng_next and
 * mlc_rng_unit serve as they are), so a seed gives the same values on every machine. */
/* A standard normal (mlc_rng_gauss: Box-Muller on two 53-bit uniforms) rounded to float. */
float tu_rng_gauss(uint64_t *s);
/* Uniform in (0, 1) from the top 24 bits of one draw, computed in float: coarser than
 * mlc_rng_unit, and a different stream of values; the suites written with it keep it so their
 * data (and measured worst errors) stay the same. */
float tu_rng_unit24(uint64_t *s);
/* A standard normal by Box-Muller on two tu_rng_unit24 draws, rounded to float. */
float tu_rng_gauss24(uint64_t *s);
/* Uniform in [-1, 1) from the top 24 bits of a 64-bit LCG step of *s (Knuth's MMIX
 * constants): the attention kernel tests' data. */
float tu_lcg_pm1(uint64_t *s);
/* x[0..n) = tu_rng_gauss(s) * scale, in order. */
void tu_fill_gauss(uint64_t *s, float *x, int64_t n, float scale);

/* Non-white pixels of an 8-bit RGB/RGBA PNG (a screenshot), decoded by a few lines of python3
 * (no imaging library needed); the test fails when it cannot be read. */
long tu_png_nonwhite_pixels(const char *png);

#endif
