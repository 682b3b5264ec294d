/* SPDX-License-Identifier: MIT */
/* collect.c - one scrape (kfk_metadata_fetch(), then kfk_consumer_lag()) and its exposition
 * under kafka_exporter's names.  Label names and their order follow kafka_exporter's label
 * sets; Prometheus does not care about the order, its dashboards and rules only about names. */
#include "collect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"

/* ===== The scrape ===== */

static void note(struct klag_scrape *s, const char *fmt, ...) PRINTF(2, 3);

/* Appends one problem to s->message ("; " between problems), silently truncating. */
static void note(struct klag_scrape *s, const char *fmt, ...)
{
    size_t len = strlen(s->message);
    va_list ap;

    if (len + 3 >= sizeof s->message)
        return;
    if (len > 0) {
        memcpy(s->message + len, "; ", 3);
        len += 2;
    }
    va_start(ap, fmt);
    (void)vsnprintf(s->message + len, sizeof s->message - len, fmt, ap);
    va_end(ap);
}

static const char *err_text(const struct err *e, int r)
{
    return e->msg[0] ? e->msg : strerror(-r);
}

/* Groups whose offsets could not be read, and partitions whose lag is unknown, for the log. */
static void note_group_problems(struct klag_scrape *s)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        const struct kfk_group_lag *g = &s->groups[i];

        if (g->error < 0) {
            note(s, "group '%s': %s", g->group, g->message[0] ? g->message : strerror(-g->error));
            continue;
        }
        for (size_t j = 0; j < g->n_partitions && g->n_unknown > 0; j++)
            if (g->partitions[j].lag < 0) {
                note(s, "group '%s': lag of %u partitions unknown (%s-%" PRId32 ": %s)", g->group,
                     g->n_unknown, g->partitions[j].topic, g->partitions[j].partition,
                     strerror(-g->partitions[j].error));
                break;
            }
    }
}

void klag_scrape_run(const char *bootstrap, uint64_t timeout_usec, struct klag_scrape *ret)
{
    struct klag_scrape s = KLAG_SCRAPE_INIT;
    uint64_t start = now_usec(), spent;
    struct err e = ERR_INIT;
    int r;

    r = kfk_metadata_fetch(bootstrap, timeout_usec, &s.metadata, &e);
    if (r < 0) {
        s.metadata_error = r;
        note(&s, "%s", err_text(&e, r));
        goto out;
    }
    /* One budget for the whole scrape, so that Prometheus's scrape_timeout can be set from
     * --timeout alone. */
    spent = now_usec() - start;
    if (spent >= timeout_usec) {
        s.groups_error = -ETIMEDOUT;
        note(&s, "consumer groups not asked: the metadata request used up the timeout");
        goto out;
    }
    e = (struct err)ERR_INIT;
    r = kfk_consumer_lag(bootstrap, timeout_usec - spent, &s.groups, &s.n_groups, &e);
    if (r < 0) {
        s.groups_error = r;
        note(&s, "consumer groups: %s", err_text(&e, r));
        goto out;
    }
    note_group_problems(&s);
out:
    s.duration_usec = now_usec() - start;
    *ret = s;
}

void klag_scrape_release(struct klag_scrape *s)
{
    if (!s)
        return;
    (void)kfk_metadata_release(s->metadata);
    (void)kfk_consumer_lag_free(s->groups, s->n_groups);
    *s = (struct klag_scrape)KLAG_SCRAPE_INIT;
}

/* ===== Exposition ===== */

/* Every family is a gauge, as in kafka_exporter.  A family's header is written with its first
 * sample, so a family without samples leaves no trace. */
struct expo {
    struct buf *out;
    int r;
    const char *name, *help; /* the current family */
    bool header_due;
};

static void family(struct expo *e, const char *name, const char *help)
{
    e->name = name;
    e->help = help;
    e->header_due = true;
}

static void sample(struct expo *e, const char *const *label_names, const char *const *label_values,
                   size_t n, double v)
{
    if (e->r < 0)
        return;
    if (e->header_due) {
        e->header_due = false;
        e->r = metrics_text_header(e->out, e->name, METRICS_GAUGE, e->help);
        if (e->r < 0)
            return;
    }
    e->r = metrics_text_sample(e->out, e->name, label_names, label_values, n, v);
}

/* The metadata in exposition order: topics by name, each topic's partitions by id (in parts,
 * topic after topic), brokers by id. */
struct order {
    const struct kfk_topic **topics;
    const struct kfk_partition **parts;
    const struct kfk_broker **brokers;
};

static int topic_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct kfk_topic *const *)a)->name,
                  (*(const struct kfk_topic *const *)b)->name);
}

static int partition_cmp(const void *a, const void *b)
{
    int32_t x = (*(const struct kfk_partition *const *)a)->id;
    int32_t y = (*(const struct kfk_partition *const *)b)->id;

    return (x > y) - (x < y);
}

