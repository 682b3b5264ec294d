/* SPDX-License-Identifier: MIT */
/* json_out.c - JSON output helpers (strings, shortest round-trip numbers, percentages), JSON
 * paths for error messages and the name tables of the public enums. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "rollout_int.h"

int rollout__json_string(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    int r;

    r = buf_append(out, "\"", 1);
    for (size_t i = 0; r >= 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        r = buf_append(out, s + run, i - run);
        if (r < 0)
            break;
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        r = buf_append(out, esc, n);
    }
    if (r >= 0)
        r = buf_append(out, s + run, len - run);
    if (r >= 0)
        r = buf_append(out, "\"", 1);
    return r;
}

int rollout__json_u64(struct buf *out, uint64_t v)
{
    char tmp[20], *p = tmp + sizeof tmp;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
}

int rollout__json_number(struct buf *out, double n)
{
    char tmp[40];

    if (!isfinite(n))
        return -EINVAL; /* JSON has no NaN/Inf; our parsers never produce them */
    if (n == 0)
        return buf_puts(out, "0"); /* also for -0 */
    /* Shortest %.Ng that reads back as the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(tmp, sizeof tmp, "%.*g", prec, n);
        if (strtod(tmp, NULL) == n)
            break;
    }
    return buf_puts(out, tmp);
}

int rollout__json_percent(struct buf *out, uint32_t units)
{
    char frac[4];
    int i = 2;

    if (units % 1000 == 0)
        return buf_appendf(out, "%u", units / 1000);
    (void)snprintf(frac, sizeof frac, "%03u", units % 1000);
    while (i > 0 && frac[i] == '0')
        frac[i--] = '\0';
    return buf_appendf(out, "%u.%s", units / 1000, frac);
}

void rollout__path_init(struct jpath *p, const char *prefix)
{
    p->len = 0;
    p->truncated = false;
    p->s[0] = '\0';
    if (prefix && *prefix) {
        int n = snprintf(p->s, sizeof p->s, "%s", prefix);

        p->len = n < 0 ? 0 : (size_t)n >= sizeof p->s ? sizeof p->s - 1 : (size_t)n;
    }
}

static size_t path_push(struct jpath *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static size_t path_push(struct jpath *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(p->s + p->len, sizeof p->s - p->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof p->s - p->len) {
        p->truncated = true;
        p->len = sizeof p->s - 1;
    } else {
        p->len += (size_t)n;
    }
    return old;
}

size_t rollout__path_key(struct jpath *p, const char *name)
{
    return path_push(p, p->len ? ".%s" : "%s", name);
}

size_t rollout__path_index(struct jpath *p, size_t i)
{
    return path_push(p, "[%zu]", i);
}

int rollout__field_err(struct err *reterr, int code, const struct jpath *p, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->len)
        return err_set(reterr, code, 0, 0, "%s", msg);
    (void)err_set(reterr, code, 0, 0, "field '%s': %s", p->s, msg);
    /* A path cut short names no field; the message still shows what there is of it. */
    if (!p->truncated)
        err_set_field(reterr, p->s);
    return code;
}

int rollout__member_err(struct err *reterr, int code, struct jpath *p, const char *name,
                        const char *fmt, ...)
{
    size_t old = rollout__path_key(p, name);
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)rollout__field_err(reterr, code, p, "%s", msg);
    rollout__path_pop(p, old);
    return code;
}

/* ===== Names ===== */

static const char *const type_names[_ROLLOUT_TYPE_MAX] = {
    [ROLLOUT_TYPE_ANY] = "any",       [ROLLOUT_TYPE_BOOLEAN] = "boolean",
    [ROLLOUT_TYPE_STRING] = "string", [ROLLOUT_TYPE_NUMBER] = "number",
    [ROLLOUT_TYPE_OBJECT] = "object",
};
static const char *const stage_names[_ROLLOUT_STAGE_MAX] = {
    [ROLLOUT_STAGE_OFF] = "off",       [ROLLOUT_STAGE_SHADOW] = "shadow",
    [ROLLOUT_STAGE_CANARY] = "canary", [ROLLOUT_STAGE_PARTIAL] = "partial",
    [ROLLOUT_STAGE_FULL] = "full",
};
static const char *const reason_names[_ROLLOUT_REASON_MAX] = {
    [ROLLOUT_REASON_STATIC] = "STATIC", [ROLLOUT_REASON_TARGETING_MATCH] = "TARGETING_MATCH",
    [ROLLOUT_REASON_SPLIT] = "SPLIT",   [ROLLOUT_REASON_DISABLED] = "DISABLED",
    [ROLLOUT_REASON_ERROR] = "ERROR",
};
static const char *const error_names[_ROLLOUT_ERROR_MAX] = {
    [ROLLOUT_ERROR_NONE] = "NONE",
    [ROLLOUT_ERROR_PROVIDER_NOT_READY] = "PROVIDER_NOT_READY",
    [ROLLOUT_ERROR_FLAG_NOT_FOUND] = "FLAG_NOT_FOUND",
    [ROLLOUT_ERROR_PARSE_ERROR] = "PARSE_ERROR",
    [ROLLOUT_ERROR_TYPE_MISMATCH] = "TYPE_MISMATCH",
    [ROLLOUT_ERROR_TARGETING_KEY_MISSING] = "TARGETING_KEY_MISSING",
    [ROLLOUT_ERROR_INVALID_CONTEXT] = "INVALID_CONTEXT",
    [ROLLOUT_ERROR_GENERAL] = "GENERAL",
};

const char *rollout_type_name(enum rollout_type t)
{
    return (unsigned)t < _ROLLOUT_TYPE_MAX ? type_names[t] : NULL;
}

const char *rollout_stage_name(enum rollout_stage s)
{
    return (unsigned)s < _ROLLOUT_STAGE_MAX ? stage_names[s] : NULL;
}

const char *rollout_reason_name(enum rollout_reason r)
{
    return (unsigned)r < _ROLLOUT_REASON_MAX ? reason_names[r] : NULL;
}

const char *rollout_error_name(enum rollout_error e)
{
    return (unsigned)e < _ROLLOUT_ERROR_MAX ? error_names[e] : NULL;
}

int rollout_stage_from_name(const char *name)
{
    for (unsigned i = 0; name && i < _ROLLOUT_STAGE_MAX; i++)
        if (strcmp(stage_names[i], name) == 0)
            return (int)i;
    return -EINVAL;
}

int rollout_value_write_json(const struct rollout_value *v, struct buf *out)
{
    switch (v->type) {
    case ROLLOUT_TYPE_BOOLEAN:
        return buf_puts(out, v->b ? "true" : "false");
    case ROLLOUT_TYPE_NUMBER:
        return rollout__json_number(out, v->n);
    case ROLLOUT_TYPE_STRING:
        return rollout__json_string(out, v->s, v->len);
    case ROLLOUT_TYPE_OBJECT:
        return buf_append(out, v->s, v->len);
    default:
        return -EINVAL;
    }
}
