/* SPDX-License-Identifier: MIT */
/* plan.c - rollout plans: parsing with field paths, the stored and API JSON of a rollout, and
 * the decision function (pure: state + one analysis's samples -> decision). */
#include "plan.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"

#define USEC 1000000ull

static const char *const state_names[_PLAN_STATE_MAX] = {
    [PLAN_STATE_RUNNING] = "running",     [PLAN_STATE_PAUSED] = "paused",
    [PLAN_STATE_SUCCEEDED] = "succeeded", [PLAN_STATE_ROLLED_BACK] = "rolled_back",
    [PLAN_STATE_ABORTED] = "aborted",     [PLAN_STATE_FAILED] = "failed",
};
static const char *const result_names[_PLAN_RESULT_MAX] = {
    [PLAN_RESULT_PASS] = "pass",
    [PLAN_RESULT_FAIL] = "fail",
    [PLAN_RESULT_NODATA] = "nodata",
};
static const char *const decision_names[_PLAN_DECISION_MAX] = {
    [PLAN_DECISION_WAIT] = "wait",       [PLAN_DECISION_CONTINUE] = "continue",
    [PLAN_DECISION_PROMOTE] = "promote", [PLAN_DECISION_SUCCEED] = "succeed",
    [PLAN_DECISION_PAUSE] = "pause",     [PLAN_DECISION_ROLLBACK] = "rollback",
};
static const char *const no_data_names[_PLAN_NO_DATA_MAX] = {
    [PLAN_NO_DATA_PAUSE] = "pause",
    [PLAN_NO_DATA_FAIL] = "fail",
};
static const char *const on_failure_names[_PLAN_ON_FAILURE_MAX] = {
    [PLAN_ON_FAILURE_ROLLBACK] = "rollback",
    [PLAN_ON_FAILURE_KILL] = "kill",
};

static int name_index(const char *const *names, unsigned n, const char *s)
{
    for (unsigned i = 0; s && i < n; i++)
        if (streq(names[i], s))
            return (int)i;
    return -EINVAL;
}

const char *plan_state_name(enum plan_state s)
{
    return (unsigned)s < _PLAN_STATE_MAX ? state_names[s] : NULL;
}

const char *plan_result_name(enum plan_result r)
{
    return (unsigned)r < _PLAN_RESULT_MAX ? result_names[r] : NULL;
}

const char *plan_decision_name(enum plan_decision d)
{
    return (unsigned)d < _PLAN_DECISION_MAX ? decision_names[d] : NULL;
}

bool plan_state_final(enum plan_state s)
{
    return s != PLAN_STATE_RUNNING && s != PLAN_STATE_PAUSED;
}

/* ===== Parsing ===== */

/* "field 'PATH': MESSAGE", with PATH also in e->field. */
static int field_err(struct err *e, const char *path, const char *fmt, ...) PRINTF(3, 4);
static int field_err(struct err *e, const char *path, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)err_set(e, -EINVAL, 0, 0, "field '%s': %s", path, msg);
    err_set_field(e, path);
    return -EINVAL;
}

/* Paths are cut at n bytes (messages stay readable; plans this deep do not exist). */
static void path_join(char *out, size_t n, const char *path, const char *key)
{
    int r = snprintf(out, n, "%s%s%s", path, path[0] ? "." : "", key);

    if (r < 0)
        out[0] = '\0';
}

static void path_index(char *out, size_t n, const char *path, size_t i)
{
    int r = snprintf(out, n, "%s[%zu]", path, i);

    if (r < 0)
        out[0] = '\0';
}

/* Unknown keys are errors, as in flags. */
static int only_keys(json_t *obj, const char *path, const char *const *allowed, struct err *e)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = streq(allowed[i], k);
        if (!ok) {
            char p[200];
            path_join(p, sizeof p, path, k);
            return field_err(e, p, "unknown field");
        }
    }
    return 0;
}

