/* SPDX-License-Identifier: MIT */
/* secrets.h - the stack's generated secrets: STATE/secrets/NAME, 32 chars [A-Za-z0-9] each,
 * mode 0600 in a 0700 directory.  Values are never logged; stack_secrets_free() wipes them.
 *
 * Ownership: struct stack_secrets is owned by the caller of stack_secrets_ensure() and holds
 * copies of the names and values, so it does not depend on the stack's lifetime. */
#pragma once

#include <stdbool.h>

#include "core/macro.h"

struct err;
struct stack;
struct stack_secrets;

#define STACK_SECRET_LEN 32

/* Makes sure STATE/secrets exists (mkdir -p, 0700) and loads every secret declared by the
 * stack.  With create, a missing secret is generated from getrandom() and written atomically
 * without ever replacing a file that appears meanwhile (then that file's value is used).
 * Without create, a missing secret (or directory) is -ENOENT.  A secret file is read as is,
 * minus one trailing newline; an empty one is -EINVAL.  Other errors are -errno. */
int stack_secrets_ensure(const struct stack *s, const char *state_dir, bool create,
                         struct stack_secrets **ret) WARN_UNUSED_RESULT;
/* Same, with *reterr naming the secret's file and what failed (never its value). */
int stack_secrets_ensure_err(const struct stack *s, const char *state_dir, bool create,
                             struct stack_secrets **ret, struct err *reterr) WARN_UNUSED_RESULT;
/* Borrowed value of a secret, or NULL.  Has the shape of stack_vars.secret: pass the
 * struct stack_secrets as userdata. */
const char *stack_secrets_lookup(const char *name, void *userdata);
/* Wipes and frees.  NULL-safe; returns NULL. */
struct stack_secrets *stack_secrets_free(struct stack_secrets *ss);
