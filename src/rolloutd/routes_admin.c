/* SPDX-License-Identifier: MIT */
/* routes_admin.c - the admin API: flags (CRUD, stage, kill, history), segments, tokens and
 * environments.  Every mutating call needs an admin token; every change goes through
 * rd_commit() (snapshot validation, store commit with version check and audit, publish). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "rolloutd.h"
#include "store.h"

#define HISTORY_DEFAULT 100
#define HISTORY_MAX     1000

/* ===== Helpers ===== */

int rd_error_from_err(struct http_request *req, int r, const struct err *e)
{
    const char *code = NULL;

    if (r == -EBADMSG)
        code = "invalid_json";
    else if (r == -E2BIG) {
        code = "limit_exceeded";
        r = -EINVAL;
    }
    if (!e || !e->msg[0])
        return http_error(req, r, code, NULL, "%s", strerror(-r));
    return http_error(req, r, code, e->field[0] ? e->field : NULL, "%s", e->msg);
}

static int authorize_admin(struct rd *rd, struct http_request *req, struct auth_principal *p)
{
    int r = auth_check(rd, req, p);

    if (r < 0)
        return r;
    return auth_require_admin(req, p);
}

/* Accepts "7", "\"7\"" and W/"7". */
static int parse_etag(const char *s, uint64_t *ret)
{
    char tmp[32];
    size_t n;

    if (str_startswith(s, "W/"))
        s += 2;
    n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return parse_u64(tmp, ret);
}

/* The version a conditional change expects: If-Match, else body_version when non-zero.
 * 0 = none given. */
static int expected_version(struct http_request *req, uint64_t body_version, uint64_t *ret)
{
    const char *im = http_request_header(req, "If-Match");

    *ret = body_version;
    if (im) {
        uint64_t v;
        if (parse_etag(im, &v) < 0 || v == 0)
            return http_error(req, -EINVAL, NULL, "If-Match",
                              "If-Match must be a version ETag like \"3\"");
        if (body_version && body_version != v)
            return http_error(req, -EINVAL, NULL, "version",
                              "body version %" PRIu64 " disagrees with If-Match %" PRIu64,
                              body_version, v);
        *ret = v;
    }
    return 0;
}

static int set_etag(struct http_request *req, uint64_t version)
{
    char etag[32];

    (void)snprintf(etag, sizeof etag, "\"%" PRIu64 "\"", version);
    return http_set_header(req, "ETag", etag);
}

static const char *param_key(struct http_request *req)
{
    return http_request_param(req, "key");
}

/* Validates the body as JSON (Content-Type, UTF-8, depth, syntax) before the engine's strict
 * parse, so both layers' errors come out as 400 with a field. */
static int body_check(struct http_request *req, const char **ret_body, size_t *ret_len)
{
    void *j = NULL;
    int r = http_request_json(req, &j);

    if (r < 0)
        return r;
    json_decref(j);
    *ret_body = http_request_body(req, ret_len);
    return 0;
}

/* Checks that obj has only the named members: "unknown field 'x'" otherwise. */
static int only_fields(struct http_request *req, json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;

    if (!json_is_object(obj))
        return http_error(req, -EINVAL, NULL, NULL, "the body must be a JSON object");
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || streq(allowed[i], k);
        if (!ok)
            return http_error(req, -EINVAL, NULL, k, "field '%s': unknown field", k);
    }
    return 0;
}

static int get_string(struct http_request *req, json_t *obj, const char *name, bool required,
                      const char **ret)
{
    json_t *v = json_object_get(obj, name);

    *ret = NULL;
    if (!v) {
        if (required)
            return http_error(req, -EINVAL, NULL, name, "field '%s': required", name);
        return 0;
    }
    if (!json_is_string(v))
        return http_error(req, -EINVAL, NULL, name, "field '%s': must be a string", name);
    *ret = json_string_value(v);
    return 0;
}

