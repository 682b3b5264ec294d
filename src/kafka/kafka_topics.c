/* SPDX-License-Identifier: MIT */
/* kafka_topics.c - topics as code: one metadata request, then at most one CreateTopics, one
 * DescribeConfigs, one AlterConfigs and one CreatePartitions request, each for every topic
 * that needs it, in two rounds of concurrent requests (create + describe, then alter + add
 * partitions), all within the call's deadline.  librdkafka sends all four to the
 * controller (under KRaft: the broker the metadata named, which forwards them).
 *
 * AlterConfigs replaces a topic's whole dynamic config, which is what a spec that lists the
 * whole config wants (a key dropped from the file reverts to the broker's default); the
 * comparison beforehand (DescribeConfigs, entries whose source is DYNAMIC_TOPIC_CONFIG) keeps
 * a second apply from sending anything.  IncrementalAlterConfigs (librdkafka >= 2.2.0) would
 * give the same result with a SET per listed key and a DELETE per dropped one; Kafka 4.4 still
 * serves AlterConfigs, and integration.kafka_adapter changes and drops keys through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/err.h"
#include "kafka.h"
#include "kafka_int.h"

/* Kafka's limit on topic names. */
#define KFK_TOPIC_NAME_MAX 249

struct apply_item {
    const struct kfk_topic_spec *spec;
    struct kfk_topic_result *res;
    bool exists;
    bool failed;
    bool want_alter;
    char diff[256]; /* the config differences found by DescribeConfigs */
};

static const char *const topic_status_names[_KFK_TOPIC_STATUS_MAX] = {
    [KFK_TOPIC_UNCHANGED] = "unchanged",
    [KFK_TOPIC_CREATED] = "created",
    [KFK_TOPIC_UPDATED] = "updated",
    [KFK_TOPIC_ERROR] = "error",
};

const char *kfk_topic_status_to_string(enum kfk_topic_status s)
{
    if ((unsigned)s >= _KFK_TOPIC_STATUS_MAX)
        return NULL;
    return topic_status_names[s];
}

struct kfk_topic_result *kfk_topic_results_free(struct kfk_topic_result *results, size_t n)
{
    if (!results)
        return NULL;
    for (size_t i = 0; i < n; i++)
        free(results[i].name);
    free(results);
    return NULL;
}

static int validate_specs(const struct kfk_topic_spec *specs, size_t n, struct err *reterr)
{
    char field[64];

    for (size_t i = 0; i < n; i++) {
        const struct kfk_topic_spec *s = &specs[i];
        int r = 0;

        (void)snprintf(field, sizeof field, "topics[%zu].name", i);
        if (!s->name || !s->name[0] || strlen(s->name) > KFK_TOPIC_NAME_MAX)
            r = err_set(reterr, -EINVAL, 0, 0, "topic %zu: a name of 1 to %d characters", i,
                        KFK_TOPIC_NAME_MAX);
        for (size_t j = 0; r == 0 && j < i; j++)
            if (strcmp(specs[j].name, s->name) == 0)
                r = err_set(reterr, -EINVAL, 0, 0, "topic '%s' is listed twice", s->name);
        if (r == 0 && s->partitions < 1) {
            (void)snprintf(field, sizeof field, "topics[%zu].partitions", i);
            r = err_set(reterr, -EINVAL, 0, 0, "topic '%s': partitions must be >= 1", s->name);
        }
        if (r == 0 && s->replication_factor < 1) {
            (void)snprintf(field, sizeof field, "topics[%zu].replication_factor", i);
            r = err_set(reterr, -EINVAL, 0, 0, "topic '%s': replication factor must be >= 1",
                        s->name);
        }
        for (int32_t p = 0; r == 0 && s->replicas && p < s->partitions; p++) {
            const int32_t *rs = &s->replicas[(size_t)p * (size_t)s->replication_factor];

            (void)snprintf(field, sizeof field, "topics[%zu].replicas[%d]", i, (int)p);
            for (int k = 0; r == 0 && k < s->replication_factor; k++) {
                bool twice = false;

                for (int m = 0; m < k; m++)
                    twice = twice || rs[m] == rs[k];
                if (rs[k] < 0 || twice)
                    r = err_set(reterr, -EINVAL, 0, 0,
                                "topic '%s': partition %d needs %d distinct broker ids >= 0",
                                s->name, (int)p, (int)s->replication_factor);
            }
        }
        for (size_t k = 0; r == 0 && k < s->n_configs; k++) {
            const struct kfk_config_kv *kv = &s->configs[k];
            (void)snprintf(field, sizeof field, "topics[%zu].configs[%zu]", i, k);
            if (!kv->key || !kv->key[0] || !kv->value)
                r = err_set(reterr, -EINVAL, 0, 0, "topic '%s': config %zu needs a key and a value",
                            s->name, k);
            for (size_t m = 0; r == 0 && m < k; m++)
                if (strcmp(s->configs[m].key, kv->key) == 0)
                    r = err_set(reterr, -EINVAL, 0, 0, "topic '%s': config '%s' is listed twice",
                                s->name, kv->key);
        }
        if (r < 0) {
            err_set_field(reterr, field);
            return r;
        }
    }
    return 0;
}

