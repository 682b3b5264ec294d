/* SPDX-License-Identifier: MIT */
/* expose.c - the agent's state as Prometheus text (format 0.0.4, node_exporter-style names in
 * base units) and as the JSON status behind `infractl gpu status`.  Rendering reads the latest
 * snapshot and the health/worker state under the caller's lock; it never calls NVML.  Values
 * missing from the snapshot (unsupported, sentinel, GPU lost, collection stalled) are omitted,
 * and a family with no sample at all is not written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "metrics/metrics.h"

#define STALL_MIN_USEC   (5 * USEC_PER_SEC)
#define EXPOSE_MAX_BYTES (16u << 20)

struct expo {
    struct buf *out;
    int r;
};

static void emit(struct expo *e, int r)
{
    if (e->r >= 0 && r < 0)
        e->r = r;
}

static void family(struct expo *e, const char *name, const char *type, const char *help)
{
    emit(e, buf_appendf(e->out, "# HELP %s ", name));
    emit(e, metrics_escape_help(e->out, help));
    emit(e, buf_appendf(e->out, "\n# TYPE %s %s\n", name, type));
}

/* name{l0="v0",...} value */
static void sample(struct expo *e, const char *name, const char *const *ln, const char *const *lv,
                   size_t n, double v)
{
    emit(e, metrics_text_sample(e->out, name, ln, lv, n, v));
}

/* A per-GPU sample: gpu and uuid labels, then up to two more. */
static void gpu_sample(struct expo *e, const char *name, const struct agent_gpu *g, const char *l1,
                       const char *v1, const char *l2, const char *v2, double v)
{
    char idx[16];
    const char *ln[4] = { "gpu", "uuid", l1, l2 };
    const char *lv[4] = { idx, g->uuid, v1, v2 };

    (void)snprintf(idx, sizeof idx, "%u", g->index);
    sample(e, name, ln, lv, l2 ? 4 : l1 ? 3 : 2, v);
}

/* ===== Per-GPU values from the snapshot ===== */

struct gm_series {
    enum gpu_metric m;
    const char *label_value, *label2_value; /* values of the extra labels */
};

struct gm_family {
    const char *name, *type, *help;
    const char *label, *label2; /* extra label names, or NULL */
    struct gm_series series[4];
    size_t n;
};

/* A family with one sample per GPU and no extra label. */
#define GM1(name_, type_, help_, m_)                                                           \
    {                                                                                          \
        .name = (name_), .type = (type_), .help = (help_), .series = { { (m_), NULL, NULL } }, \
        .n = 1                                                                                 \
    }

