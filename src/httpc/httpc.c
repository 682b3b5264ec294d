/* SPDX-License-Identifier: MIT */
#include "httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"

#define DEFAULT_TIMEOUT_MS         30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_MAX_BODY           (4u << 20)

struct call {
    const struct httpc_request *req;
    struct httpc_response *resp;
    bool too_big;
};

int httpc_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void httpc_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;

    /* A short count makes curl fail the transfer with CURLE_WRITE_ERROR. */
    if (buf_append(&c->resp->body, p, size * n) < 0) {
        c->too_big = true;
        return 0;
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    struct call *c = userdata;
    size_t len = size * n, name = c->req->header ? strlen(c->req->header) : 0;

    if (name && len > name && p[name] == ':' && strncasecmp(p, c->req->header, name) == 0) {
        size_t i = name + 1, end = len;

        while (i < end && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (end > i && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
            end--;
        (void)snprintf(c->resp->header, sizeof c->resp->header, "%.*s", (int)(end - i), p + i);
    }
    return len;
}

static int from_curl(CURLcode cc, bool too_big)
{
    switch (cc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_WRITE_ERROR:
        return too_big ? -ENOBUFS : -EIO;
    default:
        return -EIO;
    }
}

int httpc_call(const struct httpc_request *req, struct httpc_response *ret)
{
    struct call call = { .req = req, .resp = ret };
    char errbuf[CURL_ERROR_SIZE] = "", *auth = NULL;
    struct curl_slist *h = NULL;
    CURLcode cc;
    CURL *c;
    int r;

    *ret = (struct httpc_response){ .status = 0 };
    buf_init(&ret->body, req->max_body ? req->max_body : DEFAULT_MAX_BODY);
    c = curl_easy_init();
    if (!c) {
        (void)snprintf(ret->error, sizeof ret->error, "out of memory");
        return -ENOMEM;
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (req->body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (req->token) {
        auth = xasprintf("Authorization: Bearer %s", req->token);
        h = curl_slist_append(h, auth);
    }
    (void)curl_easy_setopt(c, CURLOPT_URL, req->url);
    (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method ? req->method : "GET");
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &call);
    (void)curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    (void)curl_easy_setopt(c, CURLOPT_HEADERDATA, &call);
    (void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                           req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    (void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                           req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                       : DEFAULT_CONNECT_TIMEOUT_MS);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->userpwd) {
        (void)curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        (void)curl_easy_setopt(c, CURLOPT_USERPWD, req->userpwd);
    }
    if (req->body)
        (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    cc = curl_easy_perform(c);
    r = from_curl(cc, call.too_big);
    if (r < 0)
        (void)snprintf(ret->error, sizeof ret->error, "%s",
                       r == -ENOBUFS ? "response too large"
                       : errbuf[0]   ? errbuf
                                     : curl_easy_strerror(cc));
    else
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
    if (auth)
        explicit_bzero(auth, strlen(auth));
    free(auth);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

void httpc_response_release(struct httpc_response *r)
{
    if (r)
        buf_release(&r->body);
}

char *httpc_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *copy;

    if (!e)
        return NULL;
    copy = strdup(e);
    curl_free(e);
    return copy;
}
