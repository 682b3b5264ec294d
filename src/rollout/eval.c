/* SPDX-License-Identifier: MIT */
/* eval.c - flag evaluation against a snapshot (the hot path: no locks, no allocation) and the
 * OFREP rendering of a result. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "rollout_int.h"

/* The attribute a condition reads, as a flat view. */
struct attr_view {
    enum rollout_attr_type type; /* ROLLOUT_ATTR_NULL when absent */
    bool b;
    double n;
    const char *s;
};

static void find_attr(const struct rollout_ctx *ctx, const char *name, size_t name_len, bool is_tk,
                      struct attr_view *ret)
{
    ret->type = ROLLOUT_ATTR_NULL;
    if (is_tk) {
        if (ctx->targeting_key) {
            ret->type = ROLLOUT_ATTR_STRING;
            ret->s = ctx->targeting_key;
        }
        return;
    }
    for (size_t i = 0; i < ctx->n_attrs; i++) {
        const struct rollout_attr *a = &ctx->attrs[i];

        /* Compare the first byte before the call: most names differ there. */
        if (a->name[0] != name[0] || strncmp(a->name, name, name_len + 1) != 0)
            continue;
        ret->type = a->type;
        ret->b = a->b;
        ret->n = a->n;
        ret->s = a->s;
        if (a->type == ROLLOUT_ATTR_STRING && !a->s)
            ret->type = ROLLOUT_ATTR_NULL;
        return;
    }
}

/* A decimal number in a string ("42", "-1.5e3"); no hex, inf or nan. */
static bool string_number(const char *s, double *ret)
{
    const char *p = s;
    char *end;
    bool digits = false;

    if (*p == '+' || *p == '-')
        p++;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    *ret = strtod(s, &end);
    return end == p;
}

static bool scalar_eq(const struct scalar *v, const struct attr_view *a)
{
    if (v->type != a->type)
        return false;
    switch (v->type) {
    case ROLLOUT_ATTR_STRING:
        return strncmp(v->s, a->s, v->len + 1) == 0;
    case ROLLOUT_ATTR_NUMBER:
        return v->n == a->n;
    default:
        return v->b == a->b;
    }
}

static bool in_list(const struct cond *c, const struct attr_view *a)
{
    size_t lo = 0, hi;

    switch (a->type) {
    case ROLLOUT_ATTR_STRING: {
        struct strref key = { a->s, strlen(a->s) };

        hi = c->n_str;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const struct strref *m = &c->sorted_str[mid];
            int cmp =
                    key.len != m->len ? (key.len < m->len ? -1 : 1) : memcmp(key.s, m->s, key.len);

            if (!cmp)
                return true;
            if (cmp < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        return false;
    }
    case ROLLOUT_ATTR_NUMBER:
        hi = c->n_num;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (c->sorted_num[mid] == a->n)
                return true;
            if (a->n < c->sorted_num[mid])
                hi = mid;
            else
                lo = mid + 1;
        }
        return false;
    case ROLLOUT_ATTR_BOOL:
        return a->b ? c->has_true : c->has_false;
    default:
        return false;
    }
}

static bool segment_match(const struct rollout_segment *seg, const struct rollout_ctx *ctx);

static bool cond_match(const struct cond *c, const struct rollout_segment *seg,
                       const struct rollout_ctx *ctx)
{
    struct attr_view a;
    struct semver sv;
    double n;
    int cmp;

    switch (c->op) {
    case COND_IN_SEGMENT:
        return segment_match(seg, ctx);
    case COND_NOT_IN_SEGMENT:
        return !segment_match(seg, ctx);
    default:
        break;
    }
    find_attr(ctx, c->attr, c->attr_len, c->attr_is_tk, &a);
    switch (c->op) {
    case COND_EQ:
        return scalar_eq(&c->value, &a);
    case COND_NEQ:
        return !scalar_eq(&c->value, &a);
    case COND_IN:
        return in_list(c, &a);
    case COND_NOT_IN:
        return !in_list(c, &a);
    case COND_LT:
    case COND_LTE:
    case COND_GT:
    case COND_GTE:
        if (a.type == ROLLOUT_ATTR_NUMBER)
            n = a.n;
        else if (a.type != ROLLOUT_ATTR_STRING || !string_number(a.s, &n))
            return false;
        if (isnan(n))
            return false;
        switch (c->op) {
        case COND_LT:
            return n < c->value.n;
        case COND_LTE:
            return n <= c->value.n;
        case COND_GT:
            return n > c->value.n;
        default:
            return n >= c->value.n;
        }
    case COND_SEMVER_EQ:
    case COND_SEMVER_LT:
    case COND_SEMVER_LTE:
    case COND_SEMVER_GT:
    case COND_SEMVER_GTE:
        if (a.type != ROLLOUT_ATTR_STRING || !rollout__semver_parse(a.s, strlen(a.s), &sv))
            return false;
        cmp = rollout__semver_cmp(&sv, &c->sv);
        switch (c->op) {
        case COND_SEMVER_EQ:
            return cmp == 0;
        case COND_SEMVER_LT:
            return cmp < 0;
        case COND_SEMVER_LTE:
            return cmp <= 0;
        case COND_SEMVER_GT:
            return cmp > 0;
        default:
            return cmp >= 0;
        }
    case COND_REGEX:
        return a.type == ROLLOUT_ATTR_STRING && rollout__rx_search(c->rx, a.s, strlen(a.s));
    default:
        return false;
    }
}

