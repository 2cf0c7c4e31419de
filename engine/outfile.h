/* outfile.h: writing a whole output file (a model, a saved-logits file) so that a reader never
 * sees half of it and the user's path keeps what it is.
 *
 * - A regular file, or a path that does not exist yet, is written to a temporary file beside
 *   it and renamed over it on commit; a failed write leaves the old file as it was. A symbolic
 *   link is written through: the link stays, the file it points to is replaced.
 * - A character device (/dev/null, a terminal) is written directly: renaming over a device
 *   node would replace the node with a regular file.
 * - Anything else (a directory, a FIFO, a socket, a block device, a link to nothing) is
 *   refused with a message naming the path and what it is. */
#ifndef MLC_OUTFILE_H
#define MLC_OUTFILE_H

#include <stdio.h>

#include "mlc/status.h"

typedef struct mlc_outfile {
    FILE *f;     /* write here */
    char *path;  /* the file that receives the bytes (symbolic links resolved) */
    char *tmp;   /* the temporary renamed over path on commit; NULL when written directly */
} mlc_outfile;

/* Opens path for writing as above; *o is zeroed first, so discard is safe after a failure. */
mlc_status mlc_outfile_open(mlc_outfile *o, const char *path, mlc_err *err);
/* Closes the stream and renames the temporary over the target; on any failure the temporary
 * is removed and the target is untouched. Frees what open allocated. */
mlc_status mlc_outfile_commit(mlc_outfile *o, mlc_err *err);
/* Closes and removes the temporary (the target is untouched); a no-op after commit. */
void mlc_outfile_discard(mlc_outfile *o);

#endif
