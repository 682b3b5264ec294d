/* SPDX-License-Identifier: MIT */
/* cfg_get.c - typed getters over the YAML tree: one node into one value, or an error that names
 * the field's path and its file:line:col. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/signal.h"
#include "core/str.h"
#include "core/strv.h"

#define SUGGEST_MAX_LEN  64u /* keys longer than this get no suggestion (bounded work) */
#define SUGGEST_MAX_DIST 2u

static int verror(const struct cfg_ctx *c, unsigned line, unsigned col, const char *fmt, va_list ap)
        PRINTF(4, 0);
static int verror(const struct cfg_ctx *c, unsigned line, unsigned col, const char *fmt, va_list ap)
{
    char msg[sizeof c->reterr->msg];

    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    err_set_file(c->reterr, c->file);
    return err_set(c->reterr, -EINVAL, line, col, "%s", msg);
}

int cfg_error(const struct cfg_ctx *c, const struct cfg_node *at, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = verror(c, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
    return r;
}

int cfg_error_at(const struct cfg_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = verror(c, line, col, fmt, ap);
    va_end(ap);
    return r;
}

static const char *path_fit(char *out, int n)
{
    if (n < 0 || (unsigned)n >= CFG_PATH_MAX)
        memcpy(out + CFG_PATH_MAX - 4, "...", 4);
    return out;
}

const char *cfg_path_join(char out[CFG_PATH_MAX], const char *base, const char *key)
{
    return path_fit(out, snprintf(out, CFG_PATH_MAX, "%s%s%s", base, base[0] ? "." : "", key));
}

const char *cfg_path_index(char out[CFG_PATH_MAX], const char *base, size_t i)
{
    return path_fit(out, snprintf(out, CFG_PATH_MAX, "%s[%zu]", base, i));
}

const char *cfg_node_describe(const struct cfg_node *n)
{
    if (cfg_node_is_null(n))
        return "nothing (null)";
    if (n->type == CFG_NODE_SCALAR)
        return "a string";
    return n->type == CFG_NODE_MAP ? "a map" : "a list";
}

static const char *key_noun(const struct cfg_ctx *c)
{
    return c->key_noun ? c->key_noun : "field";
}

int cfg_expect(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
               enum cfg_node_type t)
{
    static const char *const want[_CFG_NODE_TYPE_MAX] = {
        [CFG_NODE_SCALAR] = "a string",
        [CFG_NODE_MAP] = "a map",
        [CFG_NODE_SEQ] = "a list",
    };

    if (n->type == t && !(t == CFG_NODE_SCALAR && cfg_node_is_null(n)))
        return 0;
    return cfg_error(c, n, "%s: expected %s, got %s", path, want[t], cfg_node_describe(n));
}

int cfg_missing(const struct cfg_ctx *c, const struct cfg_node *at, const char *path,
                const char *key)
{
    char sub[CFG_PATH_MAX];

    return cfg_error(c, at, "missing required %s '%s'", key_noun(c), cfg_path_join(sub, path, key));
}

int cfg_unknown_key(const struct cfg_ctx *c, const struct cfg_node *key, const char *path,
                    const char *const *candidates)
{
    const char *best = NULL;
    unsigned best_d = UINT_MAX;
    char sub[CFG_PATH_MAX];

    for (const char *const *k = candidates; *k && key->len <= SUGGEST_MAX_LEN; k++) {
        unsigned d = str_edit_distance(key->value, *k);

        if (d < best_d) {
            best_d = d;
            best = *k;
        }
    }
    cfg_path_join(sub, path, key->value);
    if (best && best_d <= SUGGEST_MAX_DIST)
        return cfg_error(c, key, "unknown %s '%s' (did you mean '%s'?)", key_noun(c), sub, best);
    return cfg_error(c, key, "unknown %s '%s'", key_noun(c), sub);
}

int cfg_check_keys(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                   const char *const *allowed)
{
    int r = cfg_expect(c, map, path, CFG_NODE_MAP);

    if (r < 0)
        return r;
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;

        for (const char *const *k = allowed; *k && !ok; k++)
            ok = streq(*k, map->keys[i]->value);
        if (!ok)
            return cfg_unknown_key(c, map->keys[i], path, allowed);
    }
    return 0;
}

/* The checks of a string before it is copied: type, emptiness, absoluteness, then the
 * caller's own. */
static int check_str(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                     unsigned flags, bool absolute, cfg_validate_fn validate)
{
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (!(flags & CFG_F_EMPTY_OK) && n->len == 0)
        return cfg_error(c, n, "%s: must not be empty", path);
    if (absolute && n->value[0] != '/')
        return cfg_error(c, n, "%s: '%.64s' is not an absolute path", path, n->value);
    return validate ? validate(c, n, path) : 0;
}

int cfg_get_str(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, unsigned flags,
                cfg_validate_fn validate, char **ret)
{
    int r = check_str(c, n, path, flags, false, validate);

    if (r < 0)
        return r;
    *ret = xstrdup(n->value);
    return 0;
}

