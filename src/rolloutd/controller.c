/* SPDX-License-Identifier: MIT */
/* controller.c - the rollout controller: one thread per rolloutd that, while it holds the store's
 * lease "rollout-controller", walks every rollout: applies the stage its record asks for, runs
 * the step's analysis (Prometheus instant queries) when due, decides (plan_decide), writes the
 * decision to the store and only then acts on it (flag change with the reason in the flag's
 * history, Alertmanager-style webhook).  Every write of a rollout is version-checked, so two
 * controllers that both believe they lead cannot promote twice.  Replicas without the lease
 * only keep their view for /metrics. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "metrics/metrics.h"
#include "plan.h"
#include "prom.h"
#include "rolloutd.h"
#include "store.h"

#define LEASE_NAME   "rollout-controller"
#define ACTOR        "rollout-controller"
#define RUN_JSON_MAX (8u << 20)

/* What /metrics shows of one rollout (refreshed every tick, leader or not). */
struct ctl_view {
    char *flag, *env;
    enum plan_state state;
    unsigned step;
};

struct rd_ctl {
    struct rd *rd; /* borrowed */
    struct rd_ctl_config cfg;
    char holder[64];
    pthread_t thread;
    bool started;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    bool stop, wake, leader;
    uint64_t lease_renewed_usec; /* controller thread only */
    struct ctl_view *views;
    size_t n_views;

    struct metrics_family *m_checks;    /* {flag, env, metric, result} */
    struct metrics_family *m_value;     /* {flag, env, metric} */
    struct metrics_family *m_decisions; /* {flag, env, decision} */
    struct metrics_family *m_webhooks;  /* {result} */
};

/* ===== Flags ===== */

/* The engine's defaults for a stage percentage the flag does not set (docs/flags.md). */
static double default_percent(enum rollout_stage s)
{
    switch (s) {
    case ROLLOUT_STAGE_SHADOW:
        return 100;
    case ROLLOUT_STAGE_CANARY:
        return 1;
    case ROLLOUT_STAGE_PARTIAL:
        return 25;
    case ROLLOUT_STAGE_FULL:
        return 100;
    default:
        return 0;
    }
}

int rd_flag_env_get(const char *flag_json, const char *env, enum rollout_stage *ret_stage,
                    double *ret_percent, bool *ret_kill)
{
    json_t *j = json_loads(flag_json, 0, NULL);
    json_t *ej = json_object_get(json_object_get(j, "environments"), env), *pct;
    const char *name = json_string_value(json_object_get(ej, "stage"));
    int stage = name ? rollout_stage_from_name(name) : ROLLOUT_STAGE_OFF;

    if (!j)
        return -EINVAL;
    if (stage < 0)
        stage = ROLLOUT_STAGE_OFF;
    *ret_stage = (enum rollout_stage)stage;
    pct = json_object_get(ej, rollout_stage_name(*ret_stage));
    *ret_percent = json_is_number(pct) ? json_number_value(pct) : default_percent(*ret_stage);
    *ret_kill = json_is_true(json_object_get(ej, "kill"));
    json_decref(j);
    return 0;
}

/* The engine wants canary <= partial (the canary cohort inside the partial one).  A plan's steps
 * keep that among themselves, but the flag's other percentage may predate the plan: moving to
 * canary P raises a lower partial to P, moving to partial P lowers a higher canary to P.  Neither
 * changes who gets the candidate now (only the current stage's percentage counts). */
static void keep_canary_inside_partial(json_t *env, enum rollout_stage stage, double pct)
{
    const char *other = stage == ROLLOUT_STAGE_CANARY    ? "partial"
                        : stage == ROLLOUT_STAGE_PARTIAL ? "canary"
                                                         : NULL;
    json_t *v;
    double cur;

    if (!other)
        return;
    v = json_object_get(env, other);
    cur = json_is_number(v) ? json_number_value(v)
                            : default_percent(stage == ROLLOUT_STAGE_CANARY ? ROLLOUT_STAGE_PARTIAL
                                                                            : ROLLOUT_STAGE_CANARY);
    if ((stage == ROLLOUT_STAGE_CANARY && cur < pct) ||
        (stage == ROLLOUT_STAGE_PARTIAL && cur > pct))
        (void)json_object_set_new(env, other, json_real(pct));
}

