/* plot.c: charts drawn by gnuplot (plot.h). */
#include "plot.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/cli.h"

void mlc_plot_find(mlc_doc *r)
{
    const char *env = getenv("MLC_GNUPLOT");
    r->gnuplot[0] = 0;
    if (env && *env) {
        if (access(env, X_OK) == 0)
            snprintf(r->gnuplot, sizeof r->gnuplot, "%s", env);
        else
            snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "MLC_GNUPLOT=%s is not executable", env);
        return;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char cand[1024];
        snprintf(cand, sizeof cand, "%.*s/gnuplot", (int)len, len ? path : ".");
        if (access(cand, X_OK) == 0) {
            snprintf(r->gnuplot, sizeof r->gnuplot, "%s", cand);
            return;
        }
        path += len + (colon ? 1 : 0);
    }
    snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "gnuplot is not on PATH");
}

/* The temporary folder for data and scripts, made on first use. */
static const char *tmpdir(mlc_doc *r)
{
    if (r->tmp[0])
        return r->tmp;
    const char *t = getenv("TMPDIR");
    snprintf(r->tmp, sizeof r->tmp, "%s/mlc-report-XXXXXX", t && *t && !strchr(t, '\'') ? t : "/tmp");
    if (!mkdtemp(r->tmp)) {
        r->tmp[0] = 0;
        return NULL;
    }
    return r->tmp;
}

void mlc_plot_cleanup(mlc_doc *r)
{
    if (!r->tmp[0])
        return;
    DIR *d = opendir(r->tmp);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", r->tmp, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(r->tmp);
    r->tmp[0] = 0;
}

/* A data file in the temporary folder: opened for writing, its path in path. */
FILE *mlc_plot_data(mlc_doc *r, const char *name, char *path, size_t cap)
{
    const char *t = tmpdir(r);
    if (!t)
        return NULL;
    snprintf(path, cap, "%s/%s", t, name);
    return fopen(path, "w");
}

/* Waits for child pid (the leader of its own process group) up to timeout_s seconds; then,
 * or once it has exited, kills what is left of its group. False when it timed out. The
 * child is checked without being reaped (WNOWAIT), so its pid, and so its group id, cannot
 * be reused by another process while the group is killed. */
static bool wait_child(pid_t pid, double timeout_s, int *status)
{
    setpgid(pid, pid); /* also from this side: the group exists before the first kill */
    double deadline = mlc_cli_now() + timeout_s;
    bool exited = false;
    while (!exited && mlc_cli_now() < deadline) {
        siginfo_t si = {0};
        int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && si.si_pid == pid) || (rc < 0 && errno != EINTR)) {
            exited = true; /* or not ours to wait for (ECHILD): nothing to time */
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return exited;
}

/* Runs gnuplot on the script body with the terminal for fmt ("svg" or "png") writing out. */
static bool run_gnuplot(mlc_doc *r, const char *name, const char *fmt, const char *body,
                        const char *out, char *why, size_t why_cap)
{
    const char *t = tmpdir(r);
    if (!t) {
        snprintf(why, why_cap, "cannot make a temporary folder");
        return false;
    }
    char script[1024], log[1024];
    snprintf(script, sizeof script, "%s/%s-%s.gp", t, name, fmt);
    snprintf(log, sizeof log, "%s/%s-%s.log", t, name, fmt);
    FILE *f = fopen(script, "w");
    if (!f) {
        snprintf(why, why_cap, "cannot write %.400s", script);
        return false;
    }
    if (!strcmp(fmt, "png"))
        fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                   "  set terminal pngcairo size 900,480 font 'sans,10'\n"
                   "} else {\n  set terminal png size 900,480\n}\n");
    else
        fprintf(f, "set terminal svg size 900,480 dynamic background rgb 'white' font 'sans,11'\n");
    fprintf(f, "set termoption noenhanced\nset output '%s'\nset grid\nset key top left\nset border 3\nset tics nomirror\n"
               "%s\nset output\n", out, body);
    if (fclose(f) != 0) {
        snprintf(why, why_cap, "cannot write %.400s", script);
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_cap, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own process group: a timeout kills whatever it started too */
        FILE *lf = freopen(log, "w", stdout);
        if (lf)
            dup2(fileno(stdout), 2);
        execl(r->gnuplot, r->gnuplot, script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (!wait_child(pid, r->timeout_s, &status)) {
        snprintf(why, why_cap, "%.300s did not finish in %g s (killed)", r->gnuplot, r->timeout_s);
        snprintf(r->no_gnuplot, sizeof r->no_gnuplot, "%.200s timed out on an earlier chart", r->gnuplot);
        r->gnuplot[0] = 0;
        return false;
    }
    struct stat sst;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(out, &sst) != 0 || sst.st_size == 0) {
        char msg[160] = "";
        FILE *lf = fopen(log, "r");
        if (lf) {
            if (!fgets(msg, sizeof msg, lf))
                msg[0] = 0;
            fclose(lf);
        }
        msg[strcspn(msg, "\r\n")] = 0;
        snprintf(why, why_cap, "gnuplot failed (status %d)%s%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 msg[0] ? ": " : "", msg);
        return false;
    }
    return true;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    mlc_strbuf b = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        mlc_sb_put(&b, buf, n);
    fclose(f);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* One chart: drawn as inline SVG (HTML) and, with --png, as DIR/NAME.png (linked from the
 * markdown); a note in its place when it cannot be drawn. */
void mlc_plot_chart(mlc_doc *r, const char *name, const char *title, const char *body)
{
    r->n_charts++;
    char why[512] = "";
    bool drawn = false;
    if (!r->gnuplot[0]) {
        snprintf(why, sizeof why, "%s", r->no_gnuplot);
    } else {
        drawn = true;
        if (r->html) {
            char svg[1024];
            const char *t = tmpdir(r);
            snprintf(svg, sizeof svg, "%s/%s.svg", t ? t : ".", name);
            char *s = NULL;
            if (run_gnuplot(r, name, "svg", body, svg, why, sizeof why) && (s = read_all(svg))) {
                char *start = strstr(s, "<svg");
                mlc_sb_printf(&r->out, "<figure>\n");
                mlc_sb_put(&r->out, start ? start : s, strlen(start ? start : s));
                mlc_sb_printf(&r->out, "<figcaption>");
                mlc_doc_html_escape(&r->out, title);
                mlc_sb_printf(&r->out, "</figcaption></figure>\n");
            } else {
                drawn = false;
                if (!why[0])
                    snprintf(why, sizeof why, "cannot read %.400s", svg);
            }
            free(s);
        }
        if (drawn && r->png) {
            char png[1024];
            snprintf(png, sizeof png, "%s/%s.png", r->outdir, name);
            if (run_gnuplot(r, name, "png", body, png, why, sizeof why)) {
                if (!r->html) {
                    mlc_sb_printf(&r->out, "![");
                    mlc_doc_md_escape(&r->out, title);
                    mlc_sb_printf(&r->out, "](%s.png)\n\n", name);
                }
            } else {
                drawn = false;
            }
        }
    }
    if (!drawn && (r->html || r->png)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "Chart \"%s\" not drawn: %s.", title, why);
        mlc_doc_note(r, msg);
    }
}

bool mlc_plot_wanted(const mlc_doc *r)
{
    return r->html || r->png;
}

int mlc_plot_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
