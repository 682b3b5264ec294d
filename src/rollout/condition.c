/* SPDX-License-Identifier: MIT */
/* condition.c - conditions (flag rules and segment conditions): parsing from JSON with errors
 * that name the field, compiling operands (sorted lists, semantic versions, regexes) and
 * normalized serialization. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "model_int.h"
#include "rollout_int.h"

static const char *const op_names[_COND_OP_MAX] = {
    [COND_EQ] = "eq",
    [COND_NEQ] = "neq",
    [COND_IN] = "in",
    [COND_NOT_IN] = "not_in",
    [COND_LT] = "lt",
    [COND_LTE] = "lte",
    [COND_GT] = "gt",
    [COND_GTE] = "gte",
    [COND_SEMVER_EQ] = "semver_eq",
    [COND_SEMVER_LT] = "semver_lt",
    [COND_SEMVER_LTE] = "semver_lte",
    [COND_SEMVER_GT] = "semver_gt",
    [COND_SEMVER_GTE] = "semver_gte",
    [COND_REGEX] = "regex",
    [COND_IN_SEGMENT] = "in_segment",
    [COND_NOT_IN_SEGMENT] = "not_in_segment",
};

static bool op_is_semver(enum cond_op op)
{
    return op >= COND_SEMVER_EQ && op <= COND_SEMVER_GTE;
}

static bool op_is_numeric(enum cond_op op)
{
    return op >= COND_LT && op <= COND_GTE;
}

static bool op_is_segment(enum cond_op op)
{
    return op == COND_IN_SEGMENT || op == COND_NOT_IN_SEGMENT;
}

static int scalar_from_json(json_t *v, struct scalar *ret, struct jpath *p, struct err *reterr)
{
    *ret = (struct scalar){ 0 };
    switch (json_typeof(v)) {
    case JSON_STRING:
        ret->type = ROLLOUT_ATTR_STRING;
        ret->len = json_string_length(v);
        ret->s = strdup(json_string_value(v));
        return ret->s ? 0 : -ENOMEM;
    case JSON_INTEGER:
    case JSON_REAL:
        ret->type = ROLLOUT_ATTR_NUMBER;
        ret->n = json_number_value(v);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        ret->type = ROLLOUT_ATTR_BOOL;
        ret->b = json_is_true(v);
        return 0;
    default:
        return rollout__field_err(reterr, -EINVAL, p, "must be a string, number or boolean, not %s",
                                  rollout__json_kind(v));
    }
}

static void scalar_release(struct scalar *s)
{
    free(s->s);
    s->s = NULL;
}

static int strref_cmp(const void *a, const void *b)
{
    const struct strref *x = a, *y = b;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* in / not_in: keep the document order for output and sorted copies for lookups. */
static int parse_values(json_t *arr, struct cond *c, struct jpath *p, struct err *reterr)
{
    size_t n = json_array_size(arr);
    int r = 0;

    if (!json_is_array(arr))
        return rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s",
                                  rollout__json_kind(arr));
    if (n == 0)
        return rollout__field_err(reterr, -EINVAL, p, "must not be empty");
    if (n > ROLLOUT_MAX_VALUES)
        return rollout__field_err(reterr, -E2BIG, p, "more than %d values", ROLLOUT_MAX_VALUES);
    c->values = calloc(n, sizeof *c->values);
    c->sorted_str = calloc(n, sizeof *c->sorted_str);
    c->sorted_num = calloc(n, sizeof *c->sorted_num);
    if (!c->values || !c->sorted_str || !c->sorted_num)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t old = rollout__path_index(p, i);
        struct scalar *s = &c->values[i];

        r = scalar_from_json(json_array_get(arr, i), s, p, reterr);
        rollout__path_pop(p, old);
        if (r < 0)
            return r;
        c->n_values++;
        if (s->type == ROLLOUT_ATTR_STRING)
            c->sorted_str[c->n_str++] = (struct strref){ s->s, s->len };
        else if (s->type == ROLLOUT_ATTR_NUMBER)
            c->sorted_num[c->n_num++] = s->n;
        else if (s->b)
            c->has_true = true;
        else
            c->has_false = true;
    }
    qsort(c->sorted_str, c->n_str, sizeof *c->sorted_str, strref_cmp);
    qsort(c->sorted_num, c->n_num, sizeof *c->sorted_num, double_cmp);
    return 0;
}

