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

#include <stdint.h>

#include "core/macro.h"

struct err;
struct stack;

struct sv_options {
    const char
            *state_dir; /* absolute; holds control.sock, supervisor.pid, supervisor.lock, logs/ */
    int ready_fd;       /* -1 or an fd to write "\n" to (then close) once the lock is held and
                           the control socket listens; sv_run() closes it in every case */
    const char *const *held; /* NULL, or NULL-terminated names of services that stay stopped
                                until a `start` request (gpu_agent: drained GPUs' workers) */
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

/* Control client: sends one JSON request line to STATE/control.sock and returns the response
 * line without its newline in *ret_response (caller frees).  timeout_usec bounds the whole
 * exchange (0 = no limit).  Returns 0, -ENOENT/-ECONNREFUSED when no supervisor runs there,
 * -ETIMEDOUT, -EPROTO when the connection closes before a full line, -ENOBUFS for a response
 * over 4 MiB, -ENAMETOOLONG for a state dir too long for a unix socket path, other -errno. */
int sv_control_call(const char *state_dir, const char *request_json, uint64_t timeout_usec,
                    char **ret_response) WARN_UNUSED_RESULT;

/* Path of a service's log file: STATE/logs/NAME.log (caller frees).  Rotated files are
 * NAME.log.1 (newest) .. NAME.log.N.  Never NULL (aborts on OOM). */
char *sv_log_path(const char *state_dir, const char *service);
