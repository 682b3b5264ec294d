/* SPDX-License-Identifier: MIT */
/* probe.h - health probes (tcp, http, pg, redis, exec, kafka) as non-blocking state machines
 * that any poll()/epoll loop can drive, plus blocking helpers for CLIs and tests.
 *
 * A probe never blocks: probe_start() begins the work, the caller polls probe_fd() for
 * probe_events() and calls probe_step() when the fd is ready or when probe_deadline() has
 * passed.  The fd may change between steps (libpq may reconnect), so re-read it each time.
 * Probes are single-threaded objects; different probes may be used from different threads.
 * Only the kafka probe starts a thread of its own (librdkafka has no non-blocking API): see
 * PROBE_KAFKA below. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/macro.h"

struct buf;

enum probe_type {
    PROBE_TCP,   /* connect() succeeds */
    PROBE_HTTP,  /* HTTP/1.0 request; status matches expect_status (0 = any 2xx) */
    PROBE_PG,    /* libpq connect + query (default "SELECT 1") returns rows or command ok */
    PROBE_REDIS, /* optional AUTH, then command (default PING); reply is not an error */
    PROBE_EXEC,  /* argv exits 0; stdout+stderr captured (bounded) */
    PROBE_KAFKA, /* librdkafka metadata request to host:port: the answer lists that broker
                    itself and a controller (kafka/kafka.h kfk_probe()) */
    _PROBE_TYPE_MAX,
};

/* Every string is owned by the spec and freed by probe_spec_release(). */
struct probe_spec {
    enum probe_type type;
    char *host;             /* tcp/http/pg/redis/kafka; default "127.0.0.1" when NULL */
    uint16_t port;          /* tcp/http/pg/redis/kafka */
    char *path;             /* http: default "/" */
    char *method;           /* http: default "GET" */
    char *body;             /* http: request body (sent with Content-Type: application/json),
                               NULL = none */
    unsigned expect_status; /* http: 0 = any 2xx */
    char *user;             /* pg user; redis ACL user (optional) */
    char *password;         /* pg / redis AUTH; may be NULL */
    char *dbname;           /* pg: default "postgres" */
    char *query;            /* pg: default "SELECT 1" */
    char **command;         /* redis: NULL-terminated argv, default { "PING" } */
    char **argv;            /* exec: NULL-terminated argv (argv[0] absolute or on $PATH) */
};
#define PROBE_SPEC_INIT   \
    {                     \
        .type = PROBE_TCP \
    }

/* Frees every string of the spec and resets it to PROBE_SPEC_INIT.  NULL-safe. */
void probe_spec_release(struct probe_spec *spec);
/* Deep copy; dst is overwritten.  Aborts on OOM. */
void probe_spec_copy(struct probe_spec *dst, const struct probe_spec *src);
/* "tcp", "http", "pg", "redis", "exec", "kafka" <-> enum; from_string returns -EINVAL when
 * unknown. */
const char *probe_type_to_string(enum probe_type t);
int probe_type_from_string(const char *s, enum probe_type *ret);

struct probe;

/* Exec probes: the child is a normal child of the calling process, leading its own process
 * group; it is reaped by the probe itself (through a pidfd), so a SIGCHLD handler elsewhere must
 * reap only the pids it started (waitpid(pid) or waitid(P_PIDFD)), never waitpid(-1).  Its fd
 * is an internal epoll fd (output pipe + pidfd), pollable like any other.
 *
 * Kafka probes: librdkafka's calls block, so the probe runs kfk_probe() in a short-lived
 * detached thread (all signals blocked, SIGCHLD/SIGTERM/SIGINT/SIGHUP included, so a
 * supervisor's signalfd sees them all) and its fd is the read end of a pipe the thread writes
 * one byte to when it is done.  The thread shares only a reference-counted job with the probe
 * (the bootstrap string, the result, the pipe's write end), never the probe or its spec, so
 * probe_free() never waits for it: joining would stall the caller's loop for up to the timeout
 * behind a hung broker, and librdkafka calls cannot be cancelled.  A freed probe's thread ends
 * on its own within the timeout (plus librdkafka's teardown, a few ms) and frees the job.
 * While it runs, librdkafka holds pipes without O_CLOEXEC (kafka/kafka.h): a caller that
 * forks and execs meanwhile should close fds >= 3 in the child.
 *
 * Starts a probe that must finish within timeout_usec.  The spec is borrowed and must outlive
 * the probe.  Returns NULL only on OOM; a probe that fails at once (bad host, connect refused
 * synchronously) is returned already done. */
struct probe *probe_start(const struct probe_spec *spec, uint64_t timeout_usec);
/* Destroys the probe, closing its connection and killing (SIGKILL) and reaping an exec child.
 * NULL-safe; returns NULL. */
struct probe *probe_free(struct probe *p);

/* The fd to wait on (-1 when done or waiting only for the deadline) and poll() events for it. */
int probe_fd(const struct probe *p);
short probe_events(const struct probe *p);
/* CLOCK_MONOTONIC deadline in usec (see core/time.h now_usec()). */
uint64_t probe_deadline(const struct probe *p);
/* Advances the probe with the poll() revents of probe_fd() (0 when woken by the deadline).
 * Returns true when the probe is done (success or failure). */
bool probe_step(struct probe *p, short revents);
bool probe_done(const struct probe *p);

/* Only once done: 0 = healthy, else -errno (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for a bad
 * answer, -ECHILD/-EIO for a failed exec ...).  In detail: connect errors as the socket gave
 * them; -EHOSTUNREACH when the host does not resolve; http -EPROTO for a status that does not
 * match or a malformed response; redis -EPROTO for an error reply (message = the server's);
 * pg -EACCES when authentication failed, -EPROTO for other connect or query failures; exec
 * -EIO for a non-zero exit or a fatal signal, the spawn errno (-ENOENT ...) when it could not
 * start, -ECHILD when someone else reaped the child.  -EINPROGRESS while not done.  probe_message()
 * is a one-line human reason
 * ("connect to 127.0.0.1:5433: Connection refused", "HTTP 503", "exit status 1",
 * "3 brokers, controller 2"); borrowed. */
int probe_result(const struct probe *p);
const char *probe_message(const struct probe *p);
/* What the service answered, for callers that interpret it (borrowed, "" when none):
 *   http: the response body;  redis: the reply as text (arrays one element per line, nil as
 *   empty line);  pg: result rows, one per line, fields separated by '\t';  exec: output;
 *   kafka: one line per broker of the answer, "broker=1 host=127.0.0.1 port=9092 self=1
 *   controller=0 replicas=12 led=4 under_replicated=0 offline=0 led_internal=2 ..." (the
 *   *_internal counts are the part of each count in "__" topics). */
const char *probe_detail(const struct probe *p);
/* Wall time from start to done, in usec. */
uint64_t probe_elapsed_usec(const struct probe *p);

/* Runs n probes concurrently with one poll() loop until all are done (each has its own
 * timeout).  probes[] must come from probe_start(); they stay owned by the caller. */
void probe_run_all(struct probe **probes, unsigned n);
/* Convenience: start, run, copy result.  Returns probe_result(); the message and detail are
 * appended to *msg / *detail when those are non-NULL. */
int probe_run(const struct probe_spec *spec, uint64_t timeout_usec, struct buf *msg,
              struct buf *detail);
