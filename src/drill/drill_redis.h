/* SPDX-License-Identifier: MIT */
/* drill_redis.h - Redis + Sentinel failover drill: a writer that finds the master through
 * Sentinel and follows its +switch-master events, RPUSHes unique ids (every other one confirmed
 * with WAIT 1), a fault on the master, the final read on every node.
 *
 * Ownership: targets and options are borrowed for the call; the result is the caller's
 * (drill_run_release()).  Library code: progress goes through the callback. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "core/macro.h"
#include "drill_report.h"

struct err;

enum drill_redis_fault {
    DRILL_REDIS_CRASH,      /* SIGKILL of the master's process tree (the supervisor restarts it) */
    DRILL_REDIS_PAUSE,      /* SIGSTOP of the master's processes, SIGCONT after pause_usec */
    DRILL_REDIS_SWITCHOVER, /* SENTINEL FAILOVER: a planned switch */
    DRILL_REDIS_PARTITION,  /* the master's network namespace cut from its peers (nftables) while
                               it runs on and the client still reaches it.  Needs nodes with netns */
    _DRILL_REDIS_FAULT_MAX,
};

const char *drill_redis_fault_to_string(enum drill_redis_fault f);
int drill_redis_fault_from_string(const char *s, enum drill_redis_fault *ret);

/* A Redis node or a Sentinel. */
struct drill_redis_node {
    const char *name; /* the supervisor's service name */
    const char *host; /* its address (as Sentinel announces it); NULL = 127.0.0.1 */
    uint16_t port;
    const char *netns; /* its network namespace (ip netns); NULL = none (no partitions) */
};

struct drill_redis_target {
    pid_t supervisor;
    drill_pid_fn main_pid; /* a service's pid when its processes carry no mark; may be NULL */
    void *main_pid_data;
    const char *master_name; /* Sentinel's name for the master ("mymaster") */
    const char *password;    /* the nodes' requirepass; NULL = none */
    const struct drill_redis_node *nodes;
    size_t n_nodes;
    const struct drill_redis_node *sentinels; /* no password */
    size_t n_sentinels;
};

struct drill_redis_options {
    enum drill_redis_fault fault;
    uint64_t interval_usec;     /* between two writes; default 10 ms */
    uint64_t op_timeout_usec;   /* a write not answered by then is "unknown"; default 300 ms */
    unsigned wait_ms;           /* WAIT 1's timeout; default 100 */
    uint64_t before_usec;       /* writes before the fault; default 2 s */
    uint64_t pause_usec;        /* pause: how long the master stays stopped; default 10 s */
    uint64_t settle_usec;       /* the cluster must stay whole this long; default 4 s */
    uint64_t after_usec;        /* writes after healing; default 1 s */
    uint64_t heal_timeout_usec; /* whole again by then; default 60 s */
    uint64_t cut_after_usec;    /* partition: the cut lasts until a new master + this; 2 s */
    void (*progress)(const char *line, void *userdata); /* NULL = none */
    void *userdata;
};

/* Runs one drill.  0 when it ran (*ret says how the cluster did), -EINVAL for bad options,
 * -ENOENT when no master is found or the cluster is not whole before the fault, other -errno
 * when the drill itself could not run, with *reterr saying why. */
int drill_redis_run(const struct drill_redis_target *t, const struct drill_redis_options *o,
                    struct drill_run *ret, struct err *reterr) WARN_UNUSED_RESULT;
