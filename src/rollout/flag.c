/* SPDX-License-Identifier: MIT */
/* flag.c - the flag model: parsing flag and segment definitions from JSON (jansson) with
 * errors that name the field, compiling conditions, and normalized serialization. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "rollout_int.h"

#define DESCRIPTION_MAX 1024

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

static const char *json_kind(json_t *j)
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
static int check_members(json_t *obj, bool strict, const char *const *known,
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
static int get_string(json_t *obj, const char *name, size_t min, size_t max, char **ret,
                      struct jpath *p, struct err *reterr)
{
    json_t *v = json_object_get(obj, name);
    size_t old, len;
    int r = 0;

    if (!v)
        return 0;
    old = rollout__path_key(p, name);
    if (!json_is_string(v)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be a string, not %s", json_kind(v));
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
    size_t old;
    int r;

    if (!json_object_get(obj, "key"))
        return rollout__field_err(reterr, -EINVAL, p, "'key' is required");
    r = get_string(obj, "key", 1, ROLLOUT_KEY_MAX, ret, p, reterr);
    if (r < 0 || rollout__key_valid(*ret, ROLLOUT_KEY_MAX))
        return r;
    old = rollout__path_key(p, "key");
    r = rollout__field_err(reterr, -EINVAL, p, "invalid key '%s' (allowed: A-Z a-z 0-9 . _ -)",
                           *ret);
    rollout__path_pop(p, old);
    return r;
}

/* ===== Conditions ===== */

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
                                  json_kind(v));
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
        return rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s", json_kind(arr));
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
        if (value) {
            old = rollout__path_key(p, "value");
            r = rollout__field_err(reterr, -EINVAL, p, "'%s' takes 'values' (an array)",
                                   op_names[c->op]);
            rollout__path_pop(p, old);
            return r;
        }
        if (!values)
            return rollout__field_err(reterr, -EINVAL, p, "'values' is required for '%s'",
                                      op_names[c->op]);
        old = rollout__path_key(p, "values");
        r = parse_values(values, c, p, reterr);
        rollout__path_pop(p, old);
        return r;
    }
    if (values) {
        old = rollout__path_key(p, "values");
        r = rollout__field_err(reterr, -EINVAL, p, "'%s' takes 'value'", op_names[c->op]);
        rollout__path_pop(p, old);
        return r;
    }
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

int rollout__cond_parse(void *vobj, bool allow_segment, const char *const *allow_extra,
                        struct cond *ret, struct jpath *p, struct err *reterr)
{
    static const char *const known[] = { "attribute", "op", "value", "values", "segment", NULL };
    json_t *obj = vobj;
    struct cond c = { 0 };
    json_t *op;
    size_t old;
    int r;

    if (!json_is_object(obj)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(obj));
        goto fail;
    }
    /* Conditions are always strict: a misspelt operand would silently change targeting. */
    r = check_members(obj, true, known, allow_extra, p, reterr);
    if (r < 0)
        goto fail;
    op = json_object_get(obj, "op");
    old = rollout__path_key(p, "op");
    if (!op) {
        r = rollout__field_err(reterr, -EINVAL, p, "is required");
    } else if (!json_is_string(op)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be a string, not %s", json_kind(op));
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
                old = rollout__path_key(p, forbidden[i]);
                r = rollout__field_err(reterr, -EINVAL, p, "not allowed with '%s'", op_names[c.op]);
                rollout__path_pop(p, old);
                goto fail;
            }
        if (!json_object_get(obj, "segment")) {
            r = rollout__field_err(reterr, -EINVAL, p, "'segment' is required for '%s'",
                                   op_names[c.op]);
            goto fail;
        }
        r = get_string(obj, "segment", 1, ROLLOUT_KEY_MAX, &c.segment, p, reterr);
        if (r < 0)
            goto fail;
        if (!rollout__key_valid(c.segment, ROLLOUT_KEY_MAX)) {
            old = rollout__path_key(p, "segment");
            r = rollout__field_err(reterr, -EINVAL, p, "invalid segment key '%s'", c.segment);
            rollout__path_pop(p, old);
            goto fail;
        }
        *ret = c;
        return 0;
    }

    if (json_object_get(obj, "segment")) {
        old = rollout__path_key(p, "segment");
        r = rollout__field_err(reterr, -EINVAL, p, "only for in_segment / not_in_segment");
        rollout__path_pop(p, old);
        goto fail;
    }
    if (!json_object_get(obj, "attribute")) {
        r = rollout__field_err(reterr, -EINVAL, p, "'attribute' is required for '%s'",
                               op_names[c.op]);
        goto fail;
    }
    r = get_string(obj, "attribute", 1, ROLLOUT_ATTR_MAX, &c.attr, p, reterr);
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

