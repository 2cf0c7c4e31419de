/* tests/test_membw.c: the streaming-read probe of bench/membw.c that `micro` reports next to
 * decode's weight bandwidth: a positive figure for 1, 2 and 3 threads (3 threads on 2 cores
 * too) and for a size that does not divide into vectors; 0 for an empty buffer. */
#include <criterion/criterion.h>

#include "../bench/membw.h"

Test(membw, positive_for_any_thread_count)
{
    for (int t = 1; t <= 3; t++) {
        double gbs = mlc_membw_read(t, (size_t)4 << 20, 2);
        cr_expect(gbs > 0 && gbs < 1e6, "%d threads: %g GB/s", t, gbs);
    }
    double odd = mlc_membw_read(2, ((size_t)1 << 20) + 100, 1);
    cr_expect(odd > 0, "odd size: %g GB/s", odd);
}

Test(membw, empty_buffer_is_zero)
{
    cr_expect_eq(mlc_membw_read(2, 0, 3), 0);
    cr_expect_eq(mlc_membw_read(2, 63, 3), 0);
}