static int get_version(struct http_request *req, json_t *obj, uint64_t *ret)
{
    json_t *v = json_object_get(obj, "version");

    *ret = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return http_error(req, -EINVAL, NULL, "version",
                          "field 'version': must be an integer >= 1");
    *ret = (uint64_t)json_integer_value(v);
    return 0;
}

static int reply_item(struct http_request *req, unsigned status, const struct rd_item *it)
{
    int r = set_etag(req, it->version);

    if (r < 0)
        return r;
    return http_reply(req, status, "application/json", it->json, strlen(it->json));
}

/* Replies with the stored JSON of kind/key after a change (the model was just updated). */
static int reply_current(struct rd *rd, struct http_request *req, enum rd_kind kind,
                         const char *key, unsigned status)
{
    struct rd_item *it = rd_item_find(rd, kind, key);

    if (!it)
        return http_error(req, -EIO, NULL, NULL, "change committed but not visible");
    return reply_item(req, status, it);
}

static int commit_error(struct http_request *req, int r, const struct err *e, const char *what,
                        const char *key)
{
    switch (r) {
    case -ESTALE:
        return http_error(req, r, NULL, "version", "%s '%s': %s", what, key,
                          e->msg[0] ? e->msg : "version is stale");
    case -EEXIST:
        if (e->msg[0])
            return http_error(req, r, NULL, NULL, "%s", e->msg);
        return http_error(req, r, NULL, "key", "%s '%s' already exists", what, key);
    case -ENOENT:
        return http_error(req, r, NULL, "key", "no %s '%s'", what, key);
    case -EIO:
    case -ECONNREFUSED:
        return http_error(req, -EAGAIN, "store_unavailable", NULL, "store: %s",
                          e->msg[0] ? e->msg : "error");
    default:
        return rd_error_from_err(req, r, e);
    }
}

/* ===== Flags and segments =====
 * The two kinds share their create/get/update/delete/list handlers; struct item_kind says what
 * differs.  Between parse and commit the new object lives in struct rd_change (c->flag or
 * c->segment), which rd_commit() takes over. */

struct item_kind {
    enum rd_kind kind;
    const char *noun;   /* "flag": in messages */
    const char *plural; /* "flags": the list's member */
    /* Parses body into c->flag or c->segment and points c->key at its key (borrowed from the
     * object).  *ret_version: the body's "version", 0 when it has none. */
    int (*parse)(const char *body, size_t n, struct rd_change *c, uint64_t *ret_version,
                 struct err *e);
    /* Serializes the parsed object as version: c->json, c->key (request memory), c->version. */
    int (*encode)(struct http_request *req, struct rd_change *c, uint64_t version);
    bool version_in_body;    /* updates may say "version" in the body instead of If-Match */
    const char *in_use_code; /* deleting it may break a reference (the snapshot refuses):
                              * 409 with this code; NULL when nothing refers to this kind */
};

/* Drops the parsed object of a change that did not reach rd_commit(). */
static void change_drop(struct rd_change *c)
{
    c->flag = rollout_flag_unref(c->flag);
    c->segment = rollout_segment_unref(c->segment);
}

static int change_fill(struct http_request *req, struct rd_change *c, const char *key,
                       const char *json, uint64_t version)
{
    c->key = http_strdup(req, key);
    c->json = http_strdup(req, json);
    c->version = version;
    return c->key && c->json ? 0 : -ENOMEM;
}

static int flag_parse(const char *body, size_t n, struct rd_change *c, uint64_t *ret_version,
                      struct err *e)
{
    int r = rollout_flag_parse(body, n, &c->flag, e);

    if (r < 0)
        return r;
    c->key = rollout_flag_key(c->flag);
    *ret_version = rollout_flag_version(c->flag);
    return 0;
}

