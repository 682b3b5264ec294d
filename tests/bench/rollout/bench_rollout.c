/* SPDX-License-Identifier: MIT */
/* bench_rollout.c - ns per in-process evaluation: the flag set of bench_peers.js (same flags,
 * same subjects) through the engine directly and through librollout's client read path.
 *
 * Output: one line per case, "c <path> <case> <ns/op> <on-fraction>", best of 5 runs of
 * N evaluations over 65536 distinct prebuilt subjects. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "rollout.h"

#define SUBJECTS 65536
#define RUNS     5

/* The same three flags as bench_peers.js:
 *  static:     no rules, stage full (everyone gets candidate)
 *  fractional: no rules, 25 % of subjects by targeting key
 *  rules5:     five targeting rules that do not match these subjects, then 25 %. */
static const char snapshot_json[] =
        "{\"version\":1,\"env\":\"production\",\"flags\":["
        "{\"key\":\"static\",\"environments\":{\"production\":{\"stage\":\"full\"}}},"
        "{\"key\":\"fractional\",\"environments\":{\"production\":{\"stage\":\"partial\","
        "\"partial\":25}}},"
        "{\"key\":\"rules5\",\"rules\":["
        "{\"attribute\":\"country\",\"op\":\"eq\",\"value\":\"XX\",\"variant\":\"candidate\"},"
        "{\"attribute\":\"plan\",\"op\":\"in\",\"values\":[\"gold\",\"platinum\",\"vip\"],"
        "\"variant\":\"candidate\"},"
        "{\"attribute\":\"version\",\"op\":\"semver_gt\",\"value\":\"9.0.0\",\"variant\":"
        "\"candidate\"},"
        "{\"attribute\":\"age\",\"op\":\"lt\",\"value\":5,\"exclude\":true},"
        "{\"attribute\":\"email\",\"op\":\"regex\",\"value\":\"@corp\\\\.example$\",\"variant\":"
        "\"candidate\"}],"
        "\"environments\":{\"production\":{\"stage\":\"partial\",\"partial\":25}}}]}";

struct subject {
    char key[16];
    char email[32];
    struct rollout_attr attrs[5];
    struct rollout_ctx ctx;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_case(const char *path, const char *flag, struct rollout_snapshot *snap,
                     struct rollout_client *c, struct subject *subj, unsigned long n)
{
    double best = 1e18;
    unsigned long on = 0;

    for (int run = 0; run < RUNS; run++) {
        uint64_t t0;
        double ns;

        on = 0;
        t0 = now_ns();
        for (unsigned long i = 0; i < n; i++) {
            const struct rollout_ctx *ctx = &subj[i & (SUBJECTS - 1)].ctx;

            if (c) {
                on += rollout_client_bool(c, flag, ctx, false, NULL);
            } else {
                struct rollout_result res;

                if (rollout_eval(snap, flag, ctx, ROLLOUT_TYPE_BOOLEAN, &res) == 0)
                    on += res.value->b;
            }
        }
        ns = (double)(now_ns() - t0) / (double)n;
        if (ns < best)
            best = ns;
    }
    printf("c %s %s %.1f %.4f\n", path, flag, best, (double)on / (double)n);
}

int main(int argc, char **argv)
{
    struct rollout_client_options o = { .env = "production" };
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000; /* NOLINT: bench only */
    static const char *const flags[] = { "static", "fractional", "rules5" };
    struct rollout_snapshot *snap = NULL;
    struct rollout_client *c = NULL;
    struct err e = ERR_INIT;
    struct subject *subj;

    if (rollout_snapshot_parse(snapshot_json, strlen(snapshot_json), &snap, &e) < 0 ||
        rollout_client_new(&o, &c, &e) < 0) {
        fprintf(stderr, "bench_rollout: %s\n", e.msg);
        return 1;
    }
    subj = calloc(SUBJECTS, sizeof *subj);
    if (!subj)
        return 1;
    for (unsigned i = 0; i < SUBJECTS; i++) {
        struct subject *s = &subj[i];

        (void)snprintf(s->key, sizeof s->key, "user-%u", i);
        (void)snprintf(s->email, sizeof s->email, "user-%u@example.com", i);
        s->attrs[0] = (struct rollout_attr)ROLLOUT_ATTR_STRING("country", "DE");
        s->attrs[1] = (struct rollout_attr)ROLLOUT_ATTR_STRING("plan", "free");
        s->attrs[2] = (struct rollout_attr)ROLLOUT_ATTR_STRING("version", "2.3.1");
        s->attrs[3] = (struct rollout_attr)ROLLOUT_ATTR_NUMBER("age", 30 + i % 40);
        s->attrs[4] = (struct rollout_attr)ROLLOUT_ATTR_STRING("email", s->email);
        s->ctx = (struct rollout_ctx)ROLLOUT_CTX(s->key, s->attrs, 5);
    }
    rollout_client_set_snapshot(c, rollout_snapshot_ref(snap));
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        run_case("engine", flags[f], snap, NULL, subj, n);
        run_case("client", flags[f], NULL, c, subj, n);
    }
    rollout_client_free(c);
    rollout_snapshot_unref(snap);
    free(subj);
    return 0;
}
