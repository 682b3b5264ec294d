/* SPDX-License-Identifier: MIT */
/* run.c - pgbackrest (and pg_ctl) as child processes: privileges dropped to the cluster's user,
 * output captured, progress lines parsed as they come. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/str.h"
#include "core/strv.h"
#include "core/time.h"

#define RUN_OUT_MAX   (16u * 1024 * 1024)
#define RUN_LINE_MAX  8192
#define RUN_ERROR_MAX 2048
#define RUN_KILL_WAIT (5 * 1000000ull)

void backup_result_release(struct backup_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->error);
    *r = (struct backup_result){ .exit_code = -1 };
}

/* A user to become: resolved before fork (getpwnam is not async-signal-safe). */
struct identity {
    bool set;
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int n_groups;
    char home[256];
};

static int identity_lookup(const char *user, struct identity *ret)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int n, r;

    *ret = (struct identity){ .set = false };
    if (!user || geteuid() != 0)
        return 0;
    r = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    if (r != 0)
        return -r;
    if (!res)
        return -ESRCH;
    n = (int)ARRAY_SIZE(ret->groups);
    if (getgrouplist(user, pw.pw_gid, ret->groups, &n) < 0)
        n = 0; /* more than 64 groups: the primary group only */
    ret->set = true;
    ret->uid = pw.pw_uid;
    ret->gid = pw.pw_gid;
    ret->n_groups = n;
    (void)snprintf(ret->home, sizeof ret->home, "%s", pw.pw_dir ? pw.pw_dir : "/");
    return 0;
}

/* The stream state of one pipe: a partial line waiting for its newline. */
struct stream {
    int fd;
    struct buf line;
    bool is_stdout;
};

struct run_state {
    const struct backup_cmd *cmd; /* NULL for backup_spawn() */
    struct backup_result *res;
    struct buf out;
    struct buf error;
    uint64_t start;
};

/* "ERROR: [055]: unable to ..." (stderr) or "... P00  ERROR: [055]: ..." (console log). */
static void on_line(struct run_state *st, const char *line)
{
    const char *e = strstr(line, "ERROR: [");

    if (e) {
        /* Bounded: a full buffer keeps the first errors, which name the cause. */
        if (st->error.len > 0 && st->error.len < RUN_ERROR_MAX && buf_puts(&st->error, "\n") < 0)
            return;
        if (st->error.len < RUN_ERROR_MAX &&
            buf_append(&st->error, e, strnlen(e, RUN_ERROR_MAX - st->error.len)) < 0)
            return;
        return;
    }
    if (st->cmd && backup_progress_parse_line(line, &st->res->last)) {
        st->res->last.elapsed_us = now_usec() - st->start;
        if (st->cmd->on_progress)
            st->cmd->on_progress(&st->res->last, st->cmd->userdata);
    }
}

static void stream_feed(struct run_state *st, struct stream *s, const char *p, size_t n)
{
    /* Output past the caps is dropped (a line is cut at RUN_LINE_MAX): bounded memory. */
    if (s->is_stdout && st->out.len + n <= RUN_OUT_MAX && buf_append(&st->out, p, n) < 0)
        st->out.max = st->out.len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            on_line(st, buf_str(&s->line));
            buf_reset(&s->line);
        } else if (s->line.len < RUN_LINE_MAX && buf_append(&s->line, &p[i], 1) < 0) {
            break;
        }
    }
}

/* Child side: only async-signal-safe calls between fork and exec. */
static void NORETURN child_exec(char *const *argv, char *const *envp, const struct identity *id,
                                int out_w, int err_w)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sigset_t none;
    struct sigaction dfl = { .sa_handler = SIG_DFL };

    if (devnull < 0 || dup3(devnull, STDIN_FILENO, 0) < 0 || dup3(out_w, STDOUT_FILENO, 0) < 0 ||
        dup3(err_w, STDERR_FILENO, 0) < 0)
        _exit(126);
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)sigaction(SIGPIPE, &dfl, NULL);
    if (id->set && (setgroups((size_t)id->n_groups, id->groups) < 0 || setgid(id->gid) < 0 ||
                    setuid(id->uid) < 0))
        _exit(126);
    /* The caller's cwd may be unreadable for the new user (a checkout under /root). */
    if (chdir("/") < 0)
        _exit(126);
    execve(argv[0], argv, envp);
    _exit(errno == ENOENT ? 127 : 126);
}

static void kill_and_wait(pid_t pid, int *status)
{
    uint64_t deadline = now_usec() + RUN_KILL_WAIT;

    (void)kill(pid, SIGTERM);
    while (waitpid(pid, status, WNOHANG) == 0) {
        if (now_usec() > deadline) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, status, 0);
            return;
        }
        sleep_usec(50000);
    }
}

