/* SPDX-License-Identifier: MIT */
/* stack_parse.c - strict stack file parser (docs/stack-file.md): every error names the
 * field's path and file:line:col; nothing is accepted that the document does not describe. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/signal.h"
#include "core/str.h"
#include "core/strv.h"
#include "stack.h"
#include "stack_int.h"

#define PATH_LEN         256
#define SERVICE_NAME_MAX 48
#define SECRET_NAME_MAX  64

struct pctx {
    const char *file;
    struct err *reterr;
    struct stack *s;
};

static int perr(struct pctx *c, const struct cfg_node *n, const char *fmt, ...) PRINTF(3, 4);
static int perr(struct pctx *c, const struct cfg_node *n, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set_file(c->reterr, c->file);
    return err_set(c->reterr, -EINVAL, n ? n->line : 0, n ? n->col : 0, "%s", msg);
}

static const char *type_name(const struct cfg_node *n)
{
    if (cfg_node_is_null(n))
        return "nothing (null)";
    if (n->type == CFG_NODE_SCALAR)
        return "a string";
    return n->type == CFG_NODE_MAP ? "a map" : "a list";
}

static int expect(struct pctx *c, const struct cfg_node *n, const char *path, enum cfg_node_type t)
{
    static const char *const want[] = { "a string", "a map", "a list" };

    if (n->type == t && !(t == CFG_NODE_SCALAR && cfg_node_is_null(n)))
        return 0;
    return perr(c, n, "%s: expected %s, got %s", path, want[t], type_name(n));
}

/* Appends ".key" (or "[i]" when key is NULL) to a path; overlong paths end in "...". */
static void path_sub(char *out, const char *base, const char *key, size_t idx)
{
    int n;

    if (key)
        n = snprintf(out, PATH_LEN, "%s%s%s", base, base[0] ? "." : "", key);
    else
        n = snprintf(out, PATH_LEN, "%s[%zu]", base, idx);
    if (n < 0 || n >= PATH_LEN)
        memcpy(out + PATH_LEN - 4, "...", 4);
}

/* "unknown field 'path.key'", suggesting the closest of allowed[] (NULL-terminated). */
static int unknown_field(struct pctx *c, const struct cfg_node *key, const char *path,
                         const char *const *allowed)
{
    const char *best = NULL;
    unsigned best_d = UINT_MAX;
    char sub[PATH_LEN];

    for (const char *const *a = allowed; *a && key->len <= 64; a++) {
        unsigned d = str_edit_distance(key->value, *a);

        if (d < best_d) {
            best_d = d;
            best = *a;
        }
    }
    path_sub(sub, path, key->value, 0);
    if (best && best_d <= 2)
        return perr(c, key, "unknown field '%s' (did you mean '%s'?)", sub, best);
    return perr(c, key, "unknown field '%s'", sub);
}

/* Rejects keys of map that are not in allowed[] (NULL-terminated). */
static int check_keys(struct pctx *c, const struct cfg_node *map, const char *path,
                      const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;

        for (const char *const *a = allowed; *a && !ok; a++)
            ok = streq(*a, map->keys[i]->value);
        if (!ok)
            return unknown_field(c, map->keys[i], path, allowed);
    }
    return 0;
}

static int missing(struct pctx *c, const struct cfg_node *at, const char *path, const char *key)
{
    char sub[PATH_LEN];

    path_sub(sub, path, key, 0);
    return perr(c, at, "missing required field '%s'", sub);
}

static bool name_valid(const char *s, size_t max, bool upper)
{
    size_t n = 0;

    for (const char *p = s; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              (upper && *p >= 'A' && *p <= 'Z')))
            return false;
    return n > 0 && n <= max;
}

/* A string with references validated; quoted "" is allowed when allow_empty. */
static int get_str(struct pctx *c, const struct cfg_node *n, const char *path, bool allow_empty,
                   char **ret)
{
    struct err e = ERR_INIT;
    int r;

    r = expect(c, n, path, CFG_NODE_SCALAR);
    if (r < 0)
        return r;
    if (!allow_empty && n->len == 0)
        return perr(c, n, "%s: must not be empty", path);
    r = stack__expand(c->s, NULL, n->value, NULL, &e);
    if (r < 0)
        return perr(c, n, "%s: %s", path, e.msg);
    *ret = xstrdup(n->value);
    return 0;
}

/* A string without references that must match [a-z0-9_-] (plus A-Z when upper). */
static int get_name(struct pctx *c, const struct cfg_node *n, const char *path, size_t max,
                    bool upper, char **ret)
{
    int r = expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (!name_valid(n->value, max, upper))
        return perr(c, n, "%s: invalid name '%.64s' (use %s, at most %zu characters)", path,
                    n->value, upper ? "[A-Za-z0-9_-]" : "[a-z0-9_-]", max);
    *ret = xstrdup(n->value);
    return 0;
}

/* Paths that must end up absolute: "/..." or starting with ${state_dir} / ${stack_dir}. */
static int get_abs_path(struct pctx *c, const struct cfg_node *n, const char *path, char **ret)
{
    int r = get_str(c, n, path, false, ret);

    if (r < 0)
        return r;
    if ((*ret)[0] != '/' && !str_startswith(*ret, "${state_dir}") &&
        !str_startswith(*ret, "${stack_dir}") && !str_startswith(*ret, "${tools_dir}")) {
        freep(ret);
        return perr(c, n, "%s: '%.64s' is not an absolute path (start it with / or ${state_dir})",
                    path, n->value);
    }
    return 0;
}

