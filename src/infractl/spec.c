/* SPDX-License-Identifier: MIT */
/* spec.c - the stack model converted into the supervisor's input (supervise.h struct sv_spec):
 * infractl is where the model (src/stack) and the engine (src/supervise) meet; neither module
 * knows the other. */
#include <string.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/strv.h"
#include "stack/stack.h"
#include "supervise/supervise.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void copy_check(struct sv_check *dst, const struct stack_health *src)
{
    dst->present = src->present;
    probe_spec_copy(&dst->probe, &src->probe);
    dst->interval_usec = src->interval_usec;
    dst->timeout_usec = src->timeout_usec;
    dst->start_period_usec = src->start_period_usec;
    dst->retries = src->retries;
}

static enum sv_restart restart_of(enum stack_restart r)
{
    switch (r) {
    case STACK_RESTART_NO:
        return SV_RESTART_NO;
    case STACK_RESTART_ALWAYS:
        return SV_RESTART_ALWAYS;
    default:
        return SV_RESTART_ON_FAILURE;
    }
}

static enum sv_dep_cond cond_of(enum stack_dep_cond c)
{
    switch (c) {
    case STACK_DEP_HEALTHY:
        return SV_DEP_HEALTHY;
    case STACK_DEP_COMPLETED:
        return SV_DEP_COMPLETED;
    default:
        return SV_DEP_STARTED;
    }
}

struct sv_spec *cli_spec_from_stack(const struct stack *s, const bool *sel)
{
    struct sv_spec *spec = sv_spec_new(s->name);

    spec->log_max_bytes = s->log_max_bytes;
    spec->log_keep = s->log_keep;
    spec->job_metrics_dir = dup_or_null(s->job_metrics_dir);
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *in = &s->services[i];
        struct sv_service *out;

        if (sel && !sel[i])
            continue;
        out = sv_spec_add(spec, in->name);

        out->line = in->line;
        out->package = dup_or_null(in->package);
        out->argv = strv_copy(in->argv);
        strv_free(out->env);
        out->env = strv_copy(in->env);
        out->user = dup_or_null(in->user);
        out->working_dir = dup_or_null(in->working_dir);
        out->netns = dup_or_null(in->netns);
        out->deps = xcalloc(in->n_deps + 1, sizeof *out->deps);
        for (size_t k = 0; k < in->n_deps; k++)
            if (!sel || sel[in->deps[k].index])
                out->deps[out->n_deps++] = (struct sv_dep){ .service = xstrdup(in->deps[k].service),
                                                            .cond = cond_of(in->deps[k].cond) };
        copy_check(&out->health, &in->health);
        copy_check(&out->liveness, &in->liveness);
        out->freeze_after_usec = in->freeze_after_usec;
        if (in->lock.present)
            out->lock = (struct sv_lock){ .present = true,
                                          .host = xstrdup(in->lock.host),
                                          .port = in->lock.port,
                                          .key = xstrdup(in->lock.key),
                                          .value = xstrdup(in->lock.value),
                                          .pidfile = dup_or_null(in->lock.pidfile),
                                          .handover_key = dup_or_null(in->lock.handover_key) };
        out->restart = restart_of(in->restart);
        out->backoff_initial_usec = in->backoff_initial_usec;
        out->backoff_max_usec = in->backoff_max_usec;
        out->backoff_reset_usec = in->backoff_reset_usec;
        out->max_restarts = in->max_restarts;
        out->stop_signal = in->stop_signal;
        out->stop_grace_usec = in->stop_grace_usec;
        out->ports = xcalloc(in->n_ports + 1, sizeof *out->ports);
        if (in->n_ports)
            memcpy(out->ports, in->ports, in->n_ports * sizeof *out->ports);
        out->n_ports = in->n_ports;
        if (in->schedule.present)
            out->schedule =
                    (struct sv_schedule){ .present = true,
                                          .every_usec = in->schedule.every_usec,
                                          .offset_usec = in->schedule.offset_usec,
                                          .random_delay_usec = in->schedule.random_delay_usec,
                                          .timeout_usec = in->schedule.timeout_usec,
                                          .persistent = in->schedule.persistent };
    }
    return spec;
}
