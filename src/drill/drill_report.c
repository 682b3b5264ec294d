/* SPDX-License-Identifier: MIT */
/* drill_report.c - the run record of every cluster: gaps from acknowledgement times, JSON, one
 * summary line. */
#include "drill_report.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"
#include "supervise/supervise.h"

void drill_run_release(struct drill_run *r)
{
    free(r->acks);
    r->acks = NULL;
    r->n_acks = 0;
    json_decref(r->evidence);
    r->evidence = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

void drill_run_set_acks(struct drill_run *r, const uint64_t *v, size_t n)
{
    uint64_t *a = xcalloc(n + 1, sizeof *a);

    if (n)
        memcpy(a, v, n * sizeof *a);
    qsort(a, n, sizeof *a, cmp_u64);
    free(r->acks);
    r->acks = a;
    r->n_acks = n;
    r->gap_usec = r->max_gap_usec = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t d = a[i] - a[i - 1];

        if (d > r->max_gap_usec)
            r->max_gap_usec = d;
        if (a[i] >= r->fault_at && d > r->gap_usec)
            r->gap_usec = d;
    }
    if (n == 0 || a[n - 1] < r->fault_at) /* nothing acknowledged after the fault */
        r->gap_usec = r->end_at - (n ? a[n - 1] : r->start_at);
    else if (r->end_at > a[n - 1] && r->end_at - a[n - 1] > r->gap_usec)
        r->gap_usec = r->end_at - a[n - 1];
}

static double ms(uint64_t usec)
{
    return (double)usec / 1000.0;
}

/* A mark relative to the writer's start; -1 when the mark never happened. */
static double rel_ms(const struct drill_run *r, uint64_t at)
{
    return at >= r->start_at && at ? ms(at - r->start_at) : -1.0;
}

void *drill_run_json(const struct drill_run *r, bool passed)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:b, s:b, s:s}", "cluster",
                          r->cluster, "fault", r->fault, "victim", r->victim, "new_leader",
                          r->new_leader, "gap_ms", ms(r->gap_usec), "max_gap_ms",
                          ms(r->max_gap_usec), "new_leader_ms", ms(r->new_leader_usec), "heal_ms",
                          ms(r->heal_usec), "healed", r->healed, "passed", passed, "note", r->note);

    for (size_t i = 0; o && i < DRILL_TALLIES; i++) {
        const struct drill_tally *t = &r->tally[i];

        if (t->name)
            json_object_set_new(o, t->name,
                                json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "acked", t->acked,
                                          "failed", t->failed, "unknown", t->unknown, "lost",
                                          t->lost, "recovered", t->recovered, "duplicates",
                                          t->duplicates));
    }
    if (o && r->end_at > r->start_at) {
        size_t n_bins = (size_t)((r->end_at - r->start_at) / DRILL_BIN_USEC) + 1;
        json_t *bins = json_array(), *tl;
        unsigned *count = xcalloc(n_bins, sizeof *count);

        for (size_t i = 0; i < r->n_acks; i++)
            if (r->acks[i] >= r->start_at && r->acks[i] <= r->end_at)
                count[(r->acks[i] - r->start_at) / DRILL_BIN_USEC]++;
        for (size_t i = 0; i < n_bins; i++)
            json_array_append_new(bins, json_integer(count[i]));
        free(count);
        tl = json_pack("{s:f, s:f, s:f, s:f, s:o}", "fault_ms", rel_ms(r, r->fault_at), "resume_ms",
                       rel_ms(r, r->resume_at), "heal_ms", rel_ms(r, r->heal_at), "end_ms",
                       rel_ms(r, r->end_at), "acks_per_100ms", bins);
        json_object_set_new(o, "timeline", tl);
    }
    if (o && r->evidence)
        (void)json_object_update(o, r->evidence);
    return o;
}

void drill_run_print(const struct drill_run *r, unsigned index, FILE *f)
{
    fprintf(f, "drill: run %u: %s -> %s  gap %.0f ms  new leader %.0f ms  healed %s %.1f s", index,
            r->victim, r->new_leader[0] ? r->new_leader : "-", ms(r->gap_usec),
            ms(r->new_leader_usec), r->healed ? "yes" : "NO", (double)r->heal_usec / USEC_PER_SEC);
    for (size_t i = 0; i < DRILL_TALLIES; i++) {
        const struct drill_tally *t = &r->tally[i];

        if (t->name)
            fprintf(f, "  %s: acked %u unknown %u (recovered %u) lost %u dup %u", t->name, t->acked,
                    t->unknown, t->recovered, t->lost, t->duplicates);
    }
    fprintf(f, "%s%s\n", r->note[0] ? "  " : "", r->note);
}

/* pid and its children (a Redis BGSAVE or AOF rewrite child) from /proc. */
static int pid_tree(pid_t pid, struct sv_process **ret)
{
    struct sv_process *p = xcalloc(64, sizeof *p);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    p[n++] = (struct sv_process){ .pid = pid };
    while (d && (e = readdir(d)) && n < 64) {
        char path[64], line[512], num[24], *rp;
        int64_t child, ppid;
        FILE *f;

        if (parse_i64(e->d_name, &child) < 0 || child == pid)
            continue;
        (void)snprintf(path, sizeof path, "/proc/%lld/stat", (long long)child);
        f = fopen(path, "re");
        if (!f)
            continue;
        rp = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
        fclose(f);
        /* ") S PPID ...": the state, then the parent */
        if (!rp || strlen(rp) < 5)
            continue;
        (void)snprintf(num, sizeof num, "%.*s", (int)strcspn(rp + 4, " "), rp + 4);
        if (parse_i64(num, &ppid) == 0 && ppid == pid)
            p[n++] = (struct sv_process){ .pid = (pid_t)child, .ppid = pid };
    }
    if (d)
        closedir(d);
    *ret = p;
    return n;
}

int drill_signal_service(pid_t supervisor, const char *service, drill_pid_fn main_pid,
                         void *userdata, int sig, pid_t *pids, size_t max)
{
    struct sv_process *p = NULL;
    int n = sv_service_processes(supervisor, service, &p);
    size_t k = 0;
    pid_t m;

    if (n == 0 || n == -ESRCH) {
        free(p);
        p = NULL;
        m = main_pid ? main_pid(service, userdata) : 0;
        n = m > 1 ? pid_tree(m, &p) : -ESRCH;
    }
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        if (kill(p[i].pid, sig) == 0 && k < max)
            pids[k++] = p[i].pid;
    free(p);
    return k ? (int)k : -ESRCH;
}

void drill__progressf(void (*fn)(const char *line, void *userdata), void *userdata, const char *fmt,
                      ...)
{
    char line[512];
    va_list ap;

    if (!fn)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fn(line, userdata);
}

int drill__name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && streq(s, names[i]))
            return (int)i;
    return -EINVAL;
}