static struct apply_item *item_find(struct apply_item *items, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (name && strcmp(items[i].spec->name, name) == 0)
            return &items[i];
    return NULL;
}

static void item_fail(struct apply_item *it, int r, const char *what, const char *msg)
{
    if (it->failed)
        return;
    it->failed = true;
    it->res->error = r;
    (void)snprintf(it->res->message, sizeof it->res->message, "%s%s%s", what ? what : "",
                   what ? ": " : "", msg);
}

/* A request that failed as a whole fails every topic that was in it. */
static void items_fail(struct apply_item **sel, size_t n, int r, const struct err *e)
{
    for (size_t i = 0; i < n; i++)
        item_fail(sel[i], r, NULL, e->msg); /* e->msg names the request */
}

/* Per-topic results of CreateTopics / CreatePartitions. */
static void take_topic_results(struct apply_item *items, size_t n,
                               const rd_kafka_topic_result_t **tr, size_t cnt, const char *what,
                               void (*ok)(struct apply_item *it))
{
    for (size_t i = 0; i < cnt; i++) {
        struct apply_item *it = item_find(items, n, rd_kafka_topic_result_name(tr[i]));
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        const char *m = rd_kafka_topic_result_error_string(tr[i]);

        if (!it)
            continue;
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            item_fail(it, kfk__errno(e), what, m && m[0] ? m : rd_kafka_err2str(e));
        else
            ok(it);
    }
}

static void created_ok(struct apply_item *it)
{
    it->res->status = KFK_TOPIC_CREATED;
    it->res->partitions = it->spec->partitions;
    it->res->replication_factor = it->spec->replication_factor;
}

static void partitions_ok(struct apply_item *it)
{
    it->res->partitions_added = (unsigned)(it->spec->partitions - it->res->partitions);
    it->res->partitions = it->spec->partitions;
}

/* One admin request in flight: its own queue, and the topics in it. */
struct request {
    const char *what;
    rd_kafka_queue_t *q;     /* NULL when nothing was sent */
    struct apply_item **sel; /* owned array; the items are borrowed */
    size_t k;
};

static void request_release(struct request *rq)
{
    if (rq->q)
        rd_kafka_queue_destroy(rq->q);
    free(rq->sel);
    *rq = (struct request){ 0 };
}

/* Starts rq: its queue and options (librdkafka copies the options and every request object,
 * so the caller destroys its own right after the call).  NULL and the topics failed on OOM. */
