/* SPDX-License-Identifier: MIT */
/* drill_redis.c - one Redis + Sentinel failover drill.  The writer finds the master through
 * Sentinel, and a second thread subscribes to +switch-master on a Sentinel, so that the writer
 * moves to a new master when Sentinel announces it rather than after its own next failure.  Ids
 * go into one list per run (RPUSH); even ids are followed by WAIT 1 on the same connection and
 * count as acknowledged only when a replica confirmed them ("wait"), odd ids as soon as the
 * master answered ("plain").  The final read on every node decides lost / recovered /
 * duplicates. */
#include "drill_redis.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"

#define POLL_USEC     (100 * USEC_PER_MSEC)
#define CONNECT_MSEC  200
#define READY_USEC    (60 * USEC_PER_SEC)
#define CONVERGE_USEC (10 * USEC_PER_SEC)
#define MAX_NODES     8

static const char *const fault_names[_DRILL_REDIS_FAULT_MAX] = {
    [DRILL_REDIS_CRASH] = "crash",
    [DRILL_REDIS_PAUSE] = "pause",
    [DRILL_REDIS_SWITCHOVER] = "switchover",
};

const char *drill_redis_fault_to_string(enum drill_redis_fault f)
{
    return (unsigned)f < _DRILL_REDIS_FAULT_MAX ? fault_names[f] : NULL;
}

int drill_redis_fault_from_string(const char *s, enum drill_redis_fault *ret)
{
    int i = drill__name_index(fault_names, _DRILL_REDIS_FAULT_MAX, s);

    if (i < 0)
        return i;
    *ret = (enum drill_redis_fault)i;
    return 0;
}

/* ===== Connections ===== */

static struct timeval tv_of(uint64_t usec)
{
    return (struct timeval){ .tv_sec = (time_t)(usec / USEC_PER_SEC),
                             .tv_usec = (suseconds_t)(usec % USEC_PER_SEC) };
}

/* A connection to 127.0.0.1:port, authenticated when password is set, every reply bounded by
 * timeout_usec.  NULL when it cannot be had in time. */
static redisContext *rds_open(uint16_t port, const char *password, uint64_t timeout_usec)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv_of(CONNECT_MSEC * 1000));
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

/* The master's port as Sentinel on port sp sees it; 0 when it does not answer. */
static uint16_t sentinel_master(uint16_t sp, const char *name)
{
    redisContext *c = rds_open(sp, NULL, 300 * USEC_PER_MSEC);
    redisReply *rep;
    uint64_t port = 0;

    if (!c)
        return 0;
    rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        parse_uint_range(rep->element[1]->str, 1, 65535, &port) < 0)
        port = 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return (uint16_t)port;
}

/* The master as the first Sentinel that answers sees it; 0 when none does. */
static uint16_t any_sentinel_master(const struct drill_redis_target *t)
{
    for (size_t i = 0; i < t->n_sentinels; i++) {
        uint16_t p = sentinel_master(t->sentinels[i], t->master_name);

        if (p)
            return p;
    }
    return 0;
}

static const struct drill_redis_node *node_by_port(const struct drill_redis_target *t,
                                                   uint16_t port)
{
    for (size_t i = 0; i < t->n_nodes; i++)
        if (t->nodes[i].port == port)
            return &t->nodes[i];
    return NULL;
}

/* INFO replication of one node: role, and for a replica its master's port and link state;
 * for a master the replicas online.  -EIO when the node does not answer. */
struct node_info {
    bool master;
    uint16_t master_port; /* replica: its master */
    bool link_up;         /* replica: master_link_status:up */
    unsigned online;      /* master: replicas with state=online */
};

static int node_info(const struct drill_redis_target *t, uint16_t port, struct node_info *ret)
{
    redisContext *c = rds_open(port, t->password, 300 * USEC_PER_MSEC);
    redisReply *rep;
    const char *p;
    uint64_t v;

    *ret = (struct node_info){ .master = false };
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
    p = strstr(rep->str, "master_port:");
    if (p) {
        char num[8];

        (void)snprintf(num, sizeof num, "%.*s", (int)strcspn(p + 12, "\r\n"), p + 12);
        if (parse_uint_range(num, 1, 65535, &v) == 0)
            ret->master_port = (uint16_t)v;
    }
    ret->link_up = strstr(rep->str, "master_link_status:up") != NULL;
    for (p = rep->str; (p = strstr(p, "state=online")); p++)
        ret->online++;
    freeReplyObject(rep);
    return 0;
}

