/* SPDX-License-Identifier: MIT */
/* fuzz_flag_ctx.c - fuzz target: the evaluation-context parser (plain and OFREP body), then
 * evaluation of a flag using every operator against the parsed context. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rollout.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