static int parse_operand(json_t *obj, struct cond *c, struct jpath *p, struct err *reterr)
{
    json_t *value = json_object_get(obj, "value"), *values = json_object_get(obj, "values");
    bool list = c->op == COND_IN || c->op == COND_NOT_IN;
    size_t old;
    int r;

    if (list) {
        if (value)
            return rollout__member_err(reterr, -EINVAL, p, "value",
                                       "'%s' takes 'values' (an array)", op_names[c->op]);
        if (!values)
            return rollout__field_err(reterr, -EINVAL, p, "'values' is required for '%s'",
                                      op_names[c->op]);
        old = rollout__path_key(p, "values");
        r = parse_values(values, c, p, reterr);
        rollout__path_pop(p, old);
        return r;
    }
    if (values)
        return rollout__member_err(reterr, -EINVAL, p, "values", "'%s' takes 'value'",
                                   op_names[c->op]);
    if (!value)
        return rollout__field_err(reterr, -EINVAL, p, "'value' is required for '%s'",
                                  op_names[c->op]);
    old = rollout__path_key(p, "value");
    r = scalar_from_json(value, &c->value, p, reterr);
    if (r < 0)
        goto out;
    if (op_is_numeric(c->op) && c->value.type != ROLLOUT_ATTR_NUMBER) {
        r = rollout__field_err(reterr, -EINVAL, p, "'%s' needs a number", op_names[c->op]);
    } else if ((op_is_semver(c->op) || c->op == COND_REGEX) &&
               c->value.type != ROLLOUT_ATTR_STRING) {
        r = rollout__field_err(reterr, -EINVAL, p, "'%s' needs a string", op_names[c->op]);
    } else if (op_is_semver(c->op) && !rollout__semver_parse(c->value.s, c->value.len, &c->sv)) {
        r = rollout__field_err(reterr, -EINVAL, p, "invalid semantic version '%s'", c->value.s);
    } else if (c->op == COND_REGEX) {
        char msg[160] = "";

        if (c->value.len > ROLLOUT_REGEX_MAX) {
            r = rollout__field_err(reterr, -E2BIG, p, "regex longer than %d bytes",
                                   ROLLOUT_REGEX_MAX);
            goto out;
        }
        r = rollout__rx_compile(c->value.s, c->value.len, &c->rx, msg, sizeof msg);
        if (r == -EINVAL)
            r = rollout__field_err(reterr, r, p, "invalid regex: %s", msg);
    }
out:
    rollout__path_pop(p, old);
    return r;
}

/* The string member (1..max bytes) that op requires: "'<name>' is required for '<op>'" when
 * it is absent. */
static int get_operand_string(json_t *obj, const char *name, size_t max, enum cond_op op,
                              char **ret, struct jpath *p, struct err *reterr)
{
    if (!json_object_get(obj, name))
        return rollout__field_err(reterr, -EINVAL, p, "'%s' is required for '%s'", name,
                                  op_names[op]);
    return rollout__get_string(obj, name, 1, max, ret, p, reterr);
}

int rollout__cond_parse(void *vobj, bool allow_segment, const char *const *allow_extra,
                        struct cond *ret, struct jpath *p, struct err *reterr)
{
    static const char *const known[] = { "attribute", "op", "value", "values", "segment", NULL };
    json_t *obj = vobj;
    struct cond c = { 0 };
    json_t *op;
    size_t old;
    int r;

