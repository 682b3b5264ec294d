/* SPDX-License-Identifier: MIT */
/* status_kafka.c - Kafka in `infractl status`: each broker's role in the KRaft controller
 * quorum, the partitions it leads (under-replicated, offline), the cluster's judgment, and the
 * consumer groups' lag.
 *
 * Partitions come from each broker's status probe (a librdkafka metadata request: probe
 * type kafka, whose detail has one line per broker).  The quorum role does not: under KRaft a
 * metadata answer names some live broker as "controller", and a client cannot ask the quorum
 * itself with librdkafka (no DescribeQuorum), while the JMX exporter takes 100-500 ms to
 * answer.  Every node records the quorum as it knows it in its metadata log directory
 * (__cluster_metadata-0/quorum-state: leaderId, leaderEpoch, currentVoters, rewritten on each
 * election); the record with the highest epoch names the leader.  The node's id and that
 * directory are read from its server.properties (the argument after kafka.Kafka in the stack
 * file's command) and its --override options, as Kafka itself reads them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/bgjob.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "stack/stack.h"
#include "status_int.h"

/* ===== The node's configuration ===== */

struct kafka_node {
    long id;                 /* node.id; -1 when unknown */
    bool controller;         /* process.roles has controller */
    char metadata_dir[512];  /* metadata.log.dir; "" when unset */
    char first_log_dir[512]; /* the first of log.dirs (where the metadata log is otherwise) */
};

static void node_set(struct kafka_node *n, const char *key, const char *value)
{
    if (streq(key, "node.id")) {
        int64_t v;
        n->id = parse_i64(value, &v) == 0 && v >= 0 ? (long)v : -1;
    } else if (streq(key, "process.roles")) {
        n->controller = strstr(value, "controller") != NULL;
    } else if (streq(key, "metadata.log.dir")) {
        (void)snprintf(n->metadata_dir, sizeof n->metadata_dir, "%s", value);
    } else if (streq(key, "log.dirs") || streq(key, "log.dir")) {
        (void)snprintf(n->first_log_dir, sizeof n->first_log_dir, "%.*s", (int)strcspn(value, ","),
                       value);
    }
}

/* One "key=value" (or "key: value") line of a Java properties file; comments skipped. */
static void properties_line(char *line, void *ud)
{
    char *key = line + strspn(line, " \t"), *sep, *value;

    if (!*key || *key == '#' || *key == '!')
        return;
    sep = key + strcspn(key, "=:");
    if (!*sep)
        return;
    value = sep + 1;
    while (sep > key && (sep[-1] == ' ' || sep[-1] == '\t'))
        sep--;
    *sep = '\0';
    value += strspn(value, " \t");
    value[strcspn(value, "\r")] = '\0';
    node_set(ud, key, value);
}

/* The node's id, roles and metadata directory from `kafka.Kafka FILE [--override K=V]...`. */
static bool node_info(const struct stack_service *svc, struct kafka_node *n)
{
    struct buf text = BUF_INIT(256 * 1024);
    char **a = svc->argv;

    *n = (struct kafka_node){ .id = -1 };
    while (*a && !streq(*a, "kafka.Kafka"))
        a++;
    if (!*a || !a[1] || file_read_all(a[1], &text) < 0) {
        buf_release(&text);
        return false;
    }
    status__for_each_line(buf_str(&text), properties_line, n);
    buf_release(&text);
    for (a += 2; *a && a[1]; a++)
        if (streq(*a, "--override")) {
            char kv[1024];

            (void)snprintf(kv, sizeof kv, "%s", *++a);
            properties_line(kv, n);
        }
    if (!n->metadata_dir[0])
        memcpy(n->metadata_dir, n->first_log_dir, sizeof n->metadata_dir);
    return n->id >= 0 && n->metadata_dir[0];
}

/* The quorum as this node recorded it; false when there is no readable record. */
static bool quorum_read(const struct kafka_node *n, long long *ret_leader, long long *ret_epoch)
{
    char path[640];
    json_t *root, *leader, *epoch;
    bool ok;

    (void)snprintf(path, sizeof path, "%s/__cluster_metadata-0/quorum-state", n->metadata_dir);
    root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    leader = json_object_get(root, "leaderId");
    epoch = json_object_get(root, "leaderEpoch");
    ok = json_is_integer(leader) && json_is_integer(epoch);
    if (ok) {
        *ret_leader = json_integer_value(leader);
        *ret_epoch = json_integer_value(epoch);
    }
    json_decref(root);
    return ok;
}

/* ===== Roles and partitions ===== */

struct self_acc {
    bool self_found, cluster_found;
    struct status_partitions self;
    unsigned partitions, under_replicated, offline;
};

