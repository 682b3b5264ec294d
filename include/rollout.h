/* SPDX-License-Identifier: MIT */
/* rollout.h - librollout: feature-flag model, bucketing, immutable snapshots, evaluation, and a
 * client that keeps a snapshot current from rolloutd.
 *
 * The flag model and its JSON format are defined in docs/flags.md (authoritative); this header
 * is the C side of it.  Two parts:
 *
 *  - The engine (rollout_flag_*, rollout_segment_*, rollout_snapshot_*, rollout_eval*,
 *    rollout_ctx_*): pure, no threads, no I/O.  Objects are immutable once built; flags and
 *    segments are reference counted so one parsed flag can sit in many snapshots.  Evaluation
 *    never allocates and never locks; it may run on any number of threads against one snapshot.
 *  - The client (rollout_client_*): owns one background thread that fetches the snapshot
 *    (GET /v1/snapshot), follows the SSE stream (GET /v1/stream), reconnects with backoff and
 *    swaps snapshots atomically.  Readers enter a read section (no lock, no allocation) that
 *    keeps the snapshot they see alive; docs/flags.md "Snapshot reclamation" explains the
 *    scheme.
 *
 * Errors: functions return 0 (or a count) on success and -errno on failure.  Parsers fill a
 * struct err (core/err.h) whose message names the offending field with its JSON path, e.g.
 * "field 'rules[2].op': unknown operator 'eqq'", and whose field member holds that path
 * ("rules[2].op"); line/col are set for JSON syntax errors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* librollout is built with -fvisibility=hidden: what this header declares is its interface. */
#pragma GCC visibility push(default)

struct buf;
struct err;
struct metrics_family;
struct metrics_registry;

/* ===== Limits (parsers reject more with -EINVAL or -E2BIG and a field message) ===== */

#define ROLLOUT_KEY_MAX        128 /* flag and segment keys: [A-Za-z0-9._-]{1,128} */
#define ROLLOUT_VARIANT_MAX    64  /* variant names: [A-Za-z0-9._-]{1,64} */
#define ROLLOUT_ENV_MAX        32  /* environment names: [a-z0-9_-]{1,32} */
#define ROLLOUT_ATTR_MAX       128 /* attribute names: 1..128 bytes, any UTF-8 */
#define ROLLOUT_MAX_VARIANTS   32
#define ROLLOUT_MAX_RULES      64
#define ROLLOUT_MAX_ENVS       16
#define ROLLOUT_MAX_CONDITIONS 32   /* per segment */
#define ROLLOUT_MAX_VALUES     4096 /* in / not_in lists */
#define ROLLOUT_REGEX_MAX      256  /* pattern bytes */
#define ROLLOUT_FLAG_JSON_MAX  (1u << 20)
#define ROLLOUT_CTX_JSON_MAX   (64u << 10)
#define ROLLOUT_CTX_MAX_ATTRS  256
#define ROLLOUT_SNAPSHOT_MAX   (64u << 20)

/* Bucketing: bucket = (murmur3_x86_32(salt ":" stickiness_value, seed 0) * 100000) >> 32, so a
 * bucket is one 0.001 % step in [0, 100000).  A subject is in a stage's cohort iff
 * bucket < percent * 1000. */
#define ROLLOUT_SCALE 100000u

/* ===== Enums ===== */

enum rollout_type {
    ROLLOUT_TYPE_ANY, /* only as the expected type of an evaluation: no type check */
    ROLLOUT_TYPE_BOOLEAN,
    ROLLOUT_TYPE_STRING,
    ROLLOUT_TYPE_NUMBER,
    ROLLOUT_TYPE_OBJECT, /* any JSON object or array */
    _ROLLOUT_TYPE_MAX,
};

enum rollout_stage {
    ROLLOUT_STAGE_OFF,     /* everyone gets control */
    ROLLOUT_STAGE_SHADOW,  /* control; the shadow cohort also runs candidate */
    ROLLOUT_STAGE_CANARY,  /* candidate for the canary cohort */
    ROLLOUT_STAGE_PARTIAL, /* candidate for the partial cohort (a superset of canary) */
    ROLLOUT_STAGE_FULL,    /* candidate for everyone */
    _ROLLOUT_STAGE_MAX,
};

