/* SPDX-License-Identifier: MIT */
/* rolloutd.h - the daemon's shared state: the flag model in memory, per-environment published
 * snapshots, tokens, metrics; and the route tables of routes_*.c.
 *
 * Locking: rd->lock serialises every change (store commit, in-memory model, publishing and SSE
 * broadcasts, opening SSE streams).  Readers on the hot path never take it: they take a
 * reference on an environment's published state (rd_env_acquire) under that environment's small
 * mutex.  Tokens have their own rwlock. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "core/macro.h"
#include "rollout.h"

struct http_server;
struct http_request;
struct http_route;
struct metrics_registry;
struct metrics_family;
struct metrics_series;
struct store;
struct store_data;
struct err;
struct buf;
struct rd_ctl;
struct plan_run;

/* A flag or a segment as stored. */
struct rd_item {
    char *key;
    uint64_t version;
    char *json; /* normalized JSON, as stored */
    struct rollout_flag *flag;
    struct rollout_segment *segment;
};

/* Evaluation counter cache: (flag key, variant, reason) -> series, filled on first use. */
struct rd_eval_entry {
    const char *variant; /* borrowed from the snapshot */
    enum rollout_reason reason;
    struct metrics_series *series;
    char key[]; /* flag key */
};
#define RD_EVAL_CACHE_SIZE 2048

/* What one environment serves, immutable once published; reference counted. */
struct rd_env_state {
    _Atomic unsigned refs;
    const char *env; /* borrowed from rd */
    uint64_t revision;
    struct rollout_snapshot *snap;
    char *snap_json; /* serialized snapshot */
    size_t snap_len;
    char etag[32]; /* "\"<revision>\"" */
    _Atomic(struct rd_eval_entry *) cache[RD_EVAL_CACHE_SIZE];
    pthread_mutex_t cache_lock; /* inserts only */
};

struct rd_env {
    char *name;
    pthread_mutex_t lock; /* guards cur */
    struct rd_env_state *cur;
};

struct rd {
    /* configuration */
    char *state_dir;
    char **env_names; /* configured environments; [0] is the default */
    size_t n_envs;

    struct store *store;
    struct http_server *http;
    struct metrics_registry *metrics;
    struct metrics_family *m_evals;       /* {env, flag, variant, reason} */
    struct metrics_family *m_eval_errors; /* {env, code} */
    struct metrics_family *m_store_errors;
    struct metrics_family *m_changes; /* {kind, action} */
    struct metrics_family *m_revision;
    struct metrics_family *m_streams;

    pthread_mutex_t lock;
    uint64_t revision;
    struct rd_item *items[2]; /* [0] flags, [1] segments; sorted by key */
    size_t n_items[2];
    struct rd_env *envs; /* n_envs */

    pthread_rwlock_t tokens_lock;
    struct auth_token *tokens;
    size_t n_tokens;

    _Atomic bool ready;

    struct rd_ctl *ctl; /* the rollout controller (controller.c); NULL when not started */
};

enum rd_kind {
    RD_FLAGS = 0,
    RD_SEGMENTS = 1,
};

/* ===== state.c ===== */

int rd_init(struct rd *rd, struct err *e) WARN_UNUSED_RESULT;
void rd_release(struct rd *rd);
/* Replaces the in-memory model with the store's contents and publishes every environment.
 * Caller holds rd->lock. */
int rd_reload(struct rd *rd, struct err *e) WARN_UNUSED_RESULT;
/* Reloads when the store's revision moved (another replica).  Takes rd->lock. */
int rd_sync(struct rd *rd, struct err *e) WARN_UNUSED_RESULT;
/* Builds and publishes every environment's state from the model (revision rd->revision) and
 * broadcasts it to SSE streams.  Caller holds rd->lock. */
int rd_publish(struct rd *rd) WARN_UNUSED_RESULT;
struct rd_env *rd_env_find(struct rd *rd, const char *name);
bool rd_env_known(struct rd *rd, const char *name);
/* A reference on env's current state (NULL for an unknown env); release with rd_env_release. */
struct rd_env_state *rd_env_acquire(struct rd *rd, const char *env);
void rd_env_release(struct rd_env_state *st);
/* Counts one evaluation in rolloutd_evaluations_total / rolloutd_evaluation_errors_total. */
void rd_count_eval(struct rd *rd, struct rd_env_state *st, const char *key,
                   const struct rollout_result *res);
/* The SSE event carrying st's snapshot ("event: snapshot\nid: N\ndata: ...\n\n").  Caller frees. */
char *rd_snapshot_event(const struct rd_env_state *st, size_t *ret_len);

/* Model lookups; caller holds rd->lock. */
struct rd_item *rd_item_find(struct rd *rd, enum rd_kind kind, const char *key);

/* The one path for changes: validates that the model with the change still builds a snapshot,
 * commits to the store (version check, audit), applies it in memory and publishes.  item_json
 * NULL deletes.  flag/segment: the parsed new object (one reference taken over, NULL for
 * delete).  Caller holds rd->lock.  -ESTALE/-ENOENT/-EEXIST from the store; -EINVAL with e
 * when the snapshot would not build; -EIO for store errors. */
struct rd_change {
    enum rd_kind kind;
    const char *key;
    uint64_t expect_version;
    uint64_t version;
    const char *json;
    struct rollout_flag *flag;
    struct rollout_segment *segment;
    const char *actor, *action;
    const char *reason; /* recorded in the audit entry (rollout decisions); NULL = none */
};
int rd_commit(struct rd *rd, struct rd_change *c, struct err *e) WARN_UNUSED_RESULT;

