/* SPDX-License-Identifier: MIT */
/* reply.c - replies, the one errno -> HTTP status mapping and the JSON error body. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "http.h"
#include "http_int.h"
#include "metrics/metrics.h"

#define CT_JSON "application/json"

unsigned http_status_from_errno(int r, const char **ret_code)
{
    unsigned status;
    const char *code;

    switch (r) {
    case -EINVAL:
    case -EBADMSG:
    case -EILSEQ:
    case -EDOM:
    case -ERANGE:
        status = 400, code = "invalid_argument";
        break;
    case -EACCES:
        status = 401, code = "unauthorized";
        break;
    case -EPERM:
        status = 403, code = "forbidden";
        break;
    case -ENOENT:
        status = 404, code = "not_found";
        break;
    case -EEXIST:
        status = 409, code = "already_exists";
        break;
    case -ESTALE:
        status = 409, code = "conflict";
        break;
    case -EMSGSIZE:
    case -E2BIG:
        status = 413, code = "payload_too_large";
        break;
    case -EMEDIUMTYPE:
        status = 415, code = "unsupported_media_type";
        break;
    case -EPROTO:
        status = 422, code = "unprocessable";
        break;
    case -EAGAIN:
    case -EBUSY:
    case -ENOMEM:
    case -ENOBUFS:
    case -ECONNREFUSED:
    case -ENOTCONN:
        status = 503, code = "unavailable";
        break;
    case -ETIMEDOUT:
        status = 504, code = "timeout";
        break;
    case -ENOSYS:
    case -EOPNOTSUPP:
        status = 501, code = "not_implemented";
        break;
    default:
        status = 500, code = "internal";
        break;
    }
    if (ret_code)
        *ret_code = code;
    return status;
}

int http_error(struct http_request *req, int r, const char *code, const char *field,
               const char *fmt, ...)
{
    va_list ap;

    req->err_code = code ? http_strdup(req, code) : NULL;
    req->err_field = field ? http_strdup(req, field) : NULL;
    va_start(ap, fmt);
    (void)vsnprintf(req->err_msg, sizeof req->err_msg, fmt, ap);
    va_end(ap);
    return r;
}

static bool header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int http_set_header(struct http_request *req, const char *name, const char *value)
{
    struct http__header *h;

    if (!header_ok(name) || !header_ok(value) || !name[0])
        return -EINVAL;
    if (req->n_headers == HTTP_MAX_HEADERS)
        return -ENOBUFS;
    h = &req->headers[req->n_headers];
    h->name = http_strdup(req, name);
    h->value = http_strdup(req, value);
    if (!h->name || !h->value)
        return -ENOMEM;
    req->n_headers++;
    return 0;
}

int http_reply_take(struct http_request *req, unsigned status, const char *content_type, char *body,
                    size_t n)
{
    if (req->reply != HTTP__REPLY_NONE || status < 100 || status > 599 ||
        (content_type && !header_ok(content_type))) {
        free(body);
        return -EINVAL;
    }
    if (content_type) {
        req->content_type = http_strdup(req, content_type);
        if (!req->content_type) {
            free(body);
            return -ENOMEM;
        }
    }
    req->reply = HTTP__REPLY_BODY;
    req->status = status;
    req->reply_body = body;
    req->reply_len = n;
    return 0;
}

int http_reply(struct http_request *req, unsigned status, const char *content_type,
               const void *body, size_t n)
{
    char *copy = NULL;

    if (n > 0) {
        copy = malloc(n);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, body, n);
    }
    return http_reply_take(req, status, content_type, copy, n);
}

int http_reply_json_str(struct http_request *req, unsigned status, const char *json)
{
    return http_reply(req, status, CT_JSON, json, strlen(json));
}

int http_reply_json(struct http_request *req, unsigned status, const void *json)
{
    char *s = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);

    if (!s)
        return -ENOMEM;
    return http_reply_take(req, status, CT_JSON, s, strlen(s));
}

int http_reply_empty(struct http_request *req, unsigned status)
{
    return http_reply_take(req, status, NULL, NULL, 0);
}

int http_reply_metrics(struct http_request *req, struct metrics_registry *reg)
{
    struct buf out = BUF_INIT(64 * 1024 * 1024);
    size_t n;
    char *s;
    int r;

    r = metrics_write_text(reg, &out);
    if (r < 0 && r != -ENOBUFS) {
        buf_release(&out);
        return r;
    }
    /* -ENOBUFS: out ends at the last complete series; a truncated scrape beats none. */
    s = buf_detach(&out, &n);
    return http_reply_take(req, 200, METRICS_CONTENT_TYPE, s, n);
}

/* {"error":{"code":"...","message":"...","field":"..."}} */
static int error_body(struct http_request *req, int r)
{
    const char *code;
    json_t *e, *o;
    unsigned status = http_status_from_errno(r, &code);
    char *s;

    if (req->err_status)
        status = req->err_status; /* 405, set by the dispatcher */
    if (!req->err_msg[0])
        (void)snprintf(req->err_msg, sizeof req->err_msg, "%s", strerror(-r));
    e = json_pack("{s:s, s:s}", "code", req->err_code ? req->err_code : code, "message",
                  req->err_msg);
    if (!e)
        return -ENOMEM;
    if (req->err_field && json_object_set_new(e, "field", json_string(req->err_field)) < 0) {
        json_decref(e);
        return -ENOMEM;
    }
    o = json_pack("{s:o}", "error", e);
    if (!o)
        return -ENOMEM;
    /* An invalid UTF-8 message (echoed user input) makes jansson refuse; say less then. */
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) {
        const char *fallback = "{\"error\":{\"code\":\"internal\",\"message\":\"error\"}}";
        s = strdup(fallback);
        if (!s)
            return -ENOMEM;
    }
    req->reply_body = s;
    req->reply_len = strlen(s);
    req->content_type = CT_JSON;
    req->status = status;
    req->reply = HTTP__REPLY_BODY;
    return 0;
}

int http__add_headers(struct http_request *req, struct MHD_Response *resp)
{
    for (unsigned i = 0; i < req->n_headers; i++)
        if (MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value) != MHD_YES)
            return -ENOMEM;
    return 0;
}

int http__reply_error(struct http_request *req, int r)
{
    free(req->reply_body);
    req->reply_body = NULL;
    req->reply = HTTP__REPLY_NONE;
    return error_body(req, r);
}

struct MHD_Response *http__body_response(struct http_request *req)
{
    struct MHD_Response *resp;

    if (req->reply_body)
        resp = MHD_create_response_from_buffer(req->reply_len, req->reply_body,
                                               MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return NULL;
    req->reply_body = NULL; /* MHD owns it now */
    if (req->content_type &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type) != MHD_YES)
        goto fail;
    if (http__add_headers(req, resp) < 0)
        goto fail;
    return resp;
fail:
    MHD_destroy_response(resp);
    return NULL;
}
