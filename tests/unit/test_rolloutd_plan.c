/* SPDX-License-Identifier: MIT */
/* Rollout plans (src/rolloutd/plan.c): validation with field paths, the stored JSON round trip,
 * the pure decision function and the operator actions; the Prometheus answer parser
 * (src/rolloutd/prom.c). */
#include <math.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rolloutd/plan.h"
#include "rolloutd/prom.h"
#include "t.h"

#define SEC 1000000ull
/* Times in the tests are seconds after BASE (0 means "never" in a run's timestamps). */
#define BASE  1000000ull
#define T(s_) ((BASE + (s_)) * SEC)

static const char good[] =
        "{\"environment\":\"production\",\"interval_s\":10,\"failure_limit\":2,"
        "\"consecutive_successes\":2,\"no_data\":\"pause\",\"on_failure\":\"rollback\",\"steps\":["
        "{\"stage\":\"shadow\",\"percent\":100,\"duration_s\":30,\"analysis\":["
        "{\"name\":\"disagreement\",\"query\":\"x\",\"threshold\":{\"max\":0.02}}]},"
        "{\"stage\":\"canary\",\"percent\":5,\"duration_s\":60,\"analysis\":["
        "{\"name\":\"success_rate\",\"query\":\"s\",\"threshold\":{\"min\":0.99}},"
        "{\"name\":\"p99\",\"query\":\"p\",\"threshold\":{\"max\":0.25}}]},"
        "{\"stage\":\"full\"}]}";

static void parse_ok(struct plan *p)
{
    struct err e = ERR_INIT;
    int r = plan_parse(good, strlen(good), "staging", p, &e);

    if (r < 0)
        T_FAIL("plan_parse: %s", e.msg);
}

/* Parses text, expects -EINVAL naming field. */
static void expect_field(const char *text, const char *field)
{
    struct plan p;
    struct err e = ERR_INIT;
    int r = plan_parse(text, strlen(text), "production", &p, &e);

    ASSERT_ERRNO(r, -EINVAL);
    ASSERT_STREQ(e.field, field);
    ASSERT_CONTAINS(e.msg, field);
}

static void test_parse(void)
{
    struct plan p;

    parse_ok(&p);
    ASSERT_STREQ(p.environment, "production");
    ASSERT_EQ(p.n_steps, 3);
    ASSERT_EQ(p.steps[1].stage, ROLLOUT_STAGE_CANARY);
    ASSERT_TRUE(p.steps[1].percent == 5);
    ASSERT_EQ(p.steps[1].n_metrics, 2);
    ASSERT_TRUE(p.steps[1].metrics[0].has_min && !p.steps[1].metrics[0].has_max);
    ASSERT_TRUE(p.steps[2].percent == 100);
    ASSERT_EQ(p.failure_limit, 2);
    plan_release(&p);
}

static void test_parse_defaults(void)
{
    static const char text[] = "{\"steps\":[{\"stage\":\"canary\",\"percent\":1}]}";
    struct plan p;
    struct err e = ERR_INIT;

    ASSERT_OK(plan_parse(text, strlen(text), "staging", &p, &e));
    ASSERT_STREQ(p.environment, "staging");
    ASSERT_EQ(p.interval_s, 60);
    ASSERT_EQ(p.failure_limit, 1);
    ASSERT_EQ(p.no_data, PLAN_NO_DATA_PAUSE);
    ASSERT_EQ(p.on_failure, PLAN_ON_FAILURE_ROLLBACK);
    plan_release(&p);
}

