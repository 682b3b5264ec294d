/* SPDX-License-Identifier: MIT */
/* metrics.c - ultrathink_backup_* series for node-exporter's textfile collector. */
#include <errno.h>

#include "backup.h"
#include "core/buf.h"

/* Stanza names are [A-Za-z0-9_-] (pgBackRest refuses others): no escaping needed, but refuse
 * anything that would need it rather than write a broken file. */
static bool label_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s == '\n')
            return false;
    return true;
}

int backup_metrics_format_run(const struct backup_outcome *o, struct buf *out)
{
    const char *t = backup_type_name(o->type);
    int r;

    if (!label_safe(o->stanza))
        return -EINVAL;
    r = buf_appendf(
            out,
            "# HELP ultrathink_backup_last_status 1 when the last `infractl backup` of this "
            "type succeeded, 0 when it failed.\n"
            "# TYPE ultrathink_backup_last_status gauge\n"
            "ultrathink_backup_last_status{stanza=\"%s\",type=\"%s\"} %d\n"
            "# HELP ultrathink_backup_last_attempt_timestamp_seconds When the last `infractl "
            "backup` of this type ended.\n"
            "# TYPE ultrathink_backup_last_attempt_timestamp_seconds gauge\n"
            "ultrathink_backup_last_attempt_timestamp_seconds{stanza=\"%s\",type=\"%s\"} %lld\n"
            "# HELP ultrathink_backup_last_duration_seconds How long the last `infractl backup` "
            "of this type ran.\n"
            "# TYPE ultrathink_backup_last_duration_seconds gauge\n"
            "ultrathink_backup_last_duration_seconds{stanza=\"%s\",type=\"%s\"} %.3f\n",
            o->stanza, t, o->success ? 1 : 0, o->stanza, t, (long long)o->attempt_end, o->stanza, t,
            o->duration_s);
    return r;
}

int backup_metrics_format_repo(const struct backup_info *i, struct buf *out)
{
    static const struct {
        const char *name, *help;
    } series[] = {
        { "ultrathink_backup_last_success_timestamp_seconds",
          "When the newest backup of this type in the repository finished." },
        { "ultrathink_backup_last_size_bytes", "Database size of the newest backup of this type." },
        { "ultrathink_backup_last_repo_size_bytes",
          "Bytes the newest backup of this type wrote to the repository (compressed)." },
        { "ultrathink_backup_last_backup_duration_seconds",
          "How long pgBackRest took for the newest backup of this type." },
    };
    int r;

    if (!label_safe(i->stanza))
        return -EINVAL;
    for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
        r = buf_appendf(out, "# HELP %s %s\n# TYPE %s gauge\n", series[k].name, series[k].help,
                        series[k].name);
        if (r < 0)
            return r;
        for (int t = 0; t < _BACKUP_TYPE_MAX; t++) {
            const struct backup_set *s = backup_info_latest(i, (enum backup_type)t);
            double v;

            if (!s)
                continue;
            v = k == 0   ? (double)s->stop
                : k == 1 ? (double)s->size
                : k == 2 ? (double)s->repo_delta
                         : (double)(s->stop - s->start);
            r = buf_appendf(out, "%s{stanza=\"%s\",type=\"%s\"} %.0f\n", series[k].name, i->stanza,
                            backup_type_name((enum backup_type)t), v);
            if (r < 0)
                return r;
        }
    }
    return buf_appendf(out,
                       "# HELP ultrathink_backup_sets Backup sets in the repository.\n"
                       "# TYPE ultrathink_backup_sets gauge\n"
                       "ultrathink_backup_sets{stanza=\"%s\"} %zu\n",
                       i->stanza, i->n_sets);
}
