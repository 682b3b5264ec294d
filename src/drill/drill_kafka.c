/* SPDX-License-Identifier: MIT */
/* drill_kafka.c - one Kafka broker failover drill.  A producer thread (acks=all, idempotence)
 * sends one message every interval to one partition of the drill topic (0, or the one the
 * active controller leads); its delivery report is the acknowledgement (an error whose message
 * status is "possibly persisted" is unknown, not failed).  The leader broker of that partition
 * is faulted; healed means every broker is back
 * and the partition's in-sync replicas are all its replicas again.  A consumer then reads the
 * partition from the offset the run started at, and the ids it finds decide lost / recovered /
 * duplicates. */
#include "drill_kafka.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"
#include "kafka/kafka.h"

#define POLL_USEC  (200 * USEC_PER_MSEC)
#define MD_USEC    (1 * USEC_PER_SEC)
#define READY_USEC (90 * USEC_PER_SEC)
#define READ_USEC  (30 * USEC_PER_SEC)

/* The producer's client settings: docs/drills.md says why each one is what it is. */
static const char *const producer_conf[][2] = {
    { "acks", "all" },
    { "enable.idempotence", "true" },
    { "linger.ms", "0" },
    /* librdkafka 2.0.2 (Debian 12) turned a leader change with several requests in flight into
     * a fatal "out of order sequence number" (fixed in 2.3.0, confluentinc/librdkafka#4438):
     * one request in flight kept it to the single possibly-persisted message.  Kept with
     * 2.12.1 so that every series measures the same producer. */
    { "max.in.flight.requests.per.connection", "1" },
    { "message.timeout.ms", "30000" }, /* retried until then: no acked write given up */
    { "request.timeout.ms", "5000" },  /* the brokers' wait for acks=all; default 30000 */
    { "socket.timeout.ms", "3000" },   /* default 60000: a request to a frozen leader given up */
    { "retry.backoff.ms", "50" },      /* default 100 */
    { "reconnect.backoff.ms", "50" },  /* default 100 */
    { "reconnect.backoff.max.ms", "1000" }, /* default 10000: a restarted broker found within 1 s */
    /* after "not leader" (the new leader's broker had not yet taken the partition): ask again
     * after 50 ms, not 100 */
    { "topic.metadata.refresh.fast.interval.ms", "50" },
    /* While the leader's broker is down librdkafka re-asks for the partition's leader only once
     * a second (its fixed topic scan), and the answer names the dead broker until the
     * controller fences it: the producer saw the new leader up to 1 s late.  A refresh every
     * 250 ms bounds that (default 300000). */
    { "topic.metadata.refresh.interval.ms", "250" },
};

static const char *const fault_names[_DRILL_KAFKA_FAULT_MAX] = {
    [DRILL_KAFKA_CRASH] = "crash",
    [DRILL_KAFKA_PAUSE] = "pause",
    [DRILL_KAFKA_PARTITION] = "partition",
};

DRILL_NAME_TABLE(drill_kafka_fault, drill_kafka_fault, fault_names, _DRILL_KAFKA_FAULT_MAX)

static const char *const victim_names[_DRILL_KAFKA_VICTIM_MAX] = {
    [DRILL_KAFKA_VICTIM_LEADER] = "leader",
    [DRILL_KAFKA_VICTIM_CONTROLLER] = "controller",
};

DRILL_NAME_TABLE(drill_kafka_victim, drill_kafka_victim, victim_names, _DRILL_KAFKA_VICTIM_MAX)

/* librdkafka's own lines ("Connect to ... failed: Connection refused") are what the drill
 * provokes; the outcome of every message is in the record instead. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    if (getenv("INFRACTL_DRILL_KAFKA_DEBUG")) /* librdkafka's "debug" contexts, for diagnosis */
        fprintf(stderr, "%llu librdkafka %s: %s\n", (unsigned long long)now_usec() / 1000, fac,
                buf);
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char msg[256];

    if (rd_kafka_conf_set(conf, k, v, msg, sizeof msg) != RD_KAFKA_CONF_OK)
        BUG("librdkafka rejects a fixed client setting");
}

/* ===== The partition as the cluster sees it ===== */

struct part_view {
    int32_t leader; /* -1 = none */
    size_t n_replicas, n_isr;
    bool brokers_all; /* every broker of the target is listed (registered, not fenced) */
    bool topic_whole; /* every partition of the topic has a leader and all replicas in sync */
};

