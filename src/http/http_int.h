/* SPDX-License-Identifier: MIT */
/* http_int.h - internals of the libmicrohttpd adapter shared by its files (and unit tests). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/buf.h"
#include "http.h"

/* collectd's shim: MHD 0.9.71 changed the callbacks' return type to enum MHD_Result. */
#if MHD_VERSION >= 0x00097002
#define MHD_RESULT enum MHD_Result
#else
#define MHD_RESULT int
#endif

#define HTTP_MAX_SEGMENTS 16
#define HTTP_MAX_PARAMS   4
#define HTTP_MAX_HEADERS  8
#define HTTP_ARENA_CHUNK  4096

struct metrics_family;
struct metrics_series;

/* A compiled route pattern. */
struct http__route {
    const struct http_route *def;
    const char *segs[HTTP_MAX_SEGMENTS]; /* literal text, or the param name for params */
    size_t seg_len[HTTP_MAX_SEGMENTS];
    bool is_param[HTTP_MAX_SEGMENTS];
    unsigned n_segs;
    char *storage; /* owns the segment strings */
    struct metrics_series *duration;
    /* requests_total series by status code (100..599), created on first use */
    _Atomic(struct metrics_series *) by_status[500];
};

struct http__arena_chunk {
    struct http__arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct http__header {
    char *name, *value; /* arena */
};

enum http__reply_kind {
    HTTP__REPLY_NONE,
    HTTP__REPLY_BODY,
    HTTP__REPLY_SSE,
};

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path; /* arena; collapsed slashes */
    uint64_t start_usec;
    struct buf body;
    bool body_too_large;
    bool dispatched;
    size_t upload_seen; /* bytes offered by MHD, counted even when discarded */

    struct http__route *route; /* matched route, NULL for 404/405 */
    const char *param_names[HTTP_MAX_PARAMS];
    char *param_values[HTTP_MAX_PARAMS];
    unsigned n_params;

    /* arena: the first chunk is inline after the struct */
    struct http__arena_chunk *arena;
    size_t arena_total;

    /* reply */
    enum http__reply_kind reply;
    unsigned status;
    const char *content_type; /* static or arena */
    char *reply_body;         /* malloc'd, handed to MHD with MHD_RESPMEM_MUST_FREE */
    size_t reply_len;
    struct http__header headers[HTTP_MAX_HEADERS];
    unsigned n_headers;
    struct http_sse *sse; /* http_sse_open(): linked, not yet owned by an MHD response */

    /* error detail from http_error(); err_status overrides the errno mapping */
    unsigned err_status;
    const char *err_code;
    const char *err_field;
    char err_msg[256];
};

struct http_sse {
    struct http_server *srv;
    struct MHD_Connection *conn;
    char *channel;
    struct buf queue;
    bool suspended; /* MHD_suspend_connection() called and not yet resumed */
    bool closing;   /* end the stream once the queue is flushed */
    bool dropped;   /* queue overflow: end without flushing */
    uint64_t last_usec;
    struct http_sse *prev, *next;
};

struct http_server {
    struct http_config cfg;
    char *listen_copy;
    struct MHD_Daemon *mhd;
    int listen_fd;
    uint16_t port;
    struct http__route *routes;
    size_t n_routes;

    struct metrics_family *m_requests;
    struct metrics_family *m_duration;
    struct http__route unmatched; /* metrics slot for 404/405 */

    pthread_mutex_t sse_lock;
    pthread_cond_t sse_cond; /* signalled when a stream goes away and to stop the ticker */
    struct http_sse *streams;
    unsigned n_streams;
    bool stopping;
    bool ticker_started;
    pthread_t ticker;
};

/* arena.c (http_alloc() and http_strdup() are in http.h) */
/* A zeroed request whose first arena chunk (HTTP_ARENA_CHUNK bytes) shares its allocation;
 * NULL on OOM.  Release with http__arena_release(), then free(). */
struct http_request *http__request_alloc(void);
/* Frees the chunks the arena grew (not the inline one, not req). */
void http__arena_release(struct http_request *req);
/* n bytes of s, NUL-terminated, in the arena; NULL when the arena is full. */
char *http__strndup(struct http_request *req, const char *s, size_t n);

/* request.c */
int http__routes_compile(struct http_server *s) WARN_UNUSED_RESULT;
void http__routes_free(struct http_server *s);
/* Matches req->path; fills req->route and params.  0, -ENOENT (no pattern matches the path),
 * -EBADMSG (undecodable segment), or -ENOTSUP when the path exists with other methods; then
 * *ret_allow (arena) lists them. */
int http__route_match(struct http_request *req, const char **ret_allow);
int http__percent_decode(char *s, bool plus_is_space);
char *http__normalize_path(struct http_request *req, const char *url);

/* reply.c */
/* Replaces the handler's reply (a body; an SSE stream is the caller's to discard first) with the
 * JSON error body for r and the detail of http_error(); the headers set stay.  0 or -ENOMEM. */
int http__reply_error(struct http_request *req, int r) WARN_UNUSED_RESULT;
/* The MHD response of a body reply, which then owns the body (NULL on OOM). */
struct MHD_Response *http__body_response(struct http_request *req);
/* Adds the headers the handler set with http_set_header() to resp: 0, or -ENOMEM when MHD
 * refuses one. */
int http__add_headers(struct http_request *req, struct MHD_Response *resp) WARN_UNUSED_RESULT;

/* sse.c */
int http__sse_init(struct http_server *s) WARN_UNUSED_RESULT;
void http__sse_shutdown(struct http_server *s);
/* Builds the response of the stream http_sse_open() linked, which then owns it (NULL on OOM;
 * the stream is freed). */
struct MHD_Response *http__sse_response(struct http_request *req);
/* Unlinks and frees the stream of a request that failed after http_sse_open(). */
void http__sse_discard(struct http_request *req);
