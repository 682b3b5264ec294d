/* SPDX-License-Identifier: MIT */
/* gpu_agent's configuration: a full file, defaults, the XID tier lists, worker templates, and
 * bad files, each rejected with file:line(:col) and the key. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "gpu_agent/config.h"
#include "supervise/supervise.h"
#include "t.h"

static struct agent_config *parse_ok(const char *text)
{
    struct err e = ERR_INIT;
    struct agent_config *c = NULL;
    char msg[600];
    int r = agent_config_parse("agent.yml", text, strlen(text), &c, &e);

    if (r < 0)
        T_FAIL("parse failed: %s", err_format(&e, msg, sizeof msg));
    return c;
}

/* Parses text, expects -EINVAL and returns the formatted error. */
static const char *parse_bad(const char *text)
{
    static char msg[600];
    struct err e = ERR_INIT;
    struct agent_config *c = NULL;

    ASSERT_ERRNO(agent_config_parse("agent.yml", text, strlen(text), &c, &e), -EINVAL);
    ASSERT_TRUE(c == NULL);
    return err_format(&e, msg, sizeof msg);
}

static void test_full_file(void)
{
    struct agent_config *c =
            parse_ok("listen_address: 127.0.0.1:9842\n"
                     "state_dir: /var/lib/gpu_agent\n"
                     "hostname: server1\n"
                     "nvml_library: /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n"
                     "api_token_file: /etc/gpu_agent/token\n"
                     "collect_interval: 2s\n"
                     "gpus: [0, 1]\n"
                     "worker:\n"
                     "  command: [/usr/bin/python3, -m, celery, -A, ultrathink.training, worker,\n"
                     "            -Q, training, -c, '1', -n, 'gpu{index}@%h']\n"
                     "  environment:\n"
                     "    CUDA_VISIBLE_DEVICES: '{uuid}'\n"
                     "    CUDA_DEVICE_ORDER: PCI_BUS_ID\n"
                     "    EMPTY:\n"
                     "  user: training\n"
                     "  working_dir: /srv/ultrathink\n"
                     "  restart: on-failure\n"
                     "  restart_backoff: {initial: 2s, max: 1m, reset_after: 5m}\n"
                     "  max_restarts: 5\n"
                     "  stop_signal: SIGQUIT\n"
                     "  stop_grace_period: 30s\n"
                     "  drain_later_signal: SIGTERM\n"
                     "  drain_later_grace_period: 6h\n"
                     "  log_max_bytes: 50MiB\n"
                     "  log_keep: 5\n");

    ASSERT_STREQ(c->listen_address, "127.0.0.1:9842");
    ASSERT_STREQ(c->hostname, "server1");
    ASSERT_STREQ(c->api_token_file, "/etc/gpu_agent/token");
    ASSERT_EQ(c->collect_interval_usec, 2 * USEC_PER_SEC);
    ASSERT_FALSE(c->all_gpus);
    ASSERT_EQ(c->n_gpus, 2);
    ASSERT_EQ(c->gpus[1], 1);
    ASSERT_TRUE(c->worker.present);
    ASSERT_STREQ(c->worker.argv[0], "/usr/bin/python3");
    ASSERT_STREQ(c->worker.argv[11], "gpu{index}@%h");
    ASSERT_TRUE(c->worker.argv[12] == NULL);
    ASSERT_STREQ(c->worker.env[0], "CUDA_VISIBLE_DEVICES={uuid}");
    ASSERT_STREQ(c->worker.env[2], "EMPTY=");
    ASSERT_STREQ(c->worker.user, "training");
    ASSERT_EQ(c->worker.restart, AGENT_RESTART_ON_FAILURE);
    ASSERT_EQ(c->worker.backoff_max_usec, 60 * USEC_PER_SEC);
    ASSERT_EQ(c->worker.max_restarts, 5);
    ASSERT_EQ(c->worker.stop_signal, SIGQUIT);
    ASSERT_EQ(c->worker.stop_grace_usec, 30 * USEC_PER_SEC);
    ASSERT_EQ(c->worker.drain_later_grace_usec, 6 * 3600 * USEC_PER_SEC);
    ASSERT_EQ(c->worker.log_max_bytes, 50u << 20);
    agent_config_free(c);
}