/* The partition as one metadata answer shows it: 0, or -ENOENT when the answer lacks it. */
static int part_view_in(const struct kfk_metadata *md, const struct drill_kafka_target *t,
                        int32_t partition, struct part_view *ret)
{
    int r = -ENOENT;

    *ret = (struct part_view){ .leader = -1 };
    for (size_t i = 0; i < md->n_topics; i++) {
        const struct kfk_topic *tp = &md->topics[i];

        if (!streq(tp->name, t->topic) || tp->n_partitions == 0)
            continue;
        ret->topic_whole = true;
        for (size_t k = 0; k < tp->n_partitions; k++)
            ret->topic_whole = ret->topic_whole && tp->partitions[k].leader >= 0 &&
                               tp->partitions[k].n_isr == tp->partitions[k].n_replicas;
        for (size_t k = 0; k < tp->n_partitions; k++)
            if (tp->partitions[k].id == partition) {
                ret->leader = tp->partitions[k].leader;
                ret->n_replicas = tp->partitions[k].n_replicas;
                ret->n_isr = tp->partitions[k].n_isr;
                r = 0;
            }
    }
    ret->brokers_all = true;
    for (size_t i = 0; i < t->n_brokers; i++) {
        bool found = false;

        for (size_t k = 0; k < md->n_brokers && !found; k++)
            found = md->brokers[k].port == t->brokers[i].port;
        ret->brokers_all = ret->brokers_all && found;
    }
    return r;
}

static bool view_whole(const struct part_view *v)
{
    return v->leader >= 0 && v->n_replicas >= 2 && v->n_isr == v->n_replicas && v->brokers_all;
}

/* The target broker with Kafka id `id` (its port as the answer lists it), or NULL. */
static const struct drill_kafka_broker *broker_in(const struct kfk_metadata *md,
                                                  const struct drill_kafka_target *t, int32_t id)
{
    const struct drill_kafka_broker *ret = NULL;
    const struct kfk_broker *b = kfk_metadata_broker(md, id);

    for (size_t i = 0; b && i < t->n_brokers; i++)
        if (t->brokers[i].port == b->port)
            ret = &t->brokers[i];
    return ret;
}

/* The lowest partition of the drill topic that the service `name` leads in the answer; -1 when
 * it leads none (or is unknown). */
static int32_t partition_led_in(const struct kfk_metadata *md, const struct drill_kafka_target *t,
                                const char *name)
{
    const struct drill_kafka_broker *b = NULL;
    int32_t id = -1, ret = -1;

    for (size_t i = 0; i < t->n_brokers; i++)
        if (streq(t->brokers[i].name, name))
            b = &t->brokers[i];
    if (!b)
        return -1;
    for (size_t i = 0; i < md->n_brokers; i++)
        if (md->brokers[i].port == b->port)
            id = md->brokers[i].id;
    for (size_t i = 0; id >= 0 && i < md->n_topics; i++) {
        const struct kfk_topic *tp = &md->topics[i];

        for (size_t k = 0; streq(tp->name, t->topic) && k < tp->n_partitions; k++)
            if (tp->partitions[k].leader == id && (ret < 0 || tp->partitions[k].id < ret))
                ret = tp->partitions[k].id;
    }
    return ret;
}

/* ===== The producer ===== */

struct kfk_op {
    uint64_t invoke_usec, done_usec;
    enum drill_op_result result;
};

struct producer {
    const struct drill_kafka_options *o;
    rd_kafka_t *rk;
    char run[64], topic[256], *bootstrap;
    int32_t partition;
    atomic_uint restarts; /* producers replaced after a fatal error */
    pthread_t thread;
    atomic_bool stop;
    atomic_uint acked;
    struct kfk_op *ops; /* ops[id - 1]; only the producer thread touches it until joined */
    size_t n, cap;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *p = opaque;
    size_t id = (size_t)(uintptr_t)m->_private;
    struct kfk_op *op;

    (void)rk;
    if (id == 0 || id > p->n)
        return;
    op = &p->ops[id - 1];
    op->done_usec = now_usec();
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        op->result = DRILL_OP_OK;
        atomic_fetch_add(&p->acked, 1);
    } else {
        op->result = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                             ? DRILL_OP_FAIL
                             : DRILL_OP_UNKNOWN;
    }
}

