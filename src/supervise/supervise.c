/* SPDX-License-Identifier: MIT */
/* sv_run(): the supervisor's single-threaded event loop.  One poll() waits on the signalfd,
 * the control socket and its clients, every service's output and exec-report pipes and the
 * in-flight health probes, with a timeout from the nearest deadline (restart, stop grace,
 * probe start, probe timeout).  Everything a service does goes through the transition table
 * in sv_fsm.c; this file feeds it events and performs its side effects. */
#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "probe/probe.h"
#include "sv_int.h"

/* ===== Helpers shared with the control protocol ===== */

struct sv_unit *sv__sup_find(struct sv_sup *sup, const char *name)
{
    for (size_t i = 0; i < sup->n_units; i++)
        if (streq(sup->units[i].svc->name, name))
            return &sup->units[i];
    return NULL;
}

static const struct sv_unit *find_const(const struct sv_sup *sup, const char *name)
{
    for (size_t i = 0; i < sup->n_units; i++)
        if (streq(sup->units[i].svc->name, name))
            return &sup->units[i];
    return NULL;
}

static const char *dep_cond_name(enum sv_dep_cond c)
{
    switch (c) {
    case SV_DEP_STARTED:
        return "service_started";
    case SV_DEP_HEALTHY:
        return "service_healthy";
    case SV_DEP_COMPLETED:
        return "service_completed_successfully";
    case _SV_DEP_COND_MAX:
        break;
    }
    return "unknown";
}

static bool dep_met(const struct sv_sup *sup, const struct sv_dep *d)
{
    const struct sv_unit *v = find_const(sup, d->service);

    if (!v)
        return false;
    switch (d->cond) {
    case SV_DEP_STARTED:
        /* A one-shot that already completed did start. */
        return v->state == SV_STATE_RUNNING || v->state == SV_STATE_EXITED;
    case SV_DEP_HEALTHY:
        return v->state == SV_STATE_RUNNING &&
               (!v->svc->health.present || v->health == SV_HEALTH_HEALTHY);
    case SV_DEP_COMPLETED:
        return v->state == SV_STATE_EXITED;
    case _SV_DEP_COND_MAX:
        break;
    }
    return false;
}

static const struct sv_dep *first_unmet_dep(const struct sv_sup *sup, const struct sv_unit *u)
{
    for (size_t i = 0; i < u->svc->n_deps; i++)
        if (!dep_met(sup, &u->svc->deps[i]))
            return &u->svc->deps[i];
    return NULL;
}

const char *sv__sup_waiting_for(const struct sv_sup *sup, const struct sv_unit *u, char *buf,
                                size_t n)
{
    const struct sv_dep *d;

    if (u->state != SV_STATE_WAITING)
        return NULL;
    d = first_unmet_dep(sup, u);
    if (!d)
        return NULL;
    (void)snprintf(buf, n, "%s (%s)", d->service, dep_cond_name(d->cond));
    return buf;
}

void sv__sup_shutdown(struct sv_sup *sup)
{
    if (!sup->shutting_down)
        log_notice("stopping all services");
    sup->shutting_down = true;
}

void sv__sup_request(struct sv_sup *sup, struct sv_unit *u, enum sv_event ev)
{
    sv_fsm_dispatch(u, ev, 0, now_usec(), &sup->ops);
}

/* ===== Side effects for the state machine ===== */

static void unit_drain_output(struct sv_sup *sup, struct sv_unit *u, bool to_eof);
static void unit_log(struct sv_sup *sup, struct sv_unit *u, const void *p, size_t n);

