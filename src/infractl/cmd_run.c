/* SPDX-License-Identifier: MIT */
/* infractl run JOB...: runs scheduled services now, as at a due time (same timeout, same
 * record: state file, metrics), waits for each run to end and reports its result. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "status.h"
#include "supervise/supervise.h"

static const char usage[] = "run [--no-wait] [--timeout S] [--json] JOB...";

static const struct cli_help_item run_options[] = {
    { "-n, --no-wait", "return once the supervisor took the request" },
    { "-t, --timeout S", "stop waiting after S (default: none; schedule.timeout applies)" },
    { "--json", "print each job's record after its run (the keys of `status --json`'s job)" },
    { NULL, NULL },
};

const struct cli_help cmd_run_help = {
    .usage = usage,
    .summary = "Run scheduled services (jobs) now and wait for their result",
    .options = run_options,
    .notes = "A run already going is waited for instead of starting another.  A job held back\n"
             "(left out by `up SERVICE`, or stopped with `infractl stop`) is back on its\n"
             "schedule after this.  Exit status 1 when a run failed or timed out.\n",
};

/* What the supervisor says of job `name` now: its row copied out (false when not found).
 * *ret_job is NULL for a service that is not a job. */
struct job_view {
    bool found, idle;
    struct sv_status_job *job; /* owned */
};

static void view_release(struct job_view *v)
{
    sv_status_job_free(v->job);
    *v = (struct job_view){ .found = false };
}

static int view_fetch(const struct cli_ctx *ctx, const char *name, struct job_view *ret)
{
    struct status_snapshot snap = { 0 };
    int r = status_fetch(ctx, &snap);

    *ret = (struct job_view){ .found = false };
    if (r < 0)
        return r;
    for (size_t i = 0; i < snap.n_services; i++) {
        struct status_service *sv = &snap.services[i];

        if (!streq(sv->name, name))
            continue;
        ret->found = true;
        ret->idle = streq(sv->state, "stopped") || streq(sv->state, "exited") ||
                    streq(sv->state, "failed");
        ret->job = sv->job;
        sv->job = NULL;
    }
    status_snapshot_release(&snap);
    return 0;
}

static unsigned runs_of(const struct sv_status_job *j)
{
    return j->runs_success + j->runs_failure + j->runs_timeout;
}

/* Waits until the run under way (or the one just requested) ended: the run count grew and
 * the job is idle again.  0, -ETIMEDOUT, -ECANCELED (it went idle without a run: stopped
 * while it waited for its dependencies), or the errors of status_fetch(). */
static int wait_run(const struct cli_ctx *ctx, const char *name, unsigned runs_before,
                    uint64_t timeout, struct job_view *ret)
{
    uint64_t deadline = timeout ? now_usec() + timeout : 0;
    bool seen_busy = false;
    int r;

    for (;;) {
        r = view_fetch(ctx, name, ret);
        if (r < 0)
            return r;
        if (!ret->found || !ret->job)
            return -ENOENT;
        if (ret->idle && runs_of(ret->job) > runs_before)
            return 0;
        if (ret->idle && seen_busy)
            return -ECANCELED;
        seen_busy = seen_busy || !ret->idle;
        if (deadline && now_usec() > deadline)
            return -ETIMEDOUT;
        view_release(ret);
        sleep_usec(100 * USEC_PER_MSEC);
    }
}

/* Runs one job; returns the exit code for it. */
static int run_one(const struct cli_ctx *ctx, const char *name, bool wait, uint64_t timeout,
                   json_t *out)
{
    struct job_view v;
    unsigned before;
    char why[256];
    int r, ret = CLI_EXIT_OK;

    r = view_fetch(ctx, name, &v);
    if (r < 0) {
        if (!cli_supervisor_running(ctx)) {
            fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
            return CLI_EXIT_NOT_RUNNING;
        }
        log_error_errno(r, "the supervisor of '%s' does not answer", ctx->state_dir);
        return CLI_EXIT_FAILURE;
    }
    if (!v.found || !v.job) {
        log_error(v.found ? "'%s' is not a scheduled service (use `infractl restart`)"
                          : "unknown service '%s'",
                  name);
        view_release(&v);
        return CLI_EXIT_USAGE;
    }
    before = runs_of(v.job);
    if (!v.idle)
        fprintf(stderr, "infractl: %s is already running; waiting for that run\n", name);
    view_release(&v);
    r = sv_request(ctx->state_dir, SV_REQUEST_START, name, NULL, 10 * USEC_PER_SEC, why,
                   sizeof why);
    if (r < 0) {
        if (r == -EINVAL && why[0])
            log_error("run of '%s' refused: %s", name, why);
        else
            log_error_errno(r, "run of '%s' failed", name);
        return CLI_EXIT_FAILURE;
    }
    if (!wait) {
        fprintf(stderr, "infractl: run of %s requested\n", name);
        return CLI_EXIT_OK;
    }
    r = wait_run(ctx, name, before, timeout, &v);
    if (r == -ETIMEDOUT)
        log_error("'%s' still runs after %.0fs; not waiting longer", name, (double)timeout / 1e6);
    else if (r == -ECANCELED)
        log_error("the run of '%s' was stopped before it started", name);
    else if (r < 0)
        log_error_errno(r, "lost track of '%s'", name);
    if (r < 0) {
        view_release(&v);
        return CLI_EXIT_FAILURE;
    }
    fprintf(stderr, "infractl: %s: %s after %.3fs (exit code %d)\n", name, v.job->last_result,
            v.job->last_duration_s, v.job->last_exit_code);
    if (!streq(v.job->last_result, "success"))
        ret = CLI_EXIT_FAILURE;
    if (out) {
        json_t *o = sv_status_job_json(v.job);

        if (o)
            (void)json_object_set_new(o, "name", json_string(name));
        if (!o || json_array_append_new(out, o) < 0)
            ret = CLI_EXIT_FAILURE;
    }
    view_release(&v);
    return ret;
}

int cmd_run(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "no-wait", no_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { 0 },
    };
    uint64_t timeout = 0;
    bool wait = true, json = false;
    json_t *out = NULL;
    int c, ret = CLI_EXIT_OK;

    while ((c = getopt_long(argc, argv, "nt:", opts, NULL)) != -1) {
        if (c == 'n')
            wait = false;
        else if (c == 'j')
            json = true;
        else if (c == 't' && parse_duration_usec(optarg, &timeout) == 0 && timeout > 0)
            continue;
        else
            return cli_usage_error(usage, "invalid option or value '%s'", argv[optind - 1]);
    }
    if (optind >= argc)
        return cli_usage_error(usage, "name at least one scheduled service");
    if (json && wait)
        out = json_array();
    for (int i = optind; i < argc; i++) {
        int r = run_one(ctx, argv[i], wait, timeout, out);

        if (r == CLI_EXIT_NOT_RUNNING) {
            ret = r;
            break;
        }
        if (r != CLI_EXIT_OK && (ret == CLI_EXIT_OK || r == CLI_EXIT_USAGE))
            ret = r;
    }
    if (out) {
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0)
            ret = CLI_EXIT_FAILURE;
        fputc('\n', stdout);
        json_decref(out);
    }
    return ret;
}
