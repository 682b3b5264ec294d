/* SPDX-License-Identifier: MIT */
/* store_sqlite.c - the embedded default store: one SQLite file in WAL mode with
 * synchronous=FULL, so a commit that returned is on disk (the WAL is fsynced at each commit). */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fd.h"
#include "core/time.h"
#include "store.h"

enum {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_GET_VERSION,
    STMT_UPSERT,
    STMT_DELETE,
    STMT_BUMP,
    STMT_REVISION,
    STMT_AUDIT,
    STMT_HISTORY,
    STMT_LOAD,
    STMT_ROLLOUT_LIST,
    STMT_ROLLOUT_GET,
    STMT_ROLLOUT_INSERT,
    STMT_ROLLOUT_UPDATE,
    STMT_LEASE,
    STMT_LEASE_RELEASE,
    _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_GET_VERSION] = "SELECT version FROM items WHERE kind = ?1 AND key = ?2",
    [STMT_UPSERT] = "INSERT INTO items (kind, key, version, json) VALUES (?1, ?2, ?3, ?4) "
                    "ON CONFLICT (kind, key) DO UPDATE SET version = ?3, json = ?4",
    [STMT_DELETE] = "DELETE FROM items WHERE kind = ?1 AND key = ?2",
    [STMT_BUMP] = "UPDATE meta SET value = value + 1 WHERE name = 'revision'",
    [STMT_REVISION] = "SELECT value FROM meta WHERE name = 'revision'",
    [STMT_AUDIT] = "INSERT INTO audit (revision, kind, key, action, actor, at_usec, before, after, "
                   "reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_HISTORY] = "SELECT revision, at_usec, actor, action, before, after, reason FROM audit "
                     "WHERE kind = ?1 AND key = ?2 ORDER BY id DESC LIMIT ?3",
    [STMT_LOAD] = "SELECT kind, key, version, json FROM items ORDER BY kind, key",
    [STMT_ROLLOUT_LIST] = "SELECT key, version, json FROM rollouts ORDER BY key",
    [STMT_ROLLOUT_GET] = "SELECT key, version, json FROM rollouts WHERE key = ?1",
    [STMT_ROLLOUT_INSERT] = "INSERT INTO rollouts (key, version, json) VALUES (?1, 1, ?3) "
                            "ON CONFLICT (key) DO NOTHING",
    [STMT_ROLLOUT_UPDATE] = "UPDATE rollouts SET version = version + 1, json = ?3 "
                            "WHERE key = ?1 AND version = ?2",
    [STMT_LEASE] = "INSERT INTO leases (name, holder, expires_usec) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                   "expires_usec = excluded.expires_usec "
                   "WHERE leases.holder = excluded.holder OR leases.expires_usec < ?4",
    [STMT_LEASE_RELEASE] = "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
};

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('schema', 1);"
        "CREATE TABLE IF NOT EXISTS items (kind TEXT NOT NULL, key TEXT NOT NULL,"
        "  version INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, key));"
        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  revision INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,"
        "  action TEXT NOT NULL, actor TEXT NOT NULL, at_usec INTEGER NOT NULL,"
        "  before TEXT, after TEXT);"
        "CREATE INDEX IF NOT EXISTS audit_by_key ON audit (kind, key, id);"
        "CREATE TABLE IF NOT EXISTS rollouts (key TEXT PRIMARY KEY, version INTEGER NOT NULL,"
        "  json TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL,"
        "  expires_usec INTEGER NOT NULL);";

/* Schema 2 added audit.reason (why a rollout changed a flag); databases of schema 1 get it. */
static const char migrate_2[] = "ALTER TABLE audit ADD COLUMN reason TEXT;"
                                "UPDATE meta SET value = 2 WHERE name = 'schema';";

struct sq {
    sqlite3 *db;
    sqlite3_stmt *stmt[_STMT_MAX];
};

static int sq_fail(struct sq *q, struct err *e, const char *what)
{
    return err_set(e, -EIO, 0, 0, "sqlite %s: %s", what, sqlite3_errmsg(q->db));
}

static void sq_close(struct store *s)
{
    struct sq *q = s->impl;

    if (!q)
        return;
    for (unsigned i = 0; i < _STMT_MAX; i++)
        (void)sqlite3_finalize(q->stmt[i]);
    (void)sqlite3_close(q->db);
    free(q);
    s->impl = NULL;
}

static sqlite3_stmt *stmt(struct sq *q, unsigned i)
{
    (void)sqlite3_reset(q->stmt[i]);
    (void)sqlite3_clear_bindings(q->stmt[i]);
    return q->stmt[i];
}

static int step_done(struct sq *q, unsigned i, struct err *e)
{
    int rc = sqlite3_step(q->stmt[i]);

    (void)sqlite3_reset(q->stmt[i]);
    if (rc != SQLITE_DONE)
        return sq_fail(q, e, stmt_sql[i]);
    return 0;
}

