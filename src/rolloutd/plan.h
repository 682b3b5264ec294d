/* SPDX-License-Identifier: MIT */
/* plan.h - rollout plans (a flag's steps, each gated by Prometheus analyses), a rollout's durable
 * progress, their JSON (docs/rollouts.md), and the pure decision function the controller applies
 * after every analysis.  No I/O, no threads, no clock: callers pass the time.  Not thread-safe
 * (one owner per struct).
 *
 * Ownership: a struct plan_run owns everything it points to (plan_run_release()). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"
#include "rollout.h"

struct err;
struct buf;

#define PLAN_MAX_STEPS    16
#define PLAN_MAX_METRICS  8
#define PLAN_HISTORY_MAX  500     /* analysis results kept per rollout (oldest dropped) */
#define PLAN_QUERY_MAX    4096    /* bytes of one PromQL query */
#define PLAN_DURATION_MAX 2592000 /* 30 days */

enum plan_no_data {
    PLAN_NO_DATA_PAUSE, /* no data pauses the rollout until someone resumes it */
    PLAN_NO_DATA_FAIL,  /* no data counts as a failed check */
    _PLAN_NO_DATA_MAX,
};

enum plan_on_failure {
    PLAN_ON_FAILURE_ROLLBACK, /* back to the last safe stage (the previous step's) */
    PLAN_ON_FAILURE_KILL,     /* the flag's kill switch in the environment */
    _PLAN_ON_FAILURE_MAX,
};

enum plan_state {
    PLAN_STATE_RUNNING,
    PLAN_STATE_PAUSED,
    PLAN_STATE_SUCCEEDED,
    PLAN_STATE_ROLLED_BACK,
    PLAN_STATE_ABORTED,
    PLAN_STATE_FAILED, /* the controller could not act (flag gone, change refused) */
    _PLAN_STATE_MAX,
};

enum plan_result {
    PLAN_RESULT_PASS,
    PLAN_RESULT_FAIL,
    PLAN_RESULT_NODATA,
    _PLAN_RESULT_MAX,
};

struct plan_metric {
    char *name;  /* [a-z0-9_]{1,64}, unique in its step */
    char *query; /* PromQL, an instant query whose result is one number */
    bool has_min, has_max;
    double min, max; /* the value passes when min <= value <= max */
};

struct plan_step {
    enum rollout_stage stage; /* shadow, canary, partial or full */
    double percent;           /* shadow/canary/partial: the stage's percentage; full: 100 */
    uint64_t duration_s;      /* least time in the step before promotion */
    struct plan_metric *metrics;
    size_t n_metrics;
};

struct plan {
    char *environment;
    uint64_t interval_s;            /* between analyses */
    unsigned failure_limit;         /* failed checks in a step that roll back */
    unsigned consecutive_successes; /* passing checks in a row needed to promote */
    enum plan_no_data no_data;
    enum plan_on_failure on_failure;
    struct plan_step *steps;
    size_t n_steps;
};

/* One metric's result in one analysis. */
struct plan_check {
    uint64_t at_usec;
    unsigned step;
    char *metric;
    double value; /* NAN when there was no data */
    enum plan_result result;
};

/* A rollout: the plan and how far it got.  Everything here is stored (store_rollout_put) before
 * the controller acts on it, so a restarted controller continues exactly here. */
struct plan_run {
    char *flag;
    struct plan plan;
    enum plan_state state;
    unsigned step;              /* index into plan.steps (0-based) */
    uint64_t started_usec;      /* the plan started */
    uint64_t step_started_usec; /* the current step started (moved forward by pauses) */
    uint64_t updated_usec;      /* last change of this record */
    uint64_t last_check_usec;   /* last analysis; 0 = none in this step */
    uint64_t paused_usec;       /* when it was paused; 0 when not */
    unsigned failures;          /* failed checks in this step */
    unsigned successes;         /* passing checks in a row in this step */
    bool applied;               /* the flag has the stage this record asks for (target, below) */
    bool rollback_kill; /* rolled back/aborted: the target is the kill switch, not a stage */
    bool notify;        /* a webhook is owed for the last decision (cleared once delivered) */
    char *reason;       /* why the last decision was taken; "" when none */
    enum rollout_stage base_stage; /* the flag's stage in the environment before the plan */
    double base_percent;           /* and that stage's percentage (0 for off/full) */
    struct plan_check *history;
    size_t n_history;
    uint64_t version; /* the store row's version (not serialized) */
};