static unsigned field_u(const char *line, const char *key)
{
    char pat[48];
    const char *p;
    int64_t v;
    char num[24];
    size_t len;

    (void)snprintf(pat, sizeof pat, " %s=", key);
    p = strstr(line, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    len = strspn(p, "0123456789");
    if (len == 0 || len >= sizeof num)
        return 0;
    memcpy(num, p, len);
    num[len] = '\0';
    return parse_i64(num, &v) == 0 && v >= 0 && v <= UINT32_MAX ? (unsigned)v : 0;
}

/* The kafka probe's detail: "broker=ID ... self=0|1 ... led=N under_replicated=N offline=N
 * ..." per broker, then "cluster ... replicas=N led=N under_replicated=N offline=N ...". */
static void kafka_line(char *line, void *ud)
{
    struct self_acc *acc = ud;

    if (str_startswith(line, "broker=") && strstr(line, " self=1 ")) {
        acc->self_found = true;
        acc->self = (struct status_partitions){
            .known = true,
            .led = field_u(line, "led"),
            .under_replicated = field_u(line, "under_replicated"),
            .offline = field_u(line, "offline"),
        };
    } else if (str_startswith(line, "cluster ")) {
        acc->cluster_found = true;
        acc->partitions = field_u(line, "led") + field_u(line, "offline");
        acc->under_replicated = field_u(line, "under_replicated");
        acc->offline = field_u(line, "offline");
    }
}

static bool job_is_kafka(const struct role_job *j)
{
    return j->svc && j->svc->kind && streq(j->svc->kind, "kafka");
}

void status__interpret_kafka(struct role_job *jobs, size_t n)
{
    struct kafka_node *nodes = xcalloc(n ? n : 1, sizeof *nodes);
    struct status_kafka *k = NULL;
    long long leader = -1, epoch = -1;

    for (size_t i = 0; i < n; i++) {
        long long l, e;

        if (!job_is_kafka(&jobs[i]))
            continue;
        k = &jobs[i].snap->kafka;
        k->present = true;
        if (node_info(jobs[i].svc, &nodes[i]) && quorum_read(&nodes[i], &l, &e) && e > epoch) {
            epoch = e;
            leader = l;
        }
    }
    if (k)
        k->quorum_epoch = epoch;
    for (size_t i = 0; i < n; i++) {
        struct status_service *sv = jobs[i].sv;
        struct self_acc acc = { 0 };

        if (!job_is_kafka(&jobs[i]) || !streq(sv->state, "running"))
            continue;
        if (nodes[i].id >= 0 && nodes[i].id == leader)
            (void)snprintf(k->controller, sizeof k->controller, "%s", sv->name);
        if (!status__job_ok(&jobs[i], "kafka"))
            continue;
        if (nodes[i].id >= 0)
            (void)snprintf(sv->role, sizeof sv->role, "%s",
                           !nodes[i].controller    ? "broker"
                           : nodes[i].id == leader ? "controller (leader)"
                                                   : "controller (voter)");
        status__for_each_line(probe_detail(jobs[i].probe), kafka_line, &acc);
        if (acc.self_found) {
            sv->partitions = acc.self;
            (void)snprintf(sv->detail, sizeof sv->detail, "partitions %u led, %u under-replicated",
                           acc.self.led, acc.self.under_replicated);
        }
        /* Each broker answers from its own metadata cache, and one that has just restarted
         * may still replay a view from before its crash (every ISR whole): the degradation
         * any broker sees counts. */
        if (acc.cluster_found) {
            if (!k->metadata_known)
                k->partitions = acc.partitions;
            k->metadata_known = true;
            if (acc.under_replicated > k->under_replicated)
                k->under_replicated = acc.under_replicated;
            if (acc.offline > k->offline)
                k->offline = acc.offline;
        }
    }
    free(nodes);
}

/* Every broker running and answering, a quorum leader among them, every partition led and
 * fully in sync. */
void status__judge_kafka(struct status_snapshot *snap, const struct stack *s,
                         struct status_cluster *c)
{
    const struct status_kafka *k = &snap->kafka;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];

        if (!status__kind_is(s, sv, "kafka") || !status__member_running(c, sv))
            continue;
        if (sv->role_error[0])
            status__problem(c, "%s does not answer (%s)", sv->name, sv->role_error);
    }
    if (c->members == 0)
        return;
    if (!k->controller[0])
        status__problem(c, "no controller leader");
    if (!k->metadata_known) {
        if (c->running)
            status__problem(c, "no broker answered a metadata request");
        return;
    }
    if (k->under_replicated)
        status__problem(c, "%u under-replicated partition%s", k->under_replicated,
                        k->under_replicated == 1 ? "" : "s");
    if (k->offline)
        status__problem(c, "%u offline partition%s", k->offline, k->offline == 1 ? "" : "s");
}

/* ===== Consumer-group lag ===== */