static void test_parse_errors(void)
{
    struct plan p;
    struct err e = ERR_INIT;

    ASSERT_ERRNO(plan_parse("{", 1, "production", &p, &e), -EBADMSG);
    expect_field("{\"steps\":[]}", "steps");
    expect_field("{\"bogus\":1,\"steps\":[{\"stage\":\"full\"}]}", "bogus");
    expect_field("{\"steps\":[{\"stage\":\"off\"}]}", "steps[0].stage");
    expect_field("{\"steps\":[{\"stage\":\"canary\"}]}", "steps[0].percent");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":0.0001}]}", "steps[0].percent");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":101}]}", "steps[0].percent");
    expect_field("{\"steps\":[{\"stage\":\"full\",\"percent\":50}]}", "steps[0].percent");
    expect_field("{\"steps\":[{\"stage\":\"partial\",\"percent\":25},{\"stage\":\"canary\","
                 "\"percent\":5}]}",
                 "steps[1]");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5},{\"stage\":\"canary\","
                 "\"percent\":5}]}",
                 "steps[1]");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"duration_s\":-1}]}",
                 "steps[0].duration_s");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"Bad"
                 "Name\",\"query\":\"up\",\"threshold\":{\"min\":1}}]}]}",
                 "steps[0].analysis[0].name");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"a\","
                 "\"query\":\"\",\"threshold\":{\"min\":1}}]}]}",
                 "steps[0].analysis[0].query");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"a\","
                 "\"query\":\"up\",\"threshold\":{}}]}]}",
                 "steps[0].analysis[0].threshold");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"a\","
                 "\"query\":\"up\",\"threshold\":{\"min\":\"x\"}}]}]}",
                 "steps[0].analysis[0].threshold.min");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"a\","
                 "\"query\":\"up\",\"threshold\":{\"min\":2,\"max\":1}}]}]}",
                 "steps[0].analysis[0].threshold");
    expect_field("{\"steps\":[{\"stage\":\"canary\",\"percent\":5,\"analysis\":[{\"name\":\"a\","
                 "\"query\":\"up\",\"threshold\":{\"min\":1}},{\"name\":\"a\",\"query\":\"up\","
                 "\"threshold\":{\"min\":1}}]}]}",
                 "steps[0].analysis[1].name");
    expect_field("{\"no_data\":\"ignore\",\"steps\":[{\"stage\":\"full\"}]}", "no_data");
    expect_field("{\"interval_s\":0,\"steps\":[{\"stage\":\"full\"}]}", "interval_s");
    expect_field("{\"failure_limit\":1.5,\"steps\":[{\"stage\":\"full\"}]}", "failure_limit");
}

static void start(struct plan_run *run, uint64_t now)
{
    struct plan p;

    parse_ok(&p);
    plan_run_start(run, "model.v2", &p, ROLLOUT_STAGE_OFF, 0, T(now));
    run->applied = true; /* as the controller does after applying step 0 */
}

static const struct plan_sample pass0[] = { { "disagreement", 0.01, false } };
static const struct plan_sample pass1[] = { { "success_rate", 0.995, false },
                                            { "p99", 0.1, false } };
static const struct plan_sample fail1[] = { { "success_rate", 0.95, false },
                                            { "p99", 0.1, false } };
static const struct plan_sample nodata1[] = { { "success_rate", 0.995, false },
                                              { "p99", 0, true } };

/* One analysis at t seconds: decide and apply; returns the decision. */
static enum plan_decision at(struct plan_run *run, uint64_t t, const struct plan_sample *s,
                             size_t n)
{
    enum plan_decision d = plan_decide(run, s, n, T(t));
    plan_run_apply(run, d, s, n, T(t));
    return d;
}

static void test_decide_walk(void)
{
    struct plan_run run;

    start(&run, 0);
    /* Passing but too early (duration 30 s), then not often enough in a row. */
    ASSERT_EQ(at(&run, 0, pass0, 1), PLAN_DECISION_CONTINUE);
    ASSERT_EQ(plan_decide(&run, pass0, 1, T(5)), PLAN_DECISION_WAIT); /* interval 10 s */
    ASSERT_EQ(at(&run, 10, pass0, 1), PLAN_DECISION_CONTINUE);
    ASSERT_EQ(at(&run, 30, pass0, 1), PLAN_DECISION_PROMOTE);
    ASSERT_EQ(run.step, 1);
    ASSERT_FALSE(run.applied);
    ASSERT_EQ(run.successes, 0);
    ASSERT_TRUE(run.step_started_usec == T(30));
    /* Not applied yet: nothing is due. */
    ASSERT_EQ(plan_decide(&run, pass1, 2, T(100)), PLAN_DECISION_WAIT);
    run.applied = true;
    ASSERT_EQ(at(&run, 40, pass1, 2), PLAN_DECISION_CONTINUE);
    ASSERT_EQ(at(&run, 90, pass1, 2), PLAN_DECISION_PROMOTE);
    ASSERT_EQ(run.step, 2);
    run.applied = true;
    /* The last step has no analysis: it completes at once. */
    ASSERT_EQ(at(&run, 91, NULL, 0), PLAN_DECISION_SUCCEED);
    ASSERT_EQ(run.state, PLAN_STATE_SUCCEEDED);
    ASSERT_EQ(run.n_history, 7); /* step 0: 3 checks x 1 metric; step 1: 2 x 2 */
    plan_run_release(&run);
}