/* Gives the flag the run's target in its environment (idempotent: a flag already so is left
 * alone, so a controller restarted between the decision and the change repeats nothing).
 * Caller holds rd->lock.  -ENOENT when the flag is gone; -EINVAL with e when the engine refuses
 * the result. */
static int apply_target(struct rd *rd, const struct plan_run *run, const char *action,
                        struct err *e)
{
    struct rd_item *it = rd_item_find(rd, RD_FLAGS, run->flag);
    struct rd_change c = { .kind = RD_FLAGS, .key = run->flag, .actor = ACTOR, .action = action };
    struct rollout_flag *parsed = NULL, *fv = NULL;
    struct buf b = BUF_INIT(ROLLOUT_FLAG_JSON_MAX * 2);
    enum rollout_stage stage;
    double pct;
    bool kill;
    json_t *j, *envs, *env;
    char *text = NULL;
    int r;

    if (!it)
        return err_set(e, -ENOENT, 0, 0, "flag '%s' no longer exists", run->flag);
    plan_run_target(run, &stage, &pct, &kill);
    j = json_loads(it->json, 0, NULL);
    envs = json_object_get(j, "environments");
    if (j && !json_is_object(envs)) {
        envs = json_object();
        (void)json_object_set_new(j, "environments", envs);
    }
    env = json_object_get(envs, run->plan.environment);
    if (envs && !json_is_object(env)) {
        env = json_object();
        (void)json_object_set_new(envs, run->plan.environment, env);
    }
    if (!env) {
        json_decref(j);
        return -ENOMEM;
    }
    if (kill) {
        (void)json_object_set_new(env, "kill", json_true());
    } else {
        (void)json_object_set_new(env, "stage", json_string(rollout_stage_name(stage)));
        if (stage != ROLLOUT_STAGE_OFF && stage != ROLLOUT_STAGE_FULL)
            (void)json_object_set_new(env, rollout_stage_name(stage), json_real(pct));
        keep_canary_inside_partial(env, stage, pct);
    }
    text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(j);
    if (!text)
        return -ENOMEM;
    r = rollout_flag_parse(text, strlen(text), &parsed, e);
    free(text);
    if (r < 0)
        return r;
    r = rd_flags_equal(parsed, it->flag);
    if (r != 0) {
        rollout_flag_unref(parsed);
        return r < 0 ? r : 0;
    }
    fv = rollout_flag_with_version(parsed, it->version + 1);
    rollout_flag_unref(parsed);
    if (!fv)
        return -ENOMEM;
    r = rollout_flag_serialize(fv, NULL, &b);
    if (r < 0) {
        rollout_flag_unref(fv);
        buf_release(&b);
        return r;
    }
    c.json = buf_str(&b);
    c.flag = fv; /* taken over by rd_commit */
    c.version = it->version + 1;
    c.expect_version = it->version;
    c.reason = run->reason;
    r = rd_commit(rd, &c, e);
    buf_release(&b);
    if (r >= 0)
        log_notice("rollout %s: %s %s in %s (%s)", run->flag, action,
                   kill ? "kill" : rollout_stage_name(stage), run->plan.environment, run->reason);
    return r;
}

/* ===== Store ===== */

static int run_save(struct rd *rd, struct plan_run *run, struct err *e)
{
    struct buf b = BUF_INIT(RUN_JSON_MAX);
    int r = plan_run_serialize(run, false, &b);

    if (r >= 0) {
        (void)pthread_mutex_lock(&rd->lock);
        r = store_rollout_put(rd->store, run->flag, run->version, buf_str(&b), e);
        (void)pthread_mutex_unlock(&rd->lock);
    }
    buf_release(&b);
    if (r >= 0)
        run->version++;
    return r;
}

int rd_rollout_save(struct rd *rd, struct plan_run *run, struct err *e)
{
    return run_save(rd, run, e);
}

int rd_rollout_load(struct rd *rd, const char *flag, struct plan_run **ret, size_t *ret_n,
                    struct err *e)
{
    struct store_row *rows = NULL;
    struct plan_run *runs;
    size_t n = 0, k = 0;
    int r;

