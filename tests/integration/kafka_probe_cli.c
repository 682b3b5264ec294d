/* SPDX-License-Identifier: MIT */
/* kafka_probe_cli - the kafka adapter (src/kafka) and the kafka probe against a real cluster,
 * for test_kafka_adapter.sh.  Output is one logfmt line per item, for grep.
 *
 *   kafka_probe_cli metadata BOOTSTRAP TIMEOUT_MS
 *       brokers=N controller=C answered_by=ID
 *       broker=ID host=H port=P replicas=.. led=.. under_replicated=.. offline=.. (+ _internal)
 *       total replicas=.. led=.. under_replicated=.. offline=.. (+ _internal)
 *       topic=NAME partitions=N rf=R internal=0|1 leaderless=K
 *   kafka_probe_cli apply BOOTSTRAP TIMEOUT_MS NAME:PARTITIONS:RF[:KEY=VALUE[,KEY=VALUE...]]...
 *       topic=NAME status=S partitions=N rf=R rf_differs=0|1 added=K configs_replaced=0|1
 *       message=...                                 (exit 1 when a topic failed)
 *   kafka_probe_cli lag BOOTSTRAP TIMEOUT_MS
 *       group=G state=S partitions=N total_lag=L unknown=U error=E
 *       lag group=G topic=T partition=P committed=C high=H lag=L
 *   kafka_probe_cli probe HOST PORT TIMEOUT_MS      (probe_start() with PROBE_KAFKA)
 *       result=R elapsed_ms=E message=...            then the probe's detail lines
 *                                                    (exit 0 healthy, 1 not)
 * Exit status 2 for a usage error, 1 when a call failed (its message on stderr). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "kafka/kafka.h"
#include "probe/probe.h"

#define MAX_SPECS   16
#define MAX_CONFIGS 16

static void print_counts(const char *prefix, const struct kfk_counts *c)
{
    printf("%s replicas=%u led=%u under_replicated=%u offline=%u replicas_internal=%u "
           "led_internal=%u under_replicated_internal=%u offline_internal=%u\n",
           prefix, c->replicas.n, c->led.n, c->under_replicated.n, c->offline.n,
           c->replicas.internal, c->led.internal, c->under_replicated.internal,
           c->offline.internal);
}

static int cmd_metadata(const char *bootstrap, uint64_t timeout)
{
    struct kfk_metadata *md = NULL;
    struct kfk_counts c;
    struct err e = ERR_INIT;
    char prefix[300];

    if (kfk_metadata_fetch(bootstrap, timeout, &md, &e) < 0) {
        fprintf(stderr, "kafka_probe_cli: %s\n", e.msg);
        return 1;
    }
    printf("brokers=%zu controller=%d answered_by=%d\n", md->n_brokers, (int)md->controller_id,
           (int)md->orig_broker_id);
    for (size_t i = 0; i < md->n_brokers; i++) {
        kfk_metadata_count(md, md->brokers[i].id, &c);
        (void)snprintf(prefix, sizeof prefix, "broker=%d host=%s port=%d", (int)md->brokers[i].id,
                       md->brokers[i].host, md->brokers[i].port);
        print_counts(prefix, &c);
    }
    kfk_metadata_count(md, KFK_BROKER_ALL, &c);
    print_counts("total", &c);
    for (size_t i = 0; i < md->n_topics; i++) {
        const struct kfk_topic *t = &md->topics[i];
        size_t rf = 0, leaderless = 0;
        for (size_t j = 0; j < t->n_partitions; j++) {
            if (t->partitions[j].n_replicas > rf)
                rf = t->partitions[j].n_replicas;
            leaderless += t->partitions[j].leader < 0;
        }
        printf("topic=%s partitions=%zu rf=%zu internal=%d leaderless=%zu\n", t->name,
               t->n_partitions, rf, t->internal, leaderless);
    }
    md = kfk_metadata_release(md);
    return 0;
}

/* NAME:PARTITIONS:RF[:K=V,K=V]; the strings point into arg (modified). */
static int parse_spec(char *arg, struct kfk_topic_spec *s, struct kfk_config_kv *kv)
{
    char *parts = strchr(arg, ':'), *rf, *cfg;
    uint64_t n;

    if (!parts)
        return -EINVAL;
    *parts++ = '\0';
    rf = strchr(parts, ':');
    if (!rf)
        return -EINVAL;
    *rf++ = '\0';
    cfg = strchr(rf, ':');
    if (cfg)
        *cfg++ = '\0';
    *s = (struct kfk_topic_spec){ .name = arg, .configs = kv };
    if (parse_uint_range(parts, 1, INT32_MAX, &n) < 0)
        return -EINVAL;
    s->partitions = (int32_t)n;
    if (parse_uint_range(rf, 1, INT16_MAX, &n) < 0)
        return -EINVAL;
    s->replication_factor = (int16_t)n;
    while (cfg && *cfg) {
        char *next = strchr(cfg, ','), *eq;
        if (next)
            *next++ = '\0';
        eq = strchr(cfg, '=');
        if (!eq || s->n_configs == MAX_CONFIGS)
            return -EINVAL;
        *eq = '\0';
        kv[s->n_configs++] = (struct kfk_config_kv){ .key = cfg, .value = eq + 1 };
        cfg = next;
    }
    return 0;
}

