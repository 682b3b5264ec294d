/* SPDX-License-Identifier: MIT */
/* gpu_agent's collection and health threads against the fake NVML (no workers): values match
 * the state file, sentinels and unsupported values are dropped, NVLink appears when present,
 * a hanging NVML call never blocks a scrape, XIDs are counted, a lost GPU is drained, and
 * without a driver the agent still answers. */
#include "t.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "fake_nvml/fake_state.h"
#include "gpu_agent/agent.h"

struct fixture {
    struct fake_state fs;
    struct agent_config *cfg;
    struct agent a;
};

static void start(struct fixture *f, const char *extra_state, const char *library)
{
    char text[512];
    struct err e = ERR_INIT;

    memset(f, 0, sizeof *f);
    ASSERT_OK(fake_state_init(&f->fs, extra_state));
    (void)snprintf(text, sizeof text,
                   "state_dir: %s\nhostname: server1\ncollect_interval: 100ms\n"
                   "nvml_library: %s\n",
                   f->fs.dir, library);
    ASSERT_OK(agent_config_parse("t.yml", text, strlen(text), &f->cfg, &e));
    ASSERT_OK(agent_init(&f->a, f->cfg));
    ASSERT_OK(agent_start_threads(&f->a));
}

static void stop(struct fixture *f)
{
    char path[160];

    agent_release(&f->a);
    agent_config_free(f->cfg);
    (void)snprintf(path, sizeof path, "%s/drained", f->fs.dir);
    (void)unlink(path);
    fake_state_cleanup(&f->fs);
}

/* Waits (5 s at most) until a collection finished after `after` collections. */
static void wait_collections(struct fixture *f, uint64_t after)
{
    uint64_t deadline = now_usec() + 5 * USEC_PER_SEC;

    for (;;) {
        bool done;

        pthread_mutex_lock(&f->a.lock);
        done = f->a.snap && f->a.collections > after;
        pthread_mutex_unlock(&f->a.lock);
        if (done)
            return;
        if (now_usec() > deadline)
            T_FAIL("no collection within 5 s");
        sleep_usec(10 * USEC_PER_MSEC);
    }
}

static uint64_t collections(struct fixture *f)
{
    uint64_t n;

    pthread_mutex_lock(&f->a.lock);
    n = f->a.collections;
    pthread_mutex_unlock(&f->a.lock);
    return n;
}

static char *scrape(struct fixture *f)
{
    struct buf out = BUF_INIT(0);

    pthread_mutex_lock(&f->a.lock);
    ASSERT_OK(expose_metrics(&f->a, now_usec(), &out));
    pthread_mutex_unlock(&f->a.lock);
    return buf_detach(&out, NULL);
}

static void test_values_match_state_file(void)
{
    struct fixture f;
    char *m;

    start(&f, NULL, FAKE_NVML_LIB);
    wait_collections(&f, 0);
    m = scrape(&f);
    ASSERT_CONTAINS(m, "gpu_devices 2\n");
    ASSERT_CONTAINS(m, "gpu_info{gpu=\"0\",uuid=\"GPU-74c4c37d-bdf1-9a59-0eed-86aaaccc727d\","
                       "name=\"NVIDIA H200\",pci_bus_id=\"00000000:00:06.0\",minor=\"0\","
                       "driver_version=\"580.159.04\",cuda_version=\"13.0\"} 1\n");
    ASSERT_CONTAINS(m, "gpu_memory_total_bytes{gpu=\"0\",uuid=\"GPU-74c4c37d-bdf1-9a59-0eed-"
                       "86aaaccc727d\"} 150754820096\n");
    ASSERT_CONTAINS(m, "gpu_temperature_celsius{gpu=\"1\",uuid=\"GPU-0b5a4f3e-6c2d-4e8f-9a1b-"
                       "2c3d4e5f6a7b\"} 40\n");
    ASSERT_CONTAINS(m, "gpu_power_usage_watts{gpu=\"0\",uuid=\"GPU-74c4c37d-bdf1-9a59-0eed-"
                       "86aaaccc727d\"} 102.6\n");
    ASSERT_CONTAINS(m, "gpu_energy_joules_total{gpu=\"0\",uuid=\"GPU-74c4c37d-bdf1-9a59-0eed-"
                       "86aaaccc727d\"} 8123456.789\n");
    ASSERT_CONTAINS(m, ",clock=\"memory\"} 3201000000\n");
    ASSERT_CONTAINS(m, "reason=\"gpu_idle\"} 1\n");
    ASSERT_CONTAINS(m, "gpu_exporter_nvml_up 1\n");
    /* N/A on the H200: no fan, no retired pages, no NVLink series at all. */
    ASSERT_TRUE(strstr(m, "gpu_fan_speed_ratio") == NULL);
    ASSERT_TRUE(strstr(m, "gpu_retired_pages_total") == NULL);
    ASSERT_TRUE(strstr(m, "gpu_nvlink_up") == NULL);
    ASSERT_TRUE(strstr(m, "gpu_exporter_nvml_errors_total") == NULL);
    free(m);
    stop(&f);
}

