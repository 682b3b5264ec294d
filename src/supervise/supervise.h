/* SPDX-License-Identifier: MIT */
/* supervise.h - the process supervision engine behind `infractl up` (s6-supervise style): runs
 * a stack's services as children of one single-threaded event loop, restarts them by policy,
 * probes their health, writes their logs, and answers a JSON control socket.
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

struct err;
struct stack;

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

/* Runs the stack (already resolved and prepared by the caller: no ${...} left) until a `down`
 * request or SIGTERM/SIGINT, then stops every service in reverse dependency order and returns.
 * A second SIGTERM/SIGINT during shutdown SIGKILLs every remaining process group at once.
 * Returns 0, -EBUSY when another supervisor holds STATE/supervisor.lock, -EINVAL for bad
 * options, other -errno for setup failures (nothing is started then).  Logs (daemon style,
 * core/log.h) what it does.  The stack is borrowed and must not change while it runs. */
int sv_run(const struct stack *stack, const struct sv_options *opts) WARN_UNUSED_RESULT;

/* Checks before anything starts: every command[0] exists and is executable (error: "service
 * 'pg1': '/usr/bin/patroni' not found (install the Debian package 'patroni')"), every `user`
 * exists, every declared port is free on 127.0.0.1 (error: "port 6380 of service 'redis1' is
 * already in use") and declared by one service only.  Ports are tested with bind() on
 * 127.0.0.1 with SO_REUSEADDR set, as the services themselves do, so a port held only by
 * TIME_WAIT connections of a service that just stopped counts as free while any listener
 * (on 127.0.0.1 or the wildcard address) counts as taken.
 * Returns 0, -ENOENT (missing or non-executable command), -EINVAL (unknown user, port declared
 * twice), -EADDRINUSE, with *reterr (may be NULL) filled with the first problem found. */
int sv_preflight(const struct stack *stack, struct err *reterr) WARN_UNUSED_RESULT;

/* ===== Control client (sv_status.c): the protocol's messages are this module's alone ===== */

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
    char *health_message; /* the last probe's message, "" when none */
    char *last_exit;      /* "exit status 1", "killed by signal 9"; NULL before any exit */
    char *waiting_for;    /* "etcd (service_healthy)"; NULL unless waiting on a dependency */
};

struct sv_status {
    int pid;           /* the supervisor's */
    double started_at; /* wall clock */
    char *stack;       /* the stack's name */
    char *state_dir;
    bool shutting_down;                 /* `down` or SIGTERM received */
    struct sv_status_service *services; /* stack order */
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
/* The service called name, or NULL. */
const struct sv_status_service *sv_status_find(const struct sv_status *st, const char *name);

enum sv_request {
    SV_REQUEST_START,   /* a stopped (or held) service */
    SV_REQUEST_STOP,    /* with optional sv_stop_options */
    SV_REQUEST_RESTART, /* stop, then start again */
    SV_REQUEST_DOWN,    /* stop everything and exit (service = NULL) */
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
