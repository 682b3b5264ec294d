/* SPDX-License-Identifier: MIT */
/* stack.c - the stack model's lifetime, lookups, start order and ${...} expansion. */
#include "stack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/strv.h"
#include "stack_int.h"

void stack__service_release(struct stack_service *svc)
{
    free(svc->name);
    free(svc->kind);
    free(svc->package);
    strv_free(svc->argv);
    strv_free(svc->env);
    free(svc->user);
    free(svc->working_dir);
    free(svc->netns);
    for (size_t i = 0; i < svc->n_deps; i++)
        free(svc->deps[i].service);
    free(svc->deps);
    probe_spec_release(&svc->health.probe);
    probe_spec_release(&svc->liveness.probe);
    probe_spec_release(&svc->status_probe);
    free(svc->lock.host);
    free(svc->lock.key);
    free(svc->lock.value);
    free(svc->lock.pidfile);
    free(svc->lock.handover_key);
    free(svc->ports);
    strv_free(svc->dirs);
    for (size_t i = 0; i < svc->n_files; i++) {
        free(svc->files[i].template_path);
        free(svc->files[i].path);
    }
    free(svc->files);
    memset(svc, 0, sizeof *svc);
}

struct stack *stack_free(struct stack *s)
{
    if (!s)
        return NULL;
    free(s->name);
    free(s->path);
    free(s->dir);
    strv_free(s->secrets);
    free(s->job_metrics_dir);
    for (size_t i = 0; i < s->n_services; i++)
        stack__service_release(&s->services[i]);
    free(s->services);
    free(s);
    return NULL;
}

struct stack_service *stack_find(const struct stack *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->n_services; i++)
        if (streq(s->services[i].name, name))
            return &s->services[i];
    return NULL;
}

const char *const stack__restart_names[_STACK_RESTART_MAX + 1] = {
    [STACK_RESTART_NO] = "no",
    [STACK_RESTART_ON_FAILURE] = "on-failure",
    [STACK_RESTART_ALWAYS] = "always",
    [_STACK_RESTART_MAX] = NULL,
};

const char *const stack__dep_cond_names[_STACK_DEP_COND_MAX + 1] = {
    [STACK_DEP_STARTED] = "service_started",
    [STACK_DEP_HEALTHY] = "service_healthy",
    [STACK_DEP_COMPLETED] = "service_completed_successfully",
    [_STACK_DEP_COND_MAX] = NULL,
};

const char *stack_restart_to_string(enum stack_restart r)
{
    return (unsigned)r < _STACK_RESTART_MAX ? stack__restart_names[r] : NULL;
}

const char *stack_dep_cond_to_string(enum stack_dep_cond c)
{
    return (unsigned)c < _STACK_DEP_COND_MAX ? stack__dep_cond_names[c] : NULL;
}

/* Kahn's algorithm, always taking the ready service that comes first in the file, so the
 * order is stable with respect to file order.  Dependents are kept in CSR form so placing a
 * service costs its number of dependents. */