/* The flag's JSON carries its version, so the object is rebuilt with the new one first. */
static int flag_encode(struct http_request *req, struct rd_change *c, uint64_t version)
{
    struct rollout_flag *fv = rollout_flag_with_version(c->flag, version);
    struct buf b = BUF_INIT(ROLLOUT_FLAG_JSON_MAX * 2);
    int r;

    rollout_flag_unref(c->flag);
    c->flag = fv;
    if (!fv)
        return -ENOMEM;
    r = rollout_flag_serialize(fv, NULL, &b);
    if (r >= 0)
        r = change_fill(req, c, rollout_flag_key(fv), buf_str(&b), version);
    buf_release(&b);
    return r;
}

static int segment_parse(const char *body, size_t n, struct rd_change *c, uint64_t *ret_version,
                         struct err *e)
{
    int r = rollout_segment_parse(body, n, &c->segment, e);

    if (r < 0)
        return r;
    c->key = rollout_segment_key(c->segment);
    *ret_version = 0;
    return 0;
}

static int segment_encode(struct http_request *req, struct rd_change *c, uint64_t version)
{
    struct buf b = BUF_INIT(ROLLOUT_FLAG_JSON_MAX * 2);
    int r = rollout_segment_serialize(c->segment, &b);

    if (r >= 0)
        r = change_fill(req, c, rollout_segment_key(c->segment), buf_str(&b), version);
    buf_release(&b);
    return r;
}

static const struct item_kind flag_kind = {
    .kind = RD_FLAGS,
    .noun = "flag",
    .plural = "flags",
    .parse = flag_parse,
    .encode = flag_encode,
    .version_in_body = true,
};

static const struct item_kind segment_kind = {
    .kind = RD_SEGMENTS,
    .noun = "segment",
    .plural = "segments",
    .parse = segment_parse,
    .encode = segment_encode,
    .in_use_code = "segment_in_use",
};

static int item_list(struct rd *rd, struct http_request *req, const struct item_kind *k)
{
    struct auth_principal p;
    struct buf b = BUF_INIT(0);
    char *s;
    size_t n;
    int r;

    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    (void)pthread_mutex_lock(&rd->lock);
    r = buf_appendf(&b, "{\"revision\":%" PRIu64 ",\"%s\":[", rd->revision, k->plural);
    for (size_t i = 0; r >= 0 && i < rd->n_items[k->kind]; i++) {
        if (i > 0)
            r = buf_puts(&b, ",");
        if (r >= 0)
            r = buf_puts(&b, rd->items[k->kind][i].json);
    }
    (void)pthread_mutex_unlock(&rd->lock);
    if (r >= 0)
        r = buf_puts(&b, "]}");
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    s = buf_detach(&b, &n);
    return http_reply_take(req, 200, "application/json", s, n);
}

static int item_get(struct rd *rd, struct http_request *req, const struct item_kind *k)
{
    struct auth_principal p;
    struct rd_item *it;
    int r;

    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    (void)pthread_mutex_lock(&rd->lock);
    it = rd_item_find(rd, k->kind, param_key(req));
    if (it)
        r = reply_item(req, 200, it);
    else
        r = http_error(req, -ENOENT, NULL, "key", "no %s '%s'", k->noun, param_key(req));
    (void)pthread_mutex_unlock(&rd->lock);
    return r;
}

/* An update names the item in the URL and needs the version it replaces. */
static int update_check(struct http_request *req, const struct item_kind *k, const char *body_key,
                        uint64_t body_version, uint64_t *ret_expect)
{
    int r;

    if (!streq(body_key, param_key(req)))
        return http_error(req, -EINVAL, NULL, "key", "field 'key': '%s' does not match the URL",
                          body_key);
    r = expected_version(req, body_version, ret_expect);
    if (r < 0 || *ret_expect)
        return r;
    if (k->version_in_body)
        return http_error(req, -EINVAL, "version_required", "version",
                          "field 'version': required for updates (or send If-Match)");
    return http_error(req, -EINVAL, "version_required", "If-Match",
                      "%s updates need If-Match: \"<version>\"", k->noun);
}