/* ===== Segments ===== */

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
        return rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(obj));
    r = check_members(obj, true, known, NULL, p, reterr);
    if (r < 0)
        return r;
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->refs, 1);
    r = get_key(obj, &s->key, p, reterr);
    if (r < 0)
        goto fail;
    r = get_string(obj, "description", 0, DESCRIPTION_MAX, &s->description, p, reterr);
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
        r = rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s", json_kind(conds));
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

/* ===== Flags ===== */

static struct rollout_flag *flag_free(struct rollout_flag *f)
{
    if (!f)
        return NULL;
    for (size_t i = 0; i < f->n_variants; i++) {
        free(f->variants[i].name);
        free(f->variants[i].text);
    }
    free(f->variants);
    for (size_t i = 0; i < f->n_rules; i++)
        rollout__cond_release(&f->rules[i].cond);
    free(f->rules);
    free(f->envs);
    free(f->key);
    free(f->description);
    free(f->salt);
    free(f->stickiness);
    free(f);
    return NULL;
}

static int type_of_json(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE:
    case JSON_FALSE:
        return ROLLOUT_TYPE_BOOLEAN;
    case JSON_STRING:
        return ROLLOUT_TYPE_STRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return ROLLOUT_TYPE_NUMBER;
    case JSON_OBJECT:
    case JSON_ARRAY:
        return ROLLOUT_TYPE_OBJECT;
    default:
        return -EINVAL;
    }
}

static int variant_set(struct variant *va, const char *name, json_t *v)
{
    va->name = strdup(name);
    if (!va->name)
        return -ENOMEM;
    va->name_len = strlen(name);
    va->value.type = (enum rollout_type)type_of_json(v);
    switch (va->value.type) {
    case ROLLOUT_TYPE_BOOLEAN:
        va->value.b = json_is_true(v);
        return 0;
    case ROLLOUT_TYPE_NUMBER:
        va->value.n = json_number_value(v);
        return 0;
    case ROLLOUT_TYPE_STRING:
        va->text = malloc(json_string_length(v) + 1);
        if (!va->text)
            return -ENOMEM;
        memcpy(va->text, json_string_value(v), json_string_length(v) + 1);
        va->value.len = json_string_length(v);
        break;
    default:
        va->text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!va->text)
            return -ENOMEM;
        va->value.len = strlen(va->text);
        break;
    }
    va->value.s = va->text;
    return 0;
}

