/* SPDX-License-Identifier: MIT */
/* snapshot.c - immutable per-environment snapshots: build from parsed flags and segments,
 * parse/serialize the snapshot document, key lookup (open addressing on murmur3), and the
 * sharded evaluation counters with their export to Prometheus. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "metrics/metrics.h"
#include "rollout_int.h"

#define COUNTERS_PER_LINE 8 /* 64-byte cache line / 8-byte counter */

static struct rollout_snapshot *snapshot_free(struct rollout_snapshot *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_flags; i++) {
        rollout_flag_unref(s->flags[i].f);
        free(s->flags[i].rule_segs);
    }
    free(s->flags);
    for (size_t i = 0; i < s->n_segments; i++)
        rollout_segment_unref(s->segments[i]);
    free(s->segments);
    free(s->table);
    free(s->counters);
    free(s->exported);
    free(s->series);
    free(s);
    return NULL;
}

ROLLOUT__DEFINE_REF_UNREF(struct rollout_snapshot, rollout_snapshot, refs, snapshot_free)

static int snap_flag_cmp(const void *a, const void *b)
{
    return strcmp(((const struct snap_flag *)a)->f->head.key,
                  ((const struct snap_flag *)b)->f->head.key);
}

static int segment_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(struct rollout_segment *const *)a)->head.key,
                  (*(struct rollout_segment *const *)b)->head.key);
}

static const struct rollout_segment *find_segment(const struct rollout_snapshot *s, const char *key)
{
    size_t lo = 0, hi = s->n_segments;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, s->segments[mid]->head.key);

        if (!c)
            return s->segments[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int rollout_snapshot_build(const char *env, uint64_t version, struct rollout_flag *const *flags,
                           size_t n_flags, struct rollout_segment *const *segments,
                           size_t n_segments, struct rollout_snapshot **ret_snapshot,
                           struct err *reterr)
{
    struct rollout_snapshot *s;
    size_t table_size = 8;
    int r = 0;

    if (!env || !rollout__env_name_valid(env))
        return err_set(reterr, -EINVAL, 0, 0, "invalid environment name '%s'", env ? env : "");
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->refs, 1);
    s->version = version;
    memcpy(s->env, env, strlen(env) + 1);

    if (n_segments) {
        s->segments = calloc(n_segments, sizeof *s->segments);
        if (!s->segments)
            goto oom;
    }
    for (size_t i = 0; i < n_segments; i++)
        s->segments[s->n_segments++] = rollout_segment_ref(segments[i]);
    if (s->n_segments > 1)
        qsort(s->segments, s->n_segments, sizeof *s->segments, segment_ptr_cmp);
    for (size_t i = 1; i < s->n_segments; i++)
        if (strcmp(s->segments[i - 1]->head.key, s->segments[i]->head.key) == 0) {
            r = err_set(reterr, -EINVAL, 0, 0, "segment '%s': duplicate key",
                        s->segments[i]->head.key);
            goto fail;
        }

    if (n_flags) {
        s->flags = calloc(n_flags, sizeof *s->flags);
        if (!s->flags)
            goto oom;
    }
    for (size_t i = 0; i < n_flags; i++) {
        struct snap_flag *sf = &s->flags[s->n_flags++];

        sf->f = rollout_flag_ref(flags[i]);
    }
    if (s->n_flags > 1)
        qsort(s->flags, s->n_flags, sizeof *s->flags, snap_flag_cmp);

    for (size_t i = 0; i < s->n_flags; i++) {
        struct snap_flag *sf = &s->flags[i];
        const struct rollout_flag *f = sf->f;
        const struct env_state *e = rollout__flag_env(f, env);

        if (i && strcmp(s->flags[i - 1].f->head.key, f->head.key) == 0) {
            r = err_set(reterr, -EINVAL, 0, 0, "flag '%s': duplicate key", f->head.key);
            goto fail;
        }
        sf->hash = rollout_murmur3_32(f->head.key, f->head.key_len, 0);
        sf->stage = e ? e->stage : ROLLOUT_STAGE_OFF;
        sf->kill = e ? e->kill : false;
        sf->shadow = e ? e->shadow : 0;
        sf->canary = e ? e->canary : 0;
        sf->partial = e ? e->partial : 0;
        sf->counter_base = s->n_counters;
        s->n_counters += f->n_variants;
        if (!f->n_rules)
            continue;
        sf->rule_segs = calloc(f->n_rules, sizeof *sf->rule_segs);
        if (!sf->rule_segs)
            goto oom;
        for (size_t k = 0; k < f->n_rules; k++) {
            const struct cond *c = &f->rules[k].cond;

            if (!c->segment)
                continue;
            sf->rule_segs[k] = find_segment(s, c->segment);
            if (!sf->rule_segs[k]) {
                char field[40];

                /* The field is the flag's own (what an API client sent), not the snapshot's. */
                (void)snprintf(field, sizeof field, "rules[%zu].segment", k);
                r = err_set(reterr, -EINVAL, 0, 0, "flag '%s': field '%s': unknown segment '%s'",
                            f->head.key, field, c->segment);
                err_set_field(reterr, field);
                goto fail;
            }
        }
    }

    /* Load factor <= 1/2 keeps probes short. */
    while (table_size < 2 * s->n_flags)
        table_size *= 2;
    s->table = calloc(table_size, sizeof *s->table);
    if (!s->table)
        goto oom;
    s->mask = (uint32_t)(table_size - 1);
    for (size_t i = 0; i < s->n_flags; i++) {
        uint32_t k = s->flags[i].hash & s->mask;

        while (s->table[k])
            k = (k + 1) & s->mask;
        s->table[k] = (uint32_t)i + 1;
    }

    s->stride = (s->n_counters + COUNTERS_PER_LINE - 1) / COUNTERS_PER_LINE * COUNTERS_PER_LINE;
    if (s->stride) {
        s->counters = aligned_alloc(64, ROLLOUT_SHARDS * s->stride * sizeof *s->counters);
        s->exported = calloc(s->n_counters, sizeof *s->exported);
        s->series = calloc(s->n_counters, sizeof *s->series);
        if (!s->counters || !s->exported || !s->series)
            goto oom;
        for (size_t i = 0; i < ROLLOUT_SHARDS * s->stride; i++)
            atomic_init(&s->counters[i], 0);
    }
    *ret_snapshot = s;
    return 0;
oom:
    r = -ENOMEM;
fail:
    snapshot_free(s);
    return r;
}

