/* SPDX-License-Identifier: MIT */
/* drill.h - failover drills on the running local stack, the Jepsen way: a writer records every
 * operation (invoke, then ok / fail / unknown with times) through the production path, a fault
 * hits the cluster's leader, the cluster heals, and a final read on every node decides what was
 * lost (acknowledged but missing), recovered (outcome unknown but present) and the write gap
 * (last acknowledged write before the fault to the first one after).
 *
 * Ownership: targets and options are borrowed for the duration of a call; results are plain
 * values.  Library code: nothing here logs or exits; progress goes through a callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/macro.h"

struct buf;
struct drill_alerts;
struct err;
struct probe_spec;

/* Appends key='value' to a libpq conninfo string, quoted as libpq wants (aborts on OOM). */
void drill_conninfo_add(struct buf *b, const char *key, const char *value);

enum drill_pg_fault {
    DRILL_PG_CRASH,      /* SIGKILL of the leader node's whole process tree */
    DRILL_PG_PAUSE,      /* SIGSTOP of the leader's Patroni and postmaster, SIGCONT after pause */
    DRILL_PG_STOP,       /* SIGTERM of the leader's Patroni (a graceful stop) */
    DRILL_PG_PGCRASH,    /* SIGKILL of the leader's postmaster only (Patroni lives) */
    DRILL_PG_SWITCHOVER, /* planned: POST /switchover to the leader's Patroni REST API */
    DRILL_PG_DCS,        /* etcd SIGKILLed (or SIGSTOPped for pause_usec): the leader stays */
    DRILL_PG_PROXY,      /* HAProxy or PgBouncer SIGKILLed (options.proxy) */
    DRILL_PG_PARTITION,  /* the leader's namespace cut from its peers and etcd (nftables); the
                            client path (HAProxy) still reaches it.  Needs nodes with netns */
    DRILL_PG_HOST_DEATH, /* the leader's namespace cut off entirely: the lease must expire */
    _DRILL_PG_FAULT_MAX,
};

/* Which proxy the proxy fault kills. */
enum drill_pg_proxy {
    DRILL_PG_PROXY_HAPROXY,
    DRILL_PG_PROXY_PGBOUNCER,
    _DRILL_PG_PROXY_MAX,
};

const char *drill_pg_fault_to_string(enum drill_pg_fault f);
int drill_pg_fault_from_string(const char *s, enum drill_pg_fault *ret);
const char *drill_pg_proxy_to_string(enum drill_pg_proxy p);
int drill_pg_proxy_from_string(const char *s, enum drill_pg_proxy *ret);
/* True for the faults that hit the leader node (it must come back as a streaming replica);
 * false for dcs and proxy, after which the cluster must keep its leader. */
bool drill_pg_fault_hits_leader(enum drill_pg_fault f);
/* True for partition and host-death (nodes in network namespaces, cut with nftables). */
bool drill_pg_fault_is_cut(enum drill_pg_fault f);

/* One PostgreSQL node as the drill reaches it. */
struct drill_pg_node {
    const char *name;     /* the Patroni member and supervisor service name */
    uint16_t pg_port;     /* PostgreSQL */
    uint16_t rest_port;   /* Patroni's REST API */
    const char *host;     /* address of both; NULL = 127.0.0.1 */
    const char *netns;    /* its network namespace (ip netns); NULL = none (no partitions) */
    const char *user;     /* a superuser for the final read on this node */
    const char *password; /* may be NULL */
};

/* A service the cluster depends on (etcd, HAProxy, PgBouncer) as the dcs / proxy faults see
 * it: its supervisor service name and its healthcheck (healthy again = healed). */
struct drill_pg_service {
    const char *name;                /* NULL: the stack has none (those faults cannot run) */
    const struct probe_spec *health; /* borrowed; NULL = healthy once it has processes */
    uint64_t settle_usec; /* it must have run this long before it is faulted: the supervisor's
                             restart_backoff.reset_after (killed sooner, it would come back
                             after a doubled backoff, and the drill would measure that) */
};

struct drill_pg_target {
    pid_t supervisor;           /* the supervisor running the nodes (their processes) */
    const char *write_conninfo; /* libpq conninfo of the production write path (PgBouncer) */
    const char *dbname;         /* database of the drill table on the nodes */
    const struct drill_pg_node *nodes;
    size_t n_nodes;
    struct drill_pg_service dcs, haproxy, pgbouncer;
    const char *api_user, *api_password; /* Patroni REST basic auth (switchover); may be NULL */
    uint16_t alertmanager_port;          /* 0 = no alerts recorded (drill_alerts.h) */
    uint16_t prometheus_port;            /* 0 = no pending alerts recorded */
    const char *state_dir; /* the supervisor's: service logs (partition evidence); may be NULL */
};

