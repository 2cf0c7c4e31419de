/* run_view.h: the view of one run: its results first (per load point, or the micro or ppl
 * view by the run's kind, and the metrics of no load point), its charts, then its
 * configuration and fingerprint. */
#ifndef MLC_REPORTS_RUN_VIEW_H
#define MLC_REPORTS_RUN_VIEW_H

#include "doc.h"

#define MLC_VIEW_MAX_POINTS 64

/* The load points of a run ("c=1", "r=2.5") in phase order. */
typedef struct mlc_view_points {
    int n;
    char name[MLC_VIEW_MAX_POINTS][32];
} mlc_view_points;

void mlc_view_points_load(mlc_doc *d, int64_t run, mlc_view_points *p);

void mlc_view_run(mlc_doc *d, int64_t run);

#endif
