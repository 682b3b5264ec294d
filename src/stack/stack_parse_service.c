/* SPDX-License-Identifier: MIT */
/* stack_parse_service.c - one service of a stack file (docs/stack-file.md): its option table,
 * and the tables and parsers of what nests in it (probes, files, dependencies, the lock). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "core/strv.h"
#include "stack.h"
#include "stack_int.h"

#define SERVICE_NAME_MAX 48

/* ===== Validators ===== */

static bool name_valid(const char *s, size_t max, bool upper)
{
    size_t n = 0;

    for (const char *p = s; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              (upper && *p >= 'A' && *p <= 'Z')))
            return false;
    return n > 0 && n <= max;
}

int stack__check_name(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                      size_t max, bool upper)
{
    if (name_valid(n->value, max, upper))
        return 0;
    return cfg_error(c, n, "%s: invalid name '%.64s' (use %s, at most %zu characters)", path,
                     n->value, upper ? "[A-Za-z0-9_-]" : "[a-z0-9_-]", max);
}

static int valid_service_name(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    return stack__check_name(c, n, path, SERVICE_NAME_MAX, false);
}

/* Every ${...} reference names something the stack declares (expanded by stack_resolve()). */
static int valid_refs(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    struct err e = ERR_INIT;

    if (stack__expand(c->userdata, NULL, n->value, NULL, &e) < 0)
        return cfg_error(c, n, "%s: %s", path, e.msg);
    return 0;
}

/* Paths that end up absolute: "/..." or starting with a directory reference. */
int stack__valid_abs_path(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    static const char *const roots[] = { "/", "${state_dir}", "${stack_dir}", "${tools_dir}" };
    int r = valid_refs(c, n, path);

    if (r < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
        if (str_startswith(n->value, roots[i]))
            return 0;
    return cfg_error(c, n, "%s: '%.64s' is not an absolute path (start it with / or ${state_dir})",
                     path, n->value);
}

/* A Debian package name, or pypi:NAME==VERSION (installed by scripts/install-deps.sh). */
static int valid_package(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    const char *v = n->value;

    if (str_startswith(v, "pypi:")) {
        const char *eq = strstr(v, "==");

        if (!eq || eq == v + 5 || !eq[2] || strpbrk(v + 5, " \t/"))
            return cfg_error(c, n, "%s: invalid PyPI requirement '%.64s' (pypi:NAME==VERSION)",
                             path, v);
        return 0;
    }
    for (const char *q = v; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '.' || *q == '+' ||
              *q == '-'))
            return cfg_error(c, n,
                             "%s: invalid Debian package name '%.64s' (or pypi:NAME==VERSION)",
                             path, v);
    return 0;
}

static int valid_user(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

    if (n->len == 0 || n->len > 32 || n->value[0] == '-' || strspn(n->value, chars) != n->len)
        return cfg_error(c, n, "%s: invalid user name '%.64s'", path, n->value);
    return 0;
}

/* An `ip netns` name: a file name under /run/netns. */
static int valid_netns(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

    if (n->len == 0 || n->len > 64 || n->value[0] == '.' || strspn(n->value, chars) != n->len)
        return cfg_error(c, n, "%s: invalid network namespace name '%.64s' (letters, digits, _.-)",
                         path, n->value);
    return 0;
}

static int valid_http_method(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    for (const char *q = n->value; *q; q++)
        if (*q < 'A' || *q > 'Z')
            return cfg_error(c, n, "%s: invalid HTTP method '%.32s' (e.g. GET, HEAD)", path,
                             n->value);
    return 0;
}

/* ===== Probes and health checks ===== */

static const char *const probe_type_names[_PROBE_TYPE_MAX + 1] = {
    [PROBE_TCP] = "tcp",      [PROBE_HTTP] = "http", [PROBE_PG] = "pg",
    [PROBE_REDIS] = "redis",  [PROBE_EXEC] = "exec", [PROBE_KAFKA] = "kafka",
    [_PROBE_TYPE_MAX] = NULL,
};

#define PROBE_OPT(key_, type_, field_) CFG_OPT(struct probe_spec, key_, type_, field_)
#define PROBE_HOST                                                                             \
    {                                                                                          \
        PROBE_OPT("host", CFG_STR, host), .default_value = "127.0.0.1", .validate = valid_refs \
    }
#define PROBE_PORT                                                 \
    {                                                              \
        PROBE_OPT("port", CFG_PORT, port), .flags = CFG_F_REQUIRED \
    }
