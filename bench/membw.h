/* membw.h: the streaming-read bandwidth of this machine, measured as decode would see it:
 * n threads each reading its contiguous share of one buffer much larger than the caches. */
#ifndef MLC_BENCH_MEMBW_H
#define MLC_BENCH_MEMBW_H

#include <stddef.h>

/* Best of `passes` reads of a bytes-sized buffer by n_threads threads, in GB/s (1e9 bytes
 * per second); 0 if the buffer or a thread cannot be had. */
double mlc_membw_read(int n_threads, size_t bytes, int passes);

#endif
