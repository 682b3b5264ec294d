/* SPDX-License-Identifier: MIT */
/* workers.c - one worker per GPU, run by the supervision engine (src/supervise, the same as
 * `infractl up`): the stack built from the worker template, drains and undrains sent as
 * control requests, each worker's state as the supervisor pushes it (workers_on_change), and a
 * thread that reads the supervisor's status every second and reconciles it with the drain
 * state (a drain whose request could not be delivered, say before the supervisor listened, is
 * enforced on the next pass). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/signal.h"
#include "core/str.h"
#include "core/time.h"
#include "stack/stack.h"
#include "supervise/supervise.h"

#define CONTROL_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define REFRESH_USEC         USEC_PER_SEC

const char *worker_state_to_string(enum worker_state s)
{
    static const char *const names[_WORKER_STATE_MAX] = {
        [WORKER_NONE] = "none",         [WORKER_UNKNOWN] = "unknown",
        [WORKER_STOPPED] = "stopped",   [WORKER_WAITING] = "waiting",
        [WORKER_STARTING] = "starting", [WORKER_RUNNING] = "running",
        [WORKER_STOPPING] = "stopping", [WORKER_BACKOFF] = "backoff",
        [WORKER_EXITED] = "exited",     [WORKER_FAILED] = "failed",
    };
    return (unsigned)s < _WORKER_STATE_MAX ? names[s] : "invalid";
}

static enum worker_state worker_state_from_string(const char *s)
{
    for (unsigned i = WORKER_STOPPED; i < _WORKER_STATE_MAX; i++)
        if (streq(worker_state_to_string((enum worker_state)i), s))
            return (enum worker_state)i;
    return WORKER_UNKNOWN;
}

/* ===== The stack ===== */

static char *expand(const char *tmpl, const struct worker_vars *v)
{
    struct buf b = BUF_INIT(0);

    /* Templates were checked when the config was loaded, so only OOM could fail here. */
    if (worker_template_expand(tmpl, v, &b, NULL) < 0 || buf_puts(&b, "") < 0)
        BUG("worker template failed to expand after validation");
    return buf_detach(&b, NULL);
}

static bool env_has(char *const *env, const char *key)
{
    size_t n = strlen(key);

    for (; env && *env; env++)
        if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
            return true;
    return false;
}

static void build_service(const struct agent *a, const struct agent_gpu *g,
                          struct stack_service *svc)
{
    const struct agent_worker_config *w = &a->cfg->worker;
    const struct worker_vars v = { .index = g->index,
                                   .uuid = g->uuid,
                                   .pci_bus_id = g->pci_bus_id,
                                   .name = g->name,
                                   .minor = g->has_minor ? g->minor : g->index,
                                   .host = a->hostname };
    size_t n_argv = 0, n_env = 0, k = 0;

    while (w->argv[n_argv])
        n_argv++;
    while (w->env[n_env])
        n_env++;
    svc->name = xstrdup(g->service);
    svc->argv = xcalloc(n_argv + 1, sizeof(char *));
    for (size_t i = 0; i < n_argv; i++)
        svc->argv[i] = expand(w->argv[i], &v);
    /* CUDA must see exactly this GPU: by UUID, which needs no agreement on index order. */
    svc->env = xcalloc(n_env + 3, sizeof(char *));
    for (size_t i = 0; i < n_env; i++)
        svc->env[k++] = expand(w->env[i], &v);
    if (!env_has(w->env, "CUDA_VISIBLE_DEVICES"))
        svc->env[k++] = xasprintf("CUDA_VISIBLE_DEVICES=%s", g->uuid);
    if (!env_has(w->env, "CUDA_DEVICE_ORDER"))
        svc->env[k++] = xstrdup("CUDA_DEVICE_ORDER=PCI_BUS_ID");
    svc->user = w->user ? xstrdup(w->user) : NULL;
    svc->working_dir = xstrdup(w->working_dir ? w->working_dir : a->cfg->state_dir);
    svc->dirs = xcalloc(1, sizeof(char *));
    svc->health.probe = (struct probe_spec)PROBE_SPEC_INIT;
    svc->status_probe = (struct probe_spec)PROBE_SPEC_INIT;
    svc->restart =
            w->restart == AGENT_RESTART_ALWAYS ? STACK_RESTART_ALWAYS : STACK_RESTART_ON_FAILURE;
    svc->backoff_initial_usec = w->backoff_initial_usec;
    svc->backoff_max_usec = w->backoff_max_usec;
    svc->backoff_reset_usec = w->backoff_reset_usec;
    svc->max_restarts = w->max_restarts;
    svc->stop_signal = w->stop_signal;
    svc->stop_grace_usec = w->stop_grace_usec;
}

