/* SPDX-License-Identifier: MIT */
/* cfg_option.c - option tables: one map of a document into one struct, key by key. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "core/strv.h"

/* Reads value into the field of opt in base. */
static int option_store(const struct cfg_ctx *c, const struct cfg_option *o,
                        const struct cfg_node *key, const struct cfg_node *v, const char *path,
                        void *base)
{
    void *field = (char *)base + o->offset;
    uint64_t u;
    int r;

    switch (o->type) {
    case CFG_STR:
    case CFG_ABS_PATH: {
        char *s;

        r = o->type == CFG_STR ? cfg_get_str(c, v, path, o->flags, o->validate, &s)
                               : cfg_get_abs_path(c, v, path, o->flags, o->validate, &s);
        if (r < 0)
            return r;
        free(*(char **)field);
        *(char **)field = s;
        return 0;
    }
    case CFG_BOOL:
        return cfg_get_bool(c, v, path, field);
    case CFG_UINT:
        r = cfg_get_uint(c, v, path, o->min, o->max ? o->max : UINT_MAX, &u);
        if (r >= 0)
            *(unsigned *)field = (unsigned)u;
        return r;
    case CFG_DURATION:
        return cfg_get_duration(c, v, path, o->min, field);
    case CFG_SIZE:
        return cfg_get_size(c, v, path, o->min, field);
    case CFG_MODE:
        return cfg_get_mode(c, v, path, field);
    case CFG_ENUM:
        return cfg_get_enum(c, v, path, o->what, o->names, field);
    case CFG_STRV: {
        char **sv;

        r = cfg_get_strv(c, v, path, o->flags, o->validate, &sv);
        if (r < 0)
            return r;
        strv_free(*(char ***)field);
        *(char ***)field = sv;
        return 0;
    }
    case CFG_SIGNAL:
        return cfg_get_signal(c, v, path, field);
    case CFG_PORT:
        return cfg_get_port(c, v, path, field);
    case CFG_CUSTOM:
        return o->parse(c, key, v, path, field);
    case _CFG_TYPE_MAX:
        break;
    }
    BUG("unknown option type");
}

/* Stores o's default through the same getter as a value from the file.  A default its own
 * type rejects is a bug in the table. */
static void option_default(const struct cfg_option *o, void *base)
{
    struct err e = ERR_INIT;
    struct cfg_ctx c = { .file = "(default)", .reterr = &e };
    struct cfg_node item = { .type = CFG_NODE_SCALAR }, seq = { .type = CFG_NODE_SEQ };
    struct cfg_node *items[] = { &item };
    struct cfg_option trusted = *o;

    item.value = xstrdup(o->default_value); /* the node's text is not const */
    item.len = strlen(item.value);
    seq.items = items;
    seq.n = 1;
    trusted.validate = NULL;
    if (option_store(&c, &trusted, NULL, o->type == CFG_STRV ? &seq : &item, o->key, base) < 0) {
        fprintf(stderr, "cfg: default of '%s' rejected: %s\n", o->key, e.msg);
        BUG("bad default in an option table");
    }
    free(item.value);
}

int cfg_apply_options(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                      const struct cfg_node *at, const struct cfg_option *opts, void *base)
{
    for (const struct cfg_option *o = opts; o->key; o++) {
        const struct cfg_node *v = cfg_map_get(map, o->key);
        char sub[CFG_PATH_MAX];
        int r;

        if (!v && (o->flags & CFG_F_REQUIRED))
            return cfg_missing(c, at ? at : map, path, o->key);
        if (!v) {
            if (o->default_value && o->type != CFG_CUSTOM)
                option_default(o, base);
            continue;
        }
        r = option_store(c, o, cfg_map_key(map, o->key), v, cfg_path_join(sub, path, o->key), base);
        if (r < 0)
            return r;
    }
    return 0;
}

int cfg_parse_section(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                      const struct cfg_node *at, const struct cfg_option *opts, void *base)
{
    int r = cfg_expect(c, map, path, CFG_NODE_MAP);

    if (r < 0)
        return r;
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_option *o = opts;

        while (o->key && !streq(o->key, map->keys[i]->value))
            o++;
        if (!o->key) {
            size_t n = 0;
            const char **keys;

            while (opts[n].key)
                n++;
            keys = xcalloc(n + 1, sizeof *keys);
            for (size_t k = 0; k < n; k++)
                keys[k] = opts[k].key;
            r = cfg_unknown_key(c, map->keys[i], path, keys);
            free(keys);
            return r;
        }
    }
    return cfg_apply_options(c, map, path, at, opts, base);
}

void cfg_set_defaults(const struct cfg_option *opts, void *base)
{
    for (const struct cfg_option *o = opts; o->key; o++)
        if (o->default_value && o->type != CFG_CUSTOM && !(o->flags & CFG_F_REQUIRED))
            option_default(o, base);
}
