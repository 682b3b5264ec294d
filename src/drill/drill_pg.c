/* SPDX-License-Identifier: MIT */
/* drill_pg.c - one PostgreSQL failover drill: writer on, fault on the leader, wait until the
 * cluster is whole again with the faulted node back as a streaming replica, writer off, then
 * the final read on every node decides lost / recovered and the write gap. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_alerts.h"
#include "drill_int.h"
#include "probe/probe.h"
#include "supervise/supervise.h"

#define POLL_USEC          (100 * USEC_PER_MSEC) /* cluster checks while waiting */
#define CLUSTER_READ_USEC  (300 * USEC_PER_MSEC) /* one /cluster round */
#define READY_TIMEOUT_USEC (90 * USEC_PER_SEC)   /* the cluster whole before the drill starts */
#define CONVERGE_USEC      (15 * USEC_PER_SEC)   /* replicas replay the last writes */
#define ALERTS_POLL_USEC   USEC_PER_SEC          /* Prometheus / Alertmanager alert lists */
#define CUT_AFTER_USEC     (2 * USEC_PER_SEC)    /* a cut lasts until a new leader + this */
#define CUT_MAX_USEC       (60 * USEC_PER_SEC)   /* ... or this long when none comes */
/* Patroni answers GET /cluster from etcd, in a thread of its REST API's small pool (5), and
 * keeps trying for up to retry_timeout (5 s) when etcd does not answer.  A client that gives
 * up after 300 ms and asks again leaves the thread behind: at 10 rounds a second the pool was
 * exhausted within 2 s of an etcd freeze, the members' failsafe calls and the supervisor's
 * liveness probes queued behind the drill's, and the leader demoted itself and was fenced.
 * Around a DCS fault the drill therefore waits for Patroni's answer (one request per node in
 * flight) and asks nothing while etcd is frozen. */
#define DCS_CLUSTER_READ_USEC (8 * USEC_PER_SEC)

static const char *const fault_names[_DRILL_PG_FAULT_MAX] = {
    [DRILL_PG_CRASH] = "crash",
    [DRILL_PG_PAUSE] = "pause",
    [DRILL_PG_STOP] = "stop",
    [DRILL_PG_PGCRASH] = "pg-crash",
    [DRILL_PG_SWITCHOVER] = "switchover",
    [DRILL_PG_DCS] = "dcs",
    [DRILL_PG_PROXY] = "proxy",
    [DRILL_PG_PARTITION] = "partition",
    [DRILL_PG_HOST_DEATH] = "host-death",
};

static const char *const proxy_names[_DRILL_PG_PROXY_MAX] = {
    [DRILL_PG_PROXY_HAPROXY] = "haproxy",
    [DRILL_PG_PROXY_PGBOUNCER] = "pgbouncer",
};

DRILL_NAME_TABLE(drill_pg_fault, drill_pg_fault, fault_names, _DRILL_PG_FAULT_MAX)

DRILL_NAME_TABLE(drill_pg_proxy, drill_pg_proxy, proxy_names, _DRILL_PG_PROXY_MAX)

bool drill_pg_fault_hits_leader(enum drill_pg_fault f)
{
    return f != DRILL_PG_DCS && f != DRILL_PG_PROXY;
}

bool drill_pg_fault_is_cut(enum drill_pg_fault f)
{
    return f == DRILL_PG_PARTITION || f == DRILL_PG_HOST_DEATH;
}

/* A switchover in flight: Patroni answers the POST only once it is done, so it runs on a
 * thread of its own while the drill watches the cluster. */
struct switchover {
    const struct drill_pg_target *t;
    const char *leader;
    pthread_t thread;
    bool started;
    int r;
    char msg[256];
};

static void *switchover_thread(void *userdata)
{
    struct switchover *sw = userdata;

    sw->r = drill__cluster_switchover(sw->t, sw->leader, sw->msg, sizeof sw->msg);
    return NULL;
}

