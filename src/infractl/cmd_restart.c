/* SPDX-License-Identifier: MIT */
/* infractl restart SERVICE...: stop (signal, grace, SIGKILL) and start again, waiting until
 * each service runs again under a new pid.  infractl stop SERVICE...: stop and hold them (the
 * restart policy does not apply) until `infractl up SERVICE` or `restart`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "status.h"
#include "supervise/supervise.h"

static const char usage[] = "restart [--no-wait] [--timeout S] SERVICE...";

static const struct cli_help_item restart_options[] = {
    { "-n, --no-wait", "return once the supervisor took the request" },
    { "-t, --timeout S", "how long to wait for each service to run again (default 120s)" },
    { NULL, NULL },
};

const struct cli_help cmd_restart_help = {
    .usage = usage,
    .summary = "Restart services and wait until they run",
    .options = restart_options,
};

static const char stop_usage[] = "stop [--timeout S] SERVICE...";

static const struct cli_help_item stop_options[] = {
    { "-t, --timeout S", "how long to wait for each service to stop (default 120s)" },
    { NULL, NULL },
};

const struct cli_help cmd_stop_help = {
    .usage = stop_usage,
    .summary = "Stop services and hold them stopped (not their dependents)",
    .options = stop_options,
    .notes = "Each gets its stop_signal, then SIGKILL after its stop_grace_period; the restart\n"
             "policy does not bring it back.  `infractl up SERVICE` or `infractl restart\n"
             "SERVICE` starts it again.  Services that depend on it keep running (as with\n"
             "`docker compose stop`).\n",
};

/* The service's current row; false when it is not in the snapshot. */
static bool find_service(const struct cli_ctx *ctx, const char *name, long *ret_pid,
                         unsigned *ret_restarts, bool *ret_running)
{
    struct status_snapshot snap = { 0 };
    bool found = false;

    if (status_fetch(ctx, &snap) < 0)
        return false;
    for (size_t i = 0; i < snap.n_services; i++)
        if (streq(snap.services[i].name, name)) {
            *ret_pid = snap.services[i].pid;
            *ret_restarts = snap.services[i].restarts;
            *ret_running = streq(snap.services[i].state, "running");
            found = true;
        }
    status_snapshot_release(&snap);
    return found;
}

static int request(const struct cli_ctx *ctx, enum sv_request req, const char *name)
{
    const char *verb = req == SV_REQUEST_STOP ? "stop" : "restart";
    char why[256];
    int r = sv_request(ctx->state_dir, req, name, NULL, 10 * USEC_PER_SEC, why, sizeof why);

    if (r == -EINVAL || r == -EPROTO)
        log_error("%s of '%s' refused: %s", verb, name, why[0] ? why : "invalid response");
    else if (r < 0)
        log_error_errno(r, "%s of '%s' failed", verb, name);
    return r;
}

/* A scheduled service runs for a moment at a time: restart's "runs again under a new pid" does
 * not fit it; `infractl run` does. */
static bool refuse_job(const struct cli_ctx *ctx, const char *name)
{
    struct status_snapshot snap = { 0 };
    bool job = false;

    if (status_fetch(ctx, &snap) < 0)
        return false;
    for (size_t i = 0; i < snap.n_services; i++)
        job = job || (streq(snap.services[i].name, name) && snap.services[i].job);
    status_snapshot_release(&snap);
    if (job)
        log_error("'%s' is a scheduled service: `infractl run %s` runs it now", name, name);
    return job;
}

/* Exit code for a service that is not in the snapshot: the stack is down, or no such name. */
static int not_found(const struct cli_ctx *ctx, const char *name)
{
    if (!cli_supervisor_running(ctx)) {
        fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
        return CLI_EXIT_NOT_RUNNING;
    }
    log_error("unknown service '%s'", name);
    return CLI_EXIT_USAGE;
}

int cmd_restart(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "no-wait", no_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { 0 },
    };
    uint64_t timeout = 120 * USEC_PER_SEC;
    bool wait = true;
    int c, ret = CLI_EXIT_OK;

    while ((c = getopt_long(argc, argv, "nt:", opts, NULL)) != -1) {
        if (c == 'n')
            wait = false;
        else if (c == 't' && parse_duration_usec(optarg, &timeout) == 0)
            continue;
        else
            return cli_usage_error(usage, "invalid option or value '%s'", argv[optind - 1]);
    }
    if (optind >= argc)
        return cli_usage_error(usage, "name at least one service");
    for (int i = optind; i < argc; i++) {
        long old_pid = 0, pid = 0;
        unsigned old_restarts = 0, restarts = 0;
        bool running = false;
        uint64_t deadline = now_usec() + timeout;
        int r;

        if (!find_service(ctx, argv[i], &old_pid, &old_restarts, &running)) {
            ret = not_found(ctx, argv[i]);
            if (ret == CLI_EXIT_NOT_RUNNING)
                return ret;
            continue;
        }
        if (refuse_job(ctx, argv[i])) {
            ret = CLI_EXIT_USAGE;
            continue;
        }
        r = request(ctx, SV_REQUEST_RESTART, argv[i]);
        if (r < 0) {
            ret = CLI_EXIT_FAILURE;
            continue;
        }
        if (!wait) {
            fprintf(stderr, "infractl: restart of %s requested\n", argv[i]);
            continue;
        }
        /* The supervisor answers once the request is taken; the new run starts after the
         * stop (signal, grace) and the minimum delay between starts. */
        while (!(find_service(ctx, argv[i], &pid, &restarts, &running) && running &&
                 restarts > old_restarts)) {
            if (now_usec() > deadline) {
                log_error("'%s' did not run again within %.0fs", argv[i], (double)timeout / 1e6);
                ret = CLI_EXIT_FAILURE;
                break;
            }
            sleep_usec(100 * USEC_PER_MSEC);
        }
        if (running && restarts > old_restarts)
            fprintf(stderr, "infractl: restarted %s (pid %ld -> %ld)\n", argv[i], old_pid, pid);
    }
    return ret;
}

int cmd_stop(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "timeout", required_argument, NULL, 't' },
        { 0 },
    };
    uint64_t timeout = 120 * USEC_PER_SEC;
    int c, ret = CLI_EXIT_OK;

    while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        if (c == 't' && parse_duration_usec(optarg, &timeout) == 0)
            continue;
        return cli_usage_error(stop_usage, "invalid option or value '%s'", argv[optind - 1]);
    }
    if (optind >= argc)
        return cli_usage_error(stop_usage, "name at least one service");
    for (int i = optind; i < argc; i++) {
        long pid = 0;
        unsigned restarts = 0;
        bool running = false;
        uint64_t deadline = now_usec() + timeout;

        if (!find_service(ctx, argv[i], &pid, &restarts, &running)) {
            ret = not_found(ctx, argv[i]);
            if (ret == CLI_EXIT_NOT_RUNNING)
                return ret;
            continue;
        }
        if (request(ctx, SV_REQUEST_STOP, argv[i]) < 0) {
            ret = CLI_EXIT_FAILURE;
            continue;
        }
        /* Stopped once no process of it is left (pid 0), whatever state it shows. */
        while (find_service(ctx, argv[i], &pid, &restarts, &running) && pid > 0) {
            if (now_usec() > deadline) {
                log_error("'%s' did not stop within %.0fs", argv[i], (double)timeout / 1e6);
                ret = CLI_EXIT_FAILURE;
                break;
            }
            sleep_usec(100 * USEC_PER_MSEC);
        }
        if (pid == 0)
            fprintf(stderr, "infractl: stopped %s\n", argv[i]);
    }
    return ret;
}
