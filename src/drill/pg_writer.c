/* SPDX-License-Identifier: MIT */
/* pg_writer.c - the workload recorder: one thread inserting unique increasing ids through the
 * production write path, every operation recorded with its outcome.  Only what the server
 * confirmed counts as acknowledged; an answer that never came (a timeout, a connection that
 * broke after the INSERT was sent) is "unknown", because the INSERT may have committed.  A
 * write that times out is never cancelled: PostgreSQL turns a cancelled wait for synchronous
 * replication into a local commit reported as success (research/spike-ha-fast.md); the
 * connection is closed instead. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "core/alloc.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"

struct pg_writer {
    char *conninfo, *run;
    uint64_t interval_usec, op_timeout_usec;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint acked;
    pthread_mutex_t lock; /* ops */
    struct drill_op *ops;
    size_t n, cap;
};

static void sleep_until(uint64_t t)
{
    uint64_t now = now_usec();

    if (t > now) {
        struct timespec ts = { .tv_sec = (time_t)((t - now) / USEC_PER_SEC),
                               .tv_nsec = (long)((t - now) % USEC_PER_SEC) * 1000 };
        (void)nanosleep(&ts, NULL);
    }
}

static void record(struct pg_writer *w, const struct drill_op *op)
{
    pthread_mutex_lock(&w->lock);
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->ops = xrealloc(w->ops, w->cap * sizeof *w->ops);
    }
    w->ops[w->n++] = *op;
    pthread_mutex_unlock(&w->lock);
    if (op->result == DRILL_OP_OK)
        atomic_fetch_add(&w->acked, 1);
}

/* Definite failures: the statement was refused or rolled back, nothing committed. */
static bool definitely_failed(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return state && (streq(state, "25006")      /* read_only_sql_transaction */
                     || streq(state, "40001")   /* serialization_failure */
                     || streq(state, "40P01")   /* deadlock_detected */
                     || streq(state, "23505")); /* unique_violation */
}

/* Sends one INSERT and waits for its outcome until deadline.  Returns the outcome; *broken is
 * set when the connection must be dropped. */
static enum drill_op_result insert(struct pg_writer *w, PGconn *c, int64_t id, uint64_t deadline,
                                   bool *broken, char *server, size_t server_size)
{
    char idbuf[24];
    const char *params[2] = { w->run, idbuf };
    enum drill_op_result result = DRILL_OP_UNKNOWN;
    bool got = false;

    (void)snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
    /* The server that acknowledged it (the node's address and port, whatever the path): the
     * split-brain check asks whether two primaries ever acknowledged writes by turns. */
    if (!PQsendQueryParams(c,
                           "INSERT INTO drill_writes (run, id) VALUES ($1, $2) RETURNING "
                           "host(inet_server_addr()) || ':' || inet_server_port()",
                           2, NULL, params, NULL, NULL, 0)) {
        *broken = true;
        return DRILL_OP_FAIL; /* not sent */
    }
    for (;;) {
        PGresult *res;

        while (!PQisBusy(c)) {
            res = PQgetResult(c);
            if (!res) {
                *broken = *broken || !got || PQstatus(c) != CONNECTION_OK;
                return got ? result : DRILL_OP_UNKNOWN;
            }
            got = true;
            if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                result = DRILL_OP_OK;
                if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
                    (void)snprintf(server, server_size, "%s", PQgetvalue(res, 0, 0));
            } else
                result = definitely_failed(res) ? DRILL_OP_FAIL : DRILL_OP_UNKNOWN;
            if (result != DRILL_OP_OK)
                *broken = true; /* start afresh after any error: PgBouncer may have cut it */
            PQclear(res);
        }
        {
            uint64_t now = now_usec();
            struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
            int ms = now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);

            if (now >= deadline || poll(&p, 1, ms) == 0) {
                *broken = true;
                return DRILL_OP_UNKNOWN; /* no answer in time: closed, never cancelled */
            }
            if (!PQconsumeInput(c)) {
                *broken = true;
                return DRILL_OP_UNKNOWN;
            }
        }
    }
}

