/* SPDX-License-Identifier: MIT */
/* infractl status: one table (or JSON) of state, health, role and lag per service. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "stack/stack.h"
#include "status.h"

static const char usage[] = "status [--json] [--watch] [--interval S] [SERVICE...]";

static const struct cli_help_item status_options[] = {
    { "-j, --json", "print the same data as one JSON document" },
    { "-w, --watch", "redraw until Ctrl-C" },
    { "-i, --interval S", "--watch's period (default 1s, at least 100ms)" },
    { "SERVICE...", "only these services (default: all)" },
    { NULL, NULL },
};

const struct cli_help cmd_status_help = {
    .usage = usage,
    .summary = "Show state, health and roles",
    .options = status_options,
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int show_once(const struct cli_ctx *ctx, const struct stack *s, bool json, char **names,
                     int n_names)
{
    struct status_snapshot snap = { 0 };
    bool all_up = true;
    int r;

    r = status_fetch(ctx, &snap);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        if (json)
            (void)status_print_not_running(ctx->state_dir, stdout);
        else
            fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
        return CLI_EXIT_NOT_RUNNING;
    }
    if (r < 0) {
        log_error_errno(r, "cannot read status from the supervisor");
        return CLI_EXIT_FAILURE;
    }
    if (n_names > 0 && status_filter(&snap, names, n_names) < 0) {
        status_snapshot_release(&snap);
        return CLI_EXIT_USAGE;
    }
    status_collect_roles(&snap, s);
    for (size_t i = 0; i < snap.n_services; i++)
        all_up = all_up && status_service_up(&snap.services[i]);
    /* A filtered view (status pg1) judges no cluster: it does not see every member. */
    all_up = all_up && (n_names > 0 || !status_any_degraded(&snap));
    if (json)
        r = status_print_json(&snap, stdout);
    else
        status_print_table(&snap, stdout);
    status_snapshot_release(&snap);
    if (r < 0)
        return CLI_EXIT_FAILURE;
    return all_up ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
}

int cmd_status(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "watch", no_argument, NULL, 'w' },
        { "interval", required_argument, NULL, 'i' },
        { 0 },
    };
    bool json = false, watch = false;
    uint64_t interval = USEC_PER_SEC;
    struct stack *s = NULL;
    int c, ret;

    while ((c = getopt_long(argc, argv, "jwi:", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'w':
            watch = true;
            break;
        case 'i':
            if (parse_duration_usec(optarg, &interval) < 0 || interval < 100 * USEC_PER_MSEC)
                return cli_usage_error(usage, "invalid --interval '%s' (at least 100ms)", optarg);
            break;
        default:
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!cli_supervisor_running(ctx))
        return show_once(ctx, NULL, json, NULL, 0);
    if (cli_load_stack(ctx, false, &s, NULL) < 0)
        return CLI_EXIT_FAILURE;
    if (!watch) {
        ret = show_once(ctx, s, json, argv + optind, argc - optind);
        stack_free(s);
        return ret;
    }
    {
        struct sigaction sa = { .sa_handler = on_sigint };
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
    }
    do {
        if (!json)
            printf("\033[H\033[2J"); /* home + clear: redraw in place */
        ret = show_once(ctx, s, json, argv + optind, argc - optind);
        if (!json)
            printf("\n(every %.1fs, Ctrl-C to quit)\n", (double)interval / 1e6);
        fflush(stdout);
        if (ret == CLI_EXIT_NOT_RUNNING || ret == CLI_EXIT_USAGE)
            break;
        sleep_usec(interval);
    } while (!interrupted);
    stack_free(s);
    return interrupted ? CLI_EXIT_OK : ret;
}