/* The query runs as a bgjob (core/bgjob.h).  status waits for the answer until the query's
 * timeout plus STATUS_LAG_GRACE_USEC and no longer: a librdkafka call cannot be cancelled and
 * may outlive its timeout.  2.0.2's rd_kafka_query_watermark_offsets() waited for its two
 * ListOffsets answers without a deadline and retried them while a partition's leader restarted
 * (status took 7.6 s, and so missed a 6 s window of under-replicated partitions, when a broker
 * was killed under load); 2.12.1 bounds that one.  A query still running then is abandoned and
 * frees itself when librdkafka returns. */
struct lag_call { /* the job's argument */
    char *bootstrap;
    uint64_t timeout_usec;
    int r;
    struct err err;
    struct kfk_group_lag *groups;
    size_t n_groups;
};

struct status_lag_query {
    struct bgjob *job;
    struct lag_call *call; /* the job's; read once the job is done */
    uint64_t timeout_usec;
    uint64_t deadline_usec; /* monotonic: when status stops waiting */
    int start_error;        /* -errno: the job did not start */
};

static void lag_run(void *arg)
{
    struct lag_call *c = arg;

    c->r = kfk_consumer_lag(c->bootstrap, c->timeout_usec, &c->groups, &c->n_groups, &c->err);
}

static void lag_call_free(void *arg)
{
    struct lag_call *c = arg;

    kfk_consumer_lag_free(c->groups, c->n_groups);
    free(c->bootstrap);
    free(c);
}

struct status_lag_query *status__lag_start(const struct status_snapshot *snap,
                                           const struct stack *s, uint64_t timeout_usec)
{
    struct buf bootstrap = BUF_INIT(0);
    struct status_lag_query *q;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        const struct stack_service *svc = stack_find(s, sv->name);

        if (!svc || !svc->kind || !streq(svc->kind, "kafka") || !streq(sv->state, "running") ||
            !svc->has_status_probe || svc->status_probe.type != PROBE_KAFKA)
            continue;
        if (buf_appendf(&bootstrap, "%s%s:%u", bootstrap.len ? "," : "",
                        svc->status_probe.host ? svc->status_probe.host : "127.0.0.1",
                        svc->status_probe.port) < 0)
            break;
    }
    if (!bootstrap.len) {
        buf_release(&bootstrap);
        return NULL;
    }
    q = xcalloc(1, sizeof *q);
    q->call = xcalloc(1, sizeof *q->call);
    *q->call = (struct lag_call){ .bootstrap = buf_detach(&bootstrap, NULL),
                                  .timeout_usec = timeout_usec,
                                  .err = ERR_INIT };
    q->timeout_usec = timeout_usec;
    q->deadline_usec = now_usec() + timeout_usec + STATUS_LAG_GRACE_USEC;
    q->start_error = bgjob_start(lag_run, q->call, lag_call_free, &q->job, NULL);
    if (q->start_error < 0)
        q->call = NULL; /* freed */
    return q;
}

void status__lag_finish(struct status_lag_query *q, struct status_snapshot *snap)
{
    struct status_kafka *k = &snap->kafka;
    const struct lag_call *c;

    if (!q) {
        if (k->present)
            (void)snprintf(k->groups_error, sizeof k->groups_error, "no broker running");
        return;
    }
    c = q->call;
    if (q->start_error < 0) {
        (void)snprintf(k->groups_error, sizeof k->groups_error, "cannot start a thread: %s",
                       strerror(-q->start_error));
    } else if (!bgjob_wait(q->job, q->deadline_usec)) {
        (void)snprintf(k->groups_error, sizeof k->groups_error, "no answer within %llu ms",
                       (unsigned long long)(q->timeout_usec / USEC_PER_MSEC));
    } else if (c->r < 0) {
        (void)snprintf(k->groups_error, sizeof k->groups_error, "%s",
                       c->err.msg[0] ? c->err.msg : strerror(-c->r));
    } else {
        k->groups_known = true;
        k->groups = xcalloc(c->n_groups ? c->n_groups : 1, sizeof *k->groups);
        for (size_t i = 0; i < c->n_groups; i++) {
            const struct kfk_group_lag *g = &c->groups[i];
            struct status_group *out = &k->groups[k->n_groups++];

            *out = (struct status_group){ .name = xstrdup(g->group),
                                          .lag = g->total_lag,
                                          .partitions = (unsigned)g->n_partitions,
                                          .unknown = g->n_unknown };
            (void)snprintf(out->state, sizeof out->state, "%s", g->state);
            if (g->error)
                (void)snprintf(out->error, sizeof out->error, "%s",
                               g->message[0] ? g->message : strerror(-g->error));
        }
    }
    q->job = bgjob_release(q->job); /* frees the call, now or when it returns */
    free(q);
}
