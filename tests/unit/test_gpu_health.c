/* SPDX-License-Identifier: MIT */
/* The GPU health model: XID and NVML-status classification (DESIGN.md "GPU health model"),
 * sentinel filtering, and drains (sticky, escalating, persisted in STATE/drained). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "gpu_agent/agent.h"
#include "t.h"

static struct agent_config *config(const char *text)
{
    struct err e = ERR_INIT;
    struct agent_config *c = NULL;

    ASSERT_OK(agent_config_parse("t.yml", text, strlen(text), &c, &e));
    return c;
}

static void test_classify_xids(void)
{
    static const unsigned fail_now[] = { 48, 62, 64, 74, 79, 95, 119, 120, 140 };
    static const unsigned drain_later[] = { 63, 92, 94 };
    static const unsigned count_only[] = { 13, 31, 43, 45, 68, 109, 8, 0, 999 };
    struct agent_config *c = config("");

    for (size_t i = 0; i < ARRAY_SIZE(fail_now); i++)
        ASSERT_EQ(health_classify_xid(c, fail_now[i]), GPU_TIER_FAIL_NOW);
    for (size_t i = 0; i < ARRAY_SIZE(drain_later); i++)
        ASSERT_EQ(health_classify_xid(c, drain_later[i]), GPU_TIER_DRAIN_LATER);
    for (size_t i = 0; i < ARRAY_SIZE(count_only); i++)
        ASSERT_EQ(health_classify_xid(c, count_only[i]), GPU_TIER_COUNT);
    ASSERT_EQ(health_classify_xid(c, 100000), GPU_TIER_COUNT);
    ASSERT_EQ(health_classify_xid(c, UINT64_MAX), GPU_TIER_COUNT);
    agent_config_free(c);

    c = config("health:\n  drain_later_xids: [13]\n");
    ASSERT_EQ(health_classify_xid(c, 13), GPU_TIER_DRAIN_LATER);
    ASSERT_EQ(health_classify_xid(c, 63), GPU_TIER_COUNT); /* replaced list */
    ASSERT_EQ(health_classify_xid(c, 79), GPU_TIER_FAIL_NOW);
    agent_config_free(c);
}

static void test_classify_status(void)
{
    ASSERT_EQ(health_classify_status(NVML_RET_GPU_IS_LOST), GPU_TIER_FAIL_NOW);
    ASSERT_EQ(health_classify_status(NVML_RET_RESET_REQUIRED), GPU_TIER_FAIL_NOW);
    ASSERT_EQ(health_classify_status(NVML_RET_SUCCESS), GPU_TIER_COUNT);
    ASSERT_EQ(health_classify_status(NVML_RET_NOT_SUPPORTED), GPU_TIER_COUNT);
    ASSERT_EQ(health_classify_status(NVML_RET_TIMEOUT), GPU_TIER_COUNT);
    ASSERT_EQ(health_classify_status(NVML_RET_UNKNOWN), GPU_TIER_COUNT);
}

static void test_sentinels_are_dropped(void)
{
    ASSERT_TRUE(collect_value_plausible(GM_UTILIZATION, 0.97));
    ASSERT_FALSE(collect_value_plausible(GM_UTILIZATION, 4294967295.0 / 100));
    ASSERT_TRUE(collect_value_plausible(GM_TEMPERATURE, 39));
    ASSERT_FALSE(collect_value_plausible(GM_TEMPERATURE, 644245923));
    ASSERT_FALSE(collect_value_plausible(GM_TEMPERATURE, -1000));
    ASSERT_FALSE(collect_value_plausible(GM_MEMORY_TEMPERATURE, 9223372036854775794.0));
    ASSERT_TRUE(collect_value_plausible(GM_POWER_USAGE, 102.6));
    ASSERT_FALSE(collect_value_plausible(GM_POWER_USAGE, 4294967.295));
    ASSERT_FALSE(collect_value_plausible(GM_PCIE_REPLAY, 4294967295.0));
    ASSERT_FALSE(collect_value_plausible(GM_PSTATE, 32)); /* NVML_PSTATE_UNKNOWN */
    ASSERT_FALSE(collect_value_plausible(GM_PCIE_WIDTH, 0));
    ASSERT_FALSE(collect_value_plausible(GM_UTILIZATION, -0.5));
    ASSERT_FALSE(collect_value_plausible(GM_ENERGY, 1.8446744073709552e16));
    ASSERT_TRUE(collect_value_plausible(GM_ENERGY, 8123456.789));
}

/* An agent with two GPUs and no worker (no supervisor requests), state in a temp dir. */
struct fixture {
    char dir[64];
    struct agent_config *cfg;
    struct agent a;
    struct agent_gpu gpus[2];
};

static void fixture_init(struct fixture *f)
{
    char text[256];

    (void)snprintf(f->dir, sizeof f->dir, "/tmp/gpu-health-XXXXXX");
    ASSERT_TRUE(mkdtemp(f->dir) != NULL);
    (void)snprintf(text, sizeof text, "state_dir: %s\nhostname: server1\n", f->dir);
    f->cfg = config(text);
    memset(&f->a, 0, sizeof f->a);
    ASSERT_OK(agent_init(&f->a, f->cfg));
    memset(f->gpus, 0, sizeof f->gpus);
    for (unsigned i = 0; i < 2; i++) {
        f->gpus[i].index = i;
        f->gpus[i].healthy = true;
        (void)snprintf(f->gpus[i].uuid, sizeof f->gpus[i].uuid, "GPU-%u", i);
        (void)snprintf(f->gpus[i].service, sizeof f->gpus[i].service, "gpu%u", i);
    }
    f->a.gpus = f->gpus;
    f->a.n_gpus = 2;
}