size_t stack__order(const struct stack *s, size_t *order, bool *placed)
{
    size_t n = s->n_services, total = 0, done = 0;
    size_t *pending, *start, *fill, *dependents;

    pending = xcalloc(n ? n : 1, sizeof *pending);
    start = xcalloc(n + 1, sizeof *start);
    for (size_t i = 0; i < n; i++) {
        pending[i] = s->services[i].n_deps;
        total += s->services[i].n_deps;
        for (size_t k = 0; k < s->services[i].n_deps; k++)
            start[s->services[i].deps[k].index + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    fill = xcalloc(n ? n : 1, sizeof *fill);
    dependents = xcalloc(total ? total : 1, sizeof *dependents);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s->services[i].n_deps; k++) {
            size_t d = s->services[i].deps[k].index;
            dependents[start[d] + fill[d]++] = i;
        }
    for (size_t i = 0; i < n; i++)
        placed[i] = false;
    while (done < n) {
        size_t pick = n;

        for (size_t i = 0; i < n; i++)
            if (!placed[i] && pending[i] == 0) {
                pick = i;
                break;
            }
        if (pick == n)
            break; /* the rest is a cycle */
        placed[pick] = true;
        order[done++] = pick;
        for (size_t k = start[pick]; k < start[pick + 1]; k++)
            pending[dependents[k]]--;
    }
    free(pending);
    free(start);
    free(fill);
    free(dependents);
    return done;
}

void stack_start_order(const struct stack *s, size_t *ret_order)
{
    bool *placed = xcalloc(s->n_services ? s->n_services : 1, sizeof *placed);
    size_t done = stack__order(s, ret_order, placed);

    /* parse rejects cycles; should one slip in, append the rest in file order */
    for (size_t i = 0; i < s->n_services && done < s->n_services; i++)
        if (!placed[i])
            ret_order[done++] = i;
    free(placed);
}

static void mark_with_deps(const struct stack *s, size_t i, bool *sel)
{
    if (sel[i])
        return;
    sel[i] = true;
    for (size_t k = 0; k < s->services[i].n_deps; k++)
        mark_with_deps(s, s->services[i].deps[k].index, sel);
}

int stack_closure(const struct stack *s, char *const *names, size_t n_names, bool *sel,
                  struct err *reterr)
{
    for (size_t k = 0; k < n_names; k++) {
        const struct stack_service *svc = stack_find(s, names[k]);

        if (!svc)
            return err_set(reterr, -ENOENT, 0, 0, "no service '%s' in stack '%s'", names[k],
                           s->name);
        mark_with_deps(s, (size_t)(svc - s->services), sel);
    }
    return 0;
}

static bool secret_declared(const struct stack *s, const char *name, size_t len)
{
    if (!s->secrets)
        return false;
    for (char **p = s->secrets; *p; p++)
        if (strlen(*p) == len && memcmp(*p, name, len) == 0)
            return true;
    return false;
}

int stack__expand(const struct stack *s, const struct stack_vars *vars, const char *in,
                  struct buf *out, struct err *reterr)
{
    unsigned line = 1, col = 1;
    const char *p = in, *lit = in;
    int r;

#define FLUSH_LITERAL()                                                          \
    do {                                                                         \
        if (out && p > lit) {                                                    \
            r = buf_append(out, lit, (size_t)(p - lit));                         \
            if (r < 0)                                                           \
                return err_set(reterr, r, line, col, "expanded text too large"); \
        }                                                                        \
    } while (0)

    while (*p) {
        const char *ref, *end, *value = NULL;
        size_t len;

        if (p[0] != '$' || (p[1] != '$' && p[1] != '{')) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
            p++;
            continue;
        }
        FLUSH_LITERAL();
        if (p[1] == '$') {
            if (out) {
                r = buf_append(out, "$", 1);
                if (r < 0)
                    return err_set(reterr, r, line, col, "expanded text too large");
            }
            p += 2;
            col += 2;
            lit = p;
            continue;
        }
        ref = p + 2;
        end = ref + strcspn(ref, "}\n");
        if (*end != '}')
            return err_set(reterr, -EINVAL, line, col,
                           "unterminated reference '%.*s' (missing '}'; write $$ for a literal $)",
                           (int)(end - p > 40 ? 40 : end - p), p);
        len = (size_t)(end - ref);
        if (len == 9 && memcmp(ref, "state_dir", 9) == 0) {
            if (vars && !vars->state_dir)
                return err_set(reterr, -EINVAL, line, col, "${state_dir} has no value");
            value = vars ? vars->state_dir : NULL;
        } else if (len == 9 && memcmp(ref, "stack_dir", 9) == 0) {
            value = s->dir;
        } else if (len == 9 && memcmp(ref, "tools_dir", 9) == 0) {
            if (vars && !vars->tools_dir)
                return err_set(reterr, -EINVAL, line, col, "${tools_dir} has no value");
            value = vars ? vars->tools_dir : NULL;
        } else if (len > 7 && memcmp(ref, "secret.", 7) == 0) {
            if (!secret_declared(s, ref + 7, len - 7))
                return err_set(reterr, -EINVAL, line, col,
                               "secret '%.*s' is not declared under 'secrets'",
                               (int)(len - 7 > 64 ? 64 : len - 7), ref + 7);
            if (vars) {
                char name[128];

                /* declared names are short: secret_declared() matched one */
                (void)snprintf(name, sizeof name, "%.*s", (int)(len - 7), ref + 7);
                value = vars->secret ? vars->secret(name, vars->userdata) : NULL;
                if (!value)
                    return err_set(reterr, -EINVAL, line, col, "secret '%s' is missing", name);
            }
        } else {
            return err_set(reterr, -EINVAL, line, col,
                           "unknown reference '${%.*s}' (known: ${state_dir}, ${stack_dir}, "
                           "${tools_dir}, ${secret.NAME}; write $$ for a literal $)",
                           (int)(len > 40 ? 40 : len), ref);
        }
        if (out && value) {
            r = buf_puts(out, value);
            if (r < 0)
                return err_set(reterr, r, line, col, "expanded text too large");
        }
        col += (unsigned)(end + 1 - p);
        p = end + 1;
        lit = p;
    }
    FLUSH_LITERAL();
    if (out && !out->data) {
        /* make an empty result a valid C string */
        r = buf_append(out, "", 0);
        if (r < 0)
            return err_set(reterr, r, line, col, "expanded text too large");
    }
#undef FLUSH_LITERAL
    return 0;
}

int stack_expand(const struct stack *s, const struct stack_vars *vars, const char *in,
                 struct buf *out, struct err *reterr)
{
    return stack__expand(s, vars, in, out, reterr);
}
