/* SPDX-License-Identifier: MIT */
/* test_kafka.c - the librdkafka adapter against librdkafka's mock cluster (tests/lib/
 * kafka_mock.h says what the mock can and cannot do), plus the pure helpers.  What the mock
 * cannot answer (CreateTopics, DescribeConfigs, AlterConfigs, CreatePartitions, ListGroups, a
 * shrunk ISR) is asserted here as the error the adapter reports for it, and covered for real
 * by tests/integration/test_kafka_adapter.sh on a 3-node Kafka. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "kafka_mock.h"
#include "proc_self.h"
#include "t.h"

#define MSEC USEC_PER_MSEC

/* A loopback port nobody listens on (bound, then closed). */
static uint16_t dead_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ASSERT_OK(fd);
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
    (void)close(fd);
    return ntohs(a.sin_port);
}

static const struct kfk_topic *find_topic(const struct kfk_metadata *md, const char *name)
{
    for (size_t i = 0; i < md->n_topics; i++)
        if (strcmp(md->topics[i].name, name) == 0)
            return &md->topics[i];
    return NULL;
}

/* The broker that answered is named by its address: a bootstrap connection (librdkafka >= 2.10
 * keeps those apart from the brokers it learns: id -1, "host:port/bootstrap", one of
 * `bootstraps`), or a learned broker whose connection was up first (its id,
 * "host:port/<id>"). Which of the two answers depends on timing (it failed once in CI). */
static void assert_answerer(const struct kfk_metadata *md, const struct kmock *m,
                            const char *bootstraps)
{
    if (md->orig_broker_id == -1) {
        char addr[64];

        ASSERT_TRUE(str_endswith(md->orig_broker_name, "/bootstrap"));
        (void)snprintf(addr, sizeof addr, "%.*s", (int)strcspn(md->orig_broker_name, "/"),
                       md->orig_broker_name);
        ASSERT_TRUE(strstr(bootstraps, addr) != NULL);
    } else {
        char want[64];

        ASSERT_GE(md->orig_broker_id, 1);
        ASSERT_LE(md->orig_broker_id, 3);
        (void)snprintf(want, sizeof want, "127.0.0.1:%u/%d",
                       (unsigned)kmock_port(m, md->orig_broker_id), (int)md->orig_broker_id);
        ASSERT_STREQ(md->orig_broker_name, want);
    }
}

/* ===== metadata ===== */

static void test_metadata_mock(void)
{
    struct kmock m;
    struct kfk_metadata *md = NULL;
    struct kfk_counts all, b;
    struct err e = ERR_INIT;
    const struct kfk_topic *t, *off;
    unsigned led = 0, replicas = 0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 6, 2), 0);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "__consumer_offsets", 4, 3), 0);
    ASSERT_OK(kfk_metadata_fetch(m.bootstraps, 3000 * MSEC, &md, &e));

    ASSERT_EQ(md->n_brokers, 3);
    for (int id = 1; id <= 3; id++) {
        const struct kfk_broker *br = kfk_metadata_broker(md, id);
        ASSERT_TRUE(br != NULL);
        ASSERT_STREQ(br->host, "127.0.0.1");
        ASSERT_EQ(br->port, kmock_port(&m, id));
    }
    ASSERT_TRUE(kfk_metadata_broker(md, 4) == NULL);
    ASSERT_EQ(md->controller_id, 0); /* the mock never sets one */
    assert_answerer(md, &m, m.bootstraps);
    ASSERT_EQ(md->n_topics, 2);
    t = find_topic(md, "orders");
    off = find_topic(md, "__consumer_offsets");
    ASSERT_TRUE(t && off);
    ASSERT_FALSE(t->internal);
    ASSERT_TRUE(off->internal);
    ASSERT_EQ(t->n_partitions, 6);
    for (size_t i = 0; i < t->n_partitions; i++) {
        const struct kfk_partition *p = &t->partitions[i];
        ASSERT_EQ(p->id, (int32_t)i);
        ASSERT_EQ(p->kafka_error, 0);
        ASSERT_GE(p->leader, 1);
        ASSERT_EQ(p->n_replicas, 2);
        ASSERT_EQ(p->n_isr, p->n_replicas);
    }

    kfk_metadata_count(md, KFK_BROKER_ALL, &all);
    ASSERT_EQ(all.replicas.n, 10);
    ASSERT_EQ(all.replicas.internal, 4);
    ASSERT_EQ(all.led.n, 10);
    ASSERT_EQ(all.led.internal, 4);
    ASSERT_EQ(all.under_replicated.n, 0);
    ASSERT_EQ(all.offline.n, 0);
    for (int id = 1; id <= 3; id++) {
        kfk_metadata_count(md, id, &b);
        ASSERT_GE(b.replicas.n, 1);
        replicas += b.replicas.n;
        led += b.led.n;
    }
    ASSERT_EQ(replicas, 6 * 2 + 4 * 3); /* every replica on some broker, once */
    ASSERT_EQ(led, 10);
    kfk_metadata_count(md, 42, &b);
    ASSERT_EQ(b.replicas.n + b.led.n + b.offline.n, 0);
    md = kfk_metadata_release(md);
    ASSERT_TRUE(kfk_metadata_release(NULL) == NULL);
    kmock_stop(&m);
}

