/* SPDX-License-Identifier: MIT */
/* config.c - strict parser of gpu_agent's YAML configuration (docs/gpu_agent.md): every error
 * names the key and file:line:col. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/signal.h"
#include "core/str.h"

#define USEC_PER_HOUR (3600 * USEC_PER_SEC)

struct pctx {
    const char *file;
    struct err *reterr;
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

static int expect(struct pctx *c, const struct cfg_node *n, const char *key, enum cfg_node_type t)
{
    static const char *const want[] = { "a string", "a map", "a list" };

    if (n->type == t && !(t == CFG_NODE_SCALAR && cfg_node_is_null(n)))
        return 0;
    return perr(c, n, "%s: expected %s, got %s", key, want[t],
                cfg_node_is_null(n)          ? "nothing"
                : n->type == CFG_NODE_SCALAR ? "a string"
                : n->type == CFG_NODE_MAP    ? "a map"
                                             : "a list");
}

static int check_keys(struct pctx *c, const struct cfg_node *map, const char *section,
                      const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *best = NULL;
        unsigned best_d = UINT_MAX;
        bool ok = false;

        for (const char *const *a = allowed; *a; a++) {
            unsigned d = str_edit_distance(map->keys[i]->value, *a);

            ok = ok || d == 0;
            if (d < best_d) {
                best_d = d;
                best = *a;
            }
        }
        if (ok)
            continue;
        if (best && best_d <= 2)
            return perr(c, map->keys[i], "unknown key '%s%s%s' (did you mean '%s'?)", section,
                        section[0] ? "." : "", map->keys[i]->value, best);
        return perr(c, map->keys[i], "unknown key '%s%s%s'", section, section[0] ? "." : "",
                    map->keys[i]->value);
    }
    return 0;
}

static int get_string(struct pctx *c, const struct cfg_node *v, const char *key, char **ret)
{
    int r = expect(c, v, key, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    free(*ret);
    *ret = xstrdup(v->value);
    return 0;
}

static int get_duration(struct pctx *c, const struct cfg_node *v, const char *key, uint64_t min,
                        uint64_t *ret)
{
    uint64_t d;
    int r = expect(c, v, key, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_duration_usec(v->value, &d) < 0)
        return perr(c, v, "%s: invalid duration '%.40s' (e.g. 500ms, 10s, 2h)", key, v->value);
    if (d < min) {
        char what[32];
        return perr(c, v, "%s: must be at least %s", key, format_duration(what, sizeof what, min));
    }
    *ret = d;
    return 0;
}

static int get_uint(struct pctx *c, const struct cfg_node *v, const char *key, uint64_t max,
                    uint64_t *ret)
{
    int r = expect(c, v, key, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (parse_uint_range(v->value, 0, max, ret) < 0)
        return perr(c, v, "%s: expected an integer from 0 to %llu, got '%.40s'", key,
                    (unsigned long long)max, v->value);
    return 0;
}

static int get_signal(struct pctx *c, const struct cfg_node *v, const char *key, int *ret)
{
    int r = expect(c, v, key, CFG_NODE_SCALAR);

    if (r < 0)
        return r;
    if (signal_from_string(v->value, ret) == 0)
        return 0;
    return perr(c, v, "%s: unknown signal '%.32s' (" SIGNAL_STOP_NAMES ")", key, v->value);
}

/* ===== Templates ===== */

int worker_template_expand(const char *tmpl, const struct worker_vars *v, struct buf *out,
                           unsigned *ret_col)
{
    static const char *const names[] = { "index", "uuid", "pci_bus_id", "name", "minor", "host" };
    const char *p = tmpl;
    int r = 0;

    while (*p && r >= 0) {
        const char *close;
        size_t len, k;

        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            r = buf_append(out, p, 1);
            p += 2;
            continue;
        }
        if (*p != '{') {
            size_t run = strcspn(p, "{}");

            r = buf_append(out, p, run ? run : 1);
            p += run ? run : 1;
            continue;
        }
        close = strchr(p + 1, '}');
        len = close ? (size_t)(close - p - 1) : 0;
        for (k = 0; close && k < ARRAY_SIZE(names); k++)
            if (strlen(names[k]) == len && memcmp(names[k], p + 1, len) == 0)
                break;
        if (!close || k == ARRAY_SIZE(names)) {
            if (ret_col)
                *ret_col = (unsigned)(p - tmpl) + 1;
            return -EINVAL;
        }
        switch (k) {
        case 0:
            r = buf_appendf(out, "%u", v->index);
            break;
        case 1:
            r = buf_puts(out, v->uuid ? v->uuid : "");
            break;
        case 2:
            r = buf_puts(out, v->pci_bus_id ? v->pci_bus_id : "");
            break;
        case 3:
            r = buf_puts(out, v->name ? v->name : "");
            break;
        case 4:
            r = buf_appendf(out, "%u", v->minor);
            break;
        default:
            r = buf_puts(out, v->host ? v->host : "");
            break;
        }
        p = close + 1;
    }
    return r < 0 ? r : 0;
}

