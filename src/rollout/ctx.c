/* SPDX-License-Identifier: MIT */
/* ctx.c - OpenFeature evaluation context from JSON, into one owned allocation.
 *
 * Two parsers with one contract.  The fast one reads the shape every OFREP request has, a flat
 * object of strings, numbers, booleans and nulls ({"context": {...}} around it for OFREP), in
 * one pass without building a tree.  Whatever it does not handle (nested values, \u escapes,
 * escaped keys, duplicate keys, other members beside "context", huge numbers, and every
 * error) it hands to the general jansson-based parser, which decides and words the error.
 * So the fast parser only ever accepts what the general one accepts, with the same result:
 * tests/fuzz/fuzz_flag_ctx.c checks exactly that. */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"
#include "rollout_int.h"

/* One block: [struct rollout_attr x n][strings...]. */
struct packer {
    char *base;
    size_t off, cap;
};

static const char *pack(struct packer *pk, const char *s, size_t len)
{
    char *dst = pk->base + pk->off;

    memcpy(dst, s, len);
    dst[len] = '\0';
    pk->off += len + 1;
    return dst;
}

int rollout__ctx_parse_json(const char *json, size_t len, unsigned flags,
                            struct rollout_ctx *ret_ctx, struct err *reterr)
{
    struct rollout_attr *attrs;
    struct packer pk = { 0 };
    json_t *root, *obj, *v;
    const char *name;
    size_t n = 0, size;
    const char *tk = NULL;
    int r = 0;

    r = rollout__json_load(json, len, ROLLOUT_CTX_JSON_MAX, "context", (void **)&root, reterr);
    if (r < 0)
        return r;
    obj = root;
    if (!json_is_object(root)) {
        r = err_set(reterr, -EINVAL, 0, 0, "%s must be a JSON object",
                    flags & ROLLOUT_CTX_OFREP_BODY ? "the request body" : "the context");
        goto out;
    }
    if (flags & ROLLOUT_CTX_OFREP_BODY) {
        obj = json_object_get(root, "context");
        if (obj && !json_is_object(obj)) {
            r = err_set(reterr, -EINVAL, 0, 0, "field 'context': must be an object");
            err_set_field(reterr, "context");
            goto out;
        }
    }

    /* Size the block first: attributes, then every name and string value. */
    size = 0;
    json_object_foreach(obj, name, v)
    {
        size_t nl = strlen(name);

        if (strcmp(name, "targetingKey") == 0) {
            if (!json_is_string(v)) {
                r = err_set(reterr, -EINVAL, 0, 0, "field 'targetingKey': must be a string");
                err_set_field(reterr, "targetingKey");
                goto out;
            }
            size += json_string_length(v) + 1;
            continue;
        }
        if (nl == 0 || nl > ROLLOUT_ATTR_MAX) {
            r = err_set(reterr, -EINVAL, 0, 0, "attribute names must be 1..%d bytes",
                        ROLLOUT_ATTR_MAX);
            goto out;
        }
        if (++n > ROLLOUT_CTX_MAX_ATTRS) {
            r = err_set(reterr, -E2BIG, 0, 0, "more than %d attributes", ROLLOUT_CTX_MAX_ATTRS);
            goto out;
        }
        size += nl + 1;
        if (json_is_string(v)) {
            if (strlen(json_string_value(v)) != json_string_length(v)) {
                r = err_set(reterr, -EINVAL, 0, 0, "field '%s': NUL byte in string", name);
                err_set_field(reterr, name);
                goto out;
            }
            size += json_string_length(v) + 1;
        }
    }
    /* n <= 256 attributes and size <= 2 * 64 KiB: no overflow possible. */
    pk.cap = n * sizeof *attrs + size;
    pk.base = malloc(pk.cap ? pk.cap : 1);
    if (!pk.base) {
        r = -ENOMEM;
        goto out;
    }
    attrs = (struct rollout_attr *)(void *)pk.base;
    pk.off = n * sizeof *attrs;
    n = 0;
    json_object_foreach(obj, name, v)
    {
        struct rollout_attr *a;

        if (strcmp(name, "targetingKey") == 0) {
            tk = pack(&pk, json_string_value(v), json_string_length(v));
            continue;
        }
        a = &attrs[n++];
        *a = (struct rollout_attr){ .name = pack(&pk, name, strlen(name)) };
        switch (json_typeof(v)) {
        case JSON_STRING:
            a->type = ROLLOUT_ATTR_STRING;
            a->s = pack(&pk, json_string_value(v), json_string_length(v));
            break;
        case JSON_INTEGER:
        case JSON_REAL:
            a->type = ROLLOUT_ATTR_NUMBER;
            a->n = json_number_value(v);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            a->type = ROLLOUT_ATTR_BOOL;
            a->b = json_is_true(v);
            break;
        case JSON_NULL:
            a->type = ROLLOUT_ATTR_NULL;
            break;
        default:
            a->type = ROLLOUT_ATTR_OTHER;
            break;
        }
    }
    ASSERT(pk.off == pk.cap);
    *ret_ctx = (struct rollout_ctx){
        .targeting_key = tk, .attrs = n ? attrs : NULL, .n_attrs = n, .owned = pk.base
    };
    pk.base = NULL;
out:
    free(pk.base);
    json_decref(root);
    return r;
}

