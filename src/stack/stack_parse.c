/* SPDX-License-Identifier: MIT */
/* stack_parse.c - strict stack file parser (docs/stack-file.md): every error names the
 * field's path and file:line:col; nothing is accepted that the document does not describe.
 * This file reads the top level and checks the whole; stack_parse_service.c reads a service. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/strv.h"
#include "stack.h"
#include "stack_int.h"

#define STACK_NAME_MAX  64
#define SECRET_NAME_MAX 64

static int valid_stack_name(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    return stack__check_name(c, n, path, STACK_NAME_MAX, false);
}

static int valid_secret_name(const struct cfg_ctx *c, const struct cfg_node *n, const char *path)
{
    return stack__check_name(c, n, path, SECRET_NAME_MAX, true);
}

static int parse_secrets(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *n, const char *path, void *field)
{
    char ***ret = field, **secrets;
    int r;

    (void)key;
    r = cfg_get_strv(c, n, path, CFG_F_EMPTY_OK, valid_secret_name, &secrets);
    if (r < 0)
        return r;
    for (size_t i = 0; secrets[i]; i++)
        for (size_t j = 0; j < i; j++)
            if (streq(secrets[j], secrets[i])) {
                char sub[CFG_PATH_MAX];

                r = cfg_error(c, n->items[i], "%s: secret '%s' is listed twice",
                              cfg_path_index(sub, path, i), secrets[i]);
                strv_free(secrets);
                return r;
            }
    strv_free(*ret);
    *ret = secrets;
    return 0;
}

#define STACK_OPT(key_, type_, field_) CFG_OPT(struct stack, key_, type_, field_)
static const struct cfg_option log_opts[] = {
    { STACK_OPT("max_size", CFG_SIZE, log_max_bytes), .default_value = "10MiB", .min = 1024 },
    { STACK_OPT("keep", CFG_UINT, log_keep), .default_value = "3", .max = 1000 },
    { .key = NULL },
};

static int parse_log(const struct cfg_ctx *c, const struct cfg_node *key, const struct cfg_node *m,
                     const char *path, void *field)
{
    return cfg_parse_section(c, m, path, key, log_opts, field);
}

static int parse_services(const struct cfg_ctx *c, const struct cfg_node *key,
                          const struct cfg_node *services, const char *path, void *field)
{
    struct stack *s = field;
    int r;

    (void)key;
    r = cfg_expect(c, services, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    if (services->n == 0)
        return cfg_error(c, services, "%s: at least one service is required", path);
    if (services->n > STACK_MAX_SERVICES)
        return cfg_error(c, services, "%s: too many services (%zu, at most %u)", path, services->n,
                         STACK_MAX_SERVICES);
    s->services = xcalloc(services->n, sizeof *s->services);
    for (size_t i = 0; i < services->n; i++) {
        s->n_services = i + 1;
        r = stack__parse_service(c, services->keys[i], services->items[i], &s->services[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The top level.  Secrets come before services, whose ${secret.NAME} references they check. */
static const struct cfg_option stack_opts[] = {
    { STACK_OPT("name", CFG_STR, name), .flags = CFG_F_REQUIRED | CFG_F_EMPTY_OK,
      .validate = valid_stack_name },
    { STACK_OPT("secrets", CFG_CUSTOM, secrets), .parse = parse_secrets },
    { .key = "log", .type = CFG_CUSTOM, .parse = parse_log },
    { .key = "jobs", .type = CFG_CUSTOM, .parse = stack__parse_jobs },
    { .key = "services", .type = CFG_CUSTOM, .flags = CFG_F_REQUIRED, .parse = parse_services },
    { .key = NULL },
};