/* Broker 2 goes down; what a controller would do is done by hand (the mock moves no leader):
 * its partitions move to broker 1, except partition 5, which is left without a leader. */
static void test_counts_after_broker_down(void)
{
    struct kmock m;
    struct kfk_metadata *md = NULL;
    struct kfk_counts c;
    struct err e = ERR_INIT;
    char bs[64];

    kmock_start(&m, 3);
    /* Three replicas: broker 2 holds one of every partition. */
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 6, 3), 0);
    for (int p = 0; p < 6; p++)
        ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", p, 1 + p % 3), 0);
    ASSERT_OK(kfk_metadata_fetch(m.bootstraps, 3000 * MSEC, &md, &e));
    kfk_metadata_count(md, 2, &c);
    ASSERT_EQ(c.led.n, 2);
    md = kfk_metadata_release(md);

    ASSERT_EQ(rd_kafka_mock_broker_set_down(m.mc, 2), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 1, 1), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 4, 1), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 5, -1), 0);
    /* Asked through broker 3 alone: the down broker is never the one that answers. */
    ASSERT_OK(kfk_metadata_fetch(kmock_broker(&m, 3, bs, sizeof bs), 3000 * MSEC, &md, &e));
    assert_answerer(md, &m, bs);
    ASSERT_NE(md->orig_broker_id, 2);
    kfk_metadata_count(md, 2, &c);
    ASSERT_EQ(c.led.n, 0);
    ASSERT_EQ(c.offline.n, 1); /* a replica of the leaderless partition */
    kfk_metadata_count(md, 1, &c);
    ASSERT_EQ(c.led.n, 4);
    ASSERT_EQ(c.offline.n, 1);
    kfk_metadata_count(md, 3, &c);
    ASSERT_EQ(c.led.n, 1);
    kfk_metadata_count(md, KFK_BROKER_ALL, &c);
    ASSERT_EQ(c.led.n, 5);
    ASSERT_EQ(c.offline.n, 1);
    ASSERT_EQ(c.offline.internal, 0);
    /* ISR == replicas in the mock, whatever is down: nothing under-replicated here (the real
     * cluster test sees it). */
    ASSERT_EQ(c.under_replicated.n, 0);
    md = kfk_metadata_release(md);
    kmock_stop(&m);
}

