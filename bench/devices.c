/* devices.c: `mlc-bench devices`. */
#include "devices.h"

#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "mlc/backend_info.h"

int mlc_cmd_devices(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: mlc-bench devices\n"
                   "Lists every backend mlc-bench knows, whether this binary was built with it,\n"
                   "and the devices each built backend can see.\n");
            return 0;
        }
        fprintf(stderr, "mlc-bench devices: unknown option '%s'\n", argv[i]);
        return 2;
    }
    for (int b = 0; b < mlc_backend_count(); b++) {
        const char *name = mlc_backend_name(b);
        if (!mlc_backend_built(b)) {
            /* Only a backend with sources in this tree can be built by naming it. */
            char padded[48];
            snprintf(padded, sizeof padded, " %s ", name);
            if (strstr(MLC_IMPLEMENTED_BACKENDS, padded))
                printf("%-7s not built (not in this build: make BACKENDS=\"... %s\" builds it where its "
                       "toolchain is installed)\n", name, name);
            else
                printf("%-7s not built (this version of mlc-bench has no %s backend yet)\n", name, name);
            continue;
        }
        int n = mlc_backend_device_count(b);
        printf("%-7s built, %d device%s\n", name, n, n == 1 ? "" : "s");
        const mlc_backend_vt *vt;
        char why[256] = "";
        if (n == 0 && mlc_backend_vt_get(name, &vt, NULL) == MLC_OK && vt->no_device) {
            vt->no_device(why, sizeof why);
            printf("  (%s)\n", why);
        }
        for (int d = 0; d < n; d++) {
            char desc[512];
            mlc_backend_device_describe(b, d, desc, sizeof desc);
            printf("  %s:%d  %s\n", name, d, desc);
        }
    }
    return 0;
}