static int get_duration(struct pctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                        uint64_t *ret)
{
    uint64_t v;
    int r = expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_duration_usec(n->value, &v) < 0)
        return perr(c, n, "%s: invalid duration '%.64s' (e.g. 500ms, 2s, 1m30s)", path, n->value);
    if (v < min) {
        char b[32];

        return perr(c, n, "%s: duration '%.64s' is below the minimum of %s", path, n->value,
                    format_duration(b, sizeof b, min));
    }
    *ret = v;
    return 0;
}

static int get_uint(struct pctx *c, const struct cfg_node *n, const char *path, uint64_t min,
                    uint64_t max, uint64_t *ret)
{
    int r = expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    r = parse_uint_range(n->value, min, max, ret);
    if (r == -ERANGE)
        return perr(c, n, "%s: %.64s is out of range (%llu..%llu)", path, n->value,
                    (unsigned long long)min, (unsigned long long)max);
    if (r < 0)
        return perr(c, n, "%s: invalid number '%.64s'", path, n->value);
    return 0;
}

static int get_port(struct pctx *c, const struct cfg_node *n, const char *path, uint16_t *ret)
{
    uint64_t v;
    int r = expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_uint_range(n->value, 1, 65535, &v) < 0)
        return perr(c, n, "%s: invalid port '%.64s' (1-65535)", path, n->value);
    *ret = (uint16_t)v;
    return 0;
}

static int get_bool(struct pctx *c, const struct cfg_node *n, const char *path, bool *ret)
{
    int r = expect(c, n, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_bool(n->value, ret) < 0)
        return perr(c, n, "%s: invalid boolean '%.64s' (true or false)", path, n->value);
    return 0;
}

/* A list of strings (references validated) into a NULL-terminated vector. */
static int get_strv(struct pctx *c, const struct cfg_node *n, const char *path, bool nonempty,
                    char ***ret)
{
    char **v;
    int r = expect(c, n, path, CFG_NODE_SEQ);

    if (r < 0)
        return r;
    if (nonempty && n->n == 0)
        return perr(c, n, "%s: must not be an empty list", path);
    v = xcalloc(n->n + 1, sizeof *v);
    for (size_t i = 0; i < n->n; i++) {
        char sub[PATH_LEN];

        path_sub(sub, path, NULL, i);
        r = get_str(c, n->items[i], sub, true, &v[i]);
        if (r < 0) {
            strv_free(v);
            return r;
        }
    }
    *ret = v;
    return 0;
}

/* --- probes -------------------------------------------------------------------------------- */

#define PT(t_) (1u << (t_))
#define PT_NET (PT(PROBE_TCP) | PT(PROBE_HTTP) | PT(PROBE_PG) | PT(PROBE_REDIS))
#define PT_ALL (PT_NET | PT(PROBE_EXEC))

static const struct {
    const char *key;
    unsigned types;
} probe_keys[] = {
    { "type", PT_ALL },
    { "host", PT_NET },
    { "port", PT_NET },
    { "path", PT(PROBE_HTTP) },
    { "method", PT(PROBE_HTTP) },
    { "expect_status", PT(PROBE_HTTP) },
    { "user", PT(PROBE_PG) | PT(PROBE_REDIS) },
    { "password", PT(PROBE_PG) | PT(PROBE_REDIS) },
    { "dbname", PT(PROBE_PG) },
    { "query", PT(PROBE_PG) },
    { "command", PT(PROBE_REDIS) | PT(PROBE_EXEC) },
};

static const char *const probe_type_names[_PROBE_TYPE_MAX] = {
    [PROBE_TCP] = "tcp",     [PROBE_HTTP] = "http", [PROBE_PG] = "pg",
    [PROBE_REDIS] = "redis", [PROBE_EXEC] = "exec",
};

static const char *const health_timing_keys[] = { "interval", "timeout", "retries",
                                                  "start_period" };

static bool is_timing_key(const char *k)
{
    for (size_t i = 0; i < ARRAY_SIZE(health_timing_keys); i++)
        if (streq(k, health_timing_keys[i]))
            return true;
    return false;
}

static int probe_field(struct pctx *c, const struct cfg_node *v, const char *key, const char *path,
                       struct probe_spec *p)
{
    if (streq(key, "host"))
        return get_str(c, v, path, false, &p->host);
    if (streq(key, "port"))
        return get_port(c, v, path, &p->port);
    if (streq(key, "path"))
        return get_str(c, v, path, false, &p->path);
    if (streq(key, "method")) {
        int r = expect(c, v, path, CFG_NODE_SCALAR);

        if (r < 0)
            return r;
        for (const char *q = v->value; *q; q++)
            if (*q < 'A' || *q > 'Z')
                return perr(c, v, "%s: invalid HTTP method '%.32s' (e.g. GET, HEAD)", path,
                            v->value);
        if (v->len == 0)
            return perr(c, v, "%s: must not be empty", path);
        p->method = xstrdup(v->value);
        return 0;
    }
    if (streq(key, "expect_status")) {
        uint64_t st;
        int r = get_uint(c, v, path, 100, 599, &st);

        if (r < 0)
            return r;
        p->expect_status = (unsigned)st;
        return 0;
    }
    if (streq(key, "user"))
        return get_str(c, v, path, false, &p->user);
    if (streq(key, "password"))
        return get_str(c, v, path, true, &p->password);
    if (streq(key, "dbname"))
        return get_str(c, v, path, false, &p->dbname);
    if (streq(key, "query"))
        return get_str(c, v, path, false, &p->query);
    if (streq(key, "command"))
        return get_strv(c, v, path, true, p->type == PROBE_EXEC ? &p->argv : &p->command);
    BUG("unhandled probe key");
}