static int read_revision(struct sq *q, uint64_t *ret, struct err *e)
{
    sqlite3_stmt *st = stmt(q, STMT_REVISION);
    int rc = sqlite3_step(st);

    if (rc != SQLITE_ROW) {
        (void)sqlite3_reset(st);
        return sq_fail(q, e, "reading the revision");
    }
    *ret = (uint64_t)sqlite3_column_int64(st, 0);
    (void)sqlite3_reset(st);
    return 0;
}

static int sq_revision(struct store *s, uint64_t *ret, struct err *e)
{
    return read_revision(s->impl, ret, e);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

static int sq_load(struct store *s, struct store_data *ret, struct err *e)
{
    struct sq *q = s->impl;
    struct store_data d = { 0 };
    sqlite3_stmt *st;
    size_t cap[_STORE_KIND_MAX] = { 0 };
    int rc, r;

    /* One read transaction: rows and revision agree. */
    if (sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(q, e, "BEGIN");
    r = read_revision(q, &d.revision, e);
    if (r < 0)
        goto out;
    st = stmt(q, STMT_LOAD);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        r = store__data_add(&d, cap, (const char *)sqlite3_column_text(st, 0),
                            (const char *)sqlite3_column_text(st, 1),
                            (uint64_t)sqlite3_column_int64(st, 2),
                            (const char *)sqlite3_column_text(st, 3));
        if (r < 0)
            goto out;
    }
    (void)sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        r = sq_fail(q, e, "loading items");
        goto out;
    }
    *ret = d;
    d = (struct store_data){ 0 };
    r = 0;
out:
    (void)sqlite3_reset(q->stmt[STMT_LOAD]);
    (void)sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    store_data_release(&d);
    return r;
}

static int sq_commit(struct store *s, const struct store_change *c, uint64_t *ret_revision,
                     struct err *e)
{
    struct sq *q = s->impl;
    const char *kind = store_kind_name(c->kind);
    sqlite3_stmt *st;
    uint64_t rev = 0, cur = 0;
    bool exists = false;
    int rc, r;

    r = step_done(q, STMT_BEGIN, e);
    if (r < 0)
        return r;
    st = stmt(q, STMT_GET_VERSION);
    (void)sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, c->key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        exists = true;
        cur = (uint64_t)sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        r = sq_fail(q, e, "reading the version");
    }
    (void)sqlite3_reset(st);
    if (r >= 0)
        r = store__check_version(c, exists, cur, e);
    if (r < 0)
        goto fail;

    if (c->json) {
        st = stmt(q, STMT_UPSERT);
        (void)sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 2, c->key, -1, SQLITE_STATIC);
        (void)sqlite3_bind_int64(st, 3, (sqlite3_int64)c->version);
        (void)sqlite3_bind_text(st, 4, c->json, -1, SQLITE_STATIC);
        r = step_done(q, STMT_UPSERT, e);
    } else {
        st = stmt(q, STMT_DELETE);
        (void)sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 2, c->key, -1, SQLITE_STATIC);
        r = step_done(q, STMT_DELETE, e);
    }
    if (r < 0)
        goto fail;
    (void)stmt(q, STMT_BUMP);
    r = step_done(q, STMT_BUMP, e);
    if (r >= 0)
        r = read_revision(q, &rev, e);
    if (r < 0)
        goto fail;
    st = stmt(q, STMT_AUDIT);
    (void)sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
    (void)sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 3, c->key, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 4, c->action, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 5, c->actor ? c->actor : "", -1, SQLITE_STATIC);
    (void)sqlite3_bind_int64(st, 6, (sqlite3_int64)now_realtime_usec());
    if (c->audit_before)
        (void)sqlite3_bind_text(st, 7, c->audit_before, -1, SQLITE_STATIC);
    if (c->audit_after)
        (void)sqlite3_bind_text(st, 8, c->audit_after, -1, SQLITE_STATIC);
    if (c->reason)
        (void)sqlite3_bind_text(st, 9, c->reason, -1, SQLITE_STATIC);
    r = step_done(q, STMT_AUDIT, e);
    if (r < 0)
        goto fail;
    r = step_done(q, STMT_COMMIT, e);
    if (r < 0)
        goto fail;
    *ret_revision = rev;
    return 0;
fail:
    (void)step_done(q, STMT_ROLLBACK, NULL);
    return r;
}

static int sq_history(struct store *s, enum store_kind kind, const char *key, size_t limit,
                      struct store_audit **ret, size_t *ret_n, struct err *e)
{
    struct sq *q = s->impl;
    struct store_audit *a = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = stmt(q, STMT_HISTORY);
    int rc;

    (void)sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    (void)sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct store_audit *p = realloc(a, nc * sizeof *p);
            if (!p) {
                (void)sqlite3_reset(st);
                store_audit_free(a, n);
                return -ENOMEM;
            }
            a = p;
            cap = nc;
        }
        a[n] = (struct store_audit){
            .revision = (uint64_t)sqlite3_column_int64(st, 0),
            .at_usec = (uint64_t)sqlite3_column_int64(st, 1),
            .actor = col_dup(st, 2),
            .action = col_dup(st, 3),
            .before = col_dup(st, 4),
            .after = col_dup(st, 5),
            .reason = col_dup(st, 6),
        };
        n++;
    }
    (void)sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_audit_free(a, n);
        return sq_fail(q, e, "reading the history");
    }
    /* newest first from the query; callers want oldest first */
    for (size_t i = 0; i < n / 2; i++) {
        struct store_audit t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
    *ret = a;
    *ret_n = n;
    return 0;
}