static void test_defaults(void)
{
    struct agent_config *c = parse_ok("# nothing but a comment\n");

    ASSERT_STREQ(c->listen_address, ":9842");
    ASSERT_STREQ(c->state_dir, "/var/lib/gpu_agent");
    ASSERT_TRUE(c->hostname == NULL);
    ASSERT_EQ(c->collect_interval_usec, USEC_PER_SEC);
    ASSERT_TRUE(c->all_gpus);
    ASSERT_FALSE(c->worker.present);
    ASSERT_EQ(c->xid_tier[79], GPU_TIER_FAIL_NOW);
    agent_config_free(c);

    c = parse_ok("worker:\n  command: [/bin/true]\n");
    ASSERT_TRUE(c->worker.present);
    ASSERT_TRUE(c->worker.env != NULL && c->worker.env[0] == NULL);
    ASSERT_EQ(c->worker.restart, AGENT_RESTART_ALWAYS);
    ASSERT_EQ(c->worker.stop_signal, SIGTERM);
    ASSERT_EQ(c->worker.stop_grace_usec, 10 * USEC_PER_SEC);
    ASSERT_EQ(c->worker.drain_later_signal, SIGTERM);
    {
        /* Where a worker's settings meet the supervisor's, the defaults are its. */
        struct sv_spec *spec = sv_spec_new("x");
        const struct sv_service *d = sv_spec_add(spec, "w");

        ASSERT_EQ(c->worker.backoff_initial_usec, d->backoff_initial_usec);
        ASSERT_EQ(c->worker.backoff_max_usec, d->backoff_max_usec);
        ASSERT_EQ(c->worker.backoff_reset_usec, d->backoff_reset_usec);
        ASSERT_EQ(c->worker.max_restarts, d->max_restarts);
        ASSERT_EQ(c->worker.stop_signal, d->stop_signal);
        ASSERT_EQ(c->worker.stop_grace_usec, d->stop_grace_usec);
        ASSERT_EQ(c->worker.log_max_bytes, spec->log_max_bytes);
        ASSERT_EQ(c->worker.log_keep, spec->log_keep);
        sv_spec_free(spec);
    }
    agent_config_free(c);
}

static void test_xid_lists(void)
{
    struct agent_config *c = parse_ok("health:\n  fail_now_xids: [79, 13]\n  count_xids: [48]\n");

    /* The fail-now list replaces the default one: 79 and 13 now, 62 no longer. */
    ASSERT_EQ(c->xid_tier[79], GPU_TIER_FAIL_NOW);
    ASSERT_EQ(c->xid_tier[13], GPU_TIER_FAIL_NOW);
    ASSERT_EQ(c->xid_tier[62], GPU_TIER_COUNT);
    ASSERT_EQ(c->xid_tier[48], GPU_TIER_COUNT);
    ASSERT_EQ(c->xid_tier[63], GPU_TIER_DRAIN_LATER); /* untouched list keeps its defaults */
    agent_config_free(c);
}

static void test_templates(void)
{
    struct worker_vars v = { .index = 1,
                             .uuid = "GPU-abc",
                             .pci_bus_id = "00000000:00:07.0",
                             .name = "NVIDIA H200",
                             .minor = 3,
                             .host = "server2" };
    struct buf b = BUF_INIT(0);
    unsigned col = 0;

    ASSERT_OK(worker_template_expand("gpu{index}@%h {uuid} {pci_bus_id} {name} {minor} {host} "
                                     "{{literal}} x}",
                                     &v, &b, &col));
    ASSERT_STREQ(buf_str(&b),
                 "gpu1@%h GPU-abc 00000000:00:07.0 NVIDIA H200 3 server2 {literal} x}");
    buf_reset(&b);
    ASSERT_ERRNO(worker_template_expand("ok {idx}", &v, &b, &col), -EINVAL);
    ASSERT_EQ(col, 4);
    ASSERT_ERRNO(worker_template_expand("{index", &v, &b, &col), -EINVAL);
    ASSERT_EQ(col, 1);
    buf_release(&b);
}

