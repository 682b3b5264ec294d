/* SPDX-License-Identifier: MIT */
/* supervise.h - the process supervision engine behind `infractl up` (s6-supervise style): runs
 * a spec's services (struct sv_spec) as children of one single-threaded event loop, restarts them
 * by policy, probes their health, writes their logs, and answers a JSON control socket.
 *
 * Ownership: every pointer argument is borrowed for the duration of the call; strings returned
 * through ret_ parameters or as char * are owned by the caller (free()).  sv_run() blocks
 * SIGCHLD/SIGTERM/SIGINT/SIGHUP in the calling thread, makes the process a child subreaper and
 * forks: call it from a single-threaded process, or from one whose other threads block those
 * four signals too and never fork or wait for children (gpu_agent: HTTP, NVML threads); its
 * children only make async-signal-safe calls between fork() and execve().  The other functions
 * are reentrant. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/macro.h"
#include "probe/probe.h"

struct err;

/* ===== What to run (sv_spec.c): the supervisor's own input ===== */

enum sv_restart {
    SV_RESTART_NO,
    SV_RESTART_ON_FAILURE, /* the default */
    SV_RESTART_ALWAYS, /* after any exit, unless stopped on request (compose's unless-stopped) */
    _SV_RESTART_MAX,
};

enum sv_dep_cond {
    SV_DEP_STARTED,   /* service_started: running (or exited 0: a one-shot did start) */
    SV_DEP_HEALTHY,   /* service_healthy: running and healthy (or without a healthcheck) */
    SV_DEP_COMPLETED, /* service_completed_successfully: exited 0 */
    _SV_DEP_COND_MAX,
};

struct sv_dep {
    char *service; /* a service of the same spec */
    enum sv_dep_cond cond;
};

/* A probe with its timing: the healthcheck, or the liveness check. */
struct sv_check {
    bool present;
    struct probe_spec probe;
    uint64_t interval_usec;     /* default 2s */
    uint64_t timeout_usec;      /* default 1s */
    uint64_t start_period_usec; /* default 0: failures in it do not count */
    unsigned retries;           /* failures in a row for a verdict; default 3 */
};

/* A lease-backed lock the service holds in etcd (Patroni's leader key): released by
 * compare-and-delete once every process of the service is verified gone (sv_fence.c). */
struct sv_lock {
    bool present;
    char *host; /* etcd client endpoint */
    uint16_t port;
    char *key;
    char *value; /* the value that means "held by this service" */
    /* The pid file (first line: a pid) of the process the key guards, which the service
     * starts in a session of its own and leaves to the supervisor (PostgreSQL's
     * postmaster.pid under Patroni); NULL = none.  Its exit while the service runs and holds
     * the key fences the service, unless the exit was clean (status 0) and the main process
     * still answers its liveness probe (the service stopped it itself: Patroni demoting or
     * restarting PostgreSQL).  Other processes left to the supervisor are reaped and
     * ignored. */
    char *pidfile;
    /* A key whose presence means a planned handover is under way (Patroni's failover key,
     * written for a switchover); NULL = none.  When the watched process exits cleanly, the
     * main process answers and this key names the service as the leader to leave (or no
     * leader), the supervisor deletes the lock's key at once (compare-and-delete, as after a
     * run): the successor need not wait for the service's own, later release (Patroni sleeps
     * 1 s first).  The service is not fenced. */
    char *handover_key;
};

/* When a scheduled service (a job) runs: at the due times offset + k * every after the Unix
 * epoch, in UTC seconds (no time zone, no DST: a day is 86400 s, so `daily 02:00` is every
 * 24h with offset 2h).  A job is a one-shot (restart must be SV_RESTART_NO): it is not
 * started with the others, but at each due time (plus a random delay); a run still going at a
 * due time makes that due time "skipped"; a run longer than timeout_usec is stopped (its
 * stop_signal, stop_grace, SIGKILL).  Each run's outcome goes to STATE/jobs/NAME.state and to
 * the Prometheus textfile SV_JOB_METRICS_FILE (sv_job.c, docs/internals/supervise.md). */
struct sv_schedule {
    bool present;
    uint64_t every_usec;        /* the period; at least 1s */
    uint64_t offset_usec;       /* taken modulo every_usec */
    uint64_t random_delay_usec; /* each run starts uniformly 0..this later (below every) */
    uint64_t timeout_usec;      /* 0 = no limit */
    bool persistent;            /* at start: run once when a due time passed since the last
                                   recorded run (none recorded: wait for the next) */
};

