/* devices.h: `mlc-bench devices`: backends built into this binary and the devices they see. */
#ifndef MLC_BENCH_DEVICES_H
#define MLC_BENCH_DEVICES_H

int mlc_cmd_devices(int argc, char **argv);

#endif