static int cmd_apply(const char *bootstrap, uint64_t timeout, int n, char **args)
{
    static struct kfk_config_kv kv[MAX_SPECS][MAX_CONFIGS];
    struct kfk_topic_spec specs[MAX_SPECS];
    struct kfk_topic_result *res = NULL;
    struct err e = ERR_INIT;
    int r;

    if (n < 1 || n > MAX_SPECS)
        return 2;
    for (int i = 0; i < n; i++)
        if (parse_spec(args[i], &specs[i], kv[i]) < 0) {
            fprintf(stderr, "kafka_probe_cli: bad topic spec %d\n", i);
            return 2;
        }
    r = kfk_topics_apply(bootstrap, specs, (size_t)n, timeout, &res, &e);
    if (r < 0) {
        fprintf(stderr, "kafka_probe_cli: %s%s%s\n", e.msg, e.field[0] ? " at " : "", e.field);
        return 1;
    }
    for (int i = 0; i < n; i++)
        printf("topic=%s status=%s partitions=%d rf=%d rf_differs=%d added=%u "
               "configs_replaced=%d error=%d message=%s\n",
               res[i].name, kfk_topic_status_to_string(res[i].status), (int)res[i].partitions,
               (int)res[i].replication_factor, res[i].rf_differs, res[i].partitions_added,
               res[i].configs_replaced, res[i].error, res[i].message);
    res = kfk_topic_results_free(res, (size_t)n);
    return r > 0 ? 1 : 0;
}

static int cmd_lag(const char *bootstrap, uint64_t timeout)
{
    struct kfk_group_lag *g = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;

    if (kfk_consumer_lag(bootstrap, timeout, &g, &n, &e) < 0) {
        fprintf(stderr, "kafka_probe_cli: %s\n", e.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        printf("group=%s state=%s partitions=%zu total_lag=%lld unknown=%u error=%d%s%s\n",
               g[i].group, g[i].state, g[i].n_partitions, (long long)g[i].total_lag, g[i].n_unknown,
               g[i].error, g[i].message[0] ? " message=" : "", g[i].message);
        for (size_t j = 0; j < g[i].n_partitions; j++) {
            const struct kfk_partition_lag *p = &g[i].partitions[j];
            printf("lag group=%s topic=%s partition=%d committed=%lld high=%lld lag=%lld\n",
                   g[i].group, p->topic, (int)p->partition, (long long)p->committed,
                   (long long)p->high, (long long)p->lag);
        }
    }
    g = kfk_consumer_lag_free(g, n);
    return 0;
}

static int cmd_probe(const char *host, const char *port_s, uint64_t timeout)
{
    struct probe_spec s = { .type = PROBE_KAFKA };
    struct probe *p;
    uint64_t port;
    int r;

    if (parse_uint_range(port_s, 1, 65535, &port) < 0)
        return 2;
    s.host = (char *)(uintptr_t)host;
    s.port = (uint16_t)port;
    p = probe_start(&s, timeout);
    if (!p)
        return 1;
    probe_run_all(&p, 1);
    r = probe_result(p);
    printf("result=%d elapsed_ms=%llu message=%s\n%s", r,
           (unsigned long long)(probe_elapsed_usec(p) / USEC_PER_MSEC), probe_message(p),
           probe_detail(p));
    p = probe_free(p);
    return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    uint64_t ms;

    if (argc >= 4 && strcmp(argv[1], "probe") == 0) {
        if (argc != 5 || parse_uint_range(argv[4], 1, 3600000, &ms) < 0)
            goto usage;
        return cmd_probe(argv[2], argv[3], ms * USEC_PER_MSEC);
    }
    if (argc < 4 || parse_uint_range(argv[3], 1, 3600000, &ms) < 0)
        goto usage;
    if (strcmp(argv[1], "metadata") == 0 && argc == 4)
        return cmd_metadata(argv[2], ms * USEC_PER_MSEC);
    if (strcmp(argv[1], "lag") == 0 && argc == 4)
        return cmd_lag(argv[2], ms * USEC_PER_MSEC);
    if (strcmp(argv[1], "apply") == 0 && argc >= 5) {
        int r = cmd_apply(argv[2], ms * USEC_PER_MSEC, argc - 4, argv + 4);
        if (r != 2)
            return r;
    }
usage:
    fprintf(stderr, "usage: kafka_probe_cli metadata|lag BOOTSTRAP TIMEOUT_MS\n"
                    "       kafka_probe_cli apply BOOTSTRAP TIMEOUT_MS NAME:PARTS:RF[:K=V,...]...\n"
                    "       kafka_probe_cli probe HOST PORT TIMEOUT_MS\n");
    return 2;
}
