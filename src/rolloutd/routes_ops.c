/* SPDX-License-Identifier: MIT */
/* routes_ops.c - /healthz, /readyz, /metrics and rolloutd's route table. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "core/buf.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "rolloutd.h"
#include "routes_ui.h"
#include "store.h"

const struct http_route rd_routes[] = {
    /* operations */
    { "GET", "/healthz", rd_h_healthz, NULL },
    { "GET", "/readyz", rd_h_readyz, NULL },
    { "GET", "/metrics", rd_h_metrics, NULL },
    /* evaluation (OFREP) */
    { "POST", "/ofrep/v1/evaluate/flags/{key}", rd_h_ofrep_flag, NULL },
    { "POST", "/ofrep/v1/evaluate/flags", rd_h_ofrep_bulk, NULL },
    { "GET", "/ofrep/v1/configuration", rd_h_ofrep_configuration, NULL },
    /* librollout */
    { "GET", "/v1/snapshot", rd_h_snapshot, NULL },
    { "GET", "/v1/stream", rd_h_stream, NULL },
    /* admin API */
    { "GET", "/api/v1/flags", rd_h_flags_list, NULL },
    { "POST", "/api/v1/flags", rd_h_flags_create, NULL },
    { "GET", "/api/v1/flags/{key}", rd_h_flag_get, NULL },
    { "PUT", "/api/v1/flags/{key}", rd_h_flag_update, NULL },
    { "DELETE", "/api/v1/flags/{key}", rd_h_flag_delete, NULL },
    { "POST", "/api/v1/flags/{key}/stage", rd_h_flag_stage, NULL },
    { "POST", "/api/v1/flags/{key}/kill", rd_h_flag_kill, NULL },
    { "GET", "/api/v1/flags/{key}/history", rd_h_flag_history, NULL },
    { "GET", "/api/v1/segments", rd_h_segments_list, NULL },
    { "POST", "/api/v1/segments", rd_h_segments_create, NULL },
    { "GET", "/api/v1/segments/{key}", rd_h_segment_get, NULL },
    { "PUT", "/api/v1/segments/{key}", rd_h_segment_update, NULL },
    { "DELETE", "/api/v1/segments/{key}", rd_h_segment_delete, NULL },
    { "GET", "/api/v1/tokens", rd_h_tokens_list, NULL },
    { "POST", "/api/v1/tokens", rd_h_tokens_create, NULL },
    { "DELETE", "/api/v1/tokens/{id}", rd_h_token_delete, NULL },
    { "GET", "/api/v1/environments", rd_h_environments, NULL },
    /* web page (routes_ui.c) */
    { "GET", "/ui", rd_h_ui_index, NULL },
    { "GET", "/ui/{file}", rd_h_ui_asset, NULL },
    /* rollout plans (routes_rollout.c; docs/rollouts.md) */
    { "GET", "/api/v1/rollouts", rd_h_rollouts_list, NULL },
    { "GET", "/api/v1/rollouts/{flag}", rd_h_rollout_get, NULL },
    { "POST", "/api/v1/rollouts/{flag}", rd_h_rollout_start, NULL },
    { "POST", "/api/v1/rollouts/{flag}/pause", rd_h_rollout_pause, NULL },
    { "POST", "/api/v1/rollouts/{flag}/resume", rd_h_rollout_resume, NULL },
    { "POST", "/api/v1/rollouts/{flag}/abort", rd_h_rollout_abort, NULL },
};
const size_t rd_n_routes = sizeof rd_routes / sizeof rd_routes[0];

int rd_h_healthz(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_reply_json_str(req, 200, "{\"status\":\"ok\"}");
}

int rd_h_readyz(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    char body[160];

    if (!atomic_load(&rd->ready))
        return http_error(req, -EAGAIN, "not_ready", NULL, "loading the store");
    (void)snprintf(body, sizeof body, "{\"status\":\"ready\",\"store\":\"%s\"}",
                   store_backend(rd->store));
    return http_reply_json_str(req, 200, body);
}

int rd_h_metrics(struct http_request *req, void *userdata)
{
    struct rd *rd = userdata;
    struct metrics_series *s = metrics_series_get(rd->m_streams, NULL);

    struct buf out = BUF_INIT(64 * 1024 * 1024);
    size_t n;
    char *text;
    int r;

    if (s)
        metrics_gauge_set(s, (double)http_sse_count(http_request_server(req)));
    /* The registry, then the gauges drawn from the model as it is now (flag stages, rollouts). */
    r = metrics_write_text(rd->metrics, &out);
    if (r >= 0)
        r = rd_rollout_metrics(rd, &out);
    if (r < 0 && r != -ENOBUFS) {
        buf_release(&out);
        return r;
    }
    text = buf_detach(&out, &n);
    return http_reply_take(req, 200, METRICS_CONTENT_TYPE, text, n);
}
