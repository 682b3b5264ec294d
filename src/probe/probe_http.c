/* SPDX-License-Identifier: MIT */
/* probe_http.c - http probe: one HTTP/1.0 request with "Connection: close", the response read
 * (bounded by PROBE_HTTP_MAX) until EOF or until Content-Length bytes of body arrived. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"
#include "probe_int.h"

struct http_response {
    unsigned status;
    const char *body;
    size_t body_len;
    bool have_length; /* Content-Length seen */
    size_t length;
    bool headers_done;
};

static bool http_token_ok(const char *s)
{
    /* Method and path go on the request line verbatim: refuse anything that would split it. */
    return s[0] && !strpbrk(s, " \r\n\t");
}

static void http_start(struct probe *p)
{
    const struct probe_spec *s = p->spec;
    const char *method = s->method && s->method[0] ? s->method : "GET";
    const char *path = s->path && s->path[0] ? s->path : "/";
    const char *host = probe__host(p);
    uint16_t port = s->port ? s->port : 80;

    if (!http_token_ok(method) || !http_token_ok(path)) {
        probe__finish(p, -EINVAL, "invalid HTTP method or path");
        return;
    }
    if (buf_appendf(&p->net.out,
                    "%s %s HTTP/1.0\r\nHost: %s%s%s:%u\r\nUser-Agent: infractl-probe\r\n"
                    "Accept: */*\r\nConnection: close\r\n",
                    method, path, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                    (unsigned)port) < 0 ||
        (s->body &&
         buf_appendf(&p->net.out, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                     strlen(s->body)) < 0) ||
        buf_puts(&p->net.out, "\r\n") < 0 || (s->body && buf_puts(&p->net.out, s->body) < 0)) {
        probe__finish(p, -ENOMEM, "out of memory");
        return;
    }
    probe__net_start(p, port);
}

/* Parses a decimal field of at most 19 digits without strtol (banned outside core/str.c). */
static bool http_parse_size(const char *s, size_t n, size_t *ret)
{
    size_t v = 0, i = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n)
        return false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i != n)
        return false;
    *ret = v;
    return true;
}

/* Returns 0 and fills *res when the status line is valid (headers may still be incomplete),
 * -EAGAIN when more bytes are needed for the status line, -EPROTO when it is garbage. */
static int http_parse(const char *d, size_t len, struct http_response *res)
{
    const char *eol = memchr(d, '\n', len), *line, *end = d + len;
    size_t i = 5;

    *res = (struct http_response){ 0 };
    if (len < 5 || memcmp(d, "HTTP/", 5) != 0)
        return len < 5 && memcmp(d, "HTTP/", len) == 0 ? -EAGAIN : -EPROTO;
    if (!eol)
        return len > 256 ? -EPROTO : -EAGAIN;
    /* "HTTP/" DIGIT "." DIGIT SP 3DIGIT [SP reason] */
    if (eol - d < 12 || d[i] < '0' || d[i] > '9' || d[i + 1] != '.' || d[i + 2] < '0' ||
        d[i + 2] > '9' || d[i + 3] != ' ')
        return -EPROTO;
    for (i = 9; i < 12; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -EPROTO;
        res->status = res->status * 10 + (unsigned)(d[i] - '0');
    }
    if (d + 12 != eol && d[12] != ' ' && d[12] != '\r')
        return -EPROTO;

    for (line = eol + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n;

        if (!nl)
            return 0; /* headers incomplete */
        n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0) {
            res->headers_done = true;
            res->body = nl + 1;
            res->body_len = (size_t)(end - res->body);
            return 0;
        }
        if (n > 15 && strncasecmp(line, "Content-Length:", 15) == 0)
            res->have_length = http_parse_size(line + 15, n - 15, &res->length);
        line = nl + 1;
    }
    return 0;
}

static void http_complete(struct probe *p, bool truncated)
{
    struct http_response res;
    unsigned expect = p->spec->expect_status;
    bool ok;
    int r;

    r = http_parse(p->http_in.data ? p->http_in.data : "", p->http_in.len, &res);
    if (p->http_in.len == 0) {
        probe__finish(p, -EPROTO, "%s closed the connection without a response", p->net.addr);
        return;
    }
    if (r < 0) {
        probe__finish(p, -EPROTO, "malformed HTTP response from %s", p->net.addr);
        return;
    }
    if (res.headers_done) {
        size_t n = res.have_length && res.length < res.body_len ? res.length : res.body_len;
        probe__detail_append(p, res.body, n);
    }
    ok = expect ? res.status == expect : res.status >= 200 && res.status <= 299;
    if (ok)
        probe__finish(p, 0, "HTTP %u%s", res.status, truncated ? " (response truncated)" : "");
    else if (expect)
        probe__finish(p, -EPROTO, "HTTP %u (expected %u)", res.status, expect);
    else
        probe__finish(p, -EPROTO, "HTTP %u", res.status);
}

static void http_step(struct probe *p, short revents)
{
    struct http_response res;
    int r;

    if (!p->net.connected) {
        r = probe__net_connect_step(p, revents);
        if (r <= 0)
            return;
    }
    if (p->net.out_off < p->net.out.len) {
        (void)probe__net_flush(p); /* then waits for POLLIN, or finished on error */
        return;
    }
    r = probe__net_read(p, &p->http_in);
    if (r < 0 && r != -ENOBUFS)
        return;
    if (r == 1 || r == -ENOBUFS) {
        http_complete(p, r == -ENOBUFS);
        return;
    }
    /* Garbage needs no more bytes, and a server that ignores "Connection: close" but sent
     * Content-Length is done once the body is in. */
    r = http_parse(p->http_in.data ? p->http_in.data : "", p->http_in.len, &res);
    if (r == -EPROTO ||
        (r == 0 && res.headers_done && res.have_length && res.body_len >= res.length))
        http_complete(p, false);
}

static void http_release(struct probe *p)
{
    probe__net_release(p);
    buf_release(&p->http_in);
}

const struct probe_ops probe__http_ops = {
    .start = http_start,
    .step = http_step,
    .release = http_release,
};