static int item_write(struct rd *rd, struct http_request *req, const struct item_kind *k,
                      bool create)
{
    struct auth_principal p;
    struct rd_change c = { .kind = k->kind, .action = create ? "create" : "update" };
    struct err e = ERR_INIT;
    const char *body;
    uint64_t body_version, expect = 0;
    size_t n;
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = body_check(req, &body, &n);
    if (r < 0)
        return r;
    r = k->parse(body, n, &c, &body_version, &e);
    if (r < 0)
        return rd_error_from_err(req, r, &e);
    if (!create) {
        r = update_check(req, k, c.key, body_version, &expect);
        if (r < 0)
            goto out;
    }
    r = k->encode(req, &c, expect + 1);
    if (r < 0)
        goto out;
    c.expect_version = expect;
    c.actor = p.name;
    (void)pthread_mutex_lock(&rd->lock);
    r = rd_commit(rd, &c, &e);
    if (r < 0)
        r = commit_error(req, r, &e, k->noun, c.key);
    else
        r = reply_current(rd, req, k->kind, c.key, create ? 201 : 200);
    (void)pthread_mutex_unlock(&rd->lock);
out:
    change_drop(&c);
    return r;
}

static int item_delete(struct rd *rd, struct http_request *req, const struct item_kind *k)
{
    struct auth_principal p;
    struct rd_change c;
    struct err e = ERR_INIT;
    const char *key = param_key(req);
    struct rd_item *it;
    uint64_t expect;
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = expected_version(req, 0, &expect);
    if (r < 0)
        return r;
    (void)pthread_mutex_lock(&rd->lock);
    it = rd_item_find(rd, k->kind, key);
    if (!it) {
        r = http_error(req, -ENOENT, NULL, "key", "no %s '%s'", k->noun, key);
        goto out;
    }
    c = (struct rd_change){ .kind = k->kind,
                            .key = key,
                            .expect_version = expect ? expect : it->version,
                            .actor = p.name,
                            .action = "delete" };
    r = rd_commit(rd, &c, &e);
    if (r == -EINVAL && k->in_use_code) /* still named: the snapshot would not build */
        r = http_error(req, -EEXIST, k->in_use_code, "key", "%s", e.msg);
    else if (r < 0)
        r = commit_error(req, r, &e, k->noun, key);
    else
        r = http_reply_empty(req, 204);
out:
    (void)pthread_mutex_unlock(&rd->lock);
    return r;
}

int rd_h_flags_list(struct http_request *req, void *userdata)
{
    return item_list(userdata, req, &flag_kind);
}

int rd_h_flag_get(struct http_request *req, void *userdata)
{
    return item_get(userdata, req, &flag_kind);
}

int rd_h_flags_create(struct http_request *req, void *userdata)
{
    return item_write(userdata, req, &flag_kind, true);
}

int rd_h_flag_update(struct http_request *req, void *userdata)
{
    return item_write(userdata, req, &flag_kind, false);
}

int rd_h_flag_delete(struct http_request *req, void *userdata)
{
    return item_delete(userdata, req, &flag_kind);
}

int rd_h_segments_list(struct http_request *req, void *userdata)
{
    return item_list(userdata, req, &segment_kind);
}

int rd_h_segment_get(struct http_request *req, void *userdata)
{
    return item_get(userdata, req, &segment_kind);
}

int rd_h_segments_create(struct http_request *req, void *userdata)
{
    return item_write(userdata, req, &segment_kind, true);
}

int rd_h_segment_update(struct http_request *req, void *userdata)
{
    return item_write(userdata, req, &segment_kind, false);
}

int rd_h_segment_delete(struct http_request *req, void *userdata)
{
    return item_delete(userdata, req, &segment_kind);
}

/* ===== Flags: stage, kill, history ===== */

/* Shared by stage and kill: edits environments.<env> of the stored flag JSON with edit(), then
 * runs the result through the engine's strict parser and commits. */
