/* SPDX-License-Identifier: MIT */
/* rollout_int.h - internals of the flag engine shared by its files (and its tests): the parsed
 * model, compiled conditions, snapshots and the small helpers around them.
 *
 * Everything here is immutable once built, except the evaluation counters of a snapshot
 * (relaxed atomics) and its export bookkeeping (owned by whoever exports). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rollout.h"

struct buf;
struct err;

/* ===== reference counting (flags, segments, snapshots) ===== */

/* Defines name_ref() and name_unref() for a type whose member refs_ is an `_Atomic unsigned`
 * (1 when built): ref takes one more reference and returns p; unref drops one, frees the object
 * with free_fn when it was the last, and returns NULL.  Both accept NULL.  Thread-safe. */
#define ROLLOUT__DEFINE_REF_UNREF(type, name, refs_, free_fn)                        \
    type *name##_ref(type *p)                                                        \
    {                                                                                \
        if (p)                                                                       \
            atomic_fetch_add_explicit(&p->refs_, 1, memory_order_relaxed);           \
        return p;                                                                    \
    }                                                                                \
    type *name##_unref(type *p)                                                      \
    {                                                                                \
        if (p && atomic_fetch_sub_explicit(&p->refs_, 1, memory_order_acq_rel) == 1) \
            free_fn(p);                                                              \
        return NULL;                                                                 \
    }

/* ===== murmur3_x86_32, streaming ===== */

struct mm3 {
    uint32_t h;
    uint32_t tail; /* pending bytes, little-endian */
    unsigned n_tail;
    uint32_t len;
};
void rollout__mm3_init(struct mm3 *m, uint32_t seed);
void rollout__mm3_update(struct mm3 *m, const void *data, size_t len);
uint32_t rollout__mm3_final(const struct mm3 *m);
/* bucket from a hash: (h * ROLLOUT_SCALE) >> 32 */
static inline uint32_t rollout__bucket_of(uint32_t h)
{
    return (uint32_t)(((uint64_t)h * ROLLOUT_SCALE) >> 32);
}

/* ===== regex (linear-time NFA; rx.c) ===== */

struct rx;
/* Compiles pattern (len bytes).  0, or -EINVAL with a message like "unbalanced ')' at offset
 * 4" in msg (size n), -ENOMEM. */
int rollout__rx_compile(const char *pattern, size_t len, struct rx **ret, char *msg, size_t n);
struct rx *rollout__rx_free(struct rx *rx);
/* true when s (len bytes) contains a match.  No allocation; uses at most a few KiB of stack. */
bool rollout__rx_search(const struct rx *rx, const char *s, size_t len);

/* ===== semantic versions (semver.c) ===== */

struct semver {
    uint64_t major, minor, patch;
    const char *pre; /* pre-release identifiers (without '-'), not NUL-terminated */
    size_t pre_len;  /* 0 = none */
};
/* Parses "v?MAJ.MIN.PATCH[-pre][+build]" (whole string of len bytes).  pre points into s. */
bool rollout__semver_parse(const char *s, size_t len, struct semver *ret);
int rollout__semver_cmp(const struct semver *a, const struct semver *b);

/* ===== JSON output helpers (json_out.c) ===== */

int rollout__json_string(struct buf *out, const char *s, size_t len);
int rollout__json_number(struct buf *out, double n);
/* An unsigned integer in decimal. */
int rollout__json_u64(struct buf *out, uint64_t v);
/* Percent in ROLLOUT_SCALE/100 units (thousandths of a percent) as a shortest decimal. */
int rollout__json_percent(struct buf *out, uint32_t units);

/* ===== JSON input (model.c; the model parsers' helpers are in model_int.h) ===== */

/* Loads a document of at most max bytes (duplicate keys rejected) into *ret_root (a json_t *;
 * json_decref it).  -E2BIG "<what> larger than <max> bytes", -EBADMSG "invalid JSON: ..." with
 * line and column. */
int rollout__json_load(const char *json, size_t len, size_t max, const char *what, void **ret_root,
                       struct err *reterr);
/* Keys (flags, segments; variant names with max ROLLOUT_VARIANT_MAX): 1..max bytes of A-Z a-z
 * 0-9 . _ -.  Environment names: 1..ROLLOUT_ENV_MAX bytes of a-z 0-9 _ -. */
bool rollout__key_valid(const char *s, size_t max);
bool rollout__env_name_valid(const char *s);

/* The general (jansson) evaluation-context parser behind rollout_ctx_parse(), which tries a
 * fast one-pass parser first (ctx.c); the same contract.  Exposed for the differential fuzz
 * target. */
int rollout__ctx_parse_json(const char *json, size_t len, unsigned flags,
                            struct rollout_ctx *ret_ctx, struct err *reterr);

/* ===== error paths ===== */

struct jpath {
    char s[256];
    size_t len;
    bool truncated;
};
void rollout__path_init(struct jpath *p, const char *prefix);
/* push ".name" (or "name" at the root) / "[i]"; returns the previous length for pop. */
size_t rollout__path_key(struct jpath *p, const char *name);
size_t rollout__path_index(struct jpath *p, size_t i);
static inline void rollout__path_pop(struct jpath *p, size_t len)
{
    p->len = len;
    p->s[len] = '\0';
}
/* err_set(reterr, code, 0, 0, "field '<path>': <fmt>") (or just fmt at the empty root), and
 * err_set_field(reterr, <path>) (none at the root or when the path was cut short). */
