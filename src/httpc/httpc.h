/* SPDX-License-Identifier: MIT */
/* httpc.h - the project's one blocking HTTP client (libcurl): infractl's calls to rolloutd,
 * gpu_agent and Alertmanager; rolloutd's Prometheus queries and alert webhooks; the drills'
 * Patroni switchover and alert polls.  Returns -errno;
 * callers map results to exit codes or messages.  Thread-safe after httpc_init() (one easy
 * handle per call).
 *
 * Ownership: struct httpc_request is borrowed for the call; struct httpc_response owns its body
 * (httpc_response_release()). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/macro.h"

struct httpc_request {
    const char *method;      /* default "GET" */
    const char *url;         /* http:// or https:// only */
    const char *token;       /* "Authorization: Bearer TOKEN"; NULL = none */
    const char *userpwd;     /* "user:password" for basic auth (Patroni's API); NULL = none */
    const char *body;        /* sent as application/json; NULL = none ("" for an empty POST) */
    long timeout_ms;         /* whole exchange; default 30 s */
    long connect_timeout_ms; /* default 5 s */
    size_t max_body;         /* response bytes kept; more fails with -ENOBUFS; default 4 MiB */
    const char *header;      /* NULL, or a response header whose value to keep (any case) */
};

struct httpc_response {
    long status;      /* the HTTP status (any: 4xx/5xx are not errors here) */
    struct buf body;  /* the response body */
    char header[128]; /* the value of http_request.header, "" when absent */
    char error[256];  /* why a call failed, for messages */
};

/* Once per process, before the first call (libcurl's global state).  0 or -EIO. */
int httpc_init(void) WARN_UNUSED_RESULT;
void httpc_cleanup(void);

/* One request.  0 with *ret filled; on failure -ECONNREFUSED (nothing listens),
 * -EHOSTUNREACH (the host does not resolve), -ETIMEDOUT, -ENOBUFS (response over max_body),
 * -ENOMEM, -EIO (other transfer errors), with ret->error saying why.  Release ret either way. */
int httpc_call(const struct httpc_request *req, struct httpc_response *ret) WARN_UNUSED_RESULT;
void httpc_response_release(struct httpc_response *r);
/* s percent-encoded for a URL query value (RFC 3986 unreserved kept).  NULL on OOM; caller
 * frees with free(). */
char *httpc_escape(const char *s);
