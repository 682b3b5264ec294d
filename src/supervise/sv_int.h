/* SPDX-License-Identifier: MIT */
/* sv_int.h - supervise module internals shared by its files and its unit tests: the
 * per-service state machine (a state x event table of handlers with side effects routed
 * through struct sv_ops), the service log writer, the spawner and the control server.
 * Nothing here is a stable API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/macro.h"
#include "probe/probe.h"
#include "supervise.h"

struct probe;
struct sv_service;

/* ===== State machine ===== */

enum sv_state {
    SV_STATE_STOPPED,  /* never started, or stopped on request */
    SV_STATE_WAITING,  /* wants to run; a dependency's condition is not met yet */
    SV_STATE_STARTING, /* forked; exec not confirmed yet */
    SV_STATE_RUNNING,  /* exec succeeded, main process alive */
    SV_STATE_STOPPING, /* stop_signal sent, waiting for the main process to exit */
    SV_STATE_BACKOFF,  /* waiting for the restart deadline */
    SV_STATE_EXITED,   /* exited 0 and not restarted ("completed") */
    SV_STATE_FAILED,   /* exited non-zero without restart, or gave up after max_restarts */
    _SV_STATE_MAX,
};

enum sv_event {
    SV_EVENT_START,           /* user or initial start: wants to run */
    SV_EVENT_DEPS_MET,        /* every dependency meets its condition (sent to WAITING only) */
    SV_EVENT_SPAWNED,         /* exec succeeded (exec-report pipe reached EOF) */
    SV_EVENT_EXITED,          /* main process reaped; arg = wait status */
    SV_EVENT_STOP_REQUEST,    /* user stop or shutdown */
    SV_EVENT_RESTART_REQUEST, /* user restart: stop, then start again */
    SV_EVENT_STOP_TIMEOUT,    /* stop grace elapsed (timer) */
    SV_EVENT_BACKOFF_DONE,    /* restart deadline reached (timer) */
    SV_EVENT_HEALTH_OK,       /* a health probe succeeded */
    SV_EVENT_HEALTH_FAIL,     /* a health probe failed; u->health_msg says why */
    _SV_EVENT_MAX,
};

enum sv_health {
    SV_HEALTH_NONE,     /* no healthcheck, or no process */
    SV_HEALTH_STARTING, /* no verdict yet */
    SV_HEALTH_HEALTHY,
    SV_HEALTH_UNHEALTHY,
    _SV_HEALTH_MAX,
};

/* After a run of a lock-holding service ended (sv_fence.c). */
enum sv_lock_phase {
    SV_LOCK_IDLE,
    SV_LOCK_RELEASE,   /* processes verified gone: compare-and-delete of the key */
    SV_LOCK_SUCCESSOR, /* the service waits to start until another holder has the key */
    SV_LOCK_CHECK,     /* running, but its watched process exited: does it hold the key? */
    SV_LOCK_HANDOVER,  /* ... cleanly, and it answers: is a planned handover under way? */
    SV_LOCK_HANDED,    /* ... yes: compare-and-delete of the key while the service runs */
};

/* What SV_LOCK_CHECK learnt (sv_fence.c).  The key: still the service's, or not.  The answer:
 * after a clean exit of the watched process, whether the main process still answers its
 * liveness probe (then the exit was its own doing: Patroni demoting or restarting PostgreSQL). */
enum sv_verdict {
    SV_CHECK_PENDING, /* asked, no result yet */
    SV_CHECK_YES,
    SV_CHECK_NO,
    SV_CHECK_NOT_ASKED, /* answer only: the exit was a crash, or the service has no liveness */
};

/* Minimum time between two starts of one service (s6 nextstart): the service's initial restart
 * backoff, at most this (a stateless proxy may ask for 100 ms). */
#define SV_MIN_RESTART_USEC ((uint64_t)1000000)
/* How soon a start held back by a busy service (sv_ops.busy) tries again. */
#define SV_BUSY_RECHECK_USEC ((uint64_t)20000)