static int run_argv(const char *const *argv, const char *run_as, uint64_t timeout_us,
                    const struct backup_cmd *cmd, struct backup_result *ret)
{
    struct identity id;
    struct run_state st = { .cmd = cmd, .res = ret };
    struct stream streams[2] = { { .fd = -1, .is_stdout = true }, { .fd = -1 } };
    int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, status = 0;
    char env_path[] = "PATH=/usr/bin:/bin", env_lang[] = "LANG=C.UTF-8", home[300];
    char *envp[4] = { env_path, env_lang, home, NULL };
    char **args = strv_copy((char *const *)(uintptr_t)argv);
    pid_t pid;
    int r;

    *ret = (struct backup_result){ .exit_code = -1 };
    buf_init(&st.out, RUN_OUT_MAX + 1);
    buf_init(&st.error, RUN_ERROR_MAX + 64);
    if (access(argv[0], X_OK) < 0) {
        r = -errno;
        goto out;
    }
    r = identity_lookup(run_as, &id);
    if (r < 0)
        goto out;
    (void)snprintf(home, sizeof home, "HOME=%s", id.set ? id.home : "/");
    if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
        r = -errno;
        goto out;
    }
    st.start = now_usec();
    pid = fork();
    if (pid < 0) {
        r = -errno;
        goto out;
    }
    if (pid == 0)
        child_exec(args, envp, &id, out_p[1], err_p[1]);
    out_p[1] = fd_close(out_p[1]);
    err_p[1] = fd_close(err_p[1]);
    streams[0].fd = out_p[0];
    streams[1].fd = err_p[0];
    buf_init(&streams[0].line, RUN_LINE_MAX + 1);
    buf_init(&streams[1].line, RUN_LINE_MAX + 1);

    while (streams[0].fd >= 0 || streams[1].fd >= 0) {
        struct pollfd pfd[2];
        int timeout_ms = -1, n;

        for (int i = 0; i < 2; i++)
            pfd[i] = (struct pollfd){ .fd = streams[i].fd, .events = POLLIN };
        if (timeout_us) {
            uint64_t el = now_usec() - st.start;

            if (el >= timeout_us) {
                ret->timed_out = true;
                break;
            }
            timeout_ms = (int)((timeout_us - el) / 1000) + 1;
        }
        n = poll(pfd, 2, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < 2; i++) {
            char chunk[4096];
            ssize_t k;

            if (streams[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            k = read(streams[i].fd, chunk, sizeof chunk);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                if (streams[i].line.len > 0)
                    on_line(&st, buf_str(&streams[i].line));
                streams[i].fd = -1; /* closed below with its pipe end */
                continue;
            }
            stream_feed(&st, &streams[i], chunk, (size_t)k);
        }
    }
    if (ret->timed_out) {
        kill_and_wait(pid, &status);
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    ret->elapsed_us = now_usec() - st.start;
    ret->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (ret->exit_code == 127 && !ret->timed_out && st.out.len == 0 && st.error.len == 0) {
        r = -ENOENT;
        goto out;
    }
    r = 0;
out:
    out_p[0] = fd_close(out_p[0]);
    out_p[1] = fd_close(out_p[1]);
    err_p[0] = fd_close(err_p[0]);
    err_p[1] = fd_close(err_p[1]);
    buf_release(&streams[0].line);
    buf_release(&streams[1].line);
    ret->out = buf_detach(&st.out, NULL);
    if (!ret->out)
        ret->out = xstrdup("");
    ret->error = st.error.len ? buf_detach(&st.error, NULL) : NULL;
    buf_release(&st.error);
    strv_free(args);
    return r;
}

int backup_spawn(const char *const *argv, const char *run_as, uint64_t timeout_us,
                 struct backup_result *ret)
{
    return run_argv(argv, run_as, timeout_us, NULL, ret);
}

int backup_run(const struct backup_cmd *cmd, struct backup_result *ret)
{
    const char *argv[64];
    char *conf = NULL, *stanza = NULL;
    size_t n = 0;
    int r;

    argv[n++] = cmd->bin ? cmd->bin : "/usr/bin/pgbackrest";
    if (cmd->conf_path) {
        conf = xasprintf("--config=%s", cmd->conf_path);
        argv[n++] = conf;
    }
    if (cmd->stanza) {
        stanza = xasprintf("--stanza=%s", cmd->stanza);
        argv[n++] = stanza;
    }
    for (size_t i = 0; cmd->args && cmd->args[i]; i++) {
        if (n + 1 >= ARRAY_SIZE(argv)) {
            *ret = (struct backup_result){ .exit_code = -1 };
            r = -E2BIG;
            goto out;
        }
        argv[n++] = cmd->args[i];
    }
    argv[n] = NULL;
    r = run_argv(argv, cmd->run_as, cmd->timeout_us, cmd, ret);
out:
    free(conf);
    free(stanza);
    return r;
}