static int sup_spawn(struct sv_unit *u, void *userdata)
{
    struct sv_sup *sup = userdata;
    struct sv_spawn_plan plan;
    char msg[256] = "";
    pid_t pid;
    int out_fd, exec_fd, r;

    r = sv__spawn_plan(u->svc, sup->state_dir, &plan, msg, sizeof msg);
    if (r < 0) {
        log_error("cannot start service '%s': %s", u->svc->name, msg);
        return r;
    }
    /* Output still buffered from the previous run belongs to that run's log lines. */
    unit_drain_output(sup, u, false);
    u->out_fd = fd_close(u->out_fd);
    u->exec_fd = fd_close(u->exec_fd);
    /* Create the log file now, so that `logs` finds it even before the first line. */
    if (u->log_fd < 0)
        unit_log(sup, u, "", 0);
    r = sv__spawn(&plan, &pid, &out_fd, &exec_fd);
    if (r < 0) {
        log_error_errno(r, "cannot start service '%s': fork() failed", u->svc->name);
        sv__spawn_plan_release(&plan);
        return r;
    }
    log_info("starting service '%s': %s (pid %d)", u->svc->name, plan.path, (int)pid);
    sv__spawn_plan_release(&plan);
    u->pid = pid;
    u->pgid = pid; /* the child calls setsid() */
    u->out_fd = out_fd;
    u->exec_fd = exec_fd;
    u->started_realtime_usec = now_realtime_usec();
    return 0;
}

static void sup_kill(struct sv_unit *u, int sig, void *userdata)
{
    (void)userdata;
    /* SIGKILL ends the whole tree, also what left the group (sv_tree.c). */
    if (sig == SIGKILL)
        (void)sv__tree_kill(u, SIGKILL);
    if (u->pgid <= 0)
        return;
    if (kill(-u->pgid, sig) == 0)
        return;
    /* Right after fork() the child may not have called setsid() yet: signal it directly. */
    if (errno == ESRCH && u->pid > 0) {
        if (kill(u->pid, sig) == 0 || errno == ESRCH)
            return;
    }
    if (errno != ESRCH)
        log_warning_errno(-errno, "kill() of service '%s' (group %d) failed", u->svc->name,
                          (int)u->pgid);
}

static void sup_kill_main(struct sv_unit *u, int sig, void *userdata)
{
    (void)userdata;
    if (u->pid > 0 && kill(u->pid, sig) < 0 && errno != ESRCH)
        log_warning_errno(-errno, "kill() of service '%s' (pid %d) failed", u->svc->name,
                          (int)u->pid);
}

/* ===== Service output and exec reports ===== */

static void unit_log(struct sv_sup *sup, struct sv_unit *u, const void *p, size_t n)
{
    char *path = sv_log_path(sup->state_dir, u->svc->name);
    int r;

    r = sv__log_write(path, &u->log_fd, &u->log_size, sup->spec->log_max_bytes, sup->spec->log_keep,
                      p, n);
    if (r < 0 && !u->log_failed) {
        log_warning_errno(r, "cannot write log '%s' of service '%s', dropping its output", path,
                          u->svc->name);
        u->log_failed = true;
    } else if (r >= 0) {
        u->log_failed = false;
    }
    free(path);
}