static rd_kafka_t *producer_client(struct producer *p, char *msg, size_t msg_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    conf_set(conf, "bootstrap.servers", p->bootstrap);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    if (getenv("INFRACTL_DRILL_KAFKA_DEBUG"))
        conf_set(conf, "debug", getenv("INFRACTL_DRILL_KAFKA_DEBUG"));
    for (size_t i = 0; i < ARRAY_SIZE(producer_conf); i++)
        conf_set(conf, producer_conf[i][0], producer_conf[i][1]);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, msg_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* Purges what the client still holds (delivery reports say what may have been sent), and
 * marks whatever got no report unknown. */
static void producer_drain(struct producer *p, int flush_ms)
{
    if (flush_ms)
        (void)rd_kafka_flush(p->rk, flush_ms);
    (void)rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    (void)rd_kafka_poll(p->rk, 100);
    for (size_t i = 0; i < p->n; i++)
        if (p->ops[i].result == DRILL_OP_PENDING) {
            p->ops[i].result = DRILL_OP_UNKNOWN;
            p->ops[i].done_usec = now_usec();
        }
}

static void *producer_main(void *userdata)
{
    struct producer *p = userdata;
    uint64_t next = now_usec();

    while (!atomic_load(&p->stop)) {
        if (rd_kafka_fatal_error(p->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* what an application must do then: a new producer (a new producer id) */
            char msg[256];
            rd_kafka_t *rk = producer_client(p, msg, sizeof msg);

            if (rk) {
                producer_drain(p, 0);
                rd_kafka_destroy(p->rk);
                p->rk = rk;
                atomic_fetch_add(&p->restarts, 1);
            }
        }
        char value[96];
        uint64_t now = now_usec();
        size_t id;

        /* rd_kafka_poll() returns as soon as it served a delivery report: wait out the rest */
        while (next > now) {
            (void)rd_kafka_poll(p->rk, (int)((next - now + 999) / 1000));
            now = now_usec();
        }
        next += p->o->interval_usec;
        if (next < now_usec())
            next = now_usec() + p->o->interval_usec;
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 4096;
            p->ops = xrealloc(p->ops, p->cap * sizeof *p->ops);
        }
        id = ++p->n;
        p->ops[id - 1] = (struct kfk_op){ .invoke_usec = now_usec(), .result = DRILL_OP_PENDING };
        (void)snprintf(value, sizeof value, "%s:%zu", p->run, id);
        /* the array form: RD_KAFKA_V_*() are GNU statement expressions */
        const rd_kafka_vu_t vu[] = {
            { .vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = p->topic },
            { .vtype = RD_KAFKA_VTYPE_PARTITION, .u.i32 = p->partition },
            { .vtype = RD_KAFKA_VTYPE_KEY, .u.mem = { p->run, strlen(p->run) } },
            { .vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = { value, strlen(value) } },
            { .vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY },
            { .vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = (void *)(uintptr_t)id },
        };
        rd_kafka_error_t *e = rd_kafka_produceva(p->rk, vu, ARRAY_SIZE(vu));

        if (e) { /* not queued (queue full): never sent */
            rd_kafka_error_destroy(e);
            p->ops[id - 1].result = DRILL_OP_FAIL;
            p->ops[id - 1].done_usec = now_usec();
        }
        (void)rd_kafka_poll(p->rk, 0);
    }
    /* Stop: what is still queued or in flight gets its delivery report (purged: unknown when
     * it may have been sent). */
    producer_drain(p, 2000);
    return NULL;
}

static struct producer *producer_start(const struct drill_kafka_target *t, int32_t partition,
                                       const struct drill_kafka_options *o, const char *run,
                                       char *msg, size_t msg_size)
{
    struct producer *p = xcalloc(1, sizeof *p);

    p->o = o;
    p->partition = partition;
    (void)snprintf(p->run, sizeof p->run, "%s", run);
    (void)snprintf(p->topic, sizeof p->topic, "%s", t->topic);
    p->bootstrap = xstrdup(t->bootstrap);
    atomic_init(&p->stop, false);
    atomic_init(&p->acked, 0);
    atomic_init(&p->restarts, 0);
    p->rk = producer_client(p, msg, msg_size);
    if (!p->rk) {
        free(p->bootstrap);
        free(p);
        return NULL;
    }
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0) {
        rd_kafka_destroy(p->rk);
        (void)snprintf(msg, msg_size, "cannot start the producer thread");
        free(p->bootstrap);
        free(p);
        return NULL;
    }
    return p;
}

