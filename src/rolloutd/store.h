/* SPDX-License-Identifier: MIT */
/* store.h - rolloutd's durable state: flags, segments and tokens as JSON rows with a version,
 * one store-wide revision counter, and an audit log.  Backends: SQLite (WAL, synchronous=FULL)
 * and PostgreSQL (libpq; LISTEN/NOTIFY tells other replicas about changes).
 *
 * A change is committed in one transaction that checks the row's version, writes the row, bumps
 * the revision and appends the audit entry; when store_commit() returns 0 the change is durable.
 * Not thread-safe: the caller serialises calls (rolloutd holds its state lock). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct err;

enum store_kind {
    STORE_FLAG,
    STORE_SEGMENT,
    STORE_TOKEN,
    _STORE_KIND_MAX,
};

/* "flag", "segment", "token". */
const char *store_kind_name(enum store_kind k);

struct store_row {
    char *key;
    uint64_t version;
    char *json;
};

/* Everything, as loaded at start-up or after another replica changed the store. */
struct store_data {
    uint64_t revision;
    struct store_row *rows[_STORE_KIND_MAX];
    size_t n_rows[_STORE_KIND_MAX];
};
void store_data_release(struct store_data *d);

struct store_change {
    enum store_kind kind;
    const char *key;
    /* The row's current version must be this; 0 = the row must not exist (create). */
    uint64_t expect_version;
    const char *json; /* the new row; NULL deletes it */
    uint64_t version; /* the new row's version */
    /* audit */
    const char *actor;                      /* token name */
    const char *action;                     /* "create", "update", "stage", "kill", "delete", ... */
    const char *audit_before, *audit_after; /* JSON texts or NULL */
    const char *reason;                     /* why (rollout decisions), or NULL */
};

struct store_audit {
    uint64_t revision;
    uint64_t at_usec; /* CLOCK_REALTIME */
    char *actor, *action, *before, *after;
    char *reason; /* NULL when the change gave none */
};

struct store;

/* spec: "sqlite:PATH" or "postgres:CONNINFO".  listen_conninfo (postgres only; NULL = the
 * same conninfo) is the direct connection for LISTEN (PgBouncer's transaction pooling drops
 * LISTEN).  Creates the schema when missing.  -EINVAL (bad spec), -EIO/-ECONNREFUSED with e. */
int store_open(const char *spec, const char *listen_conninfo, struct store **ret,
               struct err *e) WARN_UNUSED_RESULT;
struct store *store_close(struct store *s);
const char *store_backend(const struct store *s); /* "sqlite" or "postgres" */

int store_load(struct store *s, struct store_data *ret, struct err *e) WARN_UNUSED_RESULT;
/* Commits c; *ret_revision gets the new store revision.  -ENOENT (row missing), -EEXIST (create
 * of an existing row), -ESTALE (version mismatch), -EIO (database error; e says what). */
int store_commit(struct store *s, const struct store_change *c, uint64_t *ret_revision,
                 struct err *e) WARN_UNUSED_RESULT;
/* The audit entries of one row, oldest first, at most limit.  Caller frees with
 * store_audit_free(). */
int store_history(struct store *s, enum store_kind kind, const char *key, size_t limit,
                  struct store_audit **ret, size_t *ret_n, struct err *e) WARN_UNUSED_RESULT;
void store_audit_free(struct store_audit *a, size_t n);
/* The current revision in the database (cheap). */
int store_revision(struct store *s, uint64_t *ret, struct err *e) WARN_UNUSED_RESULT;

/* Rollouts (rollout plans and their progress, one row per flag key): version-checked writes
 * outside the revision and the audit log, because the controller writes one after every
 * analysis; the flag changes a rollout makes go through store_commit() like any other.
 * store_rollout_list(): every row (key NULL) or the one row of key (-ENOENT when none); caller
 * frees with store_rows_free().  store_rollout_put(): expect 0 creates the row (-EEXIST when it
 * exists), otherwise the row must have version expect (-ESTALE); the new version is expect + 1.
 * -EIO/-ECONNREFUSED with e for database errors. */
int store_rollout_list(struct store *s, const char *key, struct store_row **ret, size_t *ret_n,
                       struct err *e) WARN_UNUSED_RESULT;
int store_rollout_put(struct store *s, const char *key, uint64_t expect, const char *json,
                      struct err *e) WARN_UNUSED_RESULT;
void store_rows_free(struct store_row *rows, size_t n);

/* A named lease with expiry (one active rollout controller across replicas).  Acquires or renews
 * the lease for holder for ttl_ms (the database's clock under PostgreSQL); ttl_ms 0 releases it
 * when holder has it.  1 when holder holds it now, 0 when another holder's lease is live,
 * -errno with e. */
int store_lease(struct store *s, const char *name, const char *holder, uint64_t ttl_ms,
                struct err *e) WARN_UNUSED_RESULT;

/* Change notifications (postgres): an fd to poll for input, or -1 when the backend has none.
 * store_notify_read() consumes pending notifications; returns 1 when some arrived, 0 when none,
 * -errno when the LISTEN connection broke (call again later: it reconnects). */
int store_notify_fd(struct store *s);
int store_notify_read(struct store *s, struct err *e);

/* ===== Backends (store_sqlite.c, store_pg.c) ===== */

struct store_ops {
    const char *name;
    int (*load)(struct store *s, struct store_data *ret, struct err *e);
    int (*commit)(struct store *s, const struct store_change *c, uint64_t *ret_revision,
                  struct err *e);
    int (*history)(struct store *s, enum store_kind kind, const char *key, size_t limit,
                   struct store_audit **ret, size_t *ret_n, struct err *e);
    int (*revision)(struct store *s, uint64_t *ret, struct err *e);
    int (*rollout_list)(struct store *s, const char *key, struct store_row **ret, size_t *ret_n,
                        struct err *e);
    int (*rollout_put)(struct store *s, const char *key, uint64_t expect, const char *json,
                       struct err *e);
    int (*lease)(struct store *s, const char *name, const char *holder, uint64_t ttl_ms,
                 struct err *e);
    int (*notify_fd)(struct store *s);
    int (*notify_read)(struct store *s, struct err *e);
    void (*close)(struct store *s);
};

struct store {
    const struct store_ops *ops;
    void *impl;
};

/* Shared by the backends (store.c). */
/* The version check of store_commit(), given whether the row exists and its version: 0,
 * -EEXIST, -ENOENT or -ESTALE (with e). */
int store__check_version(const struct store_change *c, bool exists, uint64_t cur,
                         struct err *e) WARN_UNUSED_RESULT;
/* Appends a copy of one loaded row to d.  Rows of a kind this rolloutd does not know (a newer
 * one's) are skipped.  cap: the rows allocated per kind, zeroed by the caller before the first
 * row.  0 or -ENOMEM (also for a NULL argument; d keeps what it had and
 * store_data_release() frees it). */
int store__data_add(struct store_data *d, size_t cap[_STORE_KIND_MAX], const char *kind,
                    const char *key, uint64_t version, const char *json) WARN_UNUSED_RESULT;

/* Appends a copy of one row to *rows (cap: allocated rows).  0 or -ENOMEM. */
int store__rows_add(struct store_row **rows, size_t *n, size_t *cap, const char *key,
                    uint64_t version, const char *json) WARN_UNUSED_RESULT;

int store__sqlite_open(const char *path, struct store *s, struct err *e);
int store__pg_open(const char *conninfo, const char *listen_conninfo, struct store *s,
                   struct err *e);