/* Parses a probe map; with `health` set the timing keys are accepted too (and handled by the
 * caller).  Fills defaults from docs/stack-file.md. */
static int parse_probe(struct pctx *c, const struct cfg_node *map, const char *path,
                       const struct cfg_node *at, bool health, struct probe_spec *ret)
{
    struct probe_spec p = PROBE_SPEC_INIT;
    const struct cfg_node *tn;
    bool type_ok = false;
    char sub[PATH_LEN];
    int r;

    r = expect(c, map, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    tn = cfg_map_get(map, "type");
    if (!tn)
        return missing(c, at, path, "type");
    path_sub(sub, path, "type", 0);
    r = expect(c, tn, sub, CFG_NODE_SCALAR);
    if (r < 0)
        return r;
    for (int t = 0; t < _PROBE_TYPE_MAX; t++)
        if (streq(tn->value, probe_type_names[t])) {
            p.type = (enum probe_type)t;
            type_ok = true;
        }
    if (!type_ok)
        return perr(c, tn, "%s: unknown probe type '%.32s' (tcp, http, pg, redis or exec)", sub,
                    tn->value);

    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->keys[i]->value;
        bool known = false;

        path_sub(sub, path, key, 0);
        if (health && is_timing_key(key))
            continue;
        for (size_t k = 0; k < ARRAY_SIZE(probe_keys); k++) {
            if (!streq(key, probe_keys[k].key))
                continue;
            known = true;
            if (!(probe_keys[k].types & PT(p.type))) {
                r = perr(c, map->keys[i], "field '%s' is not valid for probe type '%s'", sub,
                         probe_type_names[p.type]);
                goto fail;
            }
        }
        if (!known) {
            static const char *const all[] = {
                "type",    "host",     "port",         "path",  "method",  "expect_status",
                "user",    "password", "dbname",       "query", "command", "interval",
                "timeout", "retries",  "start_period", NULL
            };
            /* status_probe has no timing keys: cut the list before "interval" */
            static const char *const probe_only[] = { "type",  "host",     "port",
                                                      "path",  "method",   "expect_status",
                                                      "user",  "password", "dbname",
                                                      "query", "command",  NULL };
            r = unknown_field(c, map->keys[i], path, health ? all : probe_only);
            goto fail;
        }
        if (streq(key, "type"))
            continue;
        r = probe_field(c, map->items[i], key, sub, &p);
        if (r < 0)
            goto fail;
    }

    if (p.type != PROBE_EXEC && p.port == 0) {
        r = missing(c, at, path, "port");
        goto fail;
    }
    if (p.type == PROBE_EXEC && !p.argv) {
        r = missing(c, at, path, "command");
        goto fail;
    }
    if (p.type != PROBE_EXEC && !p.host)
        p.host = xstrdup("127.0.0.1");
    if (p.type == PROBE_HTTP) {
        if (!p.path)
            p.path = xstrdup("/");
        if (!p.method)
            p.method = xstrdup("GET");
    }
    if (p.type == PROBE_PG) {
        if (!p.user)
            p.user = xstrdup("postgres");
        if (!p.dbname)
            p.dbname = xstrdup("postgres");
        if (!p.query)
            p.query = xstrdup("SELECT 1");
    }
    if (p.type == PROBE_REDIS && !p.command) {
        p.command = xcalloc(2, sizeof *p.command);
        p.command[0] = xstrdup("PING");
    }
    *ret = p;
    return 0;
fail:
    probe_spec_release(&p);
    return r;
}

static int parse_health(struct pctx *c, const struct cfg_node *map, const char *path,
                        const struct cfg_node *at, struct stack_health *h)
{
    char sub[PATH_LEN];
    const struct cfg_node *v;
    uint64_t n;
    int r;

    r = parse_probe(c, map, path, at, true, &h->probe);
    if (r < 0)
        return r;
    h->present = true;
    if ((v = cfg_map_get(map, "interval"))) {
        path_sub(sub, path, "interval", 0);
        r = get_duration(c, v, sub, 1000, &h->interval_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(map, "timeout"))) {
        path_sub(sub, path, "timeout", 0);
        r = get_duration(c, v, sub, 1000, &h->timeout_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(map, "start_period"))) {
        path_sub(sub, path, "start_period", 0);
        r = get_duration(c, v, sub, 0, &h->start_period_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(map, "retries"))) {
        path_sub(sub, path, "retries", 0);
        r = get_uint(c, v, sub, 1, 1000, &n);
        if (r < 0)
            return r;
        h->retries = (unsigned)n;
    }
    return 0;
}

