/* SPDX-License-Identifier: MIT */
/* probe_exec.c - exec probe: runs argv in its own process group with stdin on /dev/null and
 * stdout+stderr on a pipe; healthy when it exits 0.
 *
 * Two fds matter (the output pipe and a pidfd that becomes readable when the child exits), but
 * the probe API exposes one: the probe owns an epoll fd watching both, and epoll fds are
 * pollable, so the caller polls that one for POLLIN.  Each step drains the pipe and checks the
 * pidfd with waitid(WNOHANG); epoll is level-triggered, so nothing needs to be consumed.
 *
 * The child is a plain child (posix_spawnp + pidfd_open).  It sends SIGCHLD like any other
 * child, so an owner that reaps with waitpid(-1, ...) would steal its status: such a loop must
 * reap only the pids it started (waitpid(pid) / waitid(P_PIDFD)).  The probe notices a stolen
 * status (waitid() says ECHILD) and reports -ECHILD instead of hanging until the deadline.
 * (Spawning with clone3 and exit_signal 0 would hide it from waitpid(-1), but exec resets the
 * exit signal to SIGCHLD, so that does not work.)
 *
 * Results: 0 on exit 0; -EIO on a non-zero exit or a fatal signal ("exit status N", "killed by
 * signal N"); -ECHILD when the status was reaped by someone else; the exec errno (-ENOENT,
 * -EACCES ...) when the command could not be started; -ETIMEDOUT at the deadline.  Whenever
 * the probe finishes or is freed, the whole process group gets SIGKILL and the child is reaped
 * before the pid is released, so no zombie or straggler survives it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe_int.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* Moves fd out of 0..2 so the child's dup2() calls cannot clobber it. */
static int fd_move_above_stdio(int fd)
{
    int n;

    if (fd < 0 || fd > 2)
        return fd;
    n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    (void)close(fd);
    return n;
}

/* Starts the child; fills exec_pid and exec_pidfd.  0 or -errno (nothing left running). */
static int exec_spawn(struct probe *p, int devnull, int out_w)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    pid_t pid;
    int r;

    r = -posix_spawn_file_actions_init(&fa);
    if (r < 0)
        return r;
    r = -posix_spawnattr_init(&attr);
    if (r < 0) {
        (void)posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    (void)sigemptyset(&none);
    (void)sigfillset(&all);
    /* Own process group (pgid = pid) so a kill reaches everything it started; ignored signals
     * and the mask survive exec, so the command gets defaults. */
    if (posix_spawn_file_actions_adddup2(&fa, devnull, STDIN_FILENO) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, out_w, STDOUT_FILENO) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, out_w, STDERR_FILENO) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETSIGMASK) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &all) != 0 ||
        posix_spawnattr_setsigmask(&attr, &none) != 0) {
        r = -ENOMEM;
        goto out;
    }
    /* glibc's posix_spawnp() reports exec failures (ENOENT, EACCES) as its result. */
    r = -posix_spawnp(&pid, p->spec->argv[0], &fa, &attr, p->spec->argv, environ);
    if (r < 0)
        goto out;
    p->exec_pid = pid;
    p->exec_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->exec_pidfd < 0) {
        int status;
        r = -errno;
        (void)kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        p->exec_pid = 0;
    }
out:
    (void)posix_spawnattr_destroy(&attr);
    (void)posix_spawn_file_actions_destroy(&fa);
    return r;
}

