/* plot.h: charts drawn by gnuplot, an external program, on data files written to a
 * temporary folder. A chart's script is the terminal prologue (SVG for HTML, PNG for
 * --png) plus its plot body (the template each view fills in). SVG is inlined in the HTML;
 * --png also writes DIR/NAME.png, linked from the markdown. Without gnuplot (not on PATH,
 * or $MLC_GNUPLOT not executable) a note stands in place of each chart. Each gnuplot run
 * has a time limit (mlc_doc.timeout_s): a program that hangs is killed with its whole
 * process group and, like a missing gnuplot, leaves notes in place of every later chart. */
#ifndef MLC_REPORTS_PLOT_H
#define MLC_REPORTS_PLOT_H

#include <stdio.h>

#include "doc.h"

/* Finds the program ($MLC_GNUPLOT, else gnuplot on PATH) or says why not. */
void mlc_plot_find(mlc_doc *d);

/* A data file NAME in the temporary folder, opened for writing; its path in path. */
FILE *mlc_plot_data(mlc_doc *d, const char *name, char *path, size_t cap);

/* Draws one chart from its plot body (gnuplot commands after the terminal and output),
 * or writes a note saying why it is not drawn. */
void mlc_plot_chart(mlc_doc *d, const char *name, const char *title, const char *body);

/* True when charts are wanted (HTML or --png). */
bool mlc_plot_wanted(const mlc_doc *d);

/* Removes the temporary folder. */
void mlc_plot_cleanup(mlc_doc *d);

/* qsort comparator of doubles, ascending. */
int mlc_plot_cmp_double(const void *a, const void *b);

#endif