/* Stops the thread (which drains the producer); returns the operations, ops[i] for id i + 1
 * (caller frees), and frees p. */
static size_t producer_finish(struct producer *p, struct kfk_op **ret_ops, unsigned *ret_restarts)
{
    size_t n;

    atomic_store(&p->stop, true);
    (void)pthread_join(p->thread, NULL);
    rd_kafka_destroy(p->rk);
    n = p->n;
    *ret_ops = p->ops;
    *ret_restarts = atomic_load(&p->restarts);
    free(p->bootstrap);
    free(p);
    return n;
}

/* ===== The final read ===== */

static rd_kafka_t *consumer_new(const struct drill_kafka_target *t, char *msg, size_t msg_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    conf_set(conf, "bootstrap.servers", t->bootstrap);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    conf_set(conf, "group.id", "infractl-drill");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.partition.eof", "true");
    conf_set(conf, "auto.offset.reset", "earliest");
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, msg_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* The partition's end offset (its high watermark); -errno when it cannot be read. */
static int64_t end_offset(const struct drill_kafka_target *t, int32_t partition, char *msg,
                          size_t msg_size)
{
    rd_kafka_t *rk = consumer_new(t, msg, msg_size);
    uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;
    int64_t lo, hi;
    rd_kafka_resp_err_t e;

    if (!rk)
        return -EIO;
    /* retried: right after a leader change the client's metadata may name the old leader */
    while ((e = rd_kafka_query_watermark_offsets(rk, t->topic, partition, &lo, &hi, 2000)) !=
                   RD_KAFKA_RESP_ERR_NO_ERROR &&
           now_usec() < deadline)
        sleep_usec(POLL_USEC);
    rd_kafka_destroy(rk);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void)snprintf(msg, msg_size, "%s", rd_kafka_err2str(e));
        return -EIO;
    }
    return hi;
}

/* Reads the partition from offset `from` to its end; counts[id] = how often "run:id" occurs. */
static int read_counts(const struct drill_kafka_target *t, int32_t partition, const char *run,
                       int64_t from, size_t max_id, unsigned *counts, char *msg, size_t msg_size)
{
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    int64_t end = end_offset(t, partition, msg, msg_size);
    uint64_t deadline = now_usec() + READ_USEC;
    size_t run_len = strlen(run);
    int r = -ETIMEDOUT;

    if (end < 0)
        return -EIO;
    if (end <= from)
        return 0;
    rk = consumer_new(t, msg, msg_size);
    if (!rk)
        return -EIO;
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, t->topic, partition)->offset = from;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void)snprintf(msg, msg_size, "cannot assign %s/%d", t->topic, (int)partition);
        r = -EIO;
        deadline = 0;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    while (now_usec() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        int64_t off;
        bool eof;

        if (!m)
            continue;
        off = m->offset;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->len > run_len &&
            memcmp(m->payload, run, run_len) == 0 && ((const char *)m->payload)[run_len] == ':') {
            char num[24];
            uint64_t id;

            (void)snprintf(num, sizeof num, "%.*s", (int)(m->len - run_len - 1),
                           (const char *)m->payload + run_len + 1);
            if (parse_uint_range(num, 1, max_id, &id) == 0)
                counts[id]++;
        }
        eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF; /* m is gone after the destroy */
        rd_kafka_message_destroy(m);
        if (off >= end - 1 || (eof && off >= end)) {
            r = 0;
            break;
        }
    }
    if (r == -ETIMEDOUT)
        (void)snprintf(msg, msg_size, "the partition was not read to offset %lld in %u s",
                       (long long)end, (unsigned)(READ_USEC / USEC_PER_SEC));
    rd_kafka_destroy(rk);
    return r;
}

/* ===== The drill ===== */

struct run {
    const struct drill_kafka_target *t;
    const struct drill_kafka_options *o;
    struct drill_run *res;
    int32_t partition; /* the one drilled */
    char id[64];
};