const struct snap_flag *rollout__snapshot_lookup(const struct rollout_snapshot *s, const char *key)
{
    size_t len = strlen(key);
    uint32_t h = rollout_murmur3_32(key, len, 0), k = h & s->mask;

    for (;;) {
        uint32_t i = s->table[k];
        const struct snap_flag *sf;

        if (!i)
            return NULL;
        sf = &s->flags[i - 1];
        if (sf->hash == h && sf->f->head.key_len == len && memcmp(sf->f->head.key, key, len) == 0)
            return sf;
        k = (k + 1) & s->mask;
    }
}

const struct rollout_flag *rollout_snapshot_find(const struct rollout_snapshot *s, const char *key)
{
    const struct snap_flag *sf = rollout__snapshot_lookup(s, key);

    return sf ? sf->f : NULL;
}

uint64_t rollout_snapshot_version(const struct rollout_snapshot *s)
{
    return s->version;
}

const char *rollout_snapshot_env(const struct rollout_snapshot *s)
{
    return s->env;
}

size_t rollout_snapshot_n_flags(const struct rollout_snapshot *s)
{
    return s->n_flags;
}

const struct rollout_flag *rollout_snapshot_flag_at(const struct rollout_snapshot *s, size_t i)
{
    return i < s->n_flags ? s->flags[i].f : NULL;
}

/* ===== Snapshot document ===== */

static int parse_array(json_t *root, const char *field, struct jpath *p, json_t **ret,
                       struct err *reterr)
{
    json_t *a = json_object_get(root, field);

    *ret = a;
    if (!a)
        return 0;
    if (!json_is_array(a)) {
        size_t old = rollout__path_key(p, field);
        int r = rollout__field_err(reterr, -EINVAL, p, "must be an array");

        rollout__path_pop(p, old);
        return r;
    }
    return 0;
}

int rollout_snapshot_parse(const char *json, size_t len, struct rollout_snapshot **ret_snapshot,
                           struct err *reterr)
{
    struct rollout_segment **segs = NULL;
    struct rollout_flag **flags = NULL;
    size_t n_segs = 0, n_flags = 0;
    json_t *root, *v, *jflags = NULL, *jsegs = NULL;
    uint64_t version = 0;
    struct jpath p;
    const char *env = NULL;
    int r = 0;