static const struct gm_family gm_families[] = {
    GM1("gpu_utilization_ratio", "gauge",
        "Fraction of the last sample period (1/6 s to 1 s, by product) in which a kernel ran.",
        GM_UTILIZATION),
    GM1("gpu_memory_utilization_ratio", "gauge",
        "Fraction of the last sample period in which device memory was read or written.",
        GM_MEMORY_UTILIZATION),
    GM1("gpu_memory_total_bytes", "gauge", "Total device memory.", GM_MEMORY_TOTAL),
    GM1("gpu_memory_used_bytes", "gauge", "Device memory allocated by processes.", GM_MEMORY_USED),
    GM1("gpu_memory_free_bytes", "gauge", "Device memory not allocated.", GM_MEMORY_FREE),
    GM1("gpu_memory_reserved_bytes", "gauge", "Device memory reserved by the driver and firmware.",
        GM_MEMORY_RESERVED),
    GM1("gpu_temperature_celsius", "gauge", "GPU core temperature.", GM_TEMPERATURE),
    GM1("gpu_memory_temperature_celsius", "gauge", "GPU memory (HBM) temperature.",
        GM_MEMORY_TEMPERATURE),
    GM1("gpu_power_usage_watts", "gauge",
        "Board power draw (a one-second average on Ampere and newer).", GM_POWER_USAGE),
    GM1("gpu_power_limit_watts", "gauge", "Enforced board power limit.", GM_POWER_LIMIT),
    GM1("gpu_energy_joules_total", "counter", "Energy consumed since the driver was loaded.",
        GM_ENERGY),
    { .name = "gpu_clock_hz",
      .type = "gauge",
      .help = "Current clock frequency.",
      .label = "clock",
      .series = { { GM_CLOCK_GRAPHICS, "graphics", NULL },
                  { GM_CLOCK_SM, "sm", NULL },
                  { GM_CLOCK_MEM, "memory", NULL },
                  { GM_CLOCK_VIDEO, "video", NULL } },
      .n = 4 },
    { .name = "gpu_clock_max_hz",
      .type = "gauge",
      .help = "Maximum clock frequency.",
      .label = "clock",
      .series = { { GM_MAX_CLOCK_GRAPHICS, "graphics", NULL },
                  { GM_MAX_CLOCK_SM, "sm", NULL },
                  { GM_MAX_CLOCK_MEM, "memory", NULL },
                  { GM_MAX_CLOCK_VIDEO, "video", NULL } },
      .n = 4 },
    GM1("gpu_performance_state", "gauge", "Performance state: 0 (P0, maximum) to 15 (minimum).",
        GM_PSTATE),
    GM1("gpu_fan_speed_ratio", "gauge", "Fan speed as a fraction of its maximum.", GM_FAN_SPEED),
    GM1("gpu_ecc_enabled", "gauge", "1 when ECC is enabled.", GM_ECC_ENABLED),
    { .name = "gpu_ecc_errors_total",
      .type = "counter",
      .help = "ECC errors: scope volatile counts since the driver loaded, aggregate the lifetime.",
      .label = "type",
      .label2 = "scope",
      .series = { { GM_ECC_CORRECTED_VOLATILE, "corrected", "volatile" },
                  { GM_ECC_UNCORRECTED_VOLATILE, "uncorrected", "volatile" },
                  { GM_ECC_CORRECTED_AGGREGATE, "corrected", "aggregate" },
                  { GM_ECC_UNCORRECTED_AGGREGATE, "uncorrected", "aggregate" } },
      .n = 4 },
    { .name = "gpu_retired_pages_total",
      .type = "counter",
      .help = "Memory pages retired, by cause.",
      .label = "cause",
      .series = { { GM_RETIRED_SBE, "multiple_sbe", NULL }, { GM_RETIRED_DBE, "dbe", NULL } },
      .n = 2 },
    GM1("gpu_retired_pages_pending", "gauge",
        "1 when pages are waiting to be retired at the next reset.", GM_RETIRED_PENDING),
    { .name = "gpu_remapped_rows_total",
      .type = "counter",
      .help = "Memory rows remapped, by error type.",
      .label = "type",
      .series = { { GM_REMAPPED_CORRECTABLE, "correctable", NULL },
                  { GM_REMAPPED_UNCORRECTABLE, "uncorrectable", NULL } },
      .n = 2 },
    GM1("gpu_remapped_rows_pending", "gauge", "1 when a row remap waits for a GPU reset.",
        GM_REMAPPED_PENDING),
    GM1("gpu_remapped_rows_failed", "gauge", "1 when a row remap failed (the GPU needs service).",
        GM_REMAPPED_FAILED),
    GM1("gpu_pcie_replay_errors_total", "counter", "PCIe replays since the driver loaded.",
        GM_PCIE_REPLAY),
    GM1("gpu_pcie_link_generation", "gauge", "Current PCIe link generation.", GM_PCIE_GENERATION),
    GM1("gpu_pcie_link_width", "gauge", "Current PCIe link width (lanes).", GM_PCIE_WIDTH),
    GM1("gpu_recovery_action", "gauge",
        "NVML's recovery action: 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain and "
        "reset.",
        GM_RECOVERY_ACTION),
};