/* A stop request that overrides the service's stop_signal / stop_grace_period once (the
 * control protocol's "signal", "grace_ms" and "main_only"; gpu_agent's drains).  The control
 * handler fills it in before dispatching SV_EVENT_STOP_REQUEST and clears it afterwards. */
struct sv_stop_request {
    bool set;
    int sig;             /* 0 = the service's stop_signal */
    uint64_t grace_usec; /* 0 = the service's stop_grace_period */
    bool main_only;      /* signal the main process only, not its process group */
};

/* ===== Scheduled services (sv_job.c) ===== */

enum sv_job_result {
    SV_JOB_SUCCESS, /* exit status 0 */
    SV_JOB_FAILURE, /* any other exit, a signal, a failed exec or spawn */
    SV_JOB_TIMEOUT, /* stopped by the supervisor after schedule.timeout */
    SV_JOB_SKIPPED, /* a due time that found the previous run still going */
    _SV_JOB_RESULT_MAX,
};

/* A job's bookkeeping (only used when the unit's service has a schedule).  Wall-clock times
 * are usec since the epoch, 0 = none; what survives a restart of the supervisor is kept in
 * STATE/jobs/NAME.state (the last run and the counters). */
struct sv_job {
    bool enabled;                /* the schedule runs (false while held or stopped by hand) */
    uint64_t next_nominal_usec;  /* the next due time, 0 = none */
    uint64_t next_due_usec;      /* that plus the random delay: when the run starts */
    bool active;                 /* a run is under way (the unit left its idle states) */
    bool timed_out;              /* this run was stopped for its timeout */
    uint64_t run_started_usec;   /* monotonic start of the run under way */
    unsigned run_spawns;         /* u->spawns when it began: did the run spawn at all? */
    uint64_t last_end_usec;      /* wall clock: end of the last finished run */
    uint64_t last_success_usec;  /* end of the last successful run */
    uint64_t last_duration_usec; /* of the last finished run */
    int last_exit_code;          /* exit status, 128+signal, -1 = no process exit */
    int last_result;             /* enum sv_job_result, -1 before the first run */
    uint64_t counts[_SV_JOB_RESULT_MAX];
};

/* Runtime state of one service.  The FSM owns the fields above the "loop" marker; the event
 * loop owns the resources below it. */
struct sv_unit {
    const struct sv_service *svc; /* borrowed from the spec */
    size_t index;                 /* position in the spec */
    enum sv_state state;
    pid_t pid;           /* main process; 0 when none */
    pid_t pgid;          /* process group of the last spawn (kept after exit to kill leftovers) */
    uint64_t timer_usec; /* CLOCK_MONOTONIC deadline, 0 = none */
    enum sv_event timer_event;
    uint64_t started_usec; /* monotonic time of the last spawn, 0 = never */
    uint64_t started_realtime_usec;
    unsigned spawns;       /* successful spawns */
    unsigned restarts;     /* spawns after the first */
    unsigned failures;     /* consecutive failed runs (reset by a stable run or a user start) */
    uint64_t backoff_usec; /* delay before the next restart after a failure */
    bool has_exited;
    int exit_status; /* wait status of the last exit */
    int exec_errno;  /* the child could not exec (or set up) in the current run */
    bool restart_pending;
    enum sv_health health;
    unsigned health_fails;
    char health_msg[256];
    unsigned bugs;                   /* unexpected (state, event) pairs seen; for tests */
    struct sv_stop_request stop_req; /* override for the STOP_REQUEST being dispatched */
    uint64_t stop_grace_usec;        /* grace of the stop in progress (for the log) */

