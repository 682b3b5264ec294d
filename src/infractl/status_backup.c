/* SPDX-License-Identifier: MIT */
/* status_backup.c - backups and WAL archiving in `infractl status`.
 *
 * Both are read from files, never by running pgbackrest (status answers within its budget
 * even while a backup runs or the repository hangs):
 *  - the last successful backup of each type from the metrics `infractl backup` writes for
 *    node-exporter (STATE/node-exporter/backup-repo.prom: what the repository held after the
 *    last run) and the outcome of the last run of each type (backup-TYPE.prom);
 *  - WAL archiving from the primary's pg_wal/archive_status: segments PostgreSQL has handed to
 *    archive_command and not had acknowledged (.ready).  Archiving is failing when the oldest
 *    has waited longer than STATUS_ARCHIVE_STUCK_S (archive_timeout is 60 s, async pushes
 *    within seconds), when STATUS_ARCHIVE_BACKLOG segments wait, or when one waits and the last
 *    archive-push failed (pgBackRest's log, LOG-PATH/STANZA-archive-push.log, says why, when
 *    it writes one). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "backup/backup.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/str.h"
#include "core/time.h"
#include "stack/stack.h"
#include "status_int.h"

#define STATUS_ARCHIVE_STUCK_S 180
/* Segments waiting: 0-1 while archiving keeps up (one push takes ~0.1 s, archive_timeout 60 s);
 * this many (128 MiB) means it fails or falls behind. */
#define STATUS_ARCHIVE_BACKLOG 8

static const char *env_get(const struct stack_service *svc, const char *key)
{
    size_t n = strlen(key);

    for (size_t i = 0; svc->env && svc->env[i]; i++)
        if (strncmp(svc->env[i], key, n) == 0 && svc->env[i][n] == '=')
            return svc->env[i] + n + 1;
    return NULL;
}

/* `NAME{...type="T"...} VALUE` lines of a textfile for metric name. */
static void read_series(const char *path, const char *name,
                        void (*fn)(const char *type, double v, void *ud), void *ud)
{
    struct buf text = BUF_INIT(64 * 1024);
    size_t n = strlen(name);

    if (file_read_all(path, &text) < 0)
        goto out;
    for (const char *l = buf_str(&text); l && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *t, *close;
        char type[16];
        char *end;
        double v;

        if (strncmp(l, name, n) != 0 || l[n] != '{')
            continue;
        t = strstr(l, "type=\"");
        close = strchr(l, '}');
        if (!t || !close || t > close)
            continue;
        t += 6;
        (void)snprintf(type, sizeof type, "%.*s", (int)strcspn(t, "\""), t);
        v = strtod(close + 1, &end);
        if (end != close + 1)
            fn(type, v, ud);
    }
out:
    buf_release(&text);
}

static void on_success(const char *type, double v, void *ud)
{
    struct status_backup *b = ud;

    if ((int64_t)v > b->last_success) {
        b->last_success = (int64_t)v;
        (void)snprintf(b->last_type, sizeof b->last_type, "%s", type);
    }
    b->known = true;
}

static void on_status(const char *type, double v, void *ud)
{
    struct status_backup *b = ud;

    b->known = true;
    if (v == 0) {
        size_t n = strlen(b->failed_types);

        (void)snprintf(b->failed_types + n, sizeof b->failed_types - n, "%s%s", n ? ", " : "",
                       type);
    }
}

/* The last `archive-push command end:` line of pgBackRest's log says whether the newest push
 * failed; the ERROR line before it, why. */
static bool last_push_failed(const struct backup_conf *conf, char *why, size_t n)
{
    struct buf tail = BUF_INIT(32 * 1024);
    char path[4096];
    const char *end, *err;
    bool failed = false;

    (void)snprintf(path, sizeof path, "%s/%s-archive-push.log",
                   conf->log_path ? conf->log_path : "/var/log/pgbackrest", conf->stanza);
    if (file_read_tail(path, 16 * 1024, &tail) < 0)
        goto out;
    end = NULL;
    for (const char *p = buf_str(&tail); (p = strstr(p, "archive-push command end: ")); p++)
        end = p;
    if (!end || !strstr(end, "aborted with exception"))
        goto out;
    failed = true;
    err = NULL;
    for (const char *p = buf_str(&tail); (p = strstr(p, "ERROR: [")) && p < end; p++)
        err = p;
    if (err)
        (void)snprintf(why, n, "%.*s", (int)strcspn(err, "\n"), err);
out:
    buf_release(&tail);
    return failed;
}