/* The counting rules on a hand-built answer: what the mock cannot produce (ISR < replicas). */
static void test_counts_hand_built(void)
{
    int32_t r12[] = { 1, 2 }, r23[] = { 2, 3 }, r31[] = { 3, 1 }, i1[] = { 1 }, i3[] = { 3 };
    struct kfk_partition orders[] = {
        { .id = 0, .leader = 1, .replicas = r12, .n_replicas = 2, .isr = r12, .n_isr = 2 },
        { .id = 1, .leader = 2, .replicas = r23, .n_replicas = 2, .isr = r23, .n_isr = 2 },
        { .id = 2, .leader = 1, .replicas = r12, .n_replicas = 2, .isr = i1, .n_isr = 1 },
        { .id = 3,
          .leader = -1,
          .replicas = r23,
          .n_replicas = 2,
          .isr = i3,
          .n_isr = 1,
          .kafka_error = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE },
    };
    struct kfk_partition offsets[] = {
        { .id = 0, .leader = 3, .replicas = r31, .n_replicas = 2, .isr = i3, .n_isr = 1 },
    };
    struct kfk_topic topics[] = {
        { .name = (char *)(uintptr_t) "orders", .partitions = orders, .n_partitions = 4 },
        { .name = (char *)(uintptr_t) "__consumer_offsets",
          .internal = true,
          .partitions = offsets,
          .n_partitions = 1 },
    };
    struct kfk_metadata md = { .topics = topics, .n_topics = 2, .controller_id = 1 };
    struct kfk_counts c;

    kfk_metadata_count(&md, 1, &c);
    ASSERT_EQ(c.replicas.n, 3);
    ASSERT_EQ(c.replicas.internal, 1);
    ASSERT_EQ(c.led.n, 2);
    ASSERT_EQ(c.under_replicated.n, 1); /* orders-2 */
    ASSERT_EQ(c.offline.n, 0);
    kfk_metadata_count(&md, 2, &c);
    ASSERT_EQ(c.led.n, 1);
    ASSERT_EQ(c.under_replicated.n, 0);
    ASSERT_EQ(c.offline.n, 1); /* orders-3 */
    kfk_metadata_count(&md, 3, &c);
    ASSERT_EQ(c.led.n, 1);
    ASSERT_EQ(c.led.internal, 1);
    ASSERT_EQ(c.under_replicated.n, 1);
    ASSERT_EQ(c.under_replicated.internal, 1);
    ASSERT_EQ(c.offline.n, 1);
    kfk_metadata_count(&md, KFK_BROKER_ALL, &c);
    ASSERT_EQ(c.replicas.n, 5);
    ASSERT_EQ(c.led.n, 4);
    ASSERT_EQ(c.under_replicated.n, 2);
    ASSERT_EQ(c.under_replicated.internal, 1);
    ASSERT_EQ(c.offline.n, 1);
    ASSERT_STREQ(kfk_error_name(orders[3].kafka_error), "LEADER_NOT_AVAILABLE");
}

/* ===== probe ===== */

static void test_probe_healthy(void)
{
    struct kmock m;
    struct kfk_probe_result res;
    struct err e = ERR_INIT;
    char bs[64];

    kmock_start(&m, 3);
    for (int id = 1; id <= 3; id++) {
        ASSERT_OK(kfk_probe(kmock_broker(&m, id, bs, sizeof bs), 3000 * MSEC, &res, &e));
        ASSERT_TRUE(res.healthy);
        ASSERT_EQ(res.self_id, id);
        ASSERT_EQ(res.controller_id, 0);
        ASSERT_EQ(res.n_brokers, 3);
        ASSERT_STREQ(res.reason, "");
        ASSERT_TRUE(res.metadata != NULL);
        kfk_probe_result_release(&res);
        ASSERT_TRUE(res.metadata == NULL);
    }
    kfk_probe_result_release(NULL);
    kmock_stop(&m);
}

/* The broker answers, but under another name than the one asked for: not healthy. */
static void test_probe_self_not_listed(void)
{
    struct kmock m;
    struct kfk_probe_result res;
    struct err e = ERR_INIT;
    char bs[64];

    kmock_start(&m, 1);
    (void)snprintf(bs, sizeof bs, "localhost:%u", (unsigned)kmock_port(&m, 1));
    ASSERT_OK(kfk_probe(bs, 3000 * MSEC, &res, &e));
    ASSERT_FALSE(res.healthy);
    ASSERT_EQ(res.self_id, -1);
    ASSERT_EQ(res.n_brokers, 1);
    ASSERT_CONTAINS(res.reason, "does not list the broker at localhost:");
    kfk_probe_result_release(&res);
    kmock_stop(&m);
}