    /* loop */
    int out_fd;  /* read end of the service's stdout+stderr pipe, -1 when closed */
    int exec_fd; /* read end of the exec-report pipe, -1 when closed */
    int log_fd;  /* STATE/logs/NAME.log, -1 until first opened */
    uint64_t log_size;
    struct probe *probe; /* in-flight health probe */
    uint64_t probe_started_usec;
    uint64_t health_next_usec; /* next probe start, 0 = not scheduled */
    bool log_failed;           /* a log write failed (reported once) */
    /* process tree (sv_tree.c) and fencing (sv_fence.c) */
    struct sv_proc *tree; /* the service's processes at the last scan */
    size_t n_tree;
    uint64_t tree_scanned_usec; /* when a running service's tree was last scanned */
    bool tree_pending;          /* a run ended; its processes are not verified gone yet */
    uint64_t tree_ended_usec;   /* when that run's main process was reaped */
    uint64_t tree_warned_usec;  /* last "still alive" warning */
    enum sv_lock_phase lock_phase;
    struct probe *lock_probe;            /* the etcd request of that phase in flight */
    struct probe_spec lock_del;          /* POST /v3/kv/txn: compare-and-delete, built at start */
    struct probe_spec lock_get;          /* POST /v3/kv/range: who holds the key now */
    struct probe_spec lock_handover_get; /* POST /v3/kv/range of lock.handover_key */
    char *lock_value_b64;                /* the lock's value as etcd's JSON API shows it */
    uint64_t lock_next_usec;             /* next successor check */
    char lock_why[200];                  /* the reason of a fence after SV_LOCK_CHECK */
    enum sv_verdict check_key;           /* SV_LOCK_CHECK: does the key still name the service? */
    enum sv_verdict check_answer;        /* SV_LOCK_CHECK: did the main process answer? */
    struct probe *answer_probe;          /* SV_LOCK_CHECK: the liveness probe that asks it */
    pid_t watched_pid; /* the live member of the tree lock.pidfile names; 0 = none */
    uint64_t lock_deadline_usec;
    struct probe *live_probe; /* liveness probe in flight */
    uint64_t live_started_usec;
    uint64_t live_next_usec;
    unsigned live_fails;
    uint64_t frozen_since_usec; /* main process seen stopped since, 0 = not stopped */
    unsigned fences;            /* times the tree was killed for a failed liveness or a freeze */
    bool fenced;                /* this run was fenced (no second fence for its dying parts) */
    struct sv_job job;          /* scheduled services only (sv_job.c) */
    bool told;                  /* on_change saw told_state/pid/restarts */
    enum sv_state told_state;
    pid_t told_pid;
    unsigned told_restarts;
};

/* Side effects of the state machine, so tests can drive it without forking. */
struct sv_ops {
    /* Starts the service's process: on success sets u->pid and u->pgid and returns 0; returns
     * -errno (nothing running) on failure. */
    int (*spawn)(struct sv_unit *u, void *userdata);
    /* Sends sig to u's process group (u->pgid); ignores a group that is already gone. */
    void (*kill)(struct sv_unit *u, int sig, void *userdata);
    /* Sends sig to u's main process only (u->pid); NULL = use kill. */
    void (*kill_main)(struct sv_unit *u, int sig, void *userdata);
    /* True while the last run's processes are not verified gone or its lock not released yet:
     * a start waits (NULL = never busy). */
    bool (*busy)(const struct sv_unit *u, void *userdata);
    void *userdata;
};

typedef void (*sv_transition_fn)(struct sv_unit *u, int arg, uint64_t now,
                                 const struct sv_ops *ops);
extern const sv_transition_fn sv__transitions[_SV_STATE_MAX][_SV_EVENT_MAX];

/* Initialises u in STOPPED for svc (borrowed). */
void sv_unit_init(struct sv_unit *u, const struct sv_service *svc, size_t index);
/* Runs the handler for (u->state, ev).  arg: wait status for SV_EVENT_EXITED, else 0.
 * now: CLOCK_MONOTONIC usec. */
void sv_fsm_dispatch(struct sv_unit *u, enum sv_event ev, int arg, uint64_t now,
                     const struct sv_ops *ops);

