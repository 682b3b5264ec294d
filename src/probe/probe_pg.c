/* SPDX-License-Identifier: MIT */
/* probe_pg.c - pg probe: libpq's non-blocking connect (PQconnectStartParams + PQconnectPoll)
 * followed by PQsendQuery and non-blocking result collection.  libpq may switch sockets while
 * connecting (several hosts or addresses, SSL/GSS fallbacks), so the fd is re-read with
 * PQsocket() after every step.  The PGconn is finished and every PGresult cleared before the
 * probe reports done.
 *
 * Results: 0 when every result is TUPLES_OK/COMMAND_OK; -ECONNREFUSED when nobody listens;
 * -EACCES when authentication failed; -EPROTO for any other connect failure or a failed query
 * (the message is libpq's first line). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "probe_int.h"

enum pg_phase {
    PG_CONNECTING,
    PG_SENDING,
    PG_RESULTS,
};

static void pg_fail_conn(struct probe *p)
{
    const char *m = PQerrorMessage(p->pg);
    char line[PROBE_MSG_MAX];
    int r = -EPROTO;

    probe__one_line(line, sizeof line, m);
    if (strstr(m, "Connection refused"))
        r = -ECONNREFUSED;
    else if (strstr(m, "authentication failed") || strstr(m, "password") ||
             strstr(m, "no pg_hba.conf entry"))
        r = -EACCES;
    probe__finish(p, r, "%s", line[0] ? line : "connection failed");
}

/* Arms the wait libpq asked for on its current socket. */
static void pg_wait(struct probe *p, short events)
{
    int fd = PQsocket(p->pg);

    if (fd < 0) {
        pg_fail_conn(p);
        return;
    }
    probe__wait(p, fd, events);
}

static void pg_start(struct probe *p)
{
    const struct probe_spec *s = p->spec;
    char port[12], timeout[24];
    uint64_t secs = (p->timeout_usec + 999999) / 1000000;
    const char *keys[12], *vals[12];
    unsigned n = 0;

    /* libpq ignores connect_timeout under PQconnectPoll (our deadline rules); it is passed for
     * the record and for any blocking reuse of these parameters.  Its minimum is 2s. */
    (void)snprintf(timeout, sizeof timeout, "%llu", (unsigned long long)(secs < 2 ? 2 : secs));
    keys[n] = "host", vals[n++] = probe__host(p);
    if (s->port) {
        (void)snprintf(port, sizeof port, "%u", (unsigned)s->port);
        keys[n] = "port", vals[n++] = port;
    }
    if (s->user && s->user[0])
        keys[n] = "user", vals[n++] = s->user;
    if (s->password)
        keys[n] = "password", vals[n++] = s->password;
    keys[n] = "dbname", vals[n++] = s->dbname && s->dbname[0] ? s->dbname : "postgres";
    keys[n] = "connect_timeout", vals[n++] = timeout;
    keys[n] = "application_name", vals[n++] = "infractl-probe";
    /* GSSAPI negotiation may consult a Kerberos cache synchronously; a probe has no use for
     * it. */
    keys[n] = "gssencmode", vals[n++] = "disable";
    keys[n] = NULL, vals[n] = NULL;

    p->pg = PQconnectStartParams(keys, vals, 0);
    if (!p->pg) {
        probe__finish(p, -ENOMEM, "out of memory");
        return;
    }
    if (PQstatus(p->pg) == CONNECTION_BAD) {
        pg_fail_conn(p);
        return;
    }
    p->pg_phase = PG_CONNECTING;
    /* libpq's contract: start as if PQconnectPoll() had returned PGRES_POLLING_WRITING. */
    pg_wait(p, POLLOUT);
}

static void pg_take_result(struct probe *p, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE) {
        int rows = PQntuples(res), cols = PQnfields(res);
        for (int i = 0; i < rows; i++) {
            if (p->detail.len > 0)
                probe__detail_append(p, "\n", 1);
            for (int j = 0; j < cols; j++) {
                if (j > 0)
                    probe__detail_append(p, "\t", 1);
                probe__detail_append(p, PQgetvalue(res, i, j), (size_t)PQgetlength(res, i, j));
            }
            p->pg_rows++;
        }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && p->pg_err == 0) {
        p->pg_err = -EPROTO;
        probe__one_line(p->pg_errmsg, sizeof p->pg_errmsg, PQresultErrorMessage(res));
        if (!p->pg_errmsg[0])
            (void)snprintf(p->pg_errmsg, sizeof p->pg_errmsg, "query failed: %s", PQresStatus(st));
    }
}

static void pg_step_send(struct probe *p, short revents);

static void pg_send(struct probe *p)
{
    const char *q = p->spec->query && p->spec->query[0] ? p->spec->query : "SELECT 1";

    if (PQsetnonblocking(p->pg, 1) != 0 || !PQsendQuery(p->pg, q)) {
        pg_fail_conn(p);
        return;
    }
    p->pg_phase = PG_SENDING;
    pg_step_send(p, 0); /* usually flushes the whole query at once */
}

static void pg_step_connect(struct probe *p)
{
    switch (PQconnectPoll(p->pg)) {
    case PGRES_POLLING_READING:
        pg_wait(p, POLLIN);
        return;
    case PGRES_POLLING_WRITING:
        pg_wait(p, POLLOUT);
        return;
    case PGRES_POLLING_OK:
        pg_send(p);
        return;
    default:
        pg_fail_conn(p);
        return;
    }
}

static void pg_step_send(struct probe *p, short revents)
{
    int r;

    if ((revents & POLLIN) && !PQconsumeInput(p->pg)) {
        pg_fail_conn(p);
        return;
    }
    r = PQflush(p->pg);
    if (r < 0) {
        pg_fail_conn(p);
        return;
    }
    if (r == 1) { /* libpq: wait for either direction, reading may unblock the server */
        pg_wait(p, POLLIN | POLLOUT);
        return;
    }
    p->pg_phase = PG_RESULTS;
    pg_wait(p, POLLIN);
}

static void pg_step_results(struct probe *p)
{
    PGresult *res;

    if (!PQconsumeInput(p->pg)) {
        pg_fail_conn(p);
        return;
    }
    while (!PQisBusy(p->pg)) {
        res = PQgetResult(p->pg);
        if (!res) {
            if (p->pg_err)
                probe__finish(p, p->pg_err, "%s", p->pg_errmsg);
            else
                probe__finish(p, 0, "query ok, %u row%s", p->pg_rows, p->pg_rows == 1 ? "" : "s");
            return;
        }
        pg_take_result(p, res);
        PQclear(res);
    }
    pg_wait(p, POLLIN);
}

static void pg_step(struct probe *p, short revents)
{
    switch (p->pg_phase) {
    case PG_CONNECTING:
        pg_step_connect(p);
        break;
    case PG_SENDING:
        pg_step_send(p, revents);
        break;
    default:
        pg_step_results(p);
        break;
    }
}

static void pg_release(struct probe *p)
{
    if (p->pg)
        PQfinish(p->pg);
    p->pg = NULL;
}

const struct probe_ops probe__pg_ops = {
    .start = pg_start,
    .step = pg_step,
    .release = pg_release,
};