/* ===== The fast parser ===== */

/* At most this many attributes take the fast path (more go to the general parser). */
#define FAST_MAX_ATTRS 64

struct fspan {
    const char *p; /* raw contents between the quotes */
    size_t len;    /* raw length */
    size_t out;    /* length once unescaped */
};

struct fattr {
    struct fspan name;
    enum rollout_attr_type type;
    bool b;
    double n;
    struct fspan s;
};

struct fparser {
    const char *p, *end;
};

static void fast_ws(struct fparser *fp)
{
    while (fp->p < fp->end && (*fp->p == ' ' || *fp->p == '\t' || *fp->p == '\n' || *fp->p == '\r'))
        fp->p++;
}

static bool fast_peek(struct fparser *fp, char c)
{
    fast_ws(fp);
    if (fp->p < fp->end && *fp->p == c) {
        fp->p++;
        return true;
    }
    return false;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* A string after its opening quote.  Escapes other than \uXXXX are taken (keys: none). */
static bool fast_string(struct fparser *fp, bool is_key, struct fspan *ret)
{
    const unsigned char *p = (const unsigned char *)fp->p, *end = (const unsigned char *)fp->end;
    size_t out = 0;

    ret->p = fp->p;
    while (p < end) {
        unsigned char c = *p;

        if (c == '"') {
            ret->len = (size_t)((const char *)p - ret->p);
            ret->out = out;
            fp->p = (const char *)p + 1;
            return true;
        }
        if (c == '\\') {
            if (is_key || end - p < 2 || !strchr("\"\\/bfnrt", p[1]) || p[1] == '\0')
                return false;
            p += 2;
        } else if (c < 0x20) {
            return false;
        } else if (c < 0x80) {
            p++;
        } else {
            size_t n = utf8_seq(p, end);
            if (n == 0)
                return false;
            p += n - 1;
            out += n - 1;
            p++;
        }
        out++;
    }
    return false;
}

static void fast_unescape(char *dst, const struct fspan *sp)
{
    for (size_t i = 0; i < sp->len; i++) {
        char c = sp->p[i];

        if (c == '\\') {
            c = sp->p[++i];
            c = c == 'b'   ? '\b'
                : c == 'f' ? '\f'
                : c == 'n' ? '\n'
                : c == 'r' ? '\r'
                : c == 't' ? '\t'
                           : c;
        }
        *dst++ = c;
    }
    *dst = '\0';
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* A JSON number: integers of up to 18 digits exactly as jansson ((double)(long long)), reals
 * with strtod in the C locale (as jansson, which reads them with the '.' it expects). */
static bool fast_number(struct fparser *fp, double *ret)
{
    const char *start = fp->p, *p = fp->p, *end = fp->end;
    bool neg = false, real = false;
    uint64_t v = 0;
    unsigned digits = 0;

    if (p < end && *p == '-')
        neg = true, p++;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
        return false;
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.') {
        real = true;
        if (++p >= end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    fp->p = p;
    if (!real) {
        if (digits > 18)
            return false; /* maybe beyond long long: jansson decides */
        *ret = (double)(neg ? -(int64_t)v : (int64_t)v);
        return true;
    }
    {
        char tmp[64];
        size_t n = (size_t)(p - start);
        char *e;

        if (n >= sizeof tmp)
            return false;
        memcpy(tmp, start, n);
        tmp[n] = '\0';
        (void)pthread_once(&c_locale_once, c_locale_init);
        if (c_locale == (locale_t)0)
            return false;
        errno = 0;
        *ret = strtod_l(tmp, &e, c_locale);
        return errno == 0 && e == tmp + n;
    }
}

static bool fast_literal(struct fparser *fp, const char *lit, size_t n)
{
    if ((size_t)(fp->end - fp->p) < n || memcmp(fp->p, lit, n) != 0)
        return false;
    fp->p += n;
    return true;
}

static bool fast_value(struct fparser *fp, struct fattr *a)
{
    fast_ws(fp);
    if (fp->p >= fp->end)
        return false;
    switch (*fp->p) {
    case '"':
        fp->p++;
        a->type = ROLLOUT_ATTR_STRING;
        return fast_string(fp, false, &a->s);
    case 't':
        a->type = ROLLOUT_ATTR_BOOL, a->b = true;
        return fast_literal(fp, "true", 4);
    case 'f':
        a->type = ROLLOUT_ATTR_BOOL, a->b = false;
        return fast_literal(fp, "false", 5);
    case 'n':
        a->type = ROLLOUT_ATTR_NULL;
        return fast_literal(fp, "null", 4);
    default:
        a->type = ROLLOUT_ATTR_NUMBER;
        return fast_number(fp, &a->n);
    }
}

static bool span_eq(const struct fspan *a, const char *s, size_t n)
{
    return a->len == n && memcmp(a->p, s, n) == 0;
}

/* The context object after its '{'; the targeting key goes to *tk (tk->p NULL when absent). */
static bool fast_object(struct fparser *fp, struct fattr *attrs, size_t *ret_n, struct fspan *tk)
{
    size_t n = 0;

    tk->p = NULL;
    if (fast_peek(fp, '}')) {
        *ret_n = 0;
        return true;
    }
    for (;;) {
        struct fattr a = { .type = ROLLOUT_ATTR_NULL };

        if (!fast_peek(fp, '"') || !fast_string(fp, true, &a.name) || !fast_peek(fp, ':') ||
            !fast_value(fp, &a))
            return false;
        if (span_eq(&a.name, "targetingKey", 12)) {
            if (tk->p || a.type != ROLLOUT_ATTR_STRING)
                return false;
            *tk = a.s;
        } else {
            if (a.name.len == 0 || a.name.len > ROLLOUT_ATTR_MAX || n == FAST_MAX_ATTRS)
                return false;
            for (size_t i = 0; i < n; i++)
                if (span_eq(&attrs[i].name, a.name.p, a.name.len))
                    return false; /* duplicate key */
            attrs[n++] = a;
        }
        if (fast_peek(fp, '}'))
            break;
        if (!fast_peek(fp, ','))
            return false;
    }
    *ret_n = n;
    return true;
}

/* 1 with *ret_ctx set, 0 when the general parser must decide, -ENOMEM. */
static int ctx_parse_fast(const char *json, size_t len, unsigned flags, struct rollout_ctx *ret_ctx)
{
    struct fparser fp = { json, json + len };
    struct fattr attrs[FAST_MAX_ATTRS];
    struct rollout_attr *out;
    struct fspan tk = { NULL, 0, 0 };
    size_t n = 0, size;
    char *base, *w;

    if (!fast_peek(&fp, '{'))
        return 0;
    if (flags & ROLLOUT_CTX_OFREP_BODY) {
        if (!fast_peek(&fp, '}')) {
            struct fspan key;
            if (!fast_peek(&fp, '"') || !fast_string(&fp, true, &key) ||
                !span_eq(&key, "context", 7) || !fast_peek(&fp, ':') || !fast_peek(&fp, '{') ||
                !fast_object(&fp, attrs, &n, &tk) || !fast_peek(&fp, '}'))
                return 0;
        }
    } else if (!fast_object(&fp, attrs, &n, &tk)) {
        return 0;
    }
    fast_ws(&fp);
    if (fp.p != fp.end)
        return 0;

    size = n * sizeof *out + (tk.p ? tk.out + 1 : 0);
    for (size_t i = 0; i < n; i++)
        size += attrs[i].name.len + 1 +
                (attrs[i].type == ROLLOUT_ATTR_STRING ? attrs[i].s.out + 1 : 0);
    base = malloc(size ? size : 1);
    if (!base)
        return -ENOMEM;
    out = (struct rollout_attr *)(void *)base;
    w = base + n * sizeof *out;
    for (size_t i = 0; i < n; i++) {
        const struct fattr *a = &attrs[i];

        out[i] = (struct rollout_attr){ .name = w, .type = a->type, .b = a->b, .n = a->n };
        memcpy(w, a->name.p, a->name.len);
        w[a->name.len] = '\0';
        w += a->name.len + 1;
        if (a->type == ROLLOUT_ATTR_STRING) {
            out[i].n = 0;
            out[i].s = w;
            fast_unescape(w, &a->s);
            w += a->s.out + 1;
        }
    }
    if (tk.p)
        fast_unescape(w, &tk);
    *ret_ctx = (struct rollout_ctx){
        .targeting_key = tk.p ? w : NULL, .attrs = n ? out : NULL, .n_attrs = n, .owned = base
    };
    return 1;
}

int rollout_ctx_parse(const char *json, size_t len, unsigned flags, struct rollout_ctx *ret_ctx,
                      struct err *reterr)
{
    if (len <= ROLLOUT_CTX_JSON_MAX) {
        int r = ctx_parse_fast(json, len, flags, ret_ctx);
        if (r != 0)
            return r < 0 ? r : 0;
    }
    return rollout__ctx_parse_json(json, len, flags, ret_ctx, reterr);
}

void rollout_ctx_release(struct rollout_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->owned);
    *ctx = (struct rollout_ctx)ROLLOUT_CTX_INIT;
}
