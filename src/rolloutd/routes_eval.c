/* SPDX-License-Identifier: MIT */
/* routes_eval.c - evaluation: OFREP single and bulk (as @openfeature/ofrep-provider expects),
 * and librollout's snapshot and SSE stream (docs/flags.md sections 5 and 6).  The hot path
 * takes no daemon lock: a reference on the environment's published state is enough. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "http/http.h"
#include "rolloutd.h"

#define CT_JSON "application/json"

/* {"key", "errorCode", "errorDetails"}: the shape the OFREP provider needs to pass the code on. */
static int ofrep_error(struct http_request *req, unsigned status, const char *key, const char *code,
                       const char *details)
{
    json_t *j =
            json_pack("{s:s, s:s, s:s}", "key", key, "errorCode", code, "errorDetails", details);
    int r;

    if (!j) /* key or details not valid UTF-8 */
        j = json_pack("{s:s, s:s, s:s}", "key", "", "errorCode", code, "errorDetails",
                      "invalid request");
    if (!j)
        return -ENOMEM;
    r = http_reply_json(req, status, j);
    json_decref(j);
    return r;
}

static int parse_context(struct http_request *req, const char *key, struct rollout_ctx *ctx,
                         bool *ret_replied)
{
    struct err e = ERR_INIT;
    const char *body;
    size_t n;
    int r;

    *ret_replied = false;
    body = http_request_body(req, &n);
    if (n == 0)
        return 0; /* no body: the empty context */
    r = rollout_ctx_parse(body, n, ROLLOUT_CTX_OFREP_BODY, ctx, &e);
    if (r >= 0)
        return 0;
    if (r == -ENOMEM)
        return r;
    *ret_replied = true;
    return ofrep_error(req, 400, key, r == -EBADMSG ? "PARSE_ERROR" : "INVALID_CONTEXT",
                       e.msg[0] ? e.msg : "invalid evaluation context");
}

static int authorize_eval(struct rd *rd, struct http_request *req, const char **ret_env)
{
    struct auth_principal p;
    int r = auth_check(rd, req, &p);

    if (r < 0)
        return r;
    return auth_pick_env(req, &p, rd->env_names, rd->n_envs, ret_env);
}

int rd_h_ofrep_flag(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct rollout_ctx ctx = ROLLOUT_CTX_INIT;
    struct rollout_result res;
    struct rd_env_state *st = NULL;
    struct buf out = BUF_INIT(ROLLOUT_SNAPSHOT_MAX);
    const char *env, *key = http_request_param(req, "key");
    bool replied;
    int r, status = 500;
    char *s;
    size_t n;

    r = authorize_eval(rd, req, &env);
    if (r < 0)
        return r;
    r = parse_context(req, key, &ctx, &replied);
    if (r < 0 || replied)
        return r;
    st = rd_env_acquire(rd, env);
    if (!st) {
        r = ofrep_error(req, 500, key, "GENERAL", "environment has no snapshot yet");
        goto out;
    }
    (void)rollout_eval(st->snap, key, &ctx, ROLLOUT_TYPE_ANY, &res);
    rd_count_eval(rd, st, key, &res);
    r = rollout_ofrep_write_result(key, &res, &out, &status);
    if (r < 0)
        goto out;
    s = buf_detach(&out, &n);
    r = http_reply_take(req, (unsigned)status, CT_JSON, s, n);
out:
    rd_env_release(st);
    rollout_ctx_release(&ctx);
    buf_release(&out);
    return r;
}