int cfg_get_abs_path(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                     unsigned flags, cfg_validate_fn validate, char **ret)
{
    int r = check_str(c, n, path, flags, true, validate);

    if (r < 0)
        return r;
    *ret = xstrdup(n->value);
    return 0;
}

int cfg_get_bool(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, bool *ret)
{
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_bool(n->value, ret) < 0)
        return cfg_error(c, n, "%s: invalid boolean '%.64s' (true or false)", path, n->value);
    return 0;
}

int cfg_get_uint(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                 uint64_t max, uint64_t *ret)
{
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    r = parse_uint_range(n->value, min, max, ret);
    if (r == -ERANGE)
        return cfg_error(c, n, "%s: %.64s is out of range (%llu..%llu)", path, n->value,
                         (unsigned long long)min, (unsigned long long)max);
    if (r < 0)
        return cfg_error(c, n, "%s: invalid number '%.64s' (an integer from %llu to %llu)", path,
                         n->value, (unsigned long long)min, (unsigned long long)max);
    return 0;
}

int cfg_get_duration(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                     uint64_t min_usec, uint64_t *ret)
{
    uint64_t v;
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_duration_usec(n->value, &v) < 0)
        return cfg_error(c, n, "%s: invalid duration '%.64s' (e.g. 500ms, 2s, 1m30s)", path,
                         n->value);
    if (v < min_usec) {
        char b[32];

        return cfg_error(c, n, "%s: duration '%.64s' is below the minimum of %s", path, n->value,
                         format_duration(b, sizeof b, min_usec));
    }
    *ret = v;
    return 0;
}

/* 1024 -> "1KiB", 10485760 -> "10MiB": the largest binary unit that divides n. */
static const char *format_size(char *buf, size_t len, uint64_t n)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t u = 0;

    while (u + 1 < ARRAY_SIZE(units) && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    (void)snprintf(buf, len, "%llu%s", (unsigned long long)n, units[u]);
    return buf;
}

int cfg_get_size(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                 uint64_t *ret)
{
    uint64_t v;
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_size(n->value, &v) < 0 || v < min) {
        char b[32];

        if (min == 0)
            return cfg_error(c, n, "%s: invalid size '%.32s' (e.g. 10MiB)", path, n->value);
        return cfg_error(c, n, "%s: invalid size '%.32s' (at least %s, e.g. 10MiB)", path, n->value,
                         format_size(b, sizeof b, min));
    }
    *ret = v;
    return 0;
}

int cfg_get_mode(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, unsigned *ret)
{
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_mode(n->value, ret) < 0)
        return cfg_error(c, n, "%s: invalid mode '%.32s' (an octal string such as \"0600\")", path,
                         n->value);
    return 0;
}

/* "a, b or c"; a name YAML 1.1 would read as a boolean is quoted ("no"), since it must be
 * quoted in the file too. */
static const char *format_names(char *buf, size_t len, const char *const *names)
{
    size_t n = 0, used = 0;

    while (names[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        bool b, quote = parse_bool(names[i], &b) == 0;
        int w = snprintf(buf + used, len - used, "%s%s%s%s",
                         i == 0      ? ""
                         : i + 1 < n ? ", "
                                     : " or ",
                         quote ? "\"" : "", names[i], quote ? "\"" : "");

        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

int cfg_get_enum(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 const char *what, const char *const *names, int *ret)
{
    char list[200];
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    for (int i = 0; names[i]; i++)
        if (streq(n->value, names[i])) {
            *ret = i;
            return 0;
        }
    return cfg_error(c, n, "%s: unknown %s '%.64s' (%s)", path, what, n->value,
                     format_names(list, sizeof list, names));
}

int cfg_get_strv(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                 unsigned flags, cfg_validate_fn validate, char ***ret)
{
    char **v;
    int r = cfg_expect(c, n, path, CFG_NODE_SEQ);

    if (r < 0)
        return r;
    if ((flags & CFG_F_NONEMPTY) && n->n == 0)
        return cfg_error(c, n, "%s: must not be an empty list", path);
    v = xcalloc(n->n + 1, sizeof *v);
    for (size_t i = 0; i < n->n; i++) {
        char sub[CFG_PATH_MAX];

        r = cfg_get_str(c, n->items[i], cfg_path_index(sub, path, i), flags, validate, &v[i]);
        if (r < 0) {
            strv_free(v);
            return r;
        }
    }
    *ret = v;
    return 0;
}

int cfg_get_signal(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, int *ret)
{
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (signal_from_string(n->value, ret) < 0)
        return cfg_error(c, n, "%s: unknown signal '%.32s' (" SIGNAL_STOP_NAMES ")", path,
                         n->value);
    return 0;
}

int cfg_get_port(const struct cfg_ctx *c, const struct cfg_node *n, const char *path, uint16_t *ret)
{
    uint64_t v;
    int r = cfg_expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_uint_range(n->value, 1, 65535, &v) < 0)
        return cfg_error(c, n, "%s: invalid port '%.64s' (1-65535)", path, n->value);
    *ret = (uint16_t)v;
    return 0;
}
