/* SPDX-License-Identifier: MIT */
/* collect.c - NVML discovery and the background collection: every interval one pass over the
 * GPUs builds a new snapshot that replaces the previous one under the lock, so a scrape never
 * waits for NVML (calls can hang in a wedged driver) and never sees half a collection.  Values
 * NVML does not support, or that look like sentinels, are left out of the snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"

#define U32_SENTINEL    4294967295.0 /* 0xFFFFFFFF: "not available" in 32-bit fields */
#define NVML_RETRY_USEC (10 * USEC_PER_SEC)

bool collect_value_plausible(enum gpu_metric m, double v)
{
    if (!(v >= 0.0) && m != GM_TEMPERATURE && m != GM_MEMORY_TEMPERATURE)
        return false; /* negative or NaN */
    switch (m) {
    case GM_UTILIZATION:
    case GM_MEMORY_UTILIZATION:
    case GM_FAN_SPEED:
    case GM_ECC_ENABLED:
    case GM_RETIRED_PENDING:
    case GM_REMAPPED_PENDING:
    case GM_REMAPPED_FAILED:
        return v <= 1.0;
    case GM_MEMORY_TOTAL:
    case GM_MEMORY_USED:
    case GM_MEMORY_FREE:
    case GM_MEMORY_RESERVED:
        return v < 1125899906842624.0; /* 1 PiB */
    case GM_TEMPERATURE:
    case GM_MEMORY_TEMPERATURE:
        return v > -60.0 && v < 200.0;
    case GM_POWER_USAGE:
    case GM_POWER_LIMIT:
        return v < 10000.0;
    case GM_ENERGY:
        return v < 1e14; /* joules: a 1 kW board for 3000 years */
    case GM_CLOCK_GRAPHICS:
    case GM_CLOCK_SM:
    case GM_CLOCK_MEM:
    case GM_CLOCK_VIDEO:
    case GM_MAX_CLOCK_GRAPHICS:
    case GM_MAX_CLOCK_SM:
    case GM_MAX_CLOCK_MEM:
    case GM_MAX_CLOCK_VIDEO:
        return v < 1e11;
    case GM_PSTATE:
        return v <= 15.0;
    case GM_PCIE_GENERATION:
        return v >= 1.0 && v <= 8.0;
    case GM_PCIE_WIDTH:
        return v >= 1.0 && v <= 32.0;
    case GM_RECOVERY_ACTION:
        return v <= 15.0;
    case GM_ECC_CORRECTED_VOLATILE:
    case GM_ECC_UNCORRECTED_VOLATILE:
    case GM_ECC_CORRECTED_AGGREGATE:
    case GM_ECC_UNCORRECTED_AGGREGATE:
    case GM_RETIRED_SBE:
    case GM_RETIRED_DBE:
    case GM_REMAPPED_CORRECTABLE:
    case GM_REMAPPED_UNCORRECTABLE:
    case GM_PCIE_REPLAY:
        return v < U32_SENTINEL; /* counts this large are sentinels in practice */
    case _GM_MAX:
        break;
    }
    return false;
}

static void put(struct gpu_sample *s, enum gpu_metric m, double v)
{
    if (!collect_value_plausible(m, v))
        return;
    s->v[m] = v;
    s->present |= 1ull << m;
}

/* A call's status: keeps the sample's failure when the GPU is gone.  true = value usable. */
static bool ok(struct gpu_sample *s, enum nvml_ret st)
{
    if (health_classify_status(st) == GPU_TIER_FAIL_NOW && s->failure == NVML_RET_SUCCESS)
        s->failure = st;
    return st == NVML_RET_SUCCESS;
}

/* One GPU's values.  Stops at the first sign that the GPU is lost: every further call would
 * fail the same way, possibly slowly. */