    (void)pthread_mutex_lock(&rd->lock);
    r = store_rollout_list(rd->store, flag, &rows, &n, e);
    (void)pthread_mutex_unlock(&rd->lock);
    if (r < 0)
        return r;
    runs = xcalloc(n + 1, sizeof *runs);
    for (size_t i = 0; i < n; i++) {
        struct err pe = ERR_INIT;
        if (plan_run_parse(rows[i].json, strlen(rows[i].json), &runs[k], &pe) < 0) {
            log_error("ignoring stored rollout '%s': %s", rows[i].key, pe.msg);
            continue;
        }
        runs[k++].version = rows[i].version;
    }
    store_rows_free(rows, n);
    if (flag && k == 0) {
        free(runs);
        return err_set(e, -ENOENT, 0, 0, "no rollout of '%s'", flag);
    }
    *ret = runs;
    *ret_n = k;
    return 0;
}

void rd_rollouts_free(struct plan_run *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++)
        plan_run_release(&runs[i]);
    free(runs);
}

/* ===== Webhook ===== */

static void count(struct metrics_family *f, const char *const *labels)
{
    struct metrics_series *s = f ? metrics_series_get(f, labels) : NULL;
    if (s)
        metrics_counter_add(s, 1);
}

/* Alertmanager's webhook payload (version 4), so anything that takes Alertmanager's webhooks
 * takes ours: one firing alert, RolloutRolledBack (critical), RolloutPaused (no data; warning)
 * or RolloutFailed (the controller could not act; critical). */
static int send_webhook(struct rd_ctl *ctl, const struct plan_run *run)
{
    const struct plan_step *st = &run->plan.steps[run->step];
    const char *name = run->state == PLAN_STATE_PAUSED   ? "RolloutPaused"
                       : run->state == PLAN_STATE_FAILED ? "RolloutFailed"
                                                         : "RolloutRolledBack";
    const char *summary =
            run->state == PLAN_STATE_PAUSED   ? "rollout paused: its analysis has no data"
            : run->state == PLAN_STATE_FAILED ? "rollout failed: rolloutd could not act"
                                              : "rollout rolled back by its analysis";
    char at[40], step[16];
    time_t t = (time_t)(run->updated_usec / 1000000);
    struct tm tm;
    struct httpc_response rep;
    json_t *labels, *annotations, *doc;
    char *body;
    int r;

    (void)gmtime_r(&t, &tm);
    (void)strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    (void)snprintf(step, sizeof step, "%u", run->step);
    labels = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "alertname", name, "severity",
                       run->state == PLAN_STATE_PAUSED ? "warning" : "critical", "flag", run->flag,
                       "env", run->plan.environment, "step", step, "stage",
                       rollout_stage_name(st->stage), "state", plan_state_name(run->state));
    annotations = json_pack("{s:s, s:s}", "summary", summary, "description",
                            run->reason ? run->reason : "");
    doc = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:O, s:O, s:s, s:[{s:s, s:O, s:O, s:s, s:s, "
                    "s:s, s:s}], s:i}",
                    "version", "4", "groupKey", run->flag, "status", "firing", "receiver",
                    "rolloutd", "groupLabels", "alertname", name, "commonLabels", labels,
                    "commonAnnotations", annotations, "externalURL", "", "alerts", "status",
                    "firing", "labels", labels, "annotations", annotations, "startsAt", at,
                    "endsAt", "0001-01-01T00:00:00Z", "generatorURL", "", "fingerprint", run->flag,
                    "truncatedAlerts", 0);
    json_decref(labels);
    json_decref(annotations);
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body)
        return -ENOMEM;
    r = httpc_call(&(struct httpc_request){ .method = "POST",
                                            .url = ctl->cfg.webhook_url,
                                            .body = body,
                                            .timeout_ms = ctl->cfg.query_timeout_ms },
                   &rep);
    free(body);
    if (r >= 0 && (rep.status < 200 || rep.status > 299))
        r = -EIO;
    if (r < 0)
        log_warning("rollout %s: webhook %s failed: %s (retrying)", run->flag, ctl->cfg.webhook_url,
                    rep.error[0] ? rep.error : "HTTP error status");
    httpc_response_release(&rep);
    count(ctl->m_webhooks, (const char *const[]){ r < 0 ? "error" : "sent", NULL });
    return r;
}