/* OpenFeature resolution reasons. */
enum rollout_reason {
    ROLLOUT_REASON_STATIC,          /* stage full: no per-subject decision */
    ROLLOUT_REASON_TARGETING_MATCH, /* a rule pinned or excluded the subject */
    ROLLOUT_REASON_SPLIT,           /* bucketing decided (shadow, canary, partial) */
    ROLLOUT_REASON_DISABLED,        /* kill switch on, or stage off */
    ROLLOUT_REASON_ERROR,           /* see error; value is NULL: use the code default */
    _ROLLOUT_REASON_MAX,
};

/* OpenFeature error codes (ROLLOUT_ERROR_NONE on success). */
enum rollout_error {
    ROLLOUT_ERROR_NONE,
    ROLLOUT_ERROR_PROVIDER_NOT_READY, /* client without any snapshot yet */
    ROLLOUT_ERROR_FLAG_NOT_FOUND,
    ROLLOUT_ERROR_PARSE_ERROR,
    ROLLOUT_ERROR_TYPE_MISMATCH,
    ROLLOUT_ERROR_TARGETING_KEY_MISSING, /* bucketing needed a stickiness value that is absent */
    ROLLOUT_ERROR_INVALID_CONTEXT,
    ROLLOUT_ERROR_GENERAL,
    _ROLLOUT_ERROR_MAX,
};

/* "boolean", "STATIC", "FLAG_NOT_FOUND", "canary"... (the JSON/OFREP spellings); NULL when out
 * of range.  The *_from_name functions return the enum or -EINVAL. */
const char *rollout_type_name(enum rollout_type t);
const char *rollout_stage_name(enum rollout_stage s);
const char *rollout_reason_name(enum rollout_reason r);
const char *rollout_error_name(enum rollout_error e);
int rollout_stage_from_name(const char *name);

/* ===== Values ===== */

/* A variant value.  Strings are NUL-terminated and also carry their length; objects are
 * compact JSON text (json points at it, len is its length).  Borrowed from the flag that owns
 * it: valid while that flag (or a snapshot holding it) is alive. */
struct rollout_value {
    enum rollout_type type; /* never ROLLOUT_TYPE_ANY */
    bool b;                 /* BOOLEAN */
    double n;               /* NUMBER */
    const char *s;          /* STRING: the string; OBJECT: its compact JSON text */
    size_t len;             /* STRING/OBJECT: bytes, excluding the NUL */
};

/* Appends the value as JSON (numbers in shortest round-trip form).  0, -ENOBUFS, -ENOMEM. */
int rollout_value_write_json(const struct rollout_value *v, struct buf *out);

/* ===== Evaluation context =====
 *
 * A view the caller may build on the stack without allocating:
 *
 *     struct rollout_attr attrs[] = { ROLLOUT_ATTR_STRING("country", "DE"),
 *                                     ROLLOUT_ATTR_NUMBER("age", 33) };
 *     struct rollout_ctx ctx = ROLLOUT_CTX("user-42", attrs, 2);
 *
 * Attribute names are matched byte-for-byte; the first attribute with a name wins.  Conditions
 * on the attribute "targetingKey" read ctx->targeting_key. */
enum rollout_attr_type {
    ROLLOUT_ATTR_NULL,
    ROLLOUT_ATTR_BOOL,
    ROLLOUT_ATTR_NUMBER,
    ROLLOUT_ATTR_STRING,
    ROLLOUT_ATTR_OTHER, /* a JSON object or array: present, but no operator matches it */
    _ROLLOUT_ATTR_MAX,
};

struct rollout_attr {
    const char *name; /* borrowed */
    enum rollout_attr_type type;
    bool b;
    double n;
    const char *s; /* STRING: borrowed, NUL-terminated */
};
#define ROLLOUT_ATTR_STRING(name_, s_)                                              \
    {                                                                               \
        .name = (name_), .type = ROLLOUT_ATTR_STRING, .b = false, .n = 0, .s = (s_) \
    }
#define ROLLOUT_ATTR_NUMBER(name_, n_)                                                 \
    {                                                                                  \
        .name = (name_), .type = ROLLOUT_ATTR_NUMBER, .b = false, .n = (n_), .s = NULL \
    }
