/* outfile.c: output files written whole (see outfile.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISBLK(m) ? "a block device" : "not a regular file";
}

/* The temporary beside target: same directory (rename is atomic only within one file
 * system), created like fopen's "wb" would, but never through a symbolic link. A target
 * that exists lends its permission bits, so replacing a file keeps its mode. */
static mlc_status open_tmp(mlc_outfile *o, const struct stat *old, mlc_err *err)
{
    size_t n = strlen(o->path);
    if (!(o->tmp = malloc(n + 5)))
        return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", o->path);
    memcpy(o->tmp, o->path, n);
    memcpy(o->tmp + n, ".tmp", 5);
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return mlc_err_set(err, MLC_ERR_IO, "%s: %s", o->tmp, strerror(errno));
    if (old)
        (void)fchmod(fd, old->st_mode & 07777); /* best effort: the bytes matter more */
    if (!(o->f = fdopen(fd, "wb"))) {
        close(fd);
        unlink(o->tmp);
        return mlc_err_set(err, MLC_ERR_IO, "%s: %s", o->tmp, strerror(errno));
    }
    return MLC_OK;
}

mlc_status mlc_outfile_open(mlc_outfile *o, const char *path, mlc_err *err)
{
    memset(o, 0, sizeof *o);
    struct stat st, lst;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(errno));
        if (lstat(path, &lst) == 0)
            return mlc_err_set(err, MLC_ERR_IO, "%s: a symbolic link to a file that does not exist", path);
        if (!(o->path = strdup(path)))
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
        return open_tmp(o, NULL, err);
    }
    if (S_ISCHR(st.st_mode)) {
        if (!(o->path = strdup(path)))
            return mlc_err_set(err, MLC_ERR_NOMEM, "%s: out of memory", path);
        if (!(o->f = fopen(path, "wb")))
            return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(errno));
        return MLC_OK;
    }
    if (!S_ISREG(st.st_mode))
        return mlc_err_set(err, MLC_ERR_IO, "%s: is %s; give a file name", path, kind_of(st.st_mode));
    if (!(o->path = realpath(path, NULL)))
        return mlc_err_set(err, MLC_ERR_IO, "%s: %s", path, strerror(errno));
    return open_tmp(o, &st, err);
}

mlc_status mlc_outfile_commit(mlc_outfile *o, mlc_err *err)
{
    mlc_status s = MLC_OK;
    int rc = o->f ? fclose(o->f) : 0;
    o->f = NULL;
    if (rc != 0)
        s = mlc_err_set(err, MLC_ERR_IO, "%s: %s", o->tmp ? o->tmp : o->path, strerror(errno));
    else if (o->tmp && rename(o->tmp, o->path) != 0)
        s = mlc_err_set(err, MLC_ERR_IO, "%s: rename: %s", o->path, strerror(errno));
    if (s == MLC_OK) {
        free(o->tmp);
        o->tmp = NULL;
    }
    mlc_outfile_discard(o);
    return s;
}

void mlc_outfile_discard(mlc_outfile *o)
{
    if (o->f)
        fclose(o->f);
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