/* Checks a template against a sample GPU, so typos fail at load time with their position. */
static int check_template(struct pctx *c, const struct cfg_node *v, const char *key)
{
    static const struct worker_vars sample = { .index = 0,
                                               .uuid = "GPU-00000000-0000-0000-0000-000000000000",
                                               .pci_bus_id = "00000000:00:00.0",
                                               .name = "GPU",
                                               .host = "host" };
    struct buf b = BUF_INIT(0);
    unsigned col = 0;
    int r = worker_template_expand(v->value, &sample, &b, &col);

    buf_release(&b);
    if (r == -EINVAL) {
        struct cfg_node at = *v;

        /* Point at the placeholder itself when the scalar is on one line. */
        if (!strchr(v->value, '\n'))
            at.col += col - 1 + (v->plain ? 0 : 1);
        return perr(c, &at,
                    "%s: unknown placeholder in '%.60s' (use {index}, {uuid}, {pci_bus_id}, "
                    "{name}, {minor}, {host}; {{ and }} for braces)",
                    key, v->value);
    }
    return r;
}

/* ===== Sections ===== */

void agent_config_default_xid_tiers(unsigned char tiers[AGENT_XID_MAX + 1])
{
    /* research/gpu.md §4.4 tier A and B, from DCGM's health watch and NVIDIA's XID catalog. */
    static const unsigned fail_now[] = { 46,  48,  62,  64,  74,  79,  95,
                                         119, 120, 140, 143, 155, 156, 158 };
    static const unsigned drain_later[] = { 54, 63, 92, 94, 110, 136 };

    memset(tiers, GPU_TIER_COUNT, AGENT_XID_MAX + 1);
    for (size_t i = 0; i < ARRAY_SIZE(fail_now); i++)
        tiers[fail_now[i]] = GPU_TIER_FAIL_NOW;
    for (size_t i = 0; i < ARRAY_SIZE(drain_later); i++)
        tiers[drain_later[i]] = GPU_TIER_DRAIN_LATER;
}

const char *gpu_tier_to_string(enum gpu_tier t)
{
    switch (t) {
    case GPU_TIER_COUNT:
        return "count";
    case GPU_TIER_DRAIN_LATER:
        return "drain_later";
    case GPU_TIER_FAIL_NOW:
        return "fail_now";
    case _GPU_TIER_MAX:
        break;
    }
    return "invalid";
}

/* A list of XIDs; each gets tier (a later list wins over the defaults only). */
static int parse_xid_list(struct pctx *c, const struct cfg_node *v, const char *key,
                          enum gpu_tier tier, unsigned char *tiers, bool *seen)
{
    int r = expect(c, v, key, CFG_NODE_SEQ);

    for (size_t i = 0; r >= 0 && i < v->n; i++) {
        uint64_t x;

        r = get_uint(c, v->items[i], key, AGENT_XID_MAX, &x);
        if (r < 0)
            break;
        if (seen[x])
            return perr(c, v->items[i], "%s: XID %u is listed twice", key, (unsigned)x);
        seen[x] = true;
        tiers[x] = (unsigned char)tier;
    }
    return r;
}

static int parse_health(struct pctx *c, const struct cfg_node *m, struct agent_config *cfg)
{
    static const char *const keys[] = { "fail_now_xids", "drain_later_xids", "count_xids", NULL };
    static const struct {
        const char *key;
        enum gpu_tier tier;
    } lists[] = { { "fail_now_xids", GPU_TIER_FAIL_NOW },
                  { "drain_later_xids", GPU_TIER_DRAIN_LATER },
                  { "count_xids", GPU_TIER_COUNT } };
    bool seen[AGENT_XID_MAX + 1] = { false };
    int r = expect(c, m, "health", CFG_NODE_MAP);

    if (r >= 0)
        r = check_keys(c, m, "health", keys);
    /* A list given replaces the default members of its tier (they fall back to "count"). */
    for (size_t l = 0; r >= 0 && l < ARRAY_SIZE(lists); l++) {
        const struct cfg_node *v = cfg_map_get(m, lists[l].key);
        char key[64];

        if (!v)
            continue;
        for (unsigned x = 0; x <= AGENT_XID_MAX; x++)
            if (cfg->xid_tier[x] == lists[l].tier && !seen[x])
                cfg->xid_tier[x] = GPU_TIER_COUNT;
        (void)snprintf(key, sizeof key, "health.%s", lists[l].key);
        r = parse_xid_list(c, v, key, lists[l].tier, cfg->xid_tier, seen);
    }
    return r;
}