static uint64_t fnv1a64(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

int rd_h_ofrep_bulk(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct rollout_ctx ctx = ROLLOUT_CTX_INIT;
    struct rd_env_state *st = NULL;
    struct buf out = BUF_INIT(ROLLOUT_SNAPSHOT_MAX);
    const char *env, *body, *inm;
    char etag[64];
    size_t n;
    char *s;
    int r;

    r = authorize_eval(rd, req, &env);
    if (r < 0)
        return r;
    body = http_request_body(req, &n);
    if (n > 0) {
        struct err e = ERR_INIT;
        r = rollout_ctx_parse(body, n, ROLLOUT_CTX_OFREP_BODY, &ctx, &e);
        if (r < 0 && r != -ENOMEM) {
            json_t *j = json_pack("{s:s, s:s}", "errorCode",
                                  r == -EBADMSG ? "PARSE_ERROR" : "INVALID_CONTEXT", "errorDetails",
                                  e.msg[0] ? e.msg : "invalid context");
            r = j ? http_reply_json(req, 400, j) : -ENOMEM;
            json_decref(j);
            return r;
        }
        if (r < 0)
            return r;
    }
    st = rd_env_acquire(rd, env);
    if (!st) {
        r = http_error(req, -EAGAIN, NULL, NULL, "environment has no snapshot yet");
        goto out;
    }
    /* The result depends on the snapshot and on the context: both go into the ETag. */
    (void)snprintf(etag, sizeof etag, "\"%" PRIu64 "-%016" PRIx64 "\"", st->revision,
                   fnv1a64(body, n));
    r = http_set_header(req, "ETag", etag);
    if (r < 0)
        goto out;
    inm = http_request_header(req, "If-None-Match");
    if (inm && streq(inm, etag)) {
        r = http_reply_empty(req, 304);
        goto out;
    }
    r = buf_puts(&out, "{\"flags\":[");
    for (size_t i = 0; r >= 0 && i < rollout_snapshot_n_flags(st->snap); i++) {
        const struct rollout_flag *f = rollout_snapshot_flag_at(st->snap, i);
        const char *key = rollout_flag_key(f);
        struct rollout_result res;

        (void)rollout_eval(st->snap, key, &ctx, ROLLOUT_TYPE_ANY, &res);
        rd_count_eval(rd, st, key, &res);
        if (i > 0)
            r = buf_puts(&out, ",");
        if (r >= 0)
            r = rollout_ofrep_write_result(key, &res, &out, NULL);
    }
    if (r >= 0)
        r = buf_appendf(&out, "],\"metadata\":{\"version\":%" PRIu64 "}}", st->revision);
    if (r < 0)
        goto out;
    s = buf_detach(&out, &n);
    r = http_reply_take(req, 200, CT_JSON, s, n);
out:
    rd_env_release(st);
    rollout_ctx_release(&ctx);
    buf_release(&out);
    return r;
}

/* GET /ofrep/v1/configuration (OFREP extension): what a provider may rely on.  Polling: the
 * bulk endpoint answers If-None-Match with 304, so client providers may poll it; the interval
 * floor keeps a fleet of browsers from polling faster than once a second.  Flag types: all of
 * OFREP's ("number" flags serve both int and float).  No "caching": results change with every
 * rollout step.  The document is fixed for the daemon's life, so is its ETag. */
#define OFREP_CONFIGURATION                                                                     \
    "{\"name\":\"rolloutd\",\"capabilities\":{\"cacheInvalidation\":{\"polling\":{\"enabled\":" \
    "true,\"minPollingIntervalMs\":1000}},\"flagEvaluation\":{\"supportedTypes\":[\"boolean\"," \
    "\"string\",\"int\",\"float\",\"object\"]}}}"

int rd_h_ofrep_configuration(struct http_request *req, void *userdata)
{
    static const char body[] = OFREP_CONFIGURATION;
    struct rd *rd = userdata;
    struct auth_principal p;
    const char *inm;
    char etag[24];
    int r;

    r = auth_check(rd, req, &p);
    if (r < 0)
        return r;
    (void)snprintf(etag, sizeof etag, "\"%016" PRIx64 "\"", fnv1a64(body, sizeof body - 1));
    r = http_set_header(req, "ETag", etag);
    if (r < 0)
        return r;
    inm = http_request_header(req, "If-None-Match");
    if (inm && streq(inm, etag))
        return http_reply_empty(req, 304);
    return http_reply(req, 200, CT_JSON, body, sizeof body - 1);
}

/* GET /v1/snapshot and /v1/stream take ?env=E (required by docs/flags.md 5.1). */
static int snapshot_env(struct rd *rd, struct http_request *req, const char **ret_env)
{
    struct auth_principal p;
    int r = auth_check(rd, req, &p);

    if (r < 0)
        return r;
    if (!http_request_query(req, "env"))
        return http_error(req, -EINVAL, NULL, "env", "query parameter 'env' is required");
    return auth_pick_env(req, &p, rd->env_names, rd->n_envs, ret_env);
}

int rd_h_snapshot(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct rd_env_state *st;
    const char *env, *inm;
    int r;

    r = snapshot_env(rd, req, &env);
    if (r < 0)
        return r;
    st = rd_env_acquire(rd, env);
    if (!st)
        return http_error(req, -EAGAIN, NULL, NULL, "environment has no snapshot yet");
    r = http_set_header(req, "ETag", st->etag);
    if (r >= 0 && http_set_header(req, "Cache-Control", "no-cache") < 0)
        r = -ENOMEM;
    inm = http_request_header(req, "If-None-Match");
    if (r >= 0 && inm && streq(inm, st->etag))
        r = http_reply_empty(req, 304);
    else if (r >= 0)
        r = http_reply(req, 200, CT_JSON, st->snap_json, st->snap_len);
    rd_env_release(st);
    return r;
}

int rd_h_stream(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct rd_env_state *st;
    const char *env;
    char *ev;
    size_t n;
    int r;

    r = snapshot_env(rd, req, &env);
    if (r < 0)
        return r;
    /* Under rd->lock no change can be published between reading the snapshot and linking the
     * stream, so the client sees every version after the first. */
    (void)pthread_mutex_lock(&rd->lock);
    st = rd_env_acquire(rd, env);
    if (!st) {
        (void)pthread_mutex_unlock(&rd->lock);
        return http_error(req, -EAGAIN, NULL, NULL, "environment has no snapshot yet");
    }
    ev = rd_snapshot_event(st, &n);
    r = ev ? http_sse_open(req, env, ev, n) : -ENOMEM;
    (void)pthread_mutex_unlock(&rd->lock);
    free(ev);
    rd_env_release(st);
    return r;
}
