/* compare_view.h: the views that judge runs against others, by the verdict rule of
 * `mlc-bench compare` (verdict.h) with its default options: a comparison of two references
 * (a table of verdicts and a chart of the samples of both sides), and the trend of one
 * metric over the last runs against a baseline band. */
#ifndef MLC_REPORTS_COMPARE_VIEW_H
#define MLC_REPORTS_COMPARE_VIEW_H

#include "../bench/runref.h"
#include "doc.h"

/* The regressions found, or -1 when the runs cannot be compared (message printed). */
int mlc_view_compare(mlc_doc *d, const mlc_runref *base, const mlc_runref *cand);

/* The trend of metric over runs (oldest first). The baseline: base when given (its median
 * and the p25..p75 of its samples as the band), else the runs before the last (the median
 * of their values, min..max as the band). Each run outside the baseline gets a verdict. */
void mlc_view_trend(mlc_doc *d, const int64_t *runs, int n, const char *metric, const mlc_runref *base);

#endif