/* Every broker down: refused at once, not at the deadline. */
static void test_probe_all_down_fast(void)
{
    struct kmock m;
    struct kfk_probe_result res;
    struct err e = ERR_INIT;
    uint64_t t0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_broker_set_down(m.mc, -1), 0);
    t0 = now_usec();
    ASSERT_ERRNO(kfk_probe(m.bootstraps, 5000 * MSEC, &res, &e), -ECONNREFUSED);
    ASSERT_LE(now_usec() - t0, 2000 * MSEC);
    ASSERT_EQ(e.code, -ECONNREFUSED);
    ASSERT_CONTAINS(e.msg, "all brokers are down");
    kmock_stop(&m);
}

static void test_probe_refused_port(void)
{
    char bs[64];
    struct kfk_probe_result res;
    struct err e = ERR_INIT;
    unsigned threads = t_count_threads();
    uint64_t t0 = now_usec();

    (void)snprintf(bs, sizeof bs, "127.0.0.1:%u", (unsigned)dead_port());
    ASSERT_ERRNO(kfk_probe(bs, 5000 * MSEC, &res, &e), -ECONNREFUSED);
    ASSERT_LE(now_usec() - t0, 2000 * MSEC);
    ASSERT_CONTAINS(e.msg, "Connection refused");
    /* The client's teardown joined every thread librdkafka started. */
    ASSERT_EQ(t_count_threads(), threads);
}

/* Brokers that accept connections but answer after 30 s (as a SIGSTOPped one would): the call
 * ends at its timeout, and the teardown does not wait for the outstanding requests. */
static void test_probe_hung_broker_times_out(void)
{
    struct kmock m;
    struct kfk_metadata *md = NULL;
    struct kfk_probe_result res;
    struct err e = ERR_INIT;
    uint64_t t0, dt;
    char bs[64];

    kmock_start(&m, 3);
    kmock_hang(&m, 30000);
    t0 = now_usec();
    ASSERT_ERRNO(kfk_probe(kmock_broker(&m, 1, bs, sizeof bs), 800 * MSEC, &res, &e), -ETIMEDOUT);
    dt = now_usec() - t0;
    ASSERT_GE(dt, 790 * MSEC);
    ASSERT_LE(dt, 1500 * MSEC);
    ASSERT_CONTAINS(e.msg, "no answer from 127.0.0.1:");
    t0 = now_usec();
    ASSERT_ERRNO(kfk_metadata_fetch(m.bootstraps, 500 * MSEC, &md, &e), -ETIMEDOUT);
    ASSERT_LE(now_usec() - t0, 1200 * MSEC);
    ASSERT_TRUE(md == NULL);
    kmock_stop(&m);
}