static void test_decide_failures(void)
{
    struct plan_run run;
    enum rollout_stage st;
    double pct;
    bool kill;

    start(&run, 0);
    run.step = 1;
    /* failure_limit 2: the first failure continues, a pass resets the streak, not the count. */
    ASSERT_EQ(at(&run, 0, fail1, 2), PLAN_DECISION_CONTINUE);
    ASSERT_EQ(run.failures, 1);
    ASSERT_CONTAINS(run.reason, "success_rate = 0.95, below min 0.99");
    ASSERT_EQ(at(&run, 10, pass1, 2), PLAN_DECISION_CONTINUE);
    ASSERT_EQ(run.successes, 1);
    ASSERT_EQ(at(&run, 20, fail1, 2), PLAN_DECISION_ROLLBACK);
    ASSERT_EQ(run.state, PLAN_STATE_ROLLED_BACK);
    ASSERT_TRUE(run.notify);
    ASSERT_FALSE(run.applied);
    /* The last safe stage is the previous step's. */
    plan_run_target(&run, &st, &pct, &kill);
    ASSERT_EQ(st, ROLLOUT_STAGE_SHADOW);
    ASSERT_TRUE(pct == 100);
    ASSERT_FALSE(kill);
    /* Final: nothing is due any more. */
    run.applied = true;
    ASSERT_EQ(plan_decide(&run, pass1, 2, T(1000)), PLAN_DECISION_WAIT);
    plan_run_release(&run);
}

static void test_decide_nodata(void)
{
    struct plan_run run;
    struct err e = ERR_INIT;

    /* pause: no data never passes, never promotes, even long after the duration. */
    start(&run, 0);
    run.step = 1;
    ASSERT_EQ(at(&run, 1000, nodata1, 2), PLAN_DECISION_PAUSE);
    ASSERT_EQ(run.state, PLAN_STATE_PAUSED);
    ASSERT_EQ(run.step, 1);
    ASSERT_TRUE(isnan(run.history[run.n_history - 1].value));
    ASSERT_EQ(run.history[run.n_history - 1].result, PLAN_RESULT_NODATA);
    ASSERT_EQ(plan_decide(&run, pass1, 2, T(2000)), PLAN_DECISION_WAIT);
    /* Resume: paused time does not count towards the step's duration. */
    ASSERT_OK(plan_run_resume(&run, T(1100), &e));
    ASSERT_TRUE(run.step_started_usec == T(100));
    ASSERT_ERRNO(plan_run_resume(&run, T(1100), &e), -EINVAL);
    plan_run_release(&run);

    /* fail: no data is a failed check; a missing sample is no data too. */
    start(&run, 0);
    run.plan.no_data = PLAN_NO_DATA_FAIL;
    run.plan.failure_limit = 1;
    run.step = 1;
    ASSERT_EQ(at(&run, 100, pass1, 1), PLAN_DECISION_ROLLBACK);
    ASSERT_CONTAINS(run.reason, "p99: no data");
    plan_run_release(&run);
}

