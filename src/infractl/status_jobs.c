/* SPDX-License-Identifier: MIT */
/* status_jobs.c - the scheduled services' section of `infractl status`: what each job last
 * did and when it runs next (the supervisor's job status, supervise.h struct sv_status_job). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "status.h"
#include "supervise/supervise.h"

/* "2026-12-05 02:00:00" (UTC, as the schedule), or "-" for none. */
static const char *format_time(char *buf, size_t n, double t)
{
    time_t secs = (time_t)t;
    struct tm tm;

    if (t <= 0 || !gmtime_r(&secs, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        (void)snprintf(buf, n, "-");
    return buf;
}

void status_print_jobs(const struct status_snapshot *snap, FILE *f)
{
    int name_w = (int)strlen("JOB"), sched_w = (int)strlen("SCHEDULE");
    bool any = false;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];

        if (!sv->job)
            continue;
        any = true;
        if ((int)strlen(sv->name) > name_w)
            name_w = (int)strlen(sv->name);
        if ((int)strlen(sv->job->schedule) > sched_w)
            sched_w = (int)strlen(sv->job->schedule);
    }
    if (!any)
        return;
    fprintf(f, "\n%-*s %-*s %-8s %-19s %-8s %-8s %-4s %-19s %s\n", name_w, "JOB", sched_w,
            "SCHEDULE", "STATE", "LAST RUN (UTC)", "RESULT", "TOOK", "EXIT", "NEXT RUN (UTC)",
            "OK/FAILED/TIMEOUT/SKIPPED");
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        const struct sv_status_job *j = sv->job;
        char last[32], next[32], took[32] = "-", code[16] = "-";

        if (!j)
            continue;
        if (j->last_result) {
            (void)format_duration(took, sizeof took, (uint64_t)(j->last_duration_s * 1e6));
            if (j->last_exit_code >= 0)
                (void)snprintf(code, sizeof code, "%d", j->last_exit_code);
        }
        if (j->scheduled)
            (void)format_time(next, sizeof next, j->next_run);
        else
            (void)snprintf(next, sizeof next, "held");
        fprintf(f, "%-*s %-*s %-8s %-19s %-8s %-8s %-4s %-19s %u/%u/%u/%u\n", name_w, sv->name,
                sched_w, j->schedule,
                streq(sv->state, "stopped") || streq(sv->state, "exited") ||
                                streq(sv->state, "failed")
                        ? "idle"
                        : sv->state,
                format_time(last, sizeof last, j->last_run), j->last_result ? j->last_result : "-",
                took, code, next, j->runs_success, j->runs_failure, j->runs_timeout,
                j->runs_skipped);
    }
}
