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
    _DRILL_KAFKA_FAULT_MAX,
};

const char *drill_kafka_fault_to_string(enum drill_kafka_fault f);
int drill_kafka_fault_from_string(const char *s, enum drill_kafka_fault *ret);

struct drill_kafka_broker {
    const char *name; /* the supervisor's service name */
    uint16_t port;    /* its client listener on 127.0.0.1 */
};

struct drill_kafka_target {
    pid_t supervisor;
    drill_pid_fn main_pid; /* a service's pid when its processes carry no mark; may be NULL */
    void *main_pid_data;
    const char *bootstrap; /* "127.0.0.1:9092,..." */
    const char *topic;     /* the drill topic (created when missing: 1 partition, RF 2) */
    const struct drill_kafka_broker *brokers;
    size_t n_brokers;
};

struct drill_kafka_options {
    enum drill_kafka_fault fault;
    uint64_t interval_usec;     /* between two messages; default 10 ms */
    uint64_t before_usec;       /* messages before the fault; default 3 s */
    uint64_t pause_usec;        /* pause: how long the broker stays stopped; default 10 s */
    uint64_t after_usec;        /* messages after healing; default 1 s */
    uint64_t heal_timeout_usec; /* the partition fully in sync again by then; default 120 s */
    void (*progress)(const char *line, void *userdata); /* NULL = none */
    void *userdata;
};

/* Runs one drill.  0 when it ran (*ret says how the cluster did), -EINVAL for bad options,
 * -ENOENT when the partition has no leader or is not in sync before the fault, other -errno
 * when the drill itself could not run, with *reterr saying why. */
int drill_kafka_run(const struct drill_kafka_target *t, const struct drill_kafka_options *o,
                    struct drill_run *ret, struct err *reterr) WARN_UNUSED_RESULT;