static rd_kafka_AdminOptions_t *request_begin(struct kfk_client *c, struct request *rq,
                                              rd_kafka_admin_op_t op, bool op_timeout)
{
    rd_kafka_AdminOptions_t *o = kfk__admin_options(c, op, op_timeout);
    struct err e = ERR_INIT;

    rq->q = rd_kafka_queue_new(c->rk);
    if (o && rq->q)
        return o;
    if (o)
        rd_kafka_AdminOptions_destroy(o);
    items_fail(rq->sel, rq->k, err_set(&e, -ENOMEM, 0, 0, "out of memory"), &e);
    return NULL;
}

/* The request's result event, or NULL when it failed as a whole (its topics then failed). */
static rd_kafka_event_t *request_wait(struct kfk_client *c, struct request *rq)
{
    rd_kafka_event_t *ev = NULL;
    struct err e = ERR_INIT;
    int r;

    if (!rq->q)
        return NULL;
    r = kfk__admin_wait(c, rq->q, rq->what, &ev, &e);
    if (r < 0) {
        items_fail(rq->sel, rq->k, r, &e);
        return NULL;
    }
    return ev;
}

/* The spec's explicit placement, partition by partition (librdkafka wants them in order and
 * takes the ids by non-const pointer). */
static bool set_replicas(rd_kafka_NewTopic_t *nt, const struct kfk_topic_spec *s, char *errstr,
                         size_t size)
{
    size_t rf = (size_t)s->replication_factor;
    int32_t *ids = s->replicas ? calloc(rf, sizeof *ids) : NULL;
    bool ok = !s->replicas || ids;

    if (!ok)
        (void)snprintf(errstr, size, "out of memory");
    for (int32_t p = 0; ok && s->replicas && p < s->partitions; p++) {
        memcpy(ids, &s->replicas[(size_t)p * rf], rf * sizeof *ids);
        ok = rd_kafka_NewTopic_set_replica_assignment(nt, p, ids, rf, errstr, size) ==
             RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    free(ids);
    return ok;
}

static void send_create(struct kfk_client *c, struct apply_item *items, size_t n,
                        struct request *rq)
{
    rd_kafka_NewTopic_t **nts = calloc(n, sizeof *nts);
    rd_kafka_AdminOptions_t *o;
    char errstr[256];

    rq->what = "CreateTopics";
    for (size_t i = 0; i < n; i++) {
        struct apply_item *it = &items[i];
        if (it->exists || it->failed)
            continue;
        if (!nts) {
            item_fail(it, -ENOMEM, rq->what, "out of memory");
            continue;
        }
        /* an explicit placement goes with replication factor -1 */
        nts[rq->k] = rd_kafka_NewTopic_new(it->spec->name, it->spec->partitions,
                                           it->spec->replicas ? -1 : it->spec->replication_factor,
                                           errstr, sizeof errstr);
        if (!nts[rq->k] || !set_replicas(nts[rq->k], it->spec, errstr, sizeof errstr)) {
            item_fail(it, -EINVAL, rq->what, errstr);
            if (nts[rq->k])
                rd_kafka_NewTopic_destroy(nts[rq->k]);
            nts[rq->k] = NULL;
            continue;
        }
        for (size_t j = 0; j < it->spec->n_configs; j++)
            (void)rd_kafka_NewTopic_set_config(nts[rq->k], it->spec->configs[j].key,
                                               it->spec->configs[j].value);
        rq->sel[rq->k++] = it;
    }
    /* The operation timeout makes the controller answer once the topics exist, so that the
     * next metadata request (a second apply) sees them. */
    if (rq->k > 0 && (o = request_begin(c, rq, RD_KAFKA_ADMIN_OP_CREATETOPICS, true))) {
        rd_kafka_CreateTopics(c->rk, nts, rq->k, o, rq->q);
        rd_kafka_AdminOptions_destroy(o);
    }
    if (nts)
        rd_kafka_NewTopic_destroy_array(nts, rq->k);
    free(nts);
}

static void collect_create(struct kfk_client *c, struct apply_item *items, size_t n,
                           struct request *rq)
{
    rd_kafka_event_t *ev = request_wait(c, rq);
    const rd_kafka_topic_result_t **tr;
    size_t cnt;

    if (!ev)
        return;
    tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    take_topic_results(items, n, tr, cnt, rq->what, created_ok);
    rd_kafka_event_destroy(ev);
}

static const rd_kafka_ConfigEntry_t *entry_find(const rd_kafka_ConfigEntry_t **es, size_t n,
                                                const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(es[i]), key) == 0)
            return es[i];
    return NULL;
}

