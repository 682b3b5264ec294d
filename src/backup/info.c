/* SPDX-License-Identifier: MIT */
/* info.c - `pgbackrest info --output=json`: the stanza's backup sets and WAL range. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backup.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"

static const char *const type_names[_BACKUP_TYPE_MAX] = {
    [BACKUP_TYPE_FULL] = "full",
    [BACKUP_TYPE_DIFF] = "diff",
    [BACKUP_TYPE_INCR] = "incr",
};

const char *backup_type_name(enum backup_type t)
{
    return t < _BACKUP_TYPE_MAX ? type_names[t] : "any";
}

int backup_type_parse(const char *s, enum backup_type *ret)
{
    for (int t = 0; t < _BACKUP_TYPE_MAX; t++) {
        if (s && streq(s, type_names[t])) {
            *ret = (enum backup_type)t;
            return 0;
        }
    }
    return -EINVAL;
}

void backup_info_release(struct backup_info *i)
{
    if (!i)
        return;
    free(i->sets);
    *i = (struct backup_info){ 0 };
}

static void copy_str(char *dst, size_t n, json_t *v)
{
    (void)snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static uint64_t u64(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int parse_set(json_t *b, struct backup_set *s, struct err *reterr)
{
    json_t *ts = json_object_get(b, "timestamp"), *info = json_object_get(b, "info");
    json_t *repo = json_object_get(info, "repository"), *arch = json_object_get(b, "archive");

    *s = (struct backup_set){ 0 };
    copy_str(s->label, sizeof s->label, json_object_get(b, "label"));
    if (!s->label[0] || !json_is_object(ts) || !json_is_object(info))
        return err_set(reterr, -EPROTO, 0, 0, "a backup without label, timestamp or info");
    if (backup_type_parse(json_string_value(json_object_get(b, "type")), &s->type) < 0)
        return err_set(reterr, -EPROTO, 0, 0, "backup %s: unknown type", s->label);
    s->start = (int64_t)u64(json_object_get(ts, "start"));
    s->stop = (int64_t)u64(json_object_get(ts, "stop"));
    s->size = u64(json_object_get(info, "size"));
    s->delta = u64(json_object_get(info, "delta"));
    s->repo_size = u64(json_object_get(repo, "size"));
    s->repo_delta = u64(json_object_get(repo, "delta"));
    copy_str(s->wal_start, sizeof s->wal_start, json_object_get(arch, "start"));
    copy_str(s->wal_stop, sizeof s->wal_stop, json_object_get(arch, "stop"));
    copy_str(s->prior, sizeof s->prior, json_object_get(b, "prior"));
    s->error = json_is_true(json_object_get(b, "error"));
    return 0;
}

int backup_info_parse(const char *text, const char *stanza, struct backup_info *ret,
                      struct err *reterr)
{
    struct backup_info in = { 0 };
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je), *st = NULL, *v, *backups, *archives;
    size_t i;
    int r;

    if (!json_is_array(doc)) {
        r = err_set(reterr, -EPROTO, doc ? 0 : (unsigned)je.line, 0,
                    "pgbackrest info: not a JSON array%s%s", doc ? "" : ": ", doc ? "" : je.text);
        goto out;
    }
    json_array_foreach(doc, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));

        if (!stanza || (name && streq(name, stanza))) {
            st = v;
            break;
        }
    }
    if (!st) {
        r = err_set(reterr, -ENOENT, 0, 0, "pgbackrest info: no stanza '%s'", stanza ? stanza : "");
        goto out;
    }
    copy_str(in.stanza, sizeof in.stanza, json_object_get(st, "name"));
    v = json_object_get(st, "status");
    in.status_code = (int)json_integer_value(json_object_get(v, "code"));
    copy_str(in.status, sizeof in.status, json_object_get(v, "message"));
    in.backup_running = json_is_true(
            json_object_get(json_object_get(json_object_get(v, "lock"), "backup"), "held"));
    /* Several archive ids (after a PostgreSQL upgrade): the range of the newest. */
    archives = json_object_get(st, "archive");
    if (json_is_array(archives) && json_array_size(archives) > 0) {
        json_t *a = json_array_get(archives, json_array_size(archives) - 1);

        copy_str(in.wal_min, sizeof in.wal_min, json_object_get(a, "min"));
        copy_str(in.wal_max, sizeof in.wal_max, json_object_get(a, "max"));
    }
    backups = json_object_get(st, "backup");
    if (backups && !json_is_array(backups)) {
        r = err_set(reterr, -EPROTO, 0, 0, "pgbackrest info: 'backup' is not an array");
        goto out;
    }
    in.sets = xcalloc(json_array_size(backups) + 1, sizeof *in.sets);
    json_array_foreach(backups, i, v)
    {
        r = parse_set(v, &in.sets[in.n_sets], reterr);
        if (r < 0)
            goto out;
        in.n_sets++;
    }
    *ret = in;
    in = (struct backup_info){ 0 };
    r = 0;
out:
    backup_info_release(&in);
    json_decref(doc);
    return r;
}

const struct backup_set *backup_info_latest(const struct backup_info *i, enum backup_type t)
{
    for (size_t k = i->n_sets; k > 0; k--) {
        const struct backup_set *s = &i->sets[k - 1];

        if (t == _BACKUP_TYPE_MAX || s->type == t)
            return s;
    }
    return NULL;
}
