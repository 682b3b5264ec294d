/* SPDX-License-Identifier: MIT */
/* health.c - the GPU health model (DESIGN.md "GPU health model", research/gpu.md §4.4): XID
 * classification, the thread that waits on NVML XID events, drains (fail now / drain later)
 * with their persistence in STATE/drained, and operator drain/undrain.
 *
 * XIDs are counted per GPU and XID with a last-seen time, outside the collection path, so
 * they stay visible while collection fails (which is when XIDs happen).  A drain is sticky:
 * only an operator's undrain clears it, also across agent restarts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"

#define WAIT_MS            500
#define OLD_SET_MAX_EVENTS 256 /* taken from a set being replaced, at most */
#define BACKOFF_MIN_USEC   USEC_PER_SEC
#define BACKOFF_MAX_USEC   (30 * USEC_PER_SEC)
#define DRAINS_FILE        "drained"
#define DRAINS_FILE_MAX    (64 * 1024)

enum gpu_tier health_classify_xid(const struct agent_config *cfg, uint64_t xid)
{
    if (xid > AGENT_XID_MAX)
        return GPU_TIER_COUNT;
    return (enum gpu_tier)cfg->xid_tier[xid];
}

enum gpu_tier health_classify_status(enum nvml_ret st)
{
    return st == NVML_RET_GPU_IS_LOST || st == NVML_RET_RESET_REQUIRED ? GPU_TIER_FAIL_NOW
                                                                       : GPU_TIER_COUNT;
}

/* ===== Persistence: STATE/drained, one "KEY TIER SINCE_USEC REASON" line per drained GPU ===== */

static const char *gpu_key(const struct agent_gpu *g, char *buf, size_t n)
{
    if (g->uuid[0])
        return g->uuid;
    if (g->pci_bus_id[0])
        return g->pci_bus_id;
    (void)snprintf(buf, n, "index-%u", g->index);
    return buf;
}

/* The file's text for the current drains (lock held). */
static void drains_text(const struct agent *a, struct buf *out)
{
    char key[32];

    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct agent_gpu *g = &a->gpus[i];

        if (g->drained &&
            buf_appendf(out, "%s %s %llu %s\n", gpu_key(g, key, sizeof key),
                        gpu_tier_to_string(g->tier), (unsigned long long)g->since_realtime_usec,
                        g->reason[0] ? g->reason : "-") < 0)
            log_warning("drain state too large, truncated");
    }
}

static void drains_write(const struct agent *a, const struct buf *text)
{
    char path[512];
    int r;

    (void)snprintf(path, sizeof path, "%s/%s", a->cfg->state_dir, DRAINS_FILE);
    r = mkdir_p(a->cfg->state_dir, 0755);
    if (r >= 0)
        r = file_write_atomic(path, text->data ? text->data : "", text->len, 0644);
    if (r < 0)
        log_error_errno(r, "cannot save the drain state to '%s'; drains are lost on restart", path);
}

static enum gpu_tier tier_from_string(const char *s)
{
    return streq(s, "fail_now")      ? GPU_TIER_FAIL_NOW
           : streq(s, "drain_later") ? GPU_TIER_DRAIN_LATER
                                     : GPU_TIER_COUNT;
}

