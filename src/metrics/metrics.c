/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

struct metrics_series {
    struct metrics_series *next;
    const struct metrics_family *family; /* owner; for histogram bounds */
    char **label_values;
    _Atomic uint64_t value;   /* counter: count; gauge: double bits */
    _Atomic uint64_t *counts; /* histogram: per bucket (non-cumulative), +Inf last */
    _Atomic uint64_t sum;     /* histogram: double bits */
    _Atomic uint64_t count;   /* histogram */
};

struct metrics_family {
    struct metrics_family *next;
    struct metrics_registry *registry;
    enum metrics_type type;
    char *name, *help;
    char *label_names[METRICS_MAX_LABELS];
    size_t n_labels;
    double buckets[METRICS_MAX_BUCKETS];
    size_t n_buckets;
    struct metrics_series *series, **series_tail;
};

struct metrics_registry {
    pthread_mutex_t lock;
    struct metrics_family *families, **tail;
};

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

struct metrics_registry *metrics_registry_new(void)
{
    struct metrics_registry *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->tail = &r->families;
    return r;
}

static void series_free(struct metrics_series *s, size_t n_labels)
{
    for (size_t i = 0; s->label_values && i < n_labels; i++)
        free(s->label_values[i]);
    free(s->label_values);
    free(s->counts);
    free(s);
}

static void family_free(struct metrics_family *f)
{
    struct metrics_series *s = f->series;

    while (s) {
        struct metrics_series *next = s->next;
        series_free(s, f->n_labels);
        s = next;
    }
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
}

struct metrics_registry *metrics_registry_free(struct metrics_registry *r)
{
    struct metrics_family *f;

    if (!r)
        return NULL;
    f = r->families;
    while (f) {
        struct metrics_family *next = f->next;
        family_free(f);
        f = next;
    }
    (void)pthread_mutex_destroy(&r->lock);
    free(r);
    return NULL;
}

int metrics_name_valid(const char *name)
{
    if (!name || !*name || (*name >= '0' && *name <= '9'))
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == ':'))
            return 0;
    return 1;
}

int metrics_label_name_valid(const char *name)
{
    if (!metrics_name_valid(name) || strchr(name, ':') || strncmp(name, "__", 2) == 0)
        return 0;
    return 1;
}