static void collect_gpu(struct nvml *n, struct nvml_device *d, struct gpu_sample *s)
{
    static const struct {
        enum nvml_clock clock;
        enum gpu_metric cur, max;
    } clocks[] = {
        { NVML_CLOCK_GRAPHICS, GM_CLOCK_GRAPHICS, GM_MAX_CLOCK_GRAPHICS },
        { NVML_CLOCK_SM, GM_CLOCK_SM, GM_MAX_CLOCK_SM },
        { NVML_CLOCK_MEM, GM_CLOCK_MEM, GM_MAX_CLOCK_MEM },
        { NVML_CLOCK_VIDEO, GM_CLOCK_VIDEO, GM_MAX_CLOCK_VIDEO },
    };
    static const struct {
        enum nvml_ecc_error type;
        enum nvml_ecc_counter counter;
        enum gpu_metric m;
    } ecc[] = {
        { NVML_ECC_CORRECTED, NVML_ECC_VOLATILE, GM_ECC_CORRECTED_VOLATILE },
        { NVML_ECC_UNCORRECTED, NVML_ECC_VOLATILE, GM_ECC_UNCORRECTED_VOLATILE },
        { NVML_ECC_CORRECTED, NVML_ECC_AGGREGATE, GM_ECC_CORRECTED_AGGREGATE },
        { NVML_ECC_UNCORRECTED, NVML_ECC_AGGREGATE, GM_ECC_UNCORRECTED_AGGREGATE },
    };
    struct nvml_memory mem;
    struct nvml_remapped_rows rows;
    unsigned u = 0, u2 = 0;
    uint64_t v = 0;
    bool b = false;
    int t = 0;

    if (ok(s, nvml_device_utilization(n, d, &u, &u2))) {
        put(s, GM_UTILIZATION, u / 100.0);
        put(s, GM_MEMORY_UTILIZATION, u2 / 100.0);
    }
    if (s->failure)
        return;
    if (ok(s, nvml_device_memory(n, d, &mem)) && mem.used <= mem.total && mem.free <= mem.total) {
        put(s, GM_MEMORY_TOTAL, (double)mem.total);
        put(s, GM_MEMORY_USED, (double)mem.used);
        put(s, GM_MEMORY_FREE, (double)mem.free);
        if (mem.has_reserved && mem.reserved <= mem.total)
            put(s, GM_MEMORY_RESERVED, (double)mem.reserved);
    }
    if (ok(s, nvml_device_temperature(n, d, &t)))
        put(s, GM_TEMPERATURE, t);
    if (ok(s, nvml_device_field_u64(n, d, NVML_FI_DEV_MEMORY_TEMP, &v)) && v != UINT32_MAX)
        put(s, GM_MEMORY_TEMPERATURE, (double)v);
    if (ok(s, nvml_device_power_usage(n, d, &u)) && u != UINT32_MAX)
        put(s, GM_POWER_USAGE, u / 1000.0);
    if (ok(s, nvml_device_power_limit(n, d, &u)) && u != UINT32_MAX)
        put(s, GM_POWER_LIMIT, u / 1000.0);
    if (ok(s, nvml_device_energy(n, d, &v)) && v != UINT64_MAX)
        put(s, GM_ENERGY, (double)v / 1000.0);
    if (s->failure)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(clocks) && !s->failure; i++) {
        if (ok(s, nvml_device_clock(n, d, clocks[i].clock, &u)) && u != UINT32_MAX)
            put(s, clocks[i].cur, u * 1e6);
        if (ok(s, nvml_device_max_clock(n, d, clocks[i].clock, &u)) && u != UINT32_MAX)
            put(s, clocks[i].max, u * 1e6);
    }
    if (ok(s, nvml_device_clocks_event_reasons(n, d, &v))) {
        s->has_reasons = true;
        s->reasons = v;
    }
    if (ok(s, nvml_device_pstate(n, d, &u)))
        put(s, GM_PSTATE, u);
    if (ok(s, nvml_device_fan_speed(n, d, &u)) && u != UINT32_MAX)
        put(s, GM_FAN_SPEED, u / 100.0);
    if (s->failure)
        return;
    if (ok(s, nvml_device_ecc_mode(n, d, &b))) {
        put(s, GM_ECC_ENABLED, b ? 1 : 0);
        for (size_t i = 0; b && i < ARRAY_SIZE(ecc) && !s->failure; i++)
            if (ok(s, nvml_device_ecc_errors(n, d, ecc[i].type, ecc[i].counter, &v)) &&
                v != UINT64_MAX)
                put(s, ecc[i].m, (double)v);
    }
    if (ok(s, nvml_device_retired_pages(n, d, NVML_RETIRE_MULTIPLE_SBE, &u)))
        put(s, GM_RETIRED_SBE, u);
    if (ok(s, nvml_device_retired_pages(n, d, NVML_RETIRE_DBE, &u)))
        put(s, GM_RETIRED_DBE, u);
    if (ok(s, nvml_device_retired_pages_pending(n, d, &b)))
        put(s, GM_RETIRED_PENDING, b);
    if (ok(s, nvml_device_remapped_rows(n, d, &rows))) {
        put(s, GM_REMAPPED_CORRECTABLE, rows.correctable);
        put(s, GM_REMAPPED_UNCORRECTABLE, rows.uncorrectable);
        put(s, GM_REMAPPED_PENDING, rows.pending);
        put(s, GM_REMAPPED_FAILED, rows.failure);
    }
    if (s->failure)
        return;
    if (ok(s, nvml_device_pcie_replay_counter(n, d, &u)))
        put(s, GM_PCIE_REPLAY, u);
    if (ok(s, nvml_device_pcie_link_generation(n, d, &u)))
        put(s, GM_PCIE_GENERATION, u);
    if (ok(s, nvml_device_pcie_link_width(n, d, &u)))
        put(s, GM_PCIE_WIDTH, u);
    if (ok(s, nvml_device_field_u64(n, d, NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, &v)))
        put(s, GM_RECOVERY_ACTION, (double)v);
    for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS && !s->failure; link++) {
        if (!ok(s, nvml_device_nvlink_state(n, d, link, &b)))
            break; /* NOT_SUPPORTED: no NVLink; INVALID_ARGUMENT: past the last link */
        s->link_up[link] = b;
        s->n_links = link + 1;
    }
}

