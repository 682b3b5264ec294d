/* SPDX-License-Identifier: MIT */
/* http.h - libmicrohttpd adapter: a static route table, handlers returning -errno (mapped to an
 * HTTP status and a JSON error body in one place), request limits, a per-request arena,
 * Server-Sent Events and a /metrics helper.
 *
 *   static int get_item(struct http_request *req, void *userdata)
 *   {
 *       const char *id = http_request_param(req, "id");
 *       if (!lookup(id))
 *           return http_error(req, -ENOENT, NULL, "id", "no item '%s'", id);
 *       return http_reply_json_str(req, 200, "{\"ok\":true}");
 *   }
 *   static const struct http_route routes[] = {
 *       { "GET", "/items/{id}", get_item, NULL },
 *   };
 *   struct http_config cfg = HTTP_CONFIG_INIT;
 *   cfg.listen = "127.0.0.1:0", cfg.routes = routes, cfg.n_routes = ARRAY_SIZE(routes);
 *   r = http_server_start(&cfg, &srv);      listeners are bound when this returns
 *
 * Threads: MHD runs the server in cfg.threads internal epoll threads; handlers of different
 * connections run concurrently and must be thread-safe.  One request is handled by one thread.
 * The server owns its requests and streams; a struct http_request is valid only inside its
 * handler call.  Nothing here logs above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct http_server;
struct http_request;
struct metrics_registry;
struct buf;

/* Returns 0 after queuing a reply with http_reply*() or http_sse_open(), or -errno: the adapter
 * then answers with http_status_from_errno() and the JSON error body (code, message and field
 * from http_error() when the handler set them). */
typedef int (*http_handler_fn)(struct http_request *req, void *userdata);

struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE"; GET also answers HEAD */
    const char *pattern; /* "/api/v1/flags/{key}": a {name} segment matches one non-empty path
                          * segment, percent-decoded; literal segments match exactly */
    http_handler_fn fn;
    const char *name; /* label for metrics; NULL = pattern */
};

struct http_config {
    const char *listen; /* "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses); port 0 = any */
    const struct http_route *routes; /* borrowed; must outlive the server */
    size_t n_routes;
    void *userdata;                   /* passed to every handler */
    unsigned threads;                 /* MHD internal epoll threads (thread pool); 0 = 1 */
    unsigned max_connections;         /* total, SSE streams included */
    unsigned per_ip_connections;      /* 0 = unlimited */
    unsigned timeout_sec;             /* idle keep-alive/slow client timeout; 0 = none */
    size_t max_body;                  /* request body cap; larger bodies get 413 */
    size_t conn_memory;               /* MHD per-connection memory pool (headers, buffers) */
    size_t arena_max;                 /* per-request arena cap (http_alloc), bytes */
    unsigned max_depth;               /* JSON nesting accepted by http_request_json() */
    unsigned sse_heartbeat_ms;        /* comment line on idle streams this often */
    size_t sse_queue_max;             /* bytes queued per stream before it is dropped */
    struct metrics_registry *metrics; /* optional; borrowed: http_requests_total and
                                       * http_request_duration_seconds are registered in it */
};
#define HTTP_CONFIG_INIT                                                                        \
    {                                                                                           \
        .listen = "127.0.0.1:0", .routes = NULL, .n_routes = 0, .userdata = NULL, .threads = 1, \
        .max_connections = 1024, .per_ip_connections = 0, .timeout_sec = 60,                    \
        .max_body = 1024 * 1024, .conn_memory = 64 * 1024, .arena_max = 4 * 1024 * 1024,        \
        .max_depth = 32, .sse_heartbeat_ms = 15000, .sse_queue_max = 8 * 1024 * 1024,           \
        .metrics = NULL                                                                         \
    }

/* Binds the listener, then starts MHD's threads; when it returns 0 the server accepts
 * connections (readiness may be reported).  -EINVAL for a bad listen address or route pattern,
 * -EADDRINUSE and other bind errors, -EEXIST when cfg->metrics already has the http_* families,
 * -ENOMEM; -EIO when MHD refuses to start.  cfg is copied; routes/metrics are borrowed. */
int http_server_start(const struct http_config *cfg, struct http_server **ret) WARN_UNUSED_RESULT;
/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);
/* Ends every SSE stream, stops accepting, waits for MHD's threads and frees the server.
 * NULL-safe; returns NULL.  Must not be called from a handler. */
struct http_server *http_server_stop(struct http_server *s);

/* ===== Requests (valid only during the handler call; strings are borrowed) ===== */