static void test_bad_files(void)
{
    const char *m;

    m = parse_bad("listen_address: :9842\nstate_dri: /x\n");
    ASSERT_CONTAINS(m, "agent.yml:2:1");
    ASSERT_CONTAINS(m, "unknown key 'state_dri' (did you mean 'state_dir'?)");

    m = parse_bad("collect_interval: soon\n");
    ASSERT_CONTAINS(m, "agent.yml:1:19");
    ASSERT_CONTAINS(m, "collect_interval: invalid duration 'soon'");

    m = parse_bad("collect_interval: 10ms\n");
    ASSERT_CONTAINS(m, "collect_interval: duration '10ms' is below the minimum of 100ms");

    m = parse_bad("state_dir: relative/dir\n");
    ASSERT_CONTAINS(m, "agent.yml:1:12: state_dir: 'relative/dir' is not an absolute path");

    m = parse_bad("gpus: [0, 0]\n");
    ASSERT_CONTAINS(m, "agent.yml:1:11: gpus: GPU 0 is listed twice");

    m = parse_bad("gpus: some\n");
    ASSERT_CONTAINS(m, "gpus: expected 'all' or a list");

    m = parse_bad("health:\n  fail_now_xids: [79, 4096]\n");
    ASSERT_CONTAINS(m, "agent.yml:2:23");
    ASSERT_CONTAINS(m, "health.fail_now_xids[1]: 4096 is out of range (0..1023)");

    m = parse_bad("health:\n  fail_now_xids: [79]\n  count_xids: [79]\n");
    ASSERT_CONTAINS(m, "agent.yml:3:16: health.count_xids: XID 79 is listed twice");

    m = parse_bad("worker:\n  user: x\n");
    ASSERT_CONTAINS(m, "agent.yml:2:3");
    ASSERT_CONTAINS(m, "missing required key 'worker.command'");

    m = parse_bad("worker:\n  command: [celery, -n, 'gpu{idx}@%h']\n");
    ASSERT_CONTAINS(m, "agent.yml:2:");
    ASSERT_CONTAINS(m, "worker.command[2]: unknown placeholder in 'gpu{idx}@%h'");

    m = parse_bad("worker:\n  command: [x]\n  environment:\n    1BAD: y\n");
    ASSERT_CONTAINS(m, "agent.yml:4:5: worker.environment: invalid variable name '1BAD'");

    m = parse_bad("worker:\n  command: [x]\n  stop_signal: SIGFOO\n");
    ASSERT_CONTAINS(m, "agent.yml:3:16: worker.stop_signal: unknown signal 'SIGFOO'");

    m = parse_bad("worker:\n  command: [x]\n  restart_backoff: {initial: 10s, max: 2s}\n");
    ASSERT_CONTAINS(m, "worker.restart_backoff: max is below initial");

    m = parse_bad("worker:\n  command: []\n");
    ASSERT_CONTAINS(m, "worker.command: must not be an empty list");

    m = parse_bad("worker:\n  command: x\n");
    ASSERT_CONTAINS(m, "worker.command: expected a list, got a string");

    /* YAML syntax errors come from the cfg module with their position. */
    m = parse_bad("worker:\n  command: [x\n");
    ASSERT_CONTAINS(m, "agent.yml:");
}

static void test_missing_file(void)
{
    struct err e = ERR_INIT;
    struct agent_config *c = NULL;

    ASSERT_ERRNO(agent_config_load("/nonexistent/agent.yml", &c, &e), -ENOENT);
    ASSERT_CONTAINS(e.file[0] ? e.file : e.msg, "/nonexistent/agent.yml");
}

static void test_repo_configs_are_valid(void)
{
    static const char *const files[] = {
        UT_SOURCE_DIR "/infrastructure/gpu/server1.yml",
        UT_SOURCE_DIR "/infrastructure/gpu/server2.yml",
    };

    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        struct err e = ERR_INIT;
        struct agent_config *c = NULL;
        char msg[600];

        if (agent_config_load(files[i], &c, &e) < 0)
            T_FAIL("%s", err_format(&e, msg, sizeof msg));
        ASSERT_TRUE(c->worker.present);
        ASSERT_FALSE(c->all_gpus);
        ASSERT_EQ(c->n_gpus, 2);
        agent_config_free(c);
    }
}

T_MAIN(T_CASE(test_full_file), T_CASE(test_defaults), T_CASE(test_xid_lists),
       T_CASE(test_templates), T_CASE(test_bad_files), T_CASE(test_missing_file),
       T_CASE(test_repo_configs_are_valid))