#define SV_JOB_METRICS_FILE "ultrathink_jobs.prom"

/* The first due time strictly after after_usec (wall clock, usec since the epoch), before the
 * random delay.  s->every_usec must be > 0. */
uint64_t sv_schedule_next(const struct sv_schedule *s, uint64_t after_usec);
/* The last due time at or before at_usec; 0 when there is none (at_usec before the first). */
uint64_t sv_schedule_prev(const struct sv_schedule *s, uint64_t at_usec);
/* "every 2s", "every 1h +30m", "daily 02:00 UTC" (a 24h period), "+ up to 5m" for a random
 * delay, into buf; returns buf. */
const char *sv_schedule_format(const struct sv_schedule *s, char *buf, size_t n);

/* One service.  Every string and array is owned by the spec (sv_spec_free()). */
struct sv_service {
    char *name;
    unsigned line;     /* where it is defined in its source file, for errors; 0 = none */
    char *package;     /* what provides argv[0], named when it is missing (Debian package, or
                          "pypi:NAME==VERSION"); NULL = none */
    char **argv;       /* NULL-terminated, argc >= 1 */
    char **env;        /* NULL-terminated "KEY=VALUE" list, never NULL */
    char *user;        /* run as this user when the supervisor is root; NULL = its own */
    char *working_dir; /* NULL = the state directory */
    char *netns;       /* entered (setns) before the credential change: /run/netns/NAME;
                          NULL = the supervisor's network namespace */
    struct sv_dep *deps;
    size_t n_deps;
    struct sv_check health;     /* a verdict only: never restarts anything */
    struct sv_check liveness;   /* failing `retries` times in a row: the whole tree is killed */
    uint64_t freeze_after_usec; /* main process stopped this long: killed like a failed
                                   liveness; 0 = never */
    struct sv_lock lock;
    enum sv_restart restart;
    uint64_t backoff_initial_usec; /* default 1s (never less than 1s between starts) */
    uint64_t backoff_max_usec;     /* default 30s */
    uint64_t backoff_reset_usec;   /* uptime that resets the backoff; default 60s */
    unsigned max_restarts;         /* failed starts in a row before "failed"; 0 = unlimited */
    int stop_signal;               /* default SIGTERM */
    uint64_t stop_grace_usec;      /* default 10s, then SIGKILL to the process group */
    uint16_t *ports;               /* TCP ports it binds (preflight: free; fence: unbound) */
    size_t n_ports;
    struct sv_schedule schedule; /* present: a job (see struct sv_schedule) */
};

struct sv_spec {
    char *name;             /* shown in status */
    uint64_t log_max_bytes; /* per-service log size before rotation; default 10 MiB */
    unsigned log_keep;      /* rotated files kept; default 3 */
    char *job_metrics_dir;  /* where the jobs' SV_JOB_METRICS_FILE goes; NULL = STATE/jobs */
    struct sv_service *services;
    size_t n_services;
    size_t cap;
};

/* An empty spec with the log defaults.  Never NULL (aborts on OOM). */
struct sv_spec *sv_spec_new(const char *name);
/* Appends a service with every default set (sv_service_init()) and `name`; the pointer is
 * valid until the next sv_spec_add().  Never NULL. */
struct sv_service *sv_spec_add(struct sv_spec *spec, const char *name);
/* Every default of a service (name and argv left NULL).  gpu_agent's workers get them from
 * here; the stack file documents the same defaults (test_stack checks they agree). */
void sv_service_init(struct sv_service *svc);
/* NULL-safe; returns NULL. */
struct sv_spec *sv_spec_free(struct sv_spec *spec);
/* "no", "on-failure", "always"; "service_started", ... (NULL when unknown). */
const char *sv_restart_to_string(enum sv_restart r);
const char *sv_dep_cond_to_string(enum sv_dep_cond c);

/* Every service runs with UT_SERVICE=<its name> in its environment, and everything it starts
 * inherits it: that is how the supervisor (the subreaper of them all) finds each process of a
 * service, also those that left its process group or session (Patroni's postmaster, PostgreSQL's
 * backends), to kill the whole tree and to verify it gone. */
#define SV_SERVICE_ENV "UT_SERVICE"