static int broker_cmp(const void *a, const void *b)
{
    int32_t x = (*(const struct kfk_broker *const *)a)->id;
    int32_t y = (*(const struct kfk_broker *const *)b)->id;

    return (x > y) - (x < y);
}

static void order_release(struct order *o)
{
    free(o->topics);
    free(o->parts);
    free(o->brokers);
    *o = (struct order){ 0 };
}

static int order_build(const struct kfk_metadata *md, struct order *ret)
{
    struct order o = { 0 };
    size_t n_parts = 0, k = 0;

    for (size_t i = 0; i < md->n_topics; i++)
        n_parts += md->topics[i].n_partitions;
    o.topics = calloc(md->n_topics + 1, sizeof *o.topics);
    o.parts = calloc(n_parts + 1, sizeof *o.parts);
    o.brokers = calloc(md->n_brokers + 1, sizeof *o.brokers);
    if (!o.topics || !o.parts || !o.brokers) {
        order_release(&o);
        return -ENOMEM;
    }
    for (size_t i = 0; i < md->n_topics; i++)
        o.topics[i] = &md->topics[i];
    qsort(o.topics, md->n_topics, sizeof *o.topics, topic_cmp);
    for (size_t i = 0; i < md->n_topics; i++) {
        const struct kfk_topic *t = o.topics[i];

        for (size_t j = 0; j < t->n_partitions; j++)
            o.parts[k + j] = &t->partitions[j];
        qsort(o.parts + k, t->n_partitions, sizeof *o.parts, partition_cmp);
        k += t->n_partitions;
    }
    for (size_t i = 0; i < md->n_brokers; i++)
        o.brokers[i] = &md->brokers[i];
    qsort(o.brokers, md->n_brokers, sizeof *o.brokers, broker_cmp);
    *ret = o;
    return 0;
}

static void render_brokers(struct expo *e, const struct kfk_metadata *md, const struct order *o)
{
    static const char *const ln[] = { "address", "id" };

    family(e, "kafka_brokers", "Number of brokers in the cluster's metadata answer.");
    sample(e, NULL, NULL, 0, (double)md->n_brokers);
    family(e, "kafka_broker_info", "A broker of the cluster: its advertised address and id.");
    for (size_t i = 0; i < md->n_brokers; i++) {
        char address[300], id[16];
        const char *lv[] = { address, id };

        (void)snprintf(address, sizeof address, "%s:%d", o->brokers[i]->host, o->brokers[i]->port);
        (void)snprintf(id, sizeof id, "%" PRId32, o->brokers[i]->id);
        sample(e, ln, lv, 2, 1);
    }
}

static double partition_leader(const struct kfk_partition *p)
{
    return p->leader;
}

static double partition_replicas(const struct kfk_partition *p)
{
    return (double)p->n_replicas;
}

static double partition_isr(const struct kfk_partition *p)
{
    return (double)p->n_isr;
}

static double partition_leader_is_preferred(const struct kfk_partition *p)
{
    return p->leader >= 0 && p->n_replicas > 0 && p->replicas[0] == p->leader;
}

static double partition_under_replicated(const struct kfk_partition *p)
{
    return p->n_isr < p->n_replicas;
}

static const struct {
    const char *name, *help;
    double (*value)(const struct kfk_partition *p);
} partition_families[] = {
    { "kafka_topic_partition_leader", "Broker id of the partition's leader, -1 when it has none.",
      partition_leader },
    { "kafka_topic_partition_replicas", "Number of replicas of the partition.",
      partition_replicas },
    { "kafka_topic_partition_in_sync_replica", "Number of in-sync replicas of the partition.",
      partition_isr },
    { "kafka_topic_partition_leader_is_preferred",
      "1 when the partition is led by its preferred (first) replica.",
      partition_leader_is_preferred },
    { "kafka_topic_partition_under_replicated_partition",
      "1 when the partition has fewer in-sync replicas than replicas.",
      partition_under_replicated },
};

static void render_topics(struct expo *e, const struct kfk_metadata *md, const struct order *o)
{
    static const char *const ln[] = { "topic", "partition" };

    family(e, "kafka_topic_partitions", "Number of partitions of the topic.");
    for (size_t i = 0; i < md->n_topics; i++)
        sample(e, ln, (const char *const[]){ o->topics[i]->name }, 1,
               (double)o->topics[i]->n_partitions);
    for (size_t f = 0; f < ARRAY_SIZE(partition_families); f++) {
        size_t k = 0;

        family(e, partition_families[f].name, partition_families[f].help);
        for (size_t i = 0; i < md->n_topics; i++)
            for (size_t j = 0; j < o->topics[i]->n_partitions; j++, k++) {
                char partition[16];
                const char *lv[] = { o->topics[i]->name, partition };

                (void)snprintf(partition, sizeof partition, "%" PRId32, o->parts[k]->id);
                sample(e, ln, lv, 2, partition_families[f].value(o->parts[k]));
            }
    }
}