static int parse_variants(json_t *obj, struct rollout_flag *f, struct jpath *p, struct err *reterr)
{
    json_t *vars = json_object_get(obj, "variants"), *v;
    size_t old, n;
    const char *name;
    int r = 0;

    if (!vars) {
        if (f->type != ROLLOUT_TYPE_BOOLEAN && f->type != ROLLOUT_TYPE_ANY) {
            old = rollout__path_key(p, "variants");
            r = rollout__field_err(reterr, -EINVAL, p, "required for type '%s'",
                                   rollout_type_name(f->type));
            rollout__path_pop(p, old);
            return r;
        }
        f->type = ROLLOUT_TYPE_BOOLEAN;
        f->variants = calloc(2, sizeof *f->variants);
        if (!f->variants)
            return -ENOMEM;
        r = variant_set(&f->variants[0], "control", json_false());
        if (r >= 0)
            f->n_variants++;
        if (r >= 0)
            r = variant_set(&f->variants[1], "candidate", json_true());
        if (r >= 0)
            f->n_variants++;
        return r;
    }
    old = rollout__path_key(p, "variants");
    n = json_object_size(vars);
    if (!json_is_object(vars))
        r = rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(vars));
    else if (n == 0)
        r = rollout__field_err(reterr, -EINVAL, p, "must not be empty");
    else if (n > ROLLOUT_MAX_VARIANTS)
        r = rollout__field_err(reterr, -E2BIG, p, "more than %d variants", ROLLOUT_MAX_VARIANTS);
    if (r >= 0) {
        f->variants = calloc(n, sizeof *f->variants);
        if (!f->variants)
            r = -ENOMEM;
    }
    if (r < 0)
        goto out;
    json_object_foreach(vars, name, v)
    {
        size_t o2 = rollout__path_key(p, name);
        int t = type_of_json(v);

        if (!rollout__key_valid(name, ROLLOUT_VARIANT_MAX))
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "invalid variant name (allowed: 1..%d of A-Z a-z 0-9 . _ -)",
                                   ROLLOUT_VARIANT_MAX);
        else if (t < 0)
            r = rollout__field_err(reterr, -EINVAL, p, "a variant value cannot be null");
        else if (f->type == ROLLOUT_TYPE_ANY)
            f->type = (enum rollout_type)t; /* the first value decides when "type" is absent */
        if (r >= 0 && t != (int)f->type)
            r = rollout__field_err(reterr, -EINVAL, p, "must be of type '%s', not %s",
                                   rollout_type_name(f->type), json_kind(v));
        if (r >= 0)
            r = variant_set(&f->variants[f->n_variants], name, v);
        rollout__path_pop(p, o2);
        if (r < 0)
            break;
        f->n_variants++;
    }
out:
    rollout__path_pop(p, old);
    return r;
}