const char *http_request_method(const struct http_request *req);
/* The path with "//" collapsed, not decoded, without the query string. */
const char *http_request_path(const struct http_request *req);
/* A {name} path parameter, percent-decoded; NULL when the route has none of that name. */
const char *http_request_param(const struct http_request *req, const char *name);
/* A query-string argument, percent-decoded ('+' = space); NULL when absent or not decodable. */
const char *http_request_query(struct http_request *req, const char *name);
/* A request header (case-insensitive name); NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);
/* The request body (NUL-terminated; "" when none). */
const char *http_request_body(const struct http_request *req, size_t *ret_len);

/* Allocates n bytes (aligned for any type) from the request's arena, freed when the request
 * completes.  NULL when the arena cap is reached or on OOM. */
void *http_alloc(struct http_request *req, size_t n);
char *http_strdup(struct http_request *req, const char *s);

/* Parses the body as JSON (a jansson json_t *, returned in *ret as void * to keep jansson out
 * of this header; caller json_decref()s).  Rejects a Content-Type other than application/json
 * or +json (-EMEDIUMTYPE, 415), an empty body, invalid UTF-8, nesting deeper than
 * cfg.max_depth, duplicate keys and trailing data (-EBADMSG, 400), each with an error detail
 * set as by http_error(). */
int http_request_json(struct http_request *req, void **ret) WARN_UNUSED_RESULT;

/* ===== Replies: exactly one per request ===== */

/* Adds a response header (copied).  -EINVAL for CR/LF in name or value. */
int http_set_header(struct http_request *req, const char *name,
                    const char *value) WARN_UNUSED_RESULT;
/* Replies with a copy of body. */
int http_reply(struct http_request *req, unsigned status, const char *content_type,
               const void *body, size_t n) WARN_UNUSED_RESULT;
/* Replies with body, taking ownership of it (freed with free(), also on failure). */
int http_reply_take(struct http_request *req, unsigned status, const char *content_type, char *body,
                    size_t n) WARN_UNUSED_RESULT;
/* Replies with a JSON text (Content-Type: application/json). */
int http_reply_json_str(struct http_request *req, unsigned status,
                        const char *json) WARN_UNUSED_RESULT;
/* Replies with a jansson value (borrowed), dumped compactly. */
int http_reply_json(struct http_request *req, unsigned status, const void *json) WARN_UNUSED_RESULT;
/* Replies with no body (204, 304). */
int http_reply_empty(struct http_request *req, unsigned status) WARN_UNUSED_RESULT;
/* Replies with the registry's exposition, Content-Type text/plain; version=0.0.4. */
int http_reply_metrics(struct http_request *req, struct metrics_registry *reg) WARN_UNUSED_RESULT;

/* Records the error detail for the JSON error body and returns r, so a handler can write
 * `return http_error(req, -EINVAL, NULL, "rollout", "must be 0-100");`.  code NULL = the
 * default code for r ("invalid_argument", "not_found", ...); field NULL = no field. */
int http_error(struct http_request *req, int r, const char *code, const char *field,
               const char *fmt, ...) PRINTF(5, 6);

/* The one errno -> HTTP mapping: -EINVAL/-EBADMSG/-EILSEQ 400, -EACCES 401, -EPERM 403,
 * -ENOENT 404, -EEXIST/-ESTALE 409, -EMSGSIZE 413, -EMEDIUMTYPE 415, -EPROTO 422 (never
 * used by rolloutd), -EAGAIN/-EBUSY/-ENOMEM/-ENOBUFS/-ECONNREFUSED 503, -ETIMEDOUT 504,
 * -ENOSYS/-EOPNOTSUPP 501, anything else 500.  *ret_code (optional) gets the default code. */
unsigned http_status_from_errno(int r, const char **ret_code);

/* ===== Server-Sent Events ===== */

/* Turns the reply into an event stream on channel (200, text/event-stream, no-cache): initial
 * (may be NULL/0) is sent first, then every http_sse_broadcast() to that channel, and a comment
 * heartbeat when the stream was idle for cfg.sse_heartbeat_ms.  A stream whose queue exceeds
 * cfg.sse_queue_max is closed (the client reconnects).  Broadcasts that happen after this call
 * returns reach the stream; callers that need "snapshot then changes" without a gap serialise
 * opening and broadcasting under one lock of their own. */
int http_sse_open(struct http_request *req, const char *channel, const char *initial,
                  size_t n) WARN_UNUSED_RESULT;
/* Queues a preformatted event (see http_sse_format) on every stream of channel (NULL = all).
 * Returns the number of streams it was queued on.  Thread-safe; never blocks on clients. */
int http_sse_broadcast(struct http_server *s, const char *channel, const char *data, size_t n);
/* Number of open streams (all channels). */
unsigned http_sse_count(struct http_server *s);
/* Appends one event: "id: ID\nevent: EVENT\ndata: LINE\n...\n" (id/event optional; data split
 * at newlines).  -EINVAL for CR/LF in id or event. */
int http_sse_format(struct buf *out, const char *event, const char *id,
                    const char *data) WARN_UNUSED_RESULT;
