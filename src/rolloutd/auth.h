/* SPDX-License-Identifier: MIT */
/* auth.h - rolloutd's bearer tokens: generation, SHA-256 hashing, constant-time checks and the
 * scopes (admin: everything; eval: evaluation, snapshot and stream of one environment). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct http_request;
struct rd;

#define AUTH_TOKEN_PREFIX "rt_"
#define AUTH_TOKEN_LEN    (3 + 64) /* "rt_" + 32 random bytes in hex */
#define AUTH_NAME_MAX     64

enum auth_scope {
    AUTH_SCOPE_ADMIN,
    AUTH_SCOPE_EVAL,
    _AUTH_SCOPE_MAX,
};

/* A token as rolloutd keeps it (the secret itself is never stored). */
struct auth_token {
    char *id;   /* "tok_" + 12 hex; public */
    char *name; /* who, in audit entries */
    enum auth_scope scope;
    char *env; /* eval tokens: their environment; admin tokens: "*" */
    uint8_t hash[32];
    uint64_t created_usec;
};

/* Who made a request (copied out of the token table). */
struct auth_principal {
    char name[AUTH_NAME_MAX + 1];
    char id[32];
    enum auth_scope scope;
    char env[40]; /* "*" for admin */
};

void auth_sha256(const void *data, size_t n, uint8_t out[32]);
/* Fills buf (>= 2n+1 bytes) with lowercase hex. */
void auth_hex(const uint8_t *p, size_t n, char *buf);
/* true when a and b (n bytes) are equal; time independent of the contents. */
bool auth_equal(const uint8_t *a, const uint8_t *b, size_t n);
/* A fresh secret token (AUTH_TOKEN_LEN chars + NUL) from getrandom(), and a token id. */
int auth_token_generate(char secret[AUTH_TOKEN_LEN + 1], char id[17]) WARN_UNUSED_RESULT;

const char *auth_scope_name(enum auth_scope s);
int auth_scope_from_name(const char *s);

/* Token JSON as stored: {"id","name","scope","env","hash","created_usec"}; the public form
 * (no hash) for listings and audit entries.  Caller frees. */
char *auth_token_to_json(const struct auth_token *t, bool with_hash);
int auth_token_from_json(const char *json, struct auth_token *ret) WARN_UNUSED_RESULT;
void auth_token_release(struct auth_token *t);

/* Checks the request's "Authorization: Bearer ..." against rd's tokens.  -EACCES (401: none or
 * unknown; a WWW-Authenticate header is set) or 0 with *ret filled.  Thread-safe. */
int auth_check(struct rd *rd, struct http_request *req,
               struct auth_principal *ret) WARN_UNUSED_RESULT;
/* 0 when p is an admin, else -EPERM with the error detail set on req. */
int auth_require_admin(struct http_request *req, const struct auth_principal *p) WARN_UNUSED_RESULT;
/* Picks the environment a request evaluates in, one of envs (the n_envs configured names,
 * borrowed; envs[0] is the default): an eval token's own (a different ?env= is -EPERM), for
 * admin tokens ?env= or envs[0].  -ENOENT for a name not in envs.  Errors set the detail on req.
 * *ret_env is borrowed from envs.  The caller passes the list, so auth needs nothing of the
 * daemon's state beyond the token table. */
int auth_pick_env(struct http_request *req, const struct auth_principal *p, char *const *envs,
                  size_t n_envs, const char **ret_env) WARN_UNUSED_RESULT;