/* Reads what the pipe holds now (to_eof: until EOF or EAGAIN, bounded) into the log. */
static void unit_drain_output(struct sv_sup *sup, struct sv_unit *u, bool to_eof)
{
    char chunk[65536];

    for (unsigned rounds = 0; u->out_fd >= 0 && rounds < (to_eof ? 64u : 16u); rounds++) {
        ssize_t n = read(u->out_fd, chunk, sizeof chunk);

        if (n > 0) {
            unit_log(sup, u, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN)
            u->out_fd = fd_close(u->out_fd);
        return;
    }
}

static void unit_read_output(struct sv_sup *sup, struct sv_unit *u)
{
    char chunk[65536];
    ssize_t n = read(u->out_fd, chunk, sizeof chunk);

    if (n > 0)
        unit_log(sup, u, chunk, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        u->out_fd = fd_close(u->out_fd);
}

static const char *exec_stage_name(int stage)
{
    switch (stage) {
    case SV_EXEC_STAGE_CHDIR:
        return "chdir";
    case SV_EXEC_STAGE_CREDS:
        return "switching user";
    case SV_EXEC_STAGE_EXEC:
        return "exec";
    case SV_EXEC_STAGE_NETNS:
        return "entering its network namespace";
    default:
        return "setup";
    }
}

/* The exec-report pipe: EOF means exec succeeded, a report means the child failed before. */
static void unit_read_exec(struct sv_sup *sup, struct sv_unit *u, uint64_t now)
{
    struct sv_exec_report rep;
    ssize_t n = read(u->exec_fd, &rep, sizeof rep);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    u->exec_fd = fd_close(u->exec_fd);
    if (n == (ssize_t)sizeof rep) {
        u->exec_errno = rep.err;
        if (rep.stage == SV_EXEC_STAGE_EXEC)
            log_error("service '%s': exec '%s' failed: %s", u->svc->name, u->svc->argv[0],
                      strerror(rep.err));
        else if (rep.stage == SV_EXEC_STAGE_CHDIR)
            log_error("service '%s': chdir '%s' failed: %s", u->svc->name,
                      u->svc->working_dir ? u->svc->working_dir : sup->state_dir,
                      strerror(rep.err));
        else
            log_error("service '%s': %s failed: %s", u->svc->name, exec_stage_name(rep.stage),
                      strerror(rep.err));
        return;
    }
    if (u->state == SV_STATE_STARTING)
        sv_fsm_dispatch(u, SV_EVENT_SPAWNED, 0, now, &sup->ops);
}

/* ===== Reaping ===== */

static void child_exited(struct sv_sup *sup, pid_t pid, int status, uint64_t now)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->pid != pid)
            continue;
        /* The child is gone, so its exec report (or EOF) is complete: read it first so that
         * SPAWNED precedes EXITED and a failed exec is known when the exit is judged. */
        if (u->exec_fd >= 0)
            unit_read_exec(sup, u, now);
        sv_fsm_dispatch(u, SV_EVENT_EXITED, status, now, &sup->ops);
        sv__fence_run_ended(sup, u, now);
        return;
    }
    sv__fence_orphan_exited(sup, pid, status, now);
}

/* Exec probes fork children that the probe library reaps itself; a waitpid(-1) could take one
 * first.  The other probe types fork nothing. */
static bool exec_probes_in_flight(const struct sv_sup *sup)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        const struct sv_unit *u = &sup->units[i];

        if ((u->probe && u->svc->health.probe.type == PROBE_EXEC) ||
            (u->live_probe && u->svc->liveness.probe.type == PROBE_EXEC))
            return true;
    }
    return false;
}

/* Reaps by process group first; waitpid(-1) only while no exec probe is in flight.  Orphans
 * that left their service's group (Patroni's postmaster, in a session of its own) are
 * collected by that pass: skipping it whenever any probe was in flight delayed them by
 * seconds on a stack of 28 services (one probe or another is nearly always in flight), and
 * with them the release of a stopped leader's key. */
static void reap(struct sv_sup *sup, uint64_t now)
{
    int status;
    pid_t pid;

    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->pgid <= 0)
            continue;
        while ((pid = waitpid(-u->pgid, &status, WNOHANG)) > 0)
            child_exited(sup, pid, status, now);
        /* Forget an empty group, so that a later process reusing the number (an exec probe's
         * group, say) is never reaped here. */
        if (pid < 0 && errno == ECHILD && u->pid == 0)
            u->pgid = 0;
    }
    /* Children that have not called setsid() yet are still in our group. */
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->pid > 0 && waitpid(u->pid, &status, WNOHANG) == u->pid)
            child_exited(sup, u->pid, status, now);
    }
    if (exec_probes_in_flight(sup))
        return;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        child_exited(sup, pid, status, now);
}

/* ===== Health probes ===== */

static void health_finish(struct sv_sup *sup, struct sv_unit *u, uint64_t now)
{
    int r = probe_result(u->probe);
    const char *msg = probe_message(u->probe);
    uint64_t next = u->probe_started_usec + u->svc->health.interval_usec;

    (void)snprintf(u->health_msg, sizeof u->health_msg, "%s",
                   msg && msg[0] ? msg : (r == 0 ? "ok" : "failed"));
    u->probe = probe_free(u->probe);
    u->health_next_usec = next > now ? next : now + 1;
    sv_fsm_dispatch(u, r == 0 ? SV_EVENT_HEALTH_OK : SV_EVENT_HEALTH_FAIL, 0, now, &sup->ops);
}