static int find_variant(const struct rollout_flag *f, const char *name)
{
    for (size_t i = 0; i < f->n_variants; i++)
        if (strcmp(f->variants[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int parse_role(json_t *obj, const char *field, const char *def, struct rollout_flag *f,
                      unsigned *ret, struct jpath *p, struct err *reterr)
{
    char *name = NULL;
    size_t old;
    int r, i;

    r = get_string(obj, field, 1, ROLLOUT_VARIANT_MAX, &name, p, reterr);
    if (r < 0)
        return r;
    i = find_variant(f, name ? name : def);
    if (i < 0) {
        old = rollout__path_key(p, field);
        r = rollout__field_err(reterr, -EINVAL, p, "no variant named '%s'%s", name ? name : def,
                               name ? "" : " (the default)");
        rollout__path_pop(p, old);
    } else {
        *ret = (unsigned)i;
    }
    free(name);
    return r;
}

static int parse_rules(json_t *obj, struct rollout_flag *f, struct jpath *p, struct err *reterr)
{
    static const char *const extra[] = { "variant", "exclude", NULL };
    json_t *rules = json_object_get(obj, "rules");
    size_t old, n = json_array_size(rules);
    int r = 0;

    if (!rules)
        return 0;
    old = rollout__path_key(p, "rules");
    if (!json_is_array(rules))
        r = rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s", json_kind(rules));
    else if (n > ROLLOUT_MAX_RULES)
        r = rollout__field_err(reterr, -E2BIG, p, "more than %d rules", ROLLOUT_MAX_RULES);
    if (r >= 0 && n) {
        f->rules = calloc(n, sizeof *f->rules);
        if (!f->rules)
            r = -ENOMEM;
    }
    for (size_t i = 0; r >= 0 && i < n; i++) {
        json_t *rule = json_array_get(rules, i), *variant, *exclude;
        struct rule *ru = &f->rules[i];
        size_t o2 = rollout__path_index(p, i), o3;

        r = rollout__cond_parse(rule, true, extra, &ru->cond, p, reterr);
        if (r < 0) {
            rollout__path_pop(p, o2);
            break;
        }
        f->n_rules++;
        variant = json_object_get(rule, "variant");
        exclude = json_object_get(rule, "exclude");
        if (exclude && !json_is_boolean(exclude)) {
            o3 = rollout__path_key(p, "exclude");
            r = rollout__field_err(reterr, -EINVAL, p, "must be a boolean, not %s",
                                   json_kind(exclude));
            rollout__path_pop(p, o3);
        } else if (variant && json_is_true(exclude)) {
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "give either 'variant' or 'exclude: true', not both");
        } else if (json_is_true(exclude)) {
            ru->variant = -1;
        } else if (!variant) {
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "an action is required: 'variant' or 'exclude: true'");
        } else {
            o3 = rollout__path_key(p, "variant");
            if (!json_is_string(variant))
                r = rollout__field_err(reterr, -EINVAL, p, "must be a string, not %s",
                                       json_kind(variant));
            else if ((ru->variant = find_variant(f, json_string_value(variant))) < 0)
                r = rollout__field_err(reterr, -EINVAL, p, "no variant named '%s'",
                                       json_string_value(variant));
            rollout__path_pop(p, o3);
        }
        rollout__path_pop(p, o2);
    }
    rollout__path_pop(p, old);
    return r;
}

static int parse_percent(json_t *obj, const char *field, uint32_t *ret, struct jpath *p,
                         struct err *reterr)
{
    json_t *v = json_object_get(obj, field);
    double pct, scaled;
    size_t old;
    int r = 0;

    if (!v)
        return 0;
    old = rollout__path_key(p, field);
    if (!json_is_number(v)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be a number (percent), not %s",
                               json_kind(v));
        goto out;
    }
    pct = json_number_value(v);
    if (!(pct >= 0 && pct <= 100)) {
        r = rollout__field_err(reterr, -EINVAL, p, "must be within 0..100 (percent)");
        goto out;
    }
    scaled = pct * 1000.0;
    if (fabs(scaled - nearbyint(scaled)) > 1e-6) {
        r = rollout__field_err(reterr, -EINVAL, p, "more precise than 0.001 %%");
        goto out;
    }
    *ret = (uint32_t)nearbyint(scaled);
out:
    rollout__path_pop(p, old);
    return r;
}

static int env_cmp(const void *a, const void *b)
{
    return strcmp(((const struct env_state *)a)->name, ((const struct env_state *)b)->name);
}

static int parse_env(json_t *v, bool strict, struct env_state *e, struct jpath *p,
                     struct err *reterr)
{
    static const char *const known[] = { "stage", "kill", "shadow", "canary", "partial", NULL };
    json_t *stage, *kill;
    size_t old;
    int r;

    e->stage = ROLLOUT_STAGE_OFF;
    e->kill = false;
    e->shadow = 100 * 1000;
    e->canary = 1 * 1000;
    e->partial = 25 * 1000;
    if (!json_is_object(v))
        return rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(v));
    r = check_members(v, strict, known, NULL, p, reterr);
    if (r < 0)
        return r;
    stage = json_object_get(v, "stage");
    if (stage) {
        old = rollout__path_key(p, "stage");
        r = json_is_string(stage) ? rollout_stage_from_name(json_string_value(stage)) : -EINVAL;
        if (r < 0)
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "must be one of off, shadow, canary, partial, full");
        else
            e->stage = (enum rollout_stage)r;
        rollout__path_pop(p, old);
        if (r < 0)
            return r;
    }
    kill = json_object_get(v, "kill");
    if (kill) {
        if (!json_is_boolean(kill)) {
            old = rollout__path_key(p, "kill");
            r = rollout__field_err(reterr, -EINVAL, p, "must be a boolean, not %s",
                                   json_kind(kill));
            rollout__path_pop(p, old);
            return r;
        }
        e->kill = json_is_true(kill);
    }
    r = parse_percent(v, "shadow", &e->shadow, p, reterr);
    if (r >= 0)
        r = parse_percent(v, "canary", &e->canary, p, reterr);
    if (r >= 0)
        r = parse_percent(v, "partial", &e->partial, p, reterr);
    if (r >= 0 && e->canary > e->partial) {
        old = rollout__path_key(p, "canary");
        r = rollout__field_err(reterr, -EINVAL, p,
                               "must not exceed partial, so that canary stays inside partial");
        rollout__path_pop(p, old);
    }
    return r;
}

