/* SPDX-License-Identifier: MIT */
/* config.c - strict parser of gpu_agent's YAML configuration (docs/gpu_agent.md): option
 * tables over the cfg module, so every error names the key and file:line:col. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/strv.h"

/* The supervisor's control socket lives in the state directory: unix socket paths are short. */
#define STATE_DIR_MAX 90

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
static int check_template(const struct cfg_ctx *c, const struct cfg_node *v, const char *path)
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
        return cfg_error(c, &at,
                         "%s: unknown placeholder in '%.60s' (use {index}, {uuid}, {pci_bus_id}, "
                         "{name}, {minor}, {host}; {{ and }} for braces)",
                         path, v->value);
    }
    return r;
}

static int check_state_dir(const struct cfg_ctx *c, const struct cfg_node *v, const char *path)
{
    if (v->len > STATE_DIR_MAX)
        return cfg_error(c, v, "%s: longer than %d characters", path, STATE_DIR_MAX);
    return 0;
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

static const struct {
    const char *key;
    enum gpu_tier tier;
} xid_lists[] = {
    { "fail_now_xids", GPU_TIER_FAIL_NOW },
    { "drain_later_xids", GPU_TIER_DRAIN_LATER },
    { "count_xids", GPU_TIER_COUNT },
};

/* The health section: each XID in at most one list. */
struct xid_tiers {
    unsigned char *tier; /* agent_config.xid_tier */
    bool seen[AGENT_XID_MAX + 1];
};

/* A list of XIDs that all get the list's tier.  A list given replaces the default members of
 * its tier (they fall back to "count"); a later list wins over the defaults only. */
static int parse_xid_list(const struct cfg_ctx *c, const struct cfg_node *key,
                          const struct cfg_node *v, const char *path, void *field)
{
    struct xid_tiers *t = field;
    enum gpu_tier tier = GPU_TIER_COUNT;
    int r = cfg_expect(c, v, path, CFG_NODE_SEQ);

    if (r < 0)
        return r;
    for (size_t l = 0; l < ARRAY_SIZE(xid_lists); l++)
        if (streq(key->value, xid_lists[l].key))
            tier = xid_lists[l].tier;
    for (unsigned x = 0; x <= AGENT_XID_MAX; x++)
        if (t->tier[x] == tier && !t->seen[x])
            t->tier[x] = GPU_TIER_COUNT;
    for (size_t i = 0; i < v->n; i++) {
        char sub[CFG_PATH_MAX];
        uint64_t x;

        r = cfg_get_uint(c, v->items[i], cfg_path_index(sub, path, i), 0, AGENT_XID_MAX, &x);
        if (r < 0)
            return r;
        if (t->seen[x])
            return cfg_error(c, v->items[i], "%s: XID %u is listed twice", path, (unsigned)x);
        t->seen[x] = true;
        t->tier[x] = (unsigned char)tier;
    }
    return 0;
}

static const struct cfg_option health_opts[] = {
    { .key = "fail_now_xids", .type = CFG_CUSTOM, .parse = parse_xid_list },
    { .key = "drain_later_xids", .type = CFG_CUSTOM, .parse = parse_xid_list },
    { .key = "count_xids", .type = CFG_CUSTOM, .parse = parse_xid_list },
    { .key = NULL },
};

static int parse_health(const struct cfg_ctx *c, const struct cfg_node *key,
                        const struct cfg_node *m, const char *path, void *field)
{
    struct xid_tiers t = { .tier = field };

    return cfg_parse_section(c, m, path, key, health_opts, &t);
}

#define WORKER_OPT(key_, type_, field_) CFG_OPT(struct agent_worker_config, key_, type_, field_)

static const struct cfg_option backoff_opts[] = {
    { WORKER_OPT("initial", CFG_DURATION, backoff_initial_usec), .default_value = "1s",
      .min = USEC_PER_SEC },
    { WORKER_OPT("max", CFG_DURATION, backoff_max_usec), .default_value = "30s",
      .min = USEC_PER_SEC },
    { WORKER_OPT("reset_after", CFG_DURATION, backoff_reset_usec), .default_value = "60s" },
    { .key = NULL },
};

static int parse_backoff(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *m, const char *path, void *field)
{
    struct agent_worker_config *w = field;
    int r = cfg_parse_section(c, m, path, key, backoff_opts, w);

    if (r >= 0 && w->backoff_max_usec < w->backoff_initial_usec)
        r = cfg_error(c, m, "%s: max is below initial", path);
    return r;
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

/* KEY: template (a key alone sets the variable to ""). */
static int parse_environment(const struct cfg_ctx *c, const struct cfg_node *key,
                             const struct cfg_node *m, const char *path, void *field)
{
    char ***ret = field, **env;
    int r = cfg_expect(c, m, path, CFG_NODE_MAP);

    (void)key;
    if (r < 0)
        return r;
    env = xcalloc(m->n + 1, sizeof *env);
    for (size_t i = 0; i < m->n && r >= 0; i++) {
        const struct cfg_node *k = m->keys[i], *v = m->items[i];
        char sub[CFG_PATH_MAX], *val = NULL;

        if (!env_name_ok(k->value))
            r = cfg_error(c, k, "%s: invalid variable name '%.40s'", path, k->value);
        else if (!cfg_node_is_null(v))
            r = cfg_get_str(c, v, cfg_path_join(sub, path, k->value), CFG_F_EMPTY_OK,
                            check_template, &val);
        if (r >= 0)
            env[i] = xasprintf("%s=%s", k->value, val ? val : "");
        free(val);
    }
    if (r < 0) {
        strv_free(env);
        return r;
    }
    strv_free(*ret);
    *ret = env;
    return 0;
}

static const char *const restart_names[_AGENT_RESTART_MAX + 1] = {
    [AGENT_RESTART_ALWAYS] = "always",
    [AGENT_RESTART_ON_FAILURE] = "on-failure",
    [_AGENT_RESTART_MAX] = NULL,
};

static const struct cfg_option worker_opts[] = {
    { WORKER_OPT("command", CFG_STRV, argv),
      .flags = CFG_F_REQUIRED | CFG_F_NONEMPTY | CFG_F_EMPTY_OK, .validate = check_template },
    { WORKER_OPT("environment", CFG_CUSTOM, env), .parse = parse_environment },
    { WORKER_OPT("user", CFG_STR, user), .flags = CFG_F_EMPTY_OK },
    { WORKER_OPT("working_dir", CFG_ABS_PATH, working_dir), .flags = CFG_F_EMPTY_OK },
    { WORKER_OPT("restart", CFG_ENUM, restart), .default_value = "always", .what = "restart policy",
      .names = restart_names },
    { .key = "restart_backoff", .type = CFG_CUSTOM, .parse = parse_backoff },
    { WORKER_OPT("max_restarts", CFG_UINT, max_restarts), .max = 1000000 },
    { WORKER_OPT("stop_signal", CFG_SIGNAL, stop_signal), .default_value = "SIGTERM" },
    { WORKER_OPT("stop_grace_period", CFG_DURATION, stop_grace_usec), .default_value = "10s" },
    { WORKER_OPT("drain_later_signal", CFG_SIGNAL, drain_later_signal),
      .default_value = "SIGTERM" },
    { WORKER_OPT("drain_later_grace_period", CFG_DURATION, drain_later_grace_usec),
      .default_value = "24h" },
    { WORKER_OPT("log_max_bytes", CFG_SIZE, log_max_bytes), .default_value = "10MiB" },
    { WORKER_OPT("log_keep", CFG_UINT, log_keep), .default_value = "3", .max = 100 },
    { .key = NULL },
};

static int parse_worker(const struct cfg_ctx *c, const struct cfg_node *key,
                        const struct cfg_node *m, const char *path, void *field)
{
    struct agent_worker_config *w = field;
    int r;

    (void)key;
    r = cfg_parse_section(c, m, path, NULL, worker_opts, w);
    if (r < 0)
        return r;
    w->present = true;
    if (!w->env)
        w->env = xcalloc(1, sizeof *w->env);
    return 0;
}

/* "all", or a list of GPU indices. */
static int parse_gpus(const struct cfg_ctx *c, const struct cfg_node *key, const struct cfg_node *v,
                      const char *path, void *field)
{
    struct agent_config *cfg = field;

    (void)key;
    if (v->type == CFG_NODE_SCALAR && streq(v->value, "all")) {
        cfg->all_gpus = true;
        return 0;
    }
    if (v->type != CFG_NODE_SEQ)
        return cfg_error(c, v, "%s: expected 'all' or a list of GPU indices", path);
    cfg->all_gpus = false;
    cfg->gpus = xcalloc(v->n ? v->n : 1, sizeof *cfg->gpus);
    for (size_t i = 0; i < v->n; i++) {
        char sub[CFG_PATH_MAX];
        uint64_t x;
        int r = cfg_get_uint(c, v->items[i], cfg_path_index(sub, path, i), 0, AGENT_MAX_GPUS - 1,
                             &x);

        if (r < 0)
            return r;
        for (size_t k = 0; k < cfg->n_gpus; k++)
            if (cfg->gpus[k] == x)
                return cfg_error(c, v->items[i], "%s: GPU %u is listed twice", path, (unsigned)x);
        cfg->gpus[cfg->n_gpus++] = (unsigned)x;
    }
    return 0;
}

#define AGENT_OPT(key_, type_, field_) CFG_OPT(struct agent_config, key_, type_, field_)

static const struct cfg_option root_opts[] = {
    { AGENT_OPT("listen_address", CFG_STR, listen_address), .flags = CFG_F_EMPTY_OK,
      .default_value = AGENT_DEFAULT_LISTEN },
    { AGENT_OPT("state_dir", CFG_ABS_PATH, state_dir), .flags = CFG_F_EMPTY_OK,
      .default_value = "/var/lib/gpu_agent", .validate = check_state_dir },
    { AGENT_OPT("hostname", CFG_STR, hostname), .flags = CFG_F_EMPTY_OK },
    { AGENT_OPT("nvml_library", CFG_STR, nvml_library), .flags = CFG_F_EMPTY_OK },
    { AGENT_OPT("api_token_file", CFG_STR, api_token_file), .flags = CFG_F_EMPTY_OK },
    { AGENT_OPT("collect_interval", CFG_DURATION, collect_interval_usec), .default_value = "1s",
      .min = 100 * USEC_PER_MSEC },
    { .key = "gpus", .type = CFG_CUSTOM, .parse = parse_gpus },
    { AGENT_OPT("health", CFG_CUSTOM, xid_tier), .parse = parse_health },
    { AGENT_OPT("worker", CFG_CUSTOM, worker), .parse = parse_worker },
    { .key = NULL },
};

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

/* Builds the config from a parsed tree (freed here); an empty file means every default. */
static int build(const char *name, struct cfg_node *root, struct agent_config **ret,
                 struct err *reterr)
{
    struct cfg_ctx c = { .file = name, .reterr = reterr, .key_noun = "key" };
    struct agent_config *cfg = xcalloc(1, sizeof *cfg);
    int r = 0;

    cfg->path = xstrdup(name);
    cfg->all_gpus = true;
    agent_config_default_xid_tiers(cfg->xid_tier);
    cfg_set_defaults(root_opts, cfg);
    cfg_set_defaults(worker_opts, &cfg->worker);
    cfg_set_defaults(backoff_opts, &cfg->worker);
    if (root)
        r = cfg_expect(&c, root, "(top level)", CFG_NODE_MAP);
    if (root && r >= 0)
        r = cfg_parse_section(&c, root, "", NULL, root_opts, cfg);
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
