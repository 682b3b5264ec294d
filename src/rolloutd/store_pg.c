/* SPDX-License-Identifier: MIT */
/* store_pg.c - the shared store for several rolloutd replicas: PostgreSQL through libpq.
 *
 * Queries use PQexecParams only (unnamed statements, no session state), so the query connection
 * may go through PgBouncer in transaction pooling mode.  LISTEN needs a session of its own, so
 * notifications use a second, direct connection (listen_conninfo).  Every commit first bumps
 * the revision row, which serialises writers across replicas, then checks the row version,
 * writes, audits and calls pg_notify('rolloutd', revision) in the same transaction. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "store.h"

#define PG_CHANNEL "rolloutd"

static const char schema[] =
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(7467305);" /* replicas starting together */
        "CREATE TABLE IF NOT EXISTS rolloutd_meta (name text PRIMARY KEY, value bigint NOT NULL);"
        "INSERT INTO rolloutd_meta (name, value) VALUES ('revision', 0), ('schema', 1)"
        "  ON CONFLICT DO NOTHING;"
        "CREATE TABLE IF NOT EXISTS rolloutd_items (kind text NOT NULL, key text NOT NULL,"
        "  version bigint NOT NULL, json text NOT NULL, PRIMARY KEY (kind, key));"
        "CREATE TABLE IF NOT EXISTS rolloutd_audit (id bigserial PRIMARY KEY,"
        "  revision bigint NOT NULL, kind text NOT NULL, key text NOT NULL,"
        "  action text NOT NULL, actor text NOT NULL, at_usec bigint NOT NULL,"
        "  before text, after text);"
        "CREATE INDEX IF NOT EXISTS rolloutd_audit_by_key ON rolloutd_audit (kind, key, id);"
        /* schema 2: why a rollout changed a flag; rollout rows; the controller's lease */
        "ALTER TABLE rolloutd_audit ADD COLUMN IF NOT EXISTS reason text;"
        "CREATE TABLE IF NOT EXISTS rolloutd_rollouts (key text PRIMARY KEY,"
        "  version bigint NOT NULL, json text NOT NULL);"
        "CREATE TABLE IF NOT EXISTS rolloutd_leases (name text PRIMARY KEY, holder text NOT NULL,"
        "  expires_at timestamptz NOT NULL);"
        "UPDATE rolloutd_meta SET value = 2 WHERE name = 'schema' AND value < 2;"
        "COMMIT;";

struct pgs {
    PGconn *conn;   /* queries (may be PgBouncer) */
    PGconn *listen; /* LISTEN (direct) */
    char *conninfo, *listen_conninfo;
};

static int pg_fail(PGconn *c, struct err *e, const char *what)
{
    char msg[200];

    (void)snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    return err_set(e, c && PQstatus(c) == CONNECTION_BAD ? -ECONNREFUSED : -EIO, 0, 0,
                   "postgres %s: %s", what, msg);
}

/* Reconnects a broken connection (PQreset blocks up to connect_timeout). */
static int pg_ensure(PGconn *c, struct err *e)
{
    if (PQstatus(c) == CONNECTION_OK)
        return 0;
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK)
        return pg_fail(c, e, "reconnect");
    return 0;
}

/* Runs a statement; 0 or -errno.  *ret_res (optional) gets the result (PQclear it). */
static int pg_exec(PGconn *c, const char *sql, int n, const char *const *params, PGresult **ret_res,
                   struct err *e)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int r;
        char msg[200];
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        (void)snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        r = err_set(e, PQstatus(c) == CONNECTION_BAD ? -ECONNREFUSED : -EIO, 0, 0,
                    "postgres: %s%s%s", msg, state ? " sqlstate " : "", state ? state : "");
        PQclear(res);
        return r;
    }
    if (ret_res)
        *ret_res = res;
    else
        PQclear(res);
    return 0;
}

static int parse_u64_col(PGresult *res, int row, int col, uint64_t *ret)
{
    if (PQgetisnull(res, row, col))
        return -EINVAL;
    return parse_u64(PQgetvalue(res, row, col), ret);
}