static void test_sentinels_and_nvlink(void)
{
    struct fixture f;
    char *m;

    start(&f,
          "gpu0.util_gpu 4294967295\ngpu0.power_usage_mw 4294967295\ngpu1.pstate 32\n"
          "gpu1.nvlink 1 0 1\ngpu1.error.nvmlDeviceGetPowerUsage 999\n",
          FAKE_NVML_LIB);
    wait_collections(&f, 0);
    m = scrape(&f);
    ASSERT_TRUE(strstr(m, "4294967295") == NULL);
    ASSERT_TRUE(strstr(m, "gpu_utilization_ratio{gpu=\"0\"") == NULL);
    ASSERT_CONTAINS(m, "gpu_utilization_ratio{gpu=\"1\"");
    ASSERT_TRUE(strstr(m, "gpu_power_usage_watts") == NULL);
    ASSERT_TRUE(strstr(m, "gpu_performance_state{gpu=\"1\"") == NULL);
    ASSERT_CONTAINS(m, "gpu_nvlink_up{gpu=\"1\",uuid=\"GPU-0b5a4f3e-6c2d-4e8f-9a1b-2c3d4e5f6a7b\","
                       "link=\"1\"} 0\n");
    ASSERT_CONTAINS(m, "link=\"2\"} 1\n");
    ASSERT_CONTAINS(m, "gpu_exporter_nvml_errors_total{function=\"nvmlDeviceGetPowerUsage\","
                       "error=\"unknown\"}");
    free(m);
    stop(&f);
}

static void test_hanging_nvml_never_blocks_a_scrape(void)
{
    struct fixture f;
    uint64_t t0, worst = 0;
    char *m;

    start(&f, NULL, FAKE_NVML_LIB);
    wait_collections(&f, 0);
    ASSERT_OK(fake_state_set(&f.fs, "gpu1.hang_ms 6500\n"));
    sleep_usec(300 * USEC_PER_MSEC); /* the collector is now stuck inside a GPU 1 call */
    for (int i = 0; i < 50; i++) {
        t0 = now_usec();
        free(scrape(&f));
        if (now_usec() - t0 > worst)
            worst = now_usec() - t0;
        sleep_usec(10 * USEC_PER_MSEC);
    }
    ASSERT_LE(worst, 20 * USEC_PER_MSEC);
    m = scrape(&f);
    ASSERT_CONTAINS(m, "gpu_exporter_collect_stalled 0\n"); /* < 5 s: still the last values */
    ASSERT_CONTAINS(m, "gpu_temperature_celsius{gpu=\"1\"");
    free(m);
    sleep_usec(5500 * USEC_PER_MSEC);
    m = scrape(&f);
    ASSERT_CONTAINS(m, "gpu_exporter_collect_stalled 1\n");
    ASSERT_TRUE(strstr(m, "gpu_temperature_celsius") == NULL);
    free(m);
    ASSERT_OK(fake_state_set(&f.fs, "\n"));
    stop(&f);
}

static void test_xids_and_lost_gpu(void)
{
    struct fixture f;
    uint64_t deadline;
    bool done = false;

    start(&f, NULL, FAKE_NVML_LIB);
    wait_collections(&f, 0);
    sleep_usec(200 * USEC_PER_MSEC); /* the event set is registered */
    ASSERT_OK(fake_state_set(&f.fs, "xid 1 1 13\nxid 2 1 13\nxid 3 0 31\n"));
    deadline = now_usec() + 3 * USEC_PER_SEC;
    while (!done && now_usec() < deadline) {
        pthread_mutex_lock(&f.a.lock);
        done = f.a.gpus[1].n_xids == 1 && f.a.gpus[1].xids[0].count == 2 && f.a.gpus[0].n_xids == 1;
        pthread_mutex_unlock(&f.a.lock);
        sleep_usec(10 * USEC_PER_MSEC);
    }
    ASSERT_TRUE(done);
    ASSERT_TRUE(f.a.gpus[0].healthy && f.a.gpus[1].healthy); /* application XIDs: count only */

    ASSERT_OK(fake_state_set(&f.fs, "xid 1 1 13\nxid 2 1 13\nxid 3 0 31\ngpu1.lost 1\n"));
    done = false;
    deadline = now_usec() + 3 * USEC_PER_SEC;
    while (!done && now_usec() < deadline) {
        pthread_mutex_lock(&f.a.lock);
        done = f.a.gpus[1].drained;
        pthread_mutex_unlock(&f.a.lock);
        sleep_usec(10 * USEC_PER_MSEC);
    }
    ASSERT_TRUE(done);
    ASSERT_FALSE(f.a.gpus[1].healthy);
    ASSERT_EQ(f.a.gpus[1].tier, GPU_TIER_FAIL_NOW);
    ASSERT_STREQ(f.a.gpus[1].reason, "gpu_is_lost");
    ASSERT_FALSE(f.a.gpus[0].drained);
    wait_collections(&f, collections(&f));
    {
        char *m = scrape(&f);

        ASSERT_TRUE(strstr(m, "gpu_temperature_celsius{gpu=\"1\"") == NULL);
        ASSERT_CONTAINS(m, "gpu_temperature_celsius{gpu=\"0\"");
        ASSERT_CONTAINS(m,
                        "gpu_exporter_nvml_errors_total{function=\"nvmlDeviceGetUtilizationRates\","
                        "error=\"gpu_is_lost\"}");
        free(m);
    }
    stop(&f);
}

static void test_no_driver(void)
{
    struct fixture f;
    char *m;

    start(&f, NULL, "/nonexistent/libnvidia-ml.so.1");
    sleep_usec(300 * USEC_PER_MSEC);
    m = scrape(&f);
    ASSERT_CONTAINS(m, "gpu_exporter_nvml_up 0\n");
    ASSERT_CONTAINS(m, "gpu_devices 0\n");
    ASSERT_CONTAINS(m, "gpu_exporter_collections_total 0\n");
    free(m);
    stop(&f);
}

T_MAIN(T_CASE(test_values_match_state_file), T_CASE(test_sentinels_and_nvlink),
       T_CASE(test_hanging_nvml_never_blocks_a_scrape), T_CASE(test_xids_and_lost_gpu),
       T_CASE(test_no_driver))
