/* ts_main.c: the test server as a standalone process, for measuring the harness's own
 * overhead against a zero-delay endpoint (`make bench-client`).
 * Usage: ts-server [--port-file F] [--tokens N] [--ttft-ms X] [--itl-ms Y]
 * Prints the port on stdout and serves until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testserver.h"

int main(int argc, char **argv)
{
    ts_config cfg = {.n_tokens = 16};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens"))
            cfg.n_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ttft-ms"))
            cfg.ttft_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--itl-ms"))
            cfg.itl_ms = atof(argv[i + 1]);
    }
    cfg.max_records = 1;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, NULL);
    ts_server *srv = ts_start(&cfg);
    if (!srv)
        return 1;
    printf("%d\n", ts_port(srv));
    fflush(stdout);
    int sig;
    sigwait(&s, &sig);
    ts_stop(srv);
    return 0;
}
