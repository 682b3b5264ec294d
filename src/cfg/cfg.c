/* SPDX-License-Identifier: MIT */
#include "cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"

#define CFG_MAX_NODES 100000u /* a real stack file has a few hundred */

struct frame {
    struct cfg_node *node;
    struct cfg_node *pending_key; /* map: key read, value not yet */
    size_t cap;
};

struct builder {
    const char *name;
    struct err *reterr;
    struct cfg_node *root;
    struct frame stack[CFG_MAX_DEPTH];
    unsigned depth;
    unsigned n_nodes;
    unsigned n_docs;
};

const char *cfg_node_type_to_string(enum cfg_node_type t)
{
    switch (t) {
    case CFG_NODE_SCALAR:
        return "scalar";
    case CFG_NODE_MAP:
        return "map";
    case CFG_NODE_SEQ:
        return "list";
    default:
        return "?";
    }
}

struct cfg_node *cfg_node_free(struct cfg_node *n)
{
    if (!n)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            cfg_node_free(n->keys[i]);
        if (n->items)
            cfg_node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->value);
    free(n);
    return NULL;
}

struct cfg_node *cfg_map_key(const struct cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (streq(map->keys[i]->value, key))
            return map->keys[i];
    return NULL;
}

struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (streq(map->keys[i]->value, key))
            return map->items[i];
    return NULL;
}

bool cfg_node_is_null(const struct cfg_node *n)
{
    if (!n || n->type != CFG_NODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || streq(n->value, "~") || streq(n->value, "null") ||
           streq(n->value, "Null") || streq(n->value, "NULL");
}

static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...) PRINTF(3, 4);
static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[sizeof b->reterr->msg];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set_file(b->reterr, b->name);
    return err_set(b->reterr, -EINVAL, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s", msg);
}

struct key_ref {
    const struct cfg_node *key;
    size_t idx;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key->value, y->key->value);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Finds the duplicate key whose second occurrence comes first in the file: O(n log n). */
static int check_duplicate_keys(struct builder *b, const struct cfg_node *map)
{
    struct key_ref *refs;
    const struct cfg_node *first = NULL, *second = NULL;
    size_t second_idx = SIZE_MAX;

    if (map->n < 2)
        return 0;
    refs = xcalloc(map->n, sizeof *refs);
    for (size_t i = 0; i < map->n; i++)
        refs[i] = (struct key_ref){ .key = map->keys[i], .idx = i };
    qsort(refs, map->n, sizeof *refs, key_ref_cmp);
    for (size_t i = 1; i < map->n; i++)
        if (streq(refs[i - 1].key->value, refs[i].key->value) && refs[i].idx < second_idx) {
            second_idx = refs[i].idx;
            second = refs[i].key;
            first = refs[i - 1].key;
            /* refs[i-1] may itself be a second occurrence; walk back to the first one */
            for (size_t j = i - 1; j > 0 && streq(refs[j - 1].key->value, refs[i].key->value); j--)
                first = refs[j - 1].key;
        }
    free(refs);
    if (!second)
        return 0;
    err_set_file(b->reterr, b->name);
    return err_set(b->reterr, -EINVAL, second->line, second->col,
                   "duplicate key '%s' (lines %u and %u)", second->value, first->line,
                   second->line);
}

static struct cfg_node *node_new(enum cfg_node_type type, const yaml_mark_t *m)
{
    struct cfg_node *n = xcalloc(1, sizeof *n);

    n->type = type;
    n->line = (unsigned)m->line + 1;
    n->col = (unsigned)m->column + 1;
    return n;
}

/* Hangs n under the innermost open container (or makes it the root).  Takes ownership. */
static int attach(struct builder *b, struct cfg_node *n, const yaml_mark_t *m)
{
    struct frame *f;

    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    f = &b->stack[b->depth - 1];
    if (f->node->type == CFG_NODE_MAP && !f->pending_key) {
        if (n->type != CFG_NODE_SCALAR) {
            const char *what = n->type == CFG_NODE_MAP ? "map" : "list";

            cfg_node_free(n);
            return fail(b, m, "map keys must be strings, not a %s", what);
        }
        f->pending_key = n;
        return 0;
    }
    if (f->node->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->node->items = xrealloc(f->node->items, f->cap * sizeof *f->node->items);
        if (f->node->type == CFG_NODE_MAP)
            f->node->keys = xrealloc(f->node->keys, f->cap * sizeof *f->node->keys);
    }
    if (f->node->type == CFG_NODE_MAP) {
        f->node->keys[f->node->n] = f->pending_key;
        f->pending_key = NULL;
    }
    f->node->items[f->node->n++] = n;
    return 0;
}

