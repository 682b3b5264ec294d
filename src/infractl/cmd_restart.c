/* SPDX-License-Identifier: MIT */
/* infractl restart SERVICE...: stop (signal, grace, SIGKILL) and start again, waiting until
 * each service runs again under a new pid. */
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

static int request_restart(const struct cli_ctx *ctx, const char *name)
{
    char why[256];
    int r = sv_request(ctx->state_dir, SV_REQUEST_RESTART, name, NULL, 10 * USEC_PER_SEC, why,
                       sizeof why);

    if (r == -EINVAL || r == -EPROTO)
        log_error("restart of '%s' refused: %s", name, why[0] ? why : "invalid response");
    return r;
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
            if (!cli_supervisor_running(ctx)) {
                fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
                return CLI_EXIT_NOT_RUNNING;
            }
            log_error("unknown service '%s'", argv[i]);
            ret = CLI_EXIT_USAGE;
            continue;
        }
        r = request_restart(ctx, argv[i]);
        if (r < 0) {
            if (r != -EINVAL)
                log_error_errno(r, "restart of '%s' failed", argv[i]);
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