struct env_edit {
    const char *env;
    const char *stage;
    json_t *percent; /* borrowed; NULL = keep */
    int kill;        /* -1 keep, 0/1 set */
};

static int apply_env_edit(struct http_request *req, json_t *flag, const struct env_edit *ed)
{
    json_t *envs = json_object_get(flag, "environments"), *env;

    if (!json_is_object(envs)) {
        envs = json_object();
        if (!envs || json_object_set_new(flag, "environments", envs) < 0)
            return -ENOMEM;
    }
    env = json_object_get(envs, ed->env);
    if (!json_is_object(env)) {
        env = json_object();
        if (!env || json_object_set_new(envs, ed->env, env) < 0)
            return -ENOMEM;
    }
    if (ed->stage && json_object_set_new(env, "stage", json_string(ed->stage)) < 0)
        return -ENOMEM;
    if (ed->percent) {
        if (!streq(ed->stage, "shadow") && !streq(ed->stage, "canary") &&
            !streq(ed->stage, "partial"))
            return http_error(req, -EINVAL, NULL, "percent",
                              "field 'percent': only stages shadow, canary and partial take a "
                              "percentage");
        if (json_object_set(env, ed->stage, ed->percent) < 0)
            return -ENOMEM;
    }
    if (ed->kill >= 0 && json_object_set_new(env, "kill", json_boolean(ed->kill)) < 0)
        return -ENOMEM;
    return 0;
}

int rd_flags_equal(const struct rollout_flag *a, const struct rollout_flag *b)
{
    struct buf ta = BUF_INIT(ROLLOUT_FLAG_JSON_MAX * 2), tb = BUF_INIT(ROLLOUT_FLAG_JSON_MAX * 2);
    int r = rollout_flag_serialize(a, NULL, &ta);

    if (r >= 0)
        r = rollout_flag_serialize(b, NULL, &tb);
    if (r >= 0)
        r = ta.len == tb.len && memcmp(buf_str(&ta), buf_str(&tb), ta.len) == 0;
    buf_release(&ta);
    buf_release(&tb);
    return r;
}

/* Applies ed to the stored flag it into c->flag (checked by the engine's strict parser);
 * *ret_unchanged when the result is the stored flag.  Caller holds rd->lock. */
static int env_edit_build(struct http_request *req, const struct rd_item *it,
                          const struct env_edit *ed, struct rd_change *c, bool *ret_unchanged)
{
    struct err e = ERR_INIT;
    json_t *j = json_loads(it->json, 0, NULL);
    char *text = NULL;
    int r;

    if (!j)
        return -EIO;
    r = apply_env_edit(req, j, ed);
    if (r < 0)
        goto out;
    text = json_dumps(j, JSON_COMPACT);
    if (!text) {
        r = -ENOMEM;
        goto out;
    }
    r = rollout_flag_parse(text, strlen(text), &c->flag, &e);
    if (r < 0) {
        r = rd_error_from_err(req, r, &e);
        goto out;
    }
    r = rd_flags_equal(c->flag, it->flag);
    if (r >= 0) {
        *ret_unchanged = r > 0;
        r = 0;
    }
out:
    free(text);
    json_decref(j);
    return r;
}

/* A stage or kill that changes nothing (the flag already is so) commits nothing: the version,
 * the history and the published snapshots stay, and the reply is the flag as it is with
 * "Rolloutd-Unchanged: true".  Before saying so, the store's revision is compared with ours, so
 * a change another replica made in between is not mistaken for the current state. */