/* An integer field in [min, max]; *ret keeps its default when absent. */
static int get_uint(json_t *obj, const char *path, const char *key, uint64_t min, uint64_t max,
                    uint64_t *ret, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    char p[200];

    if (!v)
        return 0;
    path_join(p, sizeof p, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max)
        return field_err(e, p, "must be an integer within %" PRIu64 "..%" PRIu64, min, max);
    *ret = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_enum(json_t *obj, const char *key, const char *const *names, unsigned n, int *ret,
                    struct err *e)
{
    json_t *v = json_object_get(obj, key);
    int i;

    if (!v)
        return 0;
    i = name_index(names, n, json_string_value(v));
    if (i < 0)
        return field_err(e, key, "must be %s or %s", names[0], names[1]);
    *ret = i;
    return 0;
}

static bool metric_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static int parse_threshold(json_t *t, const char *path, struct plan_metric *m, struct err *e)
{
    static const char *const keys[] = { "min", "max", NULL };
    json_t *min = json_object_get(t, "min"), *max = json_object_get(t, "max");
    char p[200];
    int r;

    if (!json_is_object(t))
        return field_err(e, path, "must be an object with min and/or max");
    r = only_keys(t, path, keys, e);
    if (r < 0)
        return r;
    if (!min && !max)
        return field_err(e, path, "needs min, max or both");
    if (min && !json_is_number(min)) {
        path_join(p, sizeof p, path, "min");
        return field_err(e, p, "must be a number");
    }
    if (max && !json_is_number(max)) {
        path_join(p, sizeof p, path, "max");
        return field_err(e, p, "must be a number");
    }
    m->has_min = min != NULL;
    m->has_max = max != NULL;
    m->min = min ? json_number_value(min) : 0;
    m->max = max ? json_number_value(max) : 0;
    if (m->has_min && m->has_max && m->min > m->max)
        return field_err(e, path, "min %g is above max %g", m->min, m->max);
    return 0;
}

static int parse_metric(json_t *j, const char *path, struct plan_step *st, struct err *e)
{
    static const char *const keys[] = { "name", "query", "threshold", NULL };
    struct plan_metric *m = &st->metrics[st->n_metrics];
    const char *name, *query;
    char p[200];
    int r;

    if (!json_is_object(j))
        return field_err(e, path, "must be an object (name, query, threshold)");
    r = only_keys(j, path, keys, e);
    if (r < 0)
        return r;
    name = json_string_value(json_object_get(j, "name"));
    query = json_string_value(json_object_get(j, "query"));
    path_join(p, sizeof p, path, "name");
    if (!name || !metric_name_ok(name))
        return field_err(e, p, "must be a name of [a-z0-9_], 1-64 characters");
    for (size_t i = 0; i < st->n_metrics; i++)
        if (streq(st->metrics[i].name, name))
            return field_err(e, p, "'%s' is named twice in this step", name);
    path_join(p, sizeof p, path, "query");
    if (!query || !query[0] || strlen(query) > PLAN_QUERY_MAX)
        return field_err(e, p, "must be a PromQL query of 1-%d bytes", PLAN_QUERY_MAX);
    path_join(p, sizeof p, path, "threshold");
    r = parse_threshold(json_object_get(j, "threshold"), p, m, e);
    if (r < 0)
        return r;
    m->name = xstrdup(name);
    m->query = xstrdup(query);
    st->n_metrics++;
    return 0;
}

static bool percent_ok(double p)
{
    double scaled = p * 1000.0;
    return p > 0 && p <= 100 && fabs(scaled - round(scaled)) < 1e-6;
}

static int parse_step(json_t *j, const char *path, const struct plan_step *prev,
                      struct plan_step *st, struct err *e)
{
    static const char *const keys[] = { "stage", "percent", "duration_s", "analysis", NULL };
    json_t *pct, *an;
    char p[200];
    int stage, r;

    if (!json_is_object(j))
        return field_err(e, path, "must be an object (stage, percent, duration_s, analysis)");
    r = only_keys(j, path, keys, e);
    if (r < 0)
        return r;
    path_join(p, sizeof p, path, "stage");
    stage = rollout_stage_from_name(json_string_value(json_object_get(j, "stage")));
    if (stage < 0 || stage == ROLLOUT_STAGE_OFF)
        return field_err(e, p, "must be shadow, canary, partial or full");
    st->stage = (enum rollout_stage)stage;
    pct = json_object_get(j, "percent");
    path_join(p, sizeof p, path, "percent");
    if (st->stage == ROLLOUT_STAGE_FULL) {
        if (pct && (!json_is_number(pct) || json_number_value(pct) != 100))
            return field_err(e, p, "stage full is 100 %%; leave percent out");
        st->percent = 100;
    } else {
        if (!pct)
            return field_err(e, p, "stage %s needs its percentage", rollout_stage_name(st->stage));
        if (!json_is_number(pct) || !percent_ok(json_number_value(pct)))
            return field_err(e, p, "must be a number above 0 and at most 100, in steps of 0.001");
        st->percent = json_number_value(pct);
    }
    if (prev &&
        (st->stage < prev->stage || (st->stage == prev->stage && st->percent <= prev->percent)))
        return field_err(e, path,
                         "goes backwards: %s %g %% follows %s %g %% (steps only move forward)",
                         rollout_stage_name(st->stage), st->percent,
                         rollout_stage_name(prev->stage), prev->percent);
    r = get_uint(j, path, "duration_s", 0, PLAN_DURATION_MAX, &st->duration_s, e);
    if (r < 0)
        return r;
    an = json_object_get(j, "analysis");
    path_join(p, sizeof p, path, "analysis");
    if (an && (!json_is_array(an) || json_array_size(an) > PLAN_MAX_METRICS))
        return field_err(e, p, "must be a list of at most %d metrics", PLAN_MAX_METRICS);
    st->metrics = xcalloc(json_array_size(an) + 1, sizeof *st->metrics);
    for (size_t i = 0; an && i < json_array_size(an); i++) {
        char mp[200];
        path_index(mp, sizeof mp, p, i);
        r = parse_metric(json_array_get(an, i), mp, st, e);
        if (r < 0)
            return r;
    }
    return 0;
}

static int plan_from_json(json_t *j, const char *default_env, struct plan *p, struct err *e)
{
    static const char *const keys[] = { "environment",   "interval_s",
                                        "failure_limit", "consecutive_successes",
                                        "no_data",       "on_failure",
                                        "steps",         NULL };
    json_t *steps, *env;
    uint64_t v;
    int i, r;

    *p = (struct plan){ .interval_s = 60,
                        .failure_limit = 1,
                        .consecutive_successes = 1,
                        .no_data = PLAN_NO_DATA_PAUSE,
                        .on_failure = PLAN_ON_FAILURE_ROLLBACK };
    if (!json_is_object(j))
        return err_set(e, -EINVAL, 0, 0, "a plan must be a JSON object");
    r = only_keys(j, "", keys, e);
    if (r < 0)
        return r;
    env = json_object_get(j, "environment");
    if (env && (!json_is_string(env) || !json_string_value(env)[0]))
        return field_err(e, "environment", "must be an environment's name");
    if (!env && !default_env)
        return field_err(e, "environment", "missing");
    p->environment = xstrdup(env ? json_string_value(env) : default_env);
    r = get_uint(j, "", "interval_s", 1, 86400, &p->interval_s, e);
    v = p->failure_limit;
    if (r >= 0)
        r = get_uint(j, "", "failure_limit", 1, 1000, &v, e);
    p->failure_limit = (unsigned)v;
    v = p->consecutive_successes;
    if (r >= 0)
        r = get_uint(j, "", "consecutive_successes", 1, 10000, &v, e);
    p->consecutive_successes = (unsigned)v;
    i = (int)p->no_data;
    if (r >= 0)
        r = get_enum(j, "no_data", no_data_names, _PLAN_NO_DATA_MAX, &i, e);
    p->no_data = (enum plan_no_data)i;
    i = (int)p->on_failure;
    if (r >= 0)
        r = get_enum(j, "on_failure", on_failure_names, _PLAN_ON_FAILURE_MAX, &i, e);
    p->on_failure = (enum plan_on_failure)i;
    if (r < 0)
        return r;
    steps = json_object_get(j, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > PLAN_MAX_STEPS)
        return field_err(e, "steps", "must be a list of 1-%d steps", PLAN_MAX_STEPS);
    p->steps = xcalloc(json_array_size(steps), sizeof *p->steps);
    for (size_t k = 0; k < json_array_size(steps); k++) {
        char sp[32];
        path_index(sp, sizeof sp, "steps", k);
        r = parse_step(json_array_get(steps, k), sp, k ? &p->steps[k - 1] : NULL, &p->steps[k], e);
        p->n_steps = k + 1;
        if (r < 0)
            return r;
    }
    return 0;
}

int plan_parse(const char *text, size_t len, const char *default_env, struct plan *ret,
               struct err *e)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    struct plan p;
    int r;

    if (!j)
        return err_set(e, -EBADMSG, je.line > 0 ? (unsigned)je.line : 0,
                       je.column > 0 ? (unsigned)je.column : 0, "invalid JSON: %s", je.text);
    r = plan_from_json(j, default_env, &p, e);
    json_decref(j);
    if (r < 0) {
        plan_release(&p);
        return r;
    }
    *ret = p;
    return 0;
}

