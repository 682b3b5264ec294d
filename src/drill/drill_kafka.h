/* SPDX-License-Identifier: MIT */
/* drill_kafka.h - Kafka broker failover drill: an idempotent acks=all producer whose delivery
 * reports are the acknowledgements, the leader broker of the drill topic's partition faulted,
 * and a consumer's read of the partition deciding lost / recovered / duplicates.
 *
 * Ownership: targets and options are borrowed for the call; the result is the caller's
 * (drill_run_release()).  Library code: progress goes through the callback. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "core/macro.h"
#include "drill_report.h"

struct err;

enum drill_kafka_fault {
    DRILL_KAFKA_CRASH, /* SIGKILL of the leader broker's process tree (the supervisor restarts it)
                        */
    DRILL_KAFKA_PAUSE, /* SIGSTOP of the leader broker, SIGCONT after pause_usec */
    DRILL_KAFKA_PARTITION, /* the leader's network namespace cut from the other brokers and
                            * controllers for pause_usec while the host (producer, consumer)
                            * still reaches it; brokers in namespaces only (kafka_partition.c) */
    _DRILL_KAFKA_FAULT_MAX,
};

const char *drill_kafka_fault_to_string(enum drill_kafka_fault f);
int drill_kafka_fault_from_string(const char *s, enum drill_kafka_fault *ret);

/* Which broker the fault hits. */
enum drill_kafka_victim {
    DRILL_KAFKA_VICTIM_LEADER,     /* the leader of the drill topic's partition 0 */
    DRILL_KAFKA_VICTIM_CONTROLLER, /* the active KRaft controller, on a partition of
                                    * TOPIC.controller it leads: the slowest case, a controller
                                    * election before the broker can be fenced */
    _DRILL_KAFKA_VICTIM_MAX,
};

const char *drill_kafka_victim_to_string(enum drill_kafka_victim v);
int drill_kafka_victim_from_string(const char *s, enum drill_kafka_victim *ret);

struct drill_kafka_broker {
    const char *name;  /* the supervisor's service name */
    uint16_t port;     /* its client listener on 127.0.0.1 (or host) */
    const char *host;  /* its client listener's address; NULL = 127.0.0.1 */
    const char *netns; /* its network namespace (partition); NULL = the host's */
};

/* The service leading the KRaft controller quorum now, copied to ret ("" when unknown). */
typedef void (*drill_kafka_controller_fn)(char *ret, size_t size, void *userdata);

#define DRILL_KAFKA_BROKERS_MAX 16

struct drill_kafka_target {
    pid_t supervisor;
    drill_pid_fn main_pid; /* a service's pid when its processes carry no mark; may be NULL */
    void *main_pid_data;
    const char *bootstrap; /* "127.0.0.1:9092,..." */
    const char *topic;     /* the drill topic (created when missing: 1 partition, RF 2); the
                            * controller victim's is TOPIC.controller (a partition per ordered
                            * pair of brokers) */
    const struct drill_kafka_broker *brokers;
    size_t n_brokers;                     /* 2 .. DRILL_KAFKA_BROKERS_MAX */
    const char *state_dir;                /* partition: the brokers' logs; may be NULL */
    drill_kafka_controller_fn controller; /* the active controller; may be NULL (then only the
                                           * leader victim and no controller evidence) */
    void *controller_data;
};

struct drill_kafka_options {
    enum drill_kafka_fault fault;
    enum drill_kafka_victim victim;
    uint64_t interval_usec;     /* between two messages; default 10 ms */
    uint64_t before_usec;       /* messages before the fault; default 3 s */
    uint64_t pause_usec;        /* pause: how long the broker stays stopped, partition: cut; 10 s */
    uint64_t after_usec;        /* messages after healing; default 1 s */
    uint64_t heal_timeout_usec; /* the partition fully in sync again by then; default 120 s */
    void (*progress)(const char *line, void *userdata); /* NULL = none */
    void *userdata;
};

/* 0 when every broker of t runs in a network namespace on its own address (the drill cluster
 * of scripts/drill-netns.sh --cluster kafka), else -EINVAL with reterr saying where --fault
 * partition runs.  drill_kafka_run() checks it too; callers may check before anything runs. */
int drill_kafka_partition_check(const struct drill_kafka_target *t, struct err *reterr);

/* Runs one drill.  0 when it ran (*ret says how the cluster did), -EINVAL for bad options,
 * -ENOENT when the partition has no leader or is not in sync before the fault (victim
 * controller: or the active controller leads none of the topic's partitions), other -errno
 * when the drill itself could not run, with *reterr saying why. */
int drill_kafka_run(const struct drill_kafka_target *t, const struct drill_kafka_options *o,
                    struct drill_run *ret, struct err *reterr) WARN_UNUSED_RESULT;