/* Names: "running", "rolled_back", "pass", "nodata", ... (NULL when out of range). */
const char *plan_state_name(enum plan_state s);
const char *plan_result_name(enum plan_result r);
/* True for succeeded, rolled_back, aborted and failed. */
bool plan_state_final(enum plan_state s);

/* Parses and validates a plan document (JSON).  default_env fills a missing "environment".
 * -EINVAL with e (message "field 'steps[1].analysis[0].threshold': ...", e->field the path) for
 * anything invalid; -EBADMSG for text that is not JSON; -ENOMEM. */
int plan_parse(const char *text, size_t len, const char *default_env, struct plan *ret,
               struct err *e) WARN_UNUSED_RESULT;
void plan_release(struct plan *p);

/* A new rollout of plan (taken over: *plan is zeroed) for flag, starting now from the flag's
 * current stage base/base_percent in the environment. */
void plan_run_start(struct plan_run *run, const char *flag, struct plan *plan,
                    enum rollout_stage base, double base_percent, uint64_t now_usec);
void plan_run_release(struct plan_run *run);

/* Serializes run.  api: the admin API's shape (times as RFC 3339 strings); otherwise the stored
 * shape (times in µs, everything plan_run_parse() needs).  Appends to out; -ENOMEM/-ENOBUFS. */
int plan_run_serialize(const struct plan_run *run, bool api, struct buf *out) WARN_UNUSED_RESULT;
/* Parses the stored shape.  -EINVAL with e when it is not one. */
int plan_run_parse(const char *text, size_t len, struct plan_run *ret,
                   struct err *e) WARN_UNUSED_RESULT;

/* The stage (and percentage) the flag must have now: the current step's while running, paused
 * or succeeded; the last safe stage after a rollback or abort (the previous step's, or the
 * flag's stage before the plan when the first step failed).  *ret_kill: the kill switch is the
 * target instead. */
void plan_run_target(const struct plan_run *run, enum rollout_stage *ret_stage, double *ret_percent,
                     bool *ret_kill);

/* ===== Decisions (pure) ===== */

enum plan_decision {
    PLAN_DECISION_WAIT,     /* nothing to do yet (not due, or not running) */
    PLAN_DECISION_CONTINUE, /* results recorded, stay in the step */
    PLAN_DECISION_PROMOTE,  /* to the next step */
    PLAN_DECISION_SUCCEED,  /* the last step completed */
    PLAN_DECISION_PAUSE,    /* no data (no_data: pause) */
    PLAN_DECISION_ROLLBACK, /* failure_limit reached */
    _PLAN_DECISION_MAX,
};
const char *plan_decision_name(enum plan_decision d);

/* One metric's value from one analysis: nodata when the query returned nothing, failed or
 * gave NaN. */
struct plan_sample {
    const char *metric; /* borrowed */
    double value;
    bool nodata;
};

/* True when an analysis is due: running, applied, and interval_s passed since the last one (or
 * none happened in this step). */
bool plan_run_due(const struct plan_run *run, uint64_t now_usec);

/* Decides from run (not changed) and the samples of one analysis of the current step (one per
 * metric of the step, in the step's order; a step without metrics takes n = 0) at now.  The
 * decision is applied with plan_run_apply(). */
enum plan_decision plan_decide(const struct plan_run *run, const struct plan_sample *samples,
                               size_t n, uint64_t now_usec);

/* Applies decision d (from plan_decide with the same samples) to run: history, counters, step
 * and state, reason, applied/notify.  Pure. */
void plan_run_apply(struct plan_run *run, enum plan_decision d, const struct plan_sample *samples,
                    size_t n, uint64_t now_usec);

/* Operator actions.  0, or -EINVAL (e says why: e.g. resuming a running rollout). */
int plan_run_pause(struct plan_run *run, uint64_t now_usec, struct err *e) WARN_UNUSED_RESULT;
int plan_run_resume(struct plan_run *run, uint64_t now_usec, struct err *e) WARN_UNUSED_RESULT;
int plan_run_abort(struct plan_run *run, uint64_t now_usec, struct err *e) WARN_UNUSED_RESULT;
/* The controller could not act: state failed with reason. */
void plan_run_fail(struct plan_run *run, uint64_t now_usec, const char *reason);
