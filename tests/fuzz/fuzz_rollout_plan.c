/* SPDX-License-Identifier: MIT */
/* fuzz_rollout_plan.c - fuzz target: rollout plan documents (the body of POST
 * /api/v1/rollouts/{flag}).  A plan that parses must start a rollout whose stored JSON parses
 * back to the same text, and the decision function must accept any samples for it. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rolloutd/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct plan p;
    struct plan_run run, back;
    struct err e = ERR_INIT;
    struct buf a = BUF_INIT(0), b = BUF_INIT(0);
    uint64_t t = 1000000000000ull;

    if (plan_parse((const char *)data, size, "production", &p, &e) < 0)
        return 0;
    plan_run_start(&run, "f", &p, ROLLOUT_STAGE_OFF, 0, t);
    run.applied = true;
    /* A few analyses: the step's metrics with values derived from the input. */
    for (unsigned k = 0; k < 6 && !plan_state_final(run.state); k++) {
        const struct plan_step *st = &run.plan.steps[run.step];
        struct plan_sample s[PLAN_MAX_METRICS];
        enum plan_decision d;

        for (size_t i = 0; i < st->n_metrics; i++) {
            uint8_t x = size ? data[(k + i) % size] : 0;
            s[i] = (struct plan_sample){ .metric = st->metrics[i].name,
                                         .value = (double)x / 100.0,
                                         .nodata = x % 7 == 0 };
        }
        t += run.plan.interval_s * 1000000ull + 3600ull * 1000000ull;
        d = plan_decide(&run, s, st->n_metrics, t);
        plan_run_apply(&run, d, s, st->n_metrics, t);
        run.applied = true;
        if (run.state == PLAN_STATE_PAUSED)
            break;
    }
    if (plan_run_serialize(&run, false, &a) < 0)
        abort();
    if (plan_run_parse(a.data, a.len, &back, &e) < 0)
        abort();
    if (plan_run_serialize(&back, false, &b) < 0 || strcmp(a.data, b.data) != 0)
        abort();
    buf_release(&a);
    buf_release(&b);
    plan_run_release(&back);
    plan_run_release(&run);
    return 0;
}