/* ===== One rollout ===== */

static const char *apply_action(const struct plan_run *run)
{
    switch (run->state) {
    case PLAN_STATE_ROLLED_BACK:
        return run->rollback_kill ? "rollout.kill" : "rollout.rollback";
    case PLAN_STATE_ABORTED:
        return "rollout.abort";
    default:
        return run->step == 0 ? "rollout.start" : "rollout.promote";
    }
}

/* Runs every metric of the current step.  samples[i] belongs to the step's metric i. */
static void analyse(struct rd_ctl *ctl, const struct plan_run *run, struct plan_sample *samples)
{
    const struct plan_step *st = &run->plan.steps[run->step];

    for (size_t i = 0; i < st->n_metrics; i++) {
        const struct plan_metric *m = &st->metrics[i];
        const char *res;
        struct err e = ERR_INIT;
        double v = (double)NAN;
        int r = prom_query(ctl->cfg.prometheus_url, m->query, ctl->cfg.query_timeout_ms, &v, &e);

        samples[i] = (struct plan_sample){ .metric = m->name, .value = v, .nodata = r <= 0 };
        if (r < 0)
            log_warning("rollout %s: %s: %s (counted as no data)", run->flag, m->name, e.msg);
        res = r <= 0                                                       ? "nodata"
              : ((m->has_min && v < m->min) || (m->has_max && v > m->max)) ? "fail"
                                                                           : "pass";
        count(ctl->m_checks,
              (const char *const[]){ run->flag, run->plan.environment, m->name, res, NULL });
        if (r > 0) {
            struct metrics_series *s = metrics_series_get(
                    ctl->m_value,
                    (const char *const[]){ run->flag, run->plan.environment, m->name, NULL });
            if (s)
                metrics_gauge_set(s, v);
        }
    }
}

/* Moves one rollout as far as it can go now.  Every decision is stored before it is acted on;
 * -ESTALE (someone else wrote the record: an operator, another controller) ends the turn, and
 * the next tick starts from the store again. */
static int step_rollout(struct rd_ctl *ctl, struct plan_run *run)
{
    struct rd *rd = ctl->rd;
    struct err e = ERR_INIT;
    int r;

    for (unsigned guard = 0; guard < 4; guard++) {
        if (!run->applied) {
            (void)pthread_mutex_lock(&rd->lock);
            r = apply_target(rd, run, apply_action(run), &e);
            (void)pthread_mutex_unlock(&rd->lock);
            if (r == -ENOENT || r == -EINVAL) {
                char why[400];
                (void)snprintf(why, sizeof why, "cannot change the flag: %s", e.msg);
                log_error("rollout %s: %s", run->flag, why);
                plan_run_fail(run, now_realtime_usec(), why);
                return run_save(rd, run, &e);
            }
            if (r < 0)
                return r; /* store trouble or a concurrent change: next tick */
            run->applied = true;
            run->updated_usec = now_realtime_usec();
            r = run_save(rd, run, &e);
            if (r < 0)
                return r;
        }
        if (run->notify && ctl->cfg.webhook_url) {
            if (send_webhook(ctl, run) < 0)
                return 0;
            run->notify = false;
            r = run_save(rd, run, &e);
            if (r < 0)
                return r;
        }
        if (plan_run_due(run, now_realtime_usec())) {
            const struct plan_step *st = &run->plan.steps[run->step];
            struct plan_sample samples[PLAN_MAX_METRICS];
            enum plan_decision d;
            uint64_t now;

            analyse(ctl, run, samples);
            now = now_realtime_usec();
            d = plan_decide(run, samples, st->n_metrics, now);
            if (d == PLAN_DECISION_WAIT)
                return 0;
            /* A step without metrics only waits out its duration: no entry per tick. */
            if (d == PLAN_DECISION_CONTINUE && st->n_metrics == 0)
                return 0;
            plan_run_apply(run, d, samples, st->n_metrics, now);
            r = run_save(rd, run, &e);
            if (r < 0)
                return r;
            count(ctl->m_decisions, (const char *const[]){ run->flag, run->plan.environment,
                                                           plan_decision_name(d), NULL });
            if (d != PLAN_DECISION_CONTINUE)
                log_notice("rollout %s: %s: %s", run->flag, plan_decision_name(d), run->reason);
            continue; /* act on the decision now */
        }
        return 0;
    }
    return 0;
}

