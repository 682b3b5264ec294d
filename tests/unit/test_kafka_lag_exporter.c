/* SPDX-License-Identifier: MIT */
/* test_kafka_lag_exporter.c - kafka_lag_exporter: the exposition of hand-built adapter answers
 * (what librdkafka's mock cannot produce: consumer groups, shrunk ISRs). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "kafka/kafka.h"
#include "kafka_lag_exporter/collect.h"
#include "t.h"

#define MSEC USEC_PER_MSEC

/* text without its "# HELP" lines: the help wording is free, names, types, labels, values and
 * order are not. */
static char *without_help(const char *text)
{
    struct buf out = BUF_INIT(0);

    while (*text) {
        size_t n = strcspn(text, "\n") + (text[strcspn(text, "\n")] == '\n');
        if (!str_startswith(text, "# HELP "))
            ASSERT_OK(buf_append(&out, text, n));
        text += n;
    }
    return buf_detach(&out, NULL);
}

/* ===== The exposition of hand-built answers ===== */

/* Two brokers (listed out of order); topic "orders" with partition 0 under-replicated (ISR {2}
 * of {1,2}, led by 2, not its preferred leader) and partition 1 without a leader (listed
 * first), topic "audit" healthy; group "billing" with one known and one unknown lag, and a
 * group whose name needs every escape. */
struct fixture {
    char host_a[16], host_b[16], orders[16], audit[16], billing[16], weird[32];
    int32_t r12[2], r21[2], i2[1];
    struct kfk_broker brokers[2];
    struct kfk_partition orders_parts[2], audit_parts[1];
    struct kfk_topic topics[2];
    struct kfk_metadata md;
    struct kfk_partition_lag billing_lag[2], weird_lag[1];
    struct kfk_group_lag groups[2];
    struct klag_scrape scrape;
};

static void fixture_init(struct fixture *f)
{
    *f = (struct fixture){
        .host_a = "broker-a",
        .host_b = "broker-b",
        .orders = "orders",
        .audit = "audit",
        .billing = "billing",
        .weird = "we\"ird\\grp\n1",
        .r12 = { 1, 2 },
        .r21 = { 2, 1 },
        .i2 = { 2 },
    };
    f->brokers[0] = (struct kfk_broker){ .id = 2, .host = f->host_b, .port = 31002 };
    f->brokers[1] = (struct kfk_broker){ .id = 1, .host = f->host_a, .port = 31001 };
    f->orders_parts[0] = (struct kfk_partition){ .id = 1,
                                                 .leader = -1,
                                                 .replicas = f->r21,
                                                 .n_replicas = 2,
                                                 .isr = f->r21,
                                                 .n_isr = 2,
                                                 .kafka_error = 5 /* LEADER_NOT_AVAILABLE */ };
    f->orders_parts[1] = (struct kfk_partition){
        .id = 0, .leader = 2, .replicas = f->r12, .n_replicas = 2, .isr = f->i2, .n_isr = 1
    };
    f->audit_parts[0] = (struct kfk_partition){
        .id = 0, .leader = 2, .replicas = f->r21, .n_replicas = 2, .isr = f->r21, .n_isr = 2
    };
    f->topics[0] = (struct kfk_topic){ .name = f->orders,
                                       .partitions = f->orders_parts,
                                       .n_partitions = 2 };
    f->topics[1] =
            (struct kfk_topic){ .name = f->audit, .partitions = f->audit_parts, .n_partitions = 1 };
    f->md = (struct kfk_metadata){ .brokers = f->brokers,
                                   .n_brokers = 2,
                                   .topics = f->topics,
                                   .n_topics = 2,
                                   .controller_id = 1,
                                   .orig_broker_id = 1 };
    /* Group rows come sorted from the adapter (kafka.h), and so they are here. */
    f->billing_lag[0] = (struct kfk_partition_lag){
        .topic = f->orders, .partition = 0, .committed = 40, .high = 50, .lag = 10
    };
    f->billing_lag[1] = (struct kfk_partition_lag){ .topic = f->orders,
                                                    .partition = 1,
                                                    .committed = 7,
                                                    .high = -1,
                                                    .lag = -1,
                                                    .error = -ETIMEDOUT };
    f->weird_lag[0] = (struct kfk_partition_lag){
        .topic = f->audit, .partition = 0, .committed = 3, .high = 3, .lag = 0
    };
    f->groups[0] = (struct kfk_group_lag){ .group = f->billing,
                                           .state = "Stable",
                                           .partitions = f->billing_lag,
                                           .n_partitions = 2,
                                           .total_lag = 10,
                                           .n_unknown = 1 };
    f->groups[1] = (struct kfk_group_lag){
        .group = f->weird, .state = "Empty", .partitions = f->weird_lag, .n_partitions = 1
    };
    f->scrape = (struct klag_scrape)KLAG_SCRAPE_INIT;
    f->scrape.metadata = &f->md;
    f->scrape.groups = f->groups;
    f->scrape.n_groups = 2;
    f->scrape.duration_usec = 250 * MSEC;
}

