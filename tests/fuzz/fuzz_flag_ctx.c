/* SPDX-License-Identifier: MIT */
/* fuzz_flag_ctx.c - fuzz target: the evaluation-context parser (plain and OFREP body), then
 * evaluation of a flag using every operator against the parsed context.  Differential: the
 * parser's fast path must give exactly what the general (jansson) parser gives. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rollout.h"
#include "rollout/rollout_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char flag_json[] =
        "{\"key\":\"f\",\"stickiness\":\"acct\",\"rules\":["
        "{\"attribute\":\"a\",\"op\":\"eq\",\"value\":\"x\",\"variant\":\"candidate\"},"
        "{\"attribute\":\"a\",\"op\":\"neq\",\"value\":3,\"exclude\":true},"
        "{\"attribute\":\"b\",\"op\":\"in\",\"values\":[\"x\",1,true],\"variant\":\"candidate\"},"
        "{\"attribute\":\"b\",\"op\":\"not_in\",\"values\":[\"y\"],\"exclude\":true},"
        "{\"attribute\":\"n\",\"op\":\"lt\",\"value\":1,\"variant\":\"candidate\"},"
        "{\"attribute\":\"n\",\"op\":\"gte\",\"value\":1e300,\"variant\":\"candidate\"},"
        "{\"attribute\":\"v\",\"op\":\"semver_gt\",\"value\":\"1.0.0-rc.1\",\"variant\":"
        "\"candidate\"},"
        "{\"attribute\":\"v\",\"op\":\"semver_lte\",\"value\":\"0.0.1\",\"exclude\":true},"
        "{\"attribute\":\"r\",\"op\":\"regex\",\"value\":\"^(a|b)*c{2,5}[^x-z]\\\\d+$\","
        "\"variant\":\"candidate\"},"
        "{\"op\":\"in_segment\",\"segment\":\"s\",\"variant\":\"candidate\"}],"
        "\"environments\":{\"production\":{\"stage\":\"canary\",\"canary\":20}}}";
static const char seg_json[] =
        "{\"key\":\"s\",\"conditions\":[{\"attribute\":\"targetingKey\",\"op\":\"regex\","
        "\"value\":\"^u-\"},{\"attribute\":\"z\",\"op\":\"gt\",\"value\":0}]}";

static struct rollout_snapshot *snapshot(void)
{
    static struct rollout_snapshot *s;
    struct rollout_segment *seg = NULL;
    struct rollout_flag *f = NULL;

    if (s)
        return s;
    if (rollout_flag_parse(flag_json, strlen(flag_json), &f, NULL) < 0 ||
        rollout_segment_parse(seg_json, strlen(seg_json), &seg, NULL) < 0 ||
        rollout_snapshot_build("production", 1, &f, 1, &seg, 1, &s, NULL) < 0)
        abort();
    rollout_flag_unref(f);
    rollout_segment_unref(seg);
    return s;
}

static bool ctx_equal(const struct rollout_ctx *a, const struct rollout_ctx *b)
{
    if ((a->targeting_key == NULL) != (b->targeting_key == NULL) ||
        (a->targeting_key && strcmp(a->targeting_key, b->targeting_key) != 0) ||
        a->n_attrs != b->n_attrs)
        return false;
    for (size_t i = 0; i < a->n_attrs; i++) {
        const struct rollout_attr *x = &a->attrs[i], *y = &b->attrs[i];

        if (strcmp(x->name, y->name) != 0 || x->type != y->type || x->b != y->b ||
            memcmp(&x->n, &y->n, sizeof x->n) != 0 || (x->s == NULL) != (y->s == NULL) ||
            (x->s && strcmp(x->s, y->s) != 0))
            return false;
    }
    return true;
}

/* rollout_ctx_parse() (fast path first) against the general parser alone. */
static void differential(const uint8_t *data, size_t size, unsigned flags)
{
    struct rollout_ctx a = ROLLOUT_CTX_INIT, b = ROLLOUT_CTX_INIT;
    struct err ea = ERR_INIT, eb = ERR_INIT;
    int ra = rollout_ctx_parse((const char *)data, size, flags, &a, &ea);
    int rb = rollout__ctx_parse_json((const char *)data, size, flags, &b, &eb);

    if (ra != rb || (ra == 0 && !ctx_equal(&a, &b)) ||
        (ra < 0 && (strcmp(ea.msg, eb.msg) != 0 || strcmp(ea.field, eb.field) != 0)))
        abort();
    rollout_ctx_release(&a);
    rollout_ctx_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    differential(data, size, 0);
    differential(data, size, ROLLOUT_CTX_OFREP_BODY);
    for (unsigned mode = 0; mode < 2; mode++) {
        struct rollout_ctx ctx = ROLLOUT_CTX_INIT;
        struct rollout_result res;
        struct err e = ERR_INIT;
        struct buf out = BUF_INIT(0);
        int status = 0, r;

        if (rollout_ctx_parse((const char *)data, size, mode ? ROLLOUT_CTX_OFREP_BODY : 0, &ctx,
                              &e) < 0) {
            if (!e.msg[0])
                abort();
            continue;
        }
        r = rollout_eval(snapshot(), "f", &ctx, ROLLOUT_TYPE_BOOLEAN, &res);
        if ((r < 0) != (res.value == NULL))
            abort();
        if (rollout_ofrep_write_result("f", &res, &out, &status) < 0 || !status)
            abort();
        buf_release(&out);
        rollout_ctx_release(&ctx);
    }
    return 0;
}