void health_load_drains(struct agent *a)
{
    struct buf b = BUF_INIT(DRAINS_FILE_MAX);
    char path[512], *line, *next;
    int r;

    (void)snprintf(path, sizeof path, "%s/%s", a->cfg->state_dir, DRAINS_FILE);
    r = file_read_all(path, &b);
    if (r < 0) {
        if (r != -ENOENT)
            log_warning_errno(r, "cannot read the drain state '%s', ignoring", path);
        buf_release(&b);
        return;
    }
    for (line = b.data; line && *line; line = next) {
        char *f[4] = { NULL }, *p = line, key[32];
        size_t nf = 0;
        uint64_t since = 0;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        /* Split into 4 fields; the reason is the rest of the line. */
        while (nf < 4 && p && *p) {
            f[nf++] = p;
            p = nf < 4 ? strchr(p, ' ') : NULL;
            if (p)
                *p++ = '\0';
        }
        if (nf < 4 || tier_from_string(f[1]) == GPU_TIER_COUNT || parse_u64(f[2], &since) < 0) {
            log_warning("'%s': ignoring a malformed line", path);
            continue;
        }
        for (size_t i = 0; i < a->n_gpus; i++) {
            struct agent_gpu *g = &a->gpus[i];

            /* A GPU lost at startup had no UUID: its drain was saved under its index. */
            (void)snprintf(key, sizeof key, "index-%u", g->index);
            if (!streq(f[0], g->uuid) && !streq(f[0], g->pci_bus_id) && !streq(f[0], key))
                continue;
            g->drained = true;
            g->healthy = false;
            g->tier = tier_from_string(f[1]);
            g->since_realtime_usec = since;
            (void)snprintf(g->reason, sizeof g->reason, "%s", streq(f[3], "-") ? "" : f[3]);
            log_warning("GPU %u (%s) stays drained (%s, %s) until an operator undrains it",
                        g->index, f[0], g->reason, f[1]);
        }
    }
    buf_release(&b);
}

/* ===== Drains ===== */

/* Sets the drain under the locks (action_lock, then lock), persists, stops the worker.
 * Returns the supervisor request's result, or 1 when nothing changed. */
static int drain(struct agent *a, struct agent_gpu *g, enum gpu_tier tier, const char *reason)
{
    struct buf text = BUF_INIT(DRAINS_FILE_MAX);
    bool escalate;
    int r;

    pthread_mutex_lock(&a->action_lock);
    pthread_mutex_lock(&a->lock);
    if (g->drained && g->tier >= tier) {
        pthread_mutex_unlock(&a->lock);
        pthread_mutex_unlock(&a->action_lock);
        return 1;
    }
    escalate = g->drained;
    g->drained = true;
    g->healthy = false;
    g->tier = tier;
    (void)snprintf(g->reason, sizeof g->reason, "%s", reason);
    if (!escalate)
        g->since_realtime_usec = now_realtime_usec();
    a->gen++;
    drains_text(a, &text);
    pthread_mutex_unlock(&a->lock);
    drains_write(a, &text);
    buf_release(&text);
    log_warning("GPU %u (%s): %s: %s%s", g->index, g->uuid, reason,
                tier == GPU_TIER_FAIL_NOW ? "failed, stopping its worker now"
                                          : "draining after the current task",
                escalate ? " (escalated)" : "");
    r = workers_stop(a, g, tier);
    pthread_mutex_unlock(&a->action_lock);
    if (r < 0 && r != -ENOENT && r != -ECONNREFUSED)
        log_error_errno(r, "GPU %u: cannot stop worker '%s' now, retrying", g->index, g->service);
    return r;
}

void health_report(struct agent *a, struct agent_gpu *g, enum gpu_tier tier, const char *reason)
{
    if (tier > GPU_TIER_COUNT)
        (void)drain(a, g, tier, reason);
}

int health_drain(struct agent *a, struct agent_gpu *g, enum gpu_tier tier)
{
    int r = drain(a, g, tier, "operator");

    return r > 0 ? 0 : r;
}

int health_undrain(struct agent *a, struct agent_gpu *g)
{
    struct buf text = BUF_INIT(DRAINS_FILE_MAX);
    int r;

    pthread_mutex_lock(&a->action_lock);
    pthread_mutex_lock(&a->lock);
    g->drained = false;
    g->healthy = true;
    g->tier = GPU_TIER_COUNT;
    g->reason[0] = '\0';
    g->since_realtime_usec = now_realtime_usec();
    a->gen++;
    drains_text(a, &text);
    pthread_mutex_unlock(&a->lock);
    drains_write(a, &text);
    buf_release(&text);
    atomic_store(&a->events_resubscribe, true);
    log_notice("GPU %u (%s): undrained by an operator, starting its worker", g->index, g->uuid);
    r = workers_start(a, g);
    pthread_mutex_unlock(&a->action_lock);
    return r;
}