/* Each port belongs to one service of the stack, once. */
static int check_ports(const struct cfg_ctx *c, const struct stack *s,
                       const struct cfg_node *services)
{
    unsigned short *owner = xcalloc(65536, sizeof *owner); /* service index + 1 */
    int r = 0;

    for (size_t i = 0; i < s->n_services && r >= 0; i++) {
        const struct cfg_node *pn = cfg_map_get(services->items[i], "ports");

        for (size_t k = 0; k < s->services[i].n_ports && r >= 0; k++) {
            uint16_t port = s->services[i].ports[k];

            if (!owner[port])
                owner[port] = (unsigned short)(i + 1);
            else if ((size_t)owner[port] - 1 == i)
                r = cfg_error(c, pn->items[k], "services.%s.ports[%zu]: port %u is listed twice",
                              s->services[i].name, k, port);
            else
                r = cfg_error(c, pn->items[k],
                              "services.%s.ports[%zu]: port %u is already used by service '%s'",
                              s->services[i].name, k, port,
                              s->services[(size_t)owner[port] - 1].name);
        }
    }
    free(owner);
    return r;
}

/* Every dependency names a service of the stack: its index is filled in. */
static int resolve_deps(const struct cfg_ctx *c, struct stack *s)
{
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t k = 0; k < s->services[i].n_deps; k++) {
            struct stack_dep *d = &s->services[i].deps[k];
            struct stack_service *t = stack_find(s, d->service);

            if (!t)
                return cfg_error_at(c, d->line, d->col,
                                    "services.%s.depends_on: unknown service '%s'",
                                    s->services[i].name, d->service);
            /* A job is idle most of the time: a service waiting on it would wait for hours. */
            if (t->schedule.present)
                return cfg_error_at(c, d->line, d->col,
                                    "services.%s.depends_on: '%s' is a scheduled service (a job); "
                                    "nothing can depend on one",
                                    s->services[i].name, d->service);
            d->index = (size_t)(t - s->services);
        }
    return 0;
}

/* Some services could not be placed in a start order: each waits on another unplaced one, so
 * walking from one of them along unplaced dependencies loops.  Reports that loop. */
static int cycle_error(const struct cfg_ctx *c, const struct stack *s, const bool *placed)
{
    size_t *walk = xcalloc(s->n_services + 1, sizeof *walk);
    size_t *step = xcalloc(s->n_services, sizeof *step); /* position in walk + 1 */
    size_t at = 0, len = 0, first;
    const struct stack_dep *edge = NULL;
    const struct stack_service *from;
    char msg[200];
    int r;

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
    from = &s->services[walk[first]];
    for (size_t k = 0; k < from->n_deps && !edge; k++)
        if (from->deps[k].index == walk[first + 1 < len ? first + 1 : first])
            edge = &from->deps[k];
    r = cfg_error_at(c, edge ? edge->line : from->line, edge ? edge->col : 0,
                     "services.%s.depends_on: dependency cycle: %s", from->name, msg);
    free(walk);
    free(step);
    return r;
}

/* Ports unique across the stack, dependencies known, no cycles. */
static int check_graph(const struct cfg_ctx *c, const struct cfg_node *services)
{
    struct stack *s = c->userdata;
    size_t *order;
    bool *placed;
    int r;

    r = check_ports(c, s, services);
    if (r < 0)
        return r;
    r = resolve_deps(c, s);
    if (r < 0)
        return r;
    order = xcalloc(s->n_services, sizeof *order);
    placed = xcalloc(s->n_services, sizeof *placed);
    if (stack__order(s, order, placed) < s->n_services)
        r = cycle_error(c, s, placed);
    free(order);
    free(placed);
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
    struct cfg_node *root = NULL;
    struct stack *s = xcalloc(1, sizeof *s);
    struct cfg_ctx c = { .file = name, .reterr = reterr, .userdata = s };
    int r;

    s->path = xstrdup(name);
    s->dir = dir_of(name);
    s->secrets = xcalloc(1, sizeof *s->secrets);
    cfg_set_defaults(log_opts, s);
    stack__jobs_defaults(s);

    r = cfg_parse(name, text, len, &root, reterr);
    if (r < 0)
        goto out;
    if (!root) {
        r = cfg_error(&c, NULL, "the stack file is empty");
        goto out;
    }
    r = cfg_expect(&c, root, "the stack file", CFG_NODE_MAP);
    if (r < 0)
        goto out;
    r = cfg_parse_section(&c, root, "", NULL, stack_opts, s);
    if (r < 0)
        goto out;
    r = check_graph(&c, cfg_map_get(root, "services"));
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
