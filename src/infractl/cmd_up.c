/* SPDX-License-Identifier: MIT */
/* infractl up: preflight, prepare, start the supervisor (foreground or detached), wait. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/strv.h"
#include "core/time.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "status.h"
#include "supervise/supervise.h"

static const char usage[] = "up [--detach] [--wait] [--timeout S] [--quiet] [SERVICE...]";

static const struct cli_help_item up_options[] = {
    { "-d, --detach", "run the supervisor as a daemon (log: STATE/logs/supervisor.log)" },
    { "-w, --wait", "with --detach: wait until every service is up, printing progress" },
    { "-t, --timeout S", "how long --wait waits (default 180s; 90, 90s, 2m)" },
    { "-q, --quiet", "print errors only (no progress lines)" },
    { "SERVICE...", "only these services and what they depend on (default: all)" },
    { NULL, NULL },
};

const struct cli_help cmd_up_help = {
    .usage = usage,
    .summary = "Start the stack (supervised)",
    .options = up_options,
    .notes = "Checks the stack file, binaries, users and ports first: nothing is started when a\n"
             "check fails.  Without --detach the supervisor runs until SIGINT/SIGTERM.\n"
             "With SERVICE names, the other services stay stopped (a later `up` starts them);\n"
             "when the stack already runs, up starts whichever chosen services are stopped.\n",
};

struct up_args {
    bool detach, wait, quiet;
    uint64_t timeout_usec;
    char **names; /* SERVICE... (argv), n_names of them; none = every service */
    size_t n_names;
};