void health_on_xid(struct agent *a, struct agent_gpu *g, uint64_t xid)
{
    enum gpu_tier tier = health_classify_xid(a->cfg, xid);
    struct agent_xid *x = NULL;
    char reason[32];

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < g->n_xids && !x; i++)
        if (g->xids[i].xid == xid)
            x = &g->xids[i];
    if (!x && g->n_xids < AGENT_MAX_XID_KINDS) {
        x = &g->xids[g->n_xids++];
        *x = (struct agent_xid){ .xid = (unsigned)xid };
    }
    if (x) {
        x->count++;
        x->last_realtime_usec = now_realtime_usec();
        a->gen++;
    }
    pthread_mutex_unlock(&a->lock);
    if (!x)
        log_warning("GPU %u: more than %u distinct XIDs, XID %llu not counted", g->index,
                    AGENT_MAX_XID_KINDS, (unsigned long long)xid);
    if (tier == GPU_TIER_COUNT) {
        log_notice("GPU %u (%s): XID %llu (counted, the GPU stays in service)", g->index, g->uuid,
                   (unsigned long long)xid);
        return;
    }
    (void)snprintf(reason, sizeof reason, "xid_%llu", (unsigned long long)xid);
    health_report(a, g, tier, reason);
}

/* ===== The event thread ===== */

static struct agent_gpu *gpu_by_device(struct agent *a, const struct nvml_device *d)
{
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].dev && a->gpus[i].dev == d)
            return &a->gpus[i];
    return NULL;
}

/* Builds a set with every reachable GPU's XID events; NULL when none could be registered. */
static struct nvml_event_set *subscribe(struct agent *a, uint64_t *ret_mask)
{
    struct nvml_event_set *set = NULL;
    enum nvml_ret st;
    uint64_t mask = 0;

    st = nvml_event_set_create(a->nvml, &set);
    if (st != NVML_RET_SUCCESS) {
        log_warning("nvmlEventSetCreate failed: %s; XIDs are not watched",
                    nvml_ret_string(a->nvml, st));
        return NULL;
    }
    for (size_t i = 0; i < a->n_gpus; i++) {
        struct agent_gpu *g = &a->gpus[i];
        uint64_t supported = NVML_EVENT_XID_CRITICAL_ERROR;

        if (!g->dev)
            continue;
        st = nvml_device_supported_events(a->nvml, g->dev, &supported);
        if (health_classify_status(st) == GPU_TIER_FAIL_NOW) {
            health_report(a, g, GPU_TIER_FAIL_NOW, nvml_ret_name(st));
            continue;
        }
        if (st == NVML_RET_SUCCESS && !(supported & NVML_EVENT_XID_CRITICAL_ERROR)) {
            log_warning("GPU %u does not report XID events", g->index);
            continue;
        }
        st = nvml_device_register_events(a->nvml, g->dev, NVML_EVENT_XID_CRITICAL_ERROR, set);
        if (st == NVML_RET_SUCCESS) {
            mask |= 1ull << i;
            continue;
        }
        if (health_classify_status(st) == GPU_TIER_FAIL_NOW)
            health_report(a, g, GPU_TIER_FAIL_NOW, nvml_ret_name(st));
        else
            log_warning("GPU %u: nvmlDeviceRegisterEvents failed: %s", g->index,
                        nvml_ret_string(a->nvml, st));
    }
    if (mask == 0) {
        nvml_event_set_free(a->nvml, set);
        return NULL;
    }
    *ret_mask = mask;
    return set;
}

/* After a failed wait: which of the registered GPUs are gone?  true when one was found. */
static bool probe_lost(struct agent *a, uint64_t mask)
{
    bool found = false;

    for (size_t i = 0; i < a->n_gpus; i++) {
        struct agent_gpu *g = &a->gpus[i];
        int t = 0;
        enum nvml_ret st;

        if (!(mask & (1ull << i)))
            continue;
        st = nvml_device_temperature(a->nvml, g->dev, &t);
        if (health_classify_status(st) == GPU_TIER_FAIL_NOW) {
            health_report(a, g, GPU_TIER_FAIL_NOW, nvml_ret_name(st));
            found = true;
        }
    }
    return found;
}