const char *sv_state_to_string(enum sv_state s);
const char *sv_event_to_string(enum sv_event e);
const char *sv_health_to_string(enum sv_health h);
/* "exit status 1" / "killed by signal 9" into buf; returns buf. */
const char *sv_format_exit(char *buf, size_t n, int status);

/* ===== Logs (sv_log.c) ===== */

/* Appends p[0..n) to the service log at path, opening it when *fd < 0, rotating to path.1 ..
 * path.keep whenever the file would grow past max_bytes (0 = never rotate).  Chunks are split
 * at the size limit, so lines may span two files.  0 or -errno. */
int sv__log_write(const char *path, int *fd, uint64_t *size, uint64_t max_bytes, unsigned keep,
                  const void *p, size_t n) WARN_UNUSED_RESULT;
/* Renames path.(keep-1) -> path.keep ... path -> path.1 (keep 0: unlinks path). 0 or -errno. */
int sv__log_rotate(const char *path, unsigned keep) WARN_UNUSED_RESULT;

/* ===== Process trees (sv_tree.c) ===== */

struct sv_proc {
    pid_t pid, ppid;
    char state;     /* of /proc/PID/stat: R, S, D, T (stopped), t (traced), ... */
    uint64_t start; /* start time in clock ticks after boot (tells pid reuse apart) */
};

/* Scans /proc for the live (not zombie) processes of u's service into u->tree / u->n_tree
 * (see sv_tree.c for what belongs to a service).  Returns the count or -errno. */
int sv__tree_refresh(struct sv_unit *u);
/* Refreshes u->tree and sends sig to each; returns how many were signalled, or -errno. */
int sv__tree_kill(struct sv_unit *u, int sig);
/* The state letter of pid ('?' when it does not exist). */
char sv__proc_state(pid_t pid);

/* ===== Fencing (sv_fence.c) ===== */

struct sv_sup;

/* Builds u's lock request (when its service has a lock); call once after sv_unit_init(). */
void sv__fence_init(struct sv_unit *u);
void sv__fence_release(struct sv_unit *u);
/* The main process was reaped: what the run left must be verified gone before a restart. */
void sv__fence_run_ended(struct sv_sup *sup, struct sv_unit *u, uint64_t now);
/* Per loop turn: verifies trees gone and releases locks, watches for frozen main processes,
 * runs liveness probes and fences (SIGKILL of the whole tree) on a freeze or a failed
 * liveness.  Returns the nearest deadline it needs a wake-up for (0 = none). */
uint64_t sv__fence_tick(struct sv_sup *sup, uint64_t now);
/* poll() fds of the fencing probes in flight: calls add(fd, events, userdata, unit index,
 * which) for each; which 0 = liveness, 1 = lock, 2 = the answer of SV_LOCK_CHECK. */
void sv__fence_fds(struct sv_sup *sup,
                   void (*add)(void *ctx, int fd, short events, size_t idx, int which), void *ctx);
/* Steps the probe `which` of unit idx with the revents of fd (ignored when the probe's fd
 * changed since it was polled). */
void sv__fence_step(struct sv_sup *sup, size_t idx, int which, int fd, short revents, uint64_t now);
bool sv__fence_busy(const struct sv_unit *u, void *userdata);
/* A process we reaped that was no service's main process, with its wait status.  When it was
 * a lock-holding service's watched process (lock.pidfile: PostgreSQL's postmaster, reparented
 * to the subreaper) and that service still holds its key, the database under the key is gone:
 * the service is fenced, unless the exit was clean and the main process still answers its
 * liveness probe (it stopped the process itself).  Any other process is only logged (debug). */
void sv__fence_orphan_exited(struct sv_sup *sup, pid_t pid, int status, uint64_t now);
/* bind() test of 127.0.0.1:port as the services bind: 0 = free, -EADDRINUSE, other -errno. */
int sv__port_free(uint16_t port);

/* ===== Spawning (sv_spawn.c) ===== */

/* Everything the child needs, prepared before fork() so the child only makes
 * async-signal-safe calls. */