#define ROLLOUT_ATTR_BOOL(name_, b_)                                             \
    {                                                                            \
        .name = (name_), .type = ROLLOUT_ATTR_BOOL, .b = (b_), .n = 0, .s = NULL \
    }

struct rollout_ctx {
    const char *targeting_key; /* borrowed; NULL when absent */
    const struct rollout_attr *attrs;
    size_t n_attrs;
    void *owned; /* set by rollout_ctx_parse(): the block everything above lives in */
};
#define ROLLOUT_CTX(tk_, attrs_, n_)                                              \
    {                                                                             \
        .targeting_key = (tk_), .attrs = (attrs_), .n_attrs = (n_), .owned = NULL \
    }
#define ROLLOUT_CTX_INIT ROLLOUT_CTX(NULL, NULL, 0)

#define ROLLOUT_CTX_OFREP_BODY (1u << 0) /* the text is {"context": {...}} (OFREP request) */

/* Parses an OpenFeature evaluation context, {"targetingKey": "u-1", "plan": "pro", ...}: the
 * string "targetingKey" becomes targeting_key, every other member an attribute (strings,
 * numbers, booleans, null; objects and arrays become ROLLOUT_ATTR_OTHER).  With
 * ROLLOUT_CTX_OFREP_BODY the text is an OFREP request body {"context": {...}} (a missing
 * "context" is an empty context).  On success *ret_ctx owns one allocation (release it with
 * rollout_ctx_release()).  -EBADMSG for invalid JSON (reterr has line/col: OFREP PARSE_ERROR),
 * -EINVAL for a valid JSON document of the wrong shape, e.g. "field 'targetingKey': must be a
 * string" (OFREP INVALID_CONTEXT), -E2BIG over the limits, -ENOMEM. */
int rollout_ctx_parse(const char *json, size_t len, unsigned flags, struct rollout_ctx *ret_ctx,
                      struct err *reterr) __attribute__((warn_unused_result));
/* Frees what rollout_ctx_parse() allocated and resets ctx to ROLLOUT_CTX_INIT.  NULL-safe; a
 * caller-built view (owned == NULL) is only reset. */
void rollout_ctx_release(struct rollout_ctx *ctx);

/* ===== Flags and segments (the parsed model) ===== */

struct rollout_flag;
struct rollout_segment;

/* Parses one flag definition (docs/flags.md "Flag").  Unknown fields are errors.  On success
 * *ret_flag holds one reference.  -EBADMSG (syntax; line/col set), -EINVAL (a field is wrong;
 * the message names it: "field 'environments.production.canary': ..."), -E2BIG, -ENOMEM. */
int rollout_flag_parse(const char *json, size_t len, struct rollout_flag **ret_flag,
                       struct err *reterr) __attribute__((warn_unused_result));
/* Reference counting; thread-safe.  unref is NULL-safe and returns NULL. */
struct rollout_flag *rollout_flag_ref(struct rollout_flag *f);
struct rollout_flag *rollout_flag_unref(struct rollout_flag *f);
/* Returns a new flag (one reference) equal to f but with the given version: rolloutd assigns
 * versions, the definition stays immutable.  NULL on OOM. */
struct rollout_flag *rollout_flag_with_version(const struct rollout_flag *f, uint64_t version);
const char *rollout_flag_key(const struct rollout_flag *f); /* borrowed */
uint64_t rollout_flag_version(const struct rollout_flag *f);
enum rollout_type rollout_flag_type(const struct rollout_flag *f);
/* Appends the normalized JSON of the flag (every field explicit, defaults filled in, fields in
 * the order of docs/flags.md).  env == NULL writes every environment; otherwise only that one
 * (as snapshots do).  Parsing the output gives an equal flag.  0, -ENOBUFS, -ENOMEM. */
int rollout_flag_serialize(const struct rollout_flag *f, const char *env, struct buf *out);

/* Segments: docs/flags.md "Segment".  Same conventions as flags. */
int rollout_segment_parse(const char *json, size_t len, struct rollout_segment **ret_segment,
                          struct err *reterr) __attribute__((warn_unused_result));