static const char expected_full[] =
        "# TYPE kafka_brokers gauge\n"
        "kafka_brokers 2\n"
        "# TYPE kafka_broker_info gauge\n"
        "kafka_broker_info{address=\"broker-a:31001\",id=\"1\"} 1\n"
        "kafka_broker_info{address=\"broker-b:31002\",id=\"2\"} 1\n"
        "# TYPE kafka_topic_partitions gauge\n"
        "kafka_topic_partitions{topic=\"audit\"} 1\n"
        "kafka_topic_partitions{topic=\"orders\"} 2\n"
        "# TYPE kafka_topic_partition_leader gauge\n"
        "kafka_topic_partition_leader{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_leader{topic=\"orders\",partition=\"0\"} 2\n"
        "kafka_topic_partition_leader{topic=\"orders\",partition=\"1\"} -1\n"
        "# TYPE kafka_topic_partition_replicas gauge\n"
        "kafka_topic_partition_replicas{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_replicas{topic=\"orders\",partition=\"0\"} 2\n"
        "kafka_topic_partition_replicas{topic=\"orders\",partition=\"1\"} 2\n"
        "# TYPE kafka_topic_partition_in_sync_replica gauge\n"
        "kafka_topic_partition_in_sync_replica{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_in_sync_replica{topic=\"orders\",partition=\"0\"} 1\n"
        "kafka_topic_partition_in_sync_replica{topic=\"orders\",partition=\"1\"} 2\n"
        "# TYPE kafka_topic_partition_leader_is_preferred gauge\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"audit\",partition=\"0\"} 1\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"orders\",partition=\"0\"} 0\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"orders\",partition=\"1\"} 0\n"
        "# TYPE kafka_topic_partition_under_replicated_partition gauge\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"audit\",partition=\"0\"} 0\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"orders\",partition=\"0\"} 1\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"orders\",partition=\"1\"} 0\n"
        "# TYPE kafka_consumergroup_current_offset gauge\n"
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",topic=\"orders\","
        "partition=\"0\"} 40\n"
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",topic=\"orders\","
        "partition=\"1\"} 7\n"
        "kafka_consumergroup_current_offset{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\","
        "partition=\"0\"} 3\n"
        "# TYPE kafka_consumergroup_current_offset_sum gauge\n"
        "kafka_consumergroup_current_offset_sum{consumergroup=\"billing\",topic=\"orders\"} 47\n"
        "kafka_consumergroup_current_offset_sum{consumergroup=\"we\\\"ird\\\\grp\\n1\","
        "topic=\"audit\"} 3\n"
        "# TYPE kafka_consumergroup_lag gauge\n"
        "kafka_consumergroup_lag{consumergroup=\"billing\",topic=\"orders\",partition=\"0\"} 10\n"
        "kafka_consumergroup_lag{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\","
        "partition=\"0\"} 0\n"
        "# TYPE kafka_consumergroup_lag_sum gauge\n"
        "kafka_consumergroup_lag_sum{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\"} 0\n"
        "# TYPE kafka_lag_exporter_lag_unknown gauge\n"
        "kafka_lag_exporter_lag_unknown{consumergroup=\"billing\"} 1\n"
        "kafka_lag_exporter_lag_unknown{consumergroup=\"we\\\"ird\\\\grp\\n1\"} 0\n"
        "# TYPE kafka_lag_exporter_consumergroup_scrape_success gauge\n"
        "kafka_lag_exporter_consumergroup_scrape_success 1\n"
        "# TYPE kafka_lag_exporter_scrape_success gauge\n"
        "kafka_lag_exporter_scrape_success 1\n"
        "# TYPE kafka_lag_exporter_scrape_duration_seconds gauge\n"
        "kafka_lag_exporter_scrape_duration_seconds 0.25\n";