static char **strv_new(size_t n)
{
    return xcalloc(n + 1, sizeof(char *));
}

static char **strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static int parse_backoff(struct pctx *c, const struct cfg_node *m, struct agent_worker_config *w)
{
    static const char *const keys[] = { "initial", "max", "reset_after", NULL };
    const struct cfg_node *v;
    int r = expect(c, m, "worker.restart_backoff", CFG_NODE_MAP);

    if (r >= 0)
        r = check_keys(c, m, "worker.restart_backoff", keys);
    if (r >= 0 && (v = cfg_map_get(m, "initial")))
        r = get_duration(c, v, "worker.restart_backoff.initial", USEC_PER_SEC,
                         &w->backoff_initial_usec);
    if (r >= 0 && (v = cfg_map_get(m, "max")))
        r = get_duration(c, v, "worker.restart_backoff.max", USEC_PER_SEC, &w->backoff_max_usec);
    if (r >= 0 && (v = cfg_map_get(m, "reset_after")))
        r = get_duration(c, v, "worker.restart_backoff.reset_after", 0, &w->backoff_reset_usec);
    if (r >= 0 && w->backoff_max_usec < w->backoff_initial_usec)
        r = perr(c, m, "worker.restart_backoff: max is below initial");
    return r;
}

static int parse_command(struct pctx *c, const struct cfg_node *v, struct agent_worker_config *w)
{
    int r = expect(c, v, "worker.command", CFG_NODE_SEQ);

    if (r < 0)
        return r;
    if (v->n == 0)
        return perr(c, v, "worker.command: must not be empty");
    w->argv = strv_new(v->n);
    for (size_t i = 0; i < v->n; i++) {
        r = expect(c, v->items[i], "worker.command", CFG_NODE_SCALAR);
        if (r < 0)
            return r;
        r = check_template(c, v->items[i], "worker.command");
        if (r < 0)
            return r;
        w->argv[i] = xstrdup(v->items[i]->value);
    }
    return 0;
}