struct rollout_segment *rollout_segment_ref(struct rollout_segment *s);
struct rollout_segment *rollout_segment_unref(struct rollout_segment *s);
const char *rollout_segment_key(const struct rollout_segment *s);
int rollout_segment_serialize(const struct rollout_segment *s, struct buf *out);

/* ===== Snapshots ===== */

struct rollout_snapshot;

/* Builds an immutable snapshot of one environment: takes a new reference on every flag and
 * segment (the caller keeps its own).  Fails with -EINVAL when two flags or two segments share
 * a key ("flag 'a': duplicate key"), when a rule names a segment that is not given ("flag 'a':
 * field 'rules[1].segment': unknown segment 'beta'"), or env is not a valid name.  rolloutd
 * calls this before committing a change to refuse one that would break the snapshot.
 * *ret_snapshot holds one reference. */
int rollout_snapshot_build(const char *env, uint64_t version, struct rollout_flag *const *flags,
                           size_t n_flags, struct rollout_segment *const *segments,
                           size_t n_segments, struct rollout_snapshot **ret_snapshot,
                           struct err *reterr) __attribute__((warn_unused_result));
/* Parses a snapshot document {"version": N, "env": "...", "segments": [...], "flags": [...]}
 * (docs/flags.md "Snapshot").  Unknown fields are ignored here (newer servers may add some);
 * everything else is checked as strictly as rollout_flag_parse().  Error paths are prefixed,
 * e.g. "field 'flags[3].rules[2].op': unknown operator 'eqq'". */
int rollout_snapshot_parse(const char *json, size_t len, struct rollout_snapshot **ret_snapshot,
                           struct err *reterr) __attribute__((warn_unused_result));
/* Reads a snapshot file (bootstrap / last known snapshot).  Errors as parse, or -errno of the
 * read (reterr names the file). */
int rollout_snapshot_load(const char *path, struct rollout_snapshot **ret_snapshot,
                          struct err *reterr) __attribute__((warn_unused_result));
/* Appends the snapshot document; flags and segments in key order.  0, -ENOBUFS, -ENOMEM. */
int rollout_snapshot_serialize(const struct rollout_snapshot *s, struct buf *out);
struct rollout_snapshot *rollout_snapshot_ref(struct rollout_snapshot *s);
struct rollout_snapshot *rollout_snapshot_unref(struct rollout_snapshot *s); /* NULL-safe */
uint64_t rollout_snapshot_version(const struct rollout_snapshot *s);
const char *rollout_snapshot_env(const struct rollout_snapshot *s);
size_t rollout_snapshot_n_flags(const struct rollout_snapshot *s);
/* The i-th flag in key order (borrowed), NULL past the end; for listing (e.g. OFREP bulk). */
const struct rollout_flag *rollout_snapshot_flag_at(const struct rollout_snapshot *s, size_t i);
const struct rollout_flag *rollout_snapshot_find(const struct rollout_snapshot *s, const char *key);

/* ===== Evaluation ===== */

struct rollout_result {
    const struct rollout_value *value; /* NULL on error; borrowed from the snapshot */
    const char *variant;               /* NULL on error; borrowed */
    enum rollout_reason reason;
    enum rollout_error error;
    enum rollout_stage stage; /* the flag's stage in this environment */
    bool killed;              /* the kill switch decided (reason DISABLED) */
    /* Shadow: value is control; the caller should also run candidate (shadow_value), use
     * control's output, and record the comparison (rollout_shadow_record()). */
    bool shadow;
    const struct rollout_value *shadow_value; /* candidate; NULL unless shadow */
    const char *shadow_variant;
    uint32_t bucket;       /* [0, ROLLOUT_SCALE) when bucketing ran, else UINT32_MAX */
    uint64_t flag_version; /* 0 when the flag was not found */
};

/* Evaluates flag `key` for ctx (never NULL; use &(struct rollout_ctx)ROLLOUT_CTX_INIT for an
 * empty context) against snapshot s: kill switch, then the rules in order (first match pins
 * or excludes), then the stage with bucketing.  want is the type the caller expects
 * (ROLLOUT_TYPE_ANY for none).  Always fills *ret (pointers borrowed from s) and counts the
 * evaluation in s's per flag/variant counters.  Returns 0, or -ENOENT (FLAG_NOT_FOUND),
 * -EMEDIUMTYPE (TYPE_MISMATCH), -ENOKEY (TARGETING_KEY_MISSING).  Lock-free, allocation-free,
 * thread-safe; s must stay referenced (or inside a client read section) while ret is used. */