static char *col_dup(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static void pgs_close(struct store *s)
{
    struct pgs *p = s->impl;

    if (!p)
        return;
    PQfinish(p->conn);
    PQfinish(p->listen);
    free(p->conninfo);
    free(p->listen_conninfo);
    free(p);
    s->impl = NULL;
}

/* Runs sql, which returns the revision as its one row and column. */
static int pg_exec_revision(PGconn *c, const char *sql, uint64_t *ret, struct err *e)
{
    PGresult *res = NULL;
    int r;

    r = pg_exec(c, sql, 0, NULL, &res, e);
    if (r < 0)
        return r;
    r = PQntuples(res) == 1 ? parse_u64_col(res, 0, 0, ret) : -EIO;
    PQclear(res);
    return r < 0 ? err_set(e, -EIO, 0, 0, "postgres: no revision row") : 0;
}

static int pgs_revision(struct store *s, uint64_t *ret, struct err *e)
{
    struct pgs *p = s->impl;
    int r;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    return pg_exec_revision(p->conn, "SELECT value FROM rolloutd_meta WHERE name = 'revision'", ret,
                            e);
}

static int pgs_load(struct store *s, struct store_data *ret, struct err *e)
{
    struct pgs *p = s->impl;
    struct store_data d = { 0 };
    size_t cap[_STORE_KIND_MAX] = { 0 };
    PGresult *res = NULL;
    int r, n;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    /* One statement, one snapshot: the revision and the rows agree. */
    r = pg_exec(p->conn,
                "SELECT kind, key, version, json, (SELECT value FROM rolloutd_meta WHERE name = "
                "'revision') FROM rolloutd_items UNION ALL SELECT '', '', 0, '', (SELECT value "
                "FROM rolloutd_meta WHERE name = 'revision') ORDER BY 1, 2",
                0, NULL, &res, e);
    if (r < 0)
        return r;
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        const char *kind = PQgetvalue(res, i, 0);
        uint64_t version;

        if (!kind[0]) {
            r = parse_u64_col(res, i, 4, &d.revision);
            if (r < 0)
                goto out;
            continue;
        }
        if (parse_u64_col(res, i, 2, &version) < 0) {
            r = err_set(e, -EIO, 0, 0, "postgres: bad version in row");
            goto out;
        }
        r = store__data_add(&d, cap, kind, PQgetvalue(res, i, 1), version, PQgetvalue(res, i, 3));
        if (r < 0)
            goto out;
    }
    *ret = d;
    d = (struct store_data){ 0 };
    r = 0;
out:
    PQclear(res);
    store_data_release(&d);
    return r;
}

static int pgs_commit(struct store *s, const struct store_change *c, uint64_t *ret_revision,
                      struct err *e)
{
    struct pgs *p = s->impl;
    const char *kind = store_kind_name(c->kind);
    char rev_s[24], ver_s[24], at_s[24];
    PGresult *res = NULL;
    uint64_t rev = 0, cur = 0;
    bool exists;
    int r;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    r = pg_exec(p->conn, "BEGIN", 0, NULL, NULL, e);
    if (r < 0)
        return r;
    r = pg_exec_revision(p->conn,
                         "UPDATE rolloutd_meta SET value = value + 1 WHERE name = 'revision' "
                         "RETURNING value",
                         &rev, e);
    if (r < 0)
        goto fail;
    {
        const char *params[] = { kind, c->key };
        r = pg_exec(p->conn, "SELECT version FROM rolloutd_items WHERE kind = $1 AND key = $2", 2,
                    params, &res, e);
    }
    if (r < 0)
        goto fail;
    exists = PQntuples(res) == 1 && parse_u64_col(res, 0, 0, &cur) >= 0;
    PQclear(res);
    res = NULL;
    r = store__check_version(c, exists, cur, e);
    if (r < 0)
        goto fail;

