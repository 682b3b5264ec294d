/* SPDX-License-Identifier: MIT */
/* request.c - route compilation and matching, percent-decoding and the request accessors
 * (params, query, headers, body, JSON body). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/str.h"
#include "http.h"
#include "http_int.h"

/* ===== Routes ===== */

static int route_compile(struct http__route *rt, const struct http_route *def)
{
    const char *p = def->pattern;
    char *w;

    if (!def->method || !def->fn || !p || p[0] != '/')
        return -EINVAL;
    rt->def = def;
    rt->storage = xstrdup(p);
    rt->n_segs = 0;
    if (streq(p, "/"))
        return 0;
    w = rt->storage + 1;
    for (;;) {
        char *end = w + strcspn(w, "/");
        bool more = *end == '/';
        size_t len = (size_t)(end - w);

        if (len == 0 || rt->n_segs == HTTP_MAX_SEGMENTS)
            return -EINVAL; /* "//", a trailing "/" or too many segments */
        *end = '\0';
        if (w[0] == '{') {
            if (len < 3 || w[len - 1] != '}')
                return -EINVAL;
            w[len - 1] = '\0';
            w++;
            len -= 2;
            rt->is_param[rt->n_segs] = true;
        }
        rt->segs[rt->n_segs] = w;
        rt->seg_len[rt->n_segs] = len;
        rt->n_segs++;
        if (!more)
            return 0;
        w = end + 1;
    }
}

int http__routes_compile(struct http_server *s)
{
    s->routes = calloc(s->cfg.n_routes ? s->cfg.n_routes : 1, sizeof *s->routes);
    if (!s->routes)
        return -ENOMEM;
    s->n_routes = s->cfg.n_routes;
    for (size_t i = 0; i < s->n_routes; i++) {
        int r = route_compile(&s->routes[i], &s->cfg.routes[i]);
        if (r < 0)
            return r;
        unsigned np = 0;
        for (unsigned k = 0; k < s->routes[i].n_segs; k++)
            np += s->routes[i].is_param[k];
        if (np > HTTP_MAX_PARAMS)
            return -EINVAL;
    }
    return 0;
}