int rollout_eval(const struct rollout_snapshot *s, const char *key, const struct rollout_ctx *ctx,
                 enum rollout_type want, struct rollout_result *ret);

/* The bucket of a stickiness value under a salt: (murmur3_x86_32(salt ":" value) * 100000) >> 32.
 * And the raw hash, exposed for the reference vectors. */
uint32_t rollout_bucket(const char *salt, const char *value);
uint32_t rollout_murmur3_32(const void *data, size_t len, uint32_t seed);

/* Evaluation counters: how often flag `key` resolved to `variant` in this snapshot (summed
 * over threads); 0 for unknown names. */
uint64_t rollout_snapshot_eval_count(const struct rollout_snapshot *s, const char *key,
                                     const char *variant);
/* Adds to family (a counter with labels {flag, variant}) what was counted in s since the last
 * export of s.  Call from one thread at a time per snapshot.  0, -ENOMEM. */
int rollout_snapshot_export_counts(struct rollout_snapshot *s, struct metrics_family *family);

/* Appends the OFREP single-flag response body for a result: on success
 * {"key","value","reason","variant","metadata":{"version","stage","shadow"[,"shadowVariant"]}},
 * on error {"key","errorCode","errorDetails"}.  *ret_http_status (may be NULL) gets 200, 400,
 * 404 or 500 as docs/flags.md "OFREP" maps them.  0, -ENOBUFS, -ENOMEM. */
int rollout_ofrep_write_result(const char *key, const struct rollout_result *res, struct buf *out,
                               int *ret_http_status);

/* ===== Shadow comparisons (Prometheus) ===== */

struct rollout_shadow_metrics;
struct rollout_shadow;

/* Registers in r (borrowed; must outlive the result):
 *   rollout_shadow_comparisons_total{flag, outcome="agree"|"disagree"}
 *   rollout_shadow_duration_seconds{flag, path="control"|"candidate"} (histogram, 1µs..10s)
 * -EEXIST when already registered in r, -ENOMEM. */
int rollout_shadow_metrics_new(struct metrics_registry *r,
                               struct rollout_shadow_metrics **ret_metrics)
        __attribute__((warn_unused_result));
struct rollout_shadow_metrics *rollout_shadow_metrics_free(struct rollout_shadow_metrics *m);
/* A per-flag recorder (created once, cached inside m; borrowed, lives as long as m).  Takes a
 * lock; call once per flag and keep the pointer.  NULL on OOM. */
struct rollout_shadow *rollout_shadow_get(struct rollout_shadow_metrics *m, const char *flag);
/* Records one comparison: whether both paths agreed and how long each took (ns).  Lock-free,
 * allocation-free, thread-safe. */
void rollout_shadow_record(struct rollout_shadow *sh, bool agree, uint64_t control_nsec,
                           uint64_t candidate_nsec);

/* ===== Client (librollout) ===== */

struct rollout_client;

struct rollout_client_options {
    const char *url;   /* rolloutd base URL ("http://127.0.0.1:8090"); NULL = no network */
    const char *env;   /* environment, e.g. "production" (required) */
    const char *token; /* bearer token; NULL = none */
    /* Snapshot file loaded at creation when it exists (bootstrap); NULL = none. */
    const char *bootstrap_path;
    /* Each snapshot received is written here atomically (last known snapshot); NULL = none.
     * Point bootstrap_path at the same file to start from the last known snapshot. */
    const char *backup_path;
    /* Registry for rollout_evaluations_total{flag,variant}, rollout_snapshot_version,
     * rollout_client_connected and rollout_client_reconnects_total; borrowed, must outlive the
     * client.  NULL = the client keeps its own (rollout_client_metrics()). */
    struct metrics_registry *metrics;
    uint64_t backoff_min_usec;     /* first reconnect delay; 0 = 100 ms */
    uint64_t backoff_max_usec;     /* cap (doubling, with jitter); 0 = 30 s */
    uint64_t idle_timeout_usec;    /* stream without a byte for this long is dead; 0 = 45 s */
    uint64_t connect_timeout_usec; /* 0 = 5 s */
};