/* A run's marks, CLOCK_MONOTONIC usec; 0 = did not happen. */
struct drill_pg_marks {
    uint64_t start, fault, resume, heal, end;
};

struct drill_pg_options {
    enum drill_pg_fault fault;
    enum drill_pg_proxy proxy;  /* proxy: which one is killed; default HAProxy */
    bool dcs_pause;             /* dcs: SIGSTOP etcd for pause_usec instead of SIGKILL */
    uint64_t interval_usec;     /* between two writes; default 10 ms */
    uint64_t op_timeout_usec;   /* a write not answered by then is "unknown"; default 2 s */
    uint64_t before_usec;       /* writes before the fault; default 2 s */
    uint64_t pause_usec;        /* pause: how long the processes stay stopped; default 20 s */
    uint64_t after_usec;        /* writes after the cluster healed; default 1 s */
    uint64_t heal_timeout_usec; /* the cluster must be whole again by then; default 90 s */
    uint64_t alerts_wait_usec;  /* after the run, keep recording alerts this long; default 0 */
    /* Progress lines ("fault: SIGSTOP pg2 (patroni 123, postmaster 456)"); NULL = none. */
    void (*progress)(const char *line, void *userdata);
    void *userdata;
    /* Called once at the end with every acknowledgement time and the run's marks, for a
     * timeline (drill_report.h); NULL = none. */
    void (*timeline)(const uint64_t *acks, size_t n, const struct drill_pg_marks *m,
                     void *userdata);
};

struct drill_pg_result {
    char old_leader[64], new_leader[64];
    unsigned acked, failed, unknown; /* operations by outcome */
    unsigned lost;                   /* acknowledged, missing on some node after healing */
    unsigned recovered;              /* unknown outcome, present after healing */
    unsigned phantom;                /* reported failed, yet present (a writer bug if > 0) */
    uint64_t gap_usec;               /* last ack before the fault -> first ack after it */
    uint64_t max_gap_usec;           /* longest time between two acks during the whole run */
    uint64_t new_leader_usec;        /* fault -> another node is leader; 0 = none seen */
    uint64_t heal_usec;              /* fault -> every node back, replicas streaming */
    uint64_t fault_at_usec;          /* CLOCK_MONOTONIC of the fault (alert event times) */
    bool healed;
    bool old_leader_rejoined;    /* the faulted node is a streaming replica again */
    bool leader_kept;            /* dcs / proxy: the leader before the fault is leader after it */
    struct drill_alerts *alerts; /* alerts seen during the run (owned: drill_alerts_free());
                                    NULL when the target names no Alertmanager */
    char note[256];              /* why the run is not clean, "" when it is */
    /* The writer's history by acknowledging node (every fault; partitions above all): */
    unsigned ack_servers;       /* distinct nodes that acknowledged writes */
    unsigned dual_primary_acks; /* writes acknowledged by a node after another one had started
                                   acknowledging (two primaries by turns: split brain) */
    char old_server[40], new_server[40]; /* "ADDRESS:PORT" */
    int64_t old_last_ack_usec;  /* last write the old primary acknowledged, from the fault */
    int64_t new_first_ack_usec; /* first write the new primary acknowledged, from the fault */
    /* partition / host-death: from the nodes' own logs (Patroni's timestamps, local time) */
    char old_demoted_at[24];  /* the old leader's first demote / read-only line; "" = none */
    char new_promoted_at[24]; /* the new leader's promotion line; "" = none */
    char old_log[1024];       /* the old leader's lines about it, as they are */
};

/* Runs one drill.  Returns 0 when it ran (the result says how the cluster did), -EINVAL for
 * bad options, -ENOENT when no leader is found, other -errno when the drill itself could not
 * run (writer could not connect, processes not found), with *reterr saying why. */
int drill_pg_run(const struct drill_pg_target *t, const struct drill_pg_options *o,
                 struct drill_pg_result *ret, struct err *reterr) WARN_UNUSED_RESULT;

/* min / median / p95 / max of n values (sorted copy); all 0 when n == 0. */
struct drill_stats {
    uint64_t min, median, p95, max;
};
void drill_stats(const uint64_t *v, size_t n, struct drill_stats *ret);
