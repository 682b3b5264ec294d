/* SPDX-License-Identifier: MIT */
/* workers.c - one worker per GPU, run by the supervision engine (src/supervise, the same as
 * `infractl up`): the supervisor's input (struct sv_spec) built from the worker template, drains
 * and undrains sent as control requests, each worker's state as the supervisor pushes it
 * (workers_on_change), and a thread that reads the supervisor's status every second and reconciles
 * it with the drain state (a drain whose request could not be delivered, say before the supervisor
 * listened, is enforced on the next pass). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
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

/* ===== The supervisor's input ===== */

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

/* g's worker: the supervisor's defaults (sv_spec_add()), then the worker config. */
static void add_worker(const struct agent *a, const struct agent_gpu *g, struct sv_spec *spec)
{
    const struct agent_worker_config *w = &a->cfg->worker;
    const struct worker_vars v = { .index = g->index,
                                   .uuid = g->uuid,
                                   .pci_bus_id = g->pci_bus_id,
                                   .name = g->name,
                                   .minor = g->has_minor ? g->minor : g->index,
                                   .host = a->hostname };
    struct sv_service *svc = sv_spec_add(spec, g->service);
    size_t n_argv = 0, n_env = 0, k = 0;

    while (w->argv[n_argv])
        n_argv++;
    while (w->env[n_env])
        n_env++;
    svc->argv = xcalloc(n_argv + 1, sizeof(char *));
    for (size_t i = 0; i < n_argv; i++)
        svc->argv[i] = expand(w->argv[i], &v);
    /* CUDA must see exactly this GPU: by UUID, which needs no agreement on index order. */
    free(svc->env);
    svc->env = xcalloc(n_env + 3, sizeof(char *));
    for (size_t i = 0; i < n_env; i++)
        svc->env[k++] = expand(w->env[i], &v);
    if (!env_has(w->env, "CUDA_VISIBLE_DEVICES"))
        svc->env[k++] = xasprintf("CUDA_VISIBLE_DEVICES=%s", g->uuid);
    if (!env_has(w->env, "CUDA_DEVICE_ORDER"))
        svc->env[k++] = xstrdup("CUDA_DEVICE_ORDER=PCI_BUS_ID");
    svc->user = w->user ? xstrdup(w->user) : NULL;
    svc->working_dir = xstrdup(w->working_dir ? w->working_dir : a->cfg->state_dir);
    svc->restart = w->restart == AGENT_RESTART_ALWAYS ? SV_RESTART_ALWAYS : SV_RESTART_ON_FAILURE;
    svc->backoff_initial_usec = w->backoff_initial_usec;
    svc->backoff_max_usec = w->backoff_max_usec;
    svc->backoff_reset_usec = w->backoff_reset_usec;
    svc->max_restarts = w->max_restarts;
    svc->stop_signal = w->stop_signal;
    svc->stop_grace_usec = w->stop_grace_usec;
}

int workers_build_spec(const struct agent *a, struct sv_spec **ret)
{
    struct sv_spec *spec;
    size_t n = 0;

    for (size_t i = 0; i < a->n_gpus; i++)
        n += a->gpus[i].has_worker;
    if (n == 0)
        return -ENOENT;
    spec = sv_spec_new("gpu_agent");
    spec->log_max_bytes = a->cfg->worker.log_max_bytes;
    spec->log_keep = a->cfg->worker.log_keep;
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].has_worker)
            add_worker(a, &a->gpus[i], spec);
    *ret = spec;
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

static int request(struct agent *a, enum sv_request req, const struct agent_gpu *g,
                   const struct sv_stop_options *stop)
{
    char why[256];
    int r = sv_request(a->cfg->state_dir, req, g->service, stop, CONTROL_TIMEOUT_USEC, why,
                       sizeof why);

    if (r == -EINVAL || r == -EPROTO)
        log_error("supervisor refused to act on '%s': %s", g->service,
                  why[0] ? why : "invalid response");
    return r;
}

/* Stop request for a drain of tier (caller holds action_lock, not lock). */
static int send_stop(struct agent *a, const struct agent_gpu *g, enum gpu_tier tier)
{
    const struct agent_worker_config *w = &a->cfg->worker;
    bool later = tier == GPU_TIER_DRAIN_LATER;

    return request(a, SV_REQUEST_STOP, g,
                   &(struct sv_stop_options){
                           .signal = later ? w->drain_later_signal : w->stop_signal,
                           .grace_usec = later ? w->drain_later_grace_usec : w->stop_grace_usec,
                           .main_only = later });
}

int workers_stop(struct agent *a, struct agent_gpu *g, enum gpu_tier tier)
{
    if (!g->has_worker)
        return 0;
    return send_stop(a, g, tier);
}

int workers_start(struct agent *a, struct agent_gpu *g)
{
    if (!g->has_worker)
        return 0;
    return request(a, SV_REQUEST_START, g, NULL);
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

int workers_refresh(struct agent *a)
{
    struct sv_status st;
    int r;

    /* Under action_lock, and on the states of a status taken under it (not the pushed ones,
     * which may trail our own requests by a turn of the supervisor's loop): no drain or
     * undrain request can slip in between reading the states and acting on them. */
    pthread_mutex_lock(&a->action_lock);
    r = sv_status_fetch(a->cfg->state_dir, CONTROL_TIMEOUT_USEC, &st);
    if (r < 0) {
        atomic_store(&a->supervisor_up, false);
        pthread_mutex_unlock(&a->action_lock);
        return r;
    }
    atomic_store(&a->supervisor_up, true);
    for (size_t i = 0; i < a->n_gpus && !st.shutting_down; i++) {
        struct agent_gpu *g = &a->gpus[i];
        const struct sv_status_service *svc;
        enum worker_state ws;
        enum gpu_tier tier;
        bool drained;

        if (!g->has_worker)
            continue;
        svc = sv_status_find(&st, g->service);
        ws = svc ? worker_state_from_string(svc->state) : WORKER_UNKNOWN;
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
    sv_status_release(&st);
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
