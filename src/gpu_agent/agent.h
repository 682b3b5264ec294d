/* SPDX-License-Identifier: MIT */
/* agent.h - gpu_agent's shared state and the entry points of its parts:
 *
 *   collect.c  NVML discovery and the background collection thread (latest snapshot)
 *   health.c   XID classification, the NVML event thread, drains and their persistence
 *   workers.c  the per-GPU workers' supervisor spec, requests and the worker status thread
 *   expose.c   /metrics text and the JSON status, rendered from the state below
 *   api.c      HTTP routes
 *
 * Threads: main (the supervision engine, sv_run()), the HTTP server's, collect, health and
 * workers.  Everything mutable below is guarded by agent.lock unless marked otherwise; the GPU
 * list itself (identity fields) is written once, by discovery, before agent.discovered is set,
 * and never changes afterwards.  No NVML call and no supervisor request is made with the lock
 * held, so a hanging driver never blocks a scrape. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core/macro.h"
#include "nvml/nvml.h"

struct buf;
struct http_server;

/* ===== Snapshot of one collection ===== */

/* Per-GPU scalar values, in base units (ratio, bytes, celsius, watts, joules, hertz). */
enum gpu_metric {
    GM_UTILIZATION,
    GM_MEMORY_UTILIZATION,
    GM_MEMORY_TOTAL,
    GM_MEMORY_USED,
    GM_MEMORY_FREE,
    GM_MEMORY_RESERVED,
    GM_TEMPERATURE,
    GM_MEMORY_TEMPERATURE,
    GM_POWER_USAGE,
    GM_POWER_LIMIT,
    GM_ENERGY,
    GM_CLOCK_GRAPHICS,
    GM_CLOCK_SM,
    GM_CLOCK_MEM,
    GM_CLOCK_VIDEO,
    GM_MAX_CLOCK_GRAPHICS,
    GM_MAX_CLOCK_SM,
    GM_MAX_CLOCK_MEM,
    GM_MAX_CLOCK_VIDEO,
    GM_PSTATE,
    GM_FAN_SPEED,
    GM_ECC_ENABLED,
    GM_ECC_CORRECTED_VOLATILE,
    GM_ECC_UNCORRECTED_VOLATILE,
    GM_ECC_CORRECTED_AGGREGATE,
    GM_ECC_UNCORRECTED_AGGREGATE,
    GM_RETIRED_SBE,
    GM_RETIRED_DBE,
    GM_RETIRED_PENDING,
    GM_REMAPPED_CORRECTABLE,
    GM_REMAPPED_UNCORRECTABLE,
    GM_REMAPPED_PENDING,
    GM_REMAPPED_FAILED,
    GM_PCIE_REPLAY,
    GM_PCIE_GENERATION,
    GM_PCIE_WIDTH,
    GM_RECOVERY_ACTION,
    _GM_MAX,
};

struct gpu_sample {
    uint64_t present; /* bit m set: v[m] holds a valid value (unsupported ones are absent) */
    double v[_GM_MAX];
    bool has_reasons;
    uint64_t reasons; /* NVML_CLOCKS_EVENT_* */
    unsigned n_links; /* NVLink links reported (0: no NVLink) */
    bool link_up[NVML_NVLINK_MAX_LINKS];
    enum nvml_ret failure; /* GPU_IS_LOST / RESET_REQUIRED seen in this collection, else 0 */
};

struct gpu_snapshot {
    uint64_t realtime_usec; /* when the collection finished */
    uint64_t duration_usec;
    size_t n;                /* agent.n_gpus at the time */
    struct gpu_sample *gpus; /* n, owned */
};

/* ===== Per-GPU state ===== */

#define AGENT_MAX_XID_KINDS 64 /* distinct XIDs tracked per GPU */

struct agent_xid {
    unsigned xid;
    uint64_t count;
    uint64_t last_realtime_usec;
};

enum worker_state {
    WORKER_NONE, /* no worker configured for this GPU */
    WORKER_UNKNOWN,
    WORKER_STOPPED,
    WORKER_WAITING,
    WORKER_STARTING,
    WORKER_RUNNING,
    WORKER_STOPPING,
    WORKER_BACKOFF,
    WORKER_EXITED,
    WORKER_FAILED,
    _WORKER_STATE_MAX,
};