static int parse_args(int argc, char **argv, struct up_args *a)
{
    static const struct option opts[] = {
        { "detach", no_argument, NULL, 'd' },
        { "wait", no_argument, NULL, 'w' },
        { "timeout", required_argument, NULL, 't' },
        { "quiet", no_argument, NULL, 'q' },
        { 0 },
    };
    int c;

    *a = (struct up_args){ .timeout_usec = 180 * USEC_PER_SEC };
    while ((c = getopt_long(argc, argv, "dwt:q", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->detach = true;
            break;
        case 'w':
            a->wait = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 't':
            if (parse_duration_usec(optarg, &a->timeout_usec) < 0 || a->timeout_usec == 0)
                return cli_usage_error(usage, "invalid --timeout '%s' (e.g. 90, 90s, 2m)", optarg);
            break;
        default:
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    a->names = argv + optind;
    a->n_names = (size_t)(argc - optind);
    if (a->wait && !a->detach)
        return cli_usage_error(usage, "--wait needs --detach (in the foreground, up runs "
                                      "until interrupted)");
    return 0;
}

/* Can `user` access path with amode (access(2) modes)?  Asked of the kernel by a child that
 * becomes the user, so groups and ACLs count as they will for the service. */
static bool user_can_access(const char *user, const char *path, int amode)
{
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    int status = 0;
    pid_t pid;

    if (getpwnam_r(user, &pw, pwbuf, sizeof pwbuf, &res) != 0 || !res)
        return true; /* preflight names the missing user */
    pid = fork();
    if (pid < 0)
        return true;
    if (pid == 0) {
        if (initgroups(user, pw.pw_gid) < 0 || setgid(pw.pw_gid) < 0 || setuid(pw.pw_uid) < 0)
            _exit(2);
        _exit(access(path, amode) == 0 ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Services run as several system users: each must reach the state directory and read the
 * files its command names (a checkout under /root is out of their reach). */
static int check_user_access(const struct cli_ctx *ctx, const struct stack *s, const bool *sel)
{
    if (geteuid() != 0)
        return 0; /* no user switching: everything runs as us */
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];
        struct stat st;

        if (!svc->user || !sel[i])
            continue;
        if (!user_can_access(svc->user, ctx->state_dir, X_OK)) {
            log_error("service '%s' runs as '%s', who cannot reach the state directory '%s' "
                      "(it or a parent directory is not searchable by that user); choose another "
                      "--state-dir or chmod o+x the parents; nothing was started",
                      svc->name, svc->user, ctx->state_dir);
            return -EACCES;
        }
        for (char **a = svc->argv; *a; a++) {
            if ((*a)[0] != '/' || stat(*a, &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            if (!user_can_access(svc->user, *a, R_OK)) {
                log_error("service '%s' runs as '%s', who cannot read '%s'; copy it into the "
                          "state directory (stack file `files:` with `expand: false`) or make it "
                          "readable; nothing was started",
                          svc->name, svc->user, *a);
                return -EACCES;
            }
        }
    }
    return 0;
}

/* Creates the state directory layout and the chosen services' dirs and files. */
static int prepare(const struct cli_ctx *ctx, const struct stack *s, struct stack_secrets *sec,
                   const bool *sel)
{
    struct stack_vars vars = { .state_dir = ctx->state_dir,
                               .tools_dir = ctx->tools_dir,
                               .secret = stack_secrets_lookup,
                               .userdata = sec };
    struct err e = ERR_INIT;
    char path[4096], msg[600];
    int r;

    (void)snprintf(path, sizeof path, "%s/logs", ctx->state_dir);
    r = mkdir_p(path, 0755);
    if (r < 0)
        return log_error_errno(r, "cannot create '%s'", path);
    for (size_t i = 0; i < s->n_services; i++) {
        if (!sel[i])
            continue;
        r = stack_prepare_service(s, &s->services[i], &vars, &e);
        if (r < 0) {
            log_error("service '%s': %s", s->services[i].name, err_format(&e, msg, sizeof msg));
            return r;
        }
    }
    return 0;
}

/* Child side of --detach: become a session leader, log to STATE/logs/supervisor.log and
 * run the supervisor until `down`. */
static void NORETURN run_daemon(const struct cli_ctx *ctx, const struct sv_spec *spec,
                                const char *const *held, int ready_fd)
{
    char path[4096];
    int fd, r;

    (void)setsid();
    (void)snprintf(path, sizeof path, "%s/logs/supervisor.log", ctx->state_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd >= 0) {
        (void)dup3(fd, STDOUT_FILENO, 0);
        (void)dup3(fd, STDERR_FILENO, 0);
        fd_close(fd);
    }
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)dup3(fd, STDIN_FILENO, 0);
        fd_close(fd);
    }
    log_set_daemon_mode(1);
    r = sv_run(spec, &(struct sv_options){
                             .state_dir = ctx->state_dir, .ready_fd = ready_fd, .held = held });
    if (r < 0)
        log_error_errno(r, "supervisor failed");
    _exit(r < 0 ? 1 : 0);
}

static void print_log_tail(const struct cli_ctx *ctx, const char *service, size_t max)
{
    struct buf b = BUF_INIT(0);
    char *path = sv_log_path(ctx->state_dir, service);

    if (file_read_tail(path, max, &b) >= 0 && b.len) {
        fprintf(stderr, "--- last lines of %s ---\n%s", path, buf_str(&b));
        if (b.data[b.len - 1] != '\n')
            fputc('\n', stderr);
    }
    free(path);
    buf_release(&b);
}

/* Waits for the daemon's readiness line; false when it exited first. */
static bool wait_ready(int fd, uint64_t timeout_usec)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;

    if (poll(&p, 1, (int)(timeout_usec / USEC_PER_MSEC)) <= 0)
        return false;
    return read(fd, &c, 1) == 1 && c == '\n';
}

/* Appends "postgres cluster (problems)" for each degraded cluster; returns how many. */
/* The degraded clusters that one of the chosen services (NULL-terminated) is a member of. */
static int clusters_pending(const struct status_snapshot *snap, const struct stack *s,
                            char *const *chosen, struct buf *out)
{
    int n = 0;

    for (size_t i = 0; i < snap->n_clusters; i++) {
        const struct status_cluster *c = &snap->clusters[i];
        bool mine = false;

        for (char *const *p = chosen; *p && !mine; p++)
            mine = status_cluster_of(s, *p) && streq(status_cluster_of(s, *p), c->name);
        if (!c->degraded || !mine)
            continue;
        if (buf_appendf(out, "%s%s cluster (%s)", out->len ? ", " : "", c->name, c->problems) < 0)
            break;
        n++;
    }
    return n;
}

static bool chosen_failed(const struct status_snapshot *snap, char *const *chosen)
{
    for (size_t i = 0; i < snap->n_services; i++)
        if (streq(snap->services[i].state, "failed") && !snap->services[i].job &&
            strv_contains(chosen, snap->services[i].name))
            return true;
    return false;
}

/* Polls the supervisor until every chosen service is up (healthy, or completed for one-shots)
 * and every cluster among them is whole (a leader, a synchronous replica, replicas streaming:
 * what `status` judges), printing progress when the set of pending things changes. */
static int wait_healthy(const struct cli_ctx *ctx, const struct stack *s, char **chosen,
                        const struct up_args *a)
{
    uint64_t deadline = now_usec() + a->timeout_usec, start = now_usec();
    struct buf last = BUF_INIT(0), pending = BUF_INIT(0);
    struct status_snapshot snap = { 0 };
    int r;

    for (;;) {
        status_snapshot_release(&snap);
        r = status_fetch(ctx, &snap);
        if (r < 0) {
            log_error_errno(r, "supervisor stopped answering");
            print_log_tail(ctx, "supervisor", 4096);
            goto out;
        }
        /* Clusters are judged with every member in view; only the chosen services' own
         * states and the clusters they belong to are waited for. */
        buf_reset(&pending);
        r = status_pending(&snap, chosen, &pending);
        if (r == 0) {
            status_collect_roles(&snap, s);
            r = clusters_pending(&snap, s, chosen, &pending);
        }
        if (r == 0) {
            if (!a->quiet)
                fprintf(stderr, "%s: all %zu services up, clusters whole, after %.1fs\n",
                        "infractl", strv_length(chosen), (double)(now_usec() - start) / 1e6);
            goto out;
        }
        if (!a->quiet && !streq(buf_str(&pending), buf_str(&last))) {
            fprintf(stderr, "infractl: [%5.1fs] waiting for: %s\n",
                    (double)(now_usec() - start) / 1e6, buf_str(&pending));
            buf_reset(&last);
            if (buf_puts(&last, buf_str(&pending)) < 0)
                buf_reset(&last);
        }
        if (chosen_failed(&snap, chosen) || now_usec() >= deadline) {
            log_error("%s: not up: %s", chosen_failed(&snap, chosen) ? "failed" : "timed out",
                      buf_str(&pending));
            for (size_t i = 0; i < snap.n_services; i++)
                if (!status_service_up(&snap.services[i]) &&
                    strv_contains(chosen, snap.services[i].name))
                    print_log_tail(ctx, snap.services[i].name, 2048);
            r = -ETIMEDOUT;
            goto out;
        }
        sleep_usec(200 * USEC_PER_MSEC);
    }
out:
    status_snapshot_release(&snap);
    buf_release(&last);
    buf_release(&pending);
    return r;
}

/* Chosen services the running supervisor has stopped (held back by an earlier `up SERVICE`,
 * stopped by hand, or given up on): marks them in todo; -ENOENT for a chosen service the
 * supervisor does not know (the stack file changed since it started). */
static int stopped_services(const struct cli_ctx *ctx, const struct stack *s, const bool *sel,
                            bool *todo, size_t *ret_n)
{
    struct status_snapshot snap = { 0 };
    int r;

    *ret_n = 0;
    r = status_fetch(ctx, &snap);
    if (r < 0)
        return log_error_errno(r, "the supervisor of '%s' does not answer", ctx->state_dir);
    for (size_t i = 0; i < s->n_services && r == 0; i++) {
        const struct status_service *st = NULL;

        todo[i] = false;
        if (!sel[i])
            continue;
        for (size_t k = 0; k < snap.n_services && !st; k++)
            if (streq(snap.services[k].name, s->services[i].name))
                st = &snap.services[k];
        if (!st) {
            log_error("service '%s' is not known to the running supervisor (the stack file "
                      "changed since it started): run `infractl down`, then `up`",
                      s->services[i].name);
            r = -ENOENT;
        } else if (st->job ? !st->job->scheduled
                           : streq(st->state, "stopped") || streq(st->state, "failed")) {
            /* A job idles between runs: only a held one is started (run now, then scheduled). */
            todo[i] = true;
            (*ret_n)++;
        }
    }
    status_snapshot_release(&snap);
    return r;
}

/* `up` on a running stack: checks, prepares and starts the chosen services it has stopped. */
static int start_stopped(const struct cli_ctx *ctx, const struct stack *s,
                         struct stack_secrets *sec, const bool *sel, const struct up_args *a)
{
    bool *todo = xcalloc(s->n_services ? s->n_services : 1, sizeof *todo);
    struct sv_spec *spec = NULL;
    struct err e = ERR_INIT;
    char msg[600];
    size_t n;
    int r;

    r = stopped_services(ctx, s, sel, todo, &n);
    if (r < 0 || n == 0) {
        if (r == 0 && !a->quiet)
            fprintf(stderr, "infractl: stack '%s' is already running (state %s)\n", s->name,
                    ctx->state_dir);
        goto out;
    }
    r = check_user_access(ctx, s, todo);
    if (r < 0)
        goto out;
    spec = cli_spec_from_stack(s, todo);
    r = sv_preflight(spec, &e);
    if (r < 0) {
        log_error("%s; nothing was started", err_format(&e, msg, sizeof msg));
        goto out;
    }
    r = prepare(ctx, s, sec, todo);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < s->n_services; i++) {
        if (!todo[i])
            continue;
        r = sv_request(ctx->state_dir, SV_REQUEST_START, s->services[i].name, NULL,
                       10 * USEC_PER_SEC, msg, sizeof msg);
        if (r < 0) {
            if (r == -EINVAL && msg[0])
                log_error("cannot start '%s': %s", s->services[i].name, msg);
            else
                log_error_errno(r, "cannot start '%s'", s->services[i].name);
            goto out;
        }
        if (!a->quiet)
            fprintf(stderr, "infractl: starting '%s'\n", s->services[i].name);
    }
out:
    sv_spec_free(spec);
    free(todo);
    return r;
}

/* Names of the services sel marks (want = true) or leaves out (want = false). */
static char **names_where(const struct stack *s, const bool *sel, bool want)
{
    char **v = xcalloc(s->n_services + 1, sizeof *v);
    size_t n = 0;

    for (size_t i = 0; i < s->n_services; i++)
        if (sel[i] == want)
            v[n++] = xstrdup(s->services[i].name);
    return v;
}

int cmd_up(int argc, char **argv, struct cli_ctx *ctx)
{
    struct up_args a;
    struct stack *s = NULL;
    struct sv_spec *spec = NULL;
    struct stack_secrets *sec = NULL;
    struct err e = ERR_INIT;
    char **chosen = NULL, **held = NULL;
    bool *sel = NULL;
    char msg[600];
    int pipefd[2] = { -1, -1 };
    int r, ret = CLI_EXIT_FAILURE;

    r = parse_args(argc, argv, &a);
    if (r != 0)
        return r;
    {
        struct stat st;
        bool existed = stat(ctx->state_dir, &st) == 0;

        r = mkdir_p(ctx->state_dir, 0755);
        /* Whatever the umask, a state directory we create is searchable by the service users. */
        if (r == 0 && !existed)
            r = ret_nerrno(chmod(ctx->state_dir, 0755));
        if (r < 0) {
            log_error_errno(r, "cannot create state directory '%s'", ctx->state_dir);
            return CLI_EXIT_FAILURE;
        }
    }
    r = cli_load_stack(ctx, true, &s, &sec);
    if (r < 0)
        return CLI_EXIT_FAILURE;
    sel = xcalloc(s->n_services ? s->n_services : 1, sizeof *sel);
    for (size_t i = 0; i < s->n_services; i++)
        sel[i] = a.n_names == 0;
    if (stack_closure(s, a.names, a.n_names, sel, &e) < 0) {
        log_error("%s; nothing was started", err_format(&e, msg, sizeof msg));
        ret = CLI_EXIT_USAGE;
        goto out;
    }
    chosen = names_where(s, sel, true);
    held = names_where(s, sel, false);

    if (cli_supervisor_running(ctx)) {
        if (start_stopped(ctx, s, sec, sel, &a) < 0)
            goto out;
        ret = CLI_EXIT_OK;
        goto wait;
    }
    if (check_user_access(ctx, s, sel) < 0)
        goto out;
    spec = cli_spec_from_stack(s, sel);
    r = sv_preflight(spec, &e);
    if (r < 0) {
        log_error("%s; nothing was started", err_format(&e, msg, sizeof msg));
        goto out;
    }
    spec = sv_spec_free(spec);
    if (prepare(ctx, s, sec, sel) < 0)
        goto out;
    spec = cli_spec_from_stack(s, NULL);

    if (!a.detach) {
        r = sv_run(spec, &(struct sv_options){ .state_dir = ctx->state_dir,
                                               .ready_fd = -1,
                                               .held = (const char *const *)held });
        if (r == -EBUSY)
            log_error("another supervisor already runs on '%s'", ctx->state_dir);
        else if (r < 0)
            log_error_errno(r, "supervisor failed");
        ret = r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
        goto out;
    }

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        log_error_errno(-errno, "pipe2() failed");
        goto out;
    }
    fflush(NULL);
    {
        pid_t pid = fork();
        if (pid < 0) {
            log_error_errno(-errno, "fork() failed");
            goto out;
        }
        if (pid == 0) {
            pipefd[0] = fd_close(pipefd[0]);
            /* Second fork: the daemon is not our child, so our exit never reaps it. */
            pid = fork();
            if (pid != 0)
                _exit(pid < 0 ? 1 : 0);
            run_daemon(ctx, spec, (const char *const *)held, pipefd[1]);
        }
        pipefd[1] = fd_close(pipefd[1]);
    }
    if (!wait_ready(pipefd[0], 15 * USEC_PER_SEC)) {
        log_error("the supervisor did not start");
        print_log_tail(ctx, "supervisor", 4096);
        goto out;
    }
    if (!a.quiet)
        fprintf(stderr, "infractl: supervisor started for stack '%s' (state %s)%s\n", s->name,
                ctx->state_dir, held[0] ? ", some services held back" : "");
    ret = CLI_EXIT_OK;
wait:
    if (a.wait) {
        r = wait_healthy(ctx, s, chosen, &a);
        if (r < 0)
            ret = r == -ETIMEDOUT ? CLI_EXIT_UNHEALTHY : CLI_EXIT_FAILURE;
    }
out:
    fd_close(pipefd[0]);
    fd_close(pipefd[1]);
    strv_free(chosen);
    strv_free(held);
    free(sel);
    stack_secrets_free(sec);
    sv_spec_free(spec);
    stack_free(s);
    return ret;
}