struct gpu_snapshot *gpu_snapshot_free(struct gpu_snapshot *s)
{
    if (s) {
        free(s->gpus);
        free(s);
    }
    return NULL;
}

/* Failure signals a collection carries, reported after the snapshot is published. */
static void report_findings(struct agent *a, const struct gpu_snapshot *snap)
{
    for (size_t i = 0; i < snap->n; i++) {
        const struct gpu_sample *s = &snap->gpus[i];
        struct agent_gpu *g = &a->gpus[i];
        char reason[48];

        if (s->failure) {
            health_report(a, g, GPU_TIER_FAIL_NOW, nvml_ret_name(s->failure));
            continue;
        }
        if ((s->present & (1ull << GM_REMAPPED_FAILED)) && s->v[GM_REMAPPED_FAILED] > 0)
            health_report(a, g, GPU_TIER_FAIL_NOW, "remapped_rows_failure");
        if ((s->present & (1ull << GM_RECOVERY_ACTION)) && s->v[GM_RECOVERY_ACTION] > 0) {
            (void)snprintf(reason, sizeof reason, "recovery_action_%u",
                           (unsigned)s->v[GM_RECOVERY_ACTION]);
            health_report(a, g, GPU_TIER_FAIL_NOW, reason);
        }
        if ((s->present & (1ull << GM_REMAPPED_PENDING)) && s->v[GM_REMAPPED_PENDING] > 0)
            health_report(a, g, GPU_TIER_DRAIN_LATER, "remapped_rows_pending");
        if ((s->present & (1ull << GM_RETIRED_PENDING)) && s->v[GM_RETIRED_PENDING] > 0)
            health_report(a, g, GPU_TIER_DRAIN_LATER, "retired_pages_pending");
    }
}