static bool entry_dynamic(const rd_kafka_ConfigEntry_t *e)
{
    return e && rd_kafka_ConfigEntry_source(e) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG;
}

/* Compares the topic's dynamic config with the spec's; records the differences. */
static void compare_configs(struct apply_item *it, const rd_kafka_ConfigEntry_t **es, size_t n)
{
    const struct kfk_topic_spec *s = it->spec;

    for (size_t i = 0; i < s->n_configs; i++) {
        const rd_kafka_ConfigEntry_t *e = entry_find(es, n, s->configs[i].key);
        const char *cur = e ? rd_kafka_ConfigEntry_value(e) : NULL;

        if (entry_dynamic(e) && cur && strcmp(cur, s->configs[i].value) == 0)
            continue;
        it->want_alter = true;
        kfk__appendf(it->diff, sizeof it->diff, "%s%s %s%s -> %s", it->diff[0] ? ", " : "",
                     s->configs[i].key, entry_dynamic(e) ? "" : "default ", cur ? cur : "(none)",
                     s->configs[i].value);
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = rd_kafka_ConfigEntry_name(es[i]);
        bool listed = false;

        if (!entry_dynamic(es[i]))
            continue;
        for (size_t j = 0; j < s->n_configs && !listed; j++)
            listed = strcmp(s->configs[j].key, key) == 0;
        if (listed)
            continue;
        it->want_alter = true;
        kfk__appendf(it->diff, sizeof it->diff, "%s%s %s -> default", it->diff[0] ? ", " : "", key,
                     rd_kafka_ConfigEntry_value(es[i]) ? rd_kafka_ConfigEntry_value(es[i])
                                                       : "(sensitive)");
    }
}

/* DescribeConfigs (replace = false) or AlterConfigs (replace = true) for the topics that
 * exist (and, to replace, differ from their spec). */
static void send_configs(struct kfk_client *c, struct apply_item *items, size_t n,
                         struct request *rq, bool replace)
{
    rd_kafka_ConfigResource_t **crs = calloc(n, sizeof *crs);
    rd_kafka_AdminOptions_t *o;

    rq->what = replace ? "AlterConfigs" : "DescribeConfigs";
    for (size_t i = 0; i < n; i++) {
        struct apply_item *it = &items[i];
        if (!it->exists || it->failed || (replace && !it->want_alter))
            continue;
        if (!crs ||
            !(crs[rq->k] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, it->spec->name))) {
            item_fail(it, -ENOMEM, rq->what, "out of memory");
            continue;
        }
        for (size_t j = 0; replace && j < it->spec->n_configs; j++)
            (void)rd_kafka_ConfigResource_set_config(crs[rq->k], it->spec->configs[j].key,
                                                     it->spec->configs[j].value);
        rq->sel[rq->k++] = it;
    }
    if (rq->k > 0 && (o = request_begin(c, rq,
                                        replace ? RD_KAFKA_ADMIN_OP_ALTERCONFIGS
                                                : RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                                        false))) {
        if (replace)
            rd_kafka_AlterConfigs(c->rk, crs, rq->k, o, rq->q);
        else
            rd_kafka_DescribeConfigs(c->rk, crs, rq->k, o, rq->q);
        rd_kafka_AdminOptions_destroy(o);
    }
    if (crs)
        rd_kafka_ConfigResource_destroy_array(crs, rq->k);
    free(crs);
}

static void collect_configs(struct kfk_client *c, struct apply_item *items, size_t n,
                            struct request *rq, bool replace)
{
    rd_kafka_event_t *ev = request_wait(c, rq);
    const rd_kafka_ConfigResource_t **rs;
    size_t cnt;