int workers_build_stack(const struct agent *a, struct stack **ret)
{
    struct stack *s;
    size_t n = 0;

    for (size_t i = 0; i < a->n_gpus; i++)
        n += a->gpus[i].has_worker;
    if (n == 0)
        return -ENOENT;
    s = xcalloc(1, sizeof *s);
    s->name = xstrdup("gpu_agent");
    s->path = xstrdup(a->cfg->path);
    s->dir = xstrdup(a->cfg->state_dir);
    s->secrets = xcalloc(1, sizeof(char *));
    s->log_max_bytes = a->cfg->worker.log_max_bytes;
    s->log_keep = a->cfg->worker.log_keep;
    s->services = xcalloc(n, sizeof *s->services);
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].has_worker)
            build_service(a, &a->gpus[i], &s->services[s->n_services++]);
    s->resolved = true;
    *ret = s;
    return 0;
}

const char **workers_held(const struct agent *a)
{
    const char **held = xcalloc(a->n_gpus + 1, sizeof *held);
    size_t k = 0;

    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].has_worker && a->gpus[i].drained)
            held[k++] = a->gpus[i].service;
    return held;
}

/* ===== Requests ===== */

static int control(struct agent *a, const char *request, json_t **ret)
{
    char *resp = NULL;
    json_error_t jerr;
    json_t *j;
    int r;

    r = sv_control_call(a->cfg->state_dir, request, CONTROL_TIMEOUT_USEC, &resp);
    if (r < 0)
        return r;
    j = json_loads(resp, 0, &jerr);
    free(resp);
    if (!j || !json_is_true(json_object_get(j, "ok"))) {
        const char *e = json_string_value(json_object_get(j, "error"));

        log_error("supervisor refused '%s': %s", request, e ? e : "invalid response");
        json_decref(j);
        return -EPROTO;
    }
    if (ret)
        *ret = j;
    else
        json_decref(j);
    return 0;
}

/* Stop request for a drain of tier (caller holds action_lock, not lock). */
static int send_stop(struct agent *a, const struct agent_gpu *g, enum gpu_tier tier)
{
    const struct agent_worker_config *w = &a->cfg->worker;
    bool later = tier == GPU_TIER_DRAIN_LATER;
    uint64_t grace = later ? w->drain_later_grace_usec : w->stop_grace_usec;
    char req[256];

    (void)snprintf(req, sizeof req,
                   "{\"cmd\":\"stop\",\"service\":\"%s\",\"signal\":\"%s\",\"grace_ms\":%llu%s}",
                   g->service, signal_to_string(later ? w->drain_later_signal : w->stop_signal),
                   (unsigned long long)(grace / USEC_PER_MSEC > 0 ? grace / USEC_PER_MSEC : 1),
                   later ? ",\"main_only\":true" : "");
    return control(a, req, NULL);
}

int workers_stop(struct agent *a, struct agent_gpu *g, enum gpu_tier tier)
{
    if (!g->has_worker)
        return 0;
    return send_stop(a, g, tier);
}

int workers_start(struct agent *a, struct agent_gpu *g)
{
    char req[128];

    if (!g->has_worker)
        return 0;
    (void)snprintf(req, sizeof req, "{\"cmd\":\"start\",\"service\":\"%s\"}", g->service);
    return control(a, req, NULL);
}