/* The sample of GPU i when its values may be shown, else NULL. */
static const struct gpu_sample *usable(const struct gpu_snapshot *snap, size_t i, bool stalled)
{
    if (!snap || stalled || i >= snap->n || snap->gpus[i].failure)
        return NULL;
    return &snap->gpus[i];
}

static void write_gm_families(struct expo *e, const struct agent *a, bool stalled)
{
    for (size_t f = 0; f < ARRAY_SIZE(gm_families); f++) {
        const struct gm_family *fam = &gm_families[f];
        bool header = false;

        for (size_t i = 0; i < a->n_gpus; i++) {
            const struct gpu_sample *s = usable(a->snap, i, stalled);

            for (size_t k = 0; s && k < fam->n; k++) {
                const struct gm_series *se = &fam->series[k];

                if (!(s->present & (1ull << se->m)))
                    continue;
                if (!header) {
                    family(e, fam->name, fam->type, fam->help);
                    header = true;
                }
                gpu_sample(e, fam->name, &a->gpus[i], fam->label, se->label_value, fam->label2,
                           se->label2_value, s->v[se->m]);
            }
        }
    }
}

static void write_reasons(struct expo *e, const struct agent *a, bool stalled)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } reasons[] = {
        { NVML_CLOCKS_EVENT_GPU_IDLE, "gpu_idle" },
        { NVML_CLOCKS_EVENT_APPLICATIONS_CLOCKS, "applications_clocks_setting" },
        { NVML_CLOCKS_EVENT_SW_POWER_CAP, "sw_power_cap" },
        { NVML_CLOCKS_EVENT_HW_SLOWDOWN, "hw_slowdown" },
        { NVML_CLOCKS_EVENT_SYNC_BOOST, "sync_boost" },
        { NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown" },
        { NVML_CLOCKS_EVENT_HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown" },
        { NVML_CLOCKS_EVENT_HW_POWER_BRAKE, "hw_power_brake_slowdown" },
        { NVML_CLOCKS_EVENT_DISPLAY_CLOCK, "display_clock_setting" },
    };
    bool header = false;

    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct gpu_sample *s = usable(a->snap, i, stalled);

        if (!s || !s->has_reasons)
            continue;
        if (!header) {
            family(e, "gpu_clocks_event_reasons", "gauge",
                   "1 while the reason holds clocks down (throttling); gpu_idle is benign.");
            header = true;
        }
        for (size_t k = 0; k < ARRAY_SIZE(reasons); k++)
            gpu_sample(e, "gpu_clocks_event_reasons", &a->gpus[i], "reason", reasons[k].name, NULL,
                       NULL, (s->reasons & reasons[k].bit) ? 1 : 0);
    }
    header = false;
    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct gpu_sample *s = usable(a->snap, i, stalled);

        for (unsigned l = 0; s && l < s->n_links; l++) {
            char link[8];

            if (!header) {
                family(e, "gpu_nvlink_up", "gauge", "1 when the NVLink link is active.");
                header = true;
            }
            (void)snprintf(link, sizeof link, "%u", l);
            gpu_sample(e, "gpu_nvlink_up", &a->gpus[i], "link", link, NULL, NULL,
                       s->link_up[l] ? 1 : 0);
        }
    }
}

/* ===== Health, XIDs and workers (kept outside the collection path) ===== */

static void write_xids(struct expo *e, const struct agent *a)
{
    static const char *const names[] = { "gpu_xid_errors_total", "gpu_xid_last_timestamp_seconds" };
    static const char *const helps[] = {
        "XID errors reported by the driver since the agent started, by XID.",
        "When the XID was last reported (unix time).",
    };

    for (size_t f = 0; f < 2; f++) {
        bool header = false;

        for (size_t i = 0; i < a->n_gpus; i++) {
            const struct agent_gpu *g = &a->gpus[i];

            for (size_t k = 0; k < g->n_xids; k++) {
                char xid[16];

                if (!header) {
                    family(e, names[f], f == 0 ? "counter" : "gauge", helps[f]);
                    header = true;
                }
                (void)snprintf(xid, sizeof xid, "%u", g->xids[k].xid);
                gpu_sample(e, names[f], g, "xid", xid, NULL, NULL,
                           f == 0 ? (double)g->xids[k].count
                                  : (double)(g->xids[k].last_realtime_usec / 1000) / 1e3);
            }
        }
    }
}