/* Whole: every Sentinel names the same master, it is a master with every other node an online
 * replica, and every other node is a replica of it with its link up.  *ret_master = the
 * master's port (0 when the Sentinels do not agree or none answers). */
static bool cluster_whole(const struct drill_redis_target *t, uint16_t *ret_master)
{
    uint16_t m = 0;
    struct node_info ni;

    *ret_master = 0;
    for (size_t i = 0; i < t->n_sentinels; i++) {
        uint16_t p = sentinel_master(t->sentinels[i], t->master_name);

        if (!p || (m && p != m))
            return false;
        m = p;
    }
    *ret_master = m;
    if (!node_by_port(t, m))
        return false;
    for (size_t i = 0; i < t->n_nodes; i++) {
        if (node_info(t, t->nodes[i].port, &ni) < 0)
            return false;
        if (t->nodes[i].port == m ? !ni.master || ni.online < t->n_nodes - 1
                                  : ni.master || ni.master_port != m || !ni.link_up)
            return false;
    }
    return true;
}

/* ===== The writer and its Sentinel subscriber ===== */

struct rds_op {
    int64_t id;
    uint64_t invoke_usec, done_usec;
    enum drill_op_result result;
    bool wait; /* confirmed with WAIT 1 */
};

struct rds_writer {
    const struct drill_redis_target *t;
    const struct drill_redis_options *o;
    char key[96];
    pthread_t writer, subscriber;
    atomic_bool stop;
    atomic_uint acked;
    atomic_uint generation;        /* +1 per +switch-master event */
    atomic_uint event_port;        /* the master the last event named */
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
    uint64_t nport;
    size_t n = 0;

    (void)snprintf(copy, sizeof copy, "%s", payload);
    for (char *tok = strtok_r(copy, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
        f[n++] = tok;
    if (n != 5 || !streq(f[0], w->t->master_name) || parse_uint_range(f[4], 1, 65535, &nport) < 0)
        return;
    atomic_store(&w->event_port, (unsigned)nport);
    if (atomic_load(&w->event_at) == 0)
        atomic_store(&w->event_at, now_usec());
    atomic_fetch_add(&w->generation, 1);
}

/* Subscribes to +switch-master on one Sentinel after the other (the next one when the
 * connection breaks), reading with poll() so that stop is seen within 100 ms. */
static void *subscriber_main(void *userdata)
{
    struct rds_writer *w = userdata;
    size_t next = 0;

    while (!atomic_load(&w->stop)) {
        redisContext *c =
                rds_open(w->t->sentinels[next++ % w->t->n_sentinels], NULL, 500 * USEC_PER_MSEC);
        redisReply *rep;

        if (!c) {
            sleep_usec(POLL_USEC);
            continue;
        }
        rep = redisCommand(c, "SUBSCRIBE +switch-master");
        if (rep)
            freeReplyObject(rep);
        while (rep && !atomic_load(&w->stop)) {
            struct pollfd p = { .fd = c->fd, .events = POLLIN };
            void *r = NULL;

            if (poll(&p, 1, 100) <= 0)
                continue;
            if (redisBufferRead(c) != REDIS_OK)
                break;
            while (redisGetReplyFromReader(c, &r) == REDIS_OK && r) {
                redisReply *m = r;

                if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                    m->element[2]->type == REDIS_REPLY_STRING)
                    on_switch(w, m->element[2]->str);
                freeReplyObject(m);
                r = NULL;
            }
            if (c->err)
                break;
        }
        redisFree(c);
    }
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
            uint16_t port;

            gen = atomic_load(&w->generation);
            port = gen ? (uint16_t)atomic_load(&w->event_port) : any_sentinel_master(w->t);
            if (!port || !(c = rds_open(port, w->t->password, w->o->op_timeout_usec)))
                continue; /* no operation attempted */
        }
        op = (struct rds_op){ .id = ++id, .invoke_usec = now_usec(), .wait = id % 2 == 0 };
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
    atomic_init(&w->event_port, 0);
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
};

