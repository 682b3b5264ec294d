/* SPDX-License-Identifier: MIT */
/* kafka_lag.c - consumer-group lag: ListConsumerGroups, then one ListConsumerGroupOffsets per
 * group (librdkafka takes one group per request), then the high watermark of each
 * committed partition (rd_kafka_query_watermark_offsets, asked once per partition however many
 * groups committed it).  lag = max(0, high - committed), the way kafka_exporter computes
 * kafka_consumergroup_lag. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/err.h"
#include "core/log.h"
#include "kafka.h"
#include "kafka_int.h"

struct kfk_group_lag *kfk_consumer_lag_free(struct kfk_group_lag *groups, size_t n)
{
    if (!groups)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < groups[i].n_partitions; j++)
            free(groups[i].partitions[j].topic);
        free(groups[i].partitions);
        free(groups[i].group);
    }
    free(groups);
    return NULL;
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kfk_group_lag *)a)->group,
                  ((const struct kfk_group_lag *)b)->group);
}

static int partition_cmp(const void *a, const void *b)
{
    const struct kfk_partition_lag *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    if (c != 0)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Every group the cluster lists, with its state.  Fails only when no broker listed any. */
static int list_groups(struct kfk_client *c, rd_kafka_queue_t *q, struct kfk_group_lag **ret,
                       size_t *ret_n, struct err *reterr)
{
    rd_kafka_AdminOptions_t *o = kfk__admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, false);
    const rd_kafka_ListConsumerGroups_result_t *res;
    const rd_kafka_ConsumerGroupListing_t **valid;
    const rd_kafka_error_t **errors;
    struct kfk_group_lag *groups = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t n_valid, n_errors;
    int r;

    if (!o)
        return err_set(reterr, -ENOMEM, 0, 0, "out of memory");
    rd_kafka_ListConsumerGroups(c->rk, o, q);
    r = kfk__admin_wait(c, q, "ListConsumerGroups", &ev, reterr);
    if (r < 0)
        goto out;
    res = rd_kafka_event_ListConsumerGroups_result(ev);
    valid = rd_kafka_ListConsumerGroups_result_valid(res, &n_valid);
    errors = rd_kafka_ListConsumerGroups_result_errors(res, &n_errors);
    /* Each broker lists the groups it coordinates.  Errors next to valid listings are brokers
     * that did not answer: the groups they coordinated have moved to live brokers by the time
     * those are fenced, so carry on.  Errors alone mean nothing could be listed. */
    for (size_t i = 0; i < n_errors; i++)
        (void)log_debug_errno(kfk__errno(rd_kafka_error_code(errors[i])), "ListConsumerGroups: %s",
                              rd_kafka_error_string(errors[i]));
    if (n_errors > 0 && n_valid == 0) {
        r = kfk__fail(reterr, rd_kafka_error_code(errors[0]), "ListConsumerGroups",
                      rd_kafka_error_string(errors[0]));
        goto out;
    }
    groups = calloc(n_valid ? n_valid : 1, sizeof *groups);
    if (!groups) {
        r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_valid; i++) {
        struct kfk_group_lag *g = &groups[i];

        g->group = strdup(rd_kafka_ConsumerGroupListing_group_id(valid[i]));
        if (!g->group) {
            r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
            groups = kfk_consumer_lag_free(groups, i);
            goto out;
        }
        (void)snprintf(
                g->state, sizeof g->state, "%s",
                rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(valid[i])));
        g->simple = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(valid[i]) != 0;
    }
    *ret = groups;
    *ret_n = n_valid;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    return r;
}

/* Every partition of the named topics.  -ENOENT for a topic that does not exist. */
static int topics_partitions(const struct rd_kafka_metadata *md, const char *const *topics,
                             size_t n_topics, rd_kafka_topic_partition_list_t **ret,
                             struct err *reterr)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    int r = 0;

    for (size_t i = 0; i < n_topics; i++) {
        const struct rd_kafka_metadata_topic *t = NULL;

        for (int j = 0; j < md->topic_cnt && !t; j++)
            if (strcmp(md->topics[j].topic, topics[i]) == 0 &&
                md->topics[j].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                t = &md->topics[j];
        if (!t) {
            r = err_set(reterr, -ENOENT, 0, 0, "topic '%s' does not exist", topics[i]);
            goto out;
        }
        for (int j = 0; j < t->partition_cnt; j++)
            (void)rd_kafka_topic_partition_list_add(parts, t->topic, t->partitions[j].id);
    }
    if (parts->cnt == 0) {
        r = err_set(reterr, -ENOENT, 0, 0, "the topics have no partitions");
        goto out;
    }
    *ret = parts;
    parts = NULL;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return r;
}

