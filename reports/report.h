/* report.h: `mlc-bench report`: markdown and single-file HTML reports from the store, with
 * charts drawn by gnuplot (an external program; the report is written without it, with a
 * note where each chart would be). DESIGN.md, Reports; the views are in run_view.h,
 * compare_view.h and kind_view.h. */
#ifndef MLC_REPORTS_REPORT_H
#define MLC_REPORTS_REPORT_H

int mlc_cmd_report(int argc, char **argv);

#endif