static int env_change(struct rd *rd, struct http_request *req, const struct auth_principal *p,
                      const struct env_edit *ed, uint64_t body_version, const char *action)
{
    const char *key = param_key(req);
    struct rd_change c = { .kind = RD_FLAGS, .actor = p->name, .action = action };
    struct err e = ERR_INIT;
    struct rd_item *it;
    uint64_t expect, rev;
    bool unchanged = false;
    int r;

    r = expected_version(req, body_version, &expect);
    if (r < 0)
        return r;
    if (!rd_env_known(rd, ed->env))
        return http_error(req, -EINVAL, "unknown_environment", "env",
                          "field 'env': unknown environment '%s'", ed->env);
    (void)pthread_mutex_lock(&rd->lock);
    for (bool reloaded = false;; reloaded = true) {
        it = rd_item_find(rd, RD_FLAGS, key);
        if (!it) {
            r = http_error(req, -ENOENT, NULL, "key", "no flag '%s'", key);
            goto out;
        }
        /* Without an explicit version, build on what this replica has; the store still refuses
         * the commit (409) when another replica changed the flag in between. */
        if (expect && expect != it->version) {
            r = http_error(req, -ESTALE, NULL, "version",
                           "flag '%s': version %" PRIu64 " is stale, current is %" PRIu64, key,
                           expect, it->version);
            goto out;
        }
        c.flag = rollout_flag_unref(c.flag);
        r = env_edit_build(req, it, ed, &c, &unchanged);
        if (r < 0)
            goto out;
        if (!unchanged || reloaded)
            break;
        r = store_revision(rd->store, &rev, &e);
        if (r >= 0 && rev == rd->revision)
            break;
        if (r >= 0)
            r = rd_reload(rd, &e);
        if (r < 0) {
            r = commit_error(req, r, &e, "flag", key);
            goto out;
        }
    }
    if (unchanged) {
        r = http_set_header(req, "Rolloutd-Unchanged", "true");
        if (r >= 0)
            r = reply_item(req, 200, it);
        goto out;
    }
    r = flag_encode(req, &c, it->version + 1);
    if (r < 0)
        goto out;
    c.expect_version = it->version;
    r = rd_commit(rd, &c, &e);
    if (r < 0)
        r = commit_error(req, r, &e, "flag", key);
    else
        r = reply_current(rd, req, RD_FLAGS, key, 200);
out:
    (void)pthread_mutex_unlock(&rd->lock);
    change_drop(&c);
    return r;
}

int rd_h_flag_stage(struct http_request *req, void *userdata)
{
    static const char *const allowed[] = { "env", "stage", "percent", "version", NULL };
    struct rd *rd = userdata;
    struct auth_principal p;
    struct env_edit ed = { .kill = -1 };
    json_t *j = NULL;
    uint64_t version;
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = http_request_json(req, (void **)&j);
    if (r < 0)
        return r;
    r = only_fields(req, j, allowed);
    if (r >= 0)
        r = get_string(req, j, "env", true, &ed.env);
    if (r >= 0)
        r = get_string(req, j, "stage", true, &ed.stage);
    if (r >= 0 && rollout_stage_from_name(ed.stage) < 0)
        r = http_error(req, -EINVAL, "unknown_stage", "stage",
                       "field 'stage': unknown stage '%s' (off, shadow, canary, partial, full)",
                       ed.stage);
    if (r >= 0) {
        ed.percent = json_object_get(j, "percent");
        if (ed.percent && !json_is_number(ed.percent))
            r = http_error(req, -EINVAL, NULL, "percent",
                           "field 'percent': must be a number (0-100)");
    }
    if (r >= 0)
        r = get_version(req, j, &version);
    if (r >= 0)
        r = env_change(rd, req, &p, &ed, version, "stage");
    json_decref(j);
    return r;
}

int rd_h_flag_kill(struct http_request *req, void *userdata)
{
    static const char *const allowed[] = { "env", "kill", "version", NULL };
    struct rd *rd = userdata;
    struct auth_principal p;
    struct env_edit ed = { .kill = 1 };
    json_t *j = NULL, *k;
    uint64_t version;
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = http_request_json(req, (void **)&j);
    if (r < 0)
        return r;
    r = only_fields(req, j, allowed);
    if (r >= 0)
        r = get_string(req, j, "env", true, &ed.env);
    if (r >= 0 && (k = json_object_get(j, "kill"))) {
        if (!json_is_boolean(k))
            r = http_error(req, -EINVAL, NULL, "kill", "field 'kill': must be true or false");
        else
            ed.kill = json_is_true(k);
    }
    if (r >= 0)
        r = get_version(req, j, &version);
    if (r >= 0)
        r = env_change(rd, req, &p, &ed, version, ed.kill ? "kill" : "unkill");
    json_decref(j);
    return r;
}

