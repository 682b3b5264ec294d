/* SPDX-License-Identifier: MIT */
/* infractl down: asks the supervisor to stop everything and waits until it has exited. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "supervise/supervise.h"

static const char usage[] = "down [--timeout S]";

static const struct cli_help_item down_options[] = {
    { "-t, --timeout S", "how long to wait until the supervisor has stopped (default 120s)" },
    { NULL, NULL },
};

const struct cli_help cmd_down_help = {
    .usage = usage,
    .summary = "Stop every service, reverse dependency order",
    .options = down_options,
    .notes = "Data stays in the state directory; the next `up` reuses it.\n",
};

static long read_supervisor_pid(const struct cli_ctx *ctx)
{
    struct buf b = BUF_INIT(64);
    char path[4096];
    uint64_t pid = 0;
    size_t n;

    (void)snprintf(path, sizeof path, "%s/supervisor.pid", ctx->state_dir);
    if (file_read_all(path, &b) >= 0) {
        n = b.len;
        while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == ' '))
            b.data[--n] = '\0';
        if (parse_u64(buf_str(&b), &pid) < 0)
            pid = 0;
    }
    buf_release(&b);
    return (long)pid;
}

int cmd_down(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = { { "timeout", required_argument, NULL, 't' }, { 0 } };
    uint64_t timeout = 120 * USEC_PER_SEC, start;
    long pid;
    int c, r;

    while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        if (c != 't' || parse_duration_usec(optarg, &timeout) < 0)
            return cli_usage_error(usage,
                                   c == 't' ? "invalid --timeout '%s'" : "unknown option '%s'",
                                   c == 't' ? optarg : argv[optind - 1]);
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);

    pid = read_supervisor_pid(ctx);
    r = sv_request(ctx->state_dir, SV_REQUEST_DOWN, NULL, NULL, 5 * USEC_PER_SEC, NULL, 0);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
        return CLI_EXIT_OK;
    }
    if (r < 0) {
        log_error_errno(r, "cannot reach the supervisor");
        return CLI_EXIT_FAILURE;
    }
    fprintf(stderr, "infractl: stopping the stack (reverse dependency order)...\n");
    start = now_usec();
    /* The supervisor answers at once and exits once every service is gone. */
    while (pid > 0 && kill((pid_t)pid, 0) == 0) {
        if (now_usec() - start > timeout) {
            log_error("supervisor (pid %ld) still running after %.0fs", pid, (double)timeout / 1e6);
            return CLI_EXIT_FAILURE;
        }
        sleep_usec(50 * USEC_PER_MSEC);
    }
    fprintf(stderr, "infractl: stack stopped in %.1fs\n", (double)(now_usec() - start) / 1e6);
    return CLI_EXIT_OK;
}
