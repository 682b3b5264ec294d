/* SPDX-License-Identifier: MIT */
/* drill_int.h - the drill module's internals: the writer (pg_writer.c), the cluster view
 * (pg_cluster.c).  Nothing here is a stable API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"
#include "drill.h"

/* ===== Shared by every drill (drill_report.c) ===== */

/* Formats one progress line (up to 511 bytes) and hands it to fn; nothing when fn is NULL. */
void drill__progressf(void (*fn)(const char *line, void *userdata), void *userdata, const char *fmt,
                      ...) PRINTF(3, 4);
/* A progress line through a drill's options (r: any drill's run, with r->o its options). */
#define DRILL_PROGRESS(r, ...) drill__progressf((r)->o->progress, (r)->o->userdata, __VA_ARGS__)
/* The index of s in names[0..n) (a fault or target name table), or -EINVAL. */
int drill__name_index(const char *const *names, size_t n, const char *s);

/* Defines PREFIX_to_string(enum TYPE) (NULL out of range) and PREFIX_from_string(const char *,
 * enum TYPE *) (0, or -EINVAL for an unknown name) over the name table names[max] (systemd's
 * DEFINE_STRING_TABLE_LOOKUP). */
#define DRILL_NAME_TABLE(prefix, type, names, max)          \
    const char *prefix##_to_string(enum type v)             \
    {                                                       \
        return (unsigned)v < (max) ? (names)[v] : NULL;     \
    }                                                       \
    int prefix##_from_string(const char *s, enum type *ret) \
    {                                                       \
        int i = drill__name_index((names), (max), s);       \
                                                            \
        if (i < 0)                                          \
            return i;                                       \
        *ret = (enum type)i;                                \
        return 0;                                           \
    }

/* ===== The workload recorder (pg_writer.c) ===== */

enum drill_op_result {
    DRILL_OP_PENDING,
    DRILL_OP_OK,      /* acknowledged: the server said the INSERT committed */
    DRILL_OP_FAIL,    /* definitely not committed (read-only, rolled back, never sent) */
    DRILL_OP_UNKNOWN, /* sent, and no definite answer: it may or may not have committed */
};

struct drill_op {
    int64_t id;
    uint64_t invoke_usec, done_usec; /* CLOCK_MONOTONIC */
    enum drill_op_result result;
    char server[40]; /* ok: "ADDRESS:PORT" of the node that acknowledged it ("" otherwise) */
};

struct pg_writer;

/* Starts a thread that inserts (run, id) with ids 1, 2, ... into drill_writes through conninfo,
 * one every interval_usec, reconnecting after any error.  The table must exist.  NULL on OOM
 * or when the thread cannot start. */
struct pg_writer *pg_writer_start(const char *conninfo, const char *run, uint64_t interval_usec,
                                  uint64_t op_timeout_usec);
/* Stops and joins the thread; returns the operations recorded (caller frees *ret_ops) and
 * frees the writer. */
size_t pg_writer_finish(struct pg_writer *w, struct drill_op **ret_ops);
/* Acknowledged writes so far (for progress). */
unsigned pg_writer_acked(struct pg_writer *w);

/* Runs sql (no parameters, no rows expected) on conninfo.  0 or -EIO with the error in msg. */
int pg_exec_simple(const char *conninfo, const char *sql, char *msg, size_t msg_size);
/* The ids of `run` in drill_writes as seen on conninfo, sorted (caller frees).  Returns the
 * count or -EIO with the error in msg. */
int pg_read_ids(const char *conninfo, const char *run, int64_t **ret_ids, char *msg,
                size_t msg_size);

/* ===== The cluster as Patroni sees it (pg_cluster.c) ===== */

struct drill_member {
    char name[64];
    char role[32];  /* leader, sync_standby, replica, ... */
    char state[32]; /* running, streaming, ... */
    int64_t timeline;
};

struct drill_cluster {
    struct drill_member members[16];
    size_t n;
};