/* lock: {type: etcd, host, port, key, value} */
static int parse_lock(struct pctx *c, const struct cfg_node *m, const char *path,
                      const struct cfg_node *at, struct stack_lock *l)
{
    static const char *const keys[] = { "type", "host", "port", "key", "value", NULL };
    char sub[PATH_LEN];
    const struct cfg_node *v;
    int r;

    r = expect(c, m, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    r = check_keys(c, m, path, keys);
    if (r < 0)
        return r;
    if ((v = cfg_map_get(m, "type"))) {
        path_sub(sub, path, "type", 0);
        r = expect(c, v, sub, CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        if (!streq(v->value, "etcd"))
            return perr(c, v, "%s: unknown lock type '%.32s' (etcd)", sub, v->value);
    }
    for (const char *const *k = keys + 2; *k; k++)
        if (!cfg_map_get(m, *k))
            return missing(c, at, path, *k);
    path_sub(sub, path, "port", 0);
    r = get_port(c, cfg_map_get(m, "port"), sub, &l->port);
    if (r < 0)
        return r;
    path_sub(sub, path, "key", 0);
    r = get_str(c, cfg_map_get(m, "key"), sub, false, &l->key);
    if (r < 0)
        return r;
    path_sub(sub, path, "value", 0);
    r = get_str(c, cfg_map_get(m, "value"), sub, false, &l->value);
    if (r < 0)
        return r;
    if ((v = cfg_map_get(m, "host"))) {
        path_sub(sub, path, "host", 0);
        r = get_str(c, v, sub, false, &l->host);
        if (r < 0)
            return r;
    } else {
        l->host = xstrdup("127.0.0.1");
    }
    l->present = true;
    return 0;
}

/* --- services ------------------------------------------------------------------------------ */

static int parse_environment(struct pctx *c, const struct cfg_node *n, const char *path,
                             char ***ret)
{
    char **env;
    size_t k = 0;
    int r = 0;

    if (n->type != CFG_NODE_MAP && n->type != CFG_NODE_SEQ)
        return perr(c, n, "%s: expected a map (KEY: value) or a list (\"KEY=value\"), got %s", path,
                    type_name(n));
    env = xcalloc(n->n + 1, sizeof *env);
    for (size_t i = 0; i < n->n; i++) {
        const struct cfg_node *at = n->type == CFG_NODE_MAP ? n->keys[i] : n->items[i];
        char sub[PATH_LEN], *val = NULL;
        const char *key, *eq;
        size_t klen;
        bool key_ok;

        if (n->type == CFG_NODE_MAP) {
            key = n->keys[i]->value;
            klen = n->keys[i]->len;
            path_sub(sub, path, key, 0);
            r = get_str(c, n->items[i], sub, true, &val);
            if (r < 0)
                goto fail;
        } else {
            path_sub(sub, path, NULL, i);
            r = get_str(c, n->items[i], sub, false, &val);
            if (r < 0)
                goto fail;
            key = val;
            eq = strchr(val, '=');
            if (!eq) {
                free(val);
                r = perr(c, at, "%s: expected \"KEY=value\", got '%.64s'", sub, n->items[i]->value);
                goto fail;
            }
            klen = (size_t)(eq - val);
        }
        key_ok = klen > 0 && !(key[0] >= '0' && key[0] <= '9');
        for (size_t j = 0; j < klen && key_ok; j++)
            key_ok = (key[j] >= 'A' && key[j] <= 'Z') || (key[j] >= 'a' && key[j] <= 'z') ||
                     (key[j] >= '0' && key[j] <= '9') || key[j] == '_';
        if (key_ok && str_startswith(key, "${"))
            key_ok = false;
        if (!key_ok) {
            r = perr(c, at, "%s: invalid environment variable name '%.*s'", sub,
                     (int)(klen > 64 ? 64 : klen), key);
            free(val);
            goto fail;
        }
        for (size_t j = 0; j < k; j++)
            if (strncmp(env[j], key, klen) == 0 && env[j][klen] == '=') {
                r = perr(c, at, "%s: duplicate environment variable '%.*s'", sub,
                         (int)(klen > 64 ? 64 : klen), key);
                free(val);
                goto fail;
            }
        if (n->type == CFG_NODE_MAP) {
            env[k++] = xasprintf("%s=%s", key, val);
            free(val);
        } else {
            env[k++] = val;
        }
    }
    *ret = env;
    return 0;
fail:
    strv_free(env);
    return r;
}

static int parse_files(struct pctx *c, const struct cfg_node *n, const char *path,
                       struct stack_service *svc)
{
    static const char *const keys[] = { "template", "path", "mode", "overwrite", "expand", NULL };
    int r = expect(c, n, path, CFG_NODE_SEQ);

    if (r < 0)
        return r;
    svc->files = xcalloc(n->n ? n->n : 1, sizeof *svc->files);
    for (size_t i = 0; i < n->n; i++) {
        const struct cfg_node *m = n->items[i], *v;
        struct stack_file *f = &svc->files[i];
        char base[PATH_LEN], sub[PATH_LEN], *tmpl = NULL;

        svc->n_files = i + 1;
        f->mode = 0644;
        f->overwrite = true;
        f->expand = true;
        path_sub(base, path, NULL, i);
        r = expect(c, m, base, CFG_NODE_MAP);
        if (r < 0)
            return r;
        r = check_keys(c, m, base, keys);
        if (r < 0)
            return r;
        if (!(v = cfg_map_get(m, "template")))
            return missing(c, m, base, "template");
        path_sub(sub, base, "template", 0);
        r = get_str(c, v, sub, false, &tmpl);
        if (r < 0)
            return r;
        if (tmpl[0] == '/' || str_startswith(tmpl, "${"))
            f->template_path = tmpl;
        else {
            f->template_path = xasprintf("%s/%s", c->s->dir, tmpl);
            free(tmpl);
        }
        if (!(v = cfg_map_get(m, "path")))
            return missing(c, m, base, "path");
        path_sub(sub, base, "path", 0);
        r = get_abs_path(c, v, sub, &f->path);
        if (r < 0)
            return r;
        if ((v = cfg_map_get(m, "mode"))) {
            path_sub(sub, base, "mode", 0);
            r = expect(c, v, sub, CFG_NODE_SCALAR);
            if (r < 0)
                return r;
            if (parse_mode(v->value, &f->mode) < 0)
                return perr(c, v, "%s: invalid mode '%.32s' (an octal string such as \"0600\")",
                            sub, v->value);
        }
        if ((v = cfg_map_get(m, "overwrite"))) {
            path_sub(sub, base, "overwrite", 0);
            r = get_bool(c, v, sub, &f->overwrite);
            if (r < 0)
                return r;
        }
        if ((v = cfg_map_get(m, "expand"))) {
            path_sub(sub, base, "expand", 0);
            r = get_bool(c, v, sub, &f->expand);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int parse_dep_cond(struct pctx *c, const struct cfg_node *v, const char *path,
                          enum stack_dep_cond *ret)
{
    int r = expect(c, v, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    for (int i = 0; i < _STACK_DEP_COND_MAX; i++)
        if (streq(v->value, stack_dep_cond_to_string((enum stack_dep_cond)i))) {
            *ret = (enum stack_dep_cond)i;
            return 0;
        }
    return perr(c, v,
                "%s: unknown condition '%.64s' (service_started, service_healthy or "
                "service_completed_successfully)",
                path, v->value);
}

static int parse_depends(struct pctx *c, const struct cfg_node *n, const char *path,
                         struct stack_service *svc)
{
    int r;

    if (n->type != CFG_NODE_MAP && n->type != CFG_NODE_SEQ)
        return perr(c, n, "%s: expected a list of service names or a map, got %s", path,
                    type_name(n));
    svc->deps = xcalloc(n->n ? n->n : 1, sizeof *svc->deps);
    for (size_t i = 0; i < n->n; i++) {
        const struct cfg_node *name = n->type == CFG_NODE_MAP ? n->keys[i] : n->items[i];
        struct stack_dep *d = &svc->deps[i];
        char sub[PATH_LEN];

        path_sub(sub, path, NULL, i);
        r = get_name(c, name, sub, SERVICE_NAME_MAX, false, &d->service);
        if (r < 0)
            return r;
        svc->n_deps = i + 1;
        d->line = name->line;
        d->col = name->col;
        d->cond = STACK_DEP_STARTED;
        for (size_t j = 0; j < i; j++)
            if (streq(svc->deps[j].service, d->service))
                return perr(c, name, "%s: '%s' is listed twice", path, d->service);
        if (n->type == CFG_NODE_MAP) {
            static const char *const keys[] = { "condition", NULL };
            const struct cfg_node *m = n->items[i], *v;

            path_sub(sub, path, d->service, 0);
            r = expect(c, m, sub, CFG_NODE_MAP);
            if (r < 0)
                return r;
            r = check_keys(c, m, sub, keys);
            if (r < 0)
                return r;
            if ((v = cfg_map_get(m, "condition"))) {
                char csub[PATH_LEN];

                path_sub(csub, sub, "condition", 0);
                r = parse_dep_cond(c, v, csub, &d->cond);
                if (r < 0)
                    return r;
            }
        }
    }
    return 0;
}

static int parse_backoff(struct pctx *c, const struct cfg_node *m, const char *path,
                         struct stack_service *svc)
{
    static const char *const keys[] = { "initial", "max", "reset_after", "max_restarts", NULL };
    const struct cfg_node *v;
    char sub[PATH_LEN];
    uint64_t n;
    int r;

    r = expect(c, m, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    r = check_keys(c, m, path, keys);
    if (r < 0)
        return r;
    if ((v = cfg_map_get(m, "initial"))) {
        path_sub(sub, path, "initial", 0);
        r = get_duration(c, v, sub, USEC_PER_SEC, &svc->backoff_initial_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "max"))) {
        path_sub(sub, path, "max", 0);
        r = get_duration(c, v, sub, USEC_PER_SEC, &svc->backoff_max_usec);
        if (r < 0)
            return r;
    }
    if (svc->backoff_max_usec < svc->backoff_initial_usec)
        return perr(c, v ? v : m, "%s.max: must not be below %s.initial", path, path);
    if ((v = cfg_map_get(m, "reset_after"))) {
        path_sub(sub, path, "reset_after", 0);
        r = get_duration(c, v, sub, 0, &svc->backoff_reset_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "max_restarts"))) {
        path_sub(sub, path, "max_restarts", 0);
        r = get_uint(c, v, sub, 0, UINT_MAX, &n);
        if (r < 0)
            return r;
        svc->max_restarts = (unsigned)n;
    }
    return 0;
}

static int parse_signal(struct pctx *c, const struct cfg_node *v, const char *path, int *ret)
{
    int r = expect(c, v, path, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (signal_from_string(v->value, ret) == 0)
        return 0;
    return perr(c, v, "%s: unknown signal '%.32s' (" SIGNAL_STOP_NAMES ")", path, v->value);
}

static int parse_service(struct pctx *c, const struct cfg_node *key, const struct cfg_node *m,
                         struct stack_service *svc)
{
    static const char *const keys[] = {
        "kind",        "package",         "command",     "user",
        "working_dir", "environment",     "ports",       "dirs",
        "files",       "depends_on",      "healthcheck", "status_probe",
        "restart",     "restart_backoff", "stop_signal", "stop_grace_period",
        "liveness",    "freeze_after",    "lock",        NULL,
    };
    static const char *const kinds[] = { "etcd",  "patroni",  "haproxy", "pgbouncer",
                                         "redis", "sentinel", "generic" };
    char path[PATH_LEN], sub[PATH_LEN];
    const struct cfg_node *v;
    int r;

    svc->line = key->line;
    svc->restart = STACK_RESTART_ON_FAILURE;
    svc->backoff_initial_usec = USEC_PER_SEC;
    svc->backoff_max_usec = 30 * USEC_PER_SEC;
    svc->backoff_reset_usec = 60 * USEC_PER_SEC;
    svc->stop_signal = SIGTERM;
    svc->stop_grace_usec = 10 * USEC_PER_SEC;
    svc->health.interval_usec = 2 * USEC_PER_SEC;
    svc->health.timeout_usec = USEC_PER_SEC;
    svc->health.retries = 3;
    svc->liveness.interval_usec = 2 * USEC_PER_SEC;
    svc->liveness.timeout_usec = USEC_PER_SEC;
    svc->liveness.retries = 3;
    svc->env = xcalloc(1, sizeof *svc->env);
    svc->dirs = xcalloc(1, sizeof *svc->dirs);

    path_sub(path, "services", key->value, 0);
    if (!name_valid(key->value, SERVICE_NAME_MAX, false))
        return perr(c, key,
                    "services: invalid service name '%.64s' (use [a-z0-9_-], at most %d "
                    "characters)",
                    key->value, SERVICE_NAME_MAX);
    svc->name = xstrdup(key->value);
    r = expect(c, m, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    r = check_keys(c, m, path, keys);
    if (r < 0)
        return r;

    if ((v = cfg_map_get(m, "kind"))) {
        bool ok = false;

        path_sub(sub, path, "kind", 0);
        r = expect(c, v, sub, CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
            ok = ok || streq(v->value, kinds[i]);
        if (!ok)
            return perr(c, v,
                        "%s: unknown kind '%.32s' (etcd, patroni, haproxy, pgbouncer, redis, "
                        "sentinel or generic)",
                        sub, v->value);
        if (!streq(v->value, "generic"))
            svc->kind = xstrdup(v->value);
    }
    if ((v = cfg_map_get(m, "package"))) {
        path_sub(sub, path, "package", 0);
        r = expect(c, v, sub, CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        /* A Debian package name, or pypi:NAME==VERSION (installed by scripts/install-deps.sh). */
        if (str_startswith(v->value, "pypi:")) {
            const char *eq = strstr(v->value, "==");

            if (!eq || eq == v->value + 5 || !eq[2] || strpbrk(v->value + 5, " \t/"))
                return perr(c, v, "%s: invalid PyPI requirement '%.64s' (pypi:NAME==VERSION)", sub,
                            v->value);
        } else {
            for (const char *q = v->value; *q; q++)
                if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '.' ||
                      *q == '+' || *q == '-'))
                    return perr(c, v,
                                "%s: invalid Debian package name '%.64s' (or pypi:NAME==VERSION)",
                                sub, v->value);
        }
        if (v->len == 0)
            return perr(c, v, "%s: must not be empty", sub);
        svc->package = xstrdup(v->value);
    }
    if (!(v = cfg_map_get(m, "command")))
        return missing(c, key, path, "command");
    path_sub(sub, path, "command", 0);
    r = get_strv(c, v, sub, true, &svc->argv);
    if (r < 0)
        return r;
    if (svc->argv[0][0] == '\0')
        return perr(c, v->items[0], "%s[0]: the program must not be empty", sub);
    if ((v = cfg_map_get(m, "user"))) {
        path_sub(sub, path, "user", 0);
        r = expect(c, v, sub, CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        if (v->len == 0 || v->len > 32 || v->value[0] == '-' ||
            strspn(v->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                    v->len)
            return perr(c, v, "%s: invalid user name '%.64s'", sub, v->value);
        svc->user = xstrdup(v->value);
    }
    if ((v = cfg_map_get(m, "working_dir"))) {
        path_sub(sub, path, "working_dir", 0);
        r = get_abs_path(c, v, sub, &svc->working_dir);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "environment"))) {
        path_sub(sub, path, "environment", 0);
        strv_free(svc->env);
        svc->env = NULL;
        r = parse_environment(c, v, sub, &svc->env);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "ports"))) {
        path_sub(sub, path, "ports", 0);
        r = expect(c, v, sub, CFG_NODE_SEQ);
        if (r < 0)
            return r;
        svc->ports = xcalloc(v->n ? v->n : 1, sizeof *svc->ports);
        for (size_t i = 0; i < v->n; i++) {
            char isub[PATH_LEN];

            path_sub(isub, sub, NULL, i);
            r = get_port(c, v->items[i], isub, &svc->ports[i]);
            if (r < 0)
                return r;
            svc->n_ports = i + 1;
        }
    }
    if ((v = cfg_map_get(m, "dirs"))) {
        path_sub(sub, path, "dirs", 0);
        r = expect(c, v, sub, CFG_NODE_SEQ);
        if (r < 0)
            return r;
        free(svc->dirs);
        svc->dirs = xcalloc(v->n + 1, sizeof *svc->dirs);
        for (size_t i = 0; i < v->n; i++) {
            char isub[PATH_LEN];

            path_sub(isub, sub, NULL, i);
            r = get_abs_path(c, v->items[i], isub, &svc->dirs[i]);
            if (r < 0)
                return r;
        }
    }
    if ((v = cfg_map_get(m, "files"))) {
        path_sub(sub, path, "files", 0);
        r = parse_files(c, v, sub, svc);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "depends_on"))) {
        path_sub(sub, path, "depends_on", 0);
        r = parse_depends(c, v, sub, svc);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "healthcheck"))) {
        path_sub(sub, path, "healthcheck", 0);
        r = parse_health(c, v, sub, cfg_map_key(m, "healthcheck"), &svc->health);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "liveness"))) {
        path_sub(sub, path, "liveness", 0);
        r = parse_health(c, v, sub, cfg_map_key(m, "liveness"), &svc->liveness);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "freeze_after"))) {
        path_sub(sub, path, "freeze_after", 0);
        r = get_duration(c, v, sub, 50 * USEC_PER_MSEC, &svc->freeze_after_usec);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "lock"))) {
        path_sub(sub, path, "lock", 0);
        r = parse_lock(c, v, sub, cfg_map_key(m, "lock"), &svc->lock);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "status_probe"))) {
        path_sub(sub, path, "status_probe", 0);
        r = parse_probe(c, v, sub, cfg_map_key(m, "status_probe"), false, &svc->status_probe);
        if (r < 0)
            return r;
        svc->has_status_probe = true;
    }
    if ((v = cfg_map_get(m, "restart"))) {
        bool ok = false;

        path_sub(sub, path, "restart", 0);
        r = expect(c, v, sub, CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        for (int i = 0; i < _STACK_RESTART_MAX; i++)
            if (streq(v->value, stack_restart_to_string((enum stack_restart)i))) {
                svc->restart = (enum stack_restart)i;
                ok = true;
            }
        if (!ok)
            return perr(c, v, "%s: unknown restart policy '%.32s' (\"no\", on-failure or always)",
                        sub, v->value);
    }
    if ((v = cfg_map_get(m, "restart_backoff"))) {
        path_sub(sub, path, "restart_backoff", 0);
        r = parse_backoff(c, v, sub, svc);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "stop_signal"))) {
        path_sub(sub, path, "stop_signal", 0);
        r = parse_signal(c, v, sub, &svc->stop_signal);
        if (r < 0)
            return r;
    }
    if ((v = cfg_map_get(m, "stop_grace_period"))) {
        path_sub(sub, path, "stop_grace_period", 0);
        r = get_duration(c, v, sub, 0, &svc->stop_grace_usec);
        if (r < 0)
            return r;
    }
    return 0;
}