/* Starts due probes and cancels those of services that stopped running. */
static void health_tick(struct sv_sup *sup, uint64_t now)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->state != SV_STATE_RUNNING || !u->svc->health.present || sup->shutting_down) {
            u->probe = probe_free(u->probe);
            u->health_next_usec = 0;
            continue;
        }
        if (u->probe)
            continue;
        if (u->health_next_usec == 0)
            u->health_next_usec = now; /* first probe as soon as the service runs */
        if (now < u->health_next_usec)
            continue;
        u->probe_started_usec = now;
        u->probe = probe_start(&u->svc->health.probe, u->svc->health.timeout_usec);
        if (!u->probe) {
            log_warning("service '%s': cannot start a health probe (out of memory)", u->svc->name);
            u->health_next_usec = now + u->svc->health.interval_usec;
            continue;
        }
        if (probe_done(u->probe))
            health_finish(sup, u, now);
    }
}

/* ===== Dependencies and shutdown order ===== */

static bool has_live_dependents(const struct sv_sup *sup, const struct sv_unit *u)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        const struct sv_unit *v = &sup->units[i];

        if (v == u || v->pid <= 0)
            continue;
        for (size_t k = 0; k < v->svc->n_deps; k++)
            if (streq(v->svc->deps[k].service, u->svc->name))
                return true;
    }
    return false;
}

/* Feeds the dependency-driven events until nothing changes: DEPS_MET to waiting services, or
 * during shutdown STOP_REQUEST to each service none of whose dependents still runs. */
static void settle(struct sv_sup *sup, uint64_t now)
{
    bool changed = true;

    while (changed) {
        changed = false;
        for (size_t i = 0; i < sup->n_units; i++) {
            struct sv_unit *u = &sup->units[i];

            if (sup->shutting_down) {
                if (u->state == SV_STATE_WAITING || u->state == SV_STATE_BACKOFF ||
                    ((u->state == SV_STATE_STARTING || u->state == SV_STATE_RUNNING) &&
                     !has_live_dependents(sup, u))) {
                    sv_fsm_dispatch(u, SV_EVENT_STOP_REQUEST, 0, now, &sup->ops);
                    changed = true;
                }
            } else if (u->state == SV_STATE_WAITING && !first_unmet_dep(sup, u)) {
                sv_fsm_dispatch(u, SV_EVENT_DEPS_MET, 0, now, &sup->ops);
                changed = true;
            }
        }
    }
}

static bool all_down(const struct sv_sup *sup)
{
    for (size_t i = 0; i < sup->n_units; i++)
        if (sup->units[i].pid > 0)
            return false;
    return true;
}

static void fire_timers(struct sv_sup *sup, uint64_t now)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->timer_usec > 0 && u->timer_usec <= now) {
            enum sv_event ev = u->timer_event;

            u->timer_usec = 0;
            sv_fsm_dispatch(u, ev, 0, now, &sup->ops);
        }
    }
}

/* ===== Signals ===== */

static void handle_signals(struct sv_sup *sup, int sig_fd)
{
    struct signalfd_siginfo si;

    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            break; /* reap() runs every iteration */
        case SIGTERM:
        case SIGINT:
            if (!sup->shutting_down) {
                log_notice("received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                sv__sup_shutdown(sup);
                break;
            }
            log_warning("received %s again, killing every service",
                        si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            for (size_t i = 0; i < sup->n_units; i++)
                if (sup->units[i].pid > 0)
                    sup_kill(&sup->units[i], SIGKILL, sup);
            break;
        case SIGHUP:
            log_notice("received SIGHUP: reloading is not supported, ignoring");
            break;
        default:
            break;
        }
    }
}

/* ===== The loop ===== */

enum ref_kind {
    REF_SIGNAL,
    REF_LISTEN,
    REF_CLIENT,
    REF_OUT,
    REF_EXEC,
    REF_PROBE,
    REF_LIVE,   /* liveness probe (sv_fence.c) */
    REF_LOCK,   /* lock release (sv_fence.c) */
    REF_ANSWER, /* the liveness answer of a lock check (sv_fence.c) */
};

struct ref {
    enum ref_kind kind;
    size_t idx;
};

struct pollset {
    struct pollfd *fds;
    struct ref *refs;
    size_t n, cap;
};

