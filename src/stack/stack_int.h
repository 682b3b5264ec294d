/* SPDX-License-Identifier: MIT */
/* stack_int.h - helpers shared by the stack module's files (parser, resolver, preparation). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/macro.h"
#include "stack.h"

struct buf;
struct cfg_ctx;
struct cfg_node;
struct err;

#define STACK_EXPAND_MAX (16u * 1024u * 1024u) /* bound on one expanded string or template */

/* Expands (or, with vars == NULL, only validates) the references of `in` against the stack's
 * declared secrets and directory.  out may be NULL when validating.  On error reterr gets
 * -EINVAL/-ENOBUFS, the 1-based line/col inside `in` and a message; its file is untouched. */
int stack__expand(const struct stack *s, const struct stack_vars *vars, const char *in,
                  struct buf *out, struct err *reterr) WARN_UNUSED_RESULT;
/* Frees everything a service owns (the struct itself is not freed). */
void stack__service_release(struct stack_service *svc);
/* Start order into order[] (n_services entries); returns how many services could be placed
 * (less than n_services only when dependencies form a cycle; then placed[] tells which). */
size_t stack__order(const struct stack *s, size_t *order, bool *placed);

/* The names of the enums, indexed by value and NULL-terminated (for cfg_get_enum()). */
extern const char *const stack__restart_names[_STACK_RESTART_MAX + 1];
extern const char *const stack__dep_cond_names[_STACK_DEP_COND_MAX + 1];

/* The stack file parser (stack_parse.c, stack_parse_service.c).  Each takes the document's
 * context, whose userdata is the struct stack being built (its secrets and directory), and
 * returns 0 or -EINVAL with c->reterr set. */

/* Parses the service `key` (map m) into svc, which the caller has zeroed and frees with
 * stack__service_release() either way. */
int stack__parse_service(const struct cfg_ctx *c, const struct cfg_node *key,
                         const struct cfg_node *m, struct stack_service *svc) WARN_UNUSED_RESULT;
/* Accepts n->value if it is a name of 1..max characters from [a-z0-9_-] (with upper, also
 * A-Z); otherwise "PATH: invalid name 'x' (use ..., at most MAX characters)". */
int stack__check_name(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                      size_t max, bool upper) WARN_UNUSED_RESULT;

/* Accepts paths that end up absolute: "/..." or starting with a directory reference (and
 * checks their references). */
int stack__valid_abs_path(const struct cfg_ctx *c, const struct cfg_node *n,
                          const char *path) WARN_UNUSED_RESULT;

/* Scheduled services (stack_parse_schedule.c). */

/* CFG_CUSTOM parser of a service's `schedule:` map into its struct stack_schedule (field). */
int stack__parse_schedule(const struct cfg_ctx *c, const struct cfg_node *key,
                          const struct cfg_node *m, const char *path,
                          void *field) WARN_UNUSED_RESULT;
/* After a service with a schedule is parsed: refuses the keys that make no sense for a job
 * (restart, restart_backoff, healthcheck, liveness, freeze_after, lock) at their position, and
 * sets its restart policy to "no". */
int stack__check_job(const struct cfg_ctx *c, const struct cfg_node *m,
                     struct stack_service *svc) WARN_UNUSED_RESULT;
/* CFG_CUSTOM parser of the top-level `jobs:` map (field: the struct stack). */
int stack__parse_jobs(const struct cfg_ctx *c, const struct cfg_node *key, const struct cfg_node *m,
                      const char *path, void *field) WARN_UNUSED_RESULT;
/* Stores the `jobs:` defaults into s (for a file without the section). */
void stack__jobs_defaults(struct stack *s);
