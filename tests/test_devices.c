/* test_devices.c: `mlc-bench devices` and the backend registry. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_list.h"
#include "mlc/backend_info.h"
#include "util.h"

Test(devices, registry_lists_every_backend)
{
#define NAME_(n) #n,
    static const char *names[] = {MLC_BACKEND_LIST(NAME_)};
#undef NAME_
    const int n = (int)(sizeof names / sizeof names[0]);
    cr_assert_eq(mlc_backend_count(), n);
    for (int i = 0; i < n; i++)
        cr_expect_eq(mlc_backend_find(names[i]), i);
    cr_expect_eq(mlc_backend_find("tpu"), -1);
    int cpu = mlc_backend_find("cpu");
    cr_assert(mlc_backend_built(cpu));
    cr_expect_eq(mlc_backend_device_count(cpu), 1);
    char desc[512];
    mlc_backend_device_describe(cpu, 0, desc, sizeof desc);
    cr_expect(strstr(desc, "threads"), "%s", desc);
    cr_expect(strstr(desc, "GiB free"), "memory missing: %s", desc);
    mlc_backend_device_describe(cpu, 5, desc, sizeof desc);
    cr_expect_str_eq(desc, "no such device");
}

Test(devices, cli_output)
{
    char cmd[1100], *out;
    snprintf(cmd, sizeof cmd, "%s devices", tu_bin());
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "cpu     built, 1 device\n  cpu:0  "), "%s", out);
    /* Backends not in this build are reported, never silently replaced by the CPU. */
    for (int i = 0; i < mlc_backend_count(); i++) {
        char line[64];
        snprintf(line, sizeof line, "%-7s %s", mlc_backend_name(i),
                 mlc_backend_built(i) ? "built" : "not built");
        cr_expect(strstr(out, line), "'%s' missing in: %s", line, out);
        /* A backend without sources in this tree cannot be built by naming it: its line must
         * not send the user to make BACKENDS=...; one with sources (the Makefile's list: hip
         * is kernels/cuda built by hipcc) must. */
        if (mlc_backend_built(i))
            continue;
        char padded[48];
        snprintf(padded, sizeof padded, " %s ", mlc_backend_name(i));
        const bool has_sources = strstr(MLC_IMPLEMENTED_BACKENDS, padded) != NULL;
        const char *at = strstr(out, line), *eol = at ? strchr(at, '\n') : NULL;
        cr_assert(at && eol);
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)(eol - at), at);
        if (has_sources)
            cr_expect(strstr(text, "make BACKENDS=\"... ") && !strstr(text, "backend yet"), "%s", text);
        else
            cr_expect(strstr(text, "backend yet") && !strstr(text, "make BACKENDS"), "%s", text);
    }
    free(out);
}

/* --device N reaches the backend from every command that runs the engine: a device the
 * backend lacks is refused by name (exit 1, nothing run), and device 0 runs. */
Test(devices, device_option_on_every_engine_command, .timeout = 300)
{
    char model[1024], text[1100], db[1100];
    if (!tu_require_shared(model, sizeof model, "golden/tiny-llama-q8_0.gguf"))
        return;
    snprintf(text, sizeof text, "%s/device-text.txt", tu_tmpdir());
    static const char body[] = "The quick brown fox jumps over the lazy dog. It was a sunny day.\n";
    cr_assert_eq(tu_write_file(text, body, sizeof body - 1), 0);
    snprintf(db, sizeof db, "%s/device.db", tu_tmpdir());
    static const char *const cmds[] = {
        "generate -m %s -p hi -n 2",
        "micro -m %s -p 8 -n 2 -r 1 --warmup 0 --no-store",
        "ppl -m %s --text %s --ctx 8 --quiet --db %s",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        for (int dev = 0; dev <= 7; dev += 7) {
            char args[3400], cmd[4000], *out = NULL;
            snprintf(args, sizeof args, cmds[i], model, text, db);
            snprintf(cmd, sizeof cmd, "%s %s --backend cpu --device %d 2>&1", tu_bin(), args, dev);
            int rc = tu_run(cmd, &out);
            if (dev == 0)
                cr_expect_eq(rc, 0, "%s: %s", cmd, out);
            else
                cr_expect(rc == 1 && strstr(out, "backend 'cpu': no device 7 (1 present)"), "%s: exit %d: %s", cmd, rc, out);
            free(out);
        }
}
