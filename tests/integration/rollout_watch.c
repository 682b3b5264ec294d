/* SPDX-License-Identifier: MIT */
/* rollout_watch - librollout's client against a real rolloutd, for test_rollout_stream.sh.
 *
 *   rollout_watch URL TOKEN ENV FLAG TARGETING_KEY OUT_FILE
 *
 * Starts a client, waits for the first snapshot, writes "ready VARIANT\n" to OUT_FILE, then
 * evaluates FLAG in process until its variant changes and appends "changed VARIANT MS\n"
 * (MS = CLOCK_REALTIME milliseconds when the change became visible).  Exits 0 after a change,
 * 1 after 10 s without one. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/time.h"
#include "rollout.h"

static void append(const char *path, const char *line)
{
    FILE *f = fopen(path, "ae");

    if (f) {
        fputs(line, f);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    struct rollout_client_options o = { 0 };
    struct rollout_client *c = NULL;
    struct rollout_ctx ctx = ROLLOUT_CTX_INIT;
    struct err e = ERR_INIT;
    char first[64], now_variant[64], line[160];
    uint64_t deadline;
    int ret = 1;

    if (argc != 7) {
        fprintf(stderr, "usage: rollout_watch URL TOKEN ENV FLAG TARGETING_KEY OUT_FILE\n");
        return 2;
    }
    o.url = argv[1];
    o.token = argv[2];
    o.env = argv[3];
    ctx.targeting_key = argv[5];
    if (rollout_client_new(&o, &c, &e) < 0 || rollout_client_start(c) < 0) {
        fprintf(stderr, "rollout_watch: client: %s\n", e.msg);
        goto out;
    }
    if (rollout_client_wait_version(c, 1, 5 * 1000000ULL) < 0) {
        fprintf(stderr, "rollout_watch: no snapshot within 5 s\n");
        goto out;
    }
    rollout_client_variant(c, argv[4], &ctx, first, sizeof first, "(error)", NULL);
    (void)snprintf(line, sizeof line, "ready %s\n", first);
    append(argv[6], line);
    deadline = now_usec() + 10 * 1000000ULL;
    while (now_usec() < deadline) {
        rollout_client_variant(c, argv[4], &ctx, now_variant, sizeof now_variant, "(error)", NULL);
        if (strcmp(now_variant, first) != 0) {
            (void)snprintf(line, sizeof line, "changed %s %" PRIu64 "\n", now_variant,
                           now_realtime_usec() / 1000);
            append(argv[6], line);
            ret = 0;
            break;
        }
        sleep_usec(200); /* a test tool: evaluation is local, so poll it densely */
    }
out:
    rollout_client_free(c);
    return ret;
}
