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
struct err;

/* Appends key='value' to a libpq conninfo string, quoted as libpq wants (aborts on OOM). */
void drill_conninfo_add(struct buf *b, const char *key, const char *value);

enum drill_pg_fault {
    DRILL_PG_CRASH,   /* SIGKILL of the leader node's whole process tree */
    DRILL_PG_PAUSE,   /* SIGSTOP of the leader's Patroni and postmaster, SIGCONT after pause */
    DRILL_PG_STOP,    /* SIGTERM of the leader's Patroni (a graceful stop) */
    DRILL_PG_PGCRASH, /* SIGKILL of the leader's postmaster only (Patroni lives) */
    _DRILL_PG_FAULT_MAX,
};

const char *drill_pg_fault_to_string(enum drill_pg_fault f);
int drill_pg_fault_from_string(const char *s, enum drill_pg_fault *ret);

/* One PostgreSQL node as the drill reaches it. */
struct drill_pg_node {
    const char *name;     /* the Patroni member and supervisor service name */
    uint16_t pg_port;     /* PostgreSQL on 127.0.0.1 */
    uint16_t rest_port;   /* Patroni's REST API on 127.0.0.1 */
    const char *user;     /* a superuser for the final read on this node */
    const char *password; /* may be NULL */
};

struct drill_pg_target {
    pid_t supervisor;           /* the supervisor running the nodes (their processes) */
    const char *write_conninfo; /* libpq conninfo of the production write path (PgBouncer) */
    const char *dbname;         /* database of the drill table on the nodes */
    const struct drill_pg_node *nodes;
    size_t n_nodes;
};

/* A run's marks, CLOCK_MONOTONIC usec; 0 = did not happen. */
struct drill_pg_marks {
    uint64_t start, fault, resume, heal, end;
};

struct drill_pg_options {
    enum drill_pg_fault fault;
    uint64_t interval_usec;     /* between two writes; default 10 ms */
    uint64_t op_timeout_usec;   /* a write not answered by then is "unknown"; default 2 s */
    uint64_t before_usec;       /* writes before the fault; default 2 s */
    uint64_t pause_usec;        /* pause: how long the processes stay stopped; default 20 s */
    uint64_t after_usec;        /* writes after the cluster healed; default 1 s */
    uint64_t heal_timeout_usec; /* the cluster must be whole again by then; default 90 s */
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
    bool healed;
    bool old_leader_rejoined; /* the faulted node is a streaming replica again */
    char note[256];           /* why the run is not clean, "" when it is */
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
