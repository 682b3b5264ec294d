/* SPDX-License-Identifier: MIT */
/* model.c - what the flag model's parsers share: JSON input (documents, member checks, strings,
 * key and name rules) with errors that name the field, and the lifecycle common to flags and
 * segments (document parse, the key/description head). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "model_int.h"
#include "rollout_int.h"

#define DESCRIPTION_MAX 1024

/* ===== JSON input ===== */

const char *rollout__json_kind(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

bool rollout__key_valid(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

bool rollout__env_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (n >= ROLLOUT_ENV_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

static bool name_in(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

int rollout__check_object(json_t *obj, bool strict, const char *const *known,
                          const char *const *extra, struct jpath *p, struct err *reterr)
{
    const char *name;
    json_t *v;

    if (!json_is_object(obj))
        return rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s",
                                  rollout__json_kind(obj));
    if (!strict)
        return 0;
    json_object_foreach(obj, name, v)
    {
        if (name_in(name, known) || name_in(name, extra))
            continue;
        return rollout__member_err(reterr, -EINVAL, p, name, "unknown field");
    }
    return 0;
}

int rollout__get_string(json_t *obj, const char *name, size_t min, size_t max, char **ret,
                        struct jpath *p, struct err *reterr)
{
    json_t *v = json_object_get(obj, name);
    size_t old, len;
    int r = 0;

    if (!v)
        return 0;
    old = rollout__path_key(p, name);
    if (!json_is_string(v)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be a string, not %s",
                               rollout__json_kind(v));
        goto out;
    }
    len = json_string_length(v);
    if (len < min || len > max) {
        r = rollout__field_err(reterr, len > max ? -E2BIG : -EINVAL, p,
                               "length must be %zu..%zu bytes", min, max);
        goto out;
    }
    *ret = strdup(json_string_value(v));
    if (!*ret)
        r = -ENOMEM;
out:
    rollout__path_pop(p, old);
    return r;
}

/* The required "key" member: 1..ROLLOUT_KEY_MAX bytes of A-Z a-z 0-9 . _ - (*ret is set, for the
 * caller to free, even when the key is invalid). */
static int get_key(json_t *obj, char **ret, struct jpath *p, struct err *reterr)
{
    int r;

    if (!json_object_get(obj, "key"))
        return rollout__field_err(reterr, -EINVAL, p, "'key' is required");
    r = rollout__get_string(obj, "key", 1, ROLLOUT_KEY_MAX, ret, p, reterr);
    if (r < 0 || rollout__key_valid(*ret, ROLLOUT_KEY_MAX))
        return r;
    return rollout__member_err(reterr, -EINVAL, p, "key",
                               "invalid key '%s' (allowed: A-Z a-z 0-9 . _ -)", *ret);
}

int rollout__json_load(const char *json, size_t len, size_t max, const char *what, void **ret_root,
                       struct err *reterr)
{
    json_error_t jerr;
    json_t *root;

    if (len > max)
        return err_set(reterr, -E2BIG, 0, 0, "%s larger than %zu bytes", what, max);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(reterr, -EBADMSG, (unsigned)(jerr.line > 0 ? jerr.line : 0),
                       (unsigned)(jerr.column > 0 ? jerr.column : 0), "invalid JSON: %s",
                       jerr.text);
    *ret_root = root;
    return 0;
}

/* ===== Definitions (flags and segments) ===== */

int rollout__def_new(size_t size, json_t *obj, bool strict, const char *const *known,
                     struct jpath *p, struct def_head **ret, struct err *reterr)
{
    struct def_head *h;
    int r;

    r = rollout__check_object(obj, strict, known, NULL, p, reterr);
    if (r < 0)
        return r;
    h = calloc(1, size);
    if (!h)
        return -ENOMEM;
    atomic_init(&h->refs, 1);
    r = get_key(obj, &h->key, p, reterr);
    if (r < 0)
        goto fail;
    h->key_len = strlen(h->key);
    r = rollout__get_string(obj, "description", 0, DESCRIPTION_MAX, &h->description, p, reterr);
    if (r < 0)
        goto fail;
    if (!h->description) {
        h->description = strdup("");
        if (!h->description) {
            r = -ENOMEM;
            goto fail;
        }
    }
    *ret = h;
    return 0;
fail:
    /* Only the head is set yet: releasing it frees everything the object holds. */
    rollout__def_head_release(h);
    free(h);
    return r;
}

void rollout__def_head_release(struct def_head *h)
{
    if (!h)
        return;
    free(h->key);
    free(h->description);
}

int rollout__def_head_write(struct buf *out, const struct def_head *h)
{
    int r = buf_puts(out, "{\"key\":");

    if (r >= 0)
        r = rollout__json_string(out, h->key, h->key_len);
    if (r >= 0)
        r = buf_puts(out, ",\"description\":");
    if (r >= 0)
        r = rollout__json_string(out, h->description, strlen(h->description));
    return r;
}

int rollout__def_parse(const char *json, size_t len, rollout__def_from_json_fn from_json, void *ret,
                       struct err *reterr)
{
    struct jpath p;
    void *root;
    int r;

    r = rollout__json_load(json, len, ROLLOUT_FLAG_JSON_MAX, "document", &root, reterr);
    if (r < 0)
        return r;
    rollout__path_init(&p, NULL);
    r = from_json(root, &p, ret, reterr);
    json_decref(root);
    return r;
}
