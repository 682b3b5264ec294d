/* SPDX-License-Identifier: MIT */
/* routes_rollout.c - the rollout plans' admin API (docs/rollouts.md): list, show, start, pause,
 * resume, abort.  Admin token required for all of them.  The controller (controller.c) does
 * the work; these handlers only write the operator's decision to the store (version-checked)
 * and wake it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "plan.h"
#include "rolloutd.h"
#include "store.h"

#define ROLLOUTS_JSON_MAX (64u << 20)

static int authorize(struct rd *rd, struct http_request *req)
{
    struct auth_principal p;
    int r = auth_check(rd, req, &p);

    return r < 0 ? r : auth_require_admin(req, &p);
}

static int reply_runs(struct http_request *req, unsigned status, const struct plan_run *runs,
                      size_t n, bool list)
{
    struct buf b = BUF_INIT(ROLLOUTS_JSON_MAX);
    size_t len;
    char *text;
    int r = list ? buf_puts(&b, "{\"rollouts\":[") : 0;

    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (i)
            r = buf_puts(&b, ",");
        if (r >= 0)
            r = plan_run_serialize(&runs[i], true, &b);
    }
    if (r >= 0 && list)
        r = buf_puts(&b, "]}");
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    text = buf_detach(&b, &len);
    return http_reply_take(req, status, "application/json", text, len);
}

static int load_error(struct http_request *req, int r, const struct err *e)
{
    if (r == -ENOENT)
        return http_error(req, r, NULL, "flag", "%s", e->msg);
    return http_error(req, r, r == -EIO || r == -ECONNREFUSED ? "store_unavailable" : NULL, NULL,
                      "%s", e->msg[0] ? e->msg : strerror(-r));
}

/* GET of one rollout (flag) or all of them (NULL). */
static int rollouts_get(struct http_request *req, struct rd *rd, const char *flag)
{
    struct auth_principal p;
    struct plan_run *runs = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    int r;

    /* Any valid token reads (as it reads flags); changes need an admin token. */
    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    r = rd_rollout_load(rd, flag, &runs, &n, &e);
    if (r < 0)
        return load_error(req, r == -ENOENT && !flag ? -EIO : r, &e);
    r = reply_runs(req, 200, runs, flag ? 1 : n, !flag);
    rd_rollouts_free(runs, n);
    return r;
}

int rd_h_rollouts_list(struct http_request *req, void *userdata)
{
    return rollouts_get(req, userdata, NULL);
}

int rd_h_rollout_get(struct http_request *req, void *userdata)
{
    return rollouts_get(req, userdata, http_request_param(req, "flag"));
}

/* Creates the run of plan for flag (replacing a finished one).  Caller holds rd->lock. */
static int start_locked(struct rd *rd, struct http_request *req, const char *flag,
                        struct plan *plan, struct plan_run *run)
{
    struct rd_item *it = rd_item_find(rd, RD_FLAGS, flag);
    struct store_row *rows = NULL;
    struct buf b = BUF_INIT(8u << 20);
    struct err e = ERR_INIT;
    enum rollout_stage base;
    double pct;
    bool kill;
    size_t n = 0;
    uint64_t expect = 0;
    int r;