static void pollset_add(struct pollset *ps, int fd, short events, enum ref_kind kind, size_t idx)
{
    ASSERT(ps->n < ps->cap);
    ps->fds[ps->n] = (struct pollfd){ .fd = fd, .events = events };
    ps->refs[ps->n] = (struct ref){ .kind = kind, .idx = idx };
    ps->n++;
}

static void pollset_add_fence(void *ctx, int fd, short events, size_t idx, int which)
{
    static const enum ref_kind kinds[] = { REF_LIVE, REF_LOCK, REF_ANSWER };

    pollset_add(ctx, fd, events, kinds[which], idx);
}

static void deadline_min(uint64_t *d, uint64_t t)
{
    if (t > 0 && (*d == 0 || t < *d))
        *d = t;
}

/* Fills the poll set and returns the poll() timeout in ms for the nearest deadline. */
static int build_pollset(struct sv_sup *sup, int sig_fd, struct pollset *ps, uint64_t now)
{
    uint64_t deadline = sup->fence_deadline_usec;

    deadline_min(&deadline, sup->job_deadline_usec);
    ps->n = 0;
    pollset_add(ps, sig_fd, POLLIN, REF_SIGNAL, 0);
    if (sup->listen_fd >= 0)
        pollset_add(ps, sup->listen_fd, POLLIN, REF_LISTEN, 0);
    for (size_t i = 0; i < sup->n_clients; i++)
        pollset_add(ps, sup->clients[i]->fd, sv__client_events(sup->clients[i]), REF_CLIENT, i);
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->out_fd >= 0)
            pollset_add(ps, u->out_fd, POLLIN, REF_OUT, i);
        if (u->exec_fd >= 0)
            pollset_add(ps, u->exec_fd, POLLIN, REF_EXEC, i);
        deadline_min(&deadline, u->timer_usec);
        if (u->probe) {
            int fd = probe_fd(u->probe);

            if (fd >= 0)
                pollset_add(ps, fd, probe_events(u->probe), REF_PROBE, i);
            deadline_min(&deadline, probe_deadline(u->probe));
        } else if (u->state == SV_STATE_RUNNING && u->svc->health.present && !sup->shutting_down) {
            deadline_min(&deadline, u->health_next_usec);
        }
    }
    sv__fence_fds(sup, pollset_add_fence, ps);
    if (deadline == 0)
        return -1;
    if (deadline <= now)
        return 0;
    return (deadline - now) / 1000 >= INT_MAX ? INT_MAX : (int)((deadline - now + 999) / 1000);
}

static void dispatch_pollset(struct sv_sup *sup, struct pollset *ps, uint64_t now, int sig_fd)
{
    for (size_t k = 0; k < ps->n; k++) {
        short rev = ps->fds[k].revents;
        struct ref ref = ps->refs[k];
        struct sv_unit *u = ref.kind >= REF_OUT ? &sup->units[ref.idx] : NULL;

        if (rev == 0)
            continue;
        switch (ref.kind) {
        case REF_SIGNAL:
            handle_signals(sup, sig_fd);
            break;
        case REF_LISTEN:
            sv__control_accept(sup);
            break;
        case REF_CLIENT:
            /* Clients only go away in sv__control_prune(), so indices stay valid here. */
            sv__client_io(sup, sup->clients[ref.idx], rev);
            break;
        case REF_OUT:
            if (u->out_fd == ps->fds[k].fd)
                unit_read_output(sup, u);
            break;
        case REF_EXEC:
            if (u->exec_fd == ps->fds[k].fd)
                unit_read_exec(sup, u, now);
            break;
        case REF_PROBE:
            if (u->probe && probe_fd(u->probe) == ps->fds[k].fd && probe_step(u->probe, rev))
                health_finish(sup, u, now);
            break;
        case REF_LIVE:
        case REF_LOCK:
        case REF_ANSWER:
            sv__fence_step(sup, ref.idx, (int)(ref.kind - REF_LIVE), ps->fds[k].fd, rev, now);
            break;
        }
    }
    /* Probes whose deadline passed without their fd becoming ready. */
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->probe && now >= probe_deadline(u->probe) && probe_step(u->probe, 0))
            health_finish(sup, u, now);
    }
}