/* The group's committed offsets (parts NULL: every partition it committed) into g. */
static void group_offsets(struct kfk_client *c, rd_kafka_queue_t *q, struct kfk_group_lag *g,
                          const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_ListConsumerGroupOffsets_t *req =
            rd_kafka_ListConsumerGroupOffsets_new(g->group, parts);
    rd_kafka_AdminOptions_t *o =
            kfk__admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, false);
    const rd_kafka_group_result_t **gr;
    const rd_kafka_topic_partition_list_t *got;
    const rd_kafka_error_t *gerr;
    rd_kafka_event_t *ev = NULL;
    struct err e = ERR_INIT;
    size_t n;
    int r;

    if (!req || !o) {
        g->error = -ENOMEM;
        goto out;
    }
    rd_kafka_ListConsumerGroupOffsets(c->rk, &req, 1, o, q);
    r = kfk__admin_wait(c, q, "ListConsumerGroupOffsets", &ev, &e);
    if (r < 0) {
        g->error = r;
        (void)snprintf(g->message, sizeof g->message, "%s", e.msg);
        goto out;
    }
    gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    if (n < 1) {
        g->error = -EPROTO;
        (void)snprintf(g->message, sizeof g->message, "ListConsumerGroupOffsets: no result");
        goto out;
    }
    gerr = rd_kafka_group_result_error(gr[0]);
    if (gerr) {
        g->error = kfk__errno(rd_kafka_error_code(gerr));
        (void)snprintf(g->message, sizeof g->message, "ListConsumerGroupOffsets: %s",
                       rd_kafka_error_string(gerr));
        goto out;
    }
    got = rd_kafka_group_result_partitions(gr[0]);
    n = 0;
    for (int i = 0; got && i < got->cnt; i++)
        n += got->elems[i].offset >= 0;
    if (n == 0)
        goto out;
    g->partitions = calloc(n, sizeof *g->partitions);
    if (!g->partitions) {
        g->error = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < got->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &got->elems[i];
        struct kfk_partition_lag *pl;

        /* No committed offset (librdkafka's RD_KAFKA_OFFSET_INVALID): not a row. */
        if (tp->offset < 0)
            continue;
        pl = &g->partitions[g->n_partitions];
        pl->topic = strdup(tp->topic);
        if (!pl->topic) {
            g->error = -ENOMEM;
            goto out;
        }
        pl->partition = tp->partition;
        pl->committed = tp->offset;
        pl->high = -1;
        pl->lag = -1;
        g->n_partitions++;
    }
out:
    if (g->error == -ENOMEM && !g->message[0])
        (void)snprintf(g->message, sizeof g->message, "out of memory");
    if (ev)
        rd_kafka_event_destroy(ev);
    if (o)
        rd_kafka_AdminOptions_destroy(o);
    if (req)
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
}

struct wmark {
    const char *topic; /* borrowed from a row */
    int32_t partition;
    int64_t high;
    int error;
};

/* The high watermark of tp, asked once per partition whatever the number of groups. */
static void partition_high(struct kfk_client *c, struct wmark *cache, size_t *n_cache,
                           struct kfk_partition_lag *pl)
{
    struct wmark *w = NULL;
    int64_t low = 0, high = 0;
    int left;

    for (size_t i = 0; i < *n_cache && !w; i++)
        if (cache[i].partition == pl->partition && strcmp(cache[i].topic, pl->topic) == 0)
            w = &cache[i];
    if (!w) {
        w = &cache[(*n_cache)++];
        *w = (struct wmark){ .topic = pl->topic, .partition = pl->partition, .high = -1 };
        left = kfk__remaining_ms(c);
        if (left == 0) {
            w->error = -ETIMEDOUT;
        } else {
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                    c->rk, pl->topic, pl->partition, &low, &high, left);
            w->error = kfk__errno(e);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                w->high = high;
        }
    }
    pl->error = w->error;
    pl->high = w->high;
    if (w->error == 0)
        pl->lag = pl->high > pl->committed ? pl->high - pl->committed : 0;
}