static bool wait_whole(const struct drill_redis_target *t, uint64_t timeout, uint16_t *master)
{
    uint64_t deadline = now_usec() + timeout;

    while (!cluster_whole(t, master)) {
        if (now_usec() >= deadline)
            return false;
        sleep_usec(POLL_USEC);
    }
    return true;
}

/* The list on one node: how often each id 1..max_id occurs (counts[id]). */
static int read_counts(const struct run *r, uint16_t port, int64_t max_id, unsigned *counts)
{
    redisContext *c = rds_open(port, r->t->password, 5 * USEC_PER_SEC);
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
 * acknowledged ids missing (replicas get CONVERGE_USEC to catch up). */
static int final_read(struct run *r, uint16_t master, const struct rds_op *ops, size_t n_ops,
                      struct err *reterr)
{
    int64_t max_id = n_ops ? ops[n_ops - 1].id : 0;
    unsigned *counts = xcalloc((size_t)max_id + 1, sizeof *counts);
    int rc = 0;

    for (size_t k = 0; k < r->t->n_nodes && rc == 0; k++) {
        const struct drill_redis_node *node = &r->t->nodes[k];
        uint64_t deadline = now_usec() + CONVERGE_USEC;
        unsigned missing[2];

        for (;;) {
            missing[0] = missing[1] = 0;
            rc = read_counts(r, node->port, max_id, counts);
            for (size_t i = 0; rc == 0 && i < n_ops; i++)
                if (ops[i].result == DRILL_OP_OK && counts[ops[i].id] == 0)
                    missing[ops[i].wait]++;
            if ((rc == 0 && missing[0] + missing[1] == 0) || now_usec() >= deadline)
                break;
            sleep_usec(POLL_USEC);
        }
        if (rc < 0) {
            rc = err_set(reterr, -EIO, 0, 0, "final read on %s failed", node->name);
            break;
        }
        for (int c = 0; c < 2; c++)
            if (missing[c] > r->res->tally[c].lost)
                r->res->tally[c].lost = missing[c];
        if (node->port != master)
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

static int inject(struct run *r, const struct drill_redis_node *victim, pid_t *pids, size_t *n_pids,
                  struct err *reterr)
{
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
            redisContext *c = rds_open(r->t->sentinels[i], NULL, USEC_PER_SEC);
            redisReply *rep = c ? redisCommand(c, "SENTINEL FAILOVER %s", r->t->master_name) : NULL;
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;

            if (rep)
                freeReplyObject(rep);
            if (c)
                redisFree(c);
            if (ok) {
                DRILL_PROGRESS(r, "fault: SENTINEL FAILOVER %s on Sentinel %u (master %s)",
                               r->t->master_name, (unsigned)r->t->sentinels[i], victim->name);
                return 0;
            }
        }
        return err_set(reterr, -EIO, 0, 0, "no Sentinel accepted SENTINEL FAILOVER %s",
                       r->t->master_name);
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
}

/* Fault -> whole again (and still whole settle_usec after the fault, resumed). */
static void watch(struct run *r, const struct drill_redis_node *victim, const pid_t *pids,
                  size_t n_pids)
{
    struct drill_run *res = r->res;
    bool resumed = r->o->fault != DRILL_REDIS_PAUSE, degraded = false;
    uint64_t deadline = res->fault_at + r->o->heal_timeout_usec + (resumed ? 0 : r->o->pause_usec);

    for (;;) {
        uint64_t now = now_usec();
        uint16_t master;
        bool whole;

        if (!resumed && now >= res->fault_at + r->o->pause_usec) {
            for (size_t i = 0; i < n_pids; i++)
                (void)kill(pids[i], SIGCONT);
            resumed = true;
            res->resume_at = now;
            DRILL_PROGRESS(r, "SIGCONT to %s", victim->name);
        }
        whole = cluster_whole(r->t, &master);
        /* Whole counts only after the fault showed (a node down, a replica unlinked, another
         * master): the first checks may come before anyone noticed. */
        degraded = degraded || !whole || master != victim->port;
        whole = whole && degraded;
        if (master && master != victim->port && !res->new_leader_usec) {
            const struct drill_redis_node *n = node_by_port(r->t, master);

            res->new_leader_usec = now_usec() - res->fault_at;
            (void)snprintf(res->new_leader, sizeof res->new_leader, "%s", n ? n->name : "?");
            DRILL_PROGRESS(r, "Sentinel names %s master after %.2f s", res->new_leader,
                           (double)res->new_leader_usec / USEC_PER_SEC);
        }
        if (whole && !res->healed) {
            res->healed = true;
            res->heal_at = now_usec();
            res->heal_usec = res->heal_at - res->fault_at;
            const struct drill_redis_node *m = node_by_port(r->t, master);

            DRILL_PROGRESS(r, "whole after %.1f s: master %s, every replica linked",
                           (double)res->heal_usec / USEC_PER_SEC, m ? m->name : "?");
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
        for (size_t i = 0; i < n_pids; i++)
            (void)kill(pids[i], SIGCONT);
}

int drill_redis_run(const struct drill_redis_target *t, const struct drill_redis_options *opts,
                    struct drill_run *ret, struct err *reterr)
{
    struct drill_redis_options o = *opts;
    struct drill_run res = { .tally = { { .name = "plain" }, { .name = "wait" } } };
    struct run r = { .t = t, .o = &o, .res = &res };
    const struct drill_redis_node *victim;
    struct rds_writer *w;
    struct rds_op *ops = NULL;
    uint64_t *acks, event_at;
    pid_t pids[16];
    size_t n_pids = 0, n_ops, k = 0;
    uint16_t master;
    int rc;

    if ((unsigned)o.fault >= _DRILL_REDIS_FAULT_MAX || t->n_nodes < 2 || t->n_nodes > MAX_NODES ||
        t->n_sentinels == 0 || t->supervisor <= 1)
        return err_set(reterr, -EINVAL, 0, 0, "invalid drill options");
    set_defaults(&o);
    (void)snprintf(res.cluster, sizeof res.cluster, "redis");
    (void)snprintf(res.fault, sizeof res.fault, "%s", drill_redis_fault_to_string(o.fault));
    (void)snprintf(r.key, sizeof r.key, "infractl-drill:%s-%llu", res.fault,
                   (unsigned long long)now_realtime_usec());

    DRILL_PROGRESS(&r, "waiting for Redis to be whole (Sentinels agree, replicas linked)");
    if (!wait_whole(t, READY_USEC, &master))
        return err_set(reterr, -ENOENT, 0, 0,
                       "Redis is not whole (Sentinels disagree on the master, or a replica is "
                       "not linked) after %u s: not starting a drill",
                       (unsigned)(READY_USEC / USEC_PER_SEC));
    victim = node_by_port(t, master);
    if (!victim)
        return err_set(reterr, -ENOENT, 0, 0, "the master (port %u) is none of the nodes",
                       (unsigned)master);
    (void)snprintf(res.victim, sizeof res.victim, "%s", victim->name);

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
    rc = inject(&r, victim, pids, &n_pids, reterr);
    if (rc < 0) {
        n_ops = writer_finish(w, &ops, &event_at);
        free(ops);
        return rc;
    }
    watch(&r, victim, pids, n_pids);
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
    free(acks);
    rc = 0;
    if (res.healed && cluster_whole(t, &master)) {
        rc = final_read(&r, master, ops, n_ops, reterr);
        if (rc == 0) {
            redisContext *c = rds_open(master, t->password, USEC_PER_SEC);
            redisReply *rep = c ? redisCommand(c, "DEL %s", r.key) : NULL;

            if (rep)
                freeReplyObject(rep);
            if (c)
                redisFree(c);
        }
    }
    free(ops);
    if (rc < 0) {
        drill_run_release(&res);
        return rc;
    }
    *ret = res;
    return 0;
}