void plan_release(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_steps; i++) {
        for (size_t k = 0; k < p->steps[i].n_metrics; k++) {
            free(p->steps[i].metrics[k].name);
            free(p->steps[i].metrics[k].query);
        }
        free(p->steps[i].metrics);
    }
    free(p->steps);
    free(p->environment);
    *p = (struct plan){ 0 };
}

/* ===== Runs ===== */

static void set_reason(struct plan_run *run, const char *fmt, ...) PRINTF(2, 3);
static void set_reason(struct plan_run *run, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(run->reason);
    run->reason = xstrdup(msg);
}

void plan_run_start(struct plan_run *run, const char *flag, struct plan *plan,
                    enum rollout_stage base, double base_percent, uint64_t now_usec)
{
    *run = (struct plan_run){ .flag = xstrdup(flag),
                              .plan = *plan,
                              .state = PLAN_STATE_RUNNING,
                              .started_usec = now_usec,
                              .step_started_usec = now_usec,
                              .updated_usec = now_usec,
                              .base_stage = base,
                              .base_percent = base_percent };
    *plan = (struct plan){ 0 };
    set_reason(run, "started");
}

void plan_run_release(struct plan_run *run)
{
    if (!run)
        return;
    for (size_t i = 0; i < run->n_history; i++)
        free(run->history[i].metric);
    free(run->history);
    free(run->flag);
    free(run->reason);
    plan_release(&run->plan);
    *run = (struct plan_run){ 0 };
}

