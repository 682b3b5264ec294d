/* SPDX-License-Identifier: MIT */
/* shadow.c - recording shadow comparisons (agree/disagree, latency of each path) into
 * Prometheus metrics.  Per-flag recorders cache their series so recording is lock-free. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "rollout_int.h"

struct rollout_shadow {
    struct rollout_shadow *next;
    char *flag;
    struct metrics_series *agree, *disagree, *control, *candidate;
};

struct rollout_shadow_metrics {
    pthread_mutex_t lock;
    struct metrics_family *comparisons, *duration;
    struct rollout_shadow *list;
};

int rollout_shadow_metrics_new(struct metrics_registry *r,
                               struct rollout_shadow_metrics **ret_metrics)
{
    static const char *const cmp_labels[] = { "flag", "outcome", NULL };
    static const char *const dur_labels[] = { "flag", "path", NULL };
    static const double buckets[] = { 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3,
                                      5e-3, 1e-2, 5e-2, 0.1,  0.5,  1,    10 };
    struct rollout_shadow_metrics *m = calloc(1, sizeof *m);
    int rc;

    if (!m)
        return -ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return -ENOMEM;
    }
    rc = metrics_family_register(r, METRICS_COUNTER, "rollout_shadow_comparisons_total",
                                 "Shadow evaluations by whether control and candidate agreed",
                                 cmp_labels, NULL, 0, &m->comparisons);
    if (rc >= 0)
        rc = metrics_family_register(r, METRICS_HISTOGRAM, "rollout_shadow_duration_seconds",
                                     "Time taken by each path of a shadow evaluation", dur_labels,
                                     buckets, sizeof buckets / sizeof buckets[0], &m->duration);
    if (rc < 0) {
        rollout_shadow_metrics_free(m);
        return rc;
    }
    *ret_metrics = m;
    return 0;
}

struct rollout_shadow_metrics *rollout_shadow_metrics_free(struct rollout_shadow_metrics *m)
{
    if (!m)
        return NULL;
    while (m->list) {
        struct rollout_shadow *sh = m->list;

        m->list = sh->next;
        free(sh->flag);
        free(sh);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}

struct rollout_shadow *rollout_shadow_get(struct rollout_shadow_metrics *m, const char *flag)
{
    struct rollout_shadow *sh;

    pthread_mutex_lock(&m->lock);
    for (sh = m->list; sh; sh = sh->next)
        if (strcmp(sh->flag, flag) == 0)
            goto out;
    sh = calloc(1, sizeof *sh);
    if (!sh)
        goto out;
    sh->flag = strdup(flag);
    sh->agree = metrics_series_get(m->comparisons, (const char *const[]){ flag, "agree", NULL });
    sh->disagree =
            metrics_series_get(m->comparisons, (const char *const[]){ flag, "disagree", NULL });
    sh->control = metrics_series_get(m->duration, (const char *const[]){ flag, "control", NULL });
    sh->candidate =
            metrics_series_get(m->duration, (const char *const[]){ flag, "candidate", NULL });
    if (!sh->flag || !sh->agree || !sh->disagree || !sh->control || !sh->candidate) {
        free(sh->flag);
        free(sh);
        sh = NULL;
        goto out;
    }
    sh->next = m->list;
    m->list = sh;
out:
    pthread_mutex_unlock(&m->lock);
    return sh;
}

void rollout_shadow_record(struct rollout_shadow *sh, bool agree, uint64_t control_nsec,
                           uint64_t candidate_nsec)
{
    metrics_counter_add(agree ? sh->agree : sh->disagree, 1);
    metrics_histogram_observe(sh->control, (double)control_nsec / 1e9);
    metrics_histogram_observe(sh->candidate, (double)candidate_nsec / 1e9);
}
