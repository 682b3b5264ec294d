/* SPDX-License-Identifier: MIT */
/* http_client.h - infractl's one HTTP client (libcurl), for rolloutd's admin API and
 * gpu_agent's API.  Returns -errno; only the cmd_*.c files map results to exit codes.
 *
 * Ownership: struct http_request is borrowed for the call; struct http_response owns its body
 * (http_response_release()). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/macro.h"

struct http_request {
    const char *method;      /* default "GET" */
    const char *url;         /* http:// or https:// only */
    const char *token;       /* "Authorization: Bearer TOKEN"; NULL = none */
    const char *body;        /* sent as application/json; NULL = none ("" for an empty POST) */
    long timeout_ms;         /* whole exchange; default 30 s */
    long connect_timeout_ms; /* default 5 s */
    size_t max_body;         /* response bytes kept; more fails with -ENOBUFS; default 4 MiB */
    const char *header;      /* NULL, or a response header whose value to keep (any case) */
};

struct http_response {
    long status;      /* the HTTP status (any: 4xx/5xx are not errors here) */
    struct buf body;  /* the response body */
    char header[128]; /* the value of http_request.header, "" when absent */
    char error[256];  /* why a call failed, for messages */
};

/* Once per process, before the first call (libcurl's global state).  0 or -EIO. */
int http_client_init(void) WARN_UNUSED_RESULT;
void http_client_cleanup(void);

/* One request.  0 with *ret filled; on failure -ECONNREFUSED (nothing listens),
 * -EHOSTUNREACH (the host does not resolve), -ETIMEDOUT, -ENOBUFS (response over max_body),
 * -ENOMEM, -EIO (other transfer errors), with ret->error saying why.  Release ret either way. */
int http_client_call(const struct http_request *req, struct http_response *ret) WARN_UNUSED_RESULT;
void http_response_release(struct http_response *r);