static int compute_lags(struct kfk_client *c, struct kfk_group_lag *groups, size_t n)
{
    struct wmark *cache;
    size_t rows = 0, n_cache = 0;

    for (size_t i = 0; i < n; i++)
        rows += groups[i].n_partitions;
    cache = calloc(rows ? rows : 1, sizeof *cache);
    if (!cache)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct kfk_group_lag *g = &groups[i];
        for (size_t j = 0; j < g->n_partitions; j++) {
            partition_high(c, cache, &n_cache, &g->partitions[j]);
            if (g->partitions[j].lag >= 0)
                g->total_lag += g->partitions[j].lag;
            else
                g->n_unknown++;
        }
        if (g->n_partitions > 1)
            qsort(g->partitions, g->n_partitions, sizeof *g->partitions, partition_cmp);
    }
    free(cache);
    return 0;
}

static int lag_run(const char *bootstrap, bool list_all, const char *const *names, size_t n_names,
                   const char *const *topics, size_t n_topics, uint64_t timeout_usec,
                   struct kfk_group_lag **ret_groups, size_t *ret_n, struct err *reterr)
{
    struct kfk_client c = { 0 };
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    struct kfk_group_lag *groups = NULL;
    rd_kafka_queue_t *q = NULL;
    size_t n = 0;
    int r;

    for (size_t i = 0; !list_all && i < n_names; i++)
        if (!names || !names[i] || !names[i][0])
            return err_set(reterr, -EINVAL, 0, 0, "group %zu has no name", i);
    for (size_t i = 0; topics && i < n_topics; i++)
        if (!topics[i] || !topics[i][0])
            return err_set(reterr, -EINVAL, 0, 0, "topic %zu has no name", i);
    r = kfk__client_open(&c, bootstrap, timeout_usec, reterr);
    if (r < 0)
        goto out;
    /* First a metadata request, also when no topic is named: the admin requests below only
     * connect on librdkafka's 1 s timer, while this one connects at once and so notices within
     * ms that every broker is down. */
    r = kfk__metadata(&c, &md, reterr);
    if (r < 0)
        goto out;
    q = rd_kafka_queue_new(c.rk);
    if (!q) {
        r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
        goto out;
    }
    if (list_all) {
        r = list_groups(&c, q, &groups, &n, reterr);
        if (r < 0)
            goto out;
    } else {
        groups = calloc(n_names ? n_names : 1, sizeof *groups);
        if (!groups) {
            r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
            goto out;
        }
        for (; n < n_names; n++) {
            groups[n].group = strdup(names[n]);
            if (!groups[n].group) {
                r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
                goto out;
            }
            (void)snprintf(
                    groups[n].state, sizeof groups[n].state, "%s",
                    rd_kafka_consumer_group_state_name(RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN));
        }
    }
    if (topics && n_topics > 0) {
        r = topics_partitions(md, topics, n_topics, &parts, reterr);
        if (r < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        group_offsets(&c, q, &groups[i], parts);
    r = compute_lags(&c, groups, n);
    if (r < 0) {
        err_set(reterr, r, 0, 0, "out of memory");
        goto out;
    }
    if (n > 1)
        qsort(groups, n, sizeof *groups, group_cmp);
    *ret_groups = groups;
    *ret_n = n;
    groups = NULL;
    r = 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (q)
        rd_kafka_queue_destroy(q);
    if (md)
        rd_kafka_metadata_destroy(md);
    kfk__client_close(&c);
    (void)kfk_consumer_lag_free(groups, n);
    return r;
}

int kfk_consumer_lag(const char *bootstrap, uint64_t timeout_usec,
                     struct kfk_group_lag **ret_groups, size_t *ret_n, struct err *reterr)
{
    return lag_run(bootstrap, true, NULL, 0, NULL, 0, timeout_usec, ret_groups, ret_n, reterr);
}

int kfk_consumer_lag_of(const char *bootstrap, const char *const *groups, size_t n_groups,
                        const char *const *topics, size_t n_topics, uint64_t timeout_usec,
                        struct kfk_group_lag **ret_groups, size_t *ret_n, struct err *reterr)
{
    return lag_run(bootstrap, false, groups, n_groups, topics, n_topics, timeout_usec, ret_groups,
                   ret_n, reterr);
}
