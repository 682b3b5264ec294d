/* SPDX-License-Identifier: MIT */
/* gpu_agent's /metrics text against a golden file (tests/golden/gpu_metrics.txt; regenerate
 * with T_REGEN=1), and what is left out: unsupported values, a lost GPU's values, everything
 * per GPU while a collection hangs, and the no-driver case. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "gpu_agent/agent.h"
#include "t.h"

#define GOLDEN UT_SOURCE_DIR "/tests/golden/gpu_metrics.txt"

struct fixture {
    struct agent_config *cfg;
    struct agent a;
    struct agent_gpu gpus[2];
    struct gpu_snapshot snap;
    struct gpu_sample samples[2];
};

static void set(struct gpu_sample *s, enum gpu_metric m, double v)
{
    s->v[m] = v;
    s->present |= 1ull << m;
}

/* Two H200s as the fake NVML seeds them; GPU 0 drained after XID 79, XID 13 on GPU 1. */
static void fixture_init(struct fixture *f)
{
    static const char text[] = "state_dir: /tmp/unused\nhostname: server1\n"
                               "worker:\n  command: [/bin/true]\n";
    struct err e = ERR_INIT;

    memset(f, 0, sizeof *f);
    ASSERT_OK(agent_config_parse("t.yml", text, sizeof text - 1, &f->cfg, &e));
    f->a.cfg = f->cfg;
    (void)snprintf(f->a.hostname, sizeof f->a.hostname, "server1");
    atomic_store(&f->a.nvml_up, true);
    (void)snprintf(f->a.driver_version, sizeof f->a.driver_version, "580.159.04");
    f->a.cuda_driver_version = 13000;
    f->a.collections = 42;
    for (unsigned i = 0; i < 2; i++) {
        struct agent_gpu *g = &f->gpus[i];
        struct gpu_sample *s = &f->samples[i];

        g->index = i;
        g->healthy = true;
        g->has_worker = true;
        g->has_minor = true;
        g->minor = i;
        g->worker = WORKER_RUNNING;
        g->worker_pid = 100 + (int)i;
        (void)snprintf(g->uuid, sizeof g->uuid, "GPU-74c4c37d-bdf1-9a59-0eed-86aaaccc727%u", i);
        (void)snprintf(g->name, sizeof g->name, "NVIDIA H200");
        (void)snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "00000000:00:0%u.0", 6 + i);
        (void)snprintf(g->service, sizeof g->service, "gpu%u", i);
        set(s, GM_UTILIZATION, i ? 0.97 : 0);
        set(s, GM_MEMORY_UTILIZATION, 0);
        set(s, GM_MEMORY_TOTAL, 150754820096.0);
        set(s, GM_MEMORY_USED, 0);
        set(s, GM_MEMORY_FREE, 150109880320.0);
        set(s, GM_MEMORY_RESERVED, 644939776.0);
        set(s, GM_TEMPERATURE, 39 + i);
        set(s, GM_MEMORY_TEMPERATURE, 41);
        set(s, GM_POWER_USAGE, 102.6);
        set(s, GM_POWER_LIMIT, 700);
        set(s, GM_ENERGY, 8123456.789);
        set(s, GM_CLOCK_GRAPHICS, 345e6);
        set(s, GM_CLOCK_SM, 345e6);
        set(s, GM_CLOCK_MEM, 3201e6);
        set(s, GM_CLOCK_VIDEO, 765e6);
        set(s, GM_MAX_CLOCK_SM, 1980e6);
        set(s, GM_PSTATE, 0);
        set(s, GM_ECC_ENABLED, 1);
        set(s, GM_ECC_CORRECTED_VOLATILE, 0);
        set(s, GM_ECC_UNCORRECTED_VOLATILE, 0);
        set(s, GM_ECC_CORRECTED_AGGREGATE, 3);
        set(s, GM_ECC_UNCORRECTED_AGGREGATE, 0);
        set(s, GM_REMAPPED_CORRECTABLE, 0);
        set(s, GM_REMAPPED_UNCORRECTABLE, 0);
        set(s, GM_REMAPPED_PENDING, 0);
        set(s, GM_REMAPPED_FAILED, 0);
        set(s, GM_PCIE_REPLAY, 0);
        set(s, GM_PCIE_GENERATION, 5);
        set(s, GM_PCIE_WIDTH, 16);
        set(s, GM_RECOVERY_ACTION, 0);
        s->has_reasons = true;
        s->reasons = i ? NVML_CLOCKS_EVENT_SW_POWER_CAP : NVML_CLOCKS_EVENT_GPU_IDLE;
    }
    /* NVLink on GPU 1 only: link 1 down. */
    f->samples[1].n_links = 2;
    f->samples[1].link_up[0] = true;
    f->gpus[0].drained = true;
    f->gpus[0].healthy = false;
    f->gpus[0].tier = GPU_TIER_FAIL_NOW;
    (void)snprintf(f->gpus[0].reason, sizeof f->gpus[0].reason, "xid_79");
    f->gpus[0].worker = WORKER_STOPPED;
    f->gpus[0].worker_pid = 0;
    f->gpus[0].xids[0] =
            (struct agent_xid){ .xid = 79, .count = 1, .last_realtime_usec = 1795896912884332ull };
    f->gpus[0].n_xids = 1;
    f->gpus[1].xids[0] =
            (struct agent_xid){ .xid = 13, .count = 2, .last_realtime_usec = 1795896912891000ull };
    f->gpus[1].n_xids = 1;
    f->gpus[1].worker_restarts = 3;
    f->snap.n = 2;
    f->snap.gpus = f->samples;
    f->snap.duration_usec = 307;
    f->snap.realtime_usec = 1795896910909000ull;
    f->a.gpus = f->gpus;
    f->a.n_gpus = 2;
    f->a.snap = &f->snap;
}