struct sv_spawn_plan {
    char *path;        /* resolved command[0] */
    char *const *argv; /* borrowed from the service */
    char **envp;       /* owned, NULL-terminated */
    char *dir;         /* working directory */
    char *netns;       /* /run/netns/NAME to setns() into; NULL = none */
    bool drop;         /* switch to uid/gid/groups */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int n_groups;
};

/* Builds the plan for svc: resolves command[0] on the service's PATH, the environment
 * (PATH, LANG, HOME, USER, then the service's env, which wins), the user's ids when the
 * supervisor is root.  -ENOENT (command or user missing), -ENOMEM.  *reterr_msg gets a
 * human reason on failure (static storage in the plan's absence: a buffer given by caller). */
int sv__spawn_plan(const struct sv_service *svc, const char *state_dir,
                   struct sv_spawn_plan *ret_plan, char *reterr_msg,
                   size_t msg_size) WARN_UNUSED_RESULT;
void sv__spawn_plan_release(struct sv_spawn_plan *plan);
/* Forks and execs the plan in a new session with stdin /dev/null and stdout+stderr to the
 * write end of a pipe whose read end (non-blocking, CLOEXEC) is returned in *ret_out_fd.
 * *ret_exec_fd (non-blocking, CLOEXEC) reaches EOF once exec succeeded, or yields a
 * struct sv_exec_report when the child failed before exec.  0 or -errno. */
int sv__spawn(const struct sv_spawn_plan *plan, pid_t *ret_pid, int *ret_out_fd,
              int *ret_exec_fd) WARN_UNUSED_RESULT;

enum sv_exec_stage {
    SV_EXEC_STAGE_SETUP,
    SV_EXEC_STAGE_CHDIR,
    SV_EXEC_STAGE_CREDS,
    SV_EXEC_STAGE_EXEC,
    SV_EXEC_STAGE_NETNS,
};
struct sv_exec_report {
    int stage; /* enum sv_exec_stage */
    int err;   /* errno */
};

/* ===== The supervisor (supervise.c) and its control protocol (sv_control.c) ===== */

#define SV_CONTROL_MAX_LINE    4096 /* request line limit */
#define SV_CONTROL_MAX_CLIENTS 16
#define SV_CONTROL_MAX_OUT     (4u << 20) /* pending response bytes per client */

struct sv_client {
    int fd;
    struct buf in;  /* partial request line */
    struct buf out; /* pending response bytes */
    bool eof;       /* no more input (peer shut down, or a protocol error): close once flushed */
    bool dead;      /* to be closed and removed */
};

struct sv_sup {
    const struct sv_spec *spec;    /* borrowed */
    const char *state_dir;         /* borrowed */
    const struct sv_options *opts; /* borrowed */
    struct sv_unit *units;         /* n_units, the spec's order */
    size_t n_units;
    struct sv_ops ops;
    uint64_t fence_deadline_usec; /* the nearest wake-up sv__fence_tick() asked for */
    uint64_t job_deadline_usec;   /* the nearest wake-up sv__job_tick() asked for */
    pid_t pid;
    uint64_t started_realtime_usec;
    bool shutting_down;
    bool job_metrics_failed; /* a textfile write failed (reported once until one works) */
    int listen_fd;
    struct sv_client *clients[SV_CONTROL_MAX_CLIENTS];
    size_t n_clients;
};

/* The unit named name, or NULL. */
struct sv_unit *sv__sup_find(struct sv_sup *sup, const char *name);
/* Begins the shutdown (idempotent). */
void sv__sup_shutdown(struct sv_sup *sup);
/* Dispatches ev to u now and lets the loop settle dependencies and health afterwards. */
void sv__sup_request(struct sv_sup *sup, struct sv_unit *u, enum sv_event ev);
/* "etcd (service_healthy)" for the first dependency of u that blocks it, into buf; NULL when
 * none does (u is not waiting, or its dependencies are met). */