void plan_run_target(const struct plan_run *run, enum rollout_stage *ret_stage, double *ret_percent,
                     bool *ret_kill)
{
    bool back = run->state == PLAN_STATE_ROLLED_BACK || run->state == PLAN_STATE_ABORTED;
    const struct plan_step *st;

    *ret_kill = back && run->rollback_kill;
    if (back && run->step == 0) {
        *ret_stage = run->base_stage;
        *ret_percent = run->base_percent;
        return;
    }
    st = &run->plan.steps[back ? run->step - 1 : run->step];
    *ret_stage = st->stage;
    *ret_percent = st->percent;
}

/* ===== JSON of runs ===== */

static void format_time(uint64_t usec, char out[40])
{
    time_t t = (time_t)(usec / USEC);
    struct tm tm;

    (void)gmtime_r(&t, &tm);
    (void)strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    (void)snprintf(out + strlen(out), 40 - strlen(out), ".%06uZ", (unsigned)(usec % USEC));
}

static json_t *time_json(uint64_t usec, bool api)
{
    char s[40];

    if (!api)
        return json_integer((json_int_t)usec);
    if (!usec)
        return json_null();
    format_time(usec, s);
    return json_string(s);
}

static json_t *steps_json(const struct plan *p)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < p->n_steps; i++) {
        const struct plan_step *st = &p->steps[i];
        json_t *an = json_array();
        for (size_t k = 0; an && k < st->n_metrics; k++) {
            const struct plan_metric *m = &st->metrics[k];
            json_t *th = json_object();
            if (th && m->has_min)
                (void)json_object_set_new(th, "min", json_real(m->min));
            if (th && m->has_max)
                (void)json_object_set_new(th, "max", json_real(m->max));
            (void)json_array_append_new(an, json_pack("{s:s, s:s, s:o*}", "name", m->name, "query",
                                                      m->query, "threshold", th));
        }
        (void)json_array_append_new(arr, json_pack("{s:s, s:f, s:I, s:o*}", "stage",
                                                   rollout_stage_name(st->stage), "percent",
                                                   st->percent, "duration_s",
                                                   (json_int_t)st->duration_s, "analysis", an));
    }
    return arr;
}

