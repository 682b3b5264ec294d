/* SPDX-License-Identifier: MIT */
/* store.c - backend selection from "sqlite:PATH" / "postgres:CONNINFO" and the shared parts. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/str.h"

const char *store_kind_name(enum store_kind k)
{
    static const char *const names[_STORE_KIND_MAX] = {
        [STORE_FLAG] = "flag",
        [STORE_SEGMENT] = "segment",
        [STORE_TOKEN] = "token",
    };
    return (unsigned)k < _STORE_KIND_MAX ? names[k] : NULL;
}

static int kind_from_name(const char *name)
{
    for (unsigned k = 0; k < _STORE_KIND_MAX; k++)
        if (strcmp(store_kind_name(k), name) == 0)
            return (int)k;
    return -EINVAL;
}

int store__check_version(const struct store_change *c, bool exists, uint64_t cur, struct err *e)
{
    if (exists && c->expect_version == 0)
        return -EEXIST;
    if (!exists && c->expect_version != 0)
        return -ENOENT;
    if (exists && cur != c->expect_version)
        return err_set(e, -ESTALE, 0, 0, "version %" PRIu64 " is stale, current is %" PRIu64,
                       c->expect_version, cur);
    return 0;
}

int store__rows_add(struct store_row **rows, size_t *n, size_t *cap, const char *key,
                    uint64_t version, const char *json)
{
    struct store_row *row;

    if (!key || !json) /* the columns are NOT NULL: a backend's out-of-memory */
        return -ENOMEM;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct store_row *p = realloc(*rows, nc * sizeof *p);
        if (!p)
            return -ENOMEM;
        *rows = p;
        *cap = nc;
    }
    row = &(*rows)[*n];
    *row = (struct store_row){ .key = strdup(key), .version = version, .json = strdup(json) };
    (*n)++;
    return row->key && row->json ? 0 : -ENOMEM;
}

int store__data_add(struct store_data *d, size_t cap[_STORE_KIND_MAX], const char *kind,
                    const char *key, uint64_t version, const char *json)
{
    int k;

    if (!kind)
        return -ENOMEM;
    k = kind_from_name(kind);
    if (k < 0)
        return 0;
    return store__rows_add(&d->rows[k], &d->n_rows[k], &cap[k], key, version, json);
}

void store_rows_free(struct store_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].key);
        free(rows[i].json);
    }
    free(rows);
}

void store_data_release(struct store_data *d)
{
    if (!d)
        return;
    for (unsigned k = 0; k < _STORE_KIND_MAX; k++) {
        store_rows_free(d->rows[k], d->n_rows[k]);
        d->rows[k] = NULL;
        d->n_rows[k] = 0;
    }
    d->revision = 0;
}

void store_audit_free(struct store_audit *a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++) {
        free(a[i].actor);
        free(a[i].action);
        free(a[i].before);
        free(a[i].after);
        free(a[i].reason);
    }
    free(a);
}

int store_open(const char *spec, const char *listen_conninfo, struct store **ret, struct err *e)
{
    struct store *s;
    int r;

    if (!spec)
        return err_set(e, -EINVAL, 0, 0, "no store given");
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    if (str_startswith(spec, "sqlite:") && spec[7])
        r = store__sqlite_open(spec + 7, s, e);
    else if (str_startswith(spec, "postgres:"))
        r = store__pg_open(spec + 9, listen_conninfo, s, e);
    else if (str_startswith(spec, "postgresql:"))
        r = store__pg_open(spec + 11, listen_conninfo, s, e);
    else
        r = err_set(e, -EINVAL, 0, 0,
                    "invalid store '%s' (expected sqlite:PATH or postgres:CONNINFO)", spec);
    if (r < 0) {
        free(s);
        return r;
    }
    *ret = s;
    return 0;
}

struct store *store_close(struct store *s)
{
    if (!s)
        return NULL;
    if (s->ops)
        s->ops->close(s);
    free(s);
    return NULL;
}

const char *store_backend(const struct store *s)
{
    return s->ops->name;
}

int store_load(struct store *s, struct store_data *ret, struct err *e)
{
    return s->ops->load(s, ret, e);
}

int store_commit(struct store *s, const struct store_change *c, uint64_t *ret_revision,
                 struct err *e)
{
    if (!c->key || (c->json && c->version == 0))
        return -EINVAL;
    return s->ops->commit(s, c, ret_revision, e);
}

int store_history(struct store *s, enum store_kind kind, const char *key, size_t limit,
                  struct store_audit **ret, size_t *ret_n, struct err *e)
{
    return s->ops->history(s, kind, key, limit, ret, ret_n, e);
}

int store_revision(struct store *s, uint64_t *ret, struct err *e)
{
    return s->ops->revision(s, ret, e);
}

int store_notify_fd(struct store *s)
{
    return s->ops->notify_fd ? s->ops->notify_fd(s) : -1;
}

int store_notify_read(struct store *s, struct err *e)
{
    return s->ops->notify_read ? s->ops->notify_read(s, e) : 0;
}

int store_rollout_list(struct store *s, const char *key, struct store_row **ret, size_t *ret_n,
                       struct err *e)
{
    *ret = NULL;
    *ret_n = 0;
    return s->ops->rollout_list(s, key, ret, ret_n, e);
}

int store_rollout_put(struct store *s, const char *key, uint64_t expect, const char *json,
                      struct err *e)
{
    if (!key || !json)
        return -EINVAL;
    return s->ops->rollout_put(s, key, expect, json, e);
}

int store_lease(struct store *s, const char *name, const char *holder, uint64_t ttl_ms,
                struct err *e)
{
    return s->ops->lease(s, name, holder, ttl_ms, e);
}