struct gpu_snapshot *collect_once(struct agent *a)
{
    struct gpu_snapshot *snap = xcalloc(1, sizeof *snap);
    uint64_t t0 = now_usec();

    snap->n = a->n_gpus;
    snap->gpus = xcalloc(snap->n ? snap->n : 1, sizeof *snap->gpus);
    for (size_t i = 0; i < snap->n; i++) {
        if (!a->gpus[i].dev) {
            snap->gpus[i].failure = NVML_RET_GPU_IS_LOST;
            continue;
        }
        collect_gpu(a->nvml, a->gpus[i].dev, &snap->gpus[i]);
    }
    snap->duration_usec = now_usec() - t0;
    snap->realtime_usec = now_realtime_usec();
    return snap;
}

/* ===== Discovery ===== */

static bool gpu_wanted(const struct agent_config *cfg, unsigned index)
{
    if (cfg->all_gpus)
        return true;
    for (size_t i = 0; i < cfg->n_gpus; i++)
        if (cfg->gpus[i] == index)
            return true;
    return false;
}

/* Identity of every GPU, read once: a GPU may be unreadable by the time it fails. */
static void discover(struct agent *a, struct nvml *n)
{
    struct agent_gpu *gpus;
    unsigned count = 0;
    enum nvml_ret st;

    st = nvml_device_count(n, &count);
    if (st != NVML_RET_SUCCESS) {
        log_warning("nvmlDeviceGetCount failed: %s, assuming no GPUs", nvml_ret_string(n, st));
        count = 0;
    }
    if (count > AGENT_MAX_GPUS) {
        log_warning("%u GPUs found, watching the first %u", count, AGENT_MAX_GPUS);
        count = AGENT_MAX_GPUS;
    }
    gpus = xcalloc(count ? count : 1, sizeof *gpus);
    for (unsigned i = 0; i < count; i++) {
        struct agent_gpu *g = &gpus[i];
        struct nvml_pci pci;

        g->index = i;
        g->healthy = true;
        g->worker = WORKER_NONE;
        (void)snprintf(g->service, sizeof g->service, "gpu%u", i);
        g->has_worker = a->cfg->worker.present && gpu_wanted(a->cfg, i);
        if (g->has_worker)
            g->worker = WORKER_UNKNOWN;
        st = nvml_device_by_index(n, i, &g->dev);
        if (st != NVML_RET_SUCCESS) {
            g->dev = NULL;
            log_error("GPU %u: nvmlDeviceGetHandleByIndex failed: %s", i, nvml_ret_string(n, st));
            continue;
        }
        (void)nvml_device_uuid(n, g->dev, g->uuid, sizeof g->uuid);
        (void)nvml_device_name(n, g->dev, g->name, sizeof g->name);
        if (nvml_device_pci(n, g->dev, &pci) == NVML_RET_SUCCESS)
            (void)snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "%s", pci.bus_id);
        g->has_minor = nvml_device_minor_number(n, g->dev, &g->minor) == NVML_RET_SUCCESS;
        log_info("GPU %u: %s %s at %s%s", i, g->name, g->uuid, g->pci_bus_id,
                 g->has_worker ? "" : " (no worker)");
    }
    if (!a->cfg->all_gpus)
        for (size_t k = 0; k < a->cfg->n_gpus; k++)
            if (a->cfg->gpus[k] >= count)
                log_warning("GPU %u is configured but not present, no worker for it",
                            a->cfg->gpus[k]);

    pthread_mutex_lock(&a->lock);
    a->gpus = gpus;
    a->n_gpus = count;
    health_load_drains(a);
    a->gen++;
    pthread_mutex_unlock(&a->lock);
    atomic_store(&a->discovered, true);
    if (a->discovered_fd >= 0) {
        uint64_t one = 1;

        if (write(a->discovered_fd, &one, sizeof one) < 0)
            log_warning("cannot signal the discovery, ignoring");
    }
    for (unsigned i = 0; i < count; i++)
        if (!gpus[i].dev)
            health_report(a, &gpus[i], GPU_TIER_FAIL_NOW, "gpu_is_lost");
}