/* ===== The thread ===== */

static void views_set(struct rd_ctl *ctl, const struct plan_run *runs, size_t n, bool leader)
{
    struct ctl_view *v = xcalloc(n + 1, sizeof *v);

    for (size_t i = 0; i < n; i++)
        v[i] = (struct ctl_view){ .flag = xstrdup(runs[i].flag),
                                  .env = xstrdup(runs[i].plan.environment),
                                  .state = runs[i].state,
                                  .step = runs[i].step };
    (void)pthread_mutex_lock(&ctl->lock);
    for (size_t i = 0; i < ctl->n_views; i++) {
        free(ctl->views[i].flag);
        free(ctl->views[i].env);
    }
    free(ctl->views);
    ctl->views = v;
    ctl->n_views = n;
    ctl->leader = leader;
    (void)pthread_mutex_unlock(&ctl->lock);
}

static void tick(struct rd_ctl *ctl)
{
    struct rd *rd = ctl->rd;
    struct plan_run *runs = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    bool leader;
    int r;

    /* A held lease is renewed once a third of its lifetime has passed (one write then, not one
     * per tick: SQLite fsyncs every commit); the holder is still well inside it. */
    if (ctl->leader && now_usec() < ctl->lease_renewed_usec + ctl->cfg.lease_ttl_ms * 1000ull / 3) {
        r = 1;
    } else {
        uint64_t t0 = now_usec();
        (void)pthread_mutex_lock(&rd->lock);
        r = store_lease(rd->store, LEASE_NAME, ctl->holder, ctl->cfg.lease_ttl_ms, &e);
        (void)pthread_mutex_unlock(&rd->lock);
        if (r == 1)
            ctl->lease_renewed_usec = t0;
    }
    if (r < 0) {
        log_warning("rollout controller: lease: %s", e.msg);
        views_set(ctl, NULL, 0, false);
        return;
    }
    leader = r == 1;
    if (leader != ctl->leader)
        log_notice("rollout controller: %s",
                   leader ? "leading (holds the lease)" : "standing by (another replica leads)");
    r = rd_rollout_load(rd, NULL, &runs, &n, &e);
    if (r < 0) {
        log_warning("rollout controller: cannot read rollouts: %s", e.msg);
        return;
    }
    for (size_t i = 0; leader && i < n; i++) {
        struct plan_run *run = &runs[i];
        if (plan_state_final(run->state) && run->applied && !run->notify)
            continue;
        if (run->state == PLAN_STATE_PAUSED && run->applied && !run->notify)
            continue;
        r = step_rollout(ctl, run);
        if (r < 0 && r != -ESTALE)
            log_warning("rollout %s: %s", run->flag, e.msg[0] ? e.msg : strerror(-r));
    }
    views_set(ctl, runs, n, leader);
    rd_rollouts_free(runs, n);
}

static void *ctl_main(void *arg)
{
    struct rd_ctl *ctl = arg;

    (void)pthread_mutex_lock(&ctl->lock);
    while (!ctl->stop) {
        struct timespec ts;

        (void)pthread_mutex_unlock(&ctl->lock);
        tick(ctl);
        (void)pthread_mutex_lock(&ctl->lock);
        if (ctl->stop)
            break;
        if (!ctl->wake) {
            (void)clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += ctl->cfg.tick_ms / 1000;
            ts.tv_nsec += (long)(ctl->cfg.tick_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!ctl->stop && !ctl->wake &&
                   pthread_cond_timedwait(&ctl->cond, &ctl->lock, &ts) == 0)
                ;
        }
        ctl->wake = false;
    }
    (void)pthread_mutex_unlock(&ctl->lock);
    return NULL;
}

void rd_ctl_wake(struct rd *rd)
{
    struct rd_ctl *ctl = rd->ctl;

    if (!ctl)
        return;
    (void)pthread_mutex_lock(&ctl->lock);
    ctl->wake = true;
    (void)pthread_cond_signal(&ctl->cond);
    (void)pthread_mutex_unlock(&ctl->lock);
}

