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
    rollout__def_head_release(&s->head);
    free(s);
    return NULL;
}

/* The required "conditions": 1..ROLLOUT_MAX_CONDITIONS of them, none testing a segment. */
static int parse_conditions(json_t *obj, struct rollout_segment *s, struct jpath *p,
                            struct err *reterr)
{
    json_t *conds = json_object_get(obj, "conditions");
    size_t old = rollout__path_key(p, "conditions"), n = json_array_size(conds);
    int r = 0;

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
    return r;
}

int rollout__segment_from_json(void *obj, struct jpath *p, struct rollout_segment **ret,
                               struct err *reterr)
{
    static const char *const known[] = { "key", "description", "conditions", NULL };
    struct rollout_segment *s;
    struct def_head *h;
    int r;

    r = rollout__def_new(sizeof *s, obj, true, known, p, &h, reterr);
    if (r < 0)
        return r;
    s = (struct rollout_segment *)(void *)h; /* the head is its first member */
    r = parse_conditions(obj, s, p, reterr);
    if (r < 0) {
        segment_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

static int segment_from_doc(void *obj, struct jpath *p, void *ret, struct err *reterr)
{
    return rollout__segment_from_json(obj, p, ret, reterr);
}

int rollout_segment_parse(const char *json, size_t len, struct rollout_segment **ret_segment,
                          struct err *reterr)
{
    return rollout__def_parse(json, len, segment_from_doc, ret_segment, reterr);
}

ROLLOUT__DEFINE_REF_UNREF(struct rollout_segment, rollout_segment, head.refs, segment_free)

const char *rollout_segment_key(const struct rollout_segment *s)
{
    return s->head.key;
}

int rollout_segment_serialize(const struct rollout_segment *s, struct buf *out)
{
    int r = rollout__def_head_write(out, &s->head);

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
