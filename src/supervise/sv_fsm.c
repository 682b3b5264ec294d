/* SPDX-License-Identifier: MIT */
/* The per-service state machine: one handler per (state, event) pair in an explicit table,
 * in the manner of s6-supervise.  Handlers only touch the unit and call struct sv_ops for
 * process side effects, so the table is testable without forking. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/log.h"
#include "core/str.h"
#include "sv_int.h"

static const char *const state_names[_SV_STATE_MAX] = {
    [SV_STATE_STOPPED] = "stopped",   [SV_STATE_WAITING] = "waiting",
    [SV_STATE_STARTING] = "starting", [SV_STATE_RUNNING] = "running",
    [SV_STATE_STOPPING] = "stopping", [SV_STATE_BACKOFF] = "backoff",
    [SV_STATE_EXITED] = "exited",     [SV_STATE_FAILED] = "failed",
};

static const char *const event_names[_SV_EVENT_MAX] = {
    [SV_EVENT_START] = "start",
    [SV_EVENT_DEPS_MET] = "deps-met",
    [SV_EVENT_SPAWNED] = "spawned",
    [SV_EVENT_EXITED] = "exited",
    [SV_EVENT_STOP_REQUEST] = "stop-request",
    [SV_EVENT_RESTART_REQUEST] = "restart-request",
    [SV_EVENT_STOP_TIMEOUT] = "stop-timeout",
    [SV_EVENT_BACKOFF_DONE] = "backoff-done",
    [SV_EVENT_HEALTH_OK] = "health-ok",
    [SV_EVENT_HEALTH_FAIL] = "health-fail",
};

static const char *const health_names[_SV_HEALTH_MAX] = {
    [SV_HEALTH_NONE] = "none",
    [SV_HEALTH_STARTING] = "starting",
    [SV_HEALTH_HEALTHY] = "healthy",
    [SV_HEALTH_UNHEALTHY] = "unhealthy",
};

const char *sv_state_to_string(enum sv_state s)
{
    return (unsigned)s < _SV_STATE_MAX ? state_names[s] : "invalid";
}

const char *sv_event_to_string(enum sv_event e)
{
    return (unsigned)e < _SV_EVENT_MAX ? event_names[e] : "invalid";
}

const char *sv_health_to_string(enum sv_health h)
{
    return (unsigned)h < _SV_HEALTH_MAX ? health_names[h] : "invalid";
}

const char *sv_format_exit(char *buf, size_t n, int status)
{
    if (WIFEXITED(status))
        (void)snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        (void)snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
    else
        (void)snprintf(buf, n, "wait status 0x%x", (unsigned)status);
    return buf;
}

static uint64_t backoff_initial(const struct sv_service *svc)
{
    return svc->backoff_initial_usec > 0 ? svc->backoff_initial_usec : SV_MIN_RESTART_USEC;
}

/* The least time between two starts of the service (sv_int.h). */
static uint64_t start_spacing(const struct sv_service *svc)
{
    uint64_t b = backoff_initial(svc);

    return b < SV_MIN_RESTART_USEC ? b : SV_MIN_RESTART_USEC;
}

void sv_unit_init(struct sv_unit *u, const struct sv_service *svc, size_t index)
{
    *u = (struct sv_unit){
        .svc = svc,
        .index = index,
        .state = SV_STATE_STOPPED,
        .backoff_usec = backoff_initial(svc),
        .health = SV_HEALTH_NONE,
        .out_fd = -1,
        .exec_fd = -1,
        .log_fd = -1,
    };
}

static void set_state(struct sv_unit *u, enum sv_state s)
{
    if (u->state != s)
        log_debug("service '%s': %s -> %s", u->svc->name, state_names[u->state], state_names[s]);
    u->state = s;
}

static void set_timer(struct sv_unit *u, uint64_t deadline, enum sv_event ev)
{
    u->timer_usec = deadline;
    u->timer_event = ev;
}

static void clear_timer(struct sv_unit *u)
{
    u->timer_usec = 0;
}

static void reset_backoff(struct sv_unit *u)
{
    u->failures = 0;
    u->backoff_usec = backoff_initial(u->svc);
}

static void fail_run(struct sv_unit *u, uint64_t now, const struct sv_ops *ops, bool failed);