struct run {
    const struct drill_pg_target *t;
    const struct drill_pg_options *o;
    struct drill_pg_result *res;
    const struct drill_pg_service *svc; /* dcs / proxy: the service faulted; NULL otherwise */
    struct switchover sw;
    pid_t victim_main;  /* dcs / proxy: the faulted service's main process */
    const char *netns;  /* partition / host-death: the old leader's namespace, cut */
    off_t log_at[16];   /* partition / host-death: size of each node's log at the fault */
    size_t alerts_seen; /* alert events already shown as progress */
    char id[64];
};

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
    drill_conninfo_add(&b, "host", n->host ? n->host : "127.0.0.1");
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
    const char *victim = r->svc ? r->svc->name : leader;
    size_t n = 0;
    pid_t main;
    int k;

    *n_roots = 0;
    if (drill_pg_fault_is_cut(r->o->fault)) {
        const struct probe_spec *dcs = r->t->dcs.health;
        bool whole = r->o->fault == DRILL_PG_HOST_DEATH;
        char msg[256];

        for (size_t i = 0; i < r->t->n_nodes; i++)
            r->log_at[i] = drill__log_size(r->t, r->t->nodes[i].name);
        k = drill__netcut(r->netns, whole ? NULL : dcs->host, dcs->port, msg, sizeof msg);
        if (k < 0)
            return err_set(reterr, k, 0, 0, "cannot cut %s off: %s", leader, msg);
        if (whole)
            DRILL_PROGRESS(r, "fault: %s's namespace %s cut off entirely (nftables: only loopback)",
                           leader, r->netns);
        else
            DRILL_PROGRESS(
                    r,
                    "fault: %s's namespace %s cut from its peers and etcd (%s:%u); the client "
                    "path from %s stays",
                    leader, r->netns, dcs->host, (unsigned)dcs->port, dcs->host);
        return 0;
    }
    if (r->o->fault == DRILL_PG_SWITCHOVER) {
        r->sw = (struct switchover){ .t = r->t, .leader = leader };
        if (pthread_create(&r->sw.thread, NULL, switchover_thread, &r->sw) != 0)
            return err_set(reterr, -EAGAIN, 0, 0, "cannot start the switchover thread");
        r->sw.started = true;
        DRILL_PROGRESS(r, "fault: POST /switchover {\"leader\": \"%s\"} to Patroni (planned)",
                       leader);
        return 0;
    }
    k = node_processes(r->t, victim, &procs, &n, roots, n_roots, &main);
    if (k < 0) {
        free(procs);
        return err_set(reterr, k, 0, 0, "cannot find the processes of %s (%s)", victim,
                       strerror(-k));
    }
    switch (r->o->fault) {
    case DRILL_PG_DCS:
    case DRILL_PG_PROXY:
        if (r->o->fault == DRILL_PG_DCS && r->o->dcs_pause) {
            for (size_t i = 0; i < *n_roots; i++)
                (void)kill(roots[i], SIGSTOP);
            DRILL_PROGRESS(r, "fault: SIGSTOP of %s (%zu processes) for %.1f s; leader %s", victim,
                           *n_roots, (double)r->o->pause_usec / USEC_PER_SEC, leader);
            break;
        }
        for (size_t i = 0; i < n; i++)
            (void)kill(procs[i].pid, SIGKILL);
        DRILL_PROGRESS(r, "fault: SIGKILL of %s (%zu processes, main %d); leader %s", victim, n,
                       (int)main, leader);
        *n_roots = 0;
        break;
    case DRILL_PG_CRASH:
        for (size_t i = 0; i < n; i++)
            (void)kill(procs[i].pid, SIGKILL);
        DRILL_PROGRESS(r, "fault: SIGKILL of %s's %zu processes (Patroni %d, postmaster, backends)",
                       leader, n, (int)main);
        break;
    case DRILL_PG_PAUSE:
        for (size_t i = 0; i < *n_roots; i++)
            (void)kill(roots[i], SIGSTOP);
        DRILL_PROGRESS(r,
                       "fault: SIGSTOP of %s's Patroni %d and postmaster (%zu processes; %zu "
                       "backends run on) for %.1f s",
                       leader, (int)main, *n_roots, n - *n_roots,
                       (double)r->o->pause_usec / USEC_PER_SEC);
        break;
    case DRILL_PG_STOP:
        (void)kill(main, SIGTERM);
        DRILL_PROGRESS(r, "fault: SIGTERM of %s's Patroni %d", leader, (int)main);
        break;
    case DRILL_PG_PGCRASH:
        for (size_t i = 0; i < *n_roots; i++)
            if (roots[i] != main) {
                (void)kill(roots[i], SIGKILL);
                DRILL_PROGRESS(r, "fault: SIGKILL of %s's postmaster %d (Patroni %d lives)", leader,
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

/* The evidence of a partition: the old leader's own lines about losing the DCS and demoting,
 * and the time the new leader promoted itself. */
static void partition_evidence(struct run *r)
{
    static const char *const old_pats[] = { "emoting",
                                            "DCS is not accessible",
                                            "Error communicating with DCS",
                                            "shutdown request",
                                            "database system is shut down",
                                            "read-only",
                                            NULL };
    static const char *const demote_pats[] = { "emoting", NULL };
    static const char *const new_pats[] = { "promoted self to leader", NULL };
    struct drill_pg_result *res = r->res;

    for (size_t i = 0; i < r->t->n_nodes; i++) {
        const char *name = r->t->nodes[i].name;

        if (streq(name, res->old_leader)) {
            char ignored[24] = "";

            drill__log_scan(r->t, name, r->log_at[i], old_pats, res->old_log, sizeof res->old_log,
                            ignored, sizeof ignored);
            drill__log_scan(r->t, name, r->log_at[i], demote_pats, NULL, 0, res->old_demoted_at,
                            sizeof res->old_demoted_at);
        } else if (streq(name, res->new_leader)) {
            drill__log_scan(r->t, name, r->log_at[i], new_pats, NULL, 0, res->new_promoted_at,
                            sizeof res->new_promoted_at);
        }
    }
    if (res->old_demoted_at[0] || res->new_promoted_at[0])
        DRILL_PROGRESS(r, "logs: %s demoted at %s, %s promoted at %s", res->old_leader,
                       res->old_demoted_at[0] ? res->old_demoted_at : "(no line)",
                       res->new_leader[0] ? res->new_leader : "-",
                       res->new_promoted_at[0] ? res->new_promoted_at : "(no line)");
}

/* The main process of the faulted service (dcs / proxy), 0 when not found or not one. */
static pid_t victim_main(const struct run *r)
{
    struct sv_process *procs = NULL;
    pid_t roots[8], main = 0;
    size_t n = 0, n_roots = 0;

    if (r->svc && node_processes(r->t, r->svc->name, &procs, &n, roots, &n_roots, &main) < 0)
        main = 0;
    free(procs);
    return main;
}

/* Waits until the service to fault has run r->svc->settle_usec (its restart backoff reset). */
static void wait_settled(struct run *r)
{
    long ticks = sysconf(_SC_CLK_TCK);
    bool said = false;

    for (uint64_t until = now_usec() + 5 * r->svc->settle_usec + READY_TIMEOUT_USEC;
         now_usec() < until; sleep_usec(POLL_USEC * 5)) {
        struct sv_process *procs = NULL;
        pid_t roots[8], main = 0;
        size_t n = 0, n_roots = 0;
        uint64_t started = 0, up;
        struct timespec ts;

        if (node_processes(r->t, r->svc->name, &procs, &n, roots, &n_roots, &main) == 0)
            for (size_t i = 0; i < n; i++)
                if (procs[i].pid == main)
                    started = procs[i].start * USEC_PER_SEC / (uint64_t)(ticks > 0 ? ticks : 100);
        free(procs);
        if (!started || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
            continue;
        up = (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
        up = up > started ? up - started : 0;
        if (up >= r->svc->settle_usec)
            return;
        if (!said)
            DRILL_PROGRESS(
                    r, "waiting %.1f s until %s has run %.0f s (its restart backoff resets then)",
                    (double)(r->svc->settle_usec - up) / USEC_PER_SEC, r->svc->name,
                    (double)r->svc->settle_usec / USEC_PER_SEC);
        said = true;
    }
}

/* Alert events not yet shown, as progress lines with their time relative to the fault. */
static void show_alerts(struct run *r)
{
    const struct drill_alert_event *ev;
    size_t n;

    if (!r->res->alerts)
        return;
    n = drill_alerts_events(r->res->alerts, &ev);
    for (; r->alerts_seen < n; r->alerts_seen++) {
        const struct drill_alert_event *e = &ev[r->alerts_seen];

        DRILL_PROGRESS(r, "alert: %s%s%s %s (%s) at %+.1f s", e->name, e->where[0] ? " on " : "",
                       e->where, e->state, e->source,
                       ((double)e->at_usec - (double)r->res->fault_at_usec) / USEC_PER_SEC);
    }
}

/* After the run: keeps recording alerts until `until` (options.alerts_wait), then stops. */
static void watch_alerts_until(struct run *r, uint64_t until)
{
    if (!r->res->alerts)
        return;
    if (now_usec() < until)
        DRILL_PROGRESS(r, "recording alerts for %.0f s more",
                       (double)(until - now_usec()) / USEC_PER_SEC);
    while (now_usec() < until) {
        show_alerts(r);
        sleep_usec(POLL_USEC * 5);
    }
    drill_alerts_stop(r->res->alerts);
    show_alerts(r);
}

/* Leader faults: healed when the cluster is whole with the old leader a streaming replica
 * again (and still so after a paused node got SIGCONT).  True when the wait is over. */
static bool step_node(struct run *r, const struct drill_cluster *c, bool resumed, uint64_t fault)
{
    struct drill_pg_result *res = r->res;
    const struct drill_member *old = drill__cluster_member(c, res->old_leader);
    const char *leader = drill__cluster_leader(c);
    bool whole = drill__cluster_whole(r->t, c);
    uint64_t now = now_usec();

    if (whole && old && !streq(old->role, "leader")) {
        if (!res->healed) {
            res->healed = res->old_leader_rejoined = true;
            res->heal_usec = now - fault;
            DRILL_PROGRESS(r, "healed after %.1f s: %s is a streaming replica of %s",
                           (double)res->heal_usec / USEC_PER_SEC, res->old_leader, leader);
        }
        return resumed; /* and still whole after the paused processes got SIGCONT */
    }
    if (resumed && res->healed && now >= fault + r->o->pause_usec + USEC_PER_SEC) {
        res->healed = res->old_leader_rejoined = false; /* broken again by the resume */
        (void)snprintf(res->note, sizeof res->note, "the cluster broke after SIGCONT");
    }
    if (resumed && whole && old && streq(old->role, "leader") && now >= fault + 5 * USEC_PER_SEC &&
        !(r->sw.started && r->sw.r == 0 && !res->new_leader[0])) {
        res->healed = true; /* whole again, but the old leader kept its key */
        res->heal_usec = now - fault;
        (void)snprintf(res->note, sizeof res->note, "no failover: %s stayed leader",
                       res->old_leader);
        return true;
    }
    return false;
}

/* dcs / proxy: healed when the service is back (restarted: a new main process; or resumed)
 * and healthy, and the cluster whole; the leader should be the one from before the fault. */
static bool step_service(struct run *r, const struct drill_cluster *c, bool resumed, uint64_t fault)
{
    struct drill_pg_result *res = r->res;
    const char *leader = drill__cluster_leader(c);
    pid_t main;

    if (!resumed || !drill__cluster_whole(r->t, c))
        return false;
    main = victim_main(r);
    if (main <= 0 || (!r->o->dcs_pause && main == r->victim_main))
        return false; /* not restarted yet */
    if (r->svc->health && probe_run(r->svc->health, USEC_PER_SEC, NULL, NULL) != 0)
        return false;
    res->heal_usec = now_usec() - fault;
    res->healed = true;
    res->leader_kept = leader && streq(leader, res->old_leader);
    if (!res->leader_kept)
        (void)snprintf(res->note, sizeof res->note, "the leader changed: %s -> %s", res->old_leader,
                       leader ? leader : "none");
    DRILL_PROGRESS(r, "healed after %.1f s: %s is back (main process %d) and healthy; leader %s",
                   (double)res->heal_usec / USEC_PER_SEC, r->svc->name, (int)main, leader);
    return true;
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

    /* Retried like the first write: PgBouncer may refuse logins for a moment after a fault. */
    for (uint64_t until = now_usec() + CONVERGE_USEC;; sleep_usec(POLL_USEC)) {
        n = pg_read_ids(r->t->write_conninfo, r->id, &ids, msg, sizeof msg);
        if (n >= 0 || now_usec() >= until)
            break;
    }
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

    if ((unsigned)o.fault >= _DRILL_PG_FAULT_MAX || (unsigned)o.proxy >= _DRILL_PG_PROXY_MAX ||
        t->n_nodes == 0 || t->supervisor <= 1)
        return err_set(reterr, -EINVAL, 0, 0, "invalid drill options");
    if (o.fault == DRILL_PG_DCS)
        r.svc = &t->dcs;
    else if (o.fault == DRILL_PG_PROXY)
        r.svc = o.proxy == DRILL_PG_PROXY_HAPROXY ? &t->haproxy : &t->pgbouncer;
    if (drill_pg_fault_is_cut(o.fault)) {
        for (size_t i = 0; i < t->n_nodes; i++)
            if (!t->nodes[i].netns)
                return err_set(reterr, -EINVAL, 0, 0,
                               "--fault %s needs a cluster whose nodes run in network "
                               "namespaces (%s has no netns: scripts/drill-netns.sh up)",
                               drill_pg_fault_to_string(o.fault), t->nodes[i].name);
        if (!t->dcs.health || !t->dcs.health->host)
            return err_set(reterr, -EINVAL, 0, 0,
                           "--fault %s needs the etcd service's healthcheck host and port",
                           drill_pg_fault_to_string(o.fault));
    }
    if (r.svc && !r.svc->name)
        return err_set(reterr, -ENOENT, 0, 0, "the stack has no %s service to fault",
                       o.fault == DRILL_PG_DCS ? "etcd" : drill_pg_proxy_to_string(o.proxy));
    set_defaults(&o);
    (void)snprintf(r.id, sizeof r.id, "%s-%llu", drill_pg_fault_to_string(o.fault),
                   (unsigned long long)now_realtime_usec());

    DRILL_PROGRESS(&r, "waiting for the cluster to be whole (one leader, replicas streaming)");
    if (!wait_whole(t, READY_TIMEOUT_USEC, &c))
        return err_set(reterr, -ENOENT, 0, 0,
                       "the cluster is not whole (no leader, or a replica not streaming) after "
                       "%u s: not starting a drill",
                       (unsigned)(READY_TIMEOUT_USEC / USEC_PER_SEC));
    leader = drill__cluster_leader(&c);
    (void)snprintf(res.old_leader, sizeof res.old_leader, "%s", leader);
    for (size_t i = 0; i < t->n_nodes; i++)
        if (streq(t->nodes[i].name, leader))
            r.netns = t->nodes[i].netns;
    /* Through the write path, retried: right after a previous run PgBouncer may still refuse
     * logins for a moment (server_login_retry) while HAProxy re-checks the primary. */
    for (uint64_t until = now_usec() + READY_TIMEOUT_USEC;; sleep_usec(POLL_USEC * 5)) {
        rc = pg_exec_simple(t->write_conninfo,
                            "CREATE TABLE IF NOT EXISTS drill_writes (run text NOT NULL, id "
                            "bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY "
                            "(run, id))",
                            msg, sizeof msg);
        if (rc == 0 || now_usec() >= until)
            break;
    }
    if (rc < 0)
        return err_set(reterr, rc, 0, 0, "cannot create the drill table: %s", msg);

    if (r.svc && r.svc->settle_usec)
        wait_settled(&r);
    start = now_usec();
    w = pg_writer_start(t->write_conninfo, r.id, o.interval_usec, o.op_timeout_usec);
    if (!w)
        return err_set(reterr, -ENOMEM, 0, 0, "cannot start the writer thread");
    res.alerts = drill_alerts_start(t->prometheus_port, t->alertmanager_port, ALERTS_POLL_USEC);
    DRILL_PROGRESS(&r, "writer on (one INSERT every %llu ms through the write path), leader %s",
                   (unsigned long long)(o.interval_usec / USEC_PER_MSEC), res.old_leader);
    sleep_usec(o.before_usec);
    if (pg_writer_acked(w) == 0) {
        n_ops = pg_writer_finish(w, &ops);
        free(ops);
        drill_alerts_free(res.alerts);
        return err_set(reterr, -EIO, 0, 0, "no write was acknowledged in %.1f s before the fault",
                       (double)o.before_usec / USEC_PER_SEC);
    }

    rc = inject(&r, res.old_leader, roots, &n_roots, reterr);
    fault = now_usec();
    if (rc < 0) {
        n_ops = pg_writer_finish(w, &ops);
        free(ops);
        drill_alerts_free(res.alerts);
        return rc;
    }
    r.victim_main = victim_main(&r);
    res.fault_at_usec = fault;
    resumed = !(o.fault == DRILL_PG_PAUSE || (o.fault == DRILL_PG_DCS && o.dcs_pause) ||
                drill_pg_fault_is_cut(o.fault));
    deadline = fault + o.heal_timeout_usec +
               (resumed                          ? 0
                : drill_pg_fault_is_cut(o.fault) ? CUT_MAX_USEC
                                                 : o.pause_usec);
    for (;;) {
        uint64_t now = now_usec();

        if (!resumed && drill_pg_fault_is_cut(o.fault) &&
            ((res.new_leader_usec && now >= fault + res.new_leader_usec + CUT_AFTER_USEC) ||
             now >= fault + CUT_MAX_USEC)) {
            rc = drill__netheal(r.netns, msg, sizeof msg);
            resumed = true;
            DRILL_PROGRESS(&r, "cut of %s removed%s%s", r.netns, rc < 0 ? ": " : "",
                           rc < 0 ? msg : "");
        } else if (!resumed && !drill_pg_fault_is_cut(o.fault) && now >= fault + o.pause_usec) {
            for (size_t i = 0; i < n_roots; i++)
                (void)kill(roots[i], SIGCONT);
            resumed = true;
            if (r.svc)
                DRILL_PROGRESS(&r, "SIGCONT to %s", r.svc->name);
            else
                DRILL_PROGRESS(&r,
                               "SIGCONT to %s's Patroni and postmaster (gone if they were fenced)",
                               res.old_leader);
        }
        show_alerts(&r);
        if (o.fault == DRILL_PG_DCS && !resumed) {
            /* etcd frozen: a /cluster read could only hang in Patroni (above) */
        } else if (drill__cluster_read(
                           t, o.fault == DRILL_PG_DCS ? DCS_CLUSTER_READ_USEC : CLUSTER_READ_USEC,
                           &c) == 0) {
            leader = drill__cluster_leader(&c);
            if (leader && !streq(leader, res.old_leader) && res.new_leader_usec == 0) {
                res.new_leader_usec = now_usec() - fault;
                (void)snprintf(res.new_leader, sizeof res.new_leader, "%s", leader);
                DRILL_PROGRESS(&r, "new leader %s after %.2f s", leader,
                               (double)res.new_leader_usec / USEC_PER_SEC);
            }
            if (r.svc ? step_service(&r, &c, resumed, fault) : step_node(&r, &c, resumed, fault))
                break;
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
    if (!resumed && drill_pg_fault_is_cut(o.fault) && drill__netheal(r.netns, msg, sizeof msg) < 0)
        DRILL_PROGRESS(&r, "cannot remove the cut of %s: %s", r.netns, msg);
    if (drill_pg_fault_is_cut(o.fault))
        partition_evidence(&r);
    if (r.sw.started) {
        (void)pthread_join(r.sw.thread, NULL);
        /* Patroni may drop the connection while it demotes: the cluster view decides. */
        if (r.sw.r < 0 && !res.new_leader[0] && !res.note[0])
            (void)snprintf(res.note, sizeof res.note, "switchover failed: %.200s", r.sw.msg);
        DRILL_PROGRESS(&r, "Patroni's answer to the switchover: %s",
                       r.sw.r == 0 ? "done (HTTP 200)" : r.sw.msg);
    }
    sleep_usec(o.after_usec);
    end = now_usec();
    n_ops = pg_writer_finish(w, &ops);
    watch_alerts_until(&r, now_usec() + o.alerts_wait_usec);
    for (size_t i = 0; i < n_ops; i++) {
        res.acked += ops[i].result == DRILL_OP_OK;
        res.failed += ops[i].result == DRILL_OP_FAIL;
        res.unknown += ops[i].result == DRILL_OP_UNKNOWN;
    }
    gaps(ops, n_ops, fault, end, &res);
    drill__ack_history(ops, n_ops, fault, &res);
    if (res.dual_primary_acks)
        (void)snprintf(res.note, sizeof res.note,
                       "split brain: %u writes acknowledged by %s after %s had taken over",
                       res.dual_primary_acks, res.old_server, res.new_server);
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