static void write_health(struct expo *e, const struct agent *a)
{
    bool header = false;

    if (a->n_gpus == 0)
        return;
    family(e, "gpu_healthy", "gauge",
           "1 unless a failure (fail-now or drain-later XID, GPU lost, reset required, "
           "row remap failure) was seen since the last undrain.");
    for (size_t i = 0; i < a->n_gpus; i++)
        gpu_sample(e, "gpu_healthy", &a->gpus[i], NULL, NULL, NULL, NULL,
                   a->gpus[i].healthy ? 1 : 0);
    family(e, "gpu_drained", "gauge",
           "1 while the GPU is out of service: its worker is stopped (or finishing its task) "
           "until an operator undrains it.");
    for (size_t i = 0; i < a->n_gpus; i++)
        gpu_sample(e, "gpu_drained", &a->gpus[i], NULL, NULL, NULL, NULL,
                   a->gpus[i].drained ? 1 : 0);
    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct agent_gpu *g = &a->gpus[i];

        if (!g->drained)
            continue;
        if (!header) {
            family(e, "gpu_drain_info", "gauge", "Why a drained GPU is out of service.");
            header = true;
        }
        gpu_sample(e, "gpu_drain_info", g, "reason", g->reason, "tier", gpu_tier_to_string(g->tier),
                   1);
    }
}

static void write_workers(struct expo *e, const struct agent *a)
{
    bool any = false;

    for (size_t i = 0; i < a->n_gpus; i++)
        any = any || a->gpus[i].has_worker;
    if (!any)
        return;
    family(e, "gpu_worker_state", "gauge",
           "1 for the state the GPU's supervised worker is in (supervisor states).");
    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct agent_gpu *g = &a->gpus[i];

        if (!g->has_worker)
            continue;
        for (unsigned s = WORKER_STOPPED; s < _WORKER_STATE_MAX; s++)
            gpu_sample(e, "gpu_worker_state", g, "state",
                       worker_state_to_string((enum worker_state)s), NULL, NULL,
                       g->worker == s ? 1 : 0);
    }
    family(e, "gpu_worker_restarts_total", "counter",
           "Times the GPU's worker was started again after its first start.");
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].has_worker)
            gpu_sample(e, "gpu_worker_restarts_total", &a->gpus[i], NULL, NULL, NULL, NULL,
                       a->gpus[i].worker_restarts);
}

/* ===== The exporter itself ===== */

struct err_ctx {
    struct expo *e;
    const struct nvml *n;
    bool header;
};

static void write_nvml_error(enum nvml_fn fn, enum nvml_ret st, uint64_t count, void *userdata)
{
    struct err_ctx *c = userdata;
    const char *ln[] = { "function", "error" };
    const char *lv[] = { nvml_fn_name(c->n, fn), nvml_ret_name(st) };

    if (!c->header) {
        family(c->e, "gpu_exporter_nvml_errors_total", "counter",
               "NVML calls that failed, by function and error (not_supported is not counted).");
        c->header = true;
    }
    sample(c->e, "gpu_exporter_nvml_errors_total", ln, lv, 2, (double)count);
}

