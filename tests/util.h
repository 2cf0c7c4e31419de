/* tests/util.h: helpers shared by the Criterion tests. */
#ifndef MLC_TESTS_UTIL_H
#define MLC_TESTS_UTIL_H

#include <stddef.h>

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

/* Non-white pixels of an 8-bit RGB/RGBA PNG (a screenshot), decoded by a few lines of python3
 * (no imaging library needed); the test fails when it cannot be read. */
long tu_png_nonwhite_pixels(const char *png);

#endif