static void fixture_release(struct fixture *f)
{
    char path[128];

    f->a.gpus = NULL; /* not heap memory */
    f->a.n_gpus = 0;
    agent_release(&f->a);
    agent_config_free(f->cfg);
    (void)snprintf(path, sizeof path, "%s/drained", f->dir);
    (void)unlink(path);
    (void)rmdir(f->dir);
}

static void test_xids_count_and_drain(void)
{
    struct fixture f;

    fixture_init(&f);
    health_on_xid(&f.a, &f.gpus[1], 13);
    health_on_xid(&f.a, &f.gpus[1], 13);
    ASSERT_EQ(f.gpus[1].n_xids, 1);
    ASSERT_EQ(f.gpus[1].xids[0].count, 2);
    ASSERT_GE(f.gpus[1].xids[0].last_realtime_usec, 1);
    ASSERT_TRUE(f.gpus[1].healthy);
    ASSERT_FALSE(f.gpus[1].drained);

    /* Drain later first, then a fail-now escalates; a later drain-later changes nothing. */
    health_on_xid(&f.a, &f.gpus[0], 63);
    ASSERT_TRUE(f.gpus[0].drained);
    ASSERT_FALSE(f.gpus[0].healthy);
    ASSERT_EQ(f.gpus[0].tier, GPU_TIER_DRAIN_LATER);
    ASSERT_STREQ(f.gpus[0].reason, "xid_63");
    health_on_xid(&f.a, &f.gpus[0], 79);
    ASSERT_EQ(f.gpus[0].tier, GPU_TIER_FAIL_NOW);
    ASSERT_STREQ(f.gpus[0].reason, "xid_79");
    health_on_xid(&f.a, &f.gpus[0], 94);
    ASSERT_EQ(f.gpus[0].tier, GPU_TIER_FAIL_NOW);
    ASSERT_STREQ(f.gpus[0].reason, "xid_79");
    ASSERT_EQ(f.gpus[0].n_xids, 3);
    fixture_release(&f);
}

static void test_drains_persist_until_undrain(void)
{
    struct fixture f;
    struct buf b = BUF_INIT(0);
    char path[128];

    fixture_init(&f);
    health_report(&f.a, &f.gpus[1], GPU_TIER_FAIL_NOW, "gpu_is_lost");
    (void)snprintf(path, sizeof path, "%s/drained", f.dir);
    ASSERT_OK(file_read_all(path, &b));
    ASSERT_CONTAINS(buf_str(&b), "GPU-1 fail_now ");
    ASSERT_CONTAINS(buf_str(&b), " gpu_is_lost\n");
    buf_release(&b);

    /* A restarted agent finds the drain again (by UUID, not index). */
    f.gpus[1] = (struct agent_gpu){ .index = 1, .healthy = true, .uuid = "GPU-1" };
    pthread_mutex_lock(&f.a.lock);
    health_load_drains(&f.a);
    pthread_mutex_unlock(&f.a.lock);
    ASSERT_TRUE(f.gpus[1].drained);
    ASSERT_FALSE(f.gpus[1].healthy);
    ASSERT_EQ(f.gpus[1].tier, GPU_TIER_FAIL_NOW);
    ASSERT_STREQ(f.gpus[1].reason, "gpu_is_lost");
    ASSERT_FALSE(f.gpus[0].drained);

    /* Operator: drain GPU 0 for maintenance, undrain GPU 1. */
    ASSERT_OK(health_drain(&f.a, &f.gpus[0], GPU_TIER_DRAIN_LATER));
    ASSERT_STREQ(f.gpus[0].reason, "operator");
    ASSERT_OK(health_undrain(&f.a, &f.gpus[1]));
    ASSERT_TRUE(f.gpus[1].healthy);
    ASSERT_FALSE(f.gpus[1].drained);
    ASSERT_OK(file_read_all(path, &b));
    ASSERT_CONTAINS(buf_str(&b), "GPU-0 drain_later ");
    ASSERT_TRUE(strstr(buf_str(&b), "GPU-1") == NULL);
    buf_release(&b);

    /* Malformed lines are skipped. */
    {
        static const char text[] = "garbage\nGPU-1 sometimes 12 x\nGPU-1 fail_now 5 xid_48\n";

        ASSERT_OK(file_write_atomic(path, text, sizeof text - 1, 0644));
    }
    pthread_mutex_lock(&f.a.lock);
    health_load_drains(&f.a);
    pthread_mutex_unlock(&f.a.lock);
    ASSERT_TRUE(f.gpus[1].drained);
    ASSERT_STREQ(f.gpus[1].reason, "xid_48");
    ASSERT_EQ(f.gpus[1].since_realtime_usec, 5);
    fixture_release(&f);
}

T_MAIN(T_CASE(test_classify_xids), T_CASE(test_classify_status), T_CASE(test_sentinels_are_dropped),
       T_CASE(test_xids_count_and_drain), T_CASE(test_drains_persist_until_undrain))