/* --- whole stack --------------------------------------------------------------------------- */

static int parse_secrets(struct pctx *c, const struct cfg_node *n)
{
    int r = expect(c, n, "secrets", CFG_NODE_SEQ);

    if (r < 0)
        return r;
    c->s->secrets = xcalloc(n->n + 1, sizeof *c->s->secrets);
    for (size_t i = 0; i < n->n; i++) {
        char sub[PATH_LEN];

        path_sub(sub, "secrets", NULL, i);
        r = get_name(c, n->items[i], sub, SECRET_NAME_MAX, true, &c->s->secrets[i]);
        if (r < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (streq(c->s->secrets[j], c->s->secrets[i]))
                return perr(c, n->items[i], "%s: secret '%s' is listed twice", sub,
                            c->s->secrets[i]);
    }
    return 0;
}

static int parse_log(struct pctx *c, const struct cfg_node *m)
{
    static const char *const keys[] = { "max_size", "keep", NULL };
    const struct cfg_node *v;
    uint64_t n;
    int r;

    r = expect(c, m, "log", CFG_NODE_MAP);
    if (r < 0)
        return r;
    r = check_keys(c, m, "log", keys);
    if (r < 0)
        return r;
    if ((v = cfg_map_get(m, "max_size"))) {
        r = expect(c, v, "log.max_size", CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        if (parse_size(v->value, &c->s->log_max_bytes) < 0 || c->s->log_max_bytes < 1024)
            return perr(c, v, "log.max_size: invalid size '%.32s' (at least 1KiB, e.g. 10MiB)",
                        v->value);
    }
    if ((v = cfg_map_get(m, "keep"))) {
        r = get_uint(c, v, "log.keep", 0, 1000, &n);
        if (r < 0)
            return r;
        c->s->log_keep = (unsigned)n;
    }
    return 0;
}

/* Ports unique across the stack, dependencies known, no cycles. */
static int check_graph(struct pctx *c, const struct cfg_node *services)
{
    struct stack *s = c->s;
    unsigned short *owner = NULL;
    size_t *order = NULL, *walk = NULL, *step = NULL;
    bool *placed = NULL;
    int r = 0;

    owner = xcalloc(65536, sizeof *owner);
    for (size_t i = 0; i < s->n_services; i++) {
        const struct cfg_node *pn = cfg_map_get(services->items[i], "ports");

        for (size_t k = 0; k < s->services[i].n_ports; k++) {
            uint16_t port = s->services[i].ports[k];

            if (owner[port]) {
                const char *other = s->services[(size_t)owner[port] - 1].name;

                if ((size_t)owner[port] - 1 == i)
                    r = perr(c, pn->items[k], "services.%s.ports[%zu]: port %u is listed twice",
                             s->services[i].name, k, port);
                else
                    r = perr(c, pn->items[k],
                             "services.%s.ports[%zu]: port %u is already used by service '%s'",
                             s->services[i].name, k, port, other);
                goto out;
            }
            owner[port] = (unsigned short)(i + 1);
        }
    }

    for (size_t i = 0; i < s->n_services; i++)
        for (size_t k = 0; k < s->services[i].n_deps; k++) {
            struct stack_dep *d = &s->services[i].deps[k];
            struct stack_service *t = stack_find(s, d->service);

            if (!t) {
                err_set_file(c->reterr, c->file);
                r = err_set(c->reterr, -EINVAL, d->line, d->col,
                            "services.%s.depends_on: unknown service '%s'", s->services[i].name,
                            d->service);
                goto out;
            }
            d->index = (size_t)(t - s->services);
        }

    order = xcalloc(s->n_services, sizeof *order);
    placed = xcalloc(s->n_services, sizeof *placed);
    if (stack__order(s, order, placed) < s->n_services) {
        /* every unplaced service waits on another unplaced one: walk until we loop */
        char msg[200];
        size_t at = 0, len = 0, first;
        const struct stack_dep *edge = NULL;

        walk = xcalloc(s->n_services + 1, sizeof *walk);
        step = xcalloc(s->n_services, sizeof *step); /* position in walk + 1 */
        while (placed[at])
            at++;
        while (!step[at]) {
            step[at] = ++len;
            walk[len - 1] = at;
            for (size_t k = 0; k < s->services[at].n_deps; k++)
                if (!placed[s->services[at].deps[k].index]) {
                    at = s->services[at].deps[k].index;
                    break;
                }
        }
        first = step[at] - 1;
        msg[0] = '\0';
        for (size_t w = first; w < len; w++) {
            size_t used = strlen(msg);

            (void)snprintf(msg + used, sizeof msg - used, "%s -> ", s->services[walk[w]].name);
        }
        {
            size_t used = strlen(msg);

            (void)snprintf(msg + used, sizeof msg - used, "%s", s->services[at].name);
        }
        /* the edge from the cycle's first service to the next one */
        for (size_t k = 0; k < s->services[walk[first]].n_deps; k++)
            if (s->services[walk[first]].deps[k].index ==
                walk[first + 1 < len ? first + 1 : first]) {
                edge = &s->services[walk[first]].deps[k];
                break;
            }
        err_set_file(c->reterr, c->file);
        r = err_set(c->reterr, -EINVAL, edge ? edge->line : s->services[walk[first]].line,
                    edge ? edge->col : 0, "services.%s.depends_on: dependency cycle: %s",
                    s->services[walk[first]].name, msg);
        goto out;
    }
out:
    free(owner);
    free(order);
    free(placed);
    free(walk);
    free(step);
    return r;
}

static char *dir_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    char *d, *abs;

    if (!slash)
        d = xstrdup(".");
    else if (slash == name)
        d = xstrdup("/");
    else
        d = xasprintf("%.*s", (int)(slash - name), name);
    abs = realpath(d, NULL);
    if (abs) {
        free(d);
        return abs;
    }
    if (d[0] != '/') {
        char cwd[PATH_MAX];

        if (getcwd(cwd, sizeof cwd)) {
            abs = streq(d, ".") ? xstrdup(cwd) : xasprintf("%s/%s", cwd, d);
            free(d);
            return abs;
        }
    }
    return d;
}

int stack_parse(const char *name, const char *text, size_t len, struct stack **ret,
                struct err *reterr)
{
    static const char *const keys[] = { "name", "secrets", "log", "services", NULL };
    struct cfg_node *root = NULL;
    struct stack *s = xcalloc(1, sizeof *s);
    struct pctx c = { .file = name, .reterr = reterr, .s = s };
    const struct cfg_node *v, *services;
    int r;

    s->path = xstrdup(name);
    s->dir = dir_of(name);
    s->log_max_bytes = 10u * 1024u * 1024u;
    s->log_keep = 3;

    r = cfg_parse(name, text, len, &root, reterr);
    if (r < 0)
        goto out;
    if (!root) {
        r = perr(&c, NULL, "the stack file is empty");
        goto out;
    }
    r = expect(&c, root, "the stack file", CFG_NODE_MAP);
    if (r < 0)
        goto out;
    r = check_keys(&c, root, "", keys);
    if (r < 0)
        goto out;

    if (!(v = cfg_map_get(root, "name"))) {
        r = missing(&c, root, "", "name");
        goto out;
    }
    r = get_name(&c, v, "name", 64, false, &s->name);
    if (r < 0)
        goto out;
    if ((v = cfg_map_get(root, "secrets"))) {
        r = parse_secrets(&c, v);
        if (r < 0)
            goto out;
    } else {
        s->secrets = xcalloc(1, sizeof *s->secrets);
    }
    if ((v = cfg_map_get(root, "log"))) {
        r = parse_log(&c, v);
        if (r < 0)
            goto out;
    }
    if (!(services = cfg_map_get(root, "services"))) {
        r = missing(&c, root, "", "services");
        goto out;
    }
    r = expect(&c, services, "services", CFG_NODE_MAP);
    if (r < 0)
        goto out;
    if (services->n == 0) {
        r = perr(&c, services, "services: at least one service is required");
        goto out;
    }
    if (services->n > STACK_MAX_SERVICES) {
        r = perr(&c, services, "services: too many services (%zu, at most %u)", services->n,
                 STACK_MAX_SERVICES);
        goto out;
    }
    s->services = xcalloc(services->n, sizeof *s->services);
    for (size_t i = 0; i < services->n; i++) {
        s->n_services = i + 1;
        r = parse_service(&c, services->keys[i], services->items[i], &s->services[i]);
        if (r < 0)
            goto out;
    }
    r = check_graph(&c, services);
    if (r < 0)
        goto out;

    *ret = s;
    s = NULL;
out:
    cfg_node_free(root);
    stack_free(s);
    return r;
}

int stack_load(const char *path, struct stack **ret, struct err *reterr)
{
    struct buf text = BUF_INIT(CFG_MAX_BYTES);
    int r;

    r = cfg_read_file(path, &text, reterr);
    if (r < 0)
        goto out;
    r = stack_parse(path, text.data ? text.data : "", text.len, ret, reterr);
out:
    buf_release(&text);
    return r;
}