static int sq_rollout_list(struct store *s, const char *key, struct store_row **ret, size_t *ret_n,
                           struct err *e)
{
    struct sq *q = s->impl;
    sqlite3_stmt *st = stmt(q, key ? STMT_ROLLOUT_GET : STMT_ROLLOUT_LIST);
    size_t cap = 0;
    int rc, r = 0;

    if (key)
        (void)sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        r = store__rows_add(ret, ret_n, &cap, (const char *)sqlite3_column_text(st, 0),
                            (uint64_t)sqlite3_column_int64(st, 1),
                            (const char *)sqlite3_column_text(st, 2));
    (void)sqlite3_reset(st);
    if (r >= 0 && rc != SQLITE_DONE)
        r = sq_fail(q, e, "reading rollouts");
    if (r >= 0 && key && *ret_n == 0)
        r = -ENOENT;
    if (r < 0) {
        store_rows_free(*ret, *ret_n);
        *ret = NULL;
        *ret_n = 0;
    }
    return r;
}

static int sq_rollout_put(struct store *s, const char *key, uint64_t expect, const char *json,
                          struct err *e)
{
    struct sq *q = s->impl;
    unsigned i = expect ? STMT_ROLLOUT_UPDATE : STMT_ROLLOUT_INSERT;
    sqlite3_stmt *st = stmt(q, i);
    int r;

    (void)sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    (void)sqlite3_bind_int64(st, 2, (sqlite3_int64)expect);
    (void)sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    r = step_done(q, i, e);
    if (r < 0)
        return r;
    if (sqlite3_changes(q->db) == 1)
        return 0;
    return expect ? err_set(e, -ESTALE, 0, 0, "rollout '%s': version %llu is stale", key,
                            (unsigned long long)expect)
                  : -EEXIST;
}

static int sq_lease(struct store *s, const char *name, const char *holder, uint64_t ttl_ms,
                    struct err *e)
{
    struct sq *q = s->impl;
    uint64_t now = now_realtime_usec();
    unsigned i = ttl_ms ? STMT_LEASE : STMT_LEASE_RELEASE;
    sqlite3_stmt *st = stmt(q, i);
    int r;

    (void)sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
    (void)sqlite3_bind_int64(st, 3, (sqlite3_int64)(now + ttl_ms * 1000));
    (void)sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
    r = step_done(q, i, e);
    if (r < 0)
        return r;
    return ttl_ms && sqlite3_changes(q->db) == 1;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .load = sq_load,
    .commit = sq_commit,
    .history = sq_history,
    .revision = sq_revision,
    .rollout_list = sq_rollout_list,
    .rollout_put = sq_rollout_put,
    .lease = sq_lease,
    .notify_fd = NULL,
    .notify_read = NULL,
    .close = sq_close,
};

static int sq_migrate(struct sq *q, const char *path, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int64_t version = 0;

    if (sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE name = 'schema'", -1, &st, NULL) ==
                SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int64(st, 0);
    (void)sqlite3_finalize(st);
    if (version >= 2)
        return 0;
    if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(q->db, migrate_2, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int r = err_set(e, -EIO, 0, 0, "cannot migrate sqlite database '%s' to schema 2: %s", path,
                        sqlite3_errmsg(q->db));
        (void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

int store__sqlite_open(const char *path, struct store *s, struct err *e)
{
    struct sq *q;
    int fd, r;

    /* Token hashes live here: create the file 0600 before SQLite does (0644). */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, -errno, 0, 0, "open() '%s' failed: %s", path, strerror(errno));
    (void)fd_close(fd);
    q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    s->impl = q;
    s->ops = &sqlite_ops;
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        r = err_set(e, -EIO, 0, 0, "cannot open sqlite database '%s': %s", path,
                    q->db ? sqlite3_errmsg(q->db) : "out of memory");
        goto fail;
    }
    (void)sqlite3_busy_timeout(q->db, 5000);
    if (sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(q->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(q->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        r = err_set(e, -EIO, 0, 0, "cannot initialise sqlite database '%s': %s", path,
                    sqlite3_errmsg(q->db));
        goto fail;
    }
    r = sq_migrate(q, path, e);
    if (r < 0)
        goto fail;
    for (unsigned i = 0; i < _STMT_MAX; i++)
        if (sqlite3_prepare_v2(q->db, stmt_sql[i], -1, &q->stmt[i], NULL) != SQLITE_OK) {
            r = err_set(e, -EIO, 0, 0, "sqlite prepare '%s': %s", stmt_sql[i],
                        sqlite3_errmsg(q->db));
            goto fail;
        }
    return 0;
fail:
    sq_close(s);
    s->ops = NULL;
    return r;
}
