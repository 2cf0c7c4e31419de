/* doc.h: the report document: markdown or single-file HTML written into one buffer, with
 * the state every view shares (the store, the output format, the chart program). */
#ifndef MLC_REPORTS_DOC_H
#define MLC_REPORTS_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bench/store.h"
#include "../bench/strbuf.h"

typedef struct mlc_doc {
    mlc_store *store;
    const char *db_path;
    bool html, png;
    const char *outdir;
    mlc_strbuf out;
    char tmp[512];        /* temporary folder for chart data, "" until made */
    char gnuplot[1024];   /* the program, "" when unavailable */
    char no_gnuplot[256]; /* why not */
    double timeout_s;     /* per gnuplot run; then its process group is killed */
    int n_charts;
} mlc_doc;

void mlc_doc_text(mlc_doc *d, const char *s);
void mlc_doc_heading(mlc_doc *d, int level, const char *s);
void mlc_doc_para(mlc_doc *d, const char *s);
void mlc_doc_note(mlc_doc *d, const char *s);
void mlc_doc_code(mlc_doc *d, const char *s);
/* A table of n columns: the head, rows, the end. Cells are text (NULL: empty). */
void mlc_doc_table_begin(mlc_doc *d, int n, const char *const *head);
void mlc_doc_table_row(mlc_doc *d, int n, const char *const *cells);
void mlc_doc_table_end(mlc_doc *d);
/* The page around the views: the title (h1) first, the footer last. */
void mlc_doc_begin(mlc_doc *d, const char *title);
void mlc_doc_end(mlc_doc *d);

/* "%.2f", "-" for NaN. */
void mlc_doc_num(char *out, size_t cap, double v);

/* Escapes s for HTML text (& < > ") or a markdown cell (| escaped, newlines as spaces). */
void mlc_doc_html_escape(mlc_strbuf *b, const char *s);
void mlc_doc_md_escape(mlc_strbuf *b, const char *s);

#endif