static void exec_start(struct probe *p)
{
    char *const *argv = p->spec->argv;
    int outp[2] = { -1, -1 }, devnull = -1, r;
    struct epoll_event ev = { .events = EPOLLIN };

    if (!argv || !argv[0] || !argv[0][0]) {
        probe__finish(p, -EINVAL, "no command to run");
        return;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(outp, O_CLOEXEC) < 0) {
        r = -errno;
        goto fail;
    }
    devnull = fd_move_above_stdio(devnull);
    outp[1] = fd_move_above_stdio(outp[1]);
    if (devnull < 0 || outp[1] < 0) {
        r = -errno;
        goto fail;
    }
    p->exec_out = outp[0];
    outp[0] = -1;
    r = fd_set_nonblock(p->exec_out, true);
    if (r < 0)
        goto fail;
    p->exec_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->exec_epfd < 0) {
        r = -errno;
        goto fail;
    }
    ev.data.fd = p->exec_out;
    if (epoll_ctl(p->exec_epfd, EPOLL_CTL_ADD, p->exec_out, &ev) < 0) {
        r = -errno;
        goto fail;
    }
    r = exec_spawn(p, devnull, outp[1]);
    if (r < 0)
        goto fail;
    ev.data.fd = p->exec_pidfd;
    if (epoll_ctl(p->exec_epfd, EPOLL_CTL_ADD, p->exec_pidfd, &ev) < 0) {
        r = -errno;
        goto fail; /* release kills and reaps */
    }
    (void)fd_close(devnull);
    (void)fd_close(outp[1]); /* the child holds the only write end now */
    probe__wait(p, p->exec_epfd, POLLIN);
    return;
fail:
    (void)fd_close(devnull);
    (void)fd_close(outp[0]);
    (void)fd_close(outp[1]);
    probe__finish(p, r, "run '%s': %s", argv[0], strerror(-r));
}

/* Reads what the pipe holds; keeps draining past the limit so the child never blocks. */
static void exec_drain(struct probe *p)
{
    char chunk[4096];

    while (p->exec_out >= 0) {
        ssize_t k = read(p->exec_out, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) { /* EOF or a read error: either way nothing more will come */
            (void)epoll_ctl(p->exec_epfd, EPOLL_CTL_DEL, p->exec_out, NULL);
            p->exec_out = fd_close(p->exec_out);
            return;
        }
        if (p->detail.len < PROBE_EXEC_OUTPUT) {
            size_t room = PROBE_EXEC_OUTPUT - p->detail.len;
            size_t n = (size_t)k < room ? (size_t)k : room;
            probe__detail_append(p, chunk, n);
            p->exec_dropped += (size_t)k - n;
        } else {
            p->exec_dropped += (size_t)k;
        }
    }
}

/* Kills the whole group while the unreaped leader still pins the pgid (so the id cannot have
 * been reused), then reaps the leader. */
static void exec_kill_and_reap(struct probe *p)
{
    siginfo_t si;

    if (p->exec_pid <= 0)
        return;
    (void)kill(-p->exec_pid, SIGKILL);
    /* The command may have left the group (setsid); the pidfd still names it exactly. */
    (void)syscall(SYS_pidfd_send_signal, p->exec_pidfd, SIGKILL, NULL, 0);
    while (waitid(P_PIDFD, (id_t)p->exec_pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
    p->exec_pid = 0;
}

static void exec_step(struct probe *p, short revents)
{
    siginfo_t si = { 0 };
    int r;

    (void)revents; /* the epoll fd only says "something happened": check both sources */
    exec_drain(p);
    /* WNOWAIT: look at the status but keep the zombie, so the pgid stays ours for the kill of
     * stragglers in exec_kill_and_reap(). */
    r = waitid(P_PIDFD, (id_t)p->exec_pidfd, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);
    if (r < 0 && errno == ECHILD) {
        p->exec_pid = 0; /* someone else reaped it: nothing left to kill */
        probe__finish(p, -ECHILD, "exit status of '%s' was collected by someone else",
                      p->spec->argv[0]);
        return;
    }
    if (r < 0 || si.si_pid == 0)
        return;    /* still running */
    exec_drain(p); /* what it wrote just before exiting */
    if (si.si_code == CLD_EXITED && si.si_status == 0)
        probe__finish(p, 0, "exit status 0");
    else if (si.si_code == CLD_EXITED)
        probe__finish(p, -EIO, "exit status %d", si.si_status);
    else
        probe__finish(p, -EIO, "killed by signal %d", si.si_status);
}

static void exec_release(struct probe *p)
{
    exec_kill_and_reap(p);
    p->exec_pidfd = fd_close(p->exec_pidfd);
    p->exec_out = fd_close(p->exec_out);
    p->exec_epfd = fd_close(p->exec_epfd);
}

const struct probe_ops probe__exec_ops = {
    .start = exec_start,
    .step = exec_step,
    .release = exec_release,
};