    if (!it)
        return http_error(req, -ENOENT, NULL, "flag", "no flag '%s'", flag);
    r = rd_flag_env_get(it->json, plan->environment, &base, &pct, &kill);
    if (r < 0)
        return r;
    if (kill)
        return http_error(req, -EEXIST, "conflict", "environment",
                          "flag '%s' is killed in %s; lift the kill switch before a rollout", flag,
                          plan->environment);
    r = store_rollout_list(rd->store, flag, &rows, &n, &e);
    if (r < 0 && r != -ENOENT)
        return load_error(req, r, &e);
    if (n == 1) {
        struct plan_run old = { 0 };
        struct err pe = ERR_INIT;
        bool busy = plan_run_parse(rows[0].json, strlen(rows[0].json), &old, &pe) >= 0 &&
                    (!plan_state_final(old.state) || !old.applied);
        char state[32];

        (void)snprintf(state, sizeof state, "%s", plan_state_name(old.state));
        expect = rows[0].version;
        plan_run_release(&old);
        if (busy) {
            store_rows_free(rows, n);
            return http_error(req, -EEXIST, "conflict", "flag",
                              "a rollout of '%s' is %s; pause or abort it first", flag, state);
        }
    }
    store_rows_free(rows, n);
    plan_run_start(run, flag, plan, base, pct, now_realtime_usec());
    r = plan_run_serialize(run, false, &b);
    if (r >= 0)
        r = store_rollout_put(rd->store, flag, expect, buf_str(&b), &e);
    buf_release(&b);
    if (r == -EEXIST || r == -ESTALE)
        return http_error(req, -EEXIST, "conflict", "flag",
                          "another rollout of '%s' was started at the same time", flag);
    if (r < 0)
        return load_error(req, r, &e);
    run->version = expect + 1;
    return 0;
}

int rd_h_rollout_start(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    const char *flag = http_request_param(req, "flag"), *body;
    struct plan_run run = { 0 };
    struct plan plan = { 0 };
    struct err e = ERR_INIT;
    void *j = NULL;
    size_t len = 0;
    int r;

    r = authorize(rd, req);
    if (r < 0)
        return r;
    /* The adapter's checks (Content-Type, UTF-8, depth, duplicate keys), then the plan's. */
    r = http_request_json(req, &j);
    if (r < 0)
        return r;
    json_decref(j);
    body = http_request_body(req, &len);
    r = plan_parse(body, len, rd->env_names[0], &plan, &e);
    if (r < 0)
        return rd_error_from_err(req, r, &e);
    if (!rd_env_known(rd, plan.environment)) {
        r = http_error(req, -EINVAL, "unknown_environment", "environment",
                       "field 'environment': unknown environment '%s'", plan.environment);
        plan_release(&plan);
        return r;
    }
    (void)pthread_mutex_lock(&rd->lock);
    r = start_locked(rd, req, flag, &plan, &run);
    (void)pthread_mutex_unlock(&rd->lock);
    plan_release(&plan);
    if (r >= 0) {
        rd_ctl_wake(rd);
        r = reply_runs(req, 201, &run, 1, false);
    }
    plan_run_release(&run);
    return r;
}

typedef int (*action_fn)(struct plan_run *run, uint64_t now_usec, struct err *e);

static int rollout_action(struct http_request *req, struct rd *rd, action_fn fn)
{
    struct plan_run *runs = NULL;
    struct err e = ERR_INIT;
    size_t n = 0;
    int r;

    r = authorize(rd, req);
    if (r < 0)
        return r;
    r = rd_rollout_load(rd, http_request_param(req, "flag"), &runs, &n, &e);
    if (r < 0)
        return load_error(req, r, &e);
    r = fn(&runs[0], now_realtime_usec(), &e);
    if (r < 0) {
        r = http_error(req, -EEXIST, "conflict", "state", "%s", e.msg);
        goto out;
    }
    r = rd_rollout_save(rd, &runs[0], &e);
    if (r == -ESTALE)
        r = http_error(req, r, "conflict", "version",
                       "the rollout of '%s' changed meanwhile; look again and retry", runs[0].flag);
    else if (r < 0)
        r = load_error(req, r, &e);
    if (r < 0)
        goto out;
    rd_ctl_wake(rd);
    r = reply_runs(req, 200, runs, 1, false);
out:
    rd_rollouts_free(runs, n);
    return r;
}

int rd_h_rollout_pause(struct http_request *req, void *userdata)
{
    return rollout_action(req, userdata, plan_run_pause);
}

int rd_h_rollout_resume(struct http_request *req, void *userdata)
{
    return rollout_action(req, userdata, plan_run_resume);
}

int rd_h_rollout_abort(struct http_request *req, void *userdata)
{
    return rollout_action(req, userdata, plan_run_abort);
}