static json_t *history_json(const struct plan_run *run, bool api)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < run->n_history; i++) {
        const struct plan_check *c = &run->history[i];
        json_t *v = isnan(c->value) ? json_null() : json_real(c->value);
        (void)json_array_append_new(arr, json_pack("{s:o*, s:i, s:s, s:o*, s:s}", "at",
                                                   time_json(c->at_usec, api), "step", c->step,
                                                   "metric", c->metric, "value", v, "result",
                                                   plan_result_name(c->result)));
    }
    return arr;
}

int plan_run_serialize(const struct plan_run *run, bool api, struct buf *out)
{
    const struct plan *p = &run->plan;
    json_t *j = json_pack(
            "{s:s, s:s, s:s, s:i, s:o*, s:o*, s:o*, s:o*, s:s, s:o*, s:I, s:i, s:i, s:s, s:s, "
            "s:i, s:i, s:o*, s:o*, s:b, s:b, s:b, s:{s:s, s:f}}",
            "flag", run->flag, "environment", p->environment, "state", plan_state_name(run->state),
            "step", (int)run->step, "steps", steps_json(p), "step_started_at",
            time_json(run->step_started_usec, api), "updated_at", time_json(run->updated_usec, api),
            "started_at", time_json(run->started_usec, api), "reason",
            run->reason ? run->reason : "", "history", history_json(run, api), "interval_s",
            (json_int_t)p->interval_s, "failure_limit", (int)p->failure_limit,
            "consecutive_successes", (int)p->consecutive_successes, "no_data",
            no_data_names[p->no_data], "on_failure", on_failure_names[p->on_failure], "failures",
            (int)run->failures, "successes", (int)run->successes, "last_check_at",
            time_json(run->last_check_usec, api), "paused_at", time_json(run->paused_usec, api),
            "applied", run->applied, "rollback_kill", run->rollback_kill, "notify", run->notify,
            "baseline", "stage", rollout_stage_name(run->base_stage), "percent", run->base_percent);
    char *s;
    int r;

    if (!j)
        return -ENOMEM;
    if (api)
        (void)json_object_set_new(j, "version", json_integer((json_int_t)run->version));
    s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(j);
    if (!s)
        return -ENOMEM;
    r = buf_puts(out, s);
    free(s);
    return r;
}