static void test_bad_args(void)
{
    struct kfk_metadata *md = NULL;
    struct kfk_probe_result res;
    struct err e = ERR_INIT;

    ASSERT_ERRNO(kfk_metadata_fetch("", MSEC, &md, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "no bootstrap");
    ASSERT_ERRNO(kfk_metadata_fetch(NULL, MSEC, &md, NULL), -EINVAL);
    ASSERT_ERRNO(kfk_probe("127.0.0.1:1", 0, &res, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "zero timeout");
    ASSERT_TRUE(md == NULL);
}

/* librdkafka's complaints (connection refused is a LOG_ERR line by default) go through
 * core/log at debug level: nothing on stderr unless debug logging is on. */
static unsigned stderr_lines_of_probe(enum log_level lvl, const char *bs)
{
    char path[] = "/tmp/test_kafka_stderrXXXXXX", text[8192];
    int fd = mkstemp(path), saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
    struct kfk_probe_result res;
    unsigned lines = 0;
    ssize_t k;

    ASSERT_OK(fd);
    ASSERT_OK(saved);
    (void)unlink(path);
    log_set_max_level(lvl);
    ASSERT_OK(dup2(fd, 2));
    ASSERT_ERRNO(kfk_probe(bs, 2000 * MSEC, &res, NULL), -ECONNREFUSED);
    ASSERT_OK(dup2(saved, 2));
    (void)close(saved);
    k = pread(fd, text, sizeof text - 1, 0);
    (void)close(fd);
    ASSERT_OK(k);
    text[k] = '\0';
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    if (lvl == LOG_LVL_DEBUG)
        ASSERT_CONTAINS(text, "librdkafka");
    return lines;
}

static void test_log_routed_to_debug(void)
{
    char bs[64];

    (void)snprintf(bs, sizeof bs, "127.0.0.1:%u", (unsigned)dead_port());
    ASSERT_EQ(stderr_lines_of_probe(LOG_LVL_INFO, bs), 0);
    ASSERT_GE(stderr_lines_of_probe(LOG_LVL_DEBUG, bs), 1);
}

/* ===== topics as code ===== */

static void test_topics_apply_bad_specs(void)
{
    struct kfk_config_kv ret7d[] = { { "retention.ms", "604800000" } };
    struct kfk_config_kv dup[] = { { "retention.ms", "1" }, { "retention.ms", "2" } };
    struct kfk_config_kv nokey[] = { { "", "1" } };
    struct kfk_topic_spec s[2] = {
        { .name = "orders",
          .partitions = 6,
          .replication_factor = 2,
          .configs = ret7d,
          .n_configs = 1 },
        { .name = "audit", .partitions = 3, .replication_factor = 3 },
    };
    struct kfk_topic_result *res = NULL;
    struct err e = ERR_INIT;

    /* Every check happens before any connection: a dead address is never asked. */
    s[1].partitions = 0;
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    ASSERT_STREQ(e.field, "topics[1].partitions");
    s[1].partitions = 3;
    s[1].replication_factor = 0;
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    ASSERT_STREQ(e.field, "topics[1].replication_factor");
    s[1].replication_factor = 3;
    s[1].name = "orders";
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "listed twice");
    ASSERT_STREQ(e.field, "topics[1].name");
    s[1].name = "";
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    s[1].name = "audit";
    s[1].configs = dup;
    s[1].n_configs = 2;
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    ASSERT_STREQ(e.field, "topics[1].configs[1]");
    s[1].configs = nokey;
    s[1].n_configs = 1;
    ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
    ASSERT_STREQ(e.field, "topics[1].configs[0]");
    s[1].n_configs = 0;
    /* An explicit placement: 3 partitions x 3 replicas, each partition's ids distinct, >= 0. */
    {
        int32_t twice[] = { 1, 2, 3, 2, 3, 1, 3, 3, 1 },
                negative[] = { 1, 2, 3, 2, 3, -1, 3, 1, 2 };

        s[1].replicas = twice;
        ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
        ASSERT_STREQ(e.field, "topics[1].replicas[2]");
        ASSERT_CONTAINS(e.msg, "partition 2 needs 3 distinct broker ids");
        s[1].replicas = negative;
        ASSERT_ERRNO(kfk_topics_apply("127.0.0.1:1", s, 2, MSEC, &res, &e), -EINVAL);
        ASSERT_STREQ(e.field, "topics[1].replicas[1]");
        s[1].replicas = NULL;
    }
    ASSERT_TRUE(res == NULL);

    ASSERT_STREQ(kfk_topic_status_to_string(KFK_TOPIC_UNCHANGED), "unchanged");
    ASSERT_STREQ(kfk_topic_status_to_string(KFK_TOPIC_UPDATED), "updated");
    ASSERT_TRUE(kfk_topic_status_to_string(_KFK_TOPIC_STATUS_MAX) == NULL);
    ASSERT_TRUE(kfk_topic_results_free(NULL, 3) == NULL);
}

/* librdkafka's mock has no controller (it answers ControllerId 0, and its brokers are 1..N), and
 * librdkafka sends CreateTopics, DescribeConfigs, AlterConfigs and CreatePartitions to the
 * controller: both requests (sent together) wait for one until the timeout.  Each topic's row
 * says so, the call itself succeeds with 2 failed topics, within its timeout.  The mock has no
 * handler for these requests anyway; the real cluster test covers them. */
static void test_topics_apply_mock_lacks_admin_apis(void)
{
    struct kmock m;
    struct kfk_config_kv cfg[] = { { "retention.ms", "604800000" } };
    struct kfk_topic_spec s[] = {
        { .name = "orders",
          .partitions = 6,
          .replication_factor = 2,
          .configs = cfg,
          .n_configs = 1 },
        { .name = "audit", .partitions = 3, .replication_factor = 3 },
    };
    struct kfk_topic_result *res = NULL;
    struct err e = ERR_INIT;
    uint64_t t0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 4, 3), 0);
    t0 = now_usec();
    ASSERT_EQ(kfk_topics_apply(m.bootstraps, s, 2, 1500 * MSEC, &res, &e), 2);
    ASSERT_LE(now_usec() - t0, 2500 * MSEC);

    ASSERT_STREQ(res[0].name, "orders");
    ASSERT_EQ(res[0].status, KFK_TOPIC_ERROR);
    ASSERT_EQ(res[0].error, -ETIMEDOUT);
    ASSERT_CONTAINS(res[0].message, "DescribeConfigs");
    ASSERT_CONTAINS(res[0].message, "controller");
    ASSERT_EQ(res[0].partitions, 4);
    ASSERT_EQ(res[0].replication_factor, 3); /* the cluster's, not the spec's */
    ASSERT_TRUE(res[0].rf_differs);
    ASSERT_CONTAINS(res[0].message, "replication factor 3 differs from the spec's 2");
    ASSERT_EQ(res[0].partitions_added, 0); /* nothing is changed after a failed comparison */

    ASSERT_STREQ(res[1].name, "audit");
    ASSERT_EQ(res[1].status, KFK_TOPIC_ERROR);
    ASSERT_EQ(res[1].error, -ETIMEDOUT);
    ASSERT_CONTAINS(res[1].message, "CreateTopics");
    ASSERT_CONTAINS(res[1].message, "controller");
    ASSERT_EQ(res[1].partitions, -1);
    res = kfk_topic_results_free(res, 2);
    kmock_stop(&m);
}