/* Sleeps usec unless the agent stops first.  true when stopping. */
static bool pause_usec(struct agent *a, uint64_t usec)
{
    uint64_t deadline = now_usec() + usec;
    struct timespec ts = { .tv_sec = (time_t)(deadline / USEC_PER_SEC),
                           .tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000 };
    bool stopping;

    pthread_mutex_lock(&a->lock);
    while (!a->stopping && now_usec() < deadline)
        if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
            break;
    stopping = a->stopping;
    pthread_mutex_unlock(&a->lock);
    return stopping;
}

static bool stopping(struct agent *a)
{
    bool s;

    pthread_mutex_lock(&a->lock);
    s = a->stopping;
    pthread_mutex_unlock(&a->lock);
    return s;
}

/* One event from a set: an XID of a known GPU, or one counted as unmatched. */
static void on_event(struct agent *a, const struct nvml_event *ev)
{
    struct agent_gpu *g = gpu_by_device(a, ev->device);

    if (!(ev->type & NVML_EVENT_XID_CRITICAL_ERROR))
        return;
    if (g) {
        health_on_xid(a, g, ev->data);
        return;
    }
    pthread_mutex_lock(&a->lock);
    a->xid_unmatched++;
    a->gen++;
    pthread_mutex_unlock(&a->lock);
    log_warning("XID %llu from a device the agent does not know", (unsigned long long)ev->data);
}

/* Replaces the set (after an undrain: every GPU registered again).  NVML records in a set
 * only events after its creation, and freeing a set drops what it still holds; so the new set
 * is made first and the old one emptied after, and no XID is lost.  One that comes between
 * the two may come through both and be counted twice, the lesser harm. */
static struct nvml_event_set *resubscribe(struct agent *a, struct nvml_event_set *old,
                                          uint64_t *mask)
{
    struct nvml_event_set *set = subscribe(a, mask);
    struct nvml_event ev;

    for (unsigned n = 0; old && n < OLD_SET_MAX_EVENTS; n++) {
        if (nvml_event_set_wait(a->nvml, old, &ev, 0) != NVML_RET_SUCCESS)
            break;
        on_event(a, &ev);
    }
    nvml_event_set_free(a->nvml, old);
    return set;
}

void *health_thread_main(void *userdata)
{
    struct agent *a = userdata;
    struct nvml_event_set *set = NULL;
    uint64_t mask = 0, backoff = BACKOFF_MIN_USEC;

    while (!stopping(a)) {
        struct nvml_event ev;
        enum nvml_ret st;

        if (!atomic_load(&a->nvml_up) || !atomic_load(&a->discovered)) {
            (void)pause_usec(a, 200 * USEC_PER_MSEC);
            continue;
        }
        if (!set || atomic_exchange(&a->events_resubscribe, false)) {
            set = resubscribe(a, set, &mask);
            if (!set) {
                (void)pause_usec(a, WAIT_MS * USEC_PER_MSEC);
                continue;
            }
        }
        st = nvml_event_set_wait(a->nvml, set, &ev, WAIT_MS);
        if (st == NVML_RET_TIMEOUT)
            continue;
        if (st == NVML_RET_SUCCESS) {
            backoff = BACKOFF_MIN_USEC;
            on_event(a, &ev);
            continue;
        }
        /* GPU_IS_LOST names no GPU: find it, then watch the others with a fresh set. */
        log_warning("nvmlEventSetWait failed: %s", nvml_ret_string(a->nvml, st));
        if (!probe_lost(a, mask)) {
            if (pause_usec(a, backoff))
                break;
            backoff = backoff * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC : backoff * 2;
        }
        nvml_event_set_free(a->nvml, set);
        set = NULL;
    }
    nvml_event_set_free(a->nvml, set);
    return NULL;
}