static void set_defaults(struct drill_kafka_options *o)
{
    if (!o->interval_usec)
        o->interval_usec = 10 * USEC_PER_MSEC;
    if (!o->before_usec)
        o->before_usec = 3 * USEC_PER_SEC;
    if (!o->pause_usec)
        o->pause_usec = 10 * USEC_PER_SEC;
    if (!o->after_usec)
        o->after_usec = USEC_PER_SEC;
    if (!o->heal_timeout_usec)
        o->heal_timeout_usec = 120 * USEC_PER_SEC;
}

/* The Kafka ids of every target broker, in target order; false when one is not registered. */
static bool broker_ids(const struct drill_kafka_target *t, int32_t *ret)
{
    struct kfk_metadata *md = NULL;
    size_t found = 0;

    if (kfk_metadata_fetch(t->bootstrap, MD_USEC, &md, NULL) < 0)
        return false;
    for (size_t i = 0; i < t->n_brokers; i++)
        for (size_t k = 0; k < md->n_brokers; k++)
            if (md->brokers[k].port == t->brokers[i].port) {
                ret[i] = md->brokers[k].id;
                found++;
                break;
            }
    md = kfk_metadata_release(md);
    return found == t->n_brokers;
}

/* The drill topic, created when missing, with the brokers' defaults otherwise (the
 * min.insync.replicas docs/kafka.md chose).  Leader victim: 1 partition, replication factor 2.
 * Controller victim: one partition per ordered pair of brokers (replicas a, b; a the preferred
 * leader), so that once all are in sync every live broker leads one whatever failovers came
 * before: the controller elected after a kill takes the partitions it shared with the killed
 * broker, and partition 0 of a Kafka-placed topic may have the controller as no replica. */
static int ensure_topic(const struct drill_kafka_target *t, bool every_pair, struct err *reterr)
{
    struct kfk_topic_spec spec = { .name = t->topic, .partitions = 1, .replication_factor = 2 };
    struct kfk_topic_result *res = NULL;
    uint64_t deadline = now_usec() + READY_USEC;
    int32_t ids[DRILL_KAFKA_BROKERS_MAX], *replicas = NULL;
    size_t n = t->n_brokers, k = 0;
    int r;

    while (every_pair && !broker_ids(t, ids)) {
        if (now_usec() >= deadline)
            return err_set(reterr, -ENOENT, 0, 0,
                           "not every broker is registered after %u s: not starting a drill",
                           (unsigned)(READY_USEC / USEC_PER_SEC));
        sleep_usec(POLL_USEC);
    }
    if (every_pair) {
        replicas = xcalloc(n * (n - 1) * 2, sizeof *replicas);
        for (size_t a = 0; a < n; a++)
            for (size_t b = 0; b < n; b++)
                if (a != b) {
                    replicas[k++] = ids[a];
                    replicas[k++] = ids[b];
                }
        spec.partitions = (int32_t)(n * (n - 1));
        spec.replicas = replicas;
    }
    r = kfk_topics_apply(t->bootstrap, &spec, 1, 10 * USEC_PER_SEC, &res, reterr);
    if (r > 0)
        r = err_set(reterr, res[0].error ? res[0].error : -EIO, 0, 0,
                    "cannot create the drill topic %s: %s", t->topic, res[0].message);
    res = kfk_topic_results_free(res, 1);
    free(replicas);
    return r;
}