#define PROBE_USER(default_)                                                                  \
    {                                                                                         \
        PROBE_OPT("user", CFG_STR, user), .default_value = (default_), .validate = valid_refs \
    }
#define PROBE_PASSWORD                                                                            \
    {                                                                                             \
        PROBE_OPT("password", CFG_STR, password), .flags = CFG_F_EMPTY_OK, .validate = valid_refs \
    }

static const struct cfg_option tcp_opts[] = { PROBE_HOST, PROBE_PORT, { .key = NULL } };
static const struct cfg_option http_opts[] = {
    PROBE_HOST,
    PROBE_PORT,
    { PROBE_OPT("path", CFG_STR, path), .default_value = "/", .validate = valid_refs },
    { PROBE_OPT("method", CFG_STR, method), .default_value = "GET", .validate = valid_http_method },
    { PROBE_OPT("expect_status", CFG_UINT, expect_status), .min = 100, .max = 599 },
    { .key = NULL },
};
static const struct cfg_option pg_opts[] = {
    PROBE_HOST,
    PROBE_PORT,
    PROBE_USER("postgres"),
    PROBE_PASSWORD,
    { PROBE_OPT("dbname", CFG_STR, dbname), .default_value = "postgres", .validate = valid_refs },
    { PROBE_OPT("query", CFG_STR, query), .default_value = "SELECT 1", .validate = valid_refs },
    { .key = NULL },
};
static const struct cfg_option redis_opts[] = {
    PROBE_HOST,
    PROBE_PORT,
    PROBE_USER(NULL),
    PROBE_PASSWORD,
    { PROBE_OPT("command", CFG_STRV, command), .default_value = "PING",
      .flags = CFG_F_NONEMPTY | CFG_F_EMPTY_OK, .validate = valid_refs },
    { .key = NULL },
};
static const struct cfg_option exec_opts[] = {
    { PROBE_OPT("command", CFG_STRV, argv),
      .flags = CFG_F_REQUIRED | CFG_F_NONEMPTY | CFG_F_EMPTY_OK, .validate = valid_refs },
    { .key = NULL },
};
/* A kafka probe names a bootstrap broker: host and port, as tcp. */
static const struct cfg_option *const probe_opts[_PROBE_TYPE_MAX] = {
    [PROBE_TCP] = tcp_opts,     [PROBE_HTTP] = http_opts, [PROBE_PG] = pg_opts,
    [PROBE_REDIS] = redis_opts, [PROBE_EXEC] = exec_opts, [PROBE_KAFKA] = tcp_opts,
};

/* How often a health check (or liveness check) runs, and how many failures count. */
#define HEALTH_OPT(key_, type_, field_) CFG_OPT(struct stack_health, key_, type_, field_)
static const struct cfg_option timing_opts[] = {
    { HEALTH_OPT("interval", CFG_DURATION, interval_usec), .default_value = "2s",
      .min = USEC_PER_MSEC },
    { HEALTH_OPT("timeout", CFG_DURATION, timeout_usec), .default_value = "1s",
      .min = USEC_PER_MSEC },
    { HEALTH_OPT("start_period", CFG_DURATION, start_period_usec), .default_value = "0" },
    { HEALTH_OPT("retries", CFG_UINT, retries), .default_value = "3", .min = 1, .max = 1000 },
    { .key = NULL },
};

/* Every key a probe map may hold, in the order suggestions prefer; a health check also has
 * its timing keys. */
#define PROBE_KEYS                                                                           \
    "type", "host", "port", "path", "method", "expect_status", "user", "password", "dbname", \
            "query", "command"
static const char *const probe_keys[] = { PROBE_KEYS, NULL };
static const char *const health_keys[] = { PROBE_KEYS, "interval",     "timeout",
                                           "retries",  "start_period", NULL };

static bool option_known(const struct cfg_option *opts, const char *key)
{
    for (const struct cfg_option *o = opts; o->key; o++)
        if (streq(o->key, key))
            return true;
    return false;
}

/* Every key of the probe map is a probe key (timing keys only in health checks) that its type
 * takes. */
