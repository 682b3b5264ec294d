/* SPDX-License-Identifier: MIT */
/* drill_pg.c - one PostgreSQL failover drill: writer on, fault on the leader, wait until the
 * cluster is whole again with the faulted node back as a streaming replica, writer off, then
 * the final read on every node decides lost / recovered and the write gap. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"
#include "supervise/supervise.h"

#define POLL_USEC          (100 * USEC_PER_MSEC) /* cluster checks while waiting */
#define CLUSTER_READ_USEC  (300 * USEC_PER_MSEC) /* one /cluster round */
#define READY_TIMEOUT_USEC (90 * USEC_PER_SEC)   /* the cluster whole before the drill starts */
#define CONVERGE_USEC      (15 * USEC_PER_SEC)   /* replicas replay the last writes */

static const char *const fault_names[_DRILL_PG_FAULT_MAX] = {
    [DRILL_PG_CRASH] = "crash",
    [DRILL_PG_PAUSE] = "pause",
    [DRILL_PG_STOP] = "stop",
    [DRILL_PG_PGCRASH] = "pg-crash",
};

const char *drill_pg_fault_to_string(enum drill_pg_fault f)
{
    return (unsigned)f < _DRILL_PG_FAULT_MAX ? fault_names[f] : NULL;
}

int drill_pg_fault_from_string(const char *s, enum drill_pg_fault *ret)
{
    for (unsigned i = 0; i < _DRILL_PG_FAULT_MAX; i++)
        if (streq(s, fault_names[i])) {
            *ret = (enum drill_pg_fault)i;
            return 0;
        }
    return -EINVAL;
}

struct run {
    const struct drill_pg_target *t;
    const struct drill_pg_options *o;
    struct drill_pg_result *res;
    char id[64];
};

static void progress(const struct run *r, const char *fmt, ...) PRINTF(2, 3);
static void progress(const struct run *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!r->o->progress)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->o->progress(line, r->o->userdata);
}

void drill_conninfo_add(struct buf *b, const char *key, const char *value)
{
    if (buf_appendf(b, "%s%s='", b->len ? " " : "", key) < 0)
        BUG("out of memory");
    for (const char *p = value; *p; p++)
        if ((*p == '\'' || *p == '\\' ? buf_append(b, "\\", 1) : 0) < 0 || buf_append(b, p, 1) < 0)
            BUG("out of memory");
    if (buf_puts(b, "'") < 0)
        BUG("out of memory");
}

static char *node_conninfo(const struct drill_pg_target *t, const struct drill_pg_node *n)
{
    struct buf b = BUF_INIT(0);
    char port[8];

    (void)snprintf(port, sizeof port, "%u", (unsigned)n->pg_port);
    drill_conninfo_add(&b, "host", "127.0.0.1");
    drill_conninfo_add(&b, "port", port);
    drill_conninfo_add(&b, "dbname", t->dbname);
    drill_conninfo_add(&b, "user", n->user);
    if (n->password)
        drill_conninfo_add(&b, "password", n->password);
    drill_conninfo_add(&b, "connect_timeout", "2");
    drill_conninfo_add(&b, "application_name", "infractl-drill");
    return buf_detach(&b, NULL);
}

/* Waits until the cluster is whole (timeout), filling *c with the last view. */
static bool wait_whole(const struct drill_pg_target *t, uint64_t timeout, struct drill_cluster *c)
{
    uint64_t deadline = now_usec() + timeout;

    for (;;) {
        if (drill__cluster_read(t, CLUSTER_READ_USEC, c) == 0 && drill__cluster_whole(t, c))
            return true;
        if (now_usec() >= deadline)
            return false;
        sleep_usec(POLL_USEC);
    }
}

/* The node's processes; *roots gets those whose parent is not one of them (Patroni and its
 * postmaster), *main the one that started first (Patroni, which starts the postmaster). */
static int node_processes(const struct drill_pg_target *t, const char *node,
                          struct sv_process **ret, size_t *ret_n, pid_t *roots, size_t *n_roots,
                          pid_t *main)
{
    struct sv_process *p = NULL;
    int n = sv_service_processes(t->supervisor, node, &p);
    uint64_t first = UINT64_MAX;

    if (n < 0)
        return n;
    *n_roots = 0;
    *main = 0;
    for (int i = 0; i < n; i++) {
        bool parent_inside = false;

        for (int k = 0; k < n && !parent_inside; k++)
            parent_inside = p[k].pid == p[i].ppid;
        if (parent_inside || *n_roots == 8)
            continue;
        roots[(*n_roots)++] = p[i].pid;
        if (p[i].start < first) {
            first = p[i].start;
            *main = p[i].pid;
        }
    }
    *ret = p;
    *ret_n = (size_t)n;
    return *main > 0 ? 0 : -ESRCH;
}