static int parse_envs(json_t *obj, bool strict, struct rollout_flag *f, struct jpath *p,
                      struct err *reterr)
{
    json_t *envs = json_object_get(obj, "environments"), *v;
    size_t old, n = json_object_size(envs);
    const char *name;
    int r = 0;

    if (!envs)
        return 0;
    old = rollout__path_key(p, "environments");
    if (!json_is_object(envs))
        r = rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(envs));
    else if (n > ROLLOUT_MAX_ENVS)
        r = rollout__field_err(reterr, -E2BIG, p, "more than %d environments", ROLLOUT_MAX_ENVS);
    if (r >= 0 && n) {
        f->envs = calloc(n, sizeof *f->envs);
        if (!f->envs)
            r = -ENOMEM;
    }
    if (r < 0)
        goto out;
    json_object_foreach(envs, name, v)
    {
        size_t o2 = rollout__path_key(p, name);
        struct env_state *e = &f->envs[f->n_envs];

        if (!rollout__env_name_valid(name))
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "invalid environment name (allowed: 1..%d of a-z 0-9 _ -)",
                                   ROLLOUT_ENV_MAX);
        else
            r = parse_env(v, strict, e, p, reterr);
        rollout__path_pop(p, o2);
        if (r < 0)
            break;
        memcpy(e->name, name, strlen(name) + 1);
        f->n_envs++;
    }
    if (f->n_envs > 1)
        qsort(f->envs, f->n_envs, sizeof *f->envs, env_cmp);
out:
    rollout__path_pop(p, old);
    return r;
}

int rollout__flag_from_json(void *vobj, bool strict, struct jpath *p, struct rollout_flag **ret,
                            struct err *reterr)
{
    static const char *const known[] = { "key",        "description", "version",      "type",
                                         "variants",   "control",     "candidate",    "salt",
                                         "stickiness", "rules",       "environments", NULL };
    json_t *obj = vobj;
    struct rollout_flag *f;
    json_t *v;
    size_t old;
    int r;

    if (!json_is_object(obj))
        return rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s", json_kind(obj));
    r = check_members(obj, strict, known, NULL, p, reterr);
    if (r < 0)
        return r;
    f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    atomic_init(&f->refs, 1);

