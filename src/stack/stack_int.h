/* SPDX-License-Identifier: MIT */
/* stack_int.h - helpers shared by the stack module's files (parser, resolver, preparation). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/macro.h"
#include "stack.h"

struct buf;
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