const char *sv__sup_waiting_for(const struct sv_sup *sup, const struct sv_unit *u, char *buf,
                                size_t n);

/* Creates the listening socket at path (a stale one is unlinked first), mode 0600. */
int sv__control_listen(const char *path, int *ret_fd) WARN_UNUSED_RESULT;
/* Accepts pending connections on sup->listen_fd (over the limit: closed at once). */
void sv__control_accept(struct sv_sup *sup);
/* poll() events a client waits for. */
short sv__client_events(const struct sv_client *c);
/* Reads requests / writes responses for revents; marks the client dead when it is done. */
void sv__client_io(struct sv_sup *sup, struct sv_client *c, short revents);
/* Closes and removes dead clients (all = every client). */
void sv__control_prune(struct sv_sup *sup, bool all);

/* The protocol's messages (sv_status.c): the status reply encoded from the same field tables
 * sv_status_decode() reads; a request's parts; the replies to requests. */
struct json_t;
struct json_t *sv__status_encode(const struct sv_status *st);
const char *sv__request_cmd(struct json_t *req);     /* NULL when missing */
const char *sv__request_service(struct json_t *req); /* NULL when missing */
const char *sv__request_name(enum sv_request req);
/* The stop overrides of a request: 1 when it has any, 0 when none, -EINVAL (*reterr says why). */
int sv__stop_options_decode(struct json_t *req, struct sv_stop_options *ret, const char **reterr);
struct json_t *sv__reply_error(const char *msg);
struct json_t *sv__reply_ok(const char *state); /* state may be NULL */

/* Handles one request line (no newline) and appends one response line (with newline) to out.
 * May change supervisor state (stop/start/restart/down).  Never fails: errors become
 * {"ok":false,"error":...} responses.  Exposed for fuzzing. */
void sv__control_handle(struct sv_sup *sup, const char *line, size_t len, struct buf *out);

/* ===== Scheduled services (sv_job.c) ===== */

/* "success", "failure", "timeout", "skipped". */
const char *sv__job_result_name(enum sv_job_result r);
/* Readies the job of u (a unit whose service has a schedule): its last run and counters from
 * STATE/jobs/NAME.state, its first due time (held: none until sv__job_enable()).  The
 * textfile is written by sv__job_start_all() once every job is ready. */
void sv__job_init(struct sv_sup *sup, struct sv_unit *u, bool held, uint64_t now_real);
/* Writes the textfile for the jobs' state at start (no-op without jobs). */
void sv__job_start_all(struct sv_sup *sup);
/* Called with each control request ev (START, RESTART_REQUEST, STOP_REQUEST) for u before it
 * is dispatched (no-op unless u is a job).  A start or restart of an idle job is a run that
 * begins now, and puts its schedule back on (a held job is held no more); a stop holds the
 * schedule until the next start. */
void sv__job_request(struct sv_sup *sup, struct sv_unit *u, enum sv_event ev, uint64_t now);
/* Per loop turn: notes runs that began or ended (recording them: state file, textfile),
 * starts due jobs (or counts the due time skipped), stops runs past their timeout.  Returns
 * the monotonic deadline of its next need (0 = none). */
uint64_t sv__job_tick(struct sv_sup *sup, uint64_t now);
/* The jobs' Prometheus text (families in a fixed order, one sample per job) into out.
 * 0 or -ENOBUFS/-ENOMEM. */
int sv__job_metrics_format(const struct sv_unit *units, size_t n,
                           struct buf *out) WARN_UNUSED_RESULT;
/* The state file's text of one job, and back (unknown keys ignored; -EINVAL for a bad
 * value, j unchanged then). */
int sv__job_state_format(const struct sv_job *j, struct buf *out) WARN_UNUSED_RESULT;
int sv__job_state_parse(const char *text, struct sv_job *j) WARN_UNUSED_RESULT;
/* The status of u's job (NULL when u is not a job); caller frees with the sv_status. */
struct sv_status_job *sv__job_status(const struct sv_unit *u);