static json_t *json_or_null(const char *s)
{
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

int rd_h_flag_history(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct auth_principal p;
    struct store_audit *a = NULL;
    struct err e = ERR_INIT;
    const char *key = param_key(req), *lim = http_request_query(req, "limit");
    uint64_t limit = HISTORY_DEFAULT;
    size_t n = 0;
    json_t *arr = NULL, *out = NULL;
    int r;

    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    if (lim && parse_uint_range(lim, 1, HISTORY_MAX, &limit) < 0)
        return http_error(req, -EINVAL, NULL, "limit", "limit must be 1-%d", HISTORY_MAX);
    (void)pthread_mutex_lock(&rd->lock);
    r = store_history(rd->store, STORE_FLAG, key, (size_t)limit, &a, &n, &e);
    if (r >= 0 && n == 0 && !rd_item_find(rd, RD_FLAGS, key))
        r = -ENOENT;
    (void)pthread_mutex_unlock(&rd->lock);
    if (r == -ENOENT)
        return http_error(req, r, NULL, "key", "no flag '%s' and no history for it", key);
    if (r < 0)
        return commit_error(req, r, &e, "flag", key);
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char at[40];
        struct tm tm;
        time_t t = (time_t)(a[i].at_usec / USEC_PER_SEC);

        (void)gmtime_r(&t, &tm);
        (void)strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm);
        (void)snprintf(at + strlen(at), sizeof at - strlen(at), ".%06uZ",
                       (unsigned)(a[i].at_usec % USEC_PER_SEC));
        json_t *entry = json_pack(
                "{s:I, s:s, s:s, s:s, s:o, s:o}", "revision", (json_int_t)a[i].revision, "at", at,
                "actor", a[i].actor ? a[i].actor : "", "action", a[i].action ? a[i].action : "",
                "before", json_or_null(a[i].before), "after", json_or_null(a[i].after));
        /* Only changes made with a reason (rollout decisions) carry the field. */
        if (entry && a[i].reason)
            (void)json_object_set_new(entry, "reason", json_string(a[i].reason));
        if (json_array_append_new(arr, entry) < 0)
            break;
    }
    out = json_pack("{s:s, s:o}", "key", key, "history", arr ? arr : json_array());
    store_audit_free(a, n);
    if (!out)
        return -ENOMEM;
    r = http_reply_json(req, 200, out);
    json_decref(out);
    return r;
}

/* ===== Tokens ===== */

int rd_h_tokens_list(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct auth_principal p;
    struct buf b = BUF_INIT(0);
    char *s;
    size_t n;
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = buf_puts(&b, "{\"tokens\":[");
    (void)pthread_rwlock_rdlock(&rd->tokens_lock);
    for (size_t i = 0; r >= 0 && i < rd->n_tokens; i++) {
        char *j = auth_token_to_json(&rd->tokens[i], false);
        r = j ? 0 : -ENOMEM;
        if (r >= 0 && i > 0)
            r = buf_puts(&b, ",");
        if (r >= 0)
            r = buf_puts(&b, j);
        free(j);
    }
    (void)pthread_rwlock_unlock(&rd->tokens_lock);
    if (r >= 0)
        r = buf_puts(&b, "]}");
    if (r < 0) {
        buf_release(&b);
        return r;
    }
    s = buf_detach(&b, &n);
    return http_reply_take(req, 200, "application/json", s, n);
}

