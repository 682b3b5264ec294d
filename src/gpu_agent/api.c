/* SPDX-License-Identifier: MIT */
/* api.c - gpu_agent's HTTP routes: /metrics (the latest snapshot, never a live NVML call),
 * the JSON status, and the operator's drain/undrain (bearer token when api_token_file is set). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "metrics/metrics.h"

struct agent_gpu *agent_find_gpu(struct agent *a, const char *id)
{
    uint64_t idx;

    if (!id || !atomic_load(&a->discovered))
        return NULL;
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].uuid[0] && streq(a->gpus[i].uuid, id))
            return &a->gpus[i];
    if (parse_u64(id, &idx) < 0)
        return NULL;
    for (size_t i = 0; i < a->n_gpus; i++)
        if (a->gpus[i].index == idx)
            return &a->gpus[i];
    return NULL;
}

static int get_metrics(struct http_request *req, void *userdata)
{
    struct agent *a = userdata;
    const char *text = NULL;
    size_t n = 0;
    int r;

    /* Rendered once per state change; a scrape in between copies the text. */
    pthread_mutex_lock(&a->lock);
    r = expose_metrics_cached(a, now_usec(), &text, &n);
    if (r >= 0)
        r = http_reply(req, 200, METRICS_CONTENT_TYPE, text, n);
    pthread_mutex_unlock(&a->lock);
    if (r < 0)
        return http_error(req, r, NULL, NULL, "cannot render the metrics");
    return 0;
}

static int get_status(struct http_request *req, void *userdata)
{
    struct agent *a = userdata;
    char *text;

    pthread_mutex_lock(&a->lock);
    text = expose_status_json(a);
    pthread_mutex_unlock(&a->lock);
    return http_reply_take(req, 200, "application/json", text, strlen(text));
}

/* Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
static bool token_ok(const struct agent *a, struct http_request *req)
{
    const char *h = http_request_header(req, "Authorization");
    size_t n, want;
    unsigned char diff = 0;

    if (!a->api_token)
        return true;
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    n = strlen(h);
    want = strlen(a->api_token);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)(a->api_token[i] ^ (i < n ? h[i] : 0));
    return diff == 0 && n == want;
}

static int gpu_action(struct http_request *req, struct agent *a, bool drain)
{
    const char *id = http_request_param(req, "gpu");
    const char *mode = http_request_query(req, "mode");
    enum gpu_tier tier = GPU_TIER_DRAIN_LATER;
    struct agent_gpu *g;
    char *text;
    int r;

    if (!token_ok(a, req))
        return http_error(req, -EACCES, "unauthorized", NULL,
                          "a valid 'Authorization: Bearer TOKEN' header is required");
    g = agent_find_gpu(a, id);
    if (!g)
        return http_error(req, -ENOENT, NULL, "gpu", "no GPU '%s' on this host", id ? id : "");
    if (drain && mode && streq(mode, "now"))
        tier = GPU_TIER_FAIL_NOW;
    else if (drain && mode && !streq(mode, "later"))
        return http_error(req, -EINVAL, NULL, "mode", "mode must be 'now' or 'later'");
    r = drain ? health_drain(a, g, tier) : health_undrain(a, g);
    /* The state change stands even when the supervisor is not reachable yet: the workers
     * thread enforces it on its next pass. */
    (void)r;
    pthread_mutex_lock(&a->lock);
    text = xasprintf("{\"ok\":true,\"gpu\":%u,\"uuid\":\"%s\",\"drained\":%s,\"healthy\":%s}",
                     g->index, g->uuid, g->drained ? "true" : "false",
                     g->healthy ? "true" : "false");
    pthread_mutex_unlock(&a->lock);
    return http_reply_take(req, 200, "application/json", text, strlen(text));
}

static int post_drain(struct http_request *req, void *userdata)
{
    return gpu_action(req, userdata, true);
}

static int post_undrain(struct http_request *req, void *userdata)
{
    return gpu_action(req, userdata, false);
}

static int get_healthy(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_reply(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static int get_root(struct http_request *req, void *userdata)
{
    static const char page[] = "<!DOCTYPE html><html><head><title>gpu_agent</title></head><body>"
                               "<h1>gpu_agent</h1><p><a href=\"/metrics\">Metrics</a> &middot; "
                               "<a href=\"/api/v1/gpus\">GPU status (JSON)</a></p></body></html>\n";

    (void)userdata;
    return http_reply(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

static const struct http_route routes[] = {
    { "GET", "/metrics", get_metrics, NULL },
    { "GET", "/api/v1/gpus", get_status, NULL },
    { "POST", "/api/v1/gpus/{gpu}/drain", post_drain, NULL },
    { "POST", "/api/v1/gpus/{gpu}/undrain", post_undrain, NULL },
    { "GET", "/-/healthy", get_healthy, NULL },
    { "GET", "/", get_root, NULL },
};

int api_start(struct agent *a, const char *listen, struct http_server **ret)
{
    struct http_config cfg = HTTP_CONFIG_INIT;

    cfg.listen = listen;
    cfg.routes = routes;
    cfg.n_routes = ARRAY_SIZE(routes);
    cfg.userdata = a;
    cfg.threads = 1;
    cfg.max_connections = 64;
    cfg.timeout_sec = 15;
    cfg.max_body = 4096;
    cfg.conn_memory = 32 * 1024;
    return http_server_start(&cfg, ret);
}
