/* SPDX-License-Identifier: MIT */
/* ctx.c - OpenFeature evaluation context from JSON, into one owned allocation. */
#include <errno.h>
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

int rollout_ctx_parse(const char *json, size_t len, unsigned flags, struct rollout_ctx *ret_ctx,
                      struct err *reterr)
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

void rollout_ctx_release(struct rollout_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->owned);
    *ctx = (struct rollout_ctx)ROLLOUT_CTX_INIT;
}
