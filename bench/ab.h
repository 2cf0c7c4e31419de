/* ab.h: `mlc-bench ab`: two builds in alternating rounds, then the regression gate. */
#ifndef MLC_BENCH_AB_H
#define MLC_BENCH_AB_H

int mlc_cmd_ab(int argc, char **argv);

#endif