static void archive_state(struct status_backup *b, const struct stack_service *svc,
                          const struct backup_conf *conf)
{
    const char *data = env_get(svc, "PGBACKREST_PG1_PATH");
    char path[4096];
    struct dirent *de;
    time_t oldest = 0;
    DIR *d;

    if (!data)
        return;
    (void)snprintf(path, sizeof path, "%s/pg_wal/archive_status", data);
    d = opendir(path);
    if (!d)
        return;
    b->archive_known = true;
    while ((de = readdir(d))) {
        struct stat st;

        if (!str_endswith(de->d_name, ".ready") || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
            continue;
        b->archive_waiting++;
        if (oldest == 0 || st.st_mtime < oldest)
            oldest = st.st_mtime;
    }
    closedir(d);
    b->archive_oldest_s = oldest ? (int64_t)(now_realtime_usec() / USEC_PER_SEC) - oldest : 0;
    b->archive_failing = (oldest && b->archive_oldest_s > STATUS_ARCHIVE_STUCK_S) ||
                         b->archive_waiting >= STATUS_ARCHIVE_BACKLOG;
    /* A segment waits and the last archive-push failed: failing now, not only once the wait is
     * long; pgBackRest's log line says why. */
    if (b->archive_waiting > 0 && last_push_failed(conf, b->archive_error, sizeof b->archive_error))
        b->archive_failing = true;
    (void)snprintf(b->archive_node, sizeof b->archive_node, "%s", svc->name);
}

void status__collect_backup(struct status_snapshot *snap, const struct stack *s)
{
    struct status_backup *b = &snap->backup;
    struct backup_conf conf = { 0 };

    if (!s)
        return;
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];

        for (size_t k = 0; k < svc->n_files; k++)
            if (str_endswith(svc->files[k].path, "/pgbackrest.conf") && !b->present)
                b->present = backup_conf_load(svc->files[k].path, &conf, NULL) == 0;
        for (size_t k = 0; svc->argv[k]; k++) {
            const char *dir;
            char path[4096];

            if (!str_startswith(svc->argv[k], "--collector.textfile.directory="))
                continue;
            dir = strchr(svc->argv[k], '=') + 1;
            (void)snprintf(path, sizeof path, "%s/backup-repo.prom", dir);
            read_series(path, "ultrathink_backup_last_success_timestamp_seconds", on_success, b);
            for (const char *const *t = (const char *const[]){ "full", "diff", "incr", NULL }; *t;
                 t++) {
                (void)snprintf(path, sizeof path, "%s/backup-%s.prom", dir, *t);
                read_series(path, "ultrathink_backup_last_status", on_status, b);
            }
        }
    }
    if (!b->present)
        goto out;
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];

        if (!streq(sv->role, "leader") || !status__kind_is(s, sv, "patroni"))
            continue;
        for (size_t k = 0; k < s->n_services; k++)
            if (streq(s->services[k].name, sv->name))
                archive_state(b, &s->services[k], &conf);
    }
out:
    backup_conf_release(&conf);
}

void status__print_backup(const struct status_backup *b, FILE *f)
{
    int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
    char age[32];

    if (!b->present)
        return;
    if (b->last_success > 0)
        fprintf(f, "backups: last success %s %s ago", b->last_type,
                format_duration(age, sizeof age,
                                (uint64_t)(now > b->last_success ? now - b->last_success : 0) *
                                        USEC_PER_SEC));
    else
        fprintf(f, "backups: none yet (`infractl backup --type full`)");
    if (b->failed_types[0])
        fprintf(f, "; last run FAILED: %s", b->failed_types);
    if (!b->archive_known)
        fprintf(f, "; WAL archiving: unknown (no primary)\n");
    else if (b->archive_failing)
        fprintf(f, "; WAL archiving on %s FAILING: %u segments waiting, oldest %llds%s%s\n",
                b->archive_node, b->archive_waiting, (long long)b->archive_oldest_s,
                b->archive_error[0] ? ": " : "", b->archive_error);
    else
        fprintf(f, "; WAL archiving on %s healthy (%u segments waiting)\n", b->archive_node,
                b->archive_waiting);
}

struct json_t *status__backup_json(const struct status_backup *b)
{
    int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
    json_t *archive =
            b->archive_known
                    ? json_pack("{s:s, s:b, s:i, s:I, s:s?}", "node", b->archive_node, "healthy",
                                !b->archive_failing, "waiting", (int)b->archive_waiting,
                                "oldest_waiting_s", (json_int_t)b->archive_oldest_s, "error",
                                b->archive_error[0] ? b->archive_error : NULL)
                    : json_null();

    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "last_success",
                     b->last_success > 0 ? json_integer(b->last_success) : json_null(),
                     "last_success_type", b->last_type[0] ? json_string(b->last_type) : json_null(),
                     "age_s",
                     b->last_success > 0 ? json_integer(now - b->last_success) : json_null(),
                     "failed_types", json_string(b->failed_types), "archiving", archive);
}