int rollout__field_err(struct err *reterr, int code, const struct jpath *p, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* rollout__field_err() about member name of the object at p ("field '<path>.<name>': ..."); p
 * is as it was on return. */
int rollout__member_err(struct err *reterr, int code, struct jpath *p, const char *name,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ===== conditions ===== */

enum cond_op {
    COND_EQ,
    COND_NEQ,
    COND_IN,
    COND_NOT_IN,
    COND_LT,
    COND_LTE,
    COND_GT,
    COND_GTE,
    COND_SEMVER_EQ,
    COND_SEMVER_LT,
    COND_SEMVER_LTE,
    COND_SEMVER_GT,
    COND_SEMVER_GTE,
    COND_REGEX,
    COND_IN_SEGMENT,
    COND_NOT_IN_SEGMENT,
    _COND_OP_MAX,
};

struct scalar {
    enum rollout_attr_type type; /* BOOL, NUMBER or STRING */
    bool b;
    double n;
    char *s; /* owned */
    size_t len;
};

struct strref {
    const char *s;
    size_t len;
};

struct cond {
    enum cond_op op;
    char *attr; /* owned; NULL for segment tests */
    size_t attr_len;
    bool attr_is_tk;       /* attr == "targetingKey" */
    struct scalar value;   /* eq/neq/lt../semver text/regex pattern */
    struct scalar *values; /* in/not_in, in document order */
    size_t n_values;
    struct strref *sorted_str; /* in/not_in: the string values, sorted (len, bytes) */
    size_t n_str;
    double *sorted_num;
    size_t n_num;
    bool has_true, has_false;
    struct semver sv; /* semver ops: points into value.s */
    struct rx *rx;
    char *segment; /* owned; segment tests */
};

/* Parses one condition from obj (a json_t *, hidden as void * to keep jansson out of this
 * header).  allow_segment: flag rules may test segments, segment conditions may not.
 * allow_extra: a NULL-terminated list of other member names the caller handles. */
int rollout__cond_parse(void *obj, bool allow_segment, const char *const *allow_extra,
                        struct cond *ret, struct jpath *p, struct err *reterr);
void rollout__cond_release(struct cond *c);
int rollout__cond_write(const struct cond *c, struct buf *out); /* members, no braces */

/* What every definition (flag, segment) starts with: the members their lifecycle shares
 * (model.c builds, writes and releases it; model_int.h). */
struct def_head {
    _Atomic unsigned refs;
    char *key; /* owned */
    size_t key_len;
    char *description; /* owned; "" when the document has none */
};

struct rollout_segment {
    struct def_head head; /* first member: model.c allocates the object through it */
    struct cond *conds;
    size_t n_conds;
};

/* Parse from a json_t * (snapshot parsing) with a path prefix for errors. */
int rollout__segment_from_json(void *obj, struct jpath *p, struct rollout_segment **ret,
                               struct err *reterr);

/* ===== flags ===== */

struct variant {
    char *name; /* owned */
    size_t name_len;
    struct rollout_value value; /* s points into text (STRING/OBJECT) */
    char *text;                 /* owned */
};

struct rule {
    struct cond cond;
    int variant; /* index, or -1 = exclude */
};

struct env_state {
    char name[ROLLOUT_ENV_MAX + 1];
    enum rollout_stage stage;
    bool kill;
    uint32_t shadow, canary, partial; /* thousandths of a percent */
};

struct rollout_flag {
    struct def_head head; /* first member: model.c allocates the object through it */
    uint64_t version;
    enum rollout_type type;
    struct variant *variants;
    size_t n_variants;
    unsigned control, candidate;
    char *salt;
    char *stickiness;
    size_t stickiness_len;
    bool stickiness_is_tk;
    struct rule *rules;
    size_t n_rules;
    struct env_state *envs; /* sorted by name */
    size_t n_envs;
    struct mm3 salt_state; /* murmur3 state after hashing salt ":" */
};

int rollout__flag_from_json(void *obj, bool strict, struct jpath *p, struct rollout_flag **ret,
                            struct err *reterr);
const struct env_state *rollout__flag_env(const struct rollout_flag *f, const char *env);

/* ===== snapshots ===== */

#define ROLLOUT_SHARDS 16 /* evaluation counter shards (by thread slot) */

struct snap_flag {
    struct rollout_flag *f; /* one reference */
    uint32_t hash;          /* murmur3 of the key */
    enum rollout_stage stage;
    bool kill;
    uint32_t shadow, canary, partial;
    const struct rollout_segment **rule_segs; /* per rule: the segment it tests, or NULL */
    size_t counter_base;                      /* first of n_variants counters */
};

struct rollout_snapshot {
    _Atomic unsigned refs;
    uint64_t version;
    char env[ROLLOUT_ENV_MAX + 1];
    struct snap_flag *flags; /* sorted by key */
    size_t n_flags;
    uint32_t *table; /* open addressing: 0 = empty, else index + 1 */
    uint32_t mask;
    struct rollout_segment **segments; /* sorted by key, one reference each */
    size_t n_segments;
    size_t n_counters, stride;  /* stride: counters per shard, rounded to a cache line */
    _Atomic uint64_t *counters; /* ROLLOUT_SHARDS * stride */
    uint64_t *exported;         /* n_counters: already added to export_family */
    struct metrics_family *export_family;
    struct metrics_series **series; /* n_counters, cached for export_family */
};

const struct snap_flag *rollout__snapshot_lookup(const struct rollout_snapshot *s, const char *key);

/* A small per-thread number (0..) taken once from a global counter: shards counters and
 * read-side slots.  No allocation. */
unsigned rollout__thread_slot(void);