static bool env_name_ok(const char *s)
{
    if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static int parse_environment(struct pctx *c, const struct cfg_node *m,
                             struct agent_worker_config *w)
{
    int r = expect(c, m, "worker.environment", CFG_NODE_MAP);

    if (r < 0)
        return r;
    strv_free(w->env);
    w->env = strv_new(m->n);
    for (size_t i = 0; i < m->n; i++) {
        const struct cfg_node *k = m->keys[i], *v = m->items[i];

        if (!env_name_ok(k->value))
            return perr(c, k, "worker.environment: invalid variable name '%.40s'", k->value);
        if (cfg_node_is_null(v)) {
            w->env[i] = xasprintf("%s=", k->value);
            continue;
        }
        r = expect(c, v, "worker.environment", CFG_NODE_SCALAR);
        if (r >= 0)
            r = check_template(c, v, "worker.environment");
        if (r < 0)
            return r;
        w->env[i] = xasprintf("%s=%s", k->value, v->value);
    }
    return 0;
}

static int parse_worker(struct pctx *c, const struct cfg_node *m, struct agent_config *cfg)
{
    static const char *const keys[] = {
        "command",
        "environment",
        "user",
        "working_dir",
        "restart",
        "restart_backoff",
        "max_restarts",
        "stop_signal",
        "stop_grace_period",
        "drain_later_signal",
        "drain_later_grace_period",
        "log_max_bytes",
        "log_keep",
        NULL,
    };
    struct agent_worker_config *w = &cfg->worker;
    const struct cfg_node *v;
    uint64_t u;
    int r = expect(c, m, "worker", CFG_NODE_MAP);

    if (r >= 0)
        r = check_keys(c, m, "worker", keys);
    if (r < 0)
        return r;
    w->present = true;
    v = cfg_map_get(m, "command");
    if (!v)
        return perr(c, m, "worker: missing required key 'worker.command'");
    r = parse_command(c, v, w);
    if (r >= 0 && (v = cfg_map_get(m, "environment")))
        r = parse_environment(c, v, w);
    if (r >= 0 && (v = cfg_map_get(m, "user")))
        r = get_string(c, v, "worker.user", &w->user);
    if (r >= 0 && (v = cfg_map_get(m, "working_dir"))) {
        r = get_string(c, v, "worker.working_dir", &w->working_dir);
        if (r >= 0 && w->working_dir[0] != '/')
            r = perr(c, v, "worker.working_dir: must be an absolute path");
    }
    if (r >= 0 && (v = cfg_map_get(m, "restart"))) {
        r = expect(c, v, "worker.restart", CFG_NODE_SCALAR);
        if (r >= 0 && streq(v->value, "always"))
            w->restart = AGENT_RESTART_ALWAYS;
        else if (r >= 0 && streq(v->value, "on-failure"))
            w->restart = AGENT_RESTART_ON_FAILURE;
        else if (r >= 0)
            r = perr(c, v, "worker.restart: expected 'always' or 'on-failure', got '%.32s'",
                     v->value);
    }
    if (r >= 0 && (v = cfg_map_get(m, "restart_backoff")))
        r = parse_backoff(c, v, w);
    if (r >= 0 && (v = cfg_map_get(m, "max_restarts"))) {
        r = get_uint(c, v, "worker.max_restarts", 1000000, &u);
        w->max_restarts = (unsigned)u;
    }
    if (r >= 0 && (v = cfg_map_get(m, "stop_signal")))
        r = get_signal(c, v, "worker.stop_signal", &w->stop_signal);
    if (r >= 0 && (v = cfg_map_get(m, "stop_grace_period")))
        r = get_duration(c, v, "worker.stop_grace_period", 0, &w->stop_grace_usec);
    if (r >= 0 && (v = cfg_map_get(m, "drain_later_signal")))
        r = get_signal(c, v, "worker.drain_later_signal", &w->drain_later_signal);
    if (r >= 0 && (v = cfg_map_get(m, "drain_later_grace_period")))
        r = get_duration(c, v, "worker.drain_later_grace_period", 0, &w->drain_later_grace_usec);
    if (r >= 0 && (v = cfg_map_get(m, "log_max_bytes"))) {
        r = expect(c, v, "worker.log_max_bytes", CFG_NODE_SCALAR);
        if (r >= 0 && parse_size(v->value, &w->log_max_bytes) < 0)
            r = perr(c, v, "worker.log_max_bytes: invalid size '%.32s' (e.g. 10MiB)", v->value);
    }
    if (r >= 0 && (v = cfg_map_get(m, "log_keep"))) {
        r = get_uint(c, v, "worker.log_keep", 100, &u);
        w->log_keep = (unsigned)u;
    }
    return r;
}

static int parse_gpus(struct pctx *c, const struct cfg_node *v, struct agent_config *cfg)
{
    if (v->type == CFG_NODE_SCALAR && streq(v->value, "all")) {
        cfg->all_gpus = true;
        return 0;
    }
    if (v->type != CFG_NODE_SEQ)
        return perr(c, v, "gpus: expected 'all' or a list of GPU indices");
    cfg->all_gpus = false;
    cfg->gpus = xcalloc(v->n ? v->n : 1, sizeof *cfg->gpus);
    for (size_t i = 0; i < v->n; i++) {
        uint64_t x;
        int r = get_uint(c, v->items[i], "gpus", AGENT_MAX_GPUS - 1, &x);

        if (r < 0)
            return r;
        for (size_t k = 0; k < cfg->n_gpus; k++)
            if (cfg->gpus[k] == x)
                return perr(c, v->items[i], "gpus: GPU %u is listed twice", (unsigned)x);
        cfg->gpus[cfg->n_gpus++] = (unsigned)x;
    }
    return 0;
}

static void set_defaults(struct agent_config *cfg)
{
    struct agent_worker_config *w = &cfg->worker;

    cfg->listen_address = xstrdup(AGENT_DEFAULT_LISTEN);
    cfg->state_dir = xstrdup("/var/lib/gpu_agent");
    cfg->collect_interval_usec = USEC_PER_SEC;
    cfg->all_gpus = true;
    agent_config_default_xid_tiers(cfg->xid_tier);
    w->restart = AGENT_RESTART_ALWAYS;
    w->backoff_initial_usec = USEC_PER_SEC;
    w->backoff_max_usec = 30 * USEC_PER_SEC;
    w->backoff_reset_usec = 60 * USEC_PER_SEC;
    w->stop_signal = SIGTERM;
    w->stop_grace_usec = 10 * USEC_PER_SEC;
    w->drain_later_signal = SIGTERM;
    w->drain_later_grace_usec = 24 * USEC_PER_HOUR;
    w->log_max_bytes = 10u << 20;
    w->log_keep = 3;
}

static int parse_root(struct pctx *c, const struct cfg_node *root, struct agent_config *cfg)
{
    static const char *const keys[] = {
        "listen_address",   "state_dir", "hostname", "nvml_library", "api_token_file",
        "collect_interval", "gpus",      "health",   "worker",       NULL
    };
    const struct cfg_node *v;
    int r;

    if (!root)
        return 0; /* an empty file: every default */
    r = expect(c, root, "(top level)", CFG_NODE_MAP);
    if (r >= 0)
        r = check_keys(c, root, "", keys);
    if (r >= 0 && (v = cfg_map_get(root, "listen_address")))
        r = get_string(c, v, "listen_address", &cfg->listen_address);
    if (r >= 0 && (v = cfg_map_get(root, "state_dir"))) {
        r = get_string(c, v, "state_dir", &cfg->state_dir);
        if (r >= 0 && cfg->state_dir[0] != '/')
            r = perr(c, v, "state_dir: must be an absolute path");
        /* The supervisor's control socket lives there: unix socket paths are short. */
        if (r >= 0 && strlen(cfg->state_dir) > 90)
            r = perr(c, v, "state_dir: longer than 90 characters");
    }
    if (r >= 0 && (v = cfg_map_get(root, "hostname")))
        r = get_string(c, v, "hostname", &cfg->hostname);
    if (r >= 0 && (v = cfg_map_get(root, "nvml_library")))
        r = get_string(c, v, "nvml_library", &cfg->nvml_library);
    if (r >= 0 && (v = cfg_map_get(root, "api_token_file")))
        r = get_string(c, v, "api_token_file", &cfg->api_token_file);
    if (r >= 0 && (v = cfg_map_get(root, "collect_interval")))
        r = get_duration(c, v, "collect_interval", 100 * USEC_PER_MSEC,
                         &cfg->collect_interval_usec);
    if (r >= 0 && (v = cfg_map_get(root, "gpus")))
        r = parse_gpus(c, v, cfg);
    if (r >= 0 && (v = cfg_map_get(root, "health")))
        r = parse_health(c, v, cfg);
    if (r >= 0 && (v = cfg_map_get(root, "worker")))
        r = parse_worker(c, v, cfg);
    return r;
}

struct agent_config *agent_config_free(struct agent_config *c)
{
    if (!c)
        return NULL;
    free(c->path);
    free(c->listen_address);
    free(c->state_dir);
    free(c->hostname);
    free(c->nvml_library);
    free(c->api_token_file);
    free(c->gpus);
    strv_free(c->worker.argv);
    strv_free(c->worker.env);
    free(c->worker.user);
    free(c->worker.working_dir);
    free(c);
    return NULL;
}

/* Builds the config from a parsed tree (freed here). */
static int build(const char *name, struct cfg_node *root, struct agent_config **ret,
                 struct err *reterr)
{
    struct pctx c = { .file = name, .reterr = reterr };
    struct agent_config *cfg = xcalloc(1, sizeof *cfg);
    int r;

    cfg->path = xstrdup(name);
    set_defaults(cfg);
    r = parse_root(&c, root, cfg);
    if (r >= 0 && cfg->worker.present && !cfg->worker.env)
        cfg->worker.env = strv_new(0);
    cfg_node_free(root);
    if (r < 0) {
        agent_config_free(cfg);
        return r;
    }
    *ret = cfg;
    return 0;
}

int agent_config_parse(const char *name, const char *text, size_t len, struct agent_config **ret,
                       struct err *reterr)
{
    struct cfg_node *root = NULL;
    int r = cfg_parse(name, text, len, &root, reterr);

    return r < 0 ? r : build(name, root, ret, reterr);
}

int agent_config_load(const char *path, struct agent_config **ret, struct err *reterr)
{
    struct cfg_node *root = NULL;
    int r = cfg_load_file(path, &root, reterr);

    return r < 0 ? r : build(path, root, ret, reterr);
}
