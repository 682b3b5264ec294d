/* SPDX-License-Identifier: MIT */
/* drill_report.h - one drill run of any cluster (postgres, redis, kafka) as a plain record: the
 * write gap, the operations by outcome, what the final read found, whether the cluster healed,
 * and the acknowledgement times that a timeline is drawn from.  JSON and a self-contained
 * HTML/SVG timeline (drill_html.c) come from this record only.
 *
 * Ownership: a struct drill_run owns its acks array and its evidence (drill_run_release()). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "core/macro.h"

/* One class of operations.  Redis has two (plain writes, and writes confirmed by WAIT 1);
 * Kafka and PostgreSQL one. */
struct drill_tally {
    const char *name;    /* "plain", "wait", "messages", "inserts"; NULL = class unused */
    unsigned acked;      /* the server said yes (Redis WAIT: and a replica has it) */
    unsigned failed;     /* definitely not written */
    unsigned unknown;    /* no definite answer: may or may not be written */
    unsigned lost;       /* acknowledged, missing after healing */
    unsigned recovered;  /* unknown, present after healing */
    unsigned duplicates; /* present more than once */
};

#define DRILL_TALLIES 2

struct drill_run {
    char cluster[16], fault[16];
    char victim[64];     /* the node faulted: the leader / master when the run started */
    char new_leader[64]; /* who led after the fault ("" = none seen) */
    uint64_t gap_usec;   /* last ack before the fault -> first ack after (the outage) */
    uint64_t max_gap_usec;
    uint64_t new_leader_usec; /* fault -> another node leads; 0 = not seen */
    uint64_t heal_usec;       /* fault -> the cluster whole again */
    struct drill_tally tally[DRILL_TALLIES];
    bool healed;
    char note[256]; /* why the run is not clean; "" when it is */
    /* The timeline, CLOCK_MONOTONIC: writer start, fault, resume (pause only; 0 = none), heal
     * (0 = never), end; acks = acknowledgement times of every class, sorted. */
    uint64_t start_at, fault_at, resume_at, heal_at, end_at;
    uint64_t *acks; /* owned */
    size_t n_acks;
    /* A fault's own findings (a jansson object, owned; NULL = none), merged into the run's
     * JSON: the Redis partition's "evidence", the Kafka partition's "partition" object. */
    void *evidence;
};

void drill_run_release(struct drill_run *r);

/* Sets acks (a sorted copy of v[0..n)) and the gaps: gap_usec is the longest time without an
 * acknowledgement from the last one before fault_at to end_at; max_gap_usec the longest in the
 * whole run. */
void drill_run_set_acks(struct drill_run *r, const uint64_t *v, size_t n);

#define DRILL_BIN_USEC 100000 /* the timeline's resolution: acknowledgements per 100 ms */

/* The run as a JSON object, its timeline included ("timeline": start-relative ms of the fault,
 * resume, heal and end marks, "acks_per_100ms": [...]) (jansson json_t *, returned as void * so
 * that callers of this header need not include jansson).  passed: the caller's verdict. */
void *drill_run_json(const struct drill_run *r, bool passed);

/* A one-line human summary of the run ("run 3: redis1 -> redis2  gap 812 ms ..."). */
void drill_run_print(const struct drill_run *r, unsigned index, FILE *f);

/* Writes drill documents (a jansson array of the per-cluster, per-fault documents `infractl
 * drill --json` prints, whose runs carry drill_run_json()'s "timeline") as one self-contained
 * HTML page with an SVG timeline per run: acknowledged writes per 100 ms, fault / resume / heal
 * marks.  Runs without a timeline get their figures only.  0 or -errno. */
int drill_html_write(const char *path, void *docs) WARN_UNUSED_RESULT;

/* The main pid of a service as the supervisor reports it now (0 = not running). */
typedef pid_t (*drill_pid_fn)(const char *service, void *userdata);

/* Sends sig to every process of a service the supervisor runs (its whole tree), remembering
 * their pids in pids[0..max) for a later SIGCONT.  The tree comes from the supervisor's
 * UT_SERVICE mark (sv_service_processes()); a program that overwrites its environment block
 * with its process title (redis-server) shows no mark, so then main_pid (may be NULL) names the
 * service's process and its children are found by their parent.  Returns how many got it, or
 * -errno (-ESRCH: none found). */
int drill_signal_service(pid_t supervisor, const char *service, drill_pid_fn main_pid,
                         void *userdata, int sig, pid_t *pids, size_t max);