int rd_ctl_start(struct rd *rd, const struct rd_ctl_config *cfg, struct err *e)
{
    static const char *const check_labels[] = { "flag", "env", "metric", "result", NULL };
    static const char *const value_labels[] = { "flag", "env", "metric", NULL };
    static const char *const decision_labels[] = { "flag", "env", "decision", NULL };
    static const char *const webhook_labels[] = { "result", NULL };
    struct rd_ctl *ctl = xcalloc(1, sizeof *ctl);
    pthread_condattr_t ca;
    uint32_t rnd = 0;
    char host[32] = "";
    int r;

    ctl->rd = rd;
    ctl->cfg = *cfg;
    (void)gethostname(host, sizeof host - 1);
    if (getrandom(&rnd, sizeof rnd, 0) < 0)
        rnd = (uint32_t)now_usec();
    (void)snprintf(ctl->holder, sizeof ctl->holder, "%s/%ld/%08" PRIx32, host, (long)getpid(), rnd);
    (void)pthread_mutex_init(&ctl->lock, NULL);
    (void)pthread_condattr_init(&ca);
    (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    (void)pthread_cond_init(&ctl->cond, &ca);
    (void)pthread_condattr_destroy(&ca);
    r = metrics_family_register(rd->metrics, METRICS_COUNTER, "rolloutd_rollout_checks_total",
                                "Rollout analysis results, by flag, environment, metric and "
                                "result (pass, fail, nodata).",
                                check_labels, NULL, 0, &ctl->m_checks);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_GAUGE, "rolloutd_rollout_analysis_value",
                                    "The last value of each rollout analysis metric.", value_labels,
                                    NULL, 0, &ctl->m_value);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_COUNTER,
                                    "rolloutd_rollout_decisions_total",
                                    "Rollout controller decisions (continue, promote, succeed, "
                                    "pause, rollback), by flag and environment.",
                                    decision_labels, NULL, 0, &ctl->m_decisions);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_COUNTER, "rolloutd_rollout_webhooks_total",
                                    "Rollback webhooks, by result (sent, error).", webhook_labels,
                                    NULL, 0, &ctl->m_webhooks);
    if (r < 0) {
        rd->ctl = ctl;
        rd_ctl_stop(rd);
        return err_set(e, r, 0, 0, "cannot register the controller's metrics: %s", strerror(-r));
    }
    rd->ctl = ctl;
    r = -pthread_create(&ctl->thread, NULL, ctl_main, ctl);
    if (r < 0) {
        rd_ctl_stop(rd);
        return err_set(e, r, 0, 0, "cannot start the rollout controller: %s", strerror(-r));
    }
    ctl->started = true;
    log_info("rollout controller %s: prometheus %s, webhook %s, lease %u ms", ctl->holder,
             cfg->prometheus_url, cfg->webhook_url ? cfg->webhook_url : "(none)",
             cfg->lease_ttl_ms);
    return 0;
}

void rd_ctl_stop(struct rd *rd)
{
    struct rd_ctl *ctl = rd->ctl;
    struct err e = ERR_INIT;

    if (!ctl)
        return;
    if (ctl->started) {
        (void)pthread_mutex_lock(&ctl->lock);
        ctl->stop = true;
        (void)pthread_cond_signal(&ctl->cond);
        (void)pthread_mutex_unlock(&ctl->lock);
        (void)pthread_join(ctl->thread, NULL);
        /* Hand the lease over now rather than after its expiry. */
        (void)pthread_mutex_lock(&rd->lock);
        if (store_lease(rd->store, LEASE_NAME, ctl->holder, 0, &e) < 0)
            log_warning("rollout controller: cannot release the lease: %s", e.msg);
        (void)pthread_mutex_unlock(&rd->lock);
    }
    views_set(ctl, NULL, 0, false);
    free(ctl->views);
    (void)pthread_cond_destroy(&ctl->cond);
    (void)pthread_mutex_destroy(&ctl->lock);
    free(ctl);
    rd->ctl = NULL;
}

/* ===== /metrics ===== */