    r = rollout__json_load(json, len, ROLLOUT_SNAPSHOT_MAX, "snapshot", (void **)&root, reterr);
    if (r < 0)
        return r;
    rollout__path_init(&p, NULL);
    if (!json_is_object(root)) {
        r = err_set(reterr, -EINVAL, 0, 0, "a snapshot must be a JSON object");
        goto out;
    }
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        (void)rollout__path_key(&p, "version");
        r = rollout__field_err(reterr, -EINVAL, &p, "an integer >= 0 is required");
        goto out;
    }
    version = (uint64_t)json_integer_value(v);
    v = json_object_get(root, "env");
    if (!json_is_string(v) || !rollout__env_name_valid(json_string_value(v))) {
        (void)rollout__path_key(&p, "env");
        r = rollout__field_err(reterr, -EINVAL, &p, "a valid environment name is required");
        goto out;
    }
    env = json_string_value(v);
    r = parse_array(root, "segments", &p, &jsegs, reterr);
    if (r >= 0)
        r = parse_array(root, "flags", &p, &jflags, reterr);
    if (r < 0)
        goto out;
    if (json_array_size(jsegs)) {
        segs = calloc(json_array_size(jsegs), sizeof *segs);
        if (!segs) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(jsegs); i++) {
        rollout__path_init(&p, "segments");
        (void)rollout__path_index(&p, i);
        r = rollout__segment_from_json(json_array_get(jsegs, i), &p, &segs[n_segs], reterr);
        if (r < 0)
            goto out;
        n_segs++;
    }
    if (json_array_size(jflags)) {
        flags = calloc(json_array_size(jflags), sizeof *flags);
        if (!flags) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(jflags); i++) {
        rollout__path_init(&p, "flags");
        (void)rollout__path_index(&p, i);
        r = rollout__flag_from_json(json_array_get(jflags, i), false, &p, &flags[n_flags], reterr);
        if (r < 0)
            goto out;
        n_flags++;
    }
    r = rollout_snapshot_build(env, version, flags, n_flags, segs, n_segs, ret_snapshot, reterr);
out:
    for (size_t i = 0; i < n_flags; i++)
        rollout_flag_unref(flags[i]);
    for (size_t i = 0; i < n_segs; i++)
        rollout_segment_unref(segs[i]);
    free(flags);
    free(segs);
    json_decref(root);
    return r;
}

int rollout_snapshot_load(const char *path, struct rollout_snapshot **ret_snapshot,
                          struct err *reterr)
{
    struct buf b = BUF_INIT(ROLLOUT_SNAPSHOT_MAX);
    int r;

    r = file_read_all(path, &b);
    if (r < 0) {
        r = err_set(reterr, r, 0, 0, "cannot read snapshot: %s", strerror(-r));
        goto out;
    }
    r = rollout_snapshot_parse(buf_str(&b), b.len, ret_snapshot, reterr);
out:
    if (r < 0)
        err_set_file(reterr, path);
    buf_release(&b);
    return r;
}

int rollout_snapshot_serialize(const struct rollout_snapshot *s, struct buf *out)
{
    int r;

    r = buf_appendf(out, "{\"version\":%llu,\"env\":\"%s\",\"segments\":[",
                    (unsigned long long)s->version, s->env);
    for (size_t i = 0; r >= 0 && i < s->n_segments; i++) {
        if (i)
            r = buf_puts(out, ",");
        if (r >= 0)
            r = rollout_segment_serialize(s->segments[i], out);
    }
    if (r >= 0)
        r = buf_puts(out, "],\"flags\":[");
    for (size_t i = 0; r >= 0 && i < s->n_flags; i++) {
        if (i)
            r = buf_puts(out, ",");
        if (r >= 0)
            r = rollout_flag_serialize(s->flags[i].f, s->env, out);
    }
    return r < 0 ? r : buf_puts(out, "]}");
}

/* ===== Counters ===== */

static uint64_t counter_sum(const struct rollout_snapshot *s, size_t idx)
{
    uint64_t sum = 0;

    for (size_t sh = 0; sh < ROLLOUT_SHARDS; sh++)
        sum += atomic_load_explicit(&s->counters[sh * s->stride + idx], memory_order_relaxed);
    return sum;
}

uint64_t rollout_snapshot_eval_count(const struct rollout_snapshot *s, const char *key,
                                     const char *variant)
{
    const struct snap_flag *sf = rollout__snapshot_lookup(s, key);

    if (!sf)
        return 0;
    for (size_t i = 0; i < sf->f->n_variants; i++)
        if (strcmp(sf->f->variants[i].name, variant) == 0)
            return counter_sum(s, sf->counter_base + i);
    return 0;
}

int rollout_snapshot_export_counts(struct rollout_snapshot *s, struct metrics_family *family)
{
    if (s->export_family != family) {
        /* Series are cached per family; a new family starts from what it has not seen. */
        memset(s->series, 0, s->n_counters * sizeof *s->series);
        s->export_family = family;
    }
    for (size_t i = 0; i < s->n_flags; i++) {
        const struct snap_flag *sf = &s->flags[i];

        for (size_t v = 0; v < sf->f->n_variants; v++) {
            size_t idx = sf->counter_base + v;
            uint64_t sum = counter_sum(s, idx);

            if (sum == s->exported[idx])
                continue;
            if (!s->series[idx]) {
                const char *labels[] = { sf->f->head.key, sf->f->variants[v].name, NULL };

                s->series[idx] = metrics_series_get(family, labels);
                if (!s->series[idx])
                    return -ENOMEM;
            }
            metrics_counter_add(s->series[idx], sum - s->exported[idx]);
            s->exported[idx] = sum;
        }
    }
    return 0;
}