    if (!ev)
        return;
    if (replace)
        rs = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
    else
        rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                       &cnt);
    for (size_t i = 0; i < cnt; i++) {
        struct apply_item *it = item_find(items, n, rd_kafka_ConfigResource_name(rs[i]));
        rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(rs[i]);
        const char *m = rd_kafka_ConfigResource_error_string(rs[i]);
        const rd_kafka_ConfigEntry_t **es;
        size_t ne;

        if (!it)
            continue;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            item_fail(it, kfk__errno(err), rq->what, m && m[0] ? m : rd_kafka_err2str(err));
        } else if (replace) {
            it->res->configs_replaced = true;
        } else {
            es = rd_kafka_ConfigResource_configs(rs[i], &ne);
            compare_configs(it, es, ne);
        }
    }
    rd_kafka_event_destroy(ev);
}

static void send_partitions(struct kfk_client *c, struct apply_item *items, size_t n,
                            struct request *rq)
{
    rd_kafka_NewPartitions_t **nps = calloc(n, sizeof *nps);
    rd_kafka_AdminOptions_t *o;
    char errstr[256];

    rq->what = "CreatePartitions";
    for (size_t i = 0; i < n; i++) {
        struct apply_item *it = &items[i];
        if (!it->exists || it->failed || it->res->partitions >= it->spec->partitions)
            continue;
        if (!nps) {
            item_fail(it, -ENOMEM, rq->what, "out of memory");
            continue;
        }
        nps[rq->k] = rd_kafka_NewPartitions_new(it->spec->name, (size_t)it->spec->partitions,
                                                errstr, sizeof errstr);
        if (!nps[rq->k]) {
            item_fail(it, -EINVAL, rq->what, errstr);
            continue;
        }
        rq->sel[rq->k++] = it;
    }
    if (rq->k > 0 && (o = request_begin(c, rq, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, true))) {
        rd_kafka_CreatePartitions(c->rk, nps, rq->k, o, rq->q);
        rd_kafka_AdminOptions_destroy(o);
    }
    if (nps)
        rd_kafka_NewPartitions_destroy_array(nps, rq->k);
    free(nps);
}

static void collect_partitions(struct kfk_client *c, struct apply_item *items, size_t n,
                               struct request *rq)
{
    rd_kafka_event_t *ev = request_wait(c, rq);
    const rd_kafka_topic_result_t **tr;
    size_t cnt;

    if (!ev)
        return;
    tr = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &cnt);
    take_topic_results(items, n, tr, cnt, rq->what, partitions_ok);
    rd_kafka_event_destroy(ev);
}

/* What the topic's row says once every request is done. */
static void item_finish(struct apply_item *it)
{
    struct kfk_topic_result *res = it->res;
    char notes[256] = "";

    if (res->rf_differs)
        kfk__appendf(notes, sizeof notes,
                     "; replication factor %d differs from the spec's %d "
                     "(not changed)",
                     (int)res->replication_factor, (int)it->spec->replication_factor);
    if (res->partitions_exceed)
        kfk__appendf(notes, sizeof notes,
                     "; %d partitions, more than the spec's %d (partitions "
                     "cannot be removed)",
                     (int)res->partitions, (int)it->spec->partitions);
    if (it->failed) {
        res->status = KFK_TOPIC_ERROR;
        kfk__appendf(res->message, sizeof res->message, "%s", notes);
        return;
    }
    if (res->status == KFK_TOPIC_CREATED) {
        (void)snprintf(res->message, sizeof res->message,
                       "created with %d partitions, replication factor %d, %zu config%s",
                       (int)res->partitions, (int)res->replication_factor, it->spec->n_configs,
                       it->spec->n_configs == 1 ? "" : "s");
        return;
    }
    if (res->configs_replaced)
        kfk__appendf(res->message, sizeof res->message, "configs replaced (%s)", it->diff);
    if (res->partitions_added)
        kfk__appendf(res->message, sizeof res->message, "%spartitions %d -> %d",
                     res->message[0] ? "; " : "", (int)(res->partitions - res->partitions_added),
                     (int)res->partitions);
    res->status = res->configs_replaced || res->partitions_added ? KFK_TOPIC_UPDATED
                                                                 : KFK_TOPIC_UNCHANGED;
    /* The notes start with "; ": drop it when they are all there is. */
    kfk__appendf(res->message, sizeof res->message, "%s",
                 res->message[0] || !notes[0] ? notes : notes + 2);
}