static bool segment_match(const struct rollout_segment *seg, const struct rollout_ctx *ctx)
{
    if (!seg)
        return false; /* cannot happen: snapshots resolve every segment test */
    for (size_t i = 0; i < seg->n_conds; i++)
        if (!cond_match(&seg->conds[i], NULL, ctx))
            return false;
    return true;
}

/* The bucket of the subject, or -ENOKEY when the stickiness value is absent. */
static int subject_bucket(const struct rollout_flag *f, const struct rollout_ctx *ctx,
                          uint32_t *ret)
{
    struct attr_view a;
    struct mm3 m = f->salt_state;
    char num[32];
    const char *s;
    size_t len;

    find_attr(ctx, f->stickiness, f->stickiness_len, f->stickiness_is_tk, &a);
    switch (a.type) {
    case ROLLOUT_ATTR_STRING:
        s = a.s;
        len = strlen(s);
        break;
    case ROLLOUT_ATTR_NUMBER: {
        int n;

        if (!isfinite(a.n))
            return -ENOKEY;
        if (a.n == nearbyint(a.n) && fabs(a.n) < 1e18)
            n = snprintf(num, sizeof num, "%lld", (long long)a.n);
        else
            n = snprintf(num, sizeof num, "%.17g", a.n);
        if (n < 0 || (size_t)n >= sizeof num)
            return -ENOKEY;
        s = num;
        len = (size_t)n;
        break;
    }
    case ROLLOUT_ATTR_BOOL:
        s = a.b ? "true" : "false";
        len = strlen(s);
        break;
    default:
        return -ENOKEY;
    }
    rollout__mm3_update(&m, s, len);
    *ret = rollout__bucket_of(rollout__mm3_final(&m));
    return 0;
}

static void resolve(const struct rollout_snapshot *s, const struct snap_flag *sf, unsigned v,
                    enum rollout_reason reason, struct rollout_result *ret)
{
    const struct variant *va = &sf->f->variants[v];

    ret->value = &va->value;
    ret->variant = va->name;
    ret->reason = reason;
    ret->error = ROLLOUT_ERROR_NONE;
    /* Sharded by thread so concurrent evaluations do not bounce one cache line. */
    atomic_fetch_add_explicit(&s->counters[(rollout__thread_slot() % ROLLOUT_SHARDS) * s->stride +
                                           sf->counter_base + v],
                              1, memory_order_relaxed);
}

int rollout_eval(const struct rollout_snapshot *s, const char *key, const struct rollout_ctx *ctx,
                 enum rollout_type want, struct rollout_result *ret)
{
    const struct snap_flag *sf;
    const struct rollout_flag *f;
    uint32_t bucket, limit;