/* Spawns now, or schedules the spawn for the end of the minimum gap between starts. */
static void do_start(struct sv_unit *u, uint64_t now, const struct sv_ops *ops)
{
    int r;

    clear_timer(u);
    /* The last run's processes are still dying, or its lock is being released. */
    if (ops->busy && ops->busy(u, ops->userdata)) {
        set_state(u, SV_STATE_BACKOFF);
        set_timer(u, now + SV_BUSY_RECHECK_USEC, SV_EVENT_BACKOFF_DONE);
        return;
    }
    if (u->started_usec > 0 && now < u->started_usec + start_spacing(u->svc)) {
        set_state(u, SV_STATE_BACKOFF);
        set_timer(u, u->started_usec + start_spacing(u->svc), SV_EVENT_BACKOFF_DONE);
        return;
    }
    u->exec_errno = 0;
    u->restart_pending = false;
    u->health = SV_HEALTH_NONE;
    u->health_fails = 0;
    u->health_msg[0] = '\0';
    r = ops->spawn(u, ops->userdata);
    if (r < 0) {
        /* The spawner logged why; a start that cannot even fork counts as a failed run. */
        u->pid = 0;
        u->started_usec = now;
        fail_run(u, now, ops, true);
        return;
    }
    if (u->spawns > 0)
        u->restarts++;
    u->spawns++;
    u->started_usec = now;
    if (u->svc->health.present)
        u->health = SV_HEALTH_STARTING;
    set_state(u, SV_STATE_STARTING);
}

/* After a run ended (or could not begin): restart by policy, back off, or give up. */
static void fail_run(struct sv_unit *u, uint64_t now, const struct sv_ops *ops, bool failed)
{
    const struct sv_service *svc = u->svc;
    char what[64];
    bool restart;
    uint64_t deadline, next;

    (void)ops;
    restart =
            svc->restart == SV_RESTART_ALWAYS || (svc->restart == SV_RESTART_ON_FAILURE && failed);
    if (!restart) {
        if (failed)
            log_warning("service '%s' failed and is not restarted (restart policy)", svc->name);
        else
            log_info("service '%s' completed", svc->name);
        set_state(u, failed ? SV_STATE_FAILED : SV_STATE_EXITED);
        return;
    }
    deadline = now;
    if (failed) {
        u->failures++;
        if (svc->max_restarts > 0 && u->failures >= svc->max_restarts) {
            log_error("service '%s' failed %u times in a row, giving up", svc->name, u->failures);
            set_state(u, SV_STATE_FAILED);
            return;
        }
        deadline = now + u->backoff_usec;
        next = u->backoff_usec * 2;
        if (next > svc->backoff_max_usec)
            next = svc->backoff_max_usec;
        if (next > u->backoff_usec)
            u->backoff_usec = next;
    }
    if (deadline < u->started_usec + start_spacing(svc))
        deadline = u->started_usec + start_spacing(svc);
    log_info("service '%s' restarts in %s", svc->name,
             format_duration(what, sizeof what, deadline - now));
    set_state(u, SV_STATE_BACKOFF);
    set_timer(u, deadline, SV_EVENT_BACKOFF_DONE);
}

/* The main process is gone: record how, and kill what it left in its process group. */
static bool note_exit(struct sv_unit *u, int status, const struct sv_ops *ops)
{
    char what[64];

    u->pid = 0;
    u->has_exited = true;
    u->exit_status = status;
    u->health = SV_HEALTH_NONE;
    u->health_fails = 0;
    clear_timer(u);
    ops->kill(u, SIGKILL, ops->userdata);
    log_full_errno(status == 0 ? LOG_LVL_INFO : LOG_LVL_WARNING, 0, "service '%s' exited (%s)",
                   u->svc->name, sv_format_exit(what, sizeof what, status));
    return status != 0 || u->exec_errno != 0;
}

static void bug_transition(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    u->bugs++;
}

static void ignore(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)u;
    (void)arg;
    (void)now;
    (void)ops;
}

/* STOPPED/EXITED/FAILED + START/RESTART: a user start forgets earlier failures. */
static void on_start_idle(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    reset_backoff(u);
    set_state(u, SV_STATE_WAITING);
}