    r = get_key(obj, &f->key, p, reterr);
    if (r < 0)
        goto fail;
    f->key_len = strlen(f->key);
    r = get_string(obj, "description", 0, DESCRIPTION_MAX, &f->description, p, reterr);
    if (r < 0)
        goto fail;
    v = json_object_get(obj, "version");
    if (v) {
        old = rollout__path_key(p, "version");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            r = rollout__field_err(reterr, -EINVAL, p, "must be an integer >= 0");
        else
            f->version = (uint64_t)json_integer_value(v);
        rollout__path_pop(p, old);
        if (r < 0)
            goto fail;
    }
    f->type = ROLLOUT_TYPE_ANY;
    v = json_object_get(obj, "type");
    if (v) {
        old = rollout__path_key(p, "type");
        for (unsigned i = ROLLOUT_TYPE_BOOLEAN; json_is_string(v) && i < _ROLLOUT_TYPE_MAX; i++)
            if (strcmp(rollout_type_name((enum rollout_type)i), json_string_value(v)) == 0)
                f->type = (enum rollout_type)i;
        if (f->type == ROLLOUT_TYPE_ANY)
            r = rollout__field_err(reterr, -EINVAL, p,
                                   "must be one of boolean, string, number, object");
        rollout__path_pop(p, old);
        if (r < 0)
            goto fail;
    }
    r = parse_variants(obj, f, p, reterr);
    if (r < 0)
        goto fail;
    r = parse_role(obj, "control", "control", f, &f->control, p, reterr);
    if (r >= 0)
        r = parse_role(obj, "candidate", "candidate", f, &f->candidate, p, reterr);
    if (r < 0)
        goto fail;
    if (f->n_variants > 1 && f->control == f->candidate) {
        old = rollout__path_key(p, "candidate");
        r = rollout__field_err(reterr, -EINVAL, p, "must differ from 'control'");
        rollout__path_pop(p, old);
        goto fail;
    }
    r = get_string(obj, "salt", 1, ROLLOUT_KEY_MAX, &f->salt, p, reterr);
    if (r >= 0)
        r = get_string(obj, "stickiness", 1, ROLLOUT_ATTR_MAX, &f->stickiness, p, reterr);
    if (r < 0)
        goto fail;
    if (!f->description)
        f->description = strdup("");
    if (!f->salt)
        f->salt = strdup(f->key);
    if (!f->stickiness)
        f->stickiness = strdup("targetingKey");
    if (!f->description || !f->salt || !f->stickiness) {
        r = -ENOMEM;
        goto fail;
    }
    f->stickiness_len = strlen(f->stickiness);
    f->stickiness_is_tk = strcmp(f->stickiness, "targetingKey") == 0;
    r = parse_rules(obj, f, p, reterr);
    if (r >= 0)
        r = parse_envs(obj, strict, f, p, reterr);
    if (r < 0)
        goto fail;
    rollout__mm3_init(&f->salt_state, 0);
    rollout__mm3_update(&f->salt_state, f->salt, strlen(f->salt));
    rollout__mm3_update(&f->salt_state, ":", 1);
    *ret = f;
    return 0;
fail:
    flag_free(f);
    return r;
}

int rollout_flag_parse(const char *json, size_t len, struct rollout_flag **ret_flag,
                       struct err *reterr)
{
    struct jpath p;
    void *root;
    int r;

    r = rollout__json_load(json, len, ROLLOUT_FLAG_JSON_MAX, "document", &root, reterr);
    if (r < 0)
        return r;
    rollout__path_init(&p, NULL);
    r = rollout__flag_from_json(root, true, &p, ret_flag, reterr);
    json_decref(root);
    return r;
}

