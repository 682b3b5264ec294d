/* SPDX-License-Identifier: MIT */
/* drill_redis.c - one Redis + Sentinel failover drill.  The writer finds the master through
 * Sentinel, and a second thread subscribes to +switch-master on a Sentinel, so that the writer
 * moves to a new master when Sentinel announces it rather than after its own next failure.  Ids
 * go into one list per run (RPUSH); even ids are followed by WAIT 1 on the same connection and
 * count as acknowledged only when a replica confirmed them ("wait"), odd ids as soon as the
 * master answered ("plain").  The final read on every node decides lost / recovered /
 * duplicates.  Nodes and Sentinels are addressed by host and port (the partition cluster runs
 * each in a network namespace of its own, all on port 6379 / 26379). */
#include "drill_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"

#define POLL_USEC     (100 * USEC_PER_MSEC)
#define CONNECT_MSEC  200
#define READY_USEC    (60 * USEC_PER_SEC)
#define CONVERGE_USEC (10 * USEC_PER_SEC)
#define MAX_NODES     8 /* Redis nodes, and Sentinels */
#define CUT_MAX_USEC  (60 * USEC_PER_SEC)

static const char *const fault_names[_DRILL_REDIS_FAULT_MAX] = {
    [DRILL_REDIS_CRASH] = "crash",
    [DRILL_REDIS_PAUSE] = "pause",
    [DRILL_REDIS_SWITCHOVER] = "switchover",
    [DRILL_REDIS_PARTITION] = "partition",
};

DRILL_NAME_TABLE(drill_redis_fault, drill_redis_fault, fault_names, _DRILL_REDIS_FAULT_MAX)

/* ===== Connections ===== */