    /* Conditions are always strict: a misspelt operand would silently change targeting. */
    r = rollout__check_object(obj, true, known, allow_extra, p, reterr);
    if (r < 0)
        goto fail;
    op = json_object_get(obj, "op");
    old = rollout__path_key(p, "op");
    if (!op) {
        r = rollout__field_err(reterr, -EINVAL, p, "is required");
    } else if (!json_is_string(op)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be a string, not %s",
                               rollout__json_kind(op));
    } else {
        unsigned i;

        for (i = 0; i < _COND_OP_MAX; i++)
            if (strcmp(op_names[i], json_string_value(op)) == 0)
                break;
        c.op = (enum cond_op)i;
        if (i == _COND_OP_MAX)
            r = rollout__field_err(reterr, -EINVAL, p, "unknown operator '%s'",
                                   json_string_value(op));
        else if (op_is_segment(c.op) && !allow_segment)
            r = rollout__field_err(reterr, -EINVAL, p, "segment tests are not allowed here");
    }
    rollout__path_pop(p, old);
    if (r < 0)
        goto fail;

    if (op_is_segment(c.op)) {
        static const char *const forbidden[] = { "attribute", "value", "values" };

        for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
            if (json_object_get(obj, forbidden[i])) {
                r = rollout__member_err(reterr, -EINVAL, p, forbidden[i], "not allowed with '%s'",
                                        op_names[c.op]);
                goto fail;
            }
        r = get_operand_string(obj, "segment", ROLLOUT_KEY_MAX, c.op, &c.segment, p, reterr);
        if (r < 0)
            goto fail;
        if (!rollout__key_valid(c.segment, ROLLOUT_KEY_MAX)) {
            r = rollout__member_err(reterr, -EINVAL, p, "segment", "invalid segment key '%s'",
                                    c.segment);
            goto fail;
        }
        *ret = c;
        return 0;
    }

    if (json_object_get(obj, "segment")) {
        r = rollout__member_err(reterr, -EINVAL, p, "segment",
                                "only for in_segment / not_in_segment");
        goto fail;
    }
    r = get_operand_string(obj, "attribute", ROLLOUT_ATTR_MAX, c.op, &c.attr, p, reterr);
    if (r < 0)
        goto fail;
    c.attr_len = strlen(c.attr);
    c.attr_is_tk = strcmp(c.attr, "targetingKey") == 0;
    r = parse_operand(obj, &c, p, reterr);
    if (r < 0)
        goto fail;
    *ret = c;
    return 0;
fail:
    rollout__cond_release(&c);
    return r;
}

void rollout__cond_release(struct cond *c)
{
    if (!c)
        return;
    free(c->attr);
    scalar_release(&c->value);
    for (size_t i = 0; i < c->n_values; i++)
        scalar_release(&c->values[i]);
    free(c->values);
    free(c->sorted_str);
    free(c->sorted_num);
    rollout__rx_free(c->rx);
    free(c->segment);
    *c = (struct cond){ 0 };
}

static int scalar_write(const struct scalar *s, struct buf *out)
{
    switch (s->type) {
    case ROLLOUT_ATTR_STRING:
        return rollout__json_string(out, s->s, s->len);
    case ROLLOUT_ATTR_NUMBER:
        return rollout__json_number(out, s->n);
    default:
        return buf_puts(out, s->b ? "true" : "false");
    }
}

int rollout__cond_write(const struct cond *c, struct buf *out)
{
    int r;

    if (op_is_segment(c->op)) {
        r = buf_appendf(out, "\"op\":\"%s\",\"segment\":", op_names[c->op]);
        return r < 0 ? r : rollout__json_string(out, c->segment, strlen(c->segment));
    }
    r = buf_puts(out, "\"attribute\":");
    if (r >= 0)
        r = rollout__json_string(out, c->attr, c->attr_len);
    if (r >= 0)
        r = buf_appendf(out, ",\"op\":\"%s\",", op_names[c->op]);
    if (r < 0)
        return r;
    if (c->op != COND_IN && c->op != COND_NOT_IN) {
        r = buf_puts(out, "\"value\":");
        return r < 0 ? r : scalar_write(&c->value, out);
    }
    r = buf_puts(out, "\"values\":[");
    for (size_t i = 0; r >= 0 && i < c->n_values; i++) {
        if (i)
            r = buf_puts(out, ",");
        if (r >= 0)
            r = scalar_write(&c->values[i], out);
    }
    return r < 0 ? r : buf_puts(out, "]");
}
