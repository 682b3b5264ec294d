/* SPDX-License-Identifier: MIT */
/* cfg.h - a small YAML document tree over libyaml with file:line:col positions.
 *
 * cfg_parse() turns one YAML document into a tree of struct cfg_node: scalars keep their
 * text verbatim (no type resolution: "yes", "0600" and "5" are all strings), maps keep their
 * entries in file order, every node carries the 1-based line and column where it starts.
 * Anchors, aliases, duplicate map keys, non-scalar map keys, multiple documents, NUL bytes in
 * scalars, inputs over CFG_MAX_BYTES and nesting deeper than CFG_MAX_DEPTH are rejected.
 *
 * Ownership: the caller owns the returned root and frees it with cfg_node_free(); every
 * other node is borrowed from its root and lives as long as the root. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