static void write_exporter(struct expo *e, const struct agent *a, bool stalled)
{
    const char *ln[] = { "version" }, *lv[] = { UT_VERSION };
    bool up = atomic_load(&a->nvml_up);

    family(e, "gpu_exporter_build_info", "gauge", "gpu_agent's version.");
    sample(e, "gpu_exporter_build_info", ln, lv, 1, 1);
    family(e, "gpu_exporter_nvml_up", "gauge",
           "1 when NVML is loaded and initialized (0: no driver or library; retried).");
    sample(e, "gpu_exporter_nvml_up", NULL, NULL, 0, up ? 1 : 0);
    family(e, "gpu_exporter_collections_total", "counter",
           "Background collections completed (values are served from the latest one).");
    sample(e, "gpu_exporter_collections_total", NULL, NULL, 0, (double)a->collections);
    if (a->snap) {
        family(e, "gpu_exporter_collect_duration_seconds", "gauge",
               "How long the latest collection took.");
        sample(e, "gpu_exporter_collect_duration_seconds", NULL, NULL, 0,
               (double)a->snap->duration_usec / 1e6);
        family(e, "gpu_exporter_last_collect_timestamp_seconds", "gauge",
               "When the latest collection finished (unix time).");
        sample(e, "gpu_exporter_last_collect_timestamp_seconds", NULL, NULL, 0,
               (double)(a->snap->realtime_usec / 1000) / 1e3);
    }
    family(e, "gpu_exporter_collect_stalled", "gauge",
           "1 while a collection hangs in NVML; per-GPU values are then withheld.");
    sample(e, "gpu_exporter_collect_stalled", NULL, NULL, 0, stalled ? 1 : 0);
    {
        struct err_ctx c = { .e = e, .n = a->nvml, .header = false };

        nvml_error_foreach(a->nvml, write_nvml_error, &c);
    }
    if (a->xid_unmatched) {
        family(e, "gpu_exporter_xid_unmatched_total", "counter",
               "XID events from a device the agent does not know.");
        sample(e, "gpu_exporter_xid_unmatched_total", NULL, NULL, 0, (double)a->xid_unmatched);
    }
}

static void write_identity(struct expo *e, const struct agent *a)
{
    char cuda[16] = "";

    family(e, "gpu_devices", "gauge", "GPUs NVML reports (0 without a driver).");
    sample(e, "gpu_devices", NULL, NULL, 0, (double)a->n_gpus);
    if (a->n_gpus == 0)
        return;
    if (a->cuda_driver_version > 0)
        (void)snprintf(cuda, sizeof cuda, "%d.%d", a->cuda_driver_version / 1000,
                       a->cuda_driver_version % 1000 / 10);
    family(e, "gpu_info", "gauge", "GPU identity; the value is always 1.");
    for (size_t i = 0; i < a->n_gpus; i++) {
        const struct agent_gpu *g = &a->gpus[i];
        char idx[16], minor[16] = "";
        const char *ln[] = { "gpu",   "uuid",           "name",        "pci_bus_id",
                             "minor", "driver_version", "cuda_version" };
        const char *lv[] = { idx, g->uuid, g->name, g->pci_bus_id, minor, a->driver_version, cuda };

        (void)snprintf(idx, sizeof idx, "%u", g->index);
        if (g->has_minor)
            (void)snprintf(minor, sizeof minor, "%u", g->minor);
        sample(e, "gpu_info", ln, lv, ARRAY_SIZE(ln), 1);
    }
}

/* A collection running for 3 intervals (5 s at least) hangs in NVML. */
static bool is_stalled(const struct agent *a, uint64_t now_usec)
{
    uint64_t stall = 3 * a->cfg->collect_interval_usec;

    if (stall < STALL_MIN_USEC)
        stall = STALL_MIN_USEC;
    return a->collect_started_usec > 0 && now_usec > a->collect_started_usec + stall;
}

int expose_metrics(const struct agent *a, uint64_t now_usec, struct buf *out)
{
    struct expo e = { .out = out, .r = 0 };
    bool stalled = is_stalled(a, now_usec);

    write_exporter(&e, a, stalled);
    write_identity(&e, a);
    write_gm_families(&e, a, stalled);
    write_reasons(&e, a, stalled);
    write_xids(&e, a);
    write_health(&e, a);
    write_workers(&e, a);
    return e.r;
}

