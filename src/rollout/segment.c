/* SPDX-License-Identifier: MIT */
/* segment.c - segments: named, reusable sets of conditions that flag rules test with
 * in_segment / not_in_segment.  Parsing, reference counting and normalized serialization. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "model_int.h"
#include "rollout_int.h"

static struct rollout_segment *segment_free(struct rollout_segment *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_conds; i++)
        rollout__cond_release(&s->conds[i]);
    free(s->conds);
    free(s->key);
    free(s->description);
    free(s);
    return NULL;
}

int rollout__segment_from_json(void *vobj, struct jpath *p, struct rollout_segment **ret,
                               struct err *reterr)
{
    static const char *const known[] = { "key", "description", "conditions", NULL };
    json_t *obj = vobj;
    struct rollout_segment *s;
    json_t *conds;
    size_t old, n;
    int r;

    if (!json_is_object(obj))
        return rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s",
                                  rollout__json_kind(obj));
    r = rollout__check_members(obj, true, known, NULL, p, reterr);
    if (r < 0)
        return r;
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->refs, 1);
    r = rollout__get_key(obj, &s->key, p, reterr);
    if (r < 0)
        goto fail;
    r = rollout__get_string(obj, "description", 0, ROLLOUT_DESCRIPTION_MAX, &s->description, p,
                            reterr);
    if (r < 0)
        goto fail;
    if (!s->description) {
        s->description = strdup("");
        if (!s->description) {
            r = -ENOMEM;
            goto fail;
        }
    }
    conds = json_object_get(obj, "conditions");
    old = rollout__path_key(p, "conditions");
    n = json_array_size(conds);
    if (!conds)
        r = rollout__field_err(reterr, -EINVAL, p, "is required");
    else if (!json_is_array(conds))
        r = rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s",
                               rollout__json_kind(conds));
    else if (n == 0)
        r = rollout__field_err(reterr, -EINVAL, p, "must not be empty");
    else if (n > ROLLOUT_MAX_CONDITIONS)
        r = rollout__field_err(reterr, -E2BIG, p, "more than %d conditions",
                               ROLLOUT_MAX_CONDITIONS);
    if (r >= 0) {
        s->conds = calloc(n, sizeof *s->conds);
        if (!s->conds)
            r = -ENOMEM;
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        size_t o2 = rollout__path_index(p, i);

        r = rollout__cond_parse(json_array_get(conds, i), false, NULL, &s->conds[i], p, reterr);
        rollout__path_pop(p, o2);
        if (r >= 0)
            s->n_conds++;
    }
    rollout__path_pop(p, old);
    if (r < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    segment_free(s);
    return r;
}

int rollout_segment_parse(const char *json, size_t len, struct rollout_segment **ret_segment,
                          struct err *reterr)
{
    struct jpath p;
    void *root;
    int r;

    r = rollout__json_load(json, len, ROLLOUT_FLAG_JSON_MAX, "document", &root, reterr);
    if (r < 0)
        return r;
    rollout__path_init(&p, NULL);
    r = rollout__segment_from_json(root, &p, ret_segment, reterr);
    json_decref(root);
    return r;
}

struct rollout_segment *rollout_segment_ref(struct rollout_segment *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

struct rollout_segment *rollout_segment_unref(struct rollout_segment *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        segment_free(s);
    return NULL;
}

const char *rollout_segment_key(const struct rollout_segment *s)
{
    return s->key;
}

int rollout_segment_serialize(const struct rollout_segment *s, struct buf *out)
{
    int r = buf_puts(out, "{\"key\":");

    if (r >= 0)
        r = rollout__json_string(out, s->key, strlen(s->key));
    if (r >= 0)
        r = buf_puts(out, ",\"description\":");
    if (r >= 0)
        r = rollout__json_string(out, s->description, strlen(s->description));
    if (r >= 0)
        r = buf_puts(out, ",\"conditions\":[");
    for (size_t i = 0; r >= 0 && i < s->n_conds; i++) {
        r = buf_puts(out, i ? ",{" : "{");
        if (r >= 0)
            r = rollout__cond_write(&s->conds[i], out);
        if (r >= 0)
            r = buf_puts(out, "}");
    }
    return r < 0 ? r : buf_puts(out, "]}");
}
