/* SPDX-License-Identifier: MIT */
/* probe_int.h - module-private probe internals: the object layout, the per-type operation
 * table and the helpers shared by probe.c and the probe_<type>.c files.  Tests may include it.
 *
 * Life cycle: probe_start() fills the common part and calls ops->start(), which either
 * arms a wait (probe__wait()) or finishes at once (probe__finish()).  probe_step() forwards
 * poll() revents to ops->step() and enforces the deadline.  probe__finish() records the result
 * once and calls ops->release(), which frees every type resource (sockets, PGconn, reader,
 * child process) right away, so a finished probe holds no fd or child.  ops->release() must be
 * idempotent: probe_free() calls it again for probes that never finished. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/macro.h"
#include "probe.h"

#define PROBE_DETAIL_MAX  ((size_t)1024 * 1024) /* any probe's detail */
#define PROBE_EXEC_OUTPUT ((size_t)16 * 1024)   /* exec: captured stdout+stderr */
#define PROBE_HTTP_MAX    ((size_t)1024 * 1024) /* http: whole response read */
#define PROBE_REDIS_MAX   ((size_t)1024 * 1024) /* redis: bytes read before giving up */
#define PROBE_MSG_MAX     512

struct pg_conn;     /* libpq PGconn */
struct redisReader; /* hiredis reader */
struct bgjob;
struct probe_kafka_call; /* probe_kafka.c: the argument of the probe's bgjob */
struct kfk_probe_result;
struct err;

struct probe_ops {
    void (*start)(struct probe *p);
    void (*step)(struct probe *p, short revents);
    void (*release)(struct probe *p);
};

/* A non-blocking TCP connection (tcp, http, redis). */
struct probe_net {
    struct addrinfo *ai_list; /* owned; freed once connected or failed */
    struct addrinfo *ai_next; /* next address to try after a failure */
    int fd;
    bool connected;
    char addr[300]; /* "host:port" for messages */
    struct buf out; /* bytes to send */
    size_t out_off; /* bytes of out already sent */
};

struct probe {
    const struct probe_spec *spec; /* borrowed */
    const struct probe_ops *ops;
    uint64_t timeout_usec, start_usec, deadline_usec, end_usec;
    bool done;
    int result;
    char message[PROBE_MSG_MAX];
    struct buf detail;
    int fd; /* what probe_fd() reports */
    short events;

    struct probe_net net;

    /* http */
    struct buf http_in;

    /* pg */
    struct pg_conn *pg;
    int pg_phase;
    int pg_poll; /* last PostgresPollingStatusType */
    unsigned pg_rows;
    int pg_err;
    char pg_errmsg[PROBE_MSG_MAX];

    /* redis */
    struct redisReader *rds_reader;
    unsigned rds_skip; /* replies to swallow before the command's (AUTH) */
    size_t rds_read;   /* total bytes read */

    /* exec: the child is its own process-group leader (pgid == pid) */
    pid_t exec_pid; /* > 0 until reaped */
    int exec_pidfd;
    int exec_out;        /* read end of the stdout+stderr pipe, -1 after EOF */
    int exec_epfd;       /* epoll over exec_out and exec_pidfd: the one fd the caller polls */
    size_t exec_dropped; /* output bytes beyond PROBE_EXEC_OUTPUT */

    /* kafka: the bgjob that runs kfk_probe() (probe_kafka.c) */
    struct bgjob *kafka_job;
    struct probe_kafka_call *kafka_call; /* the job's: read once the job is done */
    int kafka_fd;                        /* the job's fd (closed by bgjob_release()) */
};

extern const struct probe_ops probe__tcp_ops;
extern const struct probe_ops probe__http_ops;
extern const struct probe_ops probe__pg_ops;
extern const struct probe_ops probe__redis_ops;
extern const struct probe_ops probe__exec_ops;
extern const struct probe_ops probe__kafka_ops;

/* What a kafka probe's thread runs: kfk_probe() unless a test swaps in a fake (to check the
 * thread's life cycle under ThreadSanitizer, which cannot follow librdkafka's glibc C11
 * threads).  Read by probe_start() only, on the caller's thread. */
typedef int (*probe_kafka_fn)(const char *bootstrap, uint64_t timeout_usec,
                              struct kfk_probe_result *ret, struct err *reterr);
extern probe_kafka_fn probe__kafka_run;

/* Records the result (first call wins), stamps the end time, drops the wait and releases the
 * type resources.  The message is squashed to one line. */
void probe__finish(struct probe *p, int r, const char *fmt, ...) PRINTF(3, 4);
/* Sets what probe_fd()/probe_events() report. */
void probe__wait(struct probe *p, int fd, short events);
/* Appends to the detail, silently truncating at PROBE_DETAIL_MAX. */
void probe__detail_append(struct probe *p, const void *data, size_t n);
/* spec->host or "127.0.0.1". */
const char *probe__host(const struct probe *p);
/* Copies the first non-empty line of s (trailing blanks removed) into dst. */
void probe__one_line(char *dst, size_t n, const char *s);

/* ===== probe_net.c: shared non-blocking TCP client ===== */

/* Resolves host (numeric first; names such as "localhost" through getaddrinfo) and starts a
 * non-blocking connect; arms a POLLOUT wait.  Finishes the probe on failure. */
void probe__net_start(struct probe *p, uint16_t port);
/* Advances a pending connect.  Returns 1 when the connection is established (once), 0 while
 * still connecting, -1 when the probe was finished with an error. */
int probe__net_connect_step(struct probe *p, short revents);
/* Sends what is left of net.out.  1 = all sent, 0 = would block, -1 = finished with an error. */
int probe__net_flush(struct probe *p);
/* Reads what is available into in (up to its max).  Returns 1 on EOF, 0 when it would block,
 * -ENOBUFS when in is full, -1 when the probe was finished with an error. */
int probe__net_read(struct probe *p, struct buf *in);
/* Closes the socket and frees the address list and the output buffer. */
void probe__net_release(struct probe *p);
