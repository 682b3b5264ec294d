/* SPDX-License-Identifier: MIT */
/* cfg.h - a small YAML document tree over libyaml with file:line:col positions, typed getters
 * and declarative option tables over it.
 *
 * cfg_parse() turns one YAML document into a tree of struct cfg_node: scalars keep their
 * text verbatim (no type resolution: "yes", "0600" and "5" are all strings), maps keep their
 * entries in file order, every node carries the 1-based line and column where it starts.
 * Anchors, aliases, duplicate map keys, non-scalar map keys, multiple documents, NUL bytes in
 * scalars, inputs over CFG_MAX_BYTES and nesting deeper than CFG_MAX_DEPTH are rejected.
 *
 * Ownership: the caller owns the returned root and frees it with cfg_node_free(); every
 * other node is borrowed from its root and lives as long as the root.
 *
 * On top of the tree: typed getters (cfg_get_*) that turn one node into
 * a value or an error "FILE:LINE:COL: PATH: message" in a struct err, and option tables
 * (struct cfg_option, nginx/pgbouncer style) that parse a whole map into a struct: unknown keys
 * (with "did you mean"), required keys, types, limits and defaults. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct buf;
struct err;

#define CFG_MAX_BYTES (1024u * 1024u) /* larger inputs are refused */
#define CFG_MAX_DEPTH 64u             /* nested maps/sequences */

enum cfg_node_type {
    CFG_NODE_SCALAR,
    CFG_NODE_MAP,
    CFG_NODE_SEQ,
    _CFG_NODE_TYPE_MAX,
};

struct cfg_node {
    enum cfg_node_type type;
    unsigned line, col; /* 1-based position where the node starts */
    char *value;        /* scalar: the text, NUL-terminated (never contains NUL); else NULL */
    size_t len;         /* scalar: strlen(value) */
    bool plain;         /* scalar: written unquoted (so `key:` alone is a plain "") */
    /* map: n entries keys[i] -> items[i] (keys are scalars, unique, in file order);
     * seq: n items[i]; scalar: n == 0. */
    struct cfg_node **keys;
    struct cfg_node **items;
    size_t n;
};

/* Parses one YAML document from text (need not be NUL-terminated).  `name` is the file name
 * put into *reterr.  On success *ret is the root, or NULL for an empty document (no content,
 * only comments).  -EINVAL with *reterr (file:line:col + message) on syntax errors and on
 * anything rejected above; nothing is written to *ret on error. */
int cfg_parse(const char *name, const char *text, size_t len, struct cfg_node **ret,
              struct err *reterr) WARN_UNUSED_RESULT;
/* Reads a whole configuration file into *text (bounded by CFG_MAX_BYTES).  On error fills
 * *reterr with the file name and a message ("file too large", "cannot read file: ..."). */
int cfg_read_file(const char *path, struct buf *text, struct err *reterr) WARN_UNUSED_RESULT;
/* Reads path (more than CFG_MAX_BYTES: -EINVAL "too large") and parses it.  I/O errors are
 * returned as -errno with *reterr naming the file and the failed call. */
int cfg_load_file(const char *path, struct cfg_node **ret, struct err *reterr) WARN_UNUSED_RESULT;
/* Frees a tree.  NULL-safe; returns NULL. */
struct cfg_node *cfg_node_free(struct cfg_node *n);

/* Map lookup by key: the value node or NULL (also NULL when map is not a map). */
struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key);
/* Map lookup returning the key node (for positions) or NULL. */
struct cfg_node *cfg_map_key(const struct cfg_node *map, const char *key);
/* true for a plain empty scalar or plain "~"/"null"/"Null"/"NULL" (YAML null). */
bool cfg_node_is_null(const struct cfg_node *n);
/* "scalar", "map", "list". */
const char *cfg_node_type_to_string(enum cfg_node_type t);

/* ===== Typed getters ===== */

#define CFG_PATH_MAX 256u /* a field path such as "services.pg1.healthcheck.port" */

/* One document being read: where errors go and how they read.  Borrowed by every call.  Nothing
 * below logs or keeps state between calls: it is as thread-safe as the struct err it writes. */
struct cfg_ctx {
    const char *file;     /* the file name put into errors */
    struct err *reterr;   /* filled on error; may be NULL */
    const char *key_noun; /* what the document calls its keys in errors; NULL reads "field" */
    void *userdata;       /* for validators and custom parsers */
};