static void on_deps_met(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    do_start(u, now, ops);
}

static void on_stop_idle(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    clear_timer(u);
    u->restart_pending = false;
    set_state(u, SV_STATE_STOPPED);
}

static void on_spawned(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    log_info("service '%s' running, pid %d", u->svc->name, (int)u->pid);
    set_state(u, SV_STATE_RUNNING);
}

static void on_exited_running(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    /* A run the supervisor fenced (sv_fence.c) was killed on purpose: restart it without
     * growing the backoff, as after a clean exit. */
    bool failed = note_exit(u, arg, ops) && !u->fenced;

    /* A run that lasted long enough proves the service healthy again: start backoff afresh. */
    if (now >= u->started_usec + u->svc->backoff_reset_usec)
        reset_backoff(u);
    fail_run(u, now, ops, failed);
}

/* The stop signal, grace and target of a stop: the service's, or those of u->stop_req. */
static void stop_params(const struct sv_unit *u, int *ret_sig, uint64_t *ret_grace,
                        bool *ret_main_only)
{
    const struct sv_stop_request *q = &u->stop_req;

    *ret_sig = q->set && q->sig > 0      ? q->sig
               : u->svc->stop_signal > 0 ? u->svc->stop_signal
                                         : SIGTERM;
    *ret_grace = q->set && q->grace_usec > 0 ? q->grace_usec : u->svc->stop_grace_usec;
    *ret_main_only = q->set && q->main_only;
}

static void signal_stop(struct sv_unit *u, int sig, bool main_only, const struct sv_ops *ops)
{
    log_info("stopping service '%s' (pid %d, signal %d%s)", u->svc->name, (int)u->pid, sig,
             main_only ? ", main process only" : "");
    if (main_only && ops->kill_main)
        ops->kill_main(u, sig, ops->userdata);
    else
        ops->kill(u, sig, ops->userdata);
}

static void send_stop(struct sv_unit *u, uint64_t now, const struct sv_ops *ops)
{
    uint64_t grace;
    bool main_only;
    int sig;

    stop_params(u, &sig, &grace, &main_only);
    signal_stop(u, sig, main_only, ops);
    u->stop_grace_usec = grace;
    set_state(u, SV_STATE_STOPPING);
    set_timer(u, now + grace, SV_EVENT_STOP_TIMEOUT);
}

static void on_stop_live(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    u->restart_pending = false;
    send_stop(u, now, ops);
}

static void on_restart_live(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    send_stop(u, now, ops);
    u->restart_pending = true;
}

static void on_restart_stopping(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    u->restart_pending = true;
}

static void on_stop_stopping(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    uint64_t grace;
    bool main_only;
    int sig;

    (void)arg;
    u->restart_pending = false;
    if (!u->stop_req.set)
        return;
    /* An explicit stop while one is in progress escalates it (a gentle drain overtaken by a
     * hard failure): its signal is sent now and its grace applies when it ends sooner. */
    stop_params(u, &sig, &grace, &main_only);
    signal_stop(u, sig, main_only, ops);
    if (now + grace < u->timer_usec) {
        u->stop_grace_usec = grace;
        set_timer(u, now + grace, SV_EVENT_STOP_TIMEOUT);
    }
}

static void on_stop_timeout(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    char what[64];

    (void)arg;
    (void)now;
    log_warning("service '%s' did not stop within %s, sending SIGKILL to its process group",
                u->svc->name, format_duration(what, sizeof what, u->stop_grace_usec));
    clear_timer(u);
    ops->kill(u, SIGKILL, ops->userdata);
}

static void on_exited_stopping(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)note_exit(u, arg, ops);
    if (u->restart_pending) {
        /* A user restart: the stop was ours, so earlier failures do not count. */
        reset_backoff(u);
        do_start(u, now, ops);
        return;
    }
    set_state(u, SV_STATE_STOPPED);
}

static void on_restart_backoff(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    reset_backoff(u);
    do_start(u, now, ops);
}

static void on_backoff_done(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    do_start(u, now, ops);
}

static void on_health_ok(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    (void)arg;
    (void)now;
    (void)ops;
    if (u->health != SV_HEALTH_HEALTHY)
        log_info("service '%s' is healthy", u->svc->name);
    u->health = SV_HEALTH_HEALTHY;
    u->health_fails = 0;
}