static int write_views(struct rd_ctl *ctl, struct buf *out)
{
    static const char *const step_labels[] = { "flag", "env" };
    static const char *const state_labels[] = { "flag", "env", "state" };
    int r;

    r = metrics_text_header(out, "rolloutd_rollout_leader", METRICS_GAUGE,
                            "1 when this replica's rollout controller holds the lease.");
    if (r >= 0)
        r = metrics_text_sample(out, "rolloutd_rollout_leader", NULL, NULL, 0, ctl->leader ? 1 : 0);
    if (r >= 0)
        r = metrics_text_header(out, "rolloutd_rollout_step", METRICS_GAUGE,
                                "The step (0-based index into the plan's steps) of each rollout.");
    for (size_t i = 0; r >= 0 && i < ctl->n_views; i++)
        r = metrics_text_sample(out, "rolloutd_rollout_step", step_labels,
                                (const char *const[]){ ctl->views[i].flag, ctl->views[i].env }, 2,
                                ctl->views[i].step);
    if (r >= 0)
        r = metrics_text_header(out, "rolloutd_rollout_state", METRICS_GAUGE,
                                "Each rollout's state, one series per state (1 = current).");
    for (size_t i = 0; r >= 0 && i < ctl->n_views; i++)
        for (unsigned s = 0; r >= 0 && s < _PLAN_STATE_MAX; s++)
            r = metrics_text_sample(out, "rolloutd_rollout_state", state_labels,
                                    (const char *const[]){ ctl->views[i].flag, ctl->views[i].env,
                                                           plan_state_name(s) },
                                    3, ctl->views[i].state == s ? 1 : 0);
    return r;
}

/* rolloutd_flag_stage{env,flag,stage} (one-hot), rolloutd_flag_percent and rolloutd_flag_killed
 * from the model as it is now, so deleted flags leave no stale series.  Caller holds rd->lock. */
static int write_flag_stages(struct rd *rd, struct buf *out)
{
    static const char *const stage_labels[] = { "env", "flag", "stage" };
    static const char *const flag_labels[] = { "env", "flag" };
    static const char *const names[] = { "rolloutd_flag_stage", "rolloutd_flag_percent",
                                         "rolloutd_flag_killed" };
    static const char *const helps[] = {
        "Each flag's stage per environment, one series per stage (1 = current).",
        "The percentage of each flag's current stage (full 100, off 0).",
        "1 when the flag's kill switch is on in the environment.",
    };
    int r = 0;

    for (size_t m = 0; r >= 0 && m < 3; m++) {
        r = metrics_text_header(out, names[m], METRICS_GAUGE, helps[m]);
        for (size_t i = 0; r >= 0 && i < rd->n_items[RD_FLAGS]; i++) {
            const struct rd_item *it = &rd->items[RD_FLAGS][i];
            for (size_t k = 0; r >= 0 && k < rd->n_envs; k++) {
                const char *env = rd->env_names[k];
                enum rollout_stage st;
                double pct;
                bool kill;

                if (rd_flag_env_get(it->json, env, &st, &pct, &kill) < 0)
                    continue;
                if (m == 0) {
                    for (unsigned s = 0; r >= 0 && s < _ROLLOUT_STAGE_MAX; s++)
                        r = metrics_text_sample(
                                out, names[m], stage_labels,
                                (const char *const[]){ env, it->key, rollout_stage_name(s) }, 3,
                                st == s ? 1 : 0);
                } else {
                    double v = m == 1 ? (st == ROLLOUT_STAGE_OFF ? 0 : pct) : (kill ? 1 : 0);
                    r = metrics_text_sample(out, names[m], flag_labels,
                                            (const char *const[]){ env, it->key }, 2, v);
                }
            }
        }
    }
    return r;
}

int rd_rollout_metrics(struct rd *rd, struct buf *out)
{
    struct rd_ctl *ctl = rd->ctl;
    int r = 0;

    if (ctl) {
        (void)pthread_mutex_lock(&ctl->lock);
        r = write_views(ctl, out);
        (void)pthread_mutex_unlock(&ctl->lock);
    }
    if (r >= 0) {
        (void)pthread_mutex_lock(&rd->lock);
        r = write_flag_stages(rd, out);
        (void)pthread_mutex_unlock(&rd->lock);
    }
    return r;
}