/* ===== Status and reconciliation ===== */

static struct agent_gpu *gpu_by_service(struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].has_worker && streq(a->gpus[i].service, name))
            return &a->gpus[i];
    return NULL;
}

static bool live(enum worker_state s)
{
    return s == WORKER_WAITING || s == WORKER_STARTING || s == WORKER_RUNNING ||
           s == WORKER_BACKOFF;
}

/* The supervisor runs in this process and tells us of every change as it happens (from its
 * thread, between two turns of its loop), so a worker's state is never older than that. */
void workers_on_change(const struct sv_service_change *c, void *userdata)
{
    struct agent *a = userdata;
    enum worker_state ws = worker_state_from_string(c->state);
    struct agent_gpu *g;

    pthread_mutex_lock(&a->lock);
    g = gpu_by_service(a, c->name);
    if (g && (ws != g->worker || c->pid != g->worker_pid || c->restarts != g->worker_restarts)) {
        g->worker = ws;
        g->worker_pid = c->pid;
        g->worker_restarts = c->restarts;
        a->gen++;
    }
    pthread_mutex_unlock(&a->lock);
}

/* A worker's state in a status response, WORKER_UNKNOWN when it is not there. */
static enum worker_state state_in(json_t *status, const char *service)
{
    size_t i;
    json_t *svc;

    json_array_foreach(json_object_get(status, "services"), i, svc)
    {
        const char *name = json_string_value(json_object_get(svc, "name"));
        const char *state = json_string_value(json_object_get(svc, "state"));

        if (name && state && streq(name, service))
            return worker_state_from_string(state);
    }
    return WORKER_UNKNOWN;
}

int workers_refresh(struct agent *a)
{
    json_t *status = NULL;
    bool shutting_down;
    int r;

    /* Under action_lock, and on the states of a status taken under it (not the pushed ones,
     * which may trail our own requests by a turn of the supervisor's loop): no drain or
     * undrain request can slip in between reading the states and acting on them. */
    pthread_mutex_lock(&a->action_lock);
    r = control(a, "{\"cmd\":\"status\"}", &status);
    if (r < 0) {
        atomic_store(&a->supervisor_up, false);
        pthread_mutex_unlock(&a->action_lock);
        return r;
    }
    atomic_store(&a->supervisor_up, true);
    shutting_down =
            json_is_true(json_object_get(json_object_get(status, "supervisor"), "shutting_down"));
    for (size_t i = 0; i < a->n_gpus && !shutting_down; i++) {
        struct agent_gpu *g = &a->gpus[i];
        enum worker_state ws;
        enum gpu_tier tier;
        bool drained;

        if (!g->has_worker)
            continue;
        ws = state_in(status, g->service);
        pthread_mutex_lock(&a->lock);
        drained = g->drained;
        tier = g->tier;
        pthread_mutex_unlock(&a->lock);
        if (drained && live(ws)) {
            log_warning("GPU %u is drained but its worker is %s: stopping it", g->index,
                        worker_state_to_string(ws));
            r = send_stop(a, g, tier);
        } else if (!drained && ws == WORKER_STOPPED) {
            log_notice("GPU %u is in service but its worker is stopped: starting it", g->index);
            r = workers_start(a, g);
        }
    }
    json_decref(status);
    pthread_mutex_unlock(&a->action_lock);
    return r < 0 ? r : 0;
}

void *workers_thread_main(void *userdata)
{
    struct agent *a = userdata;

    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        uint64_t deadline;
        struct timespec ts;

        if (atomic_load(&a->discovered)) {
            pthread_mutex_unlock(&a->lock);
            (void)workers_refresh(a);
            pthread_mutex_lock(&a->lock);
        }
        deadline = now_usec() + REFRESH_USEC;
        ts = (struct timespec){ .tv_sec = (time_t)(deadline / USEC_PER_SEC),
                                .tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000 };
        while (!a->stopping && now_usec() < deadline)
            if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}