/* What the supervisor tells its embedder about one service whenever its state, main pid or
 * restart count changes (and once for every service when the loop starts).  The strings are
 * the control protocol's ("running", "backoff", ...) and live as long as the stack. */
struct sv_service_change {
    const char *name;
    const char *state;
    int pid; /* 0 when no process runs */
    unsigned restarts;
};

/* Called from sv_run()'s thread between two turns of its loop: must not block, and must not
 * call back into the supervisor (sv_control_call() would deadlock). */
typedef void (*sv_change_fn)(const struct sv_service_change *change, void *userdata);

struct sv_options {
    const char
            *state_dir; /* absolute; holds control.sock, supervisor.pid, supervisor.lock, logs/ */
    int ready_fd;       /* -1 or an fd to write "\n" to (then close) once the lock is held and
                           the control socket listens; sv_run() closes it in every case */
    const char *const *held; /* NULL, or NULL-terminated names of services that stay stopped
                                until a `start` request (gpu_agent: drained GPUs' workers) */
    sv_change_fn on_change;  /* NULL, or told of every service state change (gpu_agent) */
    void *userdata;          /* passed to on_change */
};

/* Runs the spec (its files prepared by the caller) until a `down`
 * request or SIGTERM/SIGINT, then stops every service in reverse dependency order and returns.
 * A second SIGTERM/SIGINT during shutdown SIGKILLs every remaining process group at once.
 * Returns 0, -EBUSY when another supervisor holds STATE/supervisor.lock, -EINVAL for bad
 * options, other -errno for setup failures (nothing is started then).  Logs (daemon style,
 * core/log.h) what it does.  The spec is borrowed and must not change while it runs. */
int sv_run(const struct sv_spec *spec, const struct sv_options *opts) WARN_UNUSED_RESULT;

/* Checks before anything starts: every command[0] exists and is executable (error: "service
 * 'pg1': '/usr/bin/patroni' not found (install the Debian package 'patroni')"), every `user`
 * exists, every declared port is free on 127.0.0.1 (error: "port 6380 of service 'redis1' is
 * already in use") and declared by one service only.  Ports are tested with bind() on
 * 127.0.0.1 with SO_REUSEADDR set, as the services themselves do, so a port held only by
 * TIME_WAIT connections of a service that just stopped counts as free while any listener
 * (on 127.0.0.1 or the wildcard address) counts as taken.
 * Returns 0, -ENOENT (missing or non-executable command), -EINVAL (unknown user, port declared
 * twice), -EADDRINUSE, with *reterr (may be NULL) filled with the first problem found. */
int sv_preflight(const struct sv_spec *spec, struct err *reterr) WARN_UNUSED_RESULT;

/* ===== Control client (sv_status.c): the protocol's messages are this module's alone ===== */

/* What the status says of a scheduled service (a job) beyond its state.  Times are wall
 * clock, seconds since the epoch, 0 = none. */
struct sv_status_job {
    char *schedule;      /* sv_schedule_format() */
    bool scheduled;      /* false while held (`up SERVICE` left it out, or it was stopped) */
    double next_run;     /* next due time with its random delay; 0 when not scheduled */
    double last_run;     /* when the last finished run ended */
    double last_success; /* when the last successful run ended */
    char *last_result;   /* "success", "failure", "timeout"; NULL before the first run */
    double last_duration_s;
    int last_exit_code; /* exit status, 128+N when killed by signal N; -1 when none */
    unsigned runs_success, runs_failure, runs_timeout, runs_skipped;
};

/* One service in the supervisor's status.  Strings are owned by the sv_status (NULL only
 * where noted); times in seconds. */
struct sv_status_service {
    char *name;
    char *state;       /* stopped, waiting, starting, running, stopping, backoff, exited, failed */
    int pid;           /* main process; 0 when none */
    double started_at; /* wall clock of the last start; 0 = never started */
    double uptime_s;   /* of the running process; 0 when none */
    unsigned restarts; /* starts after the first */
    char *health;      /* none, starting, healthy, unhealthy */
    char *health_message;      /* the last probe's message, "" when none */
    char *last_exit;           /* "exit status 1", "killed by signal 9"; NULL before any exit */
    char *waiting_for;         /* "etcd (service_healthy)"; NULL unless waiting on a dependency */
    struct sv_status_job *job; /* owned; NULL unless the service has a schedule */
};