struct agent_gpu {
    /* identity: written by discovery only */
    unsigned index;
    struct nvml_device *dev; /* NULL when NVML could not hand it out (lost at startup) */
    char uuid[NVML_UUID_SIZE];
    char name[NVML_NAME_SIZE];
    char pci_bus_id[NVML_PCI_BUS_ID_SIZE];
    unsigned minor;
    bool has_minor;
    bool has_worker;
    char service[16]; /* supervised worker name: "gpu<index>" */

    /* health (lock) */
    bool drained;       /* its worker is kept stopped until an operator undrains it */
    bool healthy;       /* false from a drain-later or fail-now signal until undrain */
    enum gpu_tier tier; /* of the drain; GPU_TIER_COUNT when not drained */
    char reason[48];    /* "xid_79", "gpu_is_lost", "operator", ... ("" when healthy) */
    uint64_t since_realtime_usec;
    struct agent_xid xids[AGENT_MAX_XID_KINDS];
    size_t n_xids;

    /* worker (lock): as the supervisor last reported it */
    enum worker_state worker;
    int worker_pid; /* 0 when none */
    unsigned worker_restarts;
};

/* ===== The agent ===== */

struct agent {
    const struct agent_config *cfg; /* borrowed */
    char hostname[256];
    char *api_token; /* NULL when the API is open */

    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on stop and to wake the workers thread */
    bool stopping;

    /* NVML: set once by the collect thread (then read without the lock) */
    struct nvml *nvml;
    _Atomic bool nvml_up;
    char driver_version[NVML_VERSION_STRING_SIZE];
    char nvml_version[NVML_VERSION_STRING_SIZE];
    int cuda_driver_version; /* 0 = unknown */
    int nvml_init_status;    /* last failed init's NVML status, 0 when up or unknown */

    /* GPUs: set once by discovery, then fixed */
    struct agent_gpu *gpus;
    size_t n_gpus;
    _Atomic bool discovered;
    int discovered_fd; /* eventfd: becomes readable at discovery (main waits on it) */

    /* Bumped (under lock) by every change the exposition shows, so a scrape can serve the
     * text rendered for the same generation (expose_metrics_cached()). */
    uint64_t gen;
    struct buf *metrics_cache; /* owned; rendered for (cache_gen, cache_stalled) */
    uint64_t cache_gen;
    bool cache_stalled, cache_valid;

    /* collection (lock) */
    struct gpu_snapshot *snap;     /* latest complete collection, owned; NULL before the first */
    uint64_t collect_started_usec; /* monotonic start of the collection in progress, 0 if idle */
    uint64_t collections;
    uint64_t xid_unmatched; /* XID events from a device we do not know */

    /* workers */
    _Atomic bool supervisor_up;      /* the supervisor answered its control socket */
    _Atomic bool events_resubscribe; /* the health thread must rebuild its event set */
    pthread_mutex_t action_lock;     /* serializes supervisor requests (drain vs undrain) */

    pthread_t collect_thread, health_thread, workers_thread;
    bool collect_started, health_started, workers_started;
    bool threads_stuck; /* a thread did not stop (hung in NVML): its data is never freed */
};

/* ===== agent lifetime (main.c / tests) ===== */

/* Initializes a (zeroed by the caller) for cfg (borrowed).  0 or -errno. */
int agent_init(struct agent *a, const struct agent_config *cfg) WARN_UNUSED_RESULT;
/* Stops and joins the threads, frees everything a owns.  Idempotent.  A thread that does not
 * stop within 3 s (hung in NVML) is left running and nothing it may use is freed. */
void agent_release(struct agent *a);
/* Starts the collect, health and workers threads.  0 or -errno. */
int agent_start_threads(struct agent *a) WARN_UNUSED_RESULT;
/* Asks every thread to stop and joins them. */
void agent_stop_threads(struct agent *a);

/* ===== collect.c ===== */

void *collect_thread_main(void *userdata);
/* One collection of every GPU into a new snapshot (caller frees with gpu_snapshot_free());
 * reports GPU failures it sees to health_report().  NVML must be up. */