/* ===== consumer lag ===== */

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        (group &&
         (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
          rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
          rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof errstr))))
        T_FAIL("conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk)
        T_FAIL("rd_kafka_new: %s", errstr);
    return rk;
}

/* n messages into each of the topic's first `parts` partitions. */
static void produce(const char *bootstrap, const char *topic, int parts, int n)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char payload[] = "m";

    ASSERT_TRUE(rkt != NULL);
    /* rd_kafka_produce(), not producev(): the RD_KAFKA_V_* macros are GNU statement
     * expressions, which -Wpedantic rejects under clang. */
    for (int p = 0; p < parts; p++)
        for (int i = 0; i < n; i++)
            ASSERT_EQ(rd_kafka_produce(rkt, p, RD_KAFKA_MSG_F_COPY, payload, 1, NULL, 0, NULL), 0);
    ASSERT_EQ(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

/* Group g reads m messages of partition 0 and commits what it read; it also commits offset
 * `p1` for partition 1 without reading. */
static void consume_commit(const char *bootstrap, const char *topic, const char *g, int m,
                           int64_t p1)
{
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, bootstrap, g);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    uint64_t deadline = now_usec() + 10000 * MSEC;
    int got = 0;

    rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ASSERT_EQ(rd_kafka_assign(rk, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    while (got < m && now_usec() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            /* Stores offset + 1: what a commit of consumed messages records. */
            ASSERT_EQ(rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset), 0);
            got++;
        }
        rd_kafka_message_destroy(msg);
    }
    ASSERT_EQ(got, m);
    ASSERT_EQ(rd_kafka_commit(rk, NULL, 0), 0);
    tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, 1)->offset = p1;
    ASSERT_EQ(rd_kafka_commit(rk, tp, 0), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    ASSERT_EQ(rd_kafka_consumer_close(rk), 0);
    rd_kafka_destroy(rk);
}