struct sv_status {
    int pid;           /* the supervisor's */
    double started_at; /* wall clock */
    char *stack;       /* the spec's name (the stack's) */
    char *state_dir;
    bool shutting_down;                 /* `down` or SIGTERM received */
    struct sv_status_service *services; /* the spec's order */
    size_t n_services;
};

/* Asks the supervisor of state_dir for its status (timeout_usec bounds the exchange).  0, or
 * the errors of sv_control_call() (-ENOENT/-ECONNREFUSED: no supervisor runs there), -EPROTO
 * for a reply that is not a status.  Release *ret with sv_status_release(). */
int sv_status_fetch(const char *state_dir, uint64_t timeout_usec,
                    struct sv_status *ret) WARN_UNUSED_RESULT;
/* Decodes a status reply (what sv_status_fetch() does with the line it read).  0 or -EPROTO;
 * *ret is written only on success. */
int sv_status_decode(const char *text, size_t len, struct sv_status *ret) WARN_UNUSED_RESULT;
/* NULL-safe; resets *st. */
void sv_status_release(struct sv_status *st);
/* Frees a job object of a status entry (NULL-safe). */
void sv_status_job_free(struct sv_status_job *job);
/* The service called name, or NULL. */
const struct sv_status_service *sv_status_find(const struct sv_status *st, const char *name);
/* One service as the status reply carries it (a jansson object: json_t); for programs that
 * show it, so the keys stay the supervisor's.  NULL on OOM. */
struct json_t;
struct json_t *sv_status_service_json(const struct sv_status_service *svc);
/* A job's object alone, with the same keys. NULL on OOM. */
struct json_t *sv_status_job_json(const struct sv_status_job *job);

enum sv_request {
    SV_REQUEST_START,   /* a stopped (or held) service */
    SV_REQUEST_STOP,    /* with optional sv_stop_options */
    SV_REQUEST_RESTART, /* stop, then start again */
    SV_REQUEST_DOWN,    /* stop everything, then the supervisor ends (service = NULL) */
    _SV_REQUEST_MAX,
};

/* Overrides of one stop: 0 / false = the service's own stop_signal and grace. */
struct sv_stop_options {
    int signal;
    uint64_t grace_usec;
    bool main_only; /* signal the main process only, not its process group */
};

/* Sends one request.  0; -ENOENT/-ECONNREFUSED when no supervisor runs there; -EINVAL when the
 * supervisor refused it (unknown service, shutting down: its reason in reterr_msg, which may
 * be NULL); -EPROTO for a garbled reply; other -errno of sv_control_call(). */
int sv_request(const char *state_dir, enum sv_request req, const char *service,
               const struct sv_stop_options *stop, uint64_t timeout_usec, char *reterr_msg,
               size_t msg_size) WARN_UNUSED_RESULT;

/* The raw client under both: sends one JSON request line to STATE/control.sock and returns the
 * response line without its newline in *ret_response (caller frees).  timeout_usec bounds the whole
 * exchange (0 = no limit).  Returns 0, -ENOENT/-ECONNREFUSED when no supervisor runs there,
 * -ETIMEDOUT, -EPROTO when the connection closes before a full line, -ENOBUFS for a response
 * over 4 MiB, -ENAMETOOLONG for a state dir too long for a unix socket path, other -errno. */
int sv_control_call(const char *state_dir, const char *request_json, uint64_t timeout_usec,
                    char **ret_response) WARN_UNUSED_RESULT;

/* One process of a service. */
struct sv_process {
    pid_t pid, ppid;
    char state;     /* /proc/PID/stat: R, S, D, T (stopped), ... */
    uint64_t start; /* start time, clock ticks after boot (a parent starts before its child) */
};

/* The processes of a service run by the supervisor with pid `supervisor`: everything below it
 * that carries or descends from the service's UT_SERVICE mark (Patroni, its postmaster, the
 * backends), for drills that fault a whole node.  Needs the rights to read their
 * /proc/PID/environ (root, or the services' user).  *ret (caller frees); returns the count or
 * -errno. */
int sv_service_processes(pid_t supervisor, const char *service,
                         struct sv_process **ret) WARN_UNUSED_RESULT;

/* Path of a service's log file: STATE/logs/NAME.log (caller frees).  Rotated files are
 * NAME.log.1 (newest) .. NAME.log.N.  Never NULL (aborts on OOM). */
char *sv_log_path(const char *state_dir, const char *service);