/* Fills exists / partitions / replication factor from the metadata answer. */
static void items_from_metadata(struct apply_item *items, size_t n,
                                const struct rd_kafka_metadata *md)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        struct apply_item *it = item_find(items, n, t->topic);
        int rf = 0;

        if (!it || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        it->exists = true;
        for (int j = 0; j < t->partition_cnt; j++)
            if (t->partitions[j].replica_cnt > rf)
                rf = t->partitions[j].replica_cnt;
        it->res->partitions = t->partition_cnt;
        it->res->replication_factor = rf;
        it->res->rf_differs = rf != it->spec->replication_factor;
        it->res->partitions_exceed = t->partition_cnt > it->spec->partitions;
    }
}

int kfk_topics_apply(const char *bootstrap, const struct kfk_topic_spec *specs, size_t n,
                     uint64_t timeout_usec, struct kfk_topic_result **ret_results,
                     struct err *reterr)
{
    struct kfk_client c = { 0 };
    const struct rd_kafka_metadata *md = NULL;
    struct kfk_topic_result *results = NULL;
    struct apply_item *items = NULL;
    struct request rq[4] = { { 0 } }; /* create, describe, alter, partitions */
    int r, failed = 0;

    if (n > 0 && !specs)
        return err_set(reterr, -EINVAL, 0, 0, "no topic specs");
    r = validate_specs(specs, n, reterr);
    if (r < 0)
        return r;
    results = calloc(n ? n : 1, sizeof *results);
    items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < ARRAY_SIZE(rq); i++)
        rq[i].sel = calloc(n ? n : 1, sizeof *rq[i].sel);
    if (!results || !items || !rq[0].sel || !rq[1].sel || !rq[2].sel || !rq[3].sel) {
        r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        results[i] = (struct kfk_topic_result){ .partitions = -1, .replication_factor = -1 };
        results[i].name = strdup(specs[i].name);
        if (!results[i].name) {
            r = err_set(reterr, -ENOMEM, 0, 0, "out of memory");
            goto out;
        }
        items[i] = (struct apply_item){ .spec = &specs[i], .res = &results[i] };
    }

    r = kfk__client_open(&c, bootstrap, timeout_usec, reterr);
    if (r < 0)
        goto out;
    r = kfk__metadata(&c, &md, reterr);
    if (r < 0)
        goto out;
    items_from_metadata(items, n, md);
    /* Two rounds of requests that do not depend on each other, each round in flight at once:
     * creation and the comparison, then the changes the comparison asks for. */
    send_create(&c, items, n, &rq[0]);
    send_configs(&c, items, n, &rq[1], false);
    collect_create(&c, items, n, &rq[0]);
    collect_configs(&c, items, n, &rq[1], false);
    send_configs(&c, items, n, &rq[2], true);
    send_partitions(&c, items, n, &rq[3]);
    collect_configs(&c, items, n, &rq[2], true);
    collect_partitions(&c, items, n, &rq[3]);
    for (size_t i = 0; i < n; i++) {
        item_finish(&items[i]);
        failed += items[i].failed;
    }
    *ret_results = results;
    results = NULL;
    r = failed;
out:
    for (size_t i = 0; i < ARRAY_SIZE(rq); i++)
        request_release(&rq[i]);
    if (md)
        rd_kafka_metadata_destroy(md);
    kfk__client_close(&c);
    (void)kfk_topic_results_free(results, n);
    free(items);
    return r;
}