struct rollout_flag *rollout_flag_ref(struct rollout_flag *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

struct rollout_flag *rollout_flag_unref(struct rollout_flag *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        flag_free(f);
    return NULL;
}

struct rollout_flag *rollout_flag_with_version(const struct rollout_flag *f, uint64_t version)
{
    struct buf b = BUF_INIT(0);
    struct rollout_flag *copy = NULL;

    /* A round trip through the normalized JSON is the simplest deep copy, and it is what
     * rolloutd stores anyway (cold path). */
    if (rollout_flag_serialize(f, NULL, &b) >= 0 &&
        rollout_flag_parse(buf_str(&b), b.len, &copy, NULL) >= 0)
        copy->version = version;
    buf_release(&b);
    return copy;
}

const char *rollout_flag_key(const struct rollout_flag *f)
{
    return f->key;
}

uint64_t rollout_flag_version(const struct rollout_flag *f)
{
    return f->version;
}

enum rollout_type rollout_flag_type(const struct rollout_flag *f)
{
    return f->type;
}

const struct env_state *rollout__flag_env(const struct rollout_flag *f, const char *env)
{
    for (size_t i = 0; i < f->n_envs; i++)
        if (strcmp(f->envs[i].name, env) == 0)
            return &f->envs[i];
    return NULL;
}

static int env_write(const struct env_state *e, struct buf *out)
{
    int r = rollout__json_string(out, e->name, strlen(e->name));

    if (r >= 0)
        r = buf_appendf(out,
                        ":{\"stage\":\"%s\",\"kill\":%s,\"shadow\":", rollout_stage_name(e->stage),
                        e->kill ? "true" : "false");
    if (r >= 0)
        r = rollout__json_percent(out, e->shadow);
    if (r >= 0)
        r = buf_puts(out, ",\"canary\":");
    if (r >= 0)
        r = rollout__json_percent(out, e->canary);
    if (r >= 0)
        r = buf_puts(out, ",\"partial\":");
    if (r >= 0)
        r = rollout__json_percent(out, e->partial);
    return r < 0 ? r : buf_puts(out, "}");
}

int rollout_flag_serialize(const struct rollout_flag *f, const char *env, struct buf *out)
{
    bool first = true;
    int r;

    r = buf_puts(out, "{\"key\":");
    if (r >= 0)
        r = rollout__json_string(out, f->key, f->key_len);
    if (r >= 0)
        r = buf_puts(out, ",\"description\":");
    if (r >= 0)
        r = rollout__json_string(out, f->description, strlen(f->description));
    if (r >= 0)
        r = buf_appendf(out, ",\"version\":%llu,\"type\":\"%s\",\"variants\":{",
                        (unsigned long long)f->version, rollout_type_name(f->type));
    for (size_t i = 0; r >= 0 && i < f->n_variants; i++) {
        if (i)
            r = buf_puts(out, ",");
        if (r >= 0)
            r = rollout__json_string(out, f->variants[i].name, f->variants[i].name_len);
        if (r >= 0)
            r = buf_puts(out, ":");
        if (r >= 0)
            r = rollout_value_write_json(&f->variants[i].value, out);
    }
    if (r >= 0)
        r = buf_puts(out, "},\"control\":");
    if (r >= 0)
        r = rollout__json_string(out, f->variants[f->control].name,
                                 f->variants[f->control].name_len);
    if (r >= 0)
        r = buf_puts(out, ",\"candidate\":");
    if (r >= 0)
        r = rollout__json_string(out, f->variants[f->candidate].name,
                                 f->variants[f->candidate].name_len);
    if (r >= 0)
        r = buf_puts(out, ",\"salt\":");
    if (r >= 0)
        r = rollout__json_string(out, f->salt, strlen(f->salt));
    if (r >= 0)
        r = buf_puts(out, ",\"stickiness\":");
    if (r >= 0)
        r = rollout__json_string(out, f->stickiness, f->stickiness_len);
    if (r >= 0)
        r = buf_puts(out, ",\"rules\":[");
    for (size_t i = 0; r >= 0 && i < f->n_rules; i++) {
        const struct rule *ru = &f->rules[i];

        r = buf_puts(out, i ? ",{" : "{");
        if (r >= 0)
            r = rollout__cond_write(&ru->cond, out);
        if (r >= 0 && ru->variant < 0)
            r = buf_puts(out, ",\"exclude\":true}");
        else if (r >= 0) {
            r = buf_puts(out, ",\"variant\":");
            if (r >= 0)
                r = rollout__json_string(out, f->variants[ru->variant].name,
                                         f->variants[ru->variant].name_len);
            if (r >= 0)
                r = buf_puts(out, "}");
        }
    }
    if (r >= 0)
        r = buf_puts(out, "],\"environments\":{");
    for (size_t i = 0; r >= 0 && i < f->n_envs; i++) {
        if (env && strcmp(env, f->envs[i].name) != 0)
            continue;
        if (!first)
            r = buf_puts(out, ",");
        first = false;
        if (r >= 0)
            r = env_write(&f->envs[i], out);
    }
    return r < 0 ? r : buf_puts(out, "}}");
}