/* Loads NVML (once it works it stays loaded).  true when it is up. */
static bool nvml_bring_up(struct agent *a, bool *logged)
{
    struct err e = ERR_INIT;
    struct nvml *n = NULL;
    int st = 0, r;

    r = nvml_open(a->cfg->nvml_library, &n, &st, &e);
    if (r < 0) {
        pthread_mutex_lock(&a->lock);
        a->nvml_init_status = r == -EIO ? st : 0;
        pthread_mutex_unlock(&a->lock);
        if (!*logged)
            log_warning("NVML is not available (%s); exporting gpu_exporter_nvml_up 0, retrying "
                        "every %us",
                        e.msg, (unsigned)(NVML_RETRY_USEC / USEC_PER_SEC));
        *logged = true;
        return false;
    }
    pthread_mutex_lock(&a->lock);
    (void)nvml_system_driver_version(n, a->driver_version, sizeof a->driver_version);
    (void)nvml_system_nvml_version(n, a->nvml_version, sizeof a->nvml_version);
    if (nvml_system_cuda_driver_version(n, &a->cuda_driver_version) != NVML_RET_SUCCESS)
        a->cuda_driver_version = 0;
    a->nvml_init_status = 0;
    a->nvml = n;
    pthread_mutex_unlock(&a->lock);
    log_notice("NVML is up: driver %s, NVML %s", a->driver_version, a->nvml_version);
    discover(a, n);
    pthread_mutex_lock(&a->lock);
    atomic_store(&a->nvml_up, true);
    a->gen++;
    pthread_mutex_unlock(&a->lock);
    return true;
}

/* Waits until deadline (CLOCK_MONOTONIC usec) or a stop; lock held.  true when stopping. */
static bool wait_until(struct agent *a, uint64_t deadline)
{
    struct timespec ts = { .tv_sec = (time_t)(deadline / USEC_PER_SEC),
                           .tv_nsec = (long)(deadline % USEC_PER_SEC) * 1000 };

    while (!a->stopping && now_usec() < deadline)
        if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
            break;
    return a->stopping;
}

void *collect_thread_main(void *userdata)
{
    struct agent *a = userdata;
    uint64_t interval = a->cfg->collect_interval_usec, next = now_usec();
    bool logged = false;

    for (;;) {
        pthread_mutex_lock(&a->lock);
        if (wait_until(a, next)) {
            pthread_mutex_unlock(&a->lock);
            break;
        }
        pthread_mutex_unlock(&a->lock);
        if (!atomic_load(&a->nvml_up) && !nvml_bring_up(a, &logged)) {
            next = now_usec() + (interval > NVML_RETRY_USEC ? interval : NVML_RETRY_USEC);
            continue;
        }
        {
            struct gpu_snapshot *snap, *old;

            pthread_mutex_lock(&a->lock);
            a->collect_started_usec = now_usec();
            pthread_mutex_unlock(&a->lock);
            snap = collect_once(a);
            pthread_mutex_lock(&a->lock);
            old = a->snap;
            a->snap = snap;
            a->collect_started_usec = 0;
            a->collections++;
            a->gen++;
            pthread_mutex_unlock(&a->lock);
            gpu_snapshot_free(old);
            report_findings(a, snap); /* snap stays valid: only this thread replaces it */
        }
        next += interval;
        if (next < now_usec()) /* a slow pass: skip the missed ticks */
            next = now_usec() + interval;
    }
    return NULL;
}
