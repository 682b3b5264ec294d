/* SPDX-License-Identifier: MIT */
/* flag.c - flags: parsing a flag definition from JSON (variants, control/candidate, rules,
 * per-environment rollout state) with errors that name the field, reference counting and
 * normalized serialization.  Conditions are condition.c's, the shared helpers model.c's. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "model_int.h"
#include "rollout_int.h"

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
    rollout__def_head_release(&f->head);
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
        if (f->type != ROLLOUT_TYPE_BOOLEAN && f->type != ROLLOUT_TYPE_ANY)
            return rollout__member_err(reterr, -EINVAL, p, "variants", "required for type '%s'",
                                       rollout_type_name(f->type));
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
        r = rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s",
                               rollout__json_kind(vars));
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
                                   rollout_type_name(f->type), rollout__json_kind(v));
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
    int r, i;

    r = rollout__get_string(obj, field, 1, ROLLOUT_VARIANT_MAX, &name, p, reterr);
    if (r < 0)
        return r;
    i = find_variant(f, name ? name : def);
    if (i < 0) {
        r = rollout__member_err(reterr, -EINVAL, p, field, "no variant named '%s'%s",
                                name ? name : def, name ? "" : " (the default)");
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
        r = rollout__field_err(reterr, -EINVAL, p, "must be an array, not %s",
                               rollout__json_kind(rules));
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
            r = rollout__member_err(reterr, -EINVAL, p, "exclude", "must be a boolean, not %s",
                                    rollout__json_kind(exclude));
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
                                       rollout__json_kind(variant));
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
    double pct = json_number_value(v), scaled = pct * 1000.0; /* 0 unless a number */
    size_t old;
    int r = 0;

    if (!v)
        return 0;
    old = rollout__path_key(p, field);
    if (!json_is_number(v))
        r = rollout__field_err(reterr, -EINVAL, p, "must be a number (percent), not %s",
                               rollout__json_kind(v));
    else if (!(pct >= 0 && pct <= 100))
        r = rollout__field_err(reterr, -EINVAL, p, "must be within 0..100 (percent)");
    else if (fabs(scaled - nearbyint(scaled)) > 1e-6)
        r = rollout__field_err(reterr, -EINVAL, p, "more precise than 0.001 %%");
    else
        *ret = (uint32_t)nearbyint(scaled);
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
    r = rollout__check_object(v, strict, known, NULL, p, reterr);
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
        if (!json_is_boolean(kill))
            return rollout__member_err(reterr, -EINVAL, p, "kill", "must be a boolean, not %s",
                                       rollout__json_kind(kill));
        e->kill = json_is_true(kill);
    }
    r = parse_percent(v, "shadow", &e->shadow, p, reterr);
    if (r >= 0)
        r = parse_percent(v, "canary", &e->canary, p, reterr);
    if (r >= 0)
        r = parse_percent(v, "partial", &e->partial, p, reterr);
    if (r >= 0 && e->canary > e->partial)
        r = rollout__member_err(reterr, -EINVAL, p, "canary",
                                "must not exceed partial, so that canary stays inside partial");
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
        r = rollout__field_err(reterr, -EINVAL, p, "must be an object, not %s",
                               rollout__json_kind(envs));
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
    struct def_head *h;
    json_t *v;
    size_t old;
    int r;

    r = rollout__def_new(sizeof *f, obj, strict, known, p, &h, reterr);
    if (r < 0)
        return r;
    f = (struct rollout_flag *)(void *)h; /* the head is its first member */
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
        r = rollout__member_err(reterr, -EINVAL, p, "candidate", "must differ from 'control'");
        goto fail;
    }
    r = rollout__get_string(obj, "salt", 1, ROLLOUT_KEY_MAX, &f->salt, p, reterr);
    if (r >= 0)
        r = rollout__get_string(obj, "stickiness", 1, ROLLOUT_ATTR_MAX, &f->stickiness, p, reterr);
    if (r < 0)
        goto fail;
    if (!f->salt)
        f->salt = strdup(f->head.key);
    if (!f->stickiness)
        f->stickiness = strdup("targetingKey");
    if (!f->salt || !f->stickiness) {
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

static int flag_from_doc(void *obj, struct jpath *p, void *ret, struct err *reterr)
{
    return rollout__flag_from_json(obj, true, p, ret, reterr);
}

int rollout_flag_parse(const char *json, size_t len, struct rollout_flag **ret_flag,
                       struct err *reterr)
{
    return rollout__def_parse(json, len, flag_from_doc, ret_flag, reterr);
}

ROLLOUT__DEFINE_REF_UNREF(struct rollout_flag, rollout_flag, head.refs, flag_free)

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
    return f->head.key;
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

    r = rollout__def_head_write(out, &f->head);
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