/* Sends sig to every process whose parent is us but which is in no service's group: what a
 * service left behind in a session of its own and we inherited as subreaper (Patroni runs the
 * postmaster with setsid(), so a Patroni killed by SIGKILL leaves PostgreSQL to us).
 * Returns how many were signalled. */
static unsigned signal_orphans(const struct sv_sup *sup, int sig)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    unsigned n = 0;
    int64_t self = (int64_t)getpid();

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char path[64], buf[512], ppid_str[24];
        const char *close_paren, *tok;
        int64_t pid, ppid;
        size_t tl;
        ssize_t len;
        int fd;

        if (parse_i64(de->d_name, &pid) < 0 || pid <= 1)
            continue;
        (void)snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        len = read(fd, buf, sizeof buf - 1);
        fd_close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
        close_paren = strrchr(buf, ')');
        if (!close_paren)
            continue;
        tok = close_paren + 1 + strspn(close_paren + 1, " "); /* state */
        tok += strcspn(tok, " ");
        tok += strspn(tok, " "); /* ppid */
        tl = strcspn(tok, " ");
        if (tl == 0 || tl >= sizeof ppid_str)
            continue;
        memcpy(ppid_str, tok, tl);
        ppid_str[tl] = '\0';
        if (parse_i64(ppid_str, &ppid) < 0 || ppid != self)
            continue;
        {
            pid_t pgid = getpgid((pid_t)pid);
            bool in_group = false;
            for (size_t i = 0; i < sup->n_units; i++)
                in_group = in_group || (sup->units[i].pgid > 0 && sup->units[i].pgid == pgid);
            if (in_group)
                continue;
        }
        if (kill((pid_t)pid, sig) == 0) {
            log_warning("process %" PRId64 " outlived its service, sending %s", pid,
                        sig == SIGKILL ? "SIGKILL" : "SIGTERM");
            n++;
        }
    }
    (void)closedir(d);
    return n;
}

/* What the services left anywhere (their marked processes: sv_tree.c). */
static void kill_trees(struct sv_sup *sup, int sig)
{
    for (size_t i = 0; i < sup->n_units; i++)
        (void)sv__tree_kill(&sup->units[i], sig);
}

/* After the last main process is gone, orphans of the services may still be dying: SIGKILL
 * every group, SIGTERM then (after a second) SIGKILL what services left in sessions of their
 * own, and reap every child (bounded), so sv_run() never leaves a process or a zombie behind.
 * Probes are gone by now, so waitpid(-1) steals nothing. */
static void final_reap(struct sv_sup *sup, int sig_fd)
{
    uint64_t start = now_usec(), deadline = start + 5 * USEC_PER_SEC;
    struct signalfd_siginfo si;
    bool termed = false, killed = false;
    int status;

    for (;;) {
        struct pollfd p = { .fd = sig_fd, .events = POLLIN };
        uint64_t now;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            log_debug("reaped process %d at shutdown", (int)pid);
        if (pid < 0)
            return; /* ECHILD: nothing left */
        for (size_t i = 0; i < sup->n_units; i++)
            if (sup->units[i].pgid > 0)
                (void)kill(-sup->units[i].pgid, SIGKILL);
        now = now_usec();
        if (!termed) {
            (void)signal_orphans(sup, SIGTERM);
            kill_trees(sup, SIGTERM);
            termed = true;
        } else if (!killed && now - start >= 2 * USEC_PER_SEC) {
            (void)signal_orphans(sup, SIGKILL);
            kill_trees(sup, SIGKILL);
            killed = true;
        }
        if (now >= deadline) {
            log_warning("some processes did not exit after SIGKILL, leaving them");
            return;
        }
        /* Wake for the next SIGCHLD, or in time for the SIGKILL step. */
        (void)poll(&p, 1, killed ? (int)((deadline - now + 999) / 1000) : 250);
        while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
    }
}

/* Tells the embedder (sv_options.on_change) of every service whose state, pid or restart count
 * moved since it was last told. */
