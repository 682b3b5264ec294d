/* SPDX-License-Identifier: MIT */
/* model.c - what the flag model's parsers share: JSON input (documents, member checks, strings,
 * key and name rules) with errors that name the field. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "model_int.h"
#include "rollout_int.h"

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
/* Rejects members outside known and extra (strict mode only). */
int rollout__check_members(json_t *obj, bool strict, const char *const *known,
                           const char *const *extra, struct jpath *p, struct err *reterr)
{
    const char *name;
    json_t *v;

    if (!strict)
        return 0;
    json_object_foreach((json_t *)obj, name, v)
    {
        size_t old;

        if (name_in(name, known) || name_in(name, extra))
            continue;
        old = rollout__path_key(p, name);
        (void)rollout__field_err(reterr, -EINVAL, p, "unknown field");
        rollout__path_pop(p, old);
        return -EINVAL;
    }
    return 0;
}

/* Optional string member; *ret stays NULL when absent.  Copies into an owned string. */
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

int rollout__get_key(json_t *obj, char **ret, struct jpath *p, struct err *reterr)
{
    size_t old;
    int r;

    if (!json_object_get(obj, "key"))
        return rollout__field_err(reterr, -EINVAL, p, "'key' is required");
    r = rollout__get_string(obj, "key", 1, ROLLOUT_KEY_MAX, ret, p, reterr);
    if (r < 0 || rollout__key_valid(*ret, ROLLOUT_KEY_MAX))
        return r;
    old = rollout__path_key(p, "key");
    r = rollout__field_err(reterr, -EINVAL, p, "invalid key '%s' (allowed: A-Z a-z 0-9 . _ -)",
                           *ret);
    rollout__path_pop(p, old);
    return r;
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