void http__routes_free(struct http_server *s)
{
    if (!s->routes)
        return;
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].storage);
    free(s->routes);
    s->routes = NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http__percent_decode(char *s, bool plus_is_space)
{
    char *w = s;

    for (const char *p = s; *p; p++) {
        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EBADMSG;
            *w++ = (char)(hi << 4 | lo);
            p += 2;
        } else if (*p == '+' && plus_is_space) {
            *w++ = ' ';
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (int)(w - s);
}

char *http__normalize_path(struct http_request *req, const char *url)
{
    size_t n = strcspn(url, "?");
    char *p = http_alloc(req, n + 2), *w = p;

    if (!p)
        return NULL;
    if (url[0] != '/')
        *w++ = '/';
    for (size_t i = 0; i < n; i++) {
        if (url[i] == '/' && w > p && w[-1] == '/')
            continue; /* "//ofrep/v1/..." from a baseUrl with a trailing slash */
        *w++ = url[i];
    }
    *w = '\0';
    return p;
}

static bool method_matches(const char *route_method, const char *method)
{
    if (streq(route_method, method))
        return true;
    return streq(method, "HEAD") && streq(route_method, "GET");
}

/* Splits the path into segments (arena copies, not yet decoded). */
static int split_path(struct http_request *req, char **segs, size_t *ret_n)
{
    const char *p = req->path;
    size_t n = 0;

    while (*p == '/') {
        const char *seg = p + 1;
        size_t len = strcspn(seg, "/");

        if (len == 0) {
            if (seg[0] == '\0')
                break; /* trailing slash or the path "/" */
            return -ENOENT;
        }
        if (n == HTTP_MAX_SEGMENTS)
            return -ENOENT;
        segs[n] = http__strndup(req, seg, len);
        if (!segs[n])
            return -ENOMEM;
        n++;
        p = seg + len;
    }
    *ret_n = n;
    return 0;
}

static bool route_shape_matches(const struct http__route *rt, char *const *segs, size_t n)
{
    if (rt->n_segs != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!rt->is_param[i] && !streq(rt->segs[i], segs[i]))
            return false;
    return true;
}

int http__route_match(struct http_request *req, const char **ret_allow)
{
    struct http_server *s = req->srv;
    char *segs[HTTP_MAX_SEGMENTS];
    struct buf allow = BUF_INIT(512);
    size_t n = 0;
    bool any = false;
    int r;

    r = split_path(req, segs, &n);
    if (r < 0)
        return r;
    for (size_t i = 0; i < s->n_routes; i++) {
        struct http__route *rt = &s->routes[i];

        if (!route_shape_matches(rt, segs, n))
            continue;
        if (method_matches(rt->def->method, req->method)) {
            req->route = rt;
            req->n_params = 0;
            for (size_t k = 0; k < n; k++) {
                if (!rt->is_param[k])
                    continue;
                if (http__percent_decode(segs[k], false) <= 0)
                    return -EBADMSG;
                req->param_names[req->n_params] = rt->segs[k];
                req->param_values[req->n_params] = segs[k];
                req->n_params++;
            }
            buf_release(&allow);
            return 0;
        }
        /* Collect the other methods for Allow (each once). */
        if (!any || !strstr(allow.data, rt->def->method)) {
            if ((any && buf_puts(&allow, ", ") < 0) || buf_puts(&allow, rt->def->method) < 0 ||
                (streq(rt->def->method, "GET") && buf_puts(&allow, ", HEAD") < 0)) {
                buf_release(&allow);
                return -ENOMEM;
            }
            any = true;
        }
    }
    if (!any)
        return -ENOENT;
    *ret_allow = http_strdup(req, allow.data);
    buf_release(&allow);
    return *ret_allow ? -ENOTSUP : -ENOMEM;
}

/* ===== Accessors ===== */

const char *http_request_method(const struct http_request *req)
{
    return req->method;
}

struct http_server *http_request_server(const struct http_request *req)
{
    return req->srv;
}

const char *http_request_path(const struct http_request *req)
{
    return req->path;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
    for (unsigned i = 0; i < req->n_params; i++)
        if (streq(req->param_names[i], name))
            return req->param_values[i];
    return NULL;
}

const char *http_request_query(struct http_request *req, const char *name)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    char *v;

    if (!raw)
        return NULL;
    v = http_strdup(req, raw);
    if (!v || http__percent_decode(v, true) < 0)
        return NULL;
    return v;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const struct http_request *req, size_t *ret_len)
{
    if (ret_len)
        *ret_len = req->body.len;
    return buf_str(&req->body);
}

/* ===== JSON body ===== */

static bool content_type_is_json(const char *ct)
{
    size_t n = strcspn(ct, ";");

    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Depth of the deepest array/object, outside strings; stops counting past limit. */
static unsigned json_depth(const char *p, size_t n, unsigned limit)
{
    unsigned depth = 0, max = 0;
    bool in_str = false;

    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
            if (max > limit)
                return max;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

int http_request_json(struct http_request *req, void **ret)
{
    const char *ct = http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    unsigned limit = req->srv->cfg.max_depth;
    json_error_t jerr;
    json_t *j;

    if (ct && !content_type_is_json(ct))
        return http_error(req, -EMEDIUMTYPE, "unsupported_media_type", NULL,
                          "Content-Type must be application/json, not '%s'", ct);
    if (req->body.len == 0)
        return http_error(req, -EBADMSG, "invalid_json", NULL, "request body is empty");
    if (memchr(req->body.data, '\0', req->body.len))
        return http_error(req, -EBADMSG, "invalid_json", NULL, "request body contains NUL");
    if (json_depth(req->body.data, req->body.len, limit) > limit)
        return http_error(req, -EBADMSG, "invalid_json", NULL, "JSON nested deeper than %u levels",
                          limit);
    j = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return http_error(req, -EBADMSG, "invalid_json", NULL,
                          "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    *ret = j;
    return 0;
}