static int inject(struct run *r, const char *leader, pid_t *roots, size_t *n_roots,
                  struct err *reterr)
{
    struct sv_process *procs = NULL;
    size_t n = 0;
    pid_t main;
    int k;

    k = node_processes(r->t, leader, &procs, &n, roots, n_roots, &main);
    if (k < 0) {
        free(procs);
        return err_set(reterr, k, 0, 0, "cannot find the processes of %s (%s)", leader,
                       strerror(-k));
    }
    switch (r->o->fault) {
    case DRILL_PG_CRASH:
        for (size_t i = 0; i < n; i++)
            (void)kill(procs[i].pid, SIGKILL);
        progress(r, "fault: SIGKILL of %s's %zu processes (Patroni %d, postmaster, backends)",
                 leader, n, (int)main);
        break;
    case DRILL_PG_PAUSE:
        for (size_t i = 0; i < *n_roots; i++)
            (void)kill(roots[i], SIGSTOP);
        progress(r,
                 "fault: SIGSTOP of %s's Patroni %d and postmaster (%zu processes; %zu "
                 "backends run on) for %.1f s",
                 leader, (int)main, *n_roots, n - *n_roots,
                 (double)r->o->pause_usec / USEC_PER_SEC);
        break;
    case DRILL_PG_STOP:
        (void)kill(main, SIGTERM);
        progress(r, "fault: SIGTERM of %s's Patroni %d", leader, (int)main);
        break;
    case DRILL_PG_PGCRASH:
        for (size_t i = 0; i < *n_roots; i++)
            if (roots[i] != main) {
                (void)kill(roots[i], SIGKILL);
                progress(r, "fault: SIGKILL of %s's postmaster %d (Patroni %d lives)", leader,
                         (int)roots[i], (int)main);
            }
        *n_roots = 0;
        break;
    default:
        break;
    }
    free(procs);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Write gaps from the acknowledgement times: the longest time without an acknowledged write
 * from the last one before the fault to the end of the run (a paused leader's backends may
 * go on acknowledging for a while: the outage is when they stop), and the longest overall. */
static void gaps(const struct drill_op *ops, size_t n, uint64_t fault, uint64_t end,
                 struct drill_pg_result *res)
{
    uint64_t *acks = xcalloc(n + 1, sizeof *acks);
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (ops[i].result == DRILL_OP_OK)
            acks[k++] = ops[i].done_usec;
    qsort(acks, k, sizeof *acks, cmp_u64);
    for (size_t i = 1; i < k; i++) {
        uint64_t d = acks[i] - acks[i - 1];

        if (d > res->max_gap_usec)
            res->max_gap_usec = d;
        if (acks[i] >= fault && d > res->gap_usec)
            res->gap_usec = d;
    }
    if (k > 0 && end > acks[k - 1] && acks[k - 1] >= fault && end - acks[k - 1] > res->gap_usec)
        res->gap_usec = end - acks[k - 1]; /* nothing acknowledged until the end */
    if (k > 0 && acks[k - 1] < fault)
        res->gap_usec = end - acks[k - 1];
    free(acks);
}

static void timeline(const struct drill_pg_options *o, const struct drill_op *ops, size_t n,
                     const struct drill_pg_marks *m)
{
    uint64_t *acks = xcalloc(n + 1, sizeof *acks);
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (ops[i].result == DRILL_OP_OK)
            acks[k++] = ops[i].done_usec;
    o->timeline(acks, k, m, o->userdata);
    free(acks);
}

static bool contains(const int64_t *ids, int n, int64_t id)
{
    int lo = 0, hi = n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;

        if (ids[mid] == id)
            return true;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

/* The final read: every acknowledged id on every node (replicas get time to replay). */
static int final_read(struct run *r, const struct drill_op *ops, size_t n_ops, struct err *reterr)
{
    struct drill_pg_result *res = r->res;
    char msg[256];
    int64_t *ids = NULL;
    int n, rc = 0;

    n = pg_read_ids(r->t->write_conninfo, r->id, &ids, msg, sizeof msg);
    if (n < 0)
        return err_set(reterr, -EIO, 0, 0, "final read through the write path failed: %s", msg);
    for (size_t i = 0; i < n_ops; i++) {
        bool present = contains(ids, n, ops[i].id);

        if (ops[i].result == DRILL_OP_UNKNOWN && present)
            res->recovered++;
        if (ops[i].result == DRILL_OP_FAIL && present)
            res->phantom++;
    }
    free(ids);
    for (size_t k = 0; k < r->t->n_nodes; k++) {
        const struct drill_pg_node *node = &r->t->nodes[k];
        char *ci = node_conninfo(r->t, node);
        uint64_t deadline = now_usec() + CONVERGE_USEC;
        unsigned missing;

        for (;;) {
            missing = 0;
            ids = NULL;
            n = pg_read_ids(ci, r->id, &ids, msg, sizeof msg);
            for (size_t i = 0; n >= 0 && i < n_ops; i++)
                if (ops[i].result == DRILL_OP_OK && !contains(ids, n, ops[i].id))
                    missing++;
            free(ids);
            if ((n >= 0 && missing == 0) || now_usec() >= deadline)
                break;
            sleep_usec(POLL_USEC);
        }
        free(ci);
        if (n < 0) {
            rc = err_set(reterr, -EIO, 0, 0, "final read on %s failed: %s", node->name, msg);
            break;
        }
        if (missing > res->lost)
            res->lost = missing;
        if (missing)
            (void)snprintf(res->note, sizeof res->note, "%u acknowledged writes missing on %s",
                           missing, node->name);
    }
    return rc;
}

static void set_defaults(struct drill_pg_options *o)
{
    if (!o->interval_usec)
        o->interval_usec = 10 * USEC_PER_MSEC;
    if (!o->op_timeout_usec)
        o->op_timeout_usec = 2 * USEC_PER_SEC;
    if (!o->before_usec)
        o->before_usec = 2 * USEC_PER_SEC;
    if (!o->pause_usec)
        o->pause_usec = 20 * USEC_PER_SEC;
    if (!o->after_usec)
        o->after_usec = USEC_PER_SEC;
    if (!o->heal_timeout_usec)
        o->heal_timeout_usec = 90 * USEC_PER_SEC;
}

int drill_pg_run(const struct drill_pg_target *t, const struct drill_pg_options *opts,
                 struct drill_pg_result *ret, struct err *reterr)
{
    struct drill_pg_options o = *opts;
    struct drill_pg_result res = { .acked = 0 };
    struct run r = { .t = t, .o = &o, .res = &res };
    struct drill_cluster c;
    struct pg_writer *w = NULL;
    struct drill_op *ops = NULL;
    pid_t roots[8];
    size_t n_roots = 0, n_ops;
    uint64_t fault, deadline, end, start;
    bool resumed;
    const char *leader;
    char msg[256], sql[256];
    int rc;

    if ((unsigned)o.fault >= _DRILL_PG_FAULT_MAX || t->n_nodes == 0 || t->supervisor <= 1)
        return err_set(reterr, -EINVAL, 0, 0, "invalid drill options");
    set_defaults(&o);
    (void)snprintf(r.id, sizeof r.id, "%s-%llu", drill_pg_fault_to_string(o.fault),
                   (unsigned long long)now_realtime_usec());

    progress(&r, "waiting for the cluster to be whole (one leader, replicas streaming)");
    if (!wait_whole(t, READY_TIMEOUT_USEC, &c))
        return err_set(reterr, -ENOENT, 0, 0,
                       "the cluster is not whole (no leader, or a replica not streaming) after "
                       "%u s: not starting a drill",
                       (unsigned)(READY_TIMEOUT_USEC / USEC_PER_SEC));
    leader = drill__cluster_leader(&c);
    (void)snprintf(res.old_leader, sizeof res.old_leader, "%s", leader);
    rc = pg_exec_simple(t->write_conninfo,
                        "CREATE TABLE IF NOT EXISTS drill_writes (run text NOT NULL, id bigint "
                        "NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, id))",
                        msg, sizeof msg);
    if (rc < 0)
        return err_set(reterr, rc, 0, 0, "cannot create the drill table: %s", msg);

    start = now_usec();
    w = pg_writer_start(t->write_conninfo, r.id, o.interval_usec, o.op_timeout_usec);
    if (!w)
        return err_set(reterr, -ENOMEM, 0, 0, "cannot start the writer thread");
    progress(&r, "writer on (one INSERT every %llu ms through the write path), leader %s",
             (unsigned long long)(o.interval_usec / USEC_PER_MSEC), res.old_leader);
    sleep_usec(o.before_usec);
    if (pg_writer_acked(w) == 0) {
        n_ops = pg_writer_finish(w, &ops);
        free(ops);
        return err_set(reterr, -EIO, 0, 0, "no write was acknowledged in %.1f s before the fault",
                       (double)o.before_usec / USEC_PER_SEC);
    }

    rc = inject(&r, res.old_leader, roots, &n_roots, reterr);
    fault = now_usec();
    if (rc < 0) {
        n_ops = pg_writer_finish(w, &ops);
        free(ops);
        return rc;
    }
    resumed = o.fault != DRILL_PG_PAUSE;
    deadline = fault + o.heal_timeout_usec + (resumed ? 0 : o.pause_usec);
    for (;;) {
        uint64_t now = now_usec();
        const struct drill_member *old;

        if (!resumed && now >= fault + o.pause_usec) {
            for (size_t i = 0; i < n_roots; i++)
                (void)kill(roots[i], SIGCONT);
            resumed = true;
            progress(&r, "SIGCONT to %s's Patroni and postmaster (gone if they were fenced)",
                     res.old_leader);
        }
        if (drill__cluster_read(t, CLUSTER_READ_USEC, &c) == 0) {
            leader = drill__cluster_leader(&c);
            if (leader && !streq(leader, res.old_leader) && res.new_leader_usec == 0) {
                res.new_leader_usec = now_usec() - fault;
                (void)snprintf(res.new_leader, sizeof res.new_leader, "%s", leader);
                progress(&r, "new leader %s after %.2f s", leader,
                         (double)res.new_leader_usec / USEC_PER_SEC);
            }
            old = drill__cluster_member(&c, res.old_leader);
            if (drill__cluster_whole(t, &c) && old && !streq(old->role, "leader")) {
                if (!res.healed) {
                    res.healed = res.old_leader_rejoined = true;
                    res.heal_usec = now_usec() - fault;
                    progress(&r, "healed after %.1f s: %s is a streaming replica of %s",
                             (double)res.heal_usec / USEC_PER_SEC, res.old_leader, leader);
                }
                if (resumed)
                    break; /* and still whole after the paused processes got SIGCONT */
            } else if (resumed && res.healed && now >= fault + o.pause_usec + USEC_PER_SEC) {
                res.healed = res.old_leader_rejoined = false; /* broken again by the resume */
                (void)snprintf(res.note, sizeof res.note, "the cluster broke after SIGCONT");
            }
            if (resumed && drill__cluster_whole(t, &c) && old && streq(old->role, "leader") &&
                now >= fault + 5 * USEC_PER_SEC) {
                res.healed = true; /* whole again, but the old leader kept its key */
                res.heal_usec = now_usec() - fault;
                (void)snprintf(res.note, sizeof res.note, "no failover: %s stayed leader",
                               res.old_leader);
                break;
            }
        }
        if (now >= deadline) {
            (void)snprintf(res.note, sizeof res.note, "not healed within %.0f s",
                           (double)(deadline - fault) / USEC_PER_SEC);
            break;
        }
        sleep_usec(POLL_USEC);
    }
    if (!resumed)
        for (size_t i = 0; i < n_roots; i++)
            (void)kill(roots[i], SIGCONT);
    sleep_usec(o.after_usec);
    end = now_usec();
    n_ops = pg_writer_finish(w, &ops);
    for (size_t i = 0; i < n_ops; i++) {
        res.acked += ops[i].result == DRILL_OP_OK;
        res.failed += ops[i].result == DRILL_OP_FAIL;
        res.unknown += ops[i].result == DRILL_OP_UNKNOWN;
    }
    gaps(ops, n_ops, fault, end, &res);
    if (o.timeline)
        timeline(&o, ops, n_ops,
                 &(struct drill_pg_marks){
                         .start = start,
                         .fault = fault,
                         .resume = o.fault == DRILL_PG_PAUSE ? fault + o.pause_usec : 0,
                         .heal = res.healed ? fault + res.heal_usec : 0,
                         .end = end });
    rc = res.healed ? final_read(&r, ops, n_ops, reterr) : 0;
    free(ops);
    (void)snprintf(sql, sizeof sql, "DELETE FROM drill_writes WHERE run = '%s'", r.id);
    if (res.healed)
        (void)pg_exec_simple(t->write_conninfo, sql, msg, sizeof msg);
    *ret = res;
    return rc;
}

void drill_stats(const uint64_t *v, size_t n, struct drill_stats *ret)
{
    uint64_t *s;

    *ret = (struct drill_stats){ 0 };
    if (n == 0)
        return;
    s = xcalloc(n, sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    ret->min = s[0];
    ret->max = s[n - 1];
    ret->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    /* nearest rank */
    ret->p95 = s[(size_t)((95 * n + 99) / 100) - 1];
    free(s);
}
