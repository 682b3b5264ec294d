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
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "status.h"
#include "supervise/supervise.h"

static const char usage[] = "up [--detach] [--wait] [--timeout S] [--quiet]";

static const struct cli_help_item up_options[] = {
    { "-d, --detach", "run the supervisor as a daemon (log: STATE/logs/supervisor.log)" },
    { "-w, --wait", "with --detach: wait until every service is up, printing progress" },
    { "-t, --timeout S", "how long --wait waits (default 180s; 90, 90s, 2m)" },
    { "-q, --quiet", "print errors only (no progress lines)" },
    { NULL, NULL },
};

const struct cli_help cmd_up_help = {
    .usage = usage,
    .summary = "Start the stack (supervised)",
    .options = up_options,
    .notes = "Checks the stack file, binaries, users and ports first: nothing is started when a\n"
             "check fails.  Without --detach the supervisor runs until SIGINT/SIGTERM.\n",
};

struct up_args {
    bool detach, wait, quiet;
    uint64_t timeout_usec;
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
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
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
static int check_user_access(const struct cli_ctx *ctx, const struct stack *s)
{
    if (geteuid() != 0)
        return 0; /* no user switching: everything runs as us */
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];
        struct stat st;

        if (!svc->user)
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

/* Creates the state directory layout and every service's dirs and files. */
static int prepare(const struct cli_ctx *ctx, const struct stack *s, struct stack_secrets *sec)
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
static void NORETURN run_daemon(const struct cli_ctx *ctx, const struct sv_spec *spec, int ready_fd)
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
    r = sv_run(spec, &(struct sv_options){ .state_dir = ctx->state_dir, .ready_fd = ready_fd });
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
static int clusters_pending(const struct status_snapshot *snap, struct buf *out)
{
    int n = 0;

    for (size_t i = 0; i < snap->n_clusters; i++) {
        const struct status_cluster *c = &snap->clusters[i];

        if (!c->degraded)
            continue;
        if (buf_appendf(out, "%s%s cluster (%s)", out->len ? ", " : "", c->name, c->problems) < 0)
            break;
        n++;
    }
    return n;
}

/* Polls the supervisor until every service is up (healthy, or completed for one-shots) and
 * every cluster is whole (a leader, a synchronous replica, replicas streaming: what `status`
 * judges), printing progress when the set of pending things changes. */
static int wait_healthy(const struct cli_ctx *ctx, const struct stack *s, const struct up_args *a)
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
        buf_reset(&pending);
        r = status_pending(&snap, &pending);
        if (r == 0) {
            status_collect_roles(&snap, s);
            r = clusters_pending(&snap, &pending);
        }
        if (r == 0) {
            if (!a->quiet)
                fprintf(stderr, "%s: all %zu services up, clusters whole, after %.1fs\n",
                        "infractl", snap.n_services, (double)(now_usec() - start) / 1e6);
            goto out;
        }
        if (!a->quiet && !streq(buf_str(&pending), buf_str(&last))) {
            fprintf(stderr, "infractl: [%5.1fs] waiting for: %s\n",
                    (double)(now_usec() - start) / 1e6, buf_str(&pending));
            buf_reset(&last);
            if (buf_puts(&last, buf_str(&pending)) < 0)
                buf_reset(&last);
        }
        if (status_any_failed(&snap) || now_usec() >= deadline) {
            log_error("%s: not up: %s", status_any_failed(&snap) ? "failed" : "timed out",
                      buf_str(&pending));
            for (size_t i = 0; i < snap.n_services; i++)
                if (!status_service_up(&snap.services[i]))
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

int cmd_up(int argc, char **argv, struct cli_ctx *ctx)
{
    struct up_args a;
    struct stack *s = NULL;
    struct sv_spec *spec = NULL;
    struct stack_secrets *sec = NULL;
    struct err e = ERR_INIT;
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

    if (cli_supervisor_running(ctx)) {
        if (!a.quiet)
            fprintf(stderr, "infractl: stack '%s' is already running (state %s)\n", s->name,
                    ctx->state_dir);
        ret = CLI_EXIT_OK;
        goto wait;
    }
    if (check_user_access(ctx, s) < 0)
        goto out;
    spec = cli_spec_from_stack(s);
    r = sv_preflight(spec, &e);
    if (r < 0) {
        log_error("%s; nothing was started", err_format(&e, msg, sizeof msg));
        goto out;
    }
    if (prepare(ctx, s, sec) < 0)
        goto out;

    if (!a.detach) {
        r = sv_run(spec, &(struct sv_options){ .state_dir = ctx->state_dir, .ready_fd = -1 });
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
            run_daemon(ctx, spec, pipefd[1]);
        }
        pipefd[1] = fd_close(pipefd[1]);
    }
    if (!wait_ready(pipefd[0], 15 * USEC_PER_SEC)) {
        log_error("the supervisor did not start");
        print_log_tail(ctx, "supervisor", 4096);
        goto out;
    }
    if (!a.quiet)
        fprintf(stderr, "infractl: supervisor started for stack '%s' (state %s)\n", s->name,
                ctx->state_dir);
    ret = CLI_EXIT_OK;
wait:
    if (a.wait) {
        r = wait_healthy(ctx, s, &a);
        if (r < 0)
            ret = r == -ETIMEDOUT ? CLI_EXIT_UNHEALTHY : CLI_EXIT_FAILURE;
    }
out:
    fd_close(pipefd[0]);
    fd_close(pipefd[1]);
    stack_secrets_free(sec);
    sv_spec_free(spec);
    stack_free(s);
    return ret;
}