    *ret = (struct rollout_result){ .reason = ROLLOUT_REASON_ERROR,
                                    .error = ROLLOUT_ERROR_GENERAL,
                                    .stage = ROLLOUT_STAGE_OFF,
                                    .bucket = UINT32_MAX };
    sf = rollout__snapshot_lookup(s, key);
    if (!sf) {
        ret->error = ROLLOUT_ERROR_FLAG_NOT_FOUND;
        return -ENOENT;
    }
    f = sf->f;
    ret->flag_version = f->version;
    ret->stage = sf->stage;
    if (want != ROLLOUT_TYPE_ANY && want != f->type) {
        ret->error = ROLLOUT_ERROR_TYPE_MISMATCH;
        return -EMEDIUMTYPE;
    }
    if (sf->kill) {
        ret->killed = true;
        resolve(s, sf, f->control, ROLLOUT_REASON_DISABLED, ret);
        return 0;
    }
    for (size_t i = 0; i < f->n_rules; i++) {
        const struct rule *ru = &f->rules[i];

        if (!cond_match(&ru->cond, sf->rule_segs ? sf->rule_segs[i] : NULL, ctx))
            continue;
        resolve(s, sf, ru->variant < 0 ? f->control : (unsigned)ru->variant,
                ROLLOUT_REASON_TARGETING_MATCH, ret);
        return 0;
    }
    switch (sf->stage) {
    case ROLLOUT_STAGE_OFF:
        resolve(s, sf, f->control, ROLLOUT_REASON_DISABLED, ret);
        return 0;
    case ROLLOUT_STAGE_FULL:
        resolve(s, sf, f->candidate, ROLLOUT_REASON_STATIC, ret);
        return 0;
    case ROLLOUT_STAGE_SHADOW:
        limit = sf->shadow;
        break;
    case ROLLOUT_STAGE_CANARY:
        limit = sf->canary;
        break;
    default:
        limit = sf->partial;
        break;
    }
    if (subject_bucket(f, ctx, &bucket) < 0) {
        ret->error = ROLLOUT_ERROR_TARGETING_KEY_MISSING;
        return -ENOKEY;
    }
    ret->bucket = bucket;
    if (sf->stage == ROLLOUT_STAGE_SHADOW) {
        resolve(s, sf, f->control, ROLLOUT_REASON_SPLIT, ret);
        if (bucket < limit) {
            ret->shadow = true;
            ret->shadow_value = &f->variants[f->candidate].value;
            ret->shadow_variant = f->variants[f->candidate].name;
        }
        return 0;
    }
    resolve(s, sf, bucket < limit ? f->candidate : f->control, ROLLOUT_REASON_SPLIT, ret);
    return 0;
}

/* ===== OFREP ===== */

int rollout_ofrep_write_result(const char *key, const struct rollout_result *res, struct buf *out,
                               int *ret_http_status)
{
    int status, r;

    r = buf_puts(out, "{\"key\":");
    if (r >= 0)
        r = rollout__json_string(out, key, strlen(key));
    if (r < 0)
        return r;
    if (res->error == ROLLOUT_ERROR_NONE && res->value) {
        status = 200;
        r = buf_puts(out, ",\"value\":");
        if (r >= 0)
            r = rollout_value_write_json(res->value, out);
        /* Plain appends, no printf: this is written once per OFREP evaluation. */
        if (r >= 0)
            r = buf_puts(out, ",\"reason\":\"");
        if (r >= 0)
            r = buf_puts(out, rollout_reason_name(res->reason));
        if (r >= 0)
            r = buf_puts(out, "\",\"variant\":");
        if (r >= 0)
            r = rollout__json_string(out, res->variant, strlen(res->variant));
        if (r >= 0)
            r = buf_puts(out, ",\"metadata\":{\"version\":");
        if (r >= 0)
            r = rollout__json_u64(out, res->flag_version);
        if (r >= 0)
            r = buf_puts(out, ",\"stage\":\"");
        if (r >= 0)
            r = buf_puts(out, rollout_stage_name(res->stage));
        if (r >= 0)
            r = buf_puts(out, res->shadow ? "\",\"shadow\":true" : "\",\"shadow\":false");
        if (r >= 0 && res->shadow) {
            r = buf_puts(out, ",\"shadowVariant\":");
            if (r >= 0)
                r = rollout__json_string(out, res->shadow_variant, strlen(res->shadow_variant));
        }
        if (r >= 0)
            r = buf_puts(out, "}}");
    } else {
        enum rollout_error e =
                res->error == ROLLOUT_ERROR_NONE ? ROLLOUT_ERROR_GENERAL : res->error;
        char details[ROLLOUT_KEY_MAX + 96];

        switch (e) {
        case ROLLOUT_ERROR_FLAG_NOT_FOUND:
            status = 404;
            (void)snprintf(details, sizeof details, "flag '%s' not found", key);
            break;
        case ROLLOUT_ERROR_TYPE_MISMATCH:
            status = 400;
            (void)snprintf(details, sizeof details, "flag '%s' has another type", key);
            break;
        case ROLLOUT_ERROR_TARGETING_KEY_MISSING:
            status = 400;
            (void)snprintf(details, sizeof details,
                           "flag '%s' needs a targeting key (or its stickiness attribute)", key);
            break;
        case ROLLOUT_ERROR_PARSE_ERROR:
        case ROLLOUT_ERROR_INVALID_CONTEXT:
            status = 400;
            (void)snprintf(details, sizeof details, "invalid evaluation context");
            break;
        default:
            status = 500;
            (void)snprintf(details, sizeof details, "evaluation of flag '%s' failed", key);
            break;
        }
        r = buf_appendf(out, ",\"errorCode\":\"%s\",\"errorDetails\":", rollout_error_name(e));
        if (r >= 0)
            r = rollout__json_string(out, details, strlen(details));
        if (r >= 0)
            r = buf_puts(out, "}");
    }
    if (r >= 0 && ret_http_status)
        *ret_http_status = status;
    return r;
}
