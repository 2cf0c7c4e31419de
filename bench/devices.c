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
                printf("%-7s not built (its toolchain was missing: install it, then make BACKENDS=\"... %s\")\n",
                       name, name);
            else
                printf("%-7s not built (this version of mlc-bench has no %s backend yet)\n", name, name);
            continue;
        }
        int n = mlc_backend_device_count(b);
        printf("%-7s built, %d device%s\n", name, n, n == 1 ? "" : "s");
        const mlc_backend_vt *vt;
        if (!n && !strcmp(name, "vulkan") && mlc_backend_vt_get(name, &vt, NULL) == MLC_OK) {
            /* why there is none: the backend's description of a device that does not exist */
            mlc_device_info di = {0};
            vt->device_info(-1, &di);
            printf("  %s\n", di.description);
        }
        for (int d = 0; d < n; d++) {
            char desc[512];
            mlc_backend_device_describe(b, d, desc, sizeof desc);
            printf("  %s:%d  %s\n", name, d, desc);
        }
    }
    return 0;
}
