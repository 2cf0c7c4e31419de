/* doc.c: the report document, markdown or HTML (doc.h). */
#include "doc.h"

#include <math.h>
#include <stdio.h>

void mlc_doc_html_escape(mlc_strbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': mlc_sb_put(b, "&amp;", 5); break;
        case '<': mlc_sb_put(b, "&lt;", 4); break;
        case '>': mlc_sb_put(b, "&gt;", 4); break;
        case '"': mlc_sb_put(b, "&quot;", 6); break;
        default: mlc_sb_put(b, s, 1);
        }
    }
}

void mlc_doc_md_escape(mlc_strbuf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            mlc_sb_put(b, "\\|", 2);
        else if (*s == '\n' || *s == '\r')
            mlc_sb_put(b, " ", 1);
        else
            mlc_sb_put(b, s, 1);
    }
}

void mlc_doc_text(mlc_doc *d, const char *s)
{
    if (d->html)
        mlc_doc_html_escape(&d->out, s);
    else
        mlc_doc_md_escape(&d->out, s);
}

void mlc_doc_heading(mlc_doc *d, int level, const char *s)
{
    if (d->html) {
        mlc_sb_printf(&d->out, "<h%d>", level);
        mlc_doc_html_escape(&d->out, s);
        mlc_sb_printf(&d->out, "</h%d>\n", level);
        return;
    }
    mlc_sb_printf(&d->out, "\n%.*s ", level, "######");
    mlc_doc_md_escape(&d->out, s);
    mlc_sb_printf(&d->out, "\n\n");
}

/* Text in an HTML element with attributes attr, or a markdown paragraph starting with md. */
static void block(mlc_doc *d, const char *attr, const char *md, const char *s)
{
    if (d->html) {
        mlc_sb_printf(&d->out, "<p%s>", attr);
        mlc_doc_html_escape(&d->out, s);
        mlc_sb_printf(&d->out, "</p>\n");
        return;
    }
    mlc_sb_printf(&d->out, "%s", md);
    mlc_doc_md_escape(&d->out, s);
    mlc_sb_printf(&d->out, "\n\n");
}

void mlc_doc_para(mlc_doc *d, const char *s)
{
    block(d, "", "", s);
}

void mlc_doc_note(mlc_doc *d, const char *s)
{
    block(d, " class=\"note\"", "> ", s);
}

void mlc_doc_code(mlc_doc *d, const char *s)
{
    if (d->html) {
        mlc_sb_printf(&d->out, "<pre>");
        mlc_doc_html_escape(&d->out, s);
        mlc_sb_printf(&d->out, "</pre>\n");
    } else {
        mlc_sb_printf(&d->out, "```json\n%s\n```\n\n", s);
    }
}

static void row(mlc_doc *d, int n, const char *const *cells, bool head)
{
    if (d->html) {
        mlc_sb_printf(&d->out, "<tr>");
        for (int i = 0; i < n; i++) {
            mlc_sb_printf(&d->out, head ? "<th>" : "<td>");
            mlc_doc_html_escape(&d->out, cells[i] ? cells[i] : "");
            mlc_sb_printf(&d->out, head ? "</th>" : "</td>");
        }
        mlc_sb_printf(&d->out, "</tr>\n");
        return;
    }
    mlc_sb_printf(&d->out, "|");
    for (int i = 0; i < n; i++) {
        mlc_sb_printf(&d->out, " ");
        mlc_doc_md_escape(&d->out, cells[i] ? cells[i] : "");
        mlc_sb_printf(&d->out, " |");
    }
    mlc_sb_printf(&d->out, "\n");
    if (head) {
        mlc_sb_printf(&d->out, "|");
        for (int i = 0; i < n; i++)
            mlc_sb_printf(&d->out, i ? "---:|" : "---|");
        mlc_sb_printf(&d->out, "\n");
    }
}

void mlc_doc_table_begin(mlc_doc *d, int n, const char *const *head)
{
    if (d->html)
        mlc_sb_printf(&d->out, "<table>\n");
    row(d, n, head, true);
}

void mlc_doc_table_row(mlc_doc *d, int n, const char *const *cells)
{
    row(d, n, cells, false);
}

void mlc_doc_table_end(mlc_doc *d)
{
    mlc_sb_printf(&d->out, d->html ? "</table>\n" : "\n");
}

void mlc_doc_num(char *out, size_t cap, double v)
{
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.2f", v);
}

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;"
    "padding:0 1em;color:#222;background:#fff}h1{border-bottom:2px solid #ddd}"
    "table{border-collapse:collapse;margin:0.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f0f3f7}td:first-child,th:first-child{text-align:left}"
    "pre{background:#f6f8fa;padding:0.6em;overflow:auto;font-size:90%}"
    ".note{background:#fff8e0;border-left:4px solid #e0b000;padding:0.4em 0.8em}"
    "figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:90%}";

void mlc_doc_begin(mlc_doc *d, const char *title)
{
    if (!d->html) {
        mlc_sb_printf(&d->out, "# ");
        mlc_doc_md_escape(&d->out, title);
        mlc_sb_printf(&d->out, "\n\n");
        return;
    }
    mlc_sb_printf(&d->out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    mlc_doc_html_escape(&d->out, title);
    mlc_sb_printf(&d->out, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", CSS);
    mlc_doc_html_escape(&d->out, title);
    mlc_sb_printf(&d->out, "</h1>\n");
}

void mlc_doc_end(mlc_doc *d)
{
    if (!d->html)
        return;
    mlc_sb_printf(&d->out, "<p class=\"foot\">");
    mlc_doc_text(d, "Written by mlc-bench " MLC_VERSION ". Charts: gnuplot. Self-contained: no scripts, "
                    "no network.");
    mlc_sb_printf(&d->out, "</p>\n</body>\n</html>\n");
}
