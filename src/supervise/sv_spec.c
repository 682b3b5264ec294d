/* SPDX-License-Identifier: MIT */
/* sv_spec.c - the supervisor's input: services with every default in one place. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"
#include "core/strv.h"
#include "supervise.h"

#define DEFAULT_LOG_MAX_BYTES (10u << 20)
#define DEFAULT_LOG_KEEP      3

static void check_init(struct sv_check *c)
{
    *c = (struct sv_check){
        .present = false,
        .probe = PROBE_SPEC_INIT,
        .interval_usec = 2 * USEC_PER_SEC,
        .timeout_usec = USEC_PER_SEC,
        .start_period_usec = 0,
        .retries = 3,
    };
}

void sv_service_init(struct sv_service *svc)
{
    *svc = (struct sv_service){
        .env = xcalloc(1, sizeof(char *)),
        .restart = SV_RESTART_ON_FAILURE,
        .backoff_initial_usec = USEC_PER_SEC,
        .backoff_max_usec = 30 * USEC_PER_SEC,
        .backoff_reset_usec = 60 * USEC_PER_SEC,
        .max_restarts = 0,
        .stop_signal = SIGTERM,
        .stop_grace_usec = 10 * USEC_PER_SEC,
    };
    check_init(&svc->health);
    check_init(&svc->liveness);
}

struct sv_spec *sv_spec_new(const char *name)
{
    struct sv_spec *spec = xcalloc(1, sizeof *spec);

    spec->name = xstrdup(name);
    spec->log_max_bytes = DEFAULT_LOG_MAX_BYTES;
    spec->log_keep = DEFAULT_LOG_KEEP;
    return spec;
}

struct sv_service *sv_spec_add(struct sv_spec *spec, const char *name)
{
    struct sv_service *svc;

    if (spec->n_services == spec->cap) {
        spec->cap = spec->cap ? 2 * spec->cap : 16;
        spec->services = xrealloc(spec->services, spec->cap * sizeof *spec->services);
    }
    svc = &spec->services[spec->n_services++];
    sv_service_init(svc);
    svc->name = xstrdup(name);
    return svc;
}

static void service_release(struct sv_service *svc)
{
    free(svc->name);
    free(svc->package);
    strv_free(svc->argv);
    strv_free(svc->env);
    free(svc->user);
    free(svc->working_dir);
    free(svc->netns);
    for (size_t i = 0; i < svc->n_deps; i++)
        free(svc->deps[i].service);
    free(svc->deps);
    probe_spec_release(&svc->health.probe);
    probe_spec_release(&svc->liveness.probe);
    free(svc->lock.host);
    free(svc->lock.key);
    free(svc->lock.value);
    free(svc->lock.pidfile);
    free(svc->lock.handover_key);
    free(svc->ports);
}

struct sv_spec *sv_spec_free(struct sv_spec *spec)
{
    if (!spec)
        return NULL;
    for (size_t i = 0; i < spec->n_services; i++)
        service_release(&spec->services[i]);
    free(spec->services);
    free(spec->name);
    free(spec->job_metrics_dir);
    free(spec);
    return NULL;
}

const char *sv_restart_to_string(enum sv_restart r)
{
    static const char *const names[_SV_RESTART_MAX] = {
        [SV_RESTART_NO] = "no",
        [SV_RESTART_ON_FAILURE] = "on-failure",
        [SV_RESTART_ALWAYS] = "always",
    };
    return (unsigned)r < _SV_RESTART_MAX ? names[r] : NULL;
}

const char *sv_dep_cond_to_string(enum sv_dep_cond c)
{
    static const char *const names[_SV_DEP_COND_MAX] = {
        [SV_DEP_STARTED] = "service_started",
        [SV_DEP_HEALTHY] = "service_healthy",
        [SV_DEP_COMPLETED] = "service_completed_successfully",
    };
    return (unsigned)c < _SV_DEP_COND_MAX ? names[c] : NULL;
}