static void tell_changes(struct sv_sup *sup)
{
    if (!sup->opts->on_change)
        return;
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->told && u->told_state == u->state && u->told_pid == u->pid &&
            u->told_restarts == u->restarts)
            continue;
        u->told = true;
        u->told_state = u->state;
        u->told_pid = u->pid;
        u->told_restarts = u->restarts;
        sup->opts->on_change(&(struct sv_service_change){ .name = u->svc->name,
                                                          .state = sv_state_to_string(u->state),
                                                          .pid = (int)u->pid,
                                                          .restarts = u->restarts },
                             sup->opts->userdata);
    }
}

static int run_loop(struct sv_sup *sup, int sig_fd)
{
    struct pollset ps = { 0 };
    int r = 0;

    ps.cap = 2 + SV_CONTROL_MAX_CLIENTS + 6 * sup->n_units;
    ps.fds = xcalloc(ps.cap, sizeof *ps.fds);
    ps.refs = xcalloc(ps.cap, sizeof *ps.refs);
    for (;;) {
        uint64_t now = now_usec();
        int timeout, n;

        settle(sup, now);
        health_tick(sup, now);
        sup->fence_deadline_usec = sv__fence_tick(sup, now);
        sup->job_deadline_usec = sv__job_tick(sup, now);
        tell_changes(sup);
        if (sup->shutting_down && all_down(sup))
            break;
        timeout = build_pollset(sup, sig_fd, &ps, now);
        n = poll(ps.fds, ps.n, timeout);
        if (n < 0 && errno != EINTR) {
            r = log_error_errno(-errno, "poll() failed");
            break;
        }
        now = now_usec();
        if (n <= 0) /* timeout or EINTR: no revents to trust */
            for (size_t k = 0; k < ps.n; k++)
                ps.fds[k].revents = 0;
        dispatch_pollset(sup, &ps, now, sig_fd);
        sv__control_prune(sup, false);
        reap(sup, now);
        fire_timers(sup, now);
    }
    free(ps.fds);
    free(ps.refs);
    return r;
}

static bool is_held(const struct sv_options *opts, const char *name)
{
    for (const char *const *h = opts->held; h && *h; h++)
        if (streq(*h, name))
            return true;
    return false;
}