/* Server notices ("canceling the wait for synchronous replication ...") belong to the record,
 * not to the terminal: the outcome of the operation says what happened. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void *writer_main(void *userdata)
{
    struct pg_writer *w = userdata;
    uint64_t next = now_usec();
    PGconn *c = NULL;
    int64_t id = 0;

    while (!atomic_load(&w->stop)) {
        struct drill_op op;
        bool broken = false;

        sleep_until(next);
        next += w->interval_usec;
        if (next < now_usec())
            next = now_usec() + w->interval_usec; /* no burst after a long outage */
        if (!c) {
            c = PQconnectdb(w->conninfo);
            if (PQstatus(c) != CONNECTION_OK || PQsetnonblocking(c, 1) != 0) {
                PQfinish(c);
                c = NULL;
                continue; /* no operation was attempted */
            }
            (void)PQsetNoticeProcessor(c, ignore_notice, NULL);
        }
        op = (struct drill_op){ .id = ++id, .invoke_usec = now_usec() };
        op.result = insert(w, c, op.id, op.invoke_usec + w->op_timeout_usec, &broken, op.server,
                           sizeof op.server);
        op.done_usec = now_usec();
        record(w, &op);
        if (broken) {
            PQfinish(c);
            c = NULL;
        }
    }
    PQfinish(c);
    return NULL;
}

struct pg_writer *pg_writer_start(const char *conninfo, const char *run, uint64_t interval_usec,
                                  uint64_t op_timeout_usec)
{
    struct pg_writer *w = xcalloc(1, sizeof *w);

    w->conninfo = xstrdup(conninfo);
    w->run = xstrdup(run);
    w->interval_usec = interval_usec;
    w->op_timeout_usec = op_timeout_usec;
    atomic_init(&w->stop, false);
    atomic_init(&w->acked, 0);
    if (pthread_mutex_init(&w->lock, NULL) != 0 ||
        pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        free(w->conninfo);
        free(w->run);
        free(w);
        return NULL;
    }
    return w;
}

unsigned pg_writer_acked(struct pg_writer *w)
{
    return atomic_load(&w->acked);
}

size_t pg_writer_finish(struct pg_writer *w, struct drill_op **ret_ops)
{
    size_t n;

    atomic_store(&w->stop, true);
    (void)pthread_join(w->thread, NULL);
    (void)pthread_mutex_destroy(&w->lock);
    n = w->n;
    *ret_ops = w->ops;
    free(w->conninfo);
    free(w->run);
    free(w);
    return n;
}

/* Connects, runs sql with params and expects a result of status want: 0 with *ret (caller
 * PQclear()s it), or -EIO with the error's first line in msg. */
static int query(const char *conninfo, const char *sql, int n, const char *const *params,
                 ExecStatusType want, PGresult **ret, char *msg, size_t msg_size)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = NULL;
    int r = -EIO;

    if (PQstatus(c) == CONNECTION_OK) {
        (void)PQsetNoticeProcessor(c, ignore_notice, NULL); /* "already exists, skipping" */
        res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == want)
            r = 0;
    }
    if (r < 0) {
        (void)snprintf(msg, msg_size, "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        PQclear(res);
        res = NULL;
    }
    PQfinish(c);
    *ret = res;
    return r;
}

int pg_exec_simple(const char *conninfo, const char *sql, char *msg, size_t msg_size)
{
    PGresult *res;
    int r = query(conninfo, sql, 0, NULL, PGRES_COMMAND_OK, &res, msg, msg_size);

    PQclear(res);
    return r;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

int pg_read_ids(const char *conninfo, const char *run, int64_t **ret_ids, char *msg,
                size_t msg_size)
{
    const char *params[1] = { run };
    PGresult *res;
    int64_t *ids;
    int n, r;

    r = query(conninfo, "SELECT id FROM drill_writes WHERE run = $1", 1, params, PGRES_TUPLES_OK,
              &res, msg, msg_size);
    if (r < 0)
        return r;
    n = PQntuples(res);
    ids = xcalloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++) {
        int64_t v;

        if (parse_i64(PQgetvalue(res, i, 0), &v) < 0) {
            (void)snprintf(msg, msg_size, "bad id '%s'", PQgetvalue(res, i, 0));
            free(ids);
            PQclear(res);
            return -EIO;
        }
        ids[i] = v;
    }
    PQclear(res);
    qsort(ids, (size_t)n, sizeof *ids, cmp_i64);
    *ret_ids = ids;
    return n;
}