static void fixture_release(struct fixture *f)
{
    agent_config_free(f->cfg);
}

static char *render(struct fixture *f, uint64_t now)
{
    struct buf out = BUF_INIT(0);

    ASSERT_OK(expose_metrics(&f->a, now, &out));
    return buf_detach(&out, NULL);
}

static void test_golden(void)
{
    struct fixture f;
    struct buf want = BUF_INIT(0);
    char *got;

    fixture_init(&f);
    got = render(&f, 1000);
    if (getenv("T_REGEN"))
        ASSERT_OK(file_write_atomic(GOLDEN, got, strlen(got), 0644));
    ASSERT_OK(file_read_all(GOLDEN, &want));
    ASSERT_STREQ(got, buf_str(&want));
    buf_release(&want);
    free(got);
    fixture_release(&f);
}

static void test_unsupported_and_lost_are_omitted(void)
{
    struct fixture f;
    char *got;

    fixture_init(&f);
    f.samples[0].present &= ~(1ull << GM_FAN_SPEED | 1ull << GM_POWER_USAGE);
    f.samples[1].present &= ~(1ull << GM_POWER_USAGE);
    f.samples[1].failure = NVML_RET_GPU_IS_LOST;
    got = render(&f, 1000);
    ASSERT_TRUE(strstr(got, "gpu_fan_speed_ratio") == NULL);
    ASSERT_TRUE(strstr(got, "gpu_power_usage_watts") == NULL); /* no sample: no family */
    ASSERT_TRUE(strstr(got, "4294967295") == NULL);
    ASSERT_CONTAINS(got, "gpu_temperature_celsius{gpu=\"0\"");
    ASSERT_TRUE(strstr(got, "gpu_temperature_celsius{gpu=\"1\"") == NULL);
    /* Identity, XIDs, health and worker state stay for the lost GPU. */
    ASSERT_CONTAINS(got, "gpu_info{gpu=\"1\"");
    ASSERT_CONTAINS(got, "gpu_xid_errors_total{gpu=\"1\"");
    ASSERT_CONTAINS(got, "gpu_healthy{gpu=\"1\"");
    free(got);
    fixture_release(&f);
}

