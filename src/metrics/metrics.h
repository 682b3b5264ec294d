/* SPDX-License-Identifier: MIT */
/* metrics.h - a small Prometheus metrics registry and text exposition (format 0.0.4).
 *
 * The registry owns families; a family owns its series.  Both are borrowed by callers and
 * live until metrics_registry_free().  Registration and series creation take the registry's
 * lock; updates (add/set/observe) are lock-free atomics, safe from any thread; writing the
 * exposition holds the lock, so a scrape never sees a half-created series. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct buf;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_LABELS   8
#define METRICS_MAX_BUCKETS  32

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    _METRICS_TYPE_MAX,
};

struct metrics_registry;
struct metrics_family;
struct metrics_series;

/* NULL on OOM. */
struct metrics_registry *metrics_registry_new(void);
/* NULL-safe; frees every family and series; returns NULL. */
struct metrics_registry *metrics_registry_free(struct metrics_registry *r);

/* Registers a family.  label_names is NULL-terminated (or NULL for none, at most
 * METRICS_MAX_LABELS); buckets (histograms only: strictly increasing upper bounds, +Inf is
 * implicit) are copied.  -EINVAL for an invalid metric/label name, reserved label "le" on a
 * histogram, bad buckets; -EEXIST when the name is taken.  *ret_family is borrowed. */
int metrics_family_register(struct metrics_registry *r, enum metrics_type type, const char *name,
                            const char *help, const char *const *label_names, const double *buckets,
                            size_t n_buckets,
                            struct metrics_family **ret_family) WARN_UNUSED_RESULT;

/* Finds or creates the series with these label values (as many as the family has label
 * names; values are copied and may be any UTF-8).  NULL on OOM.  Borrowed: cache it. */
struct metrics_series *metrics_series_get(struct metrics_family *f,
                                          const char *const *label_values);

void metrics_counter_add(struct metrics_series *s, uint64_t n);
void metrics_gauge_set(struct metrics_series *s, double v);
void metrics_gauge_add(struct metrics_series *s, double delta);
void metrics_histogram_observe(struct metrics_series *s, double v);

/* Appends the whole exposition to out.  Each series is written all-or-nothing: on -ENOBUFS
 * (out->max reached) out ends at the last complete series. */
int metrics_write_text(struct metrics_registry *r, struct buf *out) WARN_UNUSED_RESULT;

/* [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__"). */
int metrics_name_valid(const char *name);
int metrics_label_name_valid(const char *name);
/* Label value escaping: \ -> \\, " -> \", newline -> \n. */
int metrics_escape_label_value(struct buf *out, const char *value) WARN_UNUSED_RESULT;
/* HELP escaping: \ -> \\, newline -> \n. */
int metrics_escape_help(struct buf *out, const char *help) WARN_UNUSED_RESULT;
/* Prometheus float formatting: NaN, +Inf, -Inf, integers without exponent when exact. */
int metrics_format_value(struct buf *out, double v) WARN_UNUSED_RESULT;

/* ===== Text for programs that render their exposition themselves (no registry) ===== */

/* Appends "# HELP name help\n# TYPE name type\n" with the help escaped.  0, -ENOBUFS or
 * -ENOMEM; on failure out may hold part of the lines (callers that need all-or-nothing remember
 * out->len and cut back). */
int metrics_text_header(struct buf *out, const char *name, enum metrics_type type,
                        const char *help) WARN_UNUSED_RESULT;
/* Appends one sample line, name{label_names[0]="label_values[0]",...} value, with the values
 * escaped; n = 0 writes no braces.  Names are not validated: they are the caller's constants.
 * Both arrays are borrowed.  0, -ENOBUFS or -ENOMEM (out may hold part of the line). */
int metrics_text_sample(struct buf *out, const char *name, const char *const *label_names,
                        const char *const *label_values, size_t n, double v) WARN_UNUSED_RESULT;