static int handle_event(struct builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    struct cfg_node *n;
    int r;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->n_docs++ > 0)
            return fail(b, m, "%s", "multiple YAML documents are not supported");
        return 0;
    case YAML_ALIAS_EVENT:
        return fail(b, m, "YAML aliases are not supported (alias '*%s')",
                    (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return fail(b, m, "YAML anchors are not supported (anchor '&%s')",
                        (const char *)ev->data.scalar.anchor);
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
            return fail(b, m, "%s", "NUL byte in a string");
        if (++b->n_nodes > CFG_MAX_NODES)
            return fail(b, m, "%s", "too many nodes in the document");
        n = node_new(CFG_NODE_SCALAR, m);
        n->value = xmalloc(ev->data.scalar.length + 1);
        memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
        n->value[ev->data.scalar.length] = '\0';
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return attach(b, n, m);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        const yaml_char_t *anchor = ev->type == YAML_SEQUENCE_START_EVENT
                                            ? ev->data.sequence_start.anchor
                                            : ev->data.mapping_start.anchor;
        if (anchor)
            return fail(b, m, "YAML anchors are not supported (anchor '&%s')",
                        (const char *)anchor);
        if (b->depth >= CFG_MAX_DEPTH)
            return fail(b, m, "nesting deeper than %u levels", CFG_MAX_DEPTH);
        if (++b->n_nodes > CFG_MAX_NODES)
            return fail(b, m, "%s", "too many nodes in the document");
        n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? CFG_NODE_SEQ : CFG_NODE_MAP, m);
        r = attach(b, n, m);
        if (r < 0)
            return r;
        b->stack[b->depth++] = (struct frame){ .node = n };
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth == 0)
            BUG("unbalanced YAML events");
        b->depth--;
        if (ev->type == YAML_MAPPING_END_EVENT)
            return check_duplicate_keys(b, b->stack[b->depth].node);
        return 0;
    default:
        return 0;
    }
}

int cfg_parse(const char *name, const char *text, size_t len, struct cfg_node **ret,
              struct err *reterr)
{
    struct builder b = { .name = name, .reterr = reterr };
    yaml_parser_t parser;
    bool done = false;
    int r = 0;

    if (len > CFG_MAX_BYTES) {
        err_set_file(reterr, name);
        return err_set(reterr, -EINVAL, 0, 0, "file too large (%zu bytes, at most %u)", len,
                       CFG_MAX_BYTES);
    }
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)(len ? text : ""), len);
    while (!done) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&parser, &ev)) {
            char msg[200];

            if (parser.error == YAML_MEMORY_ERROR) {
                r = -ENOMEM;
                break;
            }
            if (parser.context)
                (void)snprintf(msg, sizeof msg, "%s %s", parser.problem ? parser.problem : "",
                               parser.context);
            else
                (void)snprintf(msg, sizeof msg, "%s",
                               parser.problem ? parser.problem : "YAML syntax error");
            r = fail(&b, &parser.problem_mark, "YAML syntax error: %s", msg);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        r = handle_event(&b, &ev);
        yaml_event_delete(&ev);
        if (r < 0)
            break;
    }
    yaml_parser_delete(&parser);
    if (r < 0) {
        /* the containers still open are reachable from the root; pending keys are not */
        for (unsigned i = 0; i < b.depth; i++)
            cfg_node_free(b.stack[i].pending_key);
        cfg_node_free(b.root);
        return r;
    }
    *ret = b.root;
    return 0;
}

int cfg_read_file(const char *path, struct buf *text, struct err *reterr)
{
    int r = file_read_all(path, text);

    if (r == -ENOBUFS) {
        err_set_file(reterr, path);
        return err_set(reterr, -EINVAL, 0, 0, "file too large (more than %u bytes)", CFG_MAX_BYTES);
    }
    if (r < 0) {
        err_set_file(reterr, path);
        return err_set(reterr, r, 0, 0, "cannot read file: %s", strerror(-r));
    }
    return 0;
}

int cfg_load_file(const char *path, struct cfg_node **ret, struct err *reterr)
{
    struct buf text = BUF_INIT(CFG_MAX_BYTES);
    int r;

    r = cfg_read_file(path, &text, reterr);
    if (r < 0)
        goto out;
    r = cfg_parse(path, text.data, text.len, ret, reterr);
out:
    buf_release(&text);
    return r;
}