static void test_stalled_collection_withholds_values(void)
{
    struct fixture f;
    char *got;

    fixture_init(&f);
    f.a.collect_started_usec = 1000;
    got = render(&f, 1000 + 4 * USEC_PER_SEC); /* within the 5 s minimum: not stalled */
    ASSERT_CONTAINS(got, "gpu_exporter_collect_stalled 0\n");
    ASSERT_CONTAINS(got, "gpu_temperature_celsius{");
    free(got);
    got = render(&f, 1000 + 6 * USEC_PER_SEC);
    ASSERT_CONTAINS(got, "gpu_exporter_collect_stalled 1\n");
    ASSERT_TRUE(strstr(got, "gpu_temperature_celsius{") == NULL);
    ASSERT_TRUE(strstr(got, "gpu_clocks_event_reasons{") == NULL);
    ASSERT_CONTAINS(got, "gpu_xid_errors_total{");
    ASSERT_CONTAINS(got, "gpu_drained{");
    free(got);
    fixture_release(&f);
}

static void test_no_driver(void)
{
    struct fixture f;
    char *got, *json;

    fixture_init(&f);
    atomic_store(&f.a.nvml_up, false);
    f.a.n_gpus = 0;
    f.a.snap = NULL;
    f.a.collections = 0;
    f.a.driver_version[0] = '\0';
    got = render(&f, 1000);
    ASSERT_CONTAINS(got, "gpu_exporter_nvml_up 0\n");
    ASSERT_CONTAINS(got, "gpu_devices 0\n");
    ASSERT_TRUE(strstr(got, "gpu_info") == NULL);
    ASSERT_TRUE(strstr(got, "gpu_healthy") == NULL);
    json = expose_status_json(&f.a);
    ASSERT_CONTAINS(json, "\"nvml_up\":false");
    ASSERT_CONTAINS(json, "\"gpus\":[]");
    free(json);
    free(got);
    fixture_release(&f);
}

static void test_status_json(void)
{
    struct fixture f;
    char *json;

    fixture_init(&f);
    json = expose_status_json(&f.a);
    ASSERT_CONTAINS(json, "\"host\":\"server1\"");
    ASSERT_CONTAINS(json, "\"index\":0,");
    ASSERT_CONTAINS(json, "\"drained\":true");
    ASSERT_CONTAINS(json, "\"reason\":\"xid_79\"");
    ASSERT_CONTAINS(json, "\"tier\":\"fail_now\"");
    ASSERT_CONTAINS(json, "\"state\":\"stopped\"");
    ASSERT_CONTAINS(json, "\"restarts\":3");
    ASSERT_CONTAINS(json, "\"temperature_celsius\":40");
    free(json);
    fixture_release(&f);
}

static void test_cache_follows_generation(void)
{
    struct fixture f;
    const char *text = NULL;
    size_t n = 0;

    fixture_init(&f);
    ASSERT_OK(expose_metrics_cached(&f.a, 1000, &text, &n));
    ASSERT_CONTAINS(text, "gpu_temperature_celsius{gpu=\"1\",uuid=\"GPU-74c4c37d-bdf1-9a59-0eed-"
                          "86aaaccc7271\"} 40\n");
    ASSERT_EQ(n, strlen(text));
    /* Same generation: the cached text, even though the state changed behind its back. */
    f.samples[1].v[GM_TEMPERATURE] = 77;
    ASSERT_OK(expose_metrics_cached(&f.a, 2000, &text, &n));
    ASSERT_CONTAINS(text, "7271\"} 40\n");
    /* A new generation re-renders; so does a collection turning stalled. */
    f.a.gen++;
    ASSERT_OK(expose_metrics_cached(&f.a, 3000, &text, &n));
    ASSERT_CONTAINS(text, "7271\"} 77\n");
    f.a.collect_started_usec = 3000;
    ASSERT_OK(expose_metrics_cached(&f.a, 3000 + 6 * USEC_PER_SEC, &text, &n));
    ASSERT_CONTAINS(text, "gpu_exporter_collect_stalled 1\n");
    buf_release(f.a.metrics_cache);
    free(f.a.metrics_cache);
    fixture_release(&f);
}

T_MAIN(T_CASE(test_golden), T_CASE(test_cache_follows_generation),
       T_CASE(test_unsupported_and_lost_are_omitted),
       T_CASE(test_stalled_collection_withholds_values), T_CASE(test_no_driver),
       T_CASE(test_status_json))