int metrics_family_register(struct metrics_registry *r, enum metrics_type type, const char *name,
                            const char *help, const char *const *label_names, const double *buckets,
                            size_t n_buckets, struct metrics_family **ret_family)
{
    struct metrics_family *f;
    size_t n_labels = 0;
    int ret = 0;

    if (type < 0 || type >= _METRICS_TYPE_MAX || !metrics_name_valid(name))
        return -EINVAL;
    while (label_names && label_names[n_labels]) {
        const char *l = label_names[n_labels];
        if (n_labels >= METRICS_MAX_LABELS || !metrics_label_name_valid(l) ||
            (type == METRICS_HISTOGRAM && strcmp(l, "le") == 0))
            return -EINVAL;
        n_labels++;
    }
    if (type == METRICS_HISTOGRAM) {
        if (n_buckets == 0 || n_buckets > METRICS_MAX_BUCKETS || !buckets)
            return -EINVAL;
        for (size_t i = 0; i < n_buckets; i++)
            if (isnan(buckets[i]) || isinf(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
                return -EINVAL;
    } else if (n_buckets) {
        return -EINVAL;
    }

    f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->registry = r;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->n_labels = n_labels;
    f->series_tail = &f->series;
    for (size_t i = 0; i < n_labels; i++)
        f->label_names[i] = strdup(label_names[i]);
    for (size_t i = 0; i < n_buckets; i++)
        f->buckets[i] = buckets[i];
    f->n_buckets = n_buckets;
    for (size_t i = 0; i < n_labels; i++)
        if (!f->label_names[i])
            ret = -ENOMEM;
    if (!f->name || !f->help || ret < 0) {
        family_free(f);
        return -ENOMEM;
    }

    (void)pthread_mutex_lock(&r->lock);
    for (struct metrics_family *g = r->families; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            ret = -EEXIST;
    if (ret == 0) {
        *r->tail = f;
        r->tail = &f->next;
    }
    (void)pthread_mutex_unlock(&r->lock);
    if (ret < 0) {
        family_free(f);
        return ret;
    }
    *ret_family = f;
    return 0;
}

static int labels_equal(const struct metrics_series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->label_values[i], values[i]) != 0)
            return 0;
    return 1;
}

struct metrics_series *metrics_series_get(struct metrics_family *f, const char *const *label_values)
{
    struct metrics_registry *r = f->registry;
    struct metrics_series *s;

    (void)pthread_mutex_lock(&r->lock);
    for (s = f->series; s; s = s->next)
        if (labels_equal(s, label_values, f->n_labels))
            goto out;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->label_values = calloc(f->n_labels + 1, sizeof *s->label_values);
    if (f->type == METRICS_HISTOGRAM)
        s->counts = calloc(f->n_buckets + 1, sizeof *s->counts);
    if (!s->label_values || (f->type == METRICS_HISTOGRAM && !s->counts)) {
        series_free(s, 0);
        s = NULL;
        goto out;
    }
    s->family = f;
    for (size_t i = 0; i < f->n_labels; i++) {
        s->label_values[i] = strdup(label_values[i]);
        if (!s->label_values[i]) {
            series_free(s, f->n_labels);
            s = NULL;
            goto out;
        }
    }
    *f->series_tail = s;
    f->series_tail = &s->next;
out:
    (void)pthread_mutex_unlock(&r->lock);
    return s;
}

void metrics_counter_add(struct metrics_series *s, uint64_t n)
{
    atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metrics_gauge_set(struct metrics_series *s, double v)
{
    atomic_store_explicit(&s->value, double_bits(v), memory_order_relaxed);
}

static void atomic_add_double(_Atomic uint64_t *p, double delta)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void metrics_gauge_add(struct metrics_series *s, double delta)
{
    atomic_add_double(&s->value, delta);
}

void metrics_histogram_observe(struct metrics_series *s, double v)
{
    const struct metrics_family *f = s->family;
    size_t i = 0;

    while (i < f->n_buckets && !(v <= f->buckets[i]))
        i++;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* ===== Exposition ===== */

int metrics_escape_label_value(struct buf *out, const char *value)
{
    int r = 0;

    for (const char *p = value; *p && r == 0; p++) {
        if (*p == '\\')
            r = buf_append(out, "\\\\", 2);
        else if (*p == '"')
            r = buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            r = buf_append(out, "\\n", 2);
        else
            r = buf_append(out, p, 1);
    }
    return r;
}

int metrics_escape_help(struct buf *out, const char *help)
{
    int r = 0;

    for (const char *p = help; *p && r == 0; p++) {
        if (*p == '\\')
            r = buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            r = buf_append(out, "\\n", 2);
        else
            r = buf_append(out, p, 1);
    }
    return r;
}

int metrics_format_value(struct buf *out, double v)
{
    if (isnan(v))
        return buf_puts(out, "NaN");
    if (isinf(v))
        return buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return buf_appendf(out, "%.0f", v);
    /* The shortest of %.15g..%.17g that reads back as the same double. */
    for (int prec = 15; prec < 17; prec++) {
        char tmp[40];
        (void)snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            return buf_puts(out, tmp);
    }
    return buf_appendf(out, "%.17g", v);
}

static const char *const type_names[] = {
    [METRICS_COUNTER] = "counter",
    [METRICS_GAUGE] = "gauge",
    [METRICS_HISTOGRAM] = "histogram",
};

int metrics_text_header(struct buf *out, const char *name, enum metrics_type type, const char *help)
{
    int r;

    if ((unsigned)type >= _METRICS_TYPE_MAX)
        return -EINVAL;
    r = buf_appendf(out, "# HELP %s ", name);
    if (r == 0)
        r = metrics_escape_help(out, help);
    if (r == 0)
        r = buf_appendf(out, "\n# TYPE %s %s\n", name, type_names[type]);
    return r;
}

int metrics_text_sample(struct buf *out, const char *name, const char *const *label_names,
                        const char *const *label_values, size_t n, double v)
{
    int r = buf_puts(out, name);

    for (size_t i = 0; r == 0 && i < n; i++) {
        r = buf_appendf(out, "%s%s=\"", i ? "," : "{", label_names[i]);
        if (r == 0)
            r = metrics_escape_label_value(out, label_values[i]);
        if (r == 0)
            r = buf_append(out, "\"", 1);
    }
    if (r == 0)
        r = buf_puts(out, n ? "} " : " ");
    if (r == 0)
        r = metrics_format_value(out, v);
    if (r == 0)
        r = buf_append(out, "\n", 1);
    return r;
}

/* name{l1="v1",l2="v2"[,le="x"]} */
static int write_name_labels(struct buf *out, const struct metrics_family *f,
                             const struct metrics_series *s, const char *suffix, const char *le)
{
    int r = buf_appendf(out, "%s%s", f->name, suffix);

    if (r == 0 && (f->n_labels || le))
        r = buf_append(out, "{", 1);
    for (size_t i = 0; r == 0 && i < f->n_labels; i++) {
        r = buf_appendf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        if (r == 0)
            r = metrics_escape_label_value(out, s->label_values[i]);
        if (r == 0)
            r = buf_append(out, "\"", 1);
    }
    if (r == 0 && le)
        r = buf_appendf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    if (r == 0 && (f->n_labels || le))
        r = buf_append(out, "}", 1);
    return r;
}

static int write_sample(struct buf *out, const struct metrics_family *f,
                        const struct metrics_series *s, const char *suffix, const char *le,
                        double v)
{
    int r = write_name_labels(out, f, s, suffix, le);
    if (r == 0)
        r = buf_append(out, " ", 1);
    if (r == 0)
        r = metrics_format_value(out, v);
    if (r == 0)
        r = buf_append(out, "\n", 1);
    return r;
}

static int write_series(struct buf *out, const struct metrics_family *f,
                        const struct metrics_series *s)
{
    uint64_t cum = 0;
    int r = 0;

    switch (f->type) {
    case METRICS_COUNTER:
        return write_sample(out, f, s, "", NULL,
                            (double)atomic_load_explicit(&s->value, memory_order_relaxed));
    case METRICS_GAUGE:
        return write_sample(out, f, s, "", NULL,
                            bits_double(atomic_load_explicit(&s->value, memory_order_relaxed)));
    case METRICS_HISTOGRAM:
        for (size_t i = 0; r == 0 && i <= f->n_buckets; i++) {
            struct buf le = BUF_INIT(64);
            cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
            r = i < f->n_buckets ? metrics_format_value(&le, f->buckets[i]) : buf_puts(&le, "+Inf");
            if (r == 0)
                r = write_sample(out, f, s, "_bucket", buf_str(&le), (double)cum);
            buf_release(&le);
        }
        if (r == 0)
            r = write_sample(out, f, s, "_sum", NULL,
                             bits_double(atomic_load_explicit(&s->sum, memory_order_relaxed)));
        if (r == 0)
            r = write_sample(out, f, s, "_count", NULL, (double)cum);
        return r;
    default:
        return -EINVAL;
    }
}

/* Truncates out back to len after a failed write (all-or-nothing per series). */
static void buf_truncate(struct buf *out, size_t len)
{
    out->len = len;
    if (out->data)
        out->data[len] = '\0';
}

int metrics_write_text(struct metrics_registry *reg, struct buf *out)
{
    int r = 0;

    (void)pthread_mutex_lock(&reg->lock);
    for (const struct metrics_family *f = reg->families; f && r == 0; f = f->next) {
        size_t family_mark = out->len;

        if (!f->series)
            continue;
        r = metrics_text_header(out, f->name, f->type, f->help);
        if (r < 0) {
            buf_truncate(out, family_mark);
            break;
        }
        for (const struct metrics_series *s = f->series; s; s = s->next) {
            size_t mark = out->len;
            r = write_series(out, f, s);
            if (r < 0) {
                /* A family header without any sample is dropped too. */
                buf_truncate(out, s == f->series ? family_mark : mark);
                break;
            }
        }
    }
    (void)pthread_mutex_unlock(&reg->lock);
    return r;
}