/* Creates a client; loads bootstrap_path when set and present (a present but invalid file is
 * an error: -EINVAL etc. with reterr).  Starts no thread.  -EINVAL for bad options, -ENOMEM. */
int rollout_client_new(const struct rollout_client_options *opts, struct rollout_client **ret,
                       struct err *reterr) __attribute__((warn_unused_result));
/* Starts the background thread that fetches and follows rolloutd (needs opts->url).  -EINVAL
 * without url, -EALREADY when started, -errno from pthread_create. */
int rollout_client_start(struct rollout_client *c) __attribute__((warn_unused_result));
/* Stops the thread (interrupting any transfer), drops the snapshot.  NULL-safe; returns NULL.
 * No evaluation may be running or start on c. */
struct rollout_client *rollout_client_free(struct rollout_client *c);
/* Installs s as the current snapshot (takes over the caller's reference), e.g. for embedding
 * without rolloutd.  Waits until no reader can still see the previous one, then releases it.
 * Thread-safe. */
void rollout_client_set_snapshot(struct rollout_client *c, struct rollout_snapshot *s);
/* Waits until a snapshot with version >= min_version is installed.  0 or -ETIMEDOUT. */
int rollout_client_wait_version(struct rollout_client *c, uint64_t min_version,
                                uint64_t timeout_usec) __attribute__((warn_unused_result));

struct rollout_client_status {
    uint64_t version; /* of the current snapshot; 0 = none */
    bool has_snapshot;
    bool connected;        /* the stream is up */
    uint64_t updated_usec; /* CLOCK_MONOTONIC of the last install; 0 = never */
    unsigned connects;     /* successful stream connections so far */
    int last_error;        /* -errno of the last failed attempt; 0 if none */
};
void rollout_client_status(struct rollout_client *c, struct rollout_client_status *ret);
struct metrics_registry *rollout_client_metrics(struct rollout_client *c); /* borrowed */
/* Moves counted evaluations into rollout_evaluations_total (also done by the client thread
 * every second and at every swap).  Call before a scrape for exact figures.  Thread-safe. */
void rollout_client_flush_metrics(struct rollout_client *c);

/* Read section: between begin and end the returned snapshot (NULL when none yet) stays valid,
 * so borrowed result pointers may be used.  No lock, no allocation; sections may nest and run
 * on any thread, but must be short (a swap waits for them).  Pass the same struct to end. */
struct rollout_read {
    const struct rollout_snapshot *snapshot;
    unsigned slot; /* internal */
};
void rollout_client_read_begin(struct rollout_client *c, struct rollout_read *rd);
void rollout_client_read_end(struct rollout_client *c, struct rollout_read *rd);

/* One evaluation.  With rd (a read section of the caller's, begun on c) it evaluates against
 * rd->snapshot and ret's pointers stay valid until read_end.  With rd == NULL it runs in its
 * own read section and clears ret's pointers (value, variant, shadow_value, shadow_variant)
 * before returning: only the scalar fields are then usable.  Returns as rollout_eval(), or
 * -EAGAIN (PROVIDER_NOT_READY) while there is no snapshot. */
int rollout_client_eval(struct rollout_client *c, const char *key, const struct rollout_ctx *ctx,
                        enum rollout_type want, const struct rollout_read *rd,
                        struct rollout_result *ret);
/* Typed conveniences: the flag's value, or def on any error.  *ret_shadow (may be NULL) is set
 * when the subject is in the shadow cohort (the value returned is then control's). */
bool rollout_client_bool(struct rollout_client *c, const char *key, const struct rollout_ctx *ctx,
                         bool def, bool *ret_shadow);
double rollout_client_number(struct rollout_client *c, const char *key,
                             const struct rollout_ctx *ctx, double def, bool *ret_shadow);
/* The variant name copied into buf (size n, truncated, NUL-terminated); def on error.  Returns
 * buf or def. */
const char *rollout_client_variant(struct rollout_client *c, const char *key,
                                   const struct rollout_ctx *ctx, char *buf, size_t n,
                                   const char *def, bool *ret_shadow);

#pragma GCC visibility pop