int expose_metrics_cached(struct agent *a, uint64_t now_usec, const char **ret, size_t *ret_len)
{
    bool stalled = is_stalled(a, now_usec);
    int r;

    if (!a->metrics_cache) {
        a->metrics_cache = xmalloc(sizeof *a->metrics_cache);
        buf_init(a->metrics_cache, EXPOSE_MAX_BYTES);
    }
    if (!a->cache_valid || a->cache_gen != a->gen || a->cache_stalled != stalled) {
        buf_reset(a->metrics_cache);
        r = expose_metrics(a, now_usec, a->metrics_cache);
        if (r < 0) {
            a->cache_valid = false;
            return r;
        }
        a->cache_valid = true;
        a->cache_gen = a->gen;
        a->cache_stalled = stalled;
    }
    *ret = buf_str(a->metrics_cache);
    *ret_len = a->metrics_cache->len;
    return 0;
}

/* ===== JSON status ===== */

static json_t *gpu_json(const struct agent *a, size_t i)
{
    const struct agent_gpu *g = &a->gpus[i];
    const struct gpu_sample *s = usable(a->snap, i, false);
    json_t *o, *xids = json_array(), *worker;

    for (size_t k = 0; k < g->n_xids; k++)
        (void)json_array_append_new(xids,
                                    json_pack("{s:I, s:I, s:f}", "xid", (json_int_t)g->xids[k].xid,
                                              "count", (json_int_t)g->xids[k].count, "last",
                                              (double)g->xids[k].last_realtime_usec / 1e6));
    worker = g->has_worker
                     ? json_pack("{s:s, s:s, s:o, s:I}", "service", g->service, "state",
                                 worker_state_to_string(g->worker), "pid",
                                 g->worker_pid > 0 ? json_integer(g->worker_pid) : json_null(),
                                 "restarts", (json_int_t)g->worker_restarts)
                     : json_null();
    o = json_pack("{s:I, s:s, s:s, s:s, s:b, s:b, s:s, s:o, s:o, s:o, s:o}", "index",
                  (json_int_t)g->index, "uuid", g->uuid, "name", g->name, "pci_bus_id",
                  g->pci_bus_id, "healthy", g->healthy, "drained", g->drained, "tier",
                  g->drained ? gpu_tier_to_string(g->tier) : "none", "reason",
                  g->reason[0] ? json_string(g->reason) : json_null(), "since",
                  g->since_realtime_usec ? json_real((double)g->since_realtime_usec / 1e6)
                                         : json_null(),
                  "worker", worker, "xids", xids);
    if (s) {
        static const struct {
            const char *key;
            enum gpu_metric m;
        } vals[] = {
            { "utilization_ratio", GM_UTILIZATION },   { "memory_used_bytes", GM_MEMORY_USED },
            { "memory_total_bytes", GM_MEMORY_TOTAL }, { "temperature_celsius", GM_TEMPERATURE },
            { "power_usage_watts", GM_POWER_USAGE },
        };

        for (size_t k = 0; k < ARRAY_SIZE(vals); k++)
            if (s->present & (1ull << vals[k].m))
                (void)json_object_set_new(o, vals[k].key, json_real(s->v[vals[k].m]));
    } else if (a->snap && i < a->snap->n && a->snap->gpus[i].failure) {
        (void)json_object_set_new(o, "nvml_error",
                                  json_string(nvml_ret_name(a->snap->gpus[i].failure)));
    }
    return o;
}

char *expose_status_json(const struct agent *a)
{
    json_t *gpus = json_array(), *root;
    char *text;

    for (size_t i = 0; i < a->n_gpus; i++)
        (void)json_array_append_new(gpus, gpu_json(a, i));
    root = json_pack("{s:s, s:s, s:b, s:s, s:I, s:b, s:o}", "host", a->hostname, "version",
                     UT_VERSION, "nvml_up", atomic_load(&a->nvml_up), "driver_version",
                     a->driver_version, "gpu_count", (json_int_t)a->n_gpus, "supervisor_up",
                     atomic_load(&a->supervisor_up), "gpus", gpus);
    text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        BUG("cannot encode the status (out of memory)");
    return text;
}