static void on_health_fail(struct sv_unit *u, int arg, uint64_t now, const struct sv_ops *ops)
{
    unsigned retries = u->svc->health.retries > 0 ? u->svc->health.retries : 1;

    (void)arg;
    (void)ops;
    /* Failures during the start period do not count (compose semantics). */
    if (now < u->started_usec + u->svc->health.start_period_usec)
        return;
    u->health_fails++;
    if (u->health_fails >= retries && u->health != SV_HEALTH_UNHEALTHY) {
        log_warning("service '%s' is unhealthy: %s", u->svc->name, u->health_msg);
        u->health = SV_HEALTH_UNHEALTHY;
    }
}

/* Pairs not listed are NULL and go to bug_transition(). */
const sv_transition_fn sv__transitions[_SV_STATE_MAX][_SV_EVENT_MAX] = {
    [SV_STATE_STOPPED] = {
        [SV_EVENT_START] = on_start_idle,
        [SV_EVENT_RESTART_REQUEST] = on_start_idle,
        [SV_EVENT_STOP_REQUEST] = ignore,
    },
    [SV_STATE_WAITING] = {
        [SV_EVENT_START] = ignore,
        [SV_EVENT_RESTART_REQUEST] = ignore,
        [SV_EVENT_DEPS_MET] = on_deps_met,
        [SV_EVENT_STOP_REQUEST] = on_stop_idle,
    },
    [SV_STATE_STARTING] = {
        [SV_EVENT_START] = ignore,
        [SV_EVENT_SPAWNED] = on_spawned,
        [SV_EVENT_EXITED] = on_exited_running,
        [SV_EVENT_STOP_REQUEST] = on_stop_live,
        [SV_EVENT_RESTART_REQUEST] = on_restart_live,
    },
    [SV_STATE_RUNNING] = {
        [SV_EVENT_START] = ignore,
        [SV_EVENT_EXITED] = on_exited_running,
        [SV_EVENT_STOP_REQUEST] = on_stop_live,
        [SV_EVENT_RESTART_REQUEST] = on_restart_live,
        [SV_EVENT_HEALTH_OK] = on_health_ok,
        [SV_EVENT_HEALTH_FAIL] = on_health_fail,
    },
    [SV_STATE_STOPPING] = {
        [SV_EVENT_START] = on_restart_stopping,
        [SV_EVENT_SPAWNED] = ignore,
        [SV_EVENT_EXITED] = on_exited_stopping,
        [SV_EVENT_STOP_REQUEST] = on_stop_stopping,
        [SV_EVENT_RESTART_REQUEST] = on_restart_stopping,
        [SV_EVENT_STOP_TIMEOUT] = on_stop_timeout,
    },
    [SV_STATE_BACKOFF] = {
        [SV_EVENT_START] = ignore,
        [SV_EVENT_BACKOFF_DONE] = on_backoff_done,
        [SV_EVENT_STOP_REQUEST] = on_stop_idle,
        [SV_EVENT_RESTART_REQUEST] = on_restart_backoff,
    },
    [SV_STATE_EXITED] = {
        [SV_EVENT_START] = on_start_idle,
        [SV_EVENT_RESTART_REQUEST] = on_start_idle,
        [SV_EVENT_STOP_REQUEST] = ignore,
    },
    [SV_STATE_FAILED] = {
        [SV_EVENT_START] = on_start_idle,
        [SV_EVENT_RESTART_REQUEST] = on_start_idle,
        [SV_EVENT_STOP_REQUEST] = ignore,
    },
};

void sv_fsm_dispatch(struct sv_unit *u, enum sv_event ev, int arg, uint64_t now,
                     const struct sv_ops *ops)
{
    sv_transition_fn fn;

    ASSERT((unsigned)u->state < _SV_STATE_MAX && (unsigned)ev < _SV_EVENT_MAX);
    fn = sv__transitions[u->state][ev];
    if (!fn) {
        log_error("service '%s': unexpected event %s in state %s, ignoring", u->svc->name,
                  event_names[ev], state_names[u->state]);
        fn = bug_transition;
    }
    fn(u, arg, now, ops);
}