static void test_kill_and_abort(void)
{
    struct plan_run run;
    struct err e = ERR_INIT;
    enum rollout_stage st;
    double pct;
    bool kill;

    start(&run, 0);
    run.plan.on_failure = PLAN_ON_FAILURE_KILL;
    run.plan.failure_limit = 1;
    ASSERT_EQ(at(&run, 0, (const struct plan_sample[]){ { "disagreement", 0.5, false } }, 1),
              PLAN_DECISION_ROLLBACK);
    plan_run_target(&run, &st, &pct, &kill);
    ASSERT_TRUE(kill);
    plan_run_release(&run);

    /* Abort in step 0 goes back to the flag's stage before the plan. */
    start(&run, 0);
    run.base_stage = ROLLOUT_STAGE_CANARY;
    run.base_percent = 1;
    ASSERT_OK(plan_run_pause(&run, T(5), &e));
    ASSERT_OK(plan_run_abort(&run, T(6), &e));
    ASSERT_ERRNO(plan_run_abort(&run, T(7), &e), -EINVAL);
    plan_run_target(&run, &st, &pct, &kill);
    ASSERT_EQ(st, ROLLOUT_STAGE_CANARY);
    ASSERT_TRUE(pct == 1);
    ASSERT_FALSE(kill);
    plan_run_release(&run);
}

static void test_roundtrip(void)
{
    struct plan_run run, back;
    struct buf a = BUF_INIT(0), b = BUF_INIT(0);
    struct err e = ERR_INIT;

    start(&run, 7);
    run.step = 1;
    (void)at(&run, 100, fail1, 2);
    (void)at(&run, 110, nodata1, 2);
    ASSERT_OK(plan_run_serialize(&run, false, &a));
    ASSERT_OK(plan_run_parse(a.data, a.len, &back, &e));
    ASSERT_OK(plan_run_serialize(&back, false, &b));
    ASSERT_STREQ(a.data, b.data);
    ASSERT_EQ(back.step, 1);
    ASSERT_EQ(back.failures, run.failures);
    ASSERT_EQ(back.state, PLAN_STATE_PAUSED);
    ASSERT_TRUE(back.step_started_usec == run.step_started_usec);
    ASSERT_EQ(back.n_history, run.n_history);
    buf_release(&b);
    /* The API shape: RFC 3339 times, the contract's fields. */
    ASSERT_OK(plan_run_serialize(&run, true, &b));
    ASSERT_CONTAINS(b.data, "\"step_started_at\":\"1970-01-12T13:46:47.000000Z\"");
    ASSERT_CONTAINS(b.data, "\"state\":\"paused\"");
    ASSERT_CONTAINS(b.data, "\"threshold\":{\"min\":0.99}");
    ASSERT_CONTAINS(b.data, "\"result\":\"nodata\"");
    ASSERT_CONTAINS(b.data, "\"value\":null");
    ASSERT_ERRNO(plan_run_parse("{}", 2, &back, &e), -EINVAL);
    buf_release(&a);
    buf_release(&b);
    plan_run_release(&run);
}

static void test_prom_parse(void)
{
    struct err e = ERR_INIT;
    double v = 0;
#define P(s_) prom_parse(s_, strlen(s_), &v, &e)

    ASSERT_EQ(
            P("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\""
              ":{},\"value\":[1.5,\"0.995\"]}]}}"),
            1);
    ASSERT_TRUE(v == 0.995);
    ASSERT_EQ(P("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1.5,"
                "\"2\"]}}"),
              1);
    ASSERT_TRUE(v == 2);
    ASSERT_EQ(P("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}"), 0);
    ASSERT_EQ(
            P("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\""
              ":{},\"value\":[1.5,\"NaN\"]}]}}"),
            0);
    ASSERT_ERRNO(P("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
                   "\"value\":[1,\"1\"]},{\"value\":[1,\"2\"]}]}}"),
                 -EPROTO);
    ASSERT_CONTAINS(e.msg, "2 series");
    ASSERT_ERRNO(P("{\"status\":\"error\",\"error\":\"parse error\"}"), -EIO);
    ASSERT_ERRNO(P("<html>"), -EPROTO);
#undef P
}

T_MAIN(T_CASE(test_parse), T_CASE(test_parse_defaults), T_CASE(test_parse_errors),
       T_CASE(test_decide_walk), T_CASE(test_decide_failures), T_CASE(test_decide_nodata),
       T_CASE(test_kill_and_abort), T_CASE(test_roundtrip), T_CASE(test_prom_parse))
