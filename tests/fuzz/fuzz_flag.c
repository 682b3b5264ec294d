/* SPDX-License-Identifier: MIT */
/* fuzz_flag.c - fuzz target: the flag-definition parser (and the snapshot parser on the same
 * bytes).  A flag that parses must serialize, parse again to the same normalized text, build
 * into a snapshot when it names no segment, and evaluate for a few contexts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rollout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parse error says something, and its field (data), when set, is the path its message names:
 * rolloutd hands the field to API clients without reading the message. */
static void check_err(const struct err *e)
{
    char want[sizeof e->field + 16];

    if (!e->msg[0])
        abort();
    if (!e->field[0])
        return;
    (void)snprintf(want, sizeof want, "field '%s': ", e->field);
    if (strlen(e->msg) + 1 < sizeof e->msg && !strstr(e->msg, want))
        abort(); /* (a message cut at sizeof msg may have lost the path's end) */
}

static void check_flag(struct rollout_flag *f)
{
    static const char *const envs[] = { "production", "staging" };
    struct rollout_attr attrs[] = { ROLLOUT_ATTR_STRING("country", "DE"),
                                    ROLLOUT_ATTR_NUMBER("age", 33),
                                    ROLLOUT_ATTR_STRING("app", "1.2.3-rc.1"),
                                    ROLLOUT_ATTR_STRING("email", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"),
                                    ROLLOUT_ATTR_BOOL("beta", true) };
    struct rollout_ctx ctxs[] = { ROLLOUT_CTX("user-1", attrs, 5), ROLLOUT_CTX(NULL, NULL, 0),
                                  ROLLOUT_CTX("", attrs, 2) };
    struct buf a = BUF_INIT(0), b = BUF_INIT(0);
    struct rollout_flag *g = NULL;
    struct err e = ERR_INIT;

    if (rollout_flag_serialize(f, NULL, &a) < 0)
        abort();
    if (rollout_flag_parse(buf_str(&a), a.len, &g, &e) < 0)
        abort(); /* normalized output must parse */
    if (rollout_flag_serialize(g, NULL, &b) < 0 || strcmp(buf_str(&a), buf_str(&b)) != 0)
        abort(); /* and be a fixed point */
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        struct rollout_snapshot *s = NULL;

        if (rollout_snapshot_build(envs[i], 1, &f, 1, NULL, 0, &s, &e) < 0)
            continue; /* a rule names a segment */
        for (size_t k = 0; k < sizeof ctxs / sizeof ctxs[0]; k++) {
            struct rollout_result res;
            int r = rollout_eval(s, rollout_flag_key(f), &ctxs[k], ROLLOUT_TYPE_ANY, &res);

            if ((r < 0) != (res.value == NULL))
                abort();
            if (r >= 0 && res.shadow && !res.shadow_value)
                abort();
        }
        rollout_snapshot_unref(s);
    }
    rollout_flag_unref(g);
    buf_release(&a);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rollout_snapshot *s = NULL;
    struct rollout_flag *f = NULL;
    struct err e = ERR_INIT;

    if (rollout_flag_parse((const char *)data, size, &f, &e) < 0) {
        check_err(&e);
    } else {
        check_flag(f);
        rollout_flag_unref(f);
    }
    e = (struct err)ERR_INIT;
    if (rollout_snapshot_parse((const char *)data, size, &s, &e) < 0) {
        check_err(&e);
    } else {
        struct buf out = BUF_INIT(0);

        if (rollout_snapshot_serialize(s, &out) < 0)
            abort();
        buf_release(&out);
        rollout_snapshot_unref(s);
    }
    return 0;
}