struct gpu_snapshot *collect_once(struct agent *a);
struct gpu_snapshot *gpu_snapshot_free(struct gpu_snapshot *s);
/* Range checks for raw NVML values: false for sentinels (0xFFFFFFFF, NVML_VALUE_NOT_AVAILABLE)
 * and impossible readings, which are dropped instead of exported. */
bool collect_value_plausible(enum gpu_metric m, double v);

/* ===== health.c ===== */

/* The tier of XID xid under cfg's table (XIDs beyond the table: counted only). */
enum gpu_tier health_classify_xid(const struct agent_config *cfg, uint64_t xid);
/* The tier of an NVML status returned by a device call: GPU_IS_LOST and RESET_REQUIRED fail
 * the GPU now, anything else says nothing about its health. */
enum gpu_tier health_classify_status(enum nvml_ret st);
/* Records an XID event for g (counter, last-seen time) and acts on its tier. */
void health_on_xid(struct agent *a, struct agent_gpu *g, uint64_t xid);
/* Drains g for tier (DRAIN_LATER or FAIL_NOW) because of reason: marks it unhealthy and
 * drained, persists that, and stops its worker (at once, or after its current task).  A
 * stronger tier escalates a drain in progress; a weaker or equal one changes nothing. */
void health_report(struct agent *a, struct agent_gpu *g, enum gpu_tier tier, const char *reason);
/* Operator: drain (tier DRAIN_LATER or FAIL_NOW, reason "operator") / undrain (healthy again,
 * worker started).  0, or -errno from the supervisor request (the state change stands). */
int health_drain(struct agent *a, struct agent_gpu *g, enum gpu_tier tier);
int health_undrain(struct agent *a, struct agent_gpu *g);
/* Loads STATE/drained into the GPUs (at discovery, lock held). */
void health_load_drains(struct agent *a);
void *health_thread_main(void *userdata);

/* ===== workers.c ===== */

struct sv_spec;
/* The supervisor's input: one worker per GPU that has one (at least one must; -ENOENT).
 * Caller frees with sv_spec_free(). */
int workers_build_spec(const struct agent *a, struct sv_spec **ret) WARN_UNUSED_RESULT;
/* NULL-terminated names of the workers of drained GPUs (caller frees the array only). */
const char **workers_held(const struct agent *a);
/* Asks the supervisor to stop g's worker as tier demands, or to start it.  0 or -errno. */
int workers_stop(struct agent *a, struct agent_gpu *g, enum gpu_tier tier) WARN_UNUSED_RESULT;
int workers_start(struct agent *a, struct agent_gpu *g) WARN_UNUSED_RESULT;
/* Reads the supervisor's status and reconciles it with the drains: a drained GPU's live worker
 * is stopped, an undrained GPU's stopped worker started.  0 or -errno (no supervisor yet). */
int workers_refresh(struct agent *a);
/* sv_options.on_change for the workers' supervisor: records a worker's state, pid and restarts
 * as the supervisor changes them, so the API never reports a stale state. */
struct sv_service_change;
void workers_on_change(const struct sv_service_change *change, void *userdata);
void *workers_thread_main(void *userdata);
const char *worker_state_to_string(enum worker_state s);

/* ===== expose.c (caller holds a->lock) ===== */

/* The Prometheus text exposition of everything the agent knows.  now_usec is
 * CLOCK_MONOTONIC (for the stall check).  -ENOBUFS when out->max is hit. */
int expose_metrics(const struct agent *a, uint64_t now_usec, struct buf *out) WARN_UNUSED_RESULT;
/* The same through a cache: re-rendered only when a->gen or the stall state changed since the
 * last call, so scrapes between two collections cost a copy.  *ret (borrowed, valid while the
 * lock is held) and *ret_len get the text.  -ENOBUFS, -ENOMEM. */
int expose_metrics_cached(struct agent *a, uint64_t now_usec, const char **ret,
                          size_t *ret_len) WARN_UNUSED_RESULT;
/* The JSON status served at /api/v1/gpus (caller frees). */
char *expose_status_json(const struct agent *a);

/* ===== api.c ===== */

int api_start(struct agent *a, const char *listen, struct http_server **ret) WARN_UNUSED_RESULT;
/* g by "0" (index) or its UUID; NULL when none. */
struct agent_gpu *agent_find_gpu(struct agent *a, const char *id);