    (void)snprintf(ver_s, sizeof ver_s, "%" PRIu64, c->version);
    if (c->json) {
        const char *params[] = { kind, c->key, ver_s, c->json };
        r = pg_exec(p->conn,
                    "INSERT INTO rolloutd_items (kind, key, version, json) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (kind, key) DO UPDATE SET version = $3, json = $4",
                    4, params, NULL, e);
    } else {
        const char *params[] = { kind, c->key };
        r = pg_exec(p->conn, "DELETE FROM rolloutd_items WHERE kind = $1 AND key = $2", 2, params,
                    NULL, e);
    }
    if (r < 0)
        goto fail;
    (void)snprintf(rev_s, sizeof rev_s, "%" PRIu64, rev);
    (void)snprintf(at_s, sizeof at_s, "%" PRIu64, now_realtime_usec());
    {
        const char *params[] = {
            rev_s,           kind,           c->key,   c->action, c->actor ? c->actor : "", at_s,
            c->audit_before, c->audit_after, c->reason
        };
        r = pg_exec(p->conn,
                    "INSERT INTO rolloutd_audit (revision, kind, key, action, actor, at_usec, "
                    "before, after, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    9, params, NULL, e);
    }
    if (r < 0)
        goto fail;
    {
        const char *params[] = { rev_s };
        r = pg_exec(p->conn, "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, params, NULL, e);
    }
    if (r < 0)
        goto fail;
    r = pg_exec(p->conn, "COMMIT", 0, NULL, NULL, e);
    if (r < 0)
        return r; /* outcome unknown when the connection died during COMMIT: not acknowledged */
    *ret_revision = rev;
    return 0;
fail:
    if (PQstatus(p->conn) == CONNECTION_OK)
        (void)pg_exec(p->conn, "ROLLBACK", 0, NULL, NULL, NULL);
    return r;
}

static int pgs_history(struct store *s, enum store_kind kind, const char *key, size_t limit,
                       struct store_audit **ret, size_t *ret_n, struct err *e)
{
    struct pgs *p = s->impl;
    struct store_audit *a;
    char lim[24];
    const char *params[] = { store_kind_name(kind), key, lim };
    PGresult *res = NULL;
    int r, n;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    (void)snprintf(lim, sizeof lim, "%zu", limit);
    r = pg_exec(
            p->conn,
            "SELECT * FROM (SELECT id, revision, at_usec, actor, action, before, after, reason FROM "
            "rolloutd_audit WHERE kind = $1 AND key = $2 ORDER BY id DESC LIMIT $3) t "
            "ORDER BY id",
            3, params, &res, e);
    if (r < 0)
        return r;
    n = PQntuples(res);
    a = calloc((size_t)n + 1, sizeof *a);
    if (!a) {
        PQclear(res);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        (void)parse_u64_col(res, i, 1, &a[i].revision);
        (void)parse_u64_col(res, i, 2, &a[i].at_usec);
        a[i].actor = col_dup(res, i, 3);
        a[i].action = col_dup(res, i, 4);
        a[i].before = col_dup(res, i, 5);
        a[i].after = col_dup(res, i, 6);
        a[i].reason = col_dup(res, i, 7);
    }
    PQclear(res);
    *ret = a;
    *ret_n = (size_t)n;
    return 0;
}

static int pgs_rollout_list(struct store *s, const char *key, struct store_row **ret, size_t *ret_n,
                            struct err *e)
{
    struct pgs *p = s->impl;
    const char *params[] = { key };
    PGresult *res = NULL;
    size_t cap = 0;
    int r, n;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    r = pg_exec(p->conn,
                key ? "SELECT key, version, json FROM rolloutd_rollouts WHERE key = $1"
                    : "SELECT key, version, json FROM rolloutd_rollouts ORDER BY key",
                key ? 1 : 0, key ? params : NULL, &res, e);
    if (r < 0)
        return r;
    n = PQntuples(res);
    for (int i = 0; r >= 0 && i < n; i++) {
        uint64_t version = 0;
        r = parse_u64_col(res, i, 1, &version);
        if (r >= 0)
            r = store__rows_add(ret, ret_n, &cap, PQgetvalue(res, i, 0), version,
                                PQgetvalue(res, i, 2));
    }
    PQclear(res);
    if (r >= 0 && key && *ret_n == 0)
        r = -ENOENT;
    if (r < 0) {
        store_rows_free(*ret, *ret_n);
        *ret = NULL;
        *ret_n = 0;
    }
    return r;
}

/* Runs a one-row write; 1 when it changed a row, 0 when none. */
static int pg_exec_changed(PGconn *c, const char *sql, int n, const char *const *params,
                           struct err *e)
{
    PGresult *res = NULL;
    int r = pg_exec(c, sql, n, params, &res, e);

    if (r < 0)
        return r;
    r = streq(PQcmdTuples(res), "1");
    PQclear(res);
    return r;
}

static int pgs_rollout_put(struct store *s, const char *key, uint64_t expect, const char *json,
                           struct err *e)
{
    struct pgs *p = s->impl;
    char ver_s[24];
    const char *params[] = { key, ver_s, json };
    int r;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    (void)snprintf(ver_s, sizeof ver_s, "%" PRIu64, expect);
    r = pg_exec_changed(p->conn,
                        expect ? "UPDATE rolloutd_rollouts SET version = version + 1, json = $3 "
                                 "WHERE key = $1 AND version = $2::bigint"
                               : "INSERT INTO rolloutd_rollouts (key, version, json) SELECT $1, "
                                 "1, $3 WHERE $2::bigint = 0 ON CONFLICT (key) DO NOTHING",
                        3, params, e);
    if (r < 0)
        return r;
    if (r == 1)
        return 0;
    return expect ? err_set(e, -ESTALE, 0, 0, "rollout '%s': version %" PRIu64 " is stale", key,
                            expect)
                  : -EEXIST;
}

static int pgs_lease(struct store *s, const char *name, const char *holder, uint64_t ttl_ms,
                     struct err *e)
{
    struct pgs *p = s->impl;
    char ttl_s[24];
    const char *params[] = { name, holder, ttl_s };
    int r;

    r = pg_ensure(p->conn, e);
    if (r < 0)
        return r;
    (void)snprintf(ttl_s, sizeof ttl_s, "%" PRIu64, ttl_ms);
    if (!ttl_ms) {
        r = pg_exec_changed(p->conn, "DELETE FROM rolloutd_leases WHERE name = $1 AND holder = $2",
                            2, params, e);
        return r < 0 ? r : 0;
    }
    /* The database's clock decides expiry, so replicas' clocks need not agree. */
    return pg_exec_changed(p->conn,
                           "INSERT INTO rolloutd_leases (name, holder, expires_at) VALUES ($1, $2, "
                           "clock_timestamp() + $3::bigint * interval '1 millisecond') "
                           "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
                           "expires_at = EXCLUDED.expires_at "
                           "WHERE rolloutd_leases.holder = EXCLUDED.holder "
                           "OR rolloutd_leases.expires_at < clock_timestamp()",
                           3, params, e);
}

static int listen_start(struct pgs *p, struct err *e)
{
    PGresult *res;

    if (PQstatus(p->listen) != CONNECTION_OK) {
        PQreset(p->listen);
        if (PQstatus(p->listen) != CONNECTION_OK)
            return pg_fail(p->listen, e, "LISTEN connection");
    }
    res = PQexec(p->listen, "LISTEN " PG_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        return pg_fail(p->listen, e, "LISTEN");
    }
    PQclear(res);
    return 0;
}

static int pgs_notify_fd(struct store *s)
{
    struct pgs *p = s->impl;
    return PQstatus(p->listen) == CONNECTION_OK ? PQsocket(p->listen) : -1;
}

static int pgs_notify_read(struct store *s, struct err *e)
{
    struct pgs *p = s->impl;
    PGnotify *n;
    int got = 0;

    if (PQstatus(p->listen) != CONNECTION_OK || PQconsumeInput(p->listen) == 0) {
        int r = listen_start(p, e);
        /* Notifications sent while we were away are lost: report "changed" so the caller
         * reloads once the connection is back. */
        return r < 0 ? r : 1;
    }
    while ((n = PQnotifies(p->listen))) {
        got = 1;
        PQfreemem(n);
    }
    return got;
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .load = pgs_load,
    .commit = pgs_commit,
    .history = pgs_history,
    .revision = pgs_revision,
    .rollout_list = pgs_rollout_list,
    .rollout_put = pgs_rollout_put,
    .lease = pgs_lease,
    .notify_fd = pgs_notify_fd,
    .notify_read = pgs_notify_read,
    .close = pgs_close,
};

int store__pg_open(const char *conninfo, const char *listen_conninfo, struct store *s,
                   struct err *e)
{
    struct pgs *p = calloc(1, sizeof *p);
    PGresult *res;
    int r;

    if (!p)
        return -ENOMEM;
    s->impl = p;
    s->ops = &pg_ops;
    p->conninfo = strdup(conninfo);
    p->listen_conninfo = strdup(listen_conninfo ? listen_conninfo : conninfo);
    if (!p->conninfo || !p->listen_conninfo) {
        r = -ENOMEM;
        goto fail;
    }
    p->conn = PQconnectdb(p->conninfo);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        r = pg_fail(p->conn, e, "connect");
        goto fail;
    }
    res = PQexec(p->conn, schema);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        r = pg_fail(p->conn, e, "schema");
        goto fail;
    }
    PQclear(res);
    p->listen = PQconnectdb(p->listen_conninfo);
    r = listen_start(p, e);
    if (r < 0)
        goto fail;
    return 0;
fail:
    pgs_close(s);
    s->ops = NULL;
    return r;
}
