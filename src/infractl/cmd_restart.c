/* SPDX-License-Identifier: MIT */
/* infractl restart SERVICE...: stop (signal, grace, SIGKILL) and start again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/log.h"
#include "core/str.h"
#include "supervise/supervise.h"

static const char usage[] = "restart SERVICE...";

int cmd_restart(int argc, char **argv, struct cli_ctx *ctx)
{
    int ret = CLI_EXIT_OK;

    if (argc < 2)
        return cli_usage_error(usage, "name at least one service");
    for (int i = 1; i < argc; i++) {
        json_t *req = json_pack("{s:s, s:s}", "cmd", "restart", "service", argv[i]), *resp;
        char *line = req ? json_dumps(req, JSON_COMPACT) : NULL, *answer = NULL;
        int r;

        json_decref(req);
        if (!line)
            return CLI_EXIT_FAILURE;
        r = sv_control_call(ctx->state_dir, line, 120 * USEC_PER_SEC, &answer);
        free(line);
        if (r == -ENOENT || r == -ECONNREFUSED) {
            fprintf(stderr, "infractl: stack is not running (state %s)\n", ctx->state_dir);
            return CLI_EXIT_NOT_RUNNING;
        }
        if (r < 0) {
            log_error_errno(r, "restart of '%s' failed", argv[i]);
            return CLI_EXIT_FAILURE;
        }
        resp = json_loads(answer, 0, NULL);
        if (!json_is_true(json_object_get(resp, "ok"))) {
            const char *e = json_string_value(json_object_get(resp, "error"));
            log_error("restart of '%s' failed: %s", argv[i], e ? e : answer);
            ret = CLI_EXIT_FAILURE;
        } else {
            fprintf(stderr, "infractl: restarted %s\n", argv[i]);
        }
        json_decref(resp);
        free(answer);
    }
    return ret;
}