static void watch(struct run *r, int32_t victim_id, const pid_t *pids, size_t n_pids)
{
    struct drill_run *res = r->res;
    struct kfk_metadata *md = NULL; /* this round's answer */
    bool resumed = r->o->fault != DRILL_KAFKA_PAUSE, degraded = false;
    uint64_t deadline = res->fault_at + r->o->heal_timeout_usec + (resumed ? 0 : r->o->pause_usec);

    for (;;) {
        uint64_t now = now_usec();
        struct part_view v;

        if (!resumed && now >= res->fault_at + r->o->pause_usec) {
            for (size_t i = 0; i < n_pids; i++)
                (void)kill(pids[i], SIGCONT);
            resumed = true;
            res->resume_at = now;
            DRILL_PROGRESS(r, "SIGCONT to %s", res->victim);
        }
        md = kfk_metadata_release(md);
        if (kfk_metadata_fetch(r->t->bootstrap, MD_USEC, &md, NULL) < 0 ||
            part_view_in(md, r->t, r->partition, &v) < 0) {
            degraded = true; /* no answer at all */
        } else {
            if (v.leader >= 0 && v.leader != victim_id && !res->new_leader_usec) {
                const struct drill_kafka_broker *b = broker_in(md, r->t, v.leader);

                res->new_leader_usec = now_usec() - res->fault_at;
                (void)snprintf(res->new_leader, sizeof res->new_leader, "%s", b ? b->name : "?");
                DRILL_PROGRESS(r, "new leader %s (broker %d) after %.2f s", res->new_leader,
                               (int)v.leader, (double)res->new_leader_usec / USEC_PER_SEC);
            }
            /* whole counts only after the fault showed: the broker fenced, a replica out of the
             * ISR, the leader moved (metadata lags the fault by the broker session timeout) */
            degraded = degraded || !view_whole(&v) || v.leader != victim_id;
            if (resumed && degraded && view_whole(&v)) {
                res->healed = true;
                res->heal_at = now_usec();
                res->heal_usec = res->heal_at - res->fault_at;
                DRILL_PROGRESS(r,
                               "healed after %.1f s: every broker registered, %zu of %zu replicas "
                               "in sync",
                               (double)res->heal_usec / USEC_PER_SEC, v.n_isr, v.n_replicas);
                break;
            }
        }
        if (now >= deadline) {
            (void)snprintf(res->note, sizeof res->note, "not healed within %.0f s",
                           (double)(deadline - res->fault_at) / USEC_PER_SEC);
            break;
        }
        sleep_usec(POLL_USEC);
    }
    md = kfk_metadata_release(md);
    if (!resumed)
        for (size_t i = 0; i < n_pids; i++)
            (void)kill(pids[i], SIGCONT);
}

static void tally(struct run *r, const struct kfk_op *ops, size_t n, const unsigned *counts)
{
    struct drill_tally *t = &r->res->tally[0];
    uint64_t *acks = xcalloc(n + 1, sizeof *acks);
    size_t k = 0;
    unsigned phantom = 0;

    for (size_t i = 0; i < n; i++) {
        t->acked += ops[i].result == DRILL_OP_OK;
        t->failed += ops[i].result == DRILL_OP_FAIL;
        t->unknown += ops[i].result == DRILL_OP_UNKNOWN;
        if (ops[i].result == DRILL_OP_OK)
            acks[k++] = ops[i].done_usec;
        if (!counts)
            continue;
        t->lost += ops[i].result == DRILL_OP_OK && counts[i + 1] == 0;
        t->recovered += ops[i].result == DRILL_OP_UNKNOWN && counts[i + 1] > 0;
        t->duplicates += counts[i + 1] > 1;
        phantom += ops[i].result == DRILL_OP_FAIL && counts[i + 1] > 0;
    }
    drill_run_set_acks(r->res, acks, k);
    free(acks);
    if (t->lost || t->duplicates || phantom)
        (void)snprintf(r->res->note, sizeof r->res->note,
                       "%u acknowledged messages missing, %u duplicated, %u reported failed yet "
                       "present",
                       t->lost, t->duplicates, phantom);
}

void drill__kafka_controller(const struct drill_kafka_target *t, char *ret, size_t size)
{
    ret[0] = '\0';
    if (t->controller)
        t->controller(ret, size, t->controller_data);
}

/* Waits until the partition to drill is fully in sync with every broker registered: partition
 * 0, or (victim controller) the one the active controller leads.  Sets r->partition, *ret_view,
 * *ret_victim (its leader) and ctl (the active controller, "" when unknown). */
static int await_partition(struct run *r, struct part_view *ret_view,
                           const struct drill_kafka_broker **ret_victim, char *ctl, size_t ctl_size,
                           struct err *reterr)
{
    const struct drill_kafka_target *t = r->t;
    bool by_ctl = r->o->victim == DRILL_KAFKA_VICTIM_CONTROLLER;
    uint64_t deadline = now_usec() + READY_USEC;

