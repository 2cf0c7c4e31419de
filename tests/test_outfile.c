/* test_outfile.c: output files are written whole, through symbolic links, directly into
 * character devices, and never over something that is not a file; and the commands that
 * write files (`model synth -o`, `ppl --kld-base`) keep the user's path what it was. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"
#include "util.h"

static void write_text(const char *path, const char *text, mlc_status want)
{
    mlc_outfile o;
    mlc_err err = {0};
    mlc_status s = mlc_outfile_open(&o, path, &err);
    if (s == MLC_OK) {
        fputs(text, o.f);
        s = mlc_outfile_commit(&o, &err);
    } else {
        mlc_outfile_discard(&o);
    }
    cr_assert_eq(s, want, "%s: %s", path, err.msg);
}

static char *read_text(const char *path)
{
    char *t = tu_read_file(path, NULL);
    cr_assert_not_null(t, "%s", path);
    return t;
}

Test(outfile, new_and_existing_files_replaced_whole)
{
    char p[1024], tmp[1100];
    snprintf(p, sizeof p, "%s/a.txt", tu_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    write_text(p, "one", MLC_OK);
    cr_assert_eq(chmod(p, 0640), 0);
    write_text(p, "two", MLC_OK);
    char *t = read_text(p);
    cr_expect_str_eq(t, "two");
    free(t);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0640, "mode %o: replacing a file keeps its mode", st.st_mode & 0777);
    cr_expect_neq(access(tmp, F_OK), 0, "the temporary is gone");

    /* Discarded output leaves the old file as it was. */
    mlc_outfile o;
    mlc_err err = {0};
    cr_assert_eq(mlc_outfile_open(&o, p, &err), MLC_OK, "%s", err.msg);
    fputs("half", o.f);
    mlc_outfile_discard(&o);
    t = read_text(p);
    cr_expect_str_eq(t, "two");
    free(t);
    cr_expect_neq(access(tmp, F_OK), 0);
}

Test(outfile, symlink_written_through)
{
    char target[1024], link[1024];
    snprintf(target, sizeof target, "%s/target.txt", tu_tmpdir());
    snprintf(link, sizeof link, "%s/link.txt", tu_tmpdir());
    cr_assert_eq(tu_write_file(target, "old", 3), 0);
    cr_assert_eq(symlink(target, link), 0);
    write_text(link, "new", MLC_OK);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "the link was replaced by a file");
    char *t = read_text(target);
    cr_expect_str_eq(t, "new");
    free(t);
}

/* A link to /dev/null: before, the link became a regular file; a device node must stay one
 * (checked through a link so that a regression cannot replace the real /dev/null). */
Test(outfile, character_device_written_directly)
{
    char link[1024];
    snprintf(link, sizeof link, "%s/null", tu_tmpdir());
    cr_assert_eq(symlink("/dev/null", link), 0);
    mlc_outfile o;
    mlc_err err = {0};
    cr_assert_eq(mlc_outfile_open(&o, link, &err), MLC_OK, "%s", err.msg);
    cr_expect_null(o.tmp, "a device gets no temporary");
    fputs("discarded", o.f);
    cr_assert_eq(mlc_outfile_commit(&o, &err), MLC_OK, "%s", err.msg);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode));
    cr_assert_eq(stat("/dev/null", &st), 0);
    cr_expect(S_ISCHR(st.st_mode));
}

Test(outfile, refused_targets_named)
{
    char dir[1024], fifo[1024], dangling[1024];
    snprintf(dir, sizeof dir, "%s/d", tu_tmpdir());
    snprintf(fifo, sizeof fifo, "%s/fifo", tu_tmpdir());
    snprintf(dangling, sizeof dangling, "%s/dangling", tu_tmpdir());
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    cr_assert_eq(symlink("/nonexistent/x", dangling), 0);
    struct { const char *path, *want; } c[] = {
        {dir, "is a directory"}, {fifo, "is a FIFO"}, {dangling, "a symbolic link to a file that does not exist"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        mlc_outfile o;
        mlc_err err = {0};
        cr_expect_neq(mlc_outfile_open(&o, c[i].path, &err), MLC_OK, "%s", c[i].path);
        mlc_outfile_discard(&o);
        cr_expect(strstr(err.msg, c[i].path) && strstr(err.msg, c[i].want), "message: %s", err.msg);
    }
    struct stat st;
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO is still one");
}

/* The commands: a model written through a link to /dev/null and into a FIFO. */
Test(outfile, synth_and_kld_base_keep_links_and_devices, .timeout = 120)
{
    char link[1024], dir[1024], cmd[4096], vocab[1024], model[1024], text[1024], *out;
    snprintf(link, sizeof link, "%s/out-null", tu_tmpdir());
    snprintf(dir, sizeof dir, "%s/adir", tu_tmpdir());
    cr_assert_eq(symlink("/dev/null", link), 0);
    cr_assert_eq(mkdir(dir, 0755), 0);
    tu_require_shared(vocab, sizeof vocab, "vocab/ggml-vocab-llama-spm.gguf");
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny --vocab %s -o %s", tu_bin(), vocab, link);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "model synth -o LINK replaced the link");
    snprintf(cmd, sizeof cmd, "%s model synth --preset tiny --vocab %s -o %s", tu_bin(), vocab, dir);
    cr_expect_neq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, dir) && strstr(out, "is a directory"), "%s", out);
    const char *nl = strchr(out, '\n');
    cr_expect(nl && !nl[1], "one line: %s", out);
    free(out);

    tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf");
    tu_require_shared(text, sizeof text, "golden/text.txt");
    snprintf(cmd, sizeof cmd, "%s ppl -m %s --text %s --ctx 64 --chunks 1 --db %s/kld.db --kld-base %s", tu_bin(),
             model, text, tu_tmpdir(), link);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    free(out);
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "ppl --kld-base LINK replaced the link");
}
