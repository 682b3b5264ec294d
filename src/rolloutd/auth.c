/* SPDX-License-Identifier: MIT */
/* auth.c - bearer tokens: random secrets, SHA-256 at rest, constant-time comparison, scopes. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <jansson.h>

#include "core/str.h"
#include "http/http.h"
#include "rolloutd.h"

void auth_hex(const uint8_t *p, size_t n, char *buf)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = digits[p[i] >> 4];
        buf[2 * i + 1] = digits[p[i] & 15];
    }
    buf[2 * n] = '\0';
}

/* Words at a time, no early exit: the empty asm keeps the compiler from reasoning about acc
 * (and so from stopping at the first difference).  A volatile accumulator, the usual idiom,
 * costs a store per byte, and this runs several times per request. */
bool auth_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;

        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        acc |= x ^ y;
        __asm__ volatile("" : "+r"(acc));
    }
    for (; i < n; i++) {
        acc |= (uint64_t)(a[i] ^ b[i]);
        __asm__ volatile("" : "+r"(acc));
    }
    return acc == 0;
}

static int random_bytes(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = getrandom(p, n, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int auth_token_generate(char secret[AUTH_TOKEN_LEN + 1], char id[17])
{
    uint8_t raw[32 + 6];
    int r = random_bytes(raw, sizeof raw);

    if (r < 0)
        return r;
    memcpy(secret, AUTH_TOKEN_PREFIX, 3);
    auth_hex(raw, 32, secret + 3);
    memcpy(id, "tok_", 4);
    auth_hex(raw + 32, 6, id + 4);
    return 0;
}

const char *auth_scope_name(enum auth_scope s)
{
    return s == AUTH_SCOPE_ADMIN ? "admin" : s == AUTH_SCOPE_EVAL ? "eval" : NULL;
}

int auth_scope_from_name(const char *s)
{
    if (streq(s, "admin"))
        return AUTH_SCOPE_ADMIN;
    if (streq(s, "eval"))
        return AUTH_SCOPE_EVAL;
    return -EINVAL;
}

char *auth_token_to_json(const struct auth_token *t, bool with_hash)
{
    char hex[65];
    json_t *j;
    char *s;

    auth_hex(t->hash, 32, hex);
    j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", t->id, "name", t->name, "scope",
                  auth_scope_name(t->scope), "env", t->env, "created_usec",
                  (json_int_t)t->created_usec);
    if (!j)
        return NULL;
    if (with_hash && json_object_set_new(j, "hash", json_string(hex)) < 0) {
        json_decref(j);
        return NULL;
    }
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (unsigned k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -EINVAL;
            v = v << 4 | d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

int auth_token_from_json(const char *json, struct auth_token *ret)
{
    struct auth_token t = { 0 };
    const char *id, *name, *scope, *env, *hash;
    json_int_t created = 0;
    json_t *j = json_loads(json, 0, NULL);
    int r = -EINVAL, sc;

    if (!j)
        return -EINVAL;
    if (json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s?I}", "id", &id, "name", &name, "scope", &scope,
                    "env", &env, "hash", &hash, "created_usec", &created) < 0)
        goto out;
    sc = auth_scope_from_name(scope);
    if (sc < 0 || unhex(hash, t.hash, 32) < 0)
        goto out;
    t.scope = (enum auth_scope)sc;
    t.id = strdup(id);
    t.name = strdup(name);
    t.env = strdup(env);
    t.created_usec = (uint64_t)created;
    if (!t.id || !t.name || !t.env) {
        auth_token_release(&t);
        r = -ENOMEM;
        goto out;
    }
    *ret = t;
    r = 0;
out:
    json_decref(j);
    return r;
}

void auth_token_release(struct auth_token *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->name);
    free(t->env);
    t->id = t->name = t->env = NULL;
}

/* SHA-256 of the presented token, remembering the last one per thread: a client on a keep-alive
 * connection sends the same token every time, and hashing it is a measurable share of an
 * evaluation.  The comparison with the remembered token is constant-time. */
static void token_hash(const char *tok, size_t n, uint8_t out[32])
{
    static _Thread_local struct {
        size_t len;
        char token[AUTH_TOKEN_LEN + 1];
        uint8_t hash[32];
    } last;

    if (n > 0 && n == last.len && n <= AUTH_TOKEN_LEN &&
        auth_equal((const uint8_t *)tok, (const uint8_t *)last.token, n)) {
        memcpy(out, last.hash, 32);
        return;
    }
    auth_sha256(tok, n, out);
    if (n <= AUTH_TOKEN_LEN) {
        memcpy(last.token, tok, n);
        memcpy(last.hash, out, 32);
        last.len = n;
    }
}

/* snprintf(dst, size, "%s", src) without the formatting machinery (this runs per request). */
static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

int auth_check(struct rd *rd, struct http_request *req, struct auth_principal *ret)
{
    const char *h = http_request_header(req, "Authorization");
    const struct auth_token *found = NULL;
    uint8_t hash[32];
    size_t n;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        if (http_set_header(req, "WWW-Authenticate", "Bearer realm=\"rolloutd\"") < 0)
            return -ENOMEM;
        return http_error(req, -EACCES, NULL, NULL, "a bearer token is required");
    }
    h += 7;
    while (*h == ' ')
        h++;
    n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    token_hash(h, n, hash);
    (void)pthread_rwlock_rdlock(&rd->tokens_lock);
    /* Compare against every token: the time taken does not depend on which (if any) matched. */
    for (size_t i = 0; i < rd->n_tokens; i++)
        if (auth_equal(hash, rd->tokens[i].hash, 32) && !found)
            found = &rd->tokens[i];
    if (found) {
        copy_trunc(ret->name, sizeof ret->name, found->name);
        copy_trunc(ret->id, sizeof ret->id, found->id);
        copy_trunc(ret->env, sizeof ret->env, found->env);
        ret->scope = found->scope;
    }
    (void)pthread_rwlock_unlock(&rd->tokens_lock);
    if (!found) {
        if (http_set_header(req, "WWW-Authenticate",
                            "Bearer realm=\"rolloutd\", error=\"invalid_token\"") < 0)
            return -ENOMEM;
        return http_error(req, -EACCES, NULL, NULL, "unknown or revoked token");
    }
    return 0;
}

int auth_require_admin(struct http_request *req, const struct auth_principal *p)
{
    if (p->scope == AUTH_SCOPE_ADMIN)
        return 0;
    return http_error(req, -EPERM, NULL, NULL, "token '%s' has scope '%s'; this needs 'admin'",
                      p->name, auth_scope_name(p->scope));
}

int auth_pick_env(struct http_request *req, const struct auth_principal *p, char *const *envs,
                  size_t n_envs, const char **ret_env)
{
    const char *q = http_request_query(req, "env");

    if (p->scope != AUTH_SCOPE_ADMIN) {
        if (q && !streq(q, p->env))
            return http_error(req, -EPERM, NULL, "env",
                              "token '%s' may only evaluate environment '%s'", p->name, p->env);
        q = p->env;
    } else if (!q) {
        q = envs[0];
    }
    for (size_t i = 0; i < n_envs; i++)
        if (streq(envs[i], q)) {
            *ret_env = envs[i];
            return 0;
        }
    return http_error(req, -ENOENT, "unknown_environment", "env", "unknown environment '%s'", q);
}