/* Token changes (create/delete) through the store, then the in-memory table. */
int rd_token_add(struct rd *rd, struct auth_token *t, const char *actor,
                 struct err *e) WARN_UNUSED_RESULT;
int rd_token_delete(struct rd *rd, const char *id, const char *actor,
                    struct err *e) WARN_UNUSED_RESULT;
/* Creates STATE/admin.token when the store has no admin token.  Caller holds rd->lock. */
int rd_bootstrap_admin(struct rd *rd, struct err *e) WARN_UNUSED_RESULT;

/* ===== controller.c: rollout plans ===== */

struct rd_ctl_config {
    const char *prometheus_url; /* base URL of Prometheus's HTTP API */
    const char *webhook_url;    /* Alertmanager-style webhook for rollbacks; NULL = none */
    unsigned tick_ms;           /* the controller's loop period */
    unsigned lease_ttl_ms;      /* the leader lease's lifetime (renewed every tick) */
    long query_timeout_ms;      /* each Prometheus query and webhook */
};
/* Starts the controller thread (registers its metrics in rd->metrics).  rd->store must be open.
 * 0, or -errno with e. */
int rd_ctl_start(struct rd *rd, const struct rd_ctl_config *cfg, struct err *e) WARN_UNUSED_RESULT;
/* Stops and joins the thread, releases the lease.  NULL-safe (rd->ctl NULL). */
void rd_ctl_stop(struct rd *rd);
/* Makes the controller run now (after an operator's change). */
void rd_ctl_wake(struct rd *rd);
/* The stored rollouts (flag NULL: all; else that flag's, -ENOENT with e when none), each with its
 * row version.  Takes rd->lock.  Caller frees with rd_rollouts_free(). */
int rd_rollout_load(struct rd *rd, const char *flag, struct plan_run **ret, size_t *ret_n,
                    struct err *e) WARN_UNUSED_RESULT;
void rd_rollouts_free(struct plan_run *runs, size_t n);
/* Stores run if its row still has run->version (-ESTALE otherwise); run->version follows.
 * Takes rd->lock. */
int rd_rollout_save(struct rd *rd, struct plan_run *run, struct err *e) WARN_UNUSED_RESULT;
/* Appends the rollout gauges and rolloutd_flag_stage/percent/killed to a /metrics exposition.
 * Takes rd->lock. */
int rd_rollout_metrics(struct rd *rd, struct buf *out) WARN_UNUSED_RESULT;
/* A flag's stage, that stage's percentage and its kill switch in env, from its JSON. */
int rd_flag_env_get(const char *flag_json, const char *env, enum rollout_stage *ret_stage,
                    double *ret_percent, bool *ret_kill) WARN_UNUSED_RESULT;
/* 1 when a and b serialize alike (a change would store exactly what is stored), 0 when not,
 * -errno. */
int rd_flags_equal(const struct rollout_flag *a, const struct rollout_flag *b);

/* ===== routes ===== */

extern const struct http_route rd_routes[];
extern const size_t rd_n_routes;

/* routes_*.c handlers */
int rd_h_flags_list(struct http_request *req, void *userdata);
int rd_h_flags_create(struct http_request *req, void *userdata);
int rd_h_flag_get(struct http_request *req, void *userdata);
int rd_h_flag_update(struct http_request *req, void *userdata);
int rd_h_flag_delete(struct http_request *req, void *userdata);
int rd_h_flag_stage(struct http_request *req, void *userdata);
int rd_h_flag_kill(struct http_request *req, void *userdata);
int rd_h_flag_history(struct http_request *req, void *userdata);
int rd_h_segments_list(struct http_request *req, void *userdata);
int rd_h_segments_create(struct http_request *req, void *userdata);
int rd_h_segment_get(struct http_request *req, void *userdata);
int rd_h_segment_update(struct http_request *req, void *userdata);
int rd_h_segment_delete(struct http_request *req, void *userdata);
int rd_h_tokens_list(struct http_request *req, void *userdata);
int rd_h_tokens_create(struct http_request *req, void *userdata);
int rd_h_token_delete(struct http_request *req, void *userdata);
int rd_h_environments(struct http_request *req, void *userdata);
int rd_h_ofrep_flag(struct http_request *req, void *userdata);
int rd_h_ofrep_bulk(struct http_request *req, void *userdata);
int rd_h_ofrep_configuration(struct http_request *req, void *userdata);
int rd_h_snapshot(struct http_request *req, void *userdata);
int rd_h_stream(struct http_request *req, void *userdata);
int rd_h_healthz(struct http_request *req, void *userdata);
int rd_h_readyz(struct http_request *req, void *userdata);
int rd_h_metrics(struct http_request *req, void *userdata);
/* routes_rollout.c */
int rd_h_rollouts_list(struct http_request *req, void *userdata);
int rd_h_rollout_get(struct http_request *req, void *userdata);
int rd_h_rollout_start(struct http_request *req, void *userdata);
int rd_h_rollout_pause(struct http_request *req, void *userdata);
int rd_h_rollout_resume(struct http_request *req, void *userdata);
int rd_h_rollout_abort(struct http_request *req, void *userdata);

/* routes_admin.c helpers shared with the others */
/* Maps a store/engine error to the HTTP error detail: e->msg is the message, e->field (when set)
 * the error's "field". */
int rd_error_from_err(struct http_request *req, int r, const struct err *e);