static void test_lag_mock(void)
{
    const char *groups[] = { "g1", "idle" }, *topics[] = { "orders" };
    struct kmock m;
    struct kfk_group_lag *lag = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 3, 2), 0);
    produce(m.bootstraps, "orders", 3, 10); /* N = 10 per partition */
    consume_commit(m.bootstraps, "orders", "g1", 4, 10);

    ASSERT_OK(kfk_consumer_lag_of(m.bootstraps, groups, 2, topics, 1, 5000 * MSEC, &lag, &n, &e));
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(lag[0].group, "g1"); /* sorted */
    ASSERT_STREQ(lag[0].state, "Unknown");
    ASSERT_EQ(lag[0].error, 0);
    ASSERT_EQ(lag[0].n_partitions, 2); /* partition 2: nothing committed, no row */
    ASSERT_STREQ(lag[0].partitions[0].topic, "orders");
    ASSERT_EQ(lag[0].partitions[0].partition, 0);
    ASSERT_EQ(lag[0].partitions[0].committed, 4); /* M = 4 read and committed */
    ASSERT_EQ(lag[0].partitions[0].high, 10);
    ASSERT_EQ(lag[0].partitions[0].lag, 6);
    ASSERT_EQ(lag[0].partitions[0].error, 0);
    ASSERT_EQ(lag[0].partitions[1].partition, 1);
    ASSERT_EQ(lag[0].partitions[1].committed, 10);
    ASSERT_EQ(lag[0].partitions[1].lag, 0);
    ASSERT_EQ(lag[0].total_lag, 6);
    ASSERT_EQ(lag[0].n_unknown, 0);
    ASSERT_STREQ(lag[1].group, "idle");
    ASSERT_EQ(lag[1].n_partitions, 0);
    ASSERT_EQ(lag[1].total_lag, 0);
    lag = kfk_consumer_lag_free(lag, n);

    /* More messages: the lag follows the high watermark. */
    produce(m.bootstraps, "orders", 1, 5);
    ASSERT_OK(kfk_consumer_lag_of(m.bootstraps, groups, 1, topics, 1, 5000 * MSEC, &lag, &n, &e));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(lag[0].partitions[0].high, 15);
    ASSERT_EQ(lag[0].total_lag, 11);
    lag = kfk_consumer_lag_free(lag, n);

    ASSERT_ERRNO(kfk_consumer_lag_of(m.bootstraps, groups, 1, (const char *[]){ "nope" }, 1,
                                     3000 * MSEC, &lag, &n, &e),
                 -ENOENT);
    ASSERT_CONTAINS(e.msg, "topic 'nope' does not exist");
    ASSERT_ERRNO(kfk_consumer_lag_of(m.bootstraps, (const char *[]){ "" }, 1, NULL, 0, 3000 * MSEC,
                                     &lag, &n, &e),
                 -EINVAL);
    ASSERT_TRUE(kfk_consumer_lag_free(NULL, 0) == NULL);
    kmock_stop(&m);
}

/* Every group needs ListGroups, which the mock does not implement: every broker answers
 * "not supported", so nothing could be listed and the call says so at once. */
static void test_lag_all_groups_mock_lacks_list_groups(void)
{
    struct kmock m;
    struct kfk_group_lag *lag = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    uint64_t t0;

    kmock_start(&m, 3);
    t0 = now_usec();
    ASSERT_ERRNO(kfk_consumer_lag(m.bootstraps, 3000 * MSEC, &lag, &n, &e), -EOPNOTSUPP);
    ASSERT_LE(now_usec() - t0, 1500 * MSEC);
    ASSERT_CONTAINS(e.msg, "ListConsumerGroups");
    ASSERT_TRUE(lag == NULL);
    kmock_stop(&m);
}

static void test_lag_all_down(void)
{
    struct kmock m;
    struct kfk_group_lag *lag = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    uint64_t t0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_broker_set_down(m.mc, -1), 0);
    t0 = now_usec();
    ASSERT_ERRNO(kfk_consumer_lag(m.bootstraps, 5000 * MSEC, &lag, &n, &e), -ECONNREFUSED);
    ASSERT_LE(now_usec() - t0, 2000 * MSEC);
    kmock_stop(&m);
}

T_MAIN(T_CASE(test_metadata_mock), T_CASE(test_counts_after_broker_down),
       T_CASE(test_counts_hand_built), T_CASE(test_probe_healthy),
       T_CASE(test_probe_self_not_listed), T_CASE(test_probe_all_down_fast),
       T_CASE(test_probe_refused_port), T_CASE(test_probe_hung_broker_times_out),
       T_CASE(test_bad_args), T_CASE(test_log_routed_to_debug), T_CASE(test_topics_apply_bad_specs),
       T_CASE(test_topics_apply_mock_lacks_admin_apis), T_CASE(test_lag_mock),
       T_CASE(test_lag_all_groups_mock_lacks_list_groups), T_CASE(test_lag_all_down))