/* GET /cluster from every node at once; the first good answer wins.  0, or -ETIMEDOUT /
 * -EPROTO when no node answered within timeout_usec. */
int drill__cluster_read(const struct drill_pg_target *t, uint64_t timeout_usec,
                        struct drill_cluster *ret);
/* The leader's name, or NULL. */
const char *drill__cluster_leader(const struct drill_cluster *c);
/* Every node is a member; one leader; every other member streams on the leader's timeline;
 * a synchronous standby exists. */
bool drill__cluster_whole(const struct drill_pg_target *t, const struct drill_cluster *c);
/* The member called name, or NULL. */
const struct drill_member *drill__cluster_member(const struct drill_cluster *c, const char *name);

/* ===== Patroni calls (pg_cluster.c; HTTP through src/httpc) ===== */

/* POST /switchover {"leader": leader} to the leader's Patroni REST API (basic auth from the
 * target) and waits for the answer (Patroni answers once the switchover is done).  0 on HTTP
 * 200, else -errno with msg saying why (Patroni's answer for a refusal). */
int drill__cluster_switchover(const struct drill_pg_target *t, const char *leader, char *msg,
                              size_t msg_size) WARN_UNUSED_RESULT;

/* ===== Partitions (pg_netcut.c) ===== */

/* Cuts the node in network namespace netns off: everything but loopback is dropped (host
 * death, host_addr NULL), or everything but TCP from/to host_addr other than its DCS port
 * dcs_port (partition: peers and DCS cut, the host's proxies still reach it; dcs_port 0 when
 * the DCS is not on the host: every TCP with host_addr passes).  0 or -errno with msg. */
int drill__netcut(const char *netns, const char *host_addr, uint16_t dcs_port, char *msg,
                  size_t msg_size) WARN_UNUSED_RESULT;
/* Removes the cut.  0 or -errno with msg. */
int drill__netheal(const char *netns, char *msg, size_t msg_size) WARN_UNUSED_RESULT;

/* ===== Evidence (pg_evidence.c) ===== */

/* Size of the service's log (STATE/logs/NAME.log) now; 0 when unknown or no state_dir. */
off_t drill__log_size(const struct drill_pg_target *t, const char *service);
/* The lines the service logged from offset `from` on that contain one of pats (NULL-ended):
 * appended to out (when not NULL, while they fit), the time of the first one
 * ("YYYY-MM-DD HH:MM:SS.mmm") to first_at when it is still "". */
void drill__log_scan(const struct drill_pg_target *t, const char *service, off_t from,
                     const char *const *pats, char *out, size_t out_size, char *first_at,
                     size_t first_size);
/* Fills the writer-history fields of res (ack_servers, dual_primary_acks, old/new server and
 * their last / first acknowledgement relative to fault) from the recorded operations. */
void drill__ack_history(const struct drill_op *ops, size_t n, uint64_t fault,
                        struct drill_pg_result *res);

/* ===== Kafka partitions (kafka_partition.c) ===== */

struct drill_kafka_target;
struct drill_kafka_options;
struct drill_kafka_broker;
struct drill_run;

/* The service leading the KRaft quorum now (t->controller), copied to ret; "" when unknown or
 * t has no controller callback (drill_kafka.c). */
void drill__kafka_controller(const struct drill_kafka_target *t, char *ret, size_t size);

/* The partition fault on victim (Kafka id victim_id), the producer running: cuts its
 * namespace from its peers (the host still reaches it) for o->pause_usec, removes the cut and
 * waits until every broker, asked alone, reports the partition whole under one leader.  Fills
 * res: fault_at, new_leader(_usec), resume_at (the cut removed), healed, heal_at, heal_usec,
 * note, evidence ("partition": the quorum's controller before and after, the brokers' log lines).
 * 0 when the fault ran, -errno with msg when the cut could not be made. */
int drill__kafka_partition(const struct drill_kafka_target *t, const struct drill_kafka_options *o,
                           const struct drill_kafka_broker *victim, int32_t victim_id,
                           int32_t partition, struct drill_run *res, char *msg, size_t msg_size);
