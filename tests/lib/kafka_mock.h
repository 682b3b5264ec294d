/* SPDX-License-Identifier: MIT */
/* kafka_mock.h - librdkafka's built-in mock cluster for tests (librdkafka 2.12.1, which
 * scripts/install-deps.sh builds: cmake/Rdkafka.cmake).
 * Header-only.  The cluster runs in threads of this process: create it inside the test case
 * (t.h forks each case) and stop it before the case returns.
 *
 *   struct kmock m;
 *   kmock_start(&m, 3);                       brokers 1..3 on 127.0.0.1, random ports
 *   rd_kafka_mock_topic_create(m.mc, "t", 6, 2);
 *   ... kfk_*(m.bootstraps, ...) or kmock_port(&m, 1) for one broker ...
 *   kmock_stop(&m);
 *
 * What the mock does (research/ha.md §3.2 for 2.0.2; 2.12.1's rdkafka_mock*.c checked again):
 *   - Metadata lists every broker, down or not, and ControllerId 0 (never set);
 *   - a topic gets the replication factor asked for (2.0.2 gave every partition min(3,
 *     brokers) replicas), and ISR == replicas always, so no partition is ever under-replicated;
 *   - rd_kafka_mock_broker_set_down() closes connections and refuses new ones but moves no
 *     leader: rd_kafka_mock_partition_set_leader() does that (-1: offline);
 *   - no CreateTopics, CreatePartitions, DescribeConfigs, AlterConfigs, ListGroups or
 *     DescribeGroups handlers; OffsetFetch answers only the partitions asked for. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "t.h"

struct kmock {
    rd_kafka_t *rk; /* the handle that owns the cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps; /* "127.0.0.1:p1,127.0.0.1:p2,..." in broker id order */
};

static inline void kmock_start(struct kmock *m, int brokers)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    /* The owning handle has no bootstrap servers and would say so on stderr. */
    if (rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        T_FAIL("log_level: %s", errstr);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!m->rk)
        T_FAIL("rd_kafka_new: %s", errstr);
    m->mc = rd_kafka_mock_cluster_new(m->rk, brokers);
    if (!m->mc)
        T_FAIL("rd_kafka_mock_cluster_new failed");
    m->bootstraps = rd_kafka_mock_cluster_bootstraps(m->mc);
}

static inline void kmock_stop(struct kmock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
    *m = (struct kmock){ 0 };
}

/* The port of broker id (1-based: the id-th entry of the bootstrap list). */
static inline uint16_t kmock_port(const struct kmock *m, int id)
{
    const char *s = m->bootstraps;
    unsigned port = 0;

    for (int i = 1; i < id && s; i++) {
        s = strchr(s, ',');
        s = s ? s + 1 : NULL;
    }
    if (!s || !(s = strchr(s, ':')))
        T_FAIL("no broker %d in '%s'", id, m->bootstraps);
    for (s++; *s >= '0' && *s <= '9'; s++)
        port = port * 10 + (unsigned)(*s - '0');
    return (uint16_t)port;
}

/* "127.0.0.1:<port of broker id>" into buf. */
static inline const char *kmock_broker(const struct kmock *m, int id, char *buf, size_t n)
{
    (void)snprintf(buf, n, "127.0.0.1:%u", (unsigned)kmock_port(m, id));
    return buf;
}

/* Makes every broker answer after rtt_ms (a hung broker: the TCP connection is accepted, no
 * answer comes in time). */
static inline void kmock_hang(struct kmock *m, int rtt_ms)
{
    if (rd_kafka_mock_broker_set_rtt(m->mc, -1, rtt_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        T_FAIL("rd_kafka_mock_broker_set_rtt failed");
}