static int check_probe_keys(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                            bool health, enum probe_type type)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_node *k = map->keys[i];
        char sub[CFG_PATH_MAX];

        if (streq(k->value, "type") || (health && option_known(timing_opts, k->value)))
            continue;
        if (!option_known(probe_opts[type], k->value)) {
            bool known = false;

            for (const char *const *pk = probe_keys; *pk && !known; pk++)
                known = streq(k->value, *pk);
            if (!known)
                return cfg_unknown_key(c, k, path, health ? health_keys : probe_keys);
            return cfg_error(c, k, "field '%s' is not valid for probe type '%s'",
                             cfg_path_join(sub, path, k->value), probe_type_names[type]);
        }
    }
    return 0;
}

/* A probe map; `at` (the key naming it) is where missing fields are reported. */
static int parse_probe(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                       const struct cfg_node *at, bool health, struct probe_spec *ret)
{
    struct probe_spec p = PROBE_SPEC_INIT;
    const struct cfg_node *tn;
    char sub[CFG_PATH_MAX];
    int type, r;

    r = cfg_expect(c, map, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    tn = cfg_map_get(map, "type");
    if (!tn)
        return cfg_missing(c, at, path, "type");
    r = cfg_get_enum(c, tn, cfg_path_join(sub, path, "type"), "probe type", probe_type_names,
                     &type);
    if (r < 0)
        return r;
    p.type = (enum probe_type)type;
    r = check_probe_keys(c, map, path, health, p.type);
    if (r >= 0)
        r = cfg_apply_options(c, map, path, at, probe_opts[p.type], &p);
    if (r < 0) {
        probe_spec_release(&p);
        return r;
    }
    probe_spec_release(ret);
    *ret = p;
    return 0;
}

/* healthcheck and liveness: a probe and its timing. */
static int parse_health(const struct cfg_ctx *c, const struct cfg_node *key,
                        const struct cfg_node *map, const char *path, void *field)
{
    struct stack_health *h = field;
    int r;

    r = parse_probe(c, map, path, key, true, &h->probe);
    if (r < 0)
        return r;
    h->present = true;
    return cfg_apply_options(c, map, path, key, timing_opts, h);
}

static int parse_status_probe(const struct cfg_ctx *c, const struct cfg_node *key,
                              const struct cfg_node *map, const char *path, void *field)
{
    struct stack_service *svc = field;
    int r = parse_probe(c, map, path, key, false, &svc->status_probe);

    if (r >= 0)
        svc->has_status_probe = true;
    return r;
}

/* ===== Lock, files, dependencies, environment, ports ===== */

static int parse_lock_type(const struct cfg_ctx *c, const struct cfg_node *key,
                           const struct cfg_node *v, const char *path, void *field)
{
    static const char *const types[] = { "etcd", NULL };
    int type;

    (void)key;
    (void)field; /* etcd is the only type */
    return cfg_get_enum(c, v, path, "lock type", types, &type);
}

#define LOCK_OPT(key_, type_, field_) CFG_OPT(struct stack_lock, key_, type_, field_)
static const struct cfg_option lock_opts[] = {
    { .key = "type", .type = CFG_CUSTOM, .parse = parse_lock_type },
    { LOCK_OPT("port", CFG_PORT, port), .flags = CFG_F_REQUIRED },
    { LOCK_OPT("key", CFG_STR, key), .flags = CFG_F_REQUIRED, .validate = valid_refs },
    { LOCK_OPT("value", CFG_STR, value), .flags = CFG_F_REQUIRED, .validate = valid_refs },
    { LOCK_OPT("host", CFG_STR, host), .default_value = "127.0.0.1", .validate = valid_refs },
    { LOCK_OPT("pidfile", CFG_STR, pidfile), .validate = stack__valid_abs_path },
    { LOCK_OPT("handover_key", CFG_STR, handover_key), .validate = valid_refs },
    { .key = NULL },
};

static int parse_lock(const struct cfg_ctx *c, const struct cfg_node *key,
                      const struct cfg_node *map, const char *path, void *field)
{
    struct stack_lock *l = field;
    int r = cfg_parse_section(c, map, path, key, lock_opts, l);

    if (r >= 0)
        l->present = true;
    return r;
}

/* A relative template is taken from the stack file's directory. */
static int parse_template(const struct cfg_ctx *c, const struct cfg_node *key,
                          const struct cfg_node *v, const char *path, void *field)
{
    const struct stack *s = c->userdata;
    char **ret = field, *t;
    int r;

    (void)key;
    r = cfg_get_str(c, v, path, 0, valid_refs, &t);
    if (r < 0)
        return r;
    free(*ret);
    if (t[0] == '/' || str_startswith(t, "${")) {
        *ret = t;
    } else {
        *ret = xasprintf("%s/%s", s->dir, t);
        free(t);
    }
    return 0;
}

#define FILE_OPT(key_, type_, field_) CFG_OPT(struct stack_file, key_, type_, field_)
static const struct cfg_option file_opts[] = {
    { FILE_OPT("template", CFG_CUSTOM, template_path), .flags = CFG_F_REQUIRED,
      .parse = parse_template },
    { FILE_OPT("path", CFG_STR, path), .flags = CFG_F_REQUIRED, .validate = stack__valid_abs_path },
    { FILE_OPT("mode", CFG_MODE, mode), .default_value = "0644" },
    { FILE_OPT("overwrite", CFG_BOOL, overwrite), .default_value = "true" },
    { FILE_OPT("expand", CFG_BOOL, expand), .default_value = "true" },
    { .key = NULL },
};

static int parse_files(const struct cfg_ctx *c, const struct cfg_node *key,
                       const struct cfg_node *n, const char *path, void *field)
{
    struct stack_service *svc = field;
    int r = cfg_expect(c, n, path, CFG_NODE_SEQ);

    (void)key;
    if (r < 0)
        return r;
    svc->files = xcalloc(n->n ? n->n : 1, sizeof *svc->files);
    for (size_t i = 0; i < n->n; i++) {
        char sub[CFG_PATH_MAX];

        svc->n_files = i + 1;
        r = cfg_parse_section(c, n->items[i], cfg_path_index(sub, path, i), NULL, file_opts,
                              &svc->files[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

static const struct cfg_option dep_opts[] = {
    { CFG_OPT(struct stack_dep, "condition", CFG_ENUM, cond), .default_value = "service_started",
      .what = "condition", .names = stack__dep_cond_names },
    { .key = NULL },
};

/* depends_on: [a, b] or {a: {condition: service_healthy}, b: {}}. */
static int parse_depends(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *n, const char *path, void *field)
{
    struct stack_service *svc = field;
    int r;

    (void)key;
    if (n->type != CFG_NODE_MAP && n->type != CFG_NODE_SEQ)
        return cfg_error(c, n, "%s: expected a list of service names or a map, got %s", path,
                         cfg_node_describe(n));
    svc->deps = xcalloc(n->n ? n->n : 1, sizeof *svc->deps);
    for (size_t i = 0; i < n->n; i++) {
        const struct cfg_node *name = n->type == CFG_NODE_MAP ? n->keys[i] : n->items[i];
        struct stack_dep *d = &svc->deps[i];
        char sub[CFG_PATH_MAX];

        r = cfg_get_str(c, name, cfg_path_index(sub, path, i), CFG_F_EMPTY_OK, valid_service_name,
                        &d->service);
        if (r < 0)
            return r;
        svc->n_deps = i + 1;
        d->line = name->line;
        d->col = name->col;
        d->cond = STACK_DEP_STARTED;
        for (size_t j = 0; j < i; j++)
            if (streq(svc->deps[j].service, d->service))
                return cfg_error(c, name, "%s: '%s' is listed twice", path, d->service);
        if (n->type == CFG_NODE_MAP) {
            r = cfg_parse_section(c, n->items[i], cfg_path_join(sub, path, d->service), NULL,
                                  dep_opts, d);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* The variable name of entry ("KEY=value", the name klen bytes long): a C identifier, unique. */
static int check_env_name(const struct cfg_ctx *c, const struct cfg_node *at, const char *path,
                          char *const *env, size_t n_env, const char *entry, size_t klen)
{
    bool ok = klen > 0 && !(entry[0] >= '0' && entry[0] <= '9');
    int shown = (int)(klen > 64 ? 64 : klen);

    for (size_t j = 0; j < klen && ok; j++)
        ok = (entry[j] >= 'A' && entry[j] <= 'Z') || (entry[j] >= 'a' && entry[j] <= 'z') ||
             (entry[j] >= '0' && entry[j] <= '9') || entry[j] == '_';
    if (!ok)
        return cfg_error(c, at, "%s: invalid environment variable name '%.*s'", path, shown, entry);
    for (size_t j = 0; j < n_env; j++)
        if (strncmp(env[j], entry, klen) == 0 && env[j][klen] == '=')
            return cfg_error(c, at, "%s: duplicate environment variable '%.*s'", path, shown,
                             entry);
    return 0;
}

/* Entry i of an environment map (KEY: value) or list ("KEY=value") as "KEY=value". */
static int env_entry(const struct cfg_ctx *c, const struct cfg_node *n, size_t i, const char *path,
                     char *const *env, char **ret)
{
    bool map = n->type == CFG_NODE_MAP;
    const struct cfg_node *at = map ? n->keys[i] : n->items[i];
    char sub[CFG_PATH_MAX], *entry, *val;
    size_t klen;
    int r;

    if (map) {
        r = cfg_get_str(c, n->items[i], cfg_path_join(sub, path, at->value), CFG_F_EMPTY_OK,
                        valid_refs, &val);
        if (r < 0)
            return r;
        entry = xasprintf("%s=%s", at->value, val);
        free(val);
        klen = at->len;
    } else {
        const char *eq;

        r = cfg_get_str(c, at, cfg_path_index(sub, path, i), 0, valid_refs, &entry);
        if (r < 0)
            return r;
        eq = strchr(entry, '=');
        if (!eq) {
            free(entry);
            return cfg_error(c, at, "%s: expected \"KEY=value\", got '%.64s'", sub, at->value);
        }
        klen = (size_t)(eq - entry);
    }
    r = check_env_name(c, at, sub, env, i, entry, klen);
    if (r < 0) {
        free(entry);
        return r;
    }
    *ret = entry;
    return 0;
}

static int parse_environment(const struct cfg_ctx *c, const struct cfg_node *key,
                             const struct cfg_node *n, const char *path, void *field)
{
    char ***ret = field, **env;
    int r = 0;

    (void)key;
    if (n->type != CFG_NODE_MAP && n->type != CFG_NODE_SEQ)
        return cfg_error(c, n, "%s: expected a map (KEY: value) or a list (\"KEY=value\"), got %s",
                         path, cfg_node_describe(n));
    env = xcalloc(n->n + 1, sizeof *env);
    for (size_t i = 0; i < n->n && r >= 0; i++)
        r = env_entry(c, n, i, path, env, &env[i]);
    if (r < 0) {
        strv_free(env);
        return r;
    }
    strv_free(*ret);
    *ret = env;
    return 0;
}

static int parse_ports(const struct cfg_ctx *c, const struct cfg_node *key,
                       const struct cfg_node *n, const char *path, void *field)
{
    struct stack_service *svc = field;
    int r = cfg_expect(c, n, path, CFG_NODE_SEQ);

    (void)key;
    if (r < 0)
        return r;
    svc->ports = xcalloc(n->n ? n->n : 1, sizeof *svc->ports);
    for (size_t i = 0; i < n->n; i++) {
        char sub[CFG_PATH_MAX];

        r = cfg_get_port(c, n->items[i], cfg_path_index(sub, path, i), &svc->ports[i]);
        if (r < 0)
            return r;
        svc->n_ports = i + 1;
    }
    return 0;
}

/* ===== The service ===== */

static int parse_kind(const struct cfg_ctx *c, const struct cfg_node *key, const struct cfg_node *v,
                      const char *path, void *field)
{
    static const char *const kinds[] = { "etcd",         "patroni",  "haproxy", "pgbouncer",
                                         "redis",        "sentinel", "kafka",   "prometheus",
                                         "alertmanager", "generic",  NULL };
    char **ret = field;
    int i, r;

    (void)key;
    r = cfg_get_enum(c, v, path, "kind", kinds, &i);
    if (r < 0)
        return r;
    free(*ret);
    *ret = streq(kinds[i], "generic") ? NULL : xstrdup(kinds[i]);
    return 0;
}

static int parse_command(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *v, const char *path, void *field)
{
    char ***ret = field, **argv;
    int r;

    (void)key;
    r = cfg_get_strv(c, v, path, CFG_F_NONEMPTY | CFG_F_EMPTY_OK, valid_refs, &argv);
    if (r < 0)
        return r;
    if (argv[0][0] == '\0') {
        strv_free(argv);
        return cfg_error(c, v->items[0], "%s[0]: the program must not be empty", path);
    }
    strv_free(*ret);
    *ret = argv;
    return 0;
}

#define SERVICE_OPT(key_, type_, field_) CFG_OPT(struct stack_service, key_, type_, field_)

static const struct cfg_option backoff_opts[] = {
    { SERVICE_OPT("initial", CFG_DURATION, backoff_initial_usec), .default_value = "1s",
      .min = USEC_PER_SEC / 10 },
    { SERVICE_OPT("max", CFG_DURATION, backoff_max_usec), .default_value = "30s",
      .min = USEC_PER_SEC / 10 },
    { SERVICE_OPT("reset_after", CFG_DURATION, backoff_reset_usec), .default_value = "60s" },
    { SERVICE_OPT("max_restarts", CFG_UINT, max_restarts) },
    { .key = NULL },
};

static int parse_backoff(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *m, const char *path, void *field)
{
    struct stack_service *svc = field;
    int r = cfg_parse_section(c, m, path, key, backoff_opts, svc);

    if (r >= 0 && svc->backoff_max_usec < svc->backoff_initial_usec) {
        const struct cfg_node *v = cfg_map_get(m, "max");

        return cfg_error(c, v ? v : m, "%s.max: must not be below %s.initial", path, path);
    }
    return r;
}

/* Values are read in this order (so it decides which of several errors is reported). */
static const struct cfg_option service_opts[] = {
    { SERVICE_OPT("kind", CFG_CUSTOM, kind), .parse = parse_kind },
    { SERVICE_OPT("package", CFG_STR, package), .validate = valid_package },
    { SERVICE_OPT("command", CFG_CUSTOM, argv), .flags = CFG_F_REQUIRED, .parse = parse_command },
    { SERVICE_OPT("user", CFG_STR, user), .flags = CFG_F_EMPTY_OK, .validate = valid_user },
    { SERVICE_OPT("working_dir", CFG_STR, working_dir), .validate = stack__valid_abs_path },
    { SERVICE_OPT("netns", CFG_STR, netns), .validate = valid_netns },
    { SERVICE_OPT("environment", CFG_CUSTOM, env), .parse = parse_environment },
    { .key = "ports", .type = CFG_CUSTOM, .parse = parse_ports },
    { SERVICE_OPT("dirs", CFG_STRV, dirs), .validate = stack__valid_abs_path },
    { .key = "files", .type = CFG_CUSTOM, .parse = parse_files },
    { .key = "depends_on", .type = CFG_CUSTOM, .parse = parse_depends },
    { SERVICE_OPT("healthcheck", CFG_CUSTOM, health), .parse = parse_health },
    { SERVICE_OPT("liveness", CFG_CUSTOM, liveness), .parse = parse_health },
    { SERVICE_OPT("freeze_after", CFG_DURATION, freeze_after_usec), .min = 50 * USEC_PER_MSEC },
    { SERVICE_OPT("lock", CFG_CUSTOM, lock), .parse = parse_lock },
    { .key = "status_probe", .type = CFG_CUSTOM, .parse = parse_status_probe },
    { SERVICE_OPT("restart", CFG_ENUM, restart), .default_value = "on-failure",
      .what = "restart policy", .names = stack__restart_names },
    { .key = "restart_backoff", .type = CFG_CUSTOM, .parse = parse_backoff },
    { SERVICE_OPT("stop_signal", CFG_SIGNAL, stop_signal), .default_value = "SIGTERM" },
    { SERVICE_OPT("stop_grace_period", CFG_DURATION, stop_grace_usec), .default_value = "10s" },
    { SERVICE_OPT("schedule", CFG_CUSTOM, schedule), .parse = stack__parse_schedule },
    { .key = NULL },
};

int stack__parse_service(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *m, struct stack_service *svc)
{
    char path[CFG_PATH_MAX];
    int r;

    svc->line = key->line;
    /* Nested maps that are absent still have their defaults. */
    cfg_set_defaults(backoff_opts, svc);
    cfg_set_defaults(timing_opts, &svc->health);
    cfg_set_defaults(timing_opts, &svc->liveness);
    svc->env = xcalloc(1, sizeof *svc->env);
    svc->dirs = xcalloc(1, sizeof *svc->dirs);

    if (!name_valid(key->value, SERVICE_NAME_MAX, false))
        return cfg_error(c, key,
                         "services: invalid service name '%.64s' (use [a-z0-9_-], at most %d "
                         "characters)",
                         key->value, SERVICE_NAME_MAX);
    svc->name = xstrdup(key->value);
    r = cfg_parse_section(c, m, cfg_path_join(path, "services", key->value), key, service_opts,
                          svc);
    if (r >= 0 && svc->schedule.present)
        r = stack__check_job(c, m, svc);
    return r;
}