static struct timeval tv_of(uint64_t usec)
{
    return (struct timeval){ .tv_sec = (time_t)(usec / USEC_PER_SEC),
                             .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
}

static const char *host_of(const struct drill_redis_node *n)
{
    return n->host ? n->host : "127.0.0.1";
}

/* A connection to node n, authenticated when password is set, every reply bounded by
 * timeout_usec.  NULL when it cannot be had in time. */
static redisContext *rds_open(const struct drill_redis_node *n, const char *password,
                              uint64_t timeout_usec)
{
    redisContext *c = redisConnectWithTimeout(host_of(n), n->port, tv_of(CONNECT_MSEC * 1000));
    redisReply *rep;

    if (!c || c->err || redisSetTimeout(c, tv_of(timeout_usec)) != REDIS_OK) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (password) {
        rep = redisCommand(c, "AUTH %s", password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return c;
}

/* The index of the node at host:port (as Sentinel or INFO names it), or -1. */
static int node_at(const struct drill_redis_target *t, const char *host, const char *port)
{
    uint64_t p;

    if (!host || !port || parse_uint_range(port, 1, 65535, &p) < 0)
        return -1;
    for (size_t i = 0; i < t->n_nodes; i++)
        if (t->nodes[i].port == p && streq(host_of(&t->nodes[i]), host))
            return (int)i;
    return -1;
}

/* How many entries Sentinel's `SENTINEL what name` lists (REPLICAS, SENTINELS); -1 on error. */
static long sentinel_count(redisContext *c, const char *what, const char *name)
{
    redisReply *rep = redisCommand(c, "SENTINEL %s %s", what, name);
    long n = rep && rep->type == REDIS_REPLY_ARRAY ? (long)rep->elements : -1;

    if (rep)
        freeReplyObject(rep);
    return n;
}

/* The master as Sentinel s sees it: a node index, -1 when it does not answer or names none of
 * the nodes.  With knows_all: whether s also lists every other node as a replica and every
 * other Sentinel as a peer.  A Sentinel learns replicas from the master's INFO every 10 s: one
 * that has not yet heard of a replica leaves it behind in a failover, still replicating from
 * the old master, and nothing heals that chain. */
static int sentinel_master(const struct drill_redis_target *t, const struct drill_redis_node *s,
                           bool *knows_all)
{
    redisContext *c = rds_open(s, NULL, 300 * USEC_PER_MSEC);
    redisReply *rep;
    int m = -1;

    if (knows_all)
        *knows_all = false;
    if (!c)
        return -1;
    rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", t->master_name);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING && rep->element[1]->type == REDIS_REPLY_STRING)
        m = node_at(t, rep->element[0]->str, rep->element[1]->str);
    if (rep)
        freeReplyObject(rep);
    if (knows_all && m >= 0)
        *knows_all = sentinel_count(c, "REPLICAS", t->master_name) >= (long)t->n_nodes - 1 &&
                     sentinel_count(c, "SENTINELS", t->master_name) >= (long)t->n_sentinels - 1;
    redisFree(c);
    return m;
}

/* The master a majority of the Sentinels names, else the first answer (a Sentinel cut off with
 * an old master still names it); -1 when none answers. */
static int sentinels_master(const struct drill_redis_target *t)
{
    unsigned votes[MAX_NODES] = { 0 };
    int first = -1;

    for (size_t i = 0; i < t->n_sentinels; i++) {
        int m = sentinel_master(t, &t->sentinels[i], NULL);

        if (m < 0)
            continue;
        if (first < 0)
            first = m;
        if (++votes[m] * 2 > t->n_sentinels)
            return m;
    }
    return first;
}

/* INFO replication of one node: role, and for a replica its master and link state; for a
 * master the replicas online.  -EIO when the node does not answer. */
struct node_info {
    bool master;
    int of;          /* replica: its master (node index, -1 = none of the nodes) */
    bool link_up;    /* replica: master_link_status:up */
    unsigned online; /* master: replicas with state=online */
};

/* The value of "field:" in an INFO text, up to its line's end, into out ("" when absent). */
static void info_field(const char *info, const char *field, char *out, size_t size)
{
    const char *p = strstr(info, field);

    out[0] = '\0';
    if (p) {
        p += strlen(field);
        (void)snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
    }
}

static int node_info(const struct drill_redis_target *t, size_t k, struct node_info *ret)
{
    redisContext *c = rds_open(&t->nodes[k], t->password, 300 * USEC_PER_MSEC);
    redisReply *rep;
    char host[64], port[8];
    const char *p;

    *ret = (struct node_info){ .master = false, .of = -1 };
    if (!c)
        return -EIO;
    rep = redisCommand(c, "INFO replication");
    redisFree(c);
    if (!rep || rep->type != REDIS_REPLY_STRING) {
        if (rep)
            freeReplyObject(rep);
        return -EIO;
    }
    ret->master = strstr(rep->str, "role:master") != NULL;
    info_field(rep->str, "master_host:", host, sizeof host);
    info_field(rep->str, "master_port:", port, sizeof port);
    ret->of = node_at(t, host, port);
    ret->link_up = strstr(rep->str, "master_link_status:up") != NULL;
    for (p = rep->str; (p = strstr(p, "state=online")); p++)
        ret->online++;
    freeReplyObject(rep);
    return 0;
}

/* The cluster as the Sentinels and the nodes see it now. */
struct view {
    int agreed;       /* the master every Sentinel names; -1 when they disagree or one is silent */
    int named_other;  /* a master some Sentinel names other than `other_than`; -1 = none */
    unsigned masters; /* bit k: node k answers role:master */
    bool whole;       /* agreed is a master with every other node an online replica, every
                         other node is its replica with the link up, and every Sentinel lists
                         every replica and every other Sentinel */
};

static void cluster_view(const struct drill_redis_target *t, int other_than, struct view *v)
{
    struct node_info ni;
    bool agree = true, know = true;
    int first = -1;

    *v = (struct view){ .agreed = -1, .named_other = -1 };
    for (size_t i = 0; i < t->n_sentinels; i++) {
        bool knows_all;
        int m = sentinel_master(t, &t->sentinels[i], &knows_all);

        if (m >= 0 && m != other_than)
            v->named_other = m;
        if (i == 0)
            first = m;
        agree = agree && m >= 0 && m == first;
        know = know && knows_all;
    }
    v->agreed = agree ? first : -1;
    v->whole = v->agreed >= 0 && know;
    for (size_t k = 0; k < t->n_nodes; k++) {
        if (node_info(t, k, &ni) < 0) {
            v->whole = false;
            continue;
        }
        v->masters |= ni.master ? 1U << k : 0;
        if ((int)k == v->agreed ? !ni.master || ni.online < t->n_nodes - 1
                                : ni.master || ni.of != v->agreed || !ni.link_up)
            v->whole = false;
    }
}

/* Whole (above); *ret_master = the master every Sentinel names, -1 when they disagree. */
static bool cluster_whole(const struct drill_redis_target *t, int *ret_master)
{
    struct view v;

    cluster_view(t, -1, &v);
    *ret_master = v.agreed;
    return v.whole;
}

/* ===== The writer and its Sentinel subscriber ===== */

struct rds_op {
    int64_t id;
    uint64_t invoke_usec, done_usec;
    enum drill_op_result result;
    bool wait;   /* confirmed with WAIT 1 */
    int8_t node; /* the node it was sent to */
};

struct rds_writer {
    const struct drill_redis_target *t;
    const struct drill_redis_options *o;
    char key[96];
    pthread_t writer, subscriber;
    atomic_bool stop;
    atomic_uint acked;
    atomic_uint generation;        /* +1 per +switch-master event naming another master */
    atomic_int event_node;         /* the master the last event named (-1 = none yet) */
    atomic_uint_fast64_t event_at; /* when the first event came (0 = none) */
    pthread_mutex_t lock;          /* ops */
    struct rds_op *ops;
    size_t n, cap;
};

static void record(struct rds_writer *w, const struct rds_op *op)
{
    pthread_mutex_lock(&w->lock);
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->ops = xrealloc(w->ops, w->cap * sizeof *w->ops);
    }
    w->ops[w->n++] = *op;
    pthread_mutex_unlock(&w->lock);
    if (op->result == DRILL_OP_OK)
        atomic_fetch_add(&w->acked, 1);
}

/* "+switch-master" message payload: "<name> <old-ip> <old-port> <new-ip> <new-port>". */
static void on_switch(struct rds_writer *w, const char *payload)
{
    char copy[256], *save = NULL, *f[5];
    size_t n = 0;
    int node;

    (void)snprintf(copy, sizeof copy, "%s", payload);
    for (char *tok = strtok_r(copy, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
        f[n++] = tok;
    if (n != 5 || !streq(f[0], w->t->master_name) || (node = node_at(w->t, f[3], f[4])) < 0)
        return;
    /* Every Sentinel announces the same switch (one cut off from the others once it hears of
     * it): only the first announcement of a master moves the writer. */
    if (atomic_exchange(&w->event_node, node) == node)
        return;
    if (atomic_load(&w->event_at) == 0)
        atomic_store(&w->event_at, now_usec());
    atomic_fetch_add(&w->generation, 1);
}

/* (Re)subscribes to +switch-master on Sentinel k; false when it cannot now. */
static bool subscribe(struct rds_writer *w, size_t k, redisContext **c)
{
    redisReply *rep;

    *c = rds_open(&w->t->sentinels[k], NULL, 500 * USEC_PER_MSEC);
    rep = *c ? redisCommand(*c, "SUBSCRIBE +switch-master") : NULL;
    if (rep) {
        freeReplyObject(rep);
        return true;
    }
    if (*c)
        redisFree(*c);
    *c = NULL;
    return false;
}

/* Subscribes to +switch-master on every Sentinel at once, as a client that must not miss a
 * failover does (a Sentinel cut off with the old master hears of it only after the heal), and
 * reads them with poll() so that stop is seen within 100 ms.  A broken subscription is retried
 * every 100 ms. */
static void *subscriber_main(void *userdata)
{
    struct rds_writer *w = userdata;
    redisContext *c[MAX_NODES] = { NULL };
    uint64_t retry_at[MAX_NODES] = { 0 };
    size_t n = w->t->n_sentinels;

    while (!atomic_load(&w->stop)) {
        struct pollfd p[MAX_NODES];
        size_t idx[MAX_NODES], k = 0;

        for (size_t i = 0; i < n; i++) {
            if (!c[i] && now_usec() >= retry_at[i] && !subscribe(w, i, &c[i]))
                retry_at[i] = now_usec() + POLL_USEC;
            if (c[i]) {
                p[k] = (struct pollfd){ .fd = c[i]->fd, .events = POLLIN };
                idx[k++] = i;
            }
        }
        if (k == 0) {
            sleep_usec(POLL_USEC);
            continue;
        }
        if (poll(p, k, 100) <= 0)
            continue;
        for (size_t j = 0; j < k; j++) {
            redisContext *ctx = c[idx[j]];
            void *r = NULL;

            if (!p[j].revents)
                continue;
            if (redisBufferRead(ctx) == REDIS_OK)
                while (redisGetReplyFromReader(ctx, &r) == REDIS_OK && r) {
                    redisReply *m = r;

                    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                        m->element[2]->type == REDIS_REPLY_STRING)
                        on_switch(w, m->element[2]->str);
                    freeReplyObject(m);
                    r = NULL;
                }
            if (ctx->err) {
                redisFree(ctx);
                c[idx[j]] = NULL;
                retry_at[idx[j]] = now_usec() + POLL_USEC;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (c[i])
            redisFree(c[i]);
    return NULL;
}

static bool is_int(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_INTEGER;
}

/* One write: RPUSH key id, and WAIT 1 when wait.  *broken when the connection must go. */
static enum drill_op_result write_one(struct rds_writer *w, redisContext *c, int64_t id, bool wait,
                                      bool *broken)
{
    redisReply *push = NULL, *ack = NULL;
    enum drill_op_result res;

    if (redisAppendCommand(c, "RPUSH %s %lld", w->key, (long long)id) != REDIS_OK ||
        (wait && redisAppendCommand(c, "WAIT 1 %u", w->o->wait_ms) != REDIS_OK)) {
        *broken = true;
        return DRILL_OP_FAIL; /* nothing was sent */
    }
    if (redisGetReply(c, (void **)&push) != REDIS_OK || !push) {
        *broken = true;
        return DRILL_OP_UNKNOWN;
    }
    if (push->type == REDIS_REPLY_ERROR) {
        /* READONLY (a replica now), LOADING, NOAUTH, MASTERDOWN: refused, not executed */
        *broken = true;
        res = DRILL_OP_FAIL;
    } else if (!is_int(push)) {
        *broken = true;
        res = DRILL_OP_UNKNOWN;
    } else if (!wait) {
        res = DRILL_OP_OK;
    } else if (redisGetReply(c, (void **)&ack) != REDIS_OK || !ack) {
        *broken = true;
        res = DRILL_OP_UNKNOWN;
    } else {
        /* written on the master; acknowledged only when a replica has it */
        res = is_int(ack) && ack->integer >= 1 ? DRILL_OP_OK : DRILL_OP_UNKNOWN;
    }
    if (push)
        freeReplyObject(push);
    if (ack)
        freeReplyObject(ack);
    return res;
}

static void *writer_main(void *userdata)
{
    struct rds_writer *w = userdata;
    uint64_t next = now_usec();
    unsigned gen = atomic_load(&w->generation);
    redisContext *c = NULL;
    int64_t id = 0;
    int node = -1;

    while (!atomic_load(&w->stop)) {
        struct rds_op op;
        bool broken = false;
        uint64_t now = now_usec();

        if (next > now)
            sleep_usec(next - now);
        next += w->o->interval_usec;
        if (next < now_usec())
            next = now_usec() + w->o->interval_usec; /* no burst after an outage */
        if (c && gen != atomic_load(&w->generation)) {
            redisFree(c); /* Sentinel announced another master: go there now */
            c = NULL;
        }
        if (!c) {
            gen = atomic_load(&w->generation);
            node = gen ? atomic_load(&w->event_node) : sentinels_master(w->t);
            if (node < 0 ||
                !(c = rds_open(&w->t->nodes[node], w->t->password, w->o->op_timeout_usec)))
                continue; /* no operation attempted */
        }
        id++; /* initializers are not sequenced: .wait must not read id while .id bumps it */
        op = (struct rds_op){
            .id = id, .invoke_usec = now_usec(), .wait = id % 2 == 0, .node = (int8_t)node
        };
        op.result = write_one(w, c, op.id, op.wait, &broken);
        op.done_usec = now_usec();
        record(w, &op);
        if (broken) {
            redisFree(c);
            c = NULL;
        }
    }
    if (c)
        redisFree(c);
    return NULL;
}

static struct rds_writer *writer_start(const struct drill_redis_target *t,
                                       const struct drill_redis_options *o, const char *key)
{
    struct rds_writer *w = xcalloc(1, sizeof *w);

    w->t = t;
    w->o = o;
    (void)snprintf(w->key, sizeof w->key, "%s", key);
    atomic_init(&w->stop, false);
    atomic_init(&w->acked, 0);
    atomic_init(&w->generation, 0);
    atomic_init(&w->event_node, -1);
    atomic_init(&w->event_at, 0);
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    if (pthread_create(&w->subscriber, NULL, subscriber_main, w) != 0) {
        (void)pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    if (pthread_create(&w->writer, NULL, writer_main, w) != 0) {
        atomic_store(&w->stop, true);
        (void)pthread_join(w->subscriber, NULL);
        (void)pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

/* Stops both threads; returns the operations (caller frees) and frees w. */
static size_t writer_finish(struct rds_writer *w, struct rds_op **ret_ops, uint64_t *ret_event_at)
{
    size_t n;

    atomic_store(&w->stop, true);
    (void)pthread_join(w->writer, NULL);
    (void)pthread_join(w->subscriber, NULL);
    (void)pthread_mutex_destroy(&w->lock);
    n = w->n;
    *ret_ops = w->ops;
    *ret_event_at = atomic_load(&w->event_at);
    free(w);
    return n;
}

/* ===== The drill ===== */

struct run {
    const struct drill_redis_target *t;
    const struct drill_redis_options *o;
    struct drill_run *res;
    char key[96];
    int victim;          /* the master when the fault came */
    char client[48];     /* partition: the client's (this host's) address on the nodes' network */
    uint64_t other_role; /* fault -> another node first answered role:master (0 = never) */
    uint64_t both_first, both_last; /* fault -> first / last poll with the victim and another
                                       node both answering role:master (0 = never) */
};

static bool wait_whole(const struct drill_redis_target *t, uint64_t timeout, int *master)
{
    uint64_t deadline = now_usec() + timeout;

    while (!cluster_whole(t, master)) {
        if (now_usec() >= deadline)
            return false;
        sleep_usec(POLL_USEC);
    }
    return true;
}

/* The list on node k: how often each id 1..max_id occurs (counts[id]). */
static int read_counts(const struct run *r, size_t k, int64_t max_id, unsigned *counts)
{
    redisContext *c = rds_open(&r->t->nodes[k], r->t->password, 5 * USEC_PER_SEC);
    redisReply *rep;

    if (!c)
        return -EIO;
    rep = redisCommand(c, "LRANGE %s 0 -1", r->key);
    redisFree(c);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -EIO;
    }
    memset(counts, 0, ((size_t)max_id + 1) * sizeof *counts);
    for (size_t i = 0; i < rep->elements; i++) {
        int64_t id;

        if (rep->element[i]->type == REDIS_REPLY_STRING &&
            parse_i64(rep->element[i]->str, &id) == 0 && id >= 1 && id <= max_id)
            counts[id]++;
    }
    freeReplyObject(rep);
    return 0;
}

/* The final read: on the master it decides recovered and duplicates; on every node the
 * acknowledged ids missing (replicas get CONVERGE_USEC to catch up), lost[i] for each. */
static int final_read(struct run *r, int master, const struct rds_op *ops, size_t n_ops, bool *lost,
                      struct err *reterr)
{
    int64_t max_id = n_ops ? ops[n_ops - 1].id : 0;
    unsigned *counts = xcalloc((size_t)max_id + 1, sizeof *counts);
    int rc = 0;

    for (size_t k = 0; k < r->t->n_nodes && rc == 0; k++) {
        uint64_t deadline = now_usec() + CONVERGE_USEC;
        unsigned missing[2];

        for (;;) {
            missing[0] = missing[1] = 0;
            rc = read_counts(r, k, max_id, counts);
            for (size_t i = 0; rc == 0 && i < n_ops; i++)
                if (ops[i].result == DRILL_OP_OK && counts[ops[i].id] == 0)
                    missing[ops[i].wait]++;
            if ((rc == 0 && missing[0] + missing[1] == 0) || now_usec() >= deadline)
                break;
            sleep_usec(POLL_USEC);
        }
        if (rc < 0) {
            rc = err_set(reterr, -EIO, 0, 0, "final read on %s failed", r->t->nodes[k].name);
            break;
        }
        for (int c = 0; c < 2; c++)
            if (missing[c] > r->res->tally[c].lost)
                r->res->tally[c].lost = missing[c];
        for (size_t i = 0; i < n_ops; i++)
            lost[i] = lost[i] || (ops[i].result == DRILL_OP_OK && counts[ops[i].id] == 0);
        if ((int)k != master)
            continue;
        for (size_t i = 0; i < n_ops; i++) {
            struct drill_tally *t = &r->res->tally[ops[i].wait];

            t->recovered += ops[i].result == DRILL_OP_UNKNOWN && counts[ops[i].id] > 0;
            t->duplicates += counts[ops[i].id] > 1;
        }
    }
    if (rc == 0 && (r->res->tally[0].lost || r->res->tally[1].lost))
        (void)snprintf(r->res->note, sizeof r->res->note,
                       "acknowledged writes missing: %u plain, %u WAIT-confirmed",
                       r->res->tally[0].lost, r->res->tally[1].lost);
    free(counts);
    return rc;
}

/* The address this host uses to reach host:port (a UDP connect() sends nothing): the client
 * path a partition must leave open.  0 or -errno. */
static int local_addr_toward(const struct drill_redis_node *n, char *out, size_t size)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(n->port) }, me;
    socklen_t len = sizeof me;
    int fd, r = 0;

    if (inet_pton(AF_INET, host_of(n), &to.sin_addr) != 1)
        return -EINVAL;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 ||
        getsockname(fd, (struct sockaddr *)&me, &len) < 0 ||
        !inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)size))
        r = -errno;
    (void)close(fd);
    return r;
}

static int inject(struct run *r, pid_t *pids, size_t *n_pids, struct err *reterr)
{
    const struct drill_redis_node *victim = &r->t->nodes[r->victim];
    char msg[256];
    int n;

    switch (r->o->fault) {
    case DRILL_REDIS_CRASH:
    case DRILL_REDIS_PAUSE: {
        int sig = r->o->fault == DRILL_REDIS_CRASH ? SIGKILL : SIGSTOP;

        n = drill_signal_service(r->t->supervisor, victim->name, r->t->main_pid,
                                 r->t->main_pid_data, sig, pids, 16);
        if (n < 0)
            return err_set(reterr, n, 0, 0, "cannot find the processes of %s (%s)", victim->name,
                           strerror(-n));
        *n_pids = sig == SIGSTOP ? (size_t)n : 0;
        DRILL_PROGRESS(r, "fault: %s of %s's %d processes (pid %d)%s",
                       sig == SIGKILL ? "SIGKILL" : "SIGSTOP", victim->name, n, (int)pids[0],
                       sig == SIGSTOP ? " until SIGCONT" : "");
        return 0;
    }
    case DRILL_REDIS_SWITCHOVER:
        for (size_t i = 0; i < r->t->n_sentinels; i++) {
            redisContext *c = rds_open(&r->t->sentinels[i], NULL, USEC_PER_SEC);
            redisReply *rep = c ? redisCommand(c, "SENTINEL FAILOVER %s", r->t->master_name) : NULL;
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;

            if (rep)
                freeReplyObject(rep);
            if (c)
                redisFree(c);
            if (ok) {
                DRILL_PROGRESS(r, "fault: SENTINEL FAILOVER %s on %s (master %s)",
                               r->t->master_name, r->t->sentinels[i].name, victim->name);
                return 0;
            }
        }
        return err_set(reterr, -EIO, 0, 0, "no Sentinel accepted SENTINEL FAILOVER %s",
                       r->t->master_name);
    case DRILL_REDIS_PARTITION:
        /* Everything but TCP from/to the client's address is dropped in the master's
         * namespace: its replicas and the other Sentinels are cut off, the client is not. */
        n = drill__netcut(victim->netns, r->client, 0, msg, sizeof msg);
        if (n < 0)
            return err_set(reterr, n, 0, 0, "cannot cut %s off: %s", victim->name, msg);
        DRILL_PROGRESS(r,
                       "fault: %s's namespace %s cut from its replicas and the other Sentinels "
                       "(nftables); the client path from %s stays",
                       victim->name, victim->netns, r->client);
        return 0;
    default:
        return err_set(reterr, -EINVAL, 0, 0, "unknown fault");
    }
}

static void set_defaults(struct drill_redis_options *o)
{
    if (!o->interval_usec)
        o->interval_usec = 10 * USEC_PER_MSEC;
    if (!o->op_timeout_usec)
        o->op_timeout_usec = 300 * USEC_PER_MSEC;
    if (!o->wait_ms)
        o->wait_ms = 100;
    if (!o->before_usec)
        o->before_usec = 2 * USEC_PER_SEC;
    if (!o->pause_usec)
        o->pause_usec = 10 * USEC_PER_SEC;
    if (!o->settle_usec)
        o->settle_usec = 4 * USEC_PER_SEC;
    if (!o->after_usec)
        o->after_usec = USEC_PER_SEC;
    if (!o->heal_timeout_usec)
        o->heal_timeout_usec = 60 * USEC_PER_SEC;
    if (!o->cut_after_usec)
        o->cut_after_usec = 2 * USEC_PER_SEC;
}

/* Ends a pause (SIGCONT) or a partition (the cut removed) when its time has come: after
 * pause_usec, or a new master + cut_after_usec (at most CUT_MAX_USEC).  True once resumed. */
static bool maybe_resume(struct run *r, uint64_t now, const pid_t *pids, size_t n_pids)
{
    struct drill_run *res = r->res;
    const struct drill_redis_node *victim = &r->t->nodes[r->victim];
    char msg[256];

    if (r->o->fault == DRILL_REDIS_PAUSE && now >= res->fault_at + r->o->pause_usec) {
        for (size_t i = 0; i < n_pids; i++)
            (void)kill(pids[i], SIGCONT);
        DRILL_PROGRESS(r, "SIGCONT to %s", victim->name);
    } else if (r->o->fault == DRILL_REDIS_PARTITION &&
               ((res->new_leader_usec &&
                 now >= res->fault_at + res->new_leader_usec + r->o->cut_after_usec) ||
                now >= res->fault_at + CUT_MAX_USEC)) {
        int k = drill__netheal(victim->netns, msg, sizeof msg);

        DRILL_PROGRESS(r, "cut of %s removed%s%s", victim->netns, k < 0 ? ": " : "",
                       k < 0 ? msg : "");
    } else {
        return false;
    }
    res->resume_at = now;
    return true;
}

/* Fault -> whole again (and still whole settle_usec after the fault, resumed); on the way, who
 * answers role:master (two masters at once: a partition's minority master). */
static void watch(struct run *r, const pid_t *pids, size_t n_pids)
{
    struct drill_run *res = r->res;
    bool resumed = r->o->fault != DRILL_REDIS_PAUSE && r->o->fault != DRILL_REDIS_PARTITION;
    bool degraded = false;
    uint64_t deadline = res->fault_at + r->o->heal_timeout_usec +
                        (resumed                                ? 0
                         : r->o->fault == DRILL_REDIS_PARTITION ? CUT_MAX_USEC
                                                                : r->o->pause_usec);

    for (;;) {
        uint64_t now = now_usec();
        unsigned others;
        struct view v;
        bool whole;

        resumed = resumed || maybe_resume(r, now, pids, n_pids);
        cluster_view(r->t, r->victim, &v);
        whole = v.whole;
        /* Whole counts only after the fault showed (a node down, a replica unlinked, another
         * master): the first checks may come before anyone noticed. */
        degraded = degraded || !whole || v.agreed != r->victim;
        whole = whole && degraded;
        others = v.masters & ~(1U << r->victim);
        if (others && !r->other_role)
            r->other_role = now_usec() - res->fault_at;
        if (others && (v.masters & (1U << r->victim))) {
            r->both_last = now_usec() - res->fault_at;
            if (!r->both_first) {
                r->both_first = r->both_last;
                DRILL_PROGRESS(r, "two masters: %s and another node both answer role:master",
                               r->t->nodes[r->victim].name);
            }
        }
        if (v.named_other >= 0 && !res->new_leader_usec) {
            res->new_leader_usec = now_usec() - res->fault_at;
            (void)snprintf(res->new_leader, sizeof res->new_leader, "%s",
                           r->t->nodes[v.named_other].name);
            DRILL_PROGRESS(r, "Sentinel names %s master after %.2f s", res->new_leader,
                           (double)res->new_leader_usec / USEC_PER_SEC);
        }
        if (whole && !res->healed) {
            res->healed = true;
            res->heal_at = now_usec();
            res->heal_usec = res->heal_at - res->fault_at;
            DRILL_PROGRESS(r, "whole after %.1f s: master %s, every replica linked",
                           (double)res->heal_usec / USEC_PER_SEC, r->t->nodes[v.agreed].name);
        } else if (!whole && res->healed) {
            res->healed = false; /* e.g. Sentinel failed over after the restarted master was up */
            DRILL_PROGRESS(r, "not whole any more");
        }
        if (whole && resumed && now >= res->fault_at + r->o->settle_usec)
            break;
        if (now >= deadline) {
            (void)snprintf(res->note, sizeof res->note, "not whole within %.0f s",
                           (double)(deadline - res->fault_at) / USEC_PER_SEC);
            break;
        }
        sleep_usec(POLL_USEC);
    }
    if (!resumed)
        (void)maybe_resume(r, UINT64_MAX, pids, n_pids);
}

static double ms_from(uint64_t at, uint64_t base)
{
    return at >= base ? (double)(at - base) / 1000.0 : -(double)(base - at) / 1000.0;
}

/* The writer's history by node (which master acknowledged what, when), and the two masters:
 * writes the old master acknowledged after another node answered role:master.  The run's JSON
 * "evidence". */
static json_t *history_json(const struct run *r, const struct rds_op *ops, size_t n_ops,
                            const bool *lost, uint64_t event_at, uint64_t acked_gap)
{
    const struct drill_run *res = r->res;
    uint64_t other_at = r->other_role ? res->fault_at + r->other_role : UINT64_MAX;
    uint64_t old_last = 0, new_first = 0;
    unsigned after_fault[2] = { 0 }, after_other = 0, after_other_lost = 0;
    int new_node = -1;
    json_t *o;

    for (size_t i = 0; i < n_ops; i++) {
        const struct rds_op *op = &ops[i];

        if (op->result != DRILL_OP_OK)
            continue;
        if (op->node == r->victim) {
            old_last = op->done_usec;
            if (op->done_usec > res->fault_at)
                after_fault[op->wait]++;
            if (op->done_usec > other_at) {
                after_other++;
                after_other_lost += lost[i];
            }
        } else if (op->done_usec > res->fault_at && !new_first) {
            new_first = op->done_usec;
            new_node = op->node;
        }
    }
    o = json_pack("{s:s, s:s?, s:f, s:f, s:f, s:{s:i, s:i}, s:i, s:i, s:f}", "old_master",
                  r->t->nodes[r->victim].name, "new_master",
                  new_node >= 0 ? r->t->nodes[new_node].name : NULL, "old_master_last_ack_ms",
                  old_last ? ms_from(old_last, res->fault_at) : 0.0, "new_master_first_ack_ms",
                  new_first ? ms_from(new_first, res->fault_at) : -1.0, "switch_master_event_ms",
                  event_at ? ms_from(event_at, res->fault_at) : -1.0, "old_master_acks_after_fault",
                  "plain", after_fault[0], "wait", after_fault[1],
                  "old_master_acks_after_new_master", after_other,
                  "old_master_acks_after_new_master_lost", after_other_lost, "acked_gap_ms",
                  (double)acked_gap / 1000.0);
    if (!o)
        return NULL;
    json_object_set_new(o, "new_master_role_ms",
                        json_real(r->other_role ? (double)r->other_role / 1000.0 : -1.0));
    json_object_set_new(o, "both_masters_ms",
                        r->both_first ? json_pack("[f, f]", (double)r->both_first / 1000.0,
                                                  (double)r->both_last / 1000.0)
                                      : json_null());
    if (r->client[0])
        json_object_set_new(o, "client_addr", json_string(r->client));
    return o;
}

/* The run's gap counted over the acknowledged writes that survived (lost ones are no service):
 * a partitioned master acknowledges plain writes that the heal throws away. */
static uint64_t durable_gap(const struct drill_run *res, const struct rds_op *ops, size_t n_ops,
                            const bool *lost)
{
    struct drill_run tmp = { .start_at = res->start_at,
                             .fault_at = res->fault_at,
                             .end_at = res->end_at };
    uint64_t *acks = xcalloc(n_ops + 1, sizeof *acks), gap;
    size_t k = 0;

    for (size_t i = 0; i < n_ops; i++)
        if (ops[i].result == DRILL_OP_OK && !lost[i])
            acks[k++] = ops[i].done_usec;
    drill_run_set_acks(&tmp, acks, k);
    gap = tmp.gap_usec;
    drill_run_release(&tmp);
    free(acks);
    return gap;
}

static int check_target(const struct drill_redis_target *t, const struct drill_redis_options *o,
                        struct err *reterr)
{
    if ((unsigned)o->fault >= _DRILL_REDIS_FAULT_MAX || t->n_nodes < 2 || t->n_nodes > MAX_NODES ||
        t->n_sentinels == 0 || t->n_sentinels > MAX_NODES || t->supervisor <= 1)
        return err_set(reterr, -EINVAL, 0, 0, "invalid drill options");
    for (size_t i = 0; o->fault == DRILL_REDIS_PARTITION && i < t->n_nodes; i++)
        if (!t->nodes[i].netns)
            return err_set(reterr, -EINVAL, 0, 0,
                           "--fault partition needs a Redis cluster whose nodes run in network "
                           "namespaces (%s has no netns: the drill cluster of "
                           "scripts/drill-netns.sh --cluster redis)",
                           t->nodes[i].name);
    return 0;
}

int drill_redis_run(const struct drill_redis_target *t, const struct drill_redis_options *opts,
                    struct drill_run *ret, struct err *reterr)
{
    struct drill_redis_options o = *opts;
    struct drill_run res = { .tally = { { .name = "plain" }, { .name = "wait" } } };
    struct run r = { .t = t, .o = &o, .res = &res };
    struct rds_writer *w;
    struct rds_op *ops = NULL;
    uint64_t *acks, event_at, acked_gap;
    bool *lost;
    pid_t pids[16];
    size_t n_pids = 0, n_ops, k = 0;
    int master, rc;

    rc = check_target(t, &o, reterr);
    if (rc < 0)
        return rc;
    set_defaults(&o);
    (void)snprintf(res.cluster, sizeof res.cluster, "redis");
    (void)snprintf(res.fault, sizeof res.fault, "%s", drill_redis_fault_to_string(o.fault));
    (void)snprintf(r.key, sizeof r.key, "infractl-drill:%s-%llu", res.fault,
                   (unsigned long long)now_realtime_usec());

    DRILL_PROGRESS(
            &r,
            "waiting for Redis to be whole (Sentinels agree and know every replica, replicas linked)");
    if (!wait_whole(t, READY_USEC, &master))
        return err_set(reterr, -ENOENT, 0, 0,
                       "Redis is not whole (Sentinels disagree on the master, or a replica is "
                       "not linked) after %u s: not starting a drill",
                       (unsigned)(READY_USEC / USEC_PER_SEC));
    r.victim = master;
    (void)snprintf(res.victim, sizeof res.victim, "%s", t->nodes[master].name);
    if (o.fault == DRILL_REDIS_PARTITION &&
        (rc = local_addr_toward(&t->nodes[master], r.client, sizeof r.client)) < 0)
        return err_set(reterr, rc, 0, 0, "no local address toward %s (%s): %s", res.victim,
                       host_of(&t->nodes[master]), strerror(-rc));

    res.start_at = now_usec();
    w = writer_start(t, &o, r.key);
    if (!w)
        return err_set(reterr, -ENOMEM, 0, 0, "cannot start the writer threads");
    DRILL_PROGRESS(&r,
                   "writer on (RPUSH every %llu ms through Sentinel, every other one WAIT 1), "
                   "master %s",
                   (unsigned long long)(o.interval_usec / USEC_PER_MSEC), res.victim);
    sleep_usec(o.before_usec);
    if (atomic_load(&w->acked) == 0) {
        n_ops = writer_finish(w, &ops, &event_at);
        free(ops);
        return err_set(reterr, -EIO, 0, 0, "no write was acknowledged in %.1f s before the fault",
                       (double)o.before_usec / USEC_PER_SEC);
    }
    res.fault_at = now_usec();
    rc = inject(&r, pids, &n_pids, reterr);
    if (rc < 0) {
        n_ops = writer_finish(w, &ops, &event_at);
        free(ops);
        return rc;
    }
    watch(&r, pids, n_pids);
    sleep_usec(o.after_usec);
    n_ops = writer_finish(w, &ops, &event_at);
    res.end_at = now_usec();
    if (event_at > res.fault_at) /* the event is the earliest sign of the new master */
        res.new_leader_usec = event_at - res.fault_at;

    acks = xcalloc(n_ops + 1, sizeof *acks);
    for (size_t i = 0; i < n_ops; i++) {
        struct drill_tally *tl = &res.tally[ops[i].wait];

        tl->acked += ops[i].result == DRILL_OP_OK;
        tl->failed += ops[i].result == DRILL_OP_FAIL;
        tl->unknown += ops[i].result == DRILL_OP_UNKNOWN;
        if (ops[i].result == DRILL_OP_OK)
            acks[k++] = ops[i].done_usec;
    }
    drill_run_set_acks(&res, acks, k);
    acked_gap = res.gap_usec;
    free(acks);
    lost = xcalloc(n_ops + 1, sizeof *lost);
    rc = 0;
    if (res.healed && cluster_whole(t, &master)) {
        rc = final_read(&r, master, ops, n_ops, lost, reterr);
        if (rc == 0) {
            redisContext *c = rds_open(&t->nodes[master], t->password, USEC_PER_SEC);
            redisReply *rep = c ? redisCommand(c, "DEL %s", r.key) : NULL;

            if (rep)
                freeReplyObject(rep);
            if (c)
                redisFree(c);
        }
    }
    if (rc == 0 && o.fault == DRILL_REDIS_PARTITION)
        res.gap_usec = durable_gap(&res, ops, n_ops, lost);
    if (rc == 0)
        res.evidence = json_pack("{s:o}", "evidence",
                                 history_json(&r, ops, n_ops, lost, event_at, acked_gap));
    free(lost);
    free(ops);
    if (rc < 0) {
        drill_run_release(&res);
        return rc;
    }
    *ret = res;
    return 0;
}