int sv_run(const struct sv_spec *spec, const struct sv_options *opts)
{
    struct sv_sup sup = { .listen_fd = -1 };
    char *lock_path = NULL, *pid_path = NULL, *sock_path = NULL, *logs_dir = NULL, *pid_text;
    int lock_fd = -1, sig_fd = -1, ready_fd = opts ? opts->ready_fd : -1, old_subreaper = 0;
    bool mask_set = false, subreaper_set = false, pid_written = false;
    sigset_t mask, old_mask;
    int r;

    if (!spec || !opts || !opts->state_dir || opts->state_dir[0] != '/' || spec->n_services == 0) {
        r = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < spec->n_services; i++) {
        const struct sv_schedule *sc = &spec->services[i].schedule;

        /* A job is a one-shot: the schedule, not a restart policy, runs it again. */
        if (sc->present && (sc->every_usec == 0 || spec->services[i].restart != SV_RESTART_NO)) {
            r = log_error_errno(-EINVAL, "service '%s': a schedule needs a period and restart 'no'",
                                spec->services[i].name);
            goto out;
        }
    }
    sup.spec = spec;
    sup.opts = opts;
    sup.state_dir = opts->state_dir;
    sup.pid = getpid();
    sup.started_realtime_usec = now_realtime_usec();
    lock_path = xasprintf("%s/supervisor.lock", opts->state_dir);
    pid_path = xasprintf("%s/supervisor.pid", opts->state_dir);
    sock_path = xasprintf("%s/control.sock", opts->state_dir);
    logs_dir = xasprintf("%s/logs", opts->state_dir);

    r = mkdir_p(opts->state_dir, 0755);
    if (r < 0) {
        log_error_errno(r, "cannot create state directory '%s'", opts->state_dir);
        goto out;
    }
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (lock_fd < 0) {
        r = log_error_errno(-errno, "open() '%s' failed", lock_path);
        goto out;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        log_error_errno(r, "another supervisor holds '%s'", lock_path);
        goto out;
    }
    r = mkdir_p(logs_dir, 0750);
    if (r < 0) {
        log_error_errno(r, "cannot create '%s'", logs_dir);
        goto out;
    }

    (void)sigemptyset(&mask);
    (void)sigaddset(&mask, SIGCHLD);
    (void)sigaddset(&mask, SIGTERM);
    (void)sigaddset(&mask, SIGINT);
    (void)sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, &old_mask) < 0) {
        r = log_error_errno(-errno, "sigprocmask() failed");
        goto out;
    }
    mask_set = true;
    sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) {
        r = log_error_errno(-errno, "signalfd() failed");
        goto out;
    }
    /* Orphaned grandchildren come back to us, so their exit is reaped and their group killed. */
    if (prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        r = log_error_errno(-errno, "prctl(PR_SET_CHILD_SUBREAPER) failed");
        goto out;
    }
    subreaper_set = true;
    r = sv__control_listen(sock_path, &sup.listen_fd);
    if (r < 0) {
        log_error_errno(r, "cannot listen on '%s'", sock_path);
        goto out;
    }
    pid_text = xasprintf("%d\n", (int)sup.pid);
    r = file_write_atomic(pid_path, pid_text, strlen(pid_text), 0644);
    free(pid_text);
    if (r < 0) {
        log_error_errno(r, "cannot write '%s'", pid_path);
        goto out;
    }
    pid_written = true;
    if (ready_fd >= 0) {
        if (fd_write_all(ready_fd, "\n", 1) < 0)
            log_warning("cannot write to the readiness fd, ignoring");
        ready_fd = fd_close(ready_fd);
    }

    sup.ops = (struct sv_ops){ .spawn = sup_spawn,
                               .kill = sup_kill,
                               .kill_main = sup_kill_main,
                               .busy = sv__fence_busy,
                               .userdata = &sup };
    sup.n_units = spec->n_services;
    sup.units = xcalloc(sup.n_units, sizeof *sup.units);
    for (size_t i = 0; i < sup.n_units; i++) {
        sv_unit_init(&sup.units[i], &spec->services[i], i);
        sv__fence_init(&sup.units[i]);
        if (spec->services[i].schedule.present)
            sv__job_init(&sup, &sup.units[i], is_held(opts, spec->services[i].name),
                         now_realtime_usec());
    }
    sv__job_start_all(&sup);
    log_notice("supervising stack '%s' (%zu services) in '%s', pid %d", spec->name, sup.n_units,
               opts->state_dir, (int)sup.pid);
    /* Jobs wait for their due times (sv_job.c). */
    for (size_t i = 0; i < sup.n_units; i++)
        if (!is_held(opts, sup.units[i].svc->name) && !sup.units[i].svc->schedule.present)
            sv_fsm_dispatch(&sup.units[i], SV_EVENT_START, 0, now_usec(), &sup.ops);

    r = run_loop(&sup, sig_fd);
    if (r < 0) {
        /* The loop broke down: do not leave services behind without a supervisor. */
        for (size_t i = 0; i < sup.n_units; i++)
            if (sup.units[i].pid > 0)
                sup_kill(&sup.units[i], SIGKILL, &sup);
    } else {
        final_reap(&sup, sig_fd);
        tell_changes(&sup);
        log_notice("all services stopped");
    }

out:
    for (size_t i = 0; i < sup.n_units; i++) {
        struct sv_unit *u = &sup.units[i];

        unit_drain_output(&sup, u, true);
        u->probe = probe_free(u->probe);
        sv__fence_release(u);
        fd_close(u->out_fd);
        fd_close(u->exec_fd);
        fd_close(u->log_fd);
    }
    free(sup.units);
    sv__control_prune(&sup, true);
    if (sup.listen_fd >= 0) {
        (void)close(sup.listen_fd);
        (void)unlink(sock_path);
    }
    if (pid_written)
        (void)unlink(pid_path);
    if (subreaper_set)
        (void)prctl(PR_SET_CHILD_SUBREAPER, old_subreaper);
    fd_close(sig_fd);
    if (mask_set)
        (void)sigprocmask(SIG_SETMASK, &old_mask, NULL);
    fd_close(lock_fd);
    fd_close(ready_fd);
    free(lock_path);
    free(pid_path);
    free(sock_path);
    free(logs_dir);
    return r;
}
