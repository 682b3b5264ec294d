/* SPDX-License-Identifier: MIT */
/* resolve.c - stack_resolve(): expand every ${...} of a parsed stack, all or nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "stack.h"
#include "stack_int.h"

struct slot {
    char **where;
    char *value;
};

struct resolver {
    struct stack *s;
    const struct stack_vars *vars;
    struct err *reterr;
    struct slot *slots;
    size_t n, cap;
};

/* "services.NAME.FIELD", or FIELD alone for the stack's own fields (svc NULL). */
static const char *field_path(char *buf, size_t n, const struct stack_service *svc,
                              const char *field)
{
    if (svc)
        (void)snprintf(buf, n, "services.%s.%s", svc->name, field);
    else
        (void)snprintf(buf, n, "%s", field);
    return buf;
}

/* Expands *where into a pending slot; field names the place for errors (a field of svc, or of
 * the stack when svc is NULL); must_be_abs demands an absolute result. */
static int visit(struct resolver *rs, const struct stack_service *svc, char **where,
                 const char *field, bool must_be_abs)
{
    struct buf out = BUF_INIT(STACK_EXPAND_MAX);
    struct err e = ERR_INIT;
    char name[200];
    int r;

    if (!*where)
        return 0;
    r = stack__expand(rs->s, rs->vars, *where, &out, &e);
    if (r < 0) {
        buf_release(&out);
        err_set_file(rs->reterr, rs->s->path);
        return err_set(rs->reterr, r, svc ? svc->line : 0, 0, "%s: %s",
                       field_path(name, sizeof name, svc, field), e.msg);
    }
    if (must_be_abs && out.data[0] != '/') {
        buf_release(&out);
        err_set_file(rs->reterr, rs->s->path);
        return err_set(rs->reterr, -EINVAL, svc ? svc->line : 0, 0,
                       "%s: '%s' is not an absolute path",
                       field_path(name, sizeof name, svc, field), *where);
    }
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 32;
        rs->slots = xrealloc(rs->slots, rs->cap * sizeof *rs->slots);
    }
    rs->slots[rs->n++] = (struct slot){ .where = where, .value = buf_detach(&out, NULL) };
    return 0;
}

static int visit_strv(struct resolver *rs, const struct stack_service *svc, char **v,
                      const char *field, bool must_be_abs)
{
    char name[128]; /* field names are short literals; room for "[index]" */
    int r;

    for (size_t i = 0; v && v[i]; i++) {
        (void)snprintf(name, sizeof name, "%s[%zu]", field, i);
        r = visit(rs, svc, &v[i], name, must_be_abs);
        if (r < 0)
            return r;
    }
    return 0;
}

static int visit_probe(struct resolver *rs, const struct stack_service *svc, struct probe_spec *p,
                       const char *what)
{
    struct {
        char **where;
        const char *name;
    } fields[] = {
        { &p->host, "host" },   { &p->path, "path" },         { &p->method, "method" },
        { &p->user, "user" },   { &p->password, "password" }, { &p->dbname, "dbname" },
        { &p->query, "query" },
    };
    char name[96];
    int r;

    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        (void)snprintf(name, sizeof name, "%s.%s", what, fields[i].name);
        r = visit(rs, svc, fields[i].where, name, false);
        if (r < 0)
            return r;
    }
    (void)snprintf(name, sizeof name, "%s.command", what);
    r = visit_strv(rs, svc, p->command, name, false);
    if (r < 0)
        return r;
    return visit_strv(rs, svc, p->argv, name, false);
}

static int visit_service(struct resolver *rs, struct stack_service *svc)
{
    char name[96];
    int r;

    r = visit_strv(rs, svc, svc->argv, "command", false);
    if (r < 0)
        return r;
    r = visit_strv(rs, svc, svc->env, "environment", false);
    if (r < 0)
        return r;
    r = visit(rs, svc, &svc->working_dir, "working_dir", true);
    if (r < 0)
        return r;
    r = visit_strv(rs, svc, svc->dirs, "dirs", true);
    if (r < 0)
        return r;
    for (size_t i = 0; i < svc->n_files; i++) {
        (void)snprintf(name, sizeof name, "files[%zu].template", i);
        r = visit(rs, svc, &svc->files[i].template_path, name, true);
        if (r < 0)
            return r;
        (void)snprintf(name, sizeof name, "files[%zu].path", i);
        r = visit(rs, svc, &svc->files[i].path, name, true);
        if (r < 0)
            return r;
    }
    if (svc->health.present) {
        r = visit_probe(rs, svc, &svc->health.probe, "healthcheck");
        if (r < 0)
            return r;
    }
    if (svc->liveness.present) {
        r = visit_probe(rs, svc, &svc->liveness.probe, "liveness");
        if (r < 0)
            return r;
    }
    if (svc->lock.present) {
        r = visit(rs, svc, &svc->lock.key, "lock.key", false);
        if (r >= 0)
            r = visit(rs, svc, &svc->lock.value, "lock.value", false);
        if (r >= 0)
            r = visit(rs, svc, &svc->lock.host, "lock.host", false);
        if (r >= 0)
            r = visit(rs, svc, &svc->lock.pidfile, "lock.pidfile", true);
        if (r >= 0)
            r = visit(rs, svc, &svc->lock.handover_key, "lock.handover_key", false);
        if (r < 0)
            return r;
    }
    if (svc->has_status_probe) {
        r = visit_probe(rs, svc, &svc->status_probe, "status_probe");
        if (r < 0)
            return r;
    }
    return 0;
}

int stack_resolve(struct stack *s, const struct stack_vars *vars, struct err *reterr)
{
    struct resolver rs = { .s = s, .vars = vars, .reterr = reterr };
    int r = 0;

    if (s->resolved) {
        err_set_file(reterr, s->path);
        return err_set(reterr, -EALREADY, 0, 0, "the stack is already resolved");
    }
    if (!vars || !vars->state_dir || vars->state_dir[0] != '/') {
        err_set_file(reterr, s->path);
        return err_set(reterr, -EINVAL, 0, 0, "the state directory must be an absolute path");
    }
    r = visit(&rs, NULL, &s->job_metrics_dir, "jobs.metrics_dir", true);
    for (size_t i = 0; i < s->n_services && r >= 0; i++)
        r = visit_service(&rs, &s->services[i]);
    for (size_t i = 0; i < rs.n; i++) {
        if (r < 0) {
            free(rs.slots[i].value);
            continue;
        }
        free(*rs.slots[i].where);
        *rs.slots[i].where = rs.slots[i].value;
    }
    free(rs.slots);
    if (r == 0)
        s->resolved = true;
    return r;
}