static uint64_t get_u64(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int plan_run_parse(const char *text, size_t len, struct plan_run *ret, struct err *e)
{
    static const char *const run_keys[] = {
        "flag",
        "state",
        "step",
        "started_at",
        "step_started_at",
        "updated_at",
        "last_check_at",
        "paused_at",
        "failures",
        "successes",
        "applied",
        "rollback_kill",
        "notify",
        "reason",
        "history",
        "baseline",
        NULL,
    };
    json_t *j = json_loadb(text, len, 0, NULL), *plan, *h;
    struct plan_run run = { 0 };
    int state, stage, r;

    if (!j)
        return err_set(e, -EINVAL, 0, 0, "stored rollout is not JSON");
    /* The plan is the same document minus the run's own fields. */
    plan = json_deep_copy(j);
    for (size_t i = 0; plan && run_keys[i]; i++)
        (void)json_object_del(plan, run_keys[i]);
    if (plan) {
        /* The stored steps carry percent 100 for full; the parser accepts that. */
        r = plan_from_json(plan, NULL, &run.plan, e);
        json_decref(plan);
    } else {
        r = -ENOMEM;
    }
    if (r < 0)
        goto out;
    state = name_index(state_names, _PLAN_STATE_MAX,
                       json_string_value(json_object_get(j, "state")));
    stage = rollout_stage_from_name(
            json_string_value(json_object_get(json_object_get(j, "baseline"), "stage")));
    if (!json_is_string(json_object_get(j, "flag")) || state < 0 || stage < 0 ||
        get_u64(j, "step") >= run.plan.n_steps) {
        r = err_set(e, -EINVAL, 0, 0, "stored rollout is incomplete");
        goto out;
    }
    run.flag = xstrdup(json_string_value(json_object_get(j, "flag")));
    run.state = (enum plan_state)state;
    run.step = (unsigned)get_u64(j, "step");
    run.started_usec = get_u64(j, "started_at");
    run.step_started_usec = get_u64(j, "step_started_at");
    run.updated_usec = get_u64(j, "updated_at");
    run.last_check_usec = get_u64(j, "last_check_at");
    run.paused_usec = get_u64(j, "paused_at");
    run.failures = (unsigned)get_u64(j, "failures");
    run.successes = (unsigned)get_u64(j, "successes");
    run.applied = json_is_true(json_object_get(j, "applied"));
    run.rollback_kill = json_is_true(json_object_get(j, "rollback_kill"));
    run.notify = json_is_true(json_object_get(j, "notify"));
    run.reason = xstrdup(json_string_value(json_object_get(j, "reason"))
                                 ? json_string_value(json_object_get(j, "reason"))
                                 : "");
    run.base_stage = (enum rollout_stage)stage;
    run.base_percent =
            json_number_value(json_object_get(json_object_get(j, "baseline"), "percent"));
    h = json_object_get(j, "history");
    run.history = xcalloc(json_array_size(h) + 1, sizeof *run.history);
    for (size_t i = 0; i < json_array_size(h); i++) {
        json_t *c = json_array_get(h, i), *v = json_object_get(c, "value");
        int res = name_index(result_names, _PLAN_RESULT_MAX,
                             json_string_value(json_object_get(c, "result")));
        const char *metric = json_string_value(json_object_get(c, "metric"));
        if (res < 0 || !metric)
            continue;
        run.history[run.n_history++] = (struct plan_check){
            .at_usec = get_u64(c, "at"),
            .step = (unsigned)get_u64(c, "step"),
            .metric = xstrdup(metric),
            .value = json_is_number(v) ? json_number_value(v) : (double)NAN,
            .result = (enum plan_result)res,
        };
    }
    *ret = run;
    run = (struct plan_run){ 0 };
    r = 0;
out:
    plan_run_release(&run);
    json_decref(j);
    return r;
}

/* ===== Decisions ===== */

static enum plan_result classify(const struct plan_metric *m, const struct plan_sample *s)
{
    if (!s || s->nodata || isnan(s->value))
        return PLAN_RESULT_NODATA;
    if ((m->has_min && s->value < m->min) || (m->has_max && s->value > m->max))
        return PLAN_RESULT_FAIL;
    return PLAN_RESULT_PASS;
}

/* The sample of metric m (samples normally come in the step's order; looked up by name). */
static const struct plan_sample *sample_of(const struct plan_metric *m,
                                           const struct plan_sample *samples, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (samples[i].metric && streq(samples[i].metric, m->name))
            return &samples[i];
    return NULL;
}

/* The worst result of one analysis: fail over nodata over pass; *ret_metric the first metric
 * with that result. */
static enum plan_result analysis_result(const struct plan_step *st,
                                        const struct plan_sample *samples, size_t n,
                                        const struct plan_metric **ret_metric)
{
    enum plan_result worst = PLAN_RESULT_PASS;

    *ret_metric = NULL;
    for (size_t i = 0; i < st->n_metrics; i++) {
        enum plan_result r = classify(&st->metrics[i], sample_of(&st->metrics[i], samples, n));
        if (r == PLAN_RESULT_FAIL && worst != PLAN_RESULT_FAIL) {
            worst = r;
            *ret_metric = &st->metrics[i];
        } else if (r == PLAN_RESULT_NODATA && worst == PLAN_RESULT_PASS) {
            worst = r;
            *ret_metric = &st->metrics[i];
        }
    }
    return worst;
}

bool plan_run_due(const struct plan_run *run, uint64_t now_usec)
{
    if (run->state != PLAN_STATE_RUNNING || !run->applied)
        return false;
    if (!run->last_check_usec)
        return true;
    return now_usec >= run->last_check_usec + run->plan.interval_s * USEC;
}

enum plan_decision plan_decide(const struct plan_run *run, const struct plan_sample *samples,
                               size_t n, uint64_t now_usec)
{
    const struct plan_step *st;
    const struct plan_metric *m;
    enum plan_result res;
    bool elapsed;

    if (!plan_run_due(run, now_usec))
        return PLAN_DECISION_WAIT;
    st = &run->plan.steps[run->step];
    res = analysis_result(st, samples, n, &m);
    if (res == PLAN_RESULT_NODATA && run->plan.no_data == PLAN_NO_DATA_PAUSE)
        return PLAN_DECISION_PAUSE;
    if (res != PLAN_RESULT_PASS) /* fail, or nodata counted as a failure */
        return run->failures + 1 >= run->plan.failure_limit ? PLAN_DECISION_ROLLBACK
                                                            : PLAN_DECISION_CONTINUE;
    elapsed = now_usec >= run->step_started_usec + st->duration_s * USEC;
    if (!elapsed || (st->n_metrics > 0 && run->successes + 1 < run->plan.consecutive_successes))
        return PLAN_DECISION_CONTINUE;
    return run->step + 1 == run->plan.n_steps ? PLAN_DECISION_SUCCEED : PLAN_DECISION_PROMOTE;
}

static void history_add(struct plan_run *run, const struct plan_check *c)
{
    if (run->n_history == PLAN_HISTORY_MAX) {
        free(run->history[0].metric);
        memmove(run->history, run->history + 1, (run->n_history - 1) * sizeof *run->history);
        run->n_history--;
    }
    run->history = xrealloc(run->history, (run->n_history + 1) * sizeof *run->history);
    run->history[run->n_history] = *c;
    run->history[run->n_history].metric = xstrdup(c->metric);
    run->n_history++;
}

/* "success_rate = 0.95 (min 0.99)" / "p99_latency: no data". */
static void describe(char *out, size_t n, const struct plan_metric *m, const struct plan_sample *s)
{
    if (!s || s->nodata || isnan(s->value)) {
        (void)snprintf(out, n, "%s: no data", m->name);
        return;
    }
    if (m->has_min && s->value < m->min)
        (void)snprintf(out, n, "%s = %g, below min %g", m->name, s->value, m->min);
    else if (m->has_max && s->value > m->max)
        (void)snprintf(out, n, "%s = %g, above max %g", m->name, s->value, m->max);
    else
        (void)snprintf(out, n, "%s = %g", m->name, s->value);
}

void plan_run_apply(struct plan_run *run, enum plan_decision d, const struct plan_sample *samples,
                    size_t n, uint64_t now_usec)
{
    const struct plan_step *st = &run->plan.steps[run->step];
    const struct plan_metric *m;
    char what[200] = "", where[80];
    enum plan_result res;

    if (d == PLAN_DECISION_WAIT)
        return;
    res = analysis_result(st, samples, n, &m);
    for (size_t i = 0; i < st->n_metrics; i++) {
        const struct plan_sample *s = sample_of(&st->metrics[i], samples, n);
        struct plan_check c = { .at_usec = now_usec,
                                .step = run->step,
                                .metric = st->metrics[i].name,
                                .value = s && !s->nodata ? s->value : (double)NAN,
                                .result = classify(&st->metrics[i], s) };
        history_add(run, &c);
    }
    if (m)
        describe(what, sizeof what, m, sample_of(m, samples, n));
    (void)snprintf(where, sizeof where, "step %u (%s %g %%)", run->step,
                   rollout_stage_name(st->stage), st->percent);
    run->last_check_usec = now_usec;
    run->updated_usec = now_usec;
    if (res == PLAN_RESULT_PASS)
        run->successes++;
    else if (d != PLAN_DECISION_PAUSE) {
        run->successes = 0;
        run->failures++;
    }
    switch (d) {
    case PLAN_DECISION_CONTINUE:
        if (res != PLAN_RESULT_PASS)
            set_reason(run, "%s: %s (failed check %u of %u)", where, what, run->failures,
                       run->plan.failure_limit);
        break;
    case PLAN_DECISION_PAUSE:
        run->successes = 0;
        run->state = PLAN_STATE_PAUSED;
        run->paused_usec = now_usec;
        run->notify = true;
        set_reason(run, "%s: %s; paused (no_data: pause)", where, what);
        break;
    case PLAN_DECISION_ROLLBACK:
        run->state = PLAN_STATE_ROLLED_BACK;
        run->rollback_kill = run->plan.on_failure == PLAN_ON_FAILURE_KILL;
        run->applied = false;
        run->notify = true;
        set_reason(run, "%s: %s (failed check %u of %u); %s", where, what, run->failures,
                   run->plan.failure_limit,
                   run->rollback_kill ? "kill switch on" : "rolled back to the last safe stage");
        break;
    case PLAN_DECISION_PROMOTE:
        if (st->n_metrics)
            set_reason(run, "%s passed (%u checks in a row); promoted to %s %g %%", where,
                       run->successes, rollout_stage_name(run->plan.steps[run->step + 1].stage),
                       run->plan.steps[run->step + 1].percent);
        else
            set_reason(run, "%s lasted its %" PRIu64 " s (no analysis); promoted to %s %g %%",
                       where, st->duration_s,
                       rollout_stage_name(run->plan.steps[run->step + 1].stage),
                       run->plan.steps[run->step + 1].percent);
        run->step++;
        run->step_started_usec = now_usec;
        run->last_check_usec = 0;
        run->failures = 0;
        run->successes = 0;
        run->applied = false;
        break;
    case PLAN_DECISION_SUCCEED:
        run->state = PLAN_STATE_SUCCEEDED;
        set_reason(run, "%s passed; the plan is complete", where);
        break;
    default:
        break;
    }
}

int plan_run_pause(struct plan_run *run, uint64_t now_usec, struct err *e)
{
    if (run->state != PLAN_STATE_RUNNING)
        return err_set(e, -EINVAL, 0, 0, "rollout of '%s' is %s, not running", run->flag,
                       plan_state_name(run->state));
    run->state = PLAN_STATE_PAUSED;
    run->paused_usec = now_usec;
    run->updated_usec = now_usec;
    set_reason(run, "paused by an operator");
    return 0;
}

int plan_run_resume(struct plan_run *run, uint64_t now_usec, struct err *e)
{
    if (run->state != PLAN_STATE_PAUSED)
        return err_set(e, -EINVAL, 0, 0, "rollout of '%s' is %s, not paused", run->flag,
                       plan_state_name(run->state));
    /* Time paused does not count towards the step's duration. */
    if (run->paused_usec && now_usec > run->paused_usec)
        run->step_started_usec += now_usec - run->paused_usec;
    run->state = PLAN_STATE_RUNNING;
    run->paused_usec = 0;
    run->successes = 0;
    run->last_check_usec = 0;
    run->updated_usec = now_usec;
    set_reason(run, "resumed by an operator");
    return 0;
}

int plan_run_abort(struct plan_run *run, uint64_t now_usec, struct err *e)
{
    if (plan_state_final(run->state))
        return err_set(e, -EINVAL, 0, 0, "rollout of '%s' is already %s", run->flag,
                       plan_state_name(run->state));
    run->state = PLAN_STATE_ABORTED;
    run->rollback_kill = false;
    run->applied = false;
    run->paused_usec = 0;
    run->updated_usec = now_usec;
    set_reason(run, "aborted by an operator at step %u; rolled back to the last safe stage",
               run->step);
    return 0;
}

void plan_run_fail(struct plan_run *run, uint64_t now_usec, const char *reason)
{
    run->state = PLAN_STATE_FAILED;
    run->updated_usec = now_usec;
    run->applied = true; /* nothing more to apply */
    run->notify = true;
    set_reason(run, "%s", reason);
}