    DRILL_PROGRESS(r, "waiting for %s of %s to be fully in sync with every broker registered",
                   by_ctl ? "every partition (one led by the active controller)" : "partition 0",
                   t->topic);
    for (;;) {
        struct kfk_metadata *md = NULL;
        bool ready;

        drill__kafka_controller(t, ctl, ctl_size);
        *ret_victim = NULL;
        *ret_view = (struct part_view){ .leader = -1 };
        r->partition = by_ctl ? -1 : 0;
        if (kfk_metadata_fetch(t->bootstrap, MD_USEC, &md, NULL) == 0) {
            if (by_ctl && ctl[0])
                r->partition = partition_led_in(md, t, ctl);
            ready = r->partition >= 0 && part_view_in(md, t, r->partition, ret_view) == 0 &&
                    view_whole(ret_view) && (!by_ctl || ret_view->topic_whole) &&
                    (*ret_victim = broker_in(md, t, ret_view->leader)) &&
                    (!by_ctl || streq((*ret_victim)->name, ctl));
            md = kfk_metadata_release(md);
            if (ready)
                return 0;
        }
        if (now_usec() >= deadline)
            break;
        sleep_usec(POLL_USEC);
    }
    if (by_ctl && r->partition < 0)
        return err_set(reterr, -ENOENT, 0, 0,
                       "the active controller (%s) leads none of %s's partitions after %u s: not "
                       "starting a drill",
                       ctl[0] ? ctl : "unknown", t->topic, (unsigned)(READY_USEC / USEC_PER_SEC));
    if (r->partition >= 0 && ret_view->leader >= 0 && view_whole(ret_view) && !*ret_victim)
        return err_set(reterr, -ENOENT, 0, 0,
                       "the leader of %s/%d (broker %d) is none of the "
                       "stack's",
                       t->topic, (int)r->partition, (int)ret_view->leader);
    return err_set(reterr, -ENOENT, 0, 0,
                   "%s/%d has no leader or a replica out of sync after %u s: not starting a drill",
                   t->topic, (int)r->partition, (unsigned)(READY_USEC / USEC_PER_SEC));
}

/* Which broker led the KRaft quorum when the fault struck, and after the run: a killed or
 * frozen active controller means two elections in a row (docs/drills.md, Kafka). */
static json_t *controller_evidence(const struct drill_kafka_target *t, const char *before,
                                   const char *victim)
{
    char after[64];

    if (!t->controller)
        return NULL;
    drill__kafka_controller(t, after, sizeof after);
    return json_pack("{s:s?, s:s?, s:b}", "controller_before", before[0] ? before : NULL,
                     "controller_after", after[0] ? after : NULL, "victim_was_controller",
                     before[0] && streq(before, victim));
}

int drill_kafka_run(const struct drill_kafka_target *target, const struct drill_kafka_options *opts,
                    struct drill_run *ret, struct err *reterr)
{
    struct drill_kafka_target tt = *target; /* its topic: the one drilled */
    const struct drill_kafka_target *t = &tt;
    char topic[256];
    struct drill_kafka_options o = *opts;
    struct drill_run res = { .tally = { { .name = "messages" } } };
    struct run r = { .t = t, .o = &o, .res = &res };
    const struct drill_kafka_broker *victim;
    struct producer *p;
    struct kfk_op *ops = NULL;
    struct part_view v;
    unsigned *counts = NULL;
    int64_t from;
    pid_t pids[16];
    size_t n_pids = 0, n_ops;
    unsigned restarts = 0;
    char msg[512], ctl[64];
    int n, rc;

    if ((unsigned)o.fault >= _DRILL_KAFKA_FAULT_MAX ||
        (unsigned)o.victim >= _DRILL_KAFKA_VICTIM_MAX ||
        (o.victim == DRILL_KAFKA_VICTIM_CONTROLLER && !t->controller) || t->n_brokers < 2 ||
        t->n_brokers > DRILL_KAFKA_BROKERS_MAX || t->supervisor <= 1 || !t->bootstrap || !t->topic)
        return err_set(reterr, -EINVAL, 0, 0, "invalid drill options");
    if (o.victim == DRILL_KAFKA_VICTIM_CONTROLLER) {
        (void)snprintf(topic, sizeof topic, "%s.controller", target->topic);
        tt.topic = topic;
    }
    set_defaults(&o);
    if (o.fault == DRILL_KAFKA_PARTITION && (rc = drill_kafka_partition_check(t, reterr)) < 0)
        return rc;
    (void)snprintf(res.cluster, sizeof res.cluster, "kafka");
    (void)snprintf(res.fault, sizeof res.fault, "%s", drill_kafka_fault_to_string(o.fault));
    (void)snprintf(r.id, sizeof r.id, "%s-%llu", res.fault,
                   (unsigned long long)now_realtime_usec());