/* Flags of getters (and of options, which pass them on). */
#define CFG_F_REQUIRED (1u << 0) /* option: absent is an error ("missing required field 'a.b'") */
#define CFG_F_EMPTY_OK (1u << 1) /* strings, list items: "" is allowed */
#define CFG_F_NONEMPTY (1u << 2) /* lists: at least one item */

/* Extra check of a scalar n (n->value) named path, after the getter's own checks.  Returns 0,
 * or the result of cfg_error() (with its own message and position). */
typedef int (*cfg_validate_fn)(const struct cfg_ctx *c, const struct cfg_node *n, const char *path);
/* Parses value (found under key, named path) into field itself (CFG_CUSTOM options: the option's
 * base + offset).  Returns 0 or the result of cfg_error(). */
typedef int (*cfg_parse_fn)(const struct cfg_ctx *c, const struct cfg_node *key,
                            const struct cfg_node *value, const char *path, void *field);

/* Fills c->reterr with c->file, the position of `at` (0:0 for NULL: the whole file) and the
 * message; returns -EINVAL.  cfg_error_at() takes the position itself. */
int cfg_error(const struct cfg_ctx *c, const struct cfg_node *at, const char *fmt, ...)
        PRINTF(3, 4);
int cfg_error_at(const struct cfg_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
        PRINTF(4, 5);
/* "base.key" ("key" when base is empty) and "base[i]" into out; a path longer than
 * CFG_PATH_MAX - 1 ends in "...".  Return out. */
const char *cfg_path_join(char out[CFG_PATH_MAX], const char *base, const char *key);
const char *cfg_path_index(char out[CFG_PATH_MAX], const char *base, size_t i);
/* "a string", "a map", "a list" or "nothing (null)", for "expected X, got Y" messages. */
const char *cfg_node_describe(const struct cfg_node *n);

/* -EINVAL "PATH: expected a string, got a list" unless n has type t (a null scalar is not a
 * string). */
int cfg_expect(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
               enum cfg_node_type t) WARN_UNUSED_RESULT;
/* -EINVAL "missing required field 'PATH.key'" at `at` (the map, or the key that names it). */
int cfg_missing(const struct cfg_ctx *c, const struct cfg_node *at, const char *path,
                const char *key);
/* -EINVAL "unknown field 'PATH.KEY' (did you mean 'x'?)" at key, suggesting the closest of
 * candidates (NULL-terminated; the first on a tie) within edit distance 2 (core
 * str_edit_distance()).  "field" is c->key_noun when set, here and in cfg_missing(). */
int cfg_unknown_key(const struct cfg_ctx *c, const struct cfg_node *key, const char *path,
                    const char *const *candidates);
/* The first key of map that is not in allowed (NULL-terminated) is reported as unknown; a node
 * that is not a map is reported as cfg_expect() does ("PATH: expected a map, got a list"). */
int cfg_check_keys(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                   const char *const *allowed) WARN_UNUSED_RESULT;

/* The getters below check n's type first, write *ret only on success, and return 0 or -EINVAL
 * with c->reterr naming path at n's position.  Strings are copies the caller frees. */

/* A non-empty string (CFG_F_EMPTY_OK: "" too); validate (may be NULL) runs last. */
int cfg_get_str(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, unsigned flags,
                cfg_validate_fn validate, char **ret) WARN_UNUSED_RESULT;
/* cfg_get_str() that must start with '/' ("'x' is not an absolute path"), checked before
 * validate. */
int cfg_get_abs_path(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                     unsigned flags, cfg_validate_fn validate, char **ret) WARN_UNUSED_RESULT;
/* true/false/yes/no/on/off/1/0. */
int cfg_get_bool(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 bool *ret) WARN_UNUSED_RESULT;
/* A decimal integer in [min, max] ("7 is out of range (1..5)"). */
int cfg_get_uint(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                 uint64_t max, uint64_t *ret) WARN_UNUSED_RESULT;
/* A duration (core parse_duration_usec(): 500ms, 2s, 1m30s) of at least min_usec. */
int cfg_get_duration(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                     uint64_t min_usec, uint64_t *ret) WARN_UNUSED_RESULT;
/* A size (core parse_size(): 10MiB, 512k) of at least min bytes. */
int cfg_get_size(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                 uint64_t *ret) WARN_UNUSED_RESULT;
/* An octal file mode ("0600"). */
int cfg_get_mode(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 unsigned *ret) WARN_UNUSED_RESULT;
/* One of names (NULL-terminated); *ret is its index.  Errors read "unknown WHAT 'x' (a, b or
 * c)", names that YAML 1.1 reads as booleans quoted ("no"). */
int cfg_get_enum(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 const char *what, const char *const *names, int *ret) WARN_UNUSED_RESULT;
/* A list of strings into a NULL-terminated vector (free with strv_free()); each item as by
 * cfg_get_str(flags, validate) named "PATH[i]"; CFG_F_NONEMPTY: at least one item. */
int cfg_get_strv(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 unsigned flags, cfg_validate_fn validate, char ***ret) WARN_UNUSED_RESULT;
/* A stop signal by name (core/signal.h: SIGTERM, SIGINT, ...). */
int cfg_get_signal(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                   int *ret) WARN_UNUSED_RESULT;
/* A TCP port, 1-65535. */
int cfg_get_port(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 uint16_t *ret) WARN_UNUSED_RESULT;

/* ===== Option tables ===== */

/* What an option's field is, and the getter that fills it. */
enum cfg_type {
    CFG_STR,      /* char *, cfg_get_str(); the old string is freed */
    CFG_ABS_PATH, /* char *, cfg_get_abs_path(); the old string is freed */
    CFG_BOOL,     /* bool */
    CFG_UINT,     /* unsigned, in [min, max]; max 0 means UINT_MAX */
    CFG_DURATION, /* uint64_t microseconds, at least min */
    CFG_SIZE,     /* uint64_t bytes, at least min */
    CFG_MODE,     /* unsigned, written in octal ("0600") */
    CFG_ENUM,     /* int (or an enum of int's size): the index of the value in names */
    CFG_STRV,     /* char **, cfg_get_strv(); the old vector is freed */
    CFG_SIGNAL,   /* int */
    CFG_PORT,     /* uint16_t */
    CFG_CUSTOM,   /* parse(field = base + offset): nested maps and the like */
    _CFG_TYPE_MAX,
};

/* One key of a map.  Tables are arrays ending with { .key = NULL }; their order is the order in
 * which values are checked (and suggestions preferred). */
struct cfg_option {
    const char *key;
    enum cfg_type type;
    size_t offset;             /* offsetof(struct ..., field) */
    const char *default_value; /* absent key: stored as if the file said this (a CFG_STRV
                                  default is a one-item list; validators do not run); NULL:
                                  the field is left as it is */
    uint64_t min, max;         /* limits, see enum cfg_type */
    unsigned flags;            /* CFG_F_* */
    const char *what;          /* CFG_ENUM: "restart policy" in "unknown restart policy 'x'" */
    const char *const *names;  /* CFG_ENUM: NULL-terminated */
    cfg_validate_fn validate;  /* CFG_STR, CFG_ABS_PATH, CFG_STRV items: extra check */
    cfg_parse_fn parse;        /* CFG_CUSTOM */
};

/* The start of a table entry: { CFG_OPT(struct x, "key", CFG_STR, field), .default_value = ... }.
 */
#define CFG_OPT(struct_, key_, type_, field_) \
    .key = (key_), .type = (type_), .offset = offsetof(struct_, field_)

/* Parses map (named path; expected to be a map) into the struct at base: a key not in opts is
 * an error with a suggestion, then each option in table order is read (or defaulted, or
 * reported missing at `at`, which may be NULL for the map itself).  -EINVAL with c->reterr on
 * the first error; fields already stored stay in base (the caller frees base either way). */
int cfg_parse_section(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                      const struct cfg_node *at, const struct cfg_option *opts,
                      void *base) WARN_UNUSED_RESULT;
/* cfg_parse_section() without the map and unknown-key checks: for a map whose keys the caller
 * has checked itself (one map read through several tables). */
int cfg_apply_options(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                      const struct cfg_node *at, const struct cfg_option *opts,
                      void *base) WARN_UNUSED_RESULT;
/* Stores every default of opts into base, as for a section with no keys (required options and
 * CFG_CUSTOM ones are left alone).  Aborts (BUG) on a default its own type rejects. */
void cfg_set_defaults(const struct cfg_option *opts, void *base);
