/* SPDX-License-Identifier: MIT */
/* pg_evidence.c - what a drill shows besides the gap: the writer's history by acknowledging
 * node (split brain = a node acknowledging after another took over) and the nodes' own log
 * lines since the fault (a partitioned primary demoting, the new one promoting). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/macro.h"
#include "core/str.h"
#include "drill_int.h"
#include "supervise/supervise.h"

off_t drill__log_size(const struct drill_pg_target *t, const char *service)
{
    struct stat st;
    char *path;
    off_t n;

    if (!t->state_dir)
        return 0;
    path = sv_log_path(t->state_dir, service);
    n = stat(path, &st) == 0 ? st.st_size : 0;
    free(path);
    return n;
}

/* "YYYY-MM-DD HH:MM:SS.mmm" from a Patroni ("...,mmm INFO: ...") or PostgreSQL ("....mmm UTC")
 * log line; false when the line does not start with one. */
static bool line_time(const char *line, char *ret, size_t n)
{
    if (strlen(line) < 23 || line[4] != '-' || line[10] != ' ' || line[19] == '\0' ||
        (line[19] != ',' && line[19] != '.') || n < 24)
        return false;
    memcpy(ret, line, 23);
    ret[19] = '.';
    ret[23] = '\0';
    return true;
}

/* The lines a node wrote since the fault (from offset `from` of its log) that match one of
 * pats (NULL-terminated): appended to out (if any), the time of the first one to first_at. */
void drill__log_scan(const struct drill_pg_target *t, const char *service, off_t from,
                     const char *const *pats, char *out, size_t out_size, char *first_at,
                     size_t first_size)
{
    char *path, line[1024];
    size_t used = out ? strlen(out) : 0;
    FILE *f;

    if (!t->state_dir)
        return;
    path = sv_log_path(t->state_dir, service);
    f = fopen(path, "re");
    free(path);
    if (!f)
        return;
    if (fseeko(f, from, SEEK_SET) == 0)
        while (fgets(line, sizeof line, f)) {
            bool hit = false;

            for (const char *const *p = pats; *p && !hit; p++)
                hit = strstr(line, *p) != NULL;
            if (!hit)
                continue;
            if (!first_at[0])
                (void)line_time(line, first_at, first_size);
            if (out && used + strlen(line) < out_size) {
                memcpy(out + used, line, strlen(line) + 1);
                used += strlen(line);
            }
        }
    (void)fclose(f);
}

/* The writer's history by acknowledging node: which nodes acknowledged, the old primary's
 * last and the new one's first acknowledgement, and any write acknowledged by a node after
 * another one had begun acknowledging (two primaries by turns: split brain). */
void drill__ack_history(const struct drill_op *ops, size_t n, uint64_t fault,
                        struct drill_pg_result *res)
{
    char seen[16][40];
    bool retired[16] = { false };
    size_t n_seen = 0, cur = SIZE_MAX;

    for (size_t i = 0; i < n; i++) {
        const struct drill_op *op = &ops[i];
        int64_t at = (int64_t)op->done_usec - (int64_t)fault;
        size_t k;

        if (op->result != DRILL_OP_OK || !op->server[0])
            continue;
        for (k = 0; k < n_seen && !streq(seen[k], op->server); k++)
            ;
        if (k == n_seen) {
            if (n_seen == ARRAY_SIZE(seen))
                continue;
            (void)snprintf(seen[n_seen++], sizeof seen[0], "%s", op->server);
        }
        if (cur != SIZE_MAX && k != cur)
            retired[cur] = true; /* another node acknowledges now */
        if (retired[k])
            res->dual_primary_acks++;
        if (k == 0)
            res->old_last_ack_usec = at;
        else if (!res->new_server[0]) {
            (void)snprintf(res->new_server, sizeof res->new_server, "%s", op->server);
            res->new_first_ack_usec = at;
        }
        cur = k;
    }
    if (n_seen)
        (void)snprintf(res->old_server, sizeof res->old_server, "%s", seen[0]);
    res->ack_servers = (unsigned)n_seen;
}