    rc = ensure_topic(t, o.victim == DRILL_KAFKA_VICTIM_CONTROLLER, reterr);
    if (rc < 0)
        return rc;
    rc = await_partition(&r, &v, &victim, ctl, sizeof ctl, reterr);
    if (rc < 0)
        return rc;
    (void)snprintf(res.victim, sizeof res.victim, "%s", victim->name);
    from = end_offset(t, r.partition, msg, sizeof msg);
    if (from < 0)
        return err_set(reterr, -EIO, 0, 0, "cannot read the end offset of %s: %s", t->topic, msg);

    res.start_at = now_usec();
    p = producer_start(t, r.partition, &o, r.id, msg, sizeof msg);
    if (!p)
        return err_set(reterr, -EIO, 0, 0, "cannot start the producer: %s", msg);
    DRILL_PROGRESS(&r,
                   "producer on (acks=all, idempotent, one message every %llu ms to %s/%d), "
                   "leader %s (broker %d), active controller %s",
                   (unsigned long long)(o.interval_usec / USEC_PER_MSEC), t->topic,
                   (int)r.partition, res.victim, (int)v.leader, ctl[0] ? ctl : "unknown");
    sleep_usec(o.before_usec);
    if (atomic_load(&p->acked) == 0) {
        n_ops = producer_finish(p, &ops, &restarts);
        free(ops);
        return err_set(reterr, -EIO, 0, 0, "no message was acknowledged in %.1f s before the fault",
                       (double)o.before_usec / USEC_PER_SEC);
    }
    if (o.fault == DRILL_KAFKA_PARTITION) { /* kafka_partition.c: cut, heal, evidence */
        rc = drill__kafka_partition(t, &o, victim, v.leader, r.partition, &res, msg, sizeof msg);
        if (rc < 0) {
            n_ops = producer_finish(p, &ops, &restarts);
            free(ops);
            drill_run_release(&res);
            return err_set(reterr, rc, 0, 0, "cannot cut %s off: %s", victim->name, msg);
        }
        goto faulted;
    }
    drill__kafka_controller(t, ctl, sizeof ctl);
    res.fault_at = now_usec();
    n = drill_signal_service(t->supervisor, victim->name, t->main_pid, t->main_pid_data,
                             o.fault == DRILL_KAFKA_CRASH ? SIGKILL : SIGSTOP, pids,
                             ARRAY_SIZE(pids));
    if (n < 0) {
        n_ops = producer_finish(p, &ops, &restarts);
        free(ops);
        return err_set(reterr, n, 0, 0, "cannot find the processes of %s (%s)", victim->name,
                       strerror(-n));
    }
    n_pids = o.fault == DRILL_KAFKA_PAUSE ? (size_t)n : 0;
    if (getenv("INFRACTL_DRILL_KAFKA_DEBUG"))
        fprintf(stderr, "%llu fault\n", (unsigned long long)res.fault_at / 1000);
    DRILL_PROGRESS(&r, "fault: %s of %s's %d processes (pid %d)",
                   o.fault == DRILL_KAFKA_CRASH ? "SIGKILL" : "SIGSTOP", victim->name, n,
                   (int)pids[0]);
    watch(&r, v.leader, pids, n_pids);
    res.evidence = controller_evidence(t, ctl, victim->name);
faulted:
    sleep_usec(o.after_usec);
    n_ops = producer_finish(p, &ops, &restarts); /* drains: the last delivery reports come in */
    res.end_at = now_usec();
    rc = 0;
    if (res.healed) {
        counts = xcalloc(n_ops + 2, sizeof *counts);
        rc = read_counts(t, r.partition, r.id, from, n_ops, counts, msg, sizeof msg);
        if (rc < 0)
            rc = err_set(reterr, rc, 0, 0, "final read of %s failed: %s", t->topic, msg);
    }
    tally(&r, ops, n_ops, rc == 0 ? counts : NULL);
    if (restarts && !res.note[0])
        (void)snprintf(res.note, sizeof res.note,
                       "the producer hit a fatal idempotence error and was replaced %u time(s)",
                       restarts);
    free(counts);
    free(ops);
    if (rc < 0) {
        drill_run_release(&res);
        return rc;
    }
    *ret = res;
    return 0;
}