static void test_render_hand_built(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    char *got;

    fixture_init(&f);
    ASSERT_OK(buf_puts(&out, "kept\n")); /* rendering appends */
    ASSERT_OK(klag_render(&f.scrape, &out));
    ASSERT_TRUE(str_startswith(buf_str(&out), "kept\n# HELP kafka_brokers "));
    got = without_help(buf_str(&out) + 5);
    ASSERT_STREQ(got, expected_full);
    free(got);
    /* Every family has exactly one HELP line, right before its TYPE line. */
    for (const char *p = buf_str(&out); (p = strstr(p, "\n# TYPE ")); p++) {
        const char *help = p;
        while (help > out.data && help[-1] != '\n')
            help--;
        ASSERT_TRUE(str_startswith(help, "# HELP "));
        ASSERT_TRUE(strncmp(help + 7, p + 8, strcspn(p + 8, " ")) == 0);
    }
    buf_release(&out);
}

/* The group list did not come back: the metadata series stay, no group series at all. */
static void test_render_groups_unavailable(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    const char *text;

    fixture_init(&f);
    f.scrape.groups = NULL;
    f.scrape.n_groups = 0;
    f.scrape.groups_error = -EOPNOTSUPP;
    ASSERT_OK(klag_render(&f.scrape, &out));
    text = buf_str(&out);
    ASSERT_CONTAINS(text, "\nkafka_topic_partitions{topic=\"orders\"} 2\n");
    ASSERT_TRUE(!strstr(text, "kafka_consumergroup"));
    ASSERT_TRUE(!strstr(text, "lag_unknown"));
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_consumergroup_scrape_success 0\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_scrape_success 1\n");
    buf_release(&out);
}

/* One group's offsets could not be read: its series are missing, the others' stay. */
static void test_render_group_error(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    const char *text;

    fixture_init(&f);
    f.groups[0].error = -ECONNRESET;
    ASSERT_OK(klag_render(&f.scrape, &out));
    text = buf_str(&out);
    ASSERT_TRUE(!strstr(text, "billing"));
    ASSERT_CONTAINS(text,
                    "kafka_lag_exporter_lag_unknown{consumergroup=\"we\\\"ird\\\\grp\\n1\"} 0\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_consumergroup_scrape_success 0\n");
    buf_release(&out);
}

/* The cluster did not answer: the two own gauges (HELP and TYPE included), nothing else. */
static void test_render_failed_scrape(void)
{
    struct klag_scrape s = KLAG_SCRAPE_INIT;
    struct buf out = BUF_INIT(0);
    char *got;

    s.metadata_error = -ECONNREFUSED;
    s.duration_usec = 1500;
    ASSERT_OK(klag_render(&s, &out));
    ASSERT_TRUE(str_startswith(buf_str(&out), "# HELP kafka_lag_exporter_scrape_success "));
    ASSERT_CONTAINS(buf_str(&out), "\n# HELP kafka_lag_exporter_scrape_duration_seconds ");
    got = without_help(buf_str(&out));
    ASSERT_STREQ(got, "# TYPE kafka_lag_exporter_scrape_success gauge\n"
                      "kafka_lag_exporter_scrape_success 0\n"
                      "# TYPE kafka_lag_exporter_scrape_duration_seconds gauge\n"
                      "kafka_lag_exporter_scrape_duration_seconds 0.0015\n");
    free(got);
    buf_release(&out);
}

/* A full buffer fails the whole rendering and leaves out as it was. */
static void test_render_enobufs(void)
{
    struct fixture f;
    struct buf full = BUF_INIT(0);

    fixture_init(&f);
    ASSERT_OK(klag_render(&f.scrape, &full));
    for (size_t max = 8; max < full.len; max += 97) {
        struct buf out = BUF_INIT(max);
        ASSERT_OK(buf_puts(&out, "pre\n"));
        ASSERT_ERRNO(klag_render(&f.scrape, &out), -ENOBUFS);
        ASSERT_STREQ(buf_str(&out), "pre\n");
        buf_release(&out);
    }
    buf_release(&full);
}

T_MAIN(T_CASE(test_render_hand_built), T_CASE(test_render_groups_unavailable),
       T_CASE(test_render_group_error), T_CASE(test_render_failed_scrape),
       T_CASE(test_render_enobufs))