int rd_h_tokens_create(struct http_request *req, void *userdata)
{
    static const char *const allowed[] = { "name", "scope", "env", NULL };
    struct rd *rd = userdata;
    struct auth_principal p;
    struct auth_token t = { 0 };
    struct err e = ERR_INIT;
    const char *name, *scope, *env;
    char secret[AUTH_TOKEN_LEN + 1], id[17];
    json_t *j = NULL, *out;
    int r, sc = -1;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    r = http_request_json(req, (void **)&j);
    if (r < 0)
        return r;
    r = only_fields(req, j, allowed);
    if (r >= 0)
        r = get_string(req, j, "name", true, &name);
    if (r >= 0 && (!name || !name[0] || strlen(name) > AUTH_NAME_MAX))
        r = http_error(req, -EINVAL, NULL, "name", "field 'name': 1-%d bytes", AUTH_NAME_MAX);
    if (r >= 0)
        r = get_string(req, j, "scope", true, &scope);
    if (r >= 0 && (!scope || (sc = auth_scope_from_name(scope)) < 0))
        r = http_error(req, -EINVAL, NULL, "scope", "field 'scope': 'admin' or 'eval'");
    if (r >= 0)
        r = get_string(req, j, "env", sc == AUTH_SCOPE_EVAL, &env);
    if (r >= 0 && sc == AUTH_SCOPE_EVAL && !rd_env_known(rd, env))
        r = http_error(req, -EINVAL, "unknown_environment", "env",
                       "field 'env': unknown environment '%s'", env);
    if (r >= 0 && sc == AUTH_SCOPE_ADMIN && env && !streq(env, "*"))
        r = http_error(req, -EINVAL, NULL, "env",
                       "field 'env': admin tokens cover every "
                       "environment ('*')");
    if (r >= 0)
        r = auth_token_generate(secret, id);
    if (r < 0)
        goto out;
    t.id = xstrdup(id);
    t.name = xstrdup(name);
    t.env = xstrdup(sc == AUTH_SCOPE_EVAL ? env : "*");
    t.scope = (enum auth_scope)sc;
    t.created_usec = now_realtime_usec();
    auth_sha256(secret, strlen(secret), t.hash);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", t.id, "name", t.name, "scope",
                    auth_scope_name(t.scope), "env", t.env, "token", secret);
    (void)pthread_mutex_lock(&rd->lock);
    r = rd_token_add(rd, &t, p.name, &e);
    (void)pthread_mutex_unlock(&rd->lock);
    if (r < 0)
        r = commit_error(req, r, &e, "token", id);
    else
        r = http_reply_json(req, 201, out);
    json_decref(out);
    explicit_bzero(secret, sizeof secret);
out:
    auth_token_release(&t);
    json_decref(j);
    return r;
}

int rd_h_token_delete(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct auth_principal p;
    struct err e = ERR_INIT;
    const char *id = http_request_param(req, "id");
    int r;

    r = authorize_admin(rd, req, &p);
    if (r < 0)
        return r;
    (void)pthread_mutex_lock(&rd->lock);
    r = rd_token_delete(rd, id, p.name, &e);
    (void)pthread_mutex_unlock(&rd->lock);
    if (r < 0)
        return commit_error(req, r, &e, "token", id);
    return http_reply_empty(req, 204);
}

/* ===== Environments ===== */

int rd_h_environments(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct auth_principal p;
    json_t *arr, *out;
    int r;

    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    arr = json_array();
    for (size_t i = 0; arr && i < rd->n_envs; i++) {
        struct rd_env_state *st = rd_env_acquire(rd, rd->env_names[i]);
        (void)json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I}", "name", rd->env_names[i], "version",
                               (json_int_t)(st ? st->revision : 0), "flags",
                               (json_int_t)(st ? rollout_snapshot_n_flags(st->snap) : 0)));
        rd_env_release(st);
    }
    out = json_pack("{s:s, s:o}", "default", rd->env_names[0], "environments",
                    arr ? arr : json_array());
    if (!out)
        return -ENOMEM;
    r = http_reply_json(req, 200, out);
    json_decref(out);
    return r;
}