/* One sample per partition row of every readable group: its committed offset, or its lag
 * (rows whose lag is unknown are left out). */
static void render_group_partitions(struct expo *e, const struct klag_scrape *s, bool lag)
{
    static const char *const ln[] = { "consumergroup", "topic", "partition" };

    for (size_t i = 0; i < s->n_groups; i++) {
        const struct kfk_group_lag *g = &s->groups[i];

        for (size_t j = 0; g->error == 0 && j < g->n_partitions; j++) {
            const struct kfk_partition_lag *pl = &g->partitions[j];
            char partition[16];
            const char *lv[] = { g->group, pl->topic, partition };

            if (lag && pl->lag < 0)
                continue;
            (void)snprintf(partition, sizeof partition, "%" PRId32, pl->partition);
            sample(e, ln, lv, 3, (double)(lag ? pl->lag : pl->committed));
        }
    }
}

/* One sample per group and topic: the sum of the committed offsets, or of the lags.  A lag sum
 * that would leave out a partition whose lag is unknown is not written at all: a sum that drops
 * when a broker is down would read as the consumers catching up. */
static void render_group_sums(struct expo *e, const struct klag_scrape *s, bool lag)
{
    static const char *const ln[] = { "consumergroup", "topic" };

    for (size_t i = 0; i < s->n_groups; i++) {
        const struct kfk_group_lag *g = &s->groups[i];

        for (size_t j = 0; g->error == 0 && j < g->n_partitions;) {
            const char *topic = g->partitions[j].topic;
            double sum = 0;
            bool known = true;

            for (; j < g->n_partitions && strcmp(g->partitions[j].topic, topic) == 0; j++) {
                const struct kfk_partition_lag *pl = &g->partitions[j];

                if (!lag)
                    sum += (double)pl->committed;
                else if (pl->lag >= 0)
                    sum += (double)pl->lag;
                else
                    known = false;
            }
            if (known)
                sample(e, ln, (const char *const[]){ g->group, topic }, 2, sum);
        }
    }
}

static void render_groups(struct expo *e, const struct klag_scrape *s)
{
    bool all_read = s->groups_error == 0;

    family(e, "kafka_consumergroup_current_offset",
           "Offset the consumer group committed for the partition.");
    render_group_partitions(e, s, false);
    family(e, "kafka_consumergroup_current_offset_sum",
           "Sum of the offsets the consumer group committed for the topic's partitions.");
    render_group_sums(e, s, false);
    family(e, "kafka_consumergroup_lag",
           "Messages the consumer group has yet to read from the partition: its high "
           "watermark minus the committed offset.");
    render_group_partitions(e, s, true);
    family(e, "kafka_consumergroup_lag_sum",
           "Sum of the consumer group's lag over the topic's partitions; absent while the lag "
           "of one of them is unknown.");
    render_group_sums(e, s, true);
    family(e, "kafka_lag_exporter_lag_unknown",
           "Partitions of the consumer group whose lag is unknown (high watermark not read); "
           "their kafka_consumergroup_lag series are left out.");
    for (size_t i = 0; i < s->n_groups; i++) {
        if (s->groups[i].error < 0) {
            all_read = false;
            continue;
        }
        sample(e, (const char *const[]){ "consumergroup" },
               (const char *const[]){ s->groups[i].group }, 1, s->groups[i].n_unknown);
    }
    family(e, "kafka_lag_exporter_consumergroup_scrape_success",
           "1 when every consumer group and its committed offsets could be read; 0 when the "
           "group list or a group's offsets could not (their series are missing).");
    sample(e, NULL, NULL, 0, all_read);
}

int klag_render(const struct klag_scrape *s, struct buf *out)
{
    struct expo e = { .out = out };
    struct order o = { 0 };
    size_t mark = out->len;

    if (s->metadata) {
        e.r = order_build(s->metadata, &o);
        if (e.r == 0) {
            render_brokers(&e, s->metadata, &o);
            render_topics(&e, s->metadata, &o);
            render_groups(&e, s);
        }
        order_release(&o);
    }
    family(&e, "kafka_lag_exporter_scrape_success",
           "1 when the cluster answered this scrape's metadata request, else 0 (and no other "
           "series but the duration).");
    sample(&e, NULL, NULL, 0, klag_scrape_success(s));
    family(&e, "kafka_lag_exporter_scrape_duration_seconds",
           "How long this scrape's Kafka requests took.");
    sample(&e, NULL, NULL, 0, (double)s->duration_usec / (double)USEC_PER_SEC);
    if (e.r < 0) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return e.r;
}
