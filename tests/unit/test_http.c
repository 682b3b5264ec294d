/* SPDX-License-Identifier: MIT */
/* test_http.c - the libmicrohttpd adapter against a real server on 127.0.0.1 (port 0) and raw
 * TCP clients: routing, decoding, 404/405, body limits, JSON errors, SSE, /metrics. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "t.h"

static struct http_server *g_srv;
static struct metrics_registry *g_reg;

/* ===== Handlers ===== */

static int h_item(struct http_request *req, void *userdata)
{
    const char *q = http_request_query(req, "q");
    json_t *j;
    int r;

    (void)userdata;
    j = json_pack("{s:s, s:s, s:s?}", "id", http_request_param(req, "id"), "method",
                  http_request_method(req), "q", q);
    r = http_reply_json(req, 200, j);
    json_decref(j);
    return r;
}

static int h_nested(struct http_request *req, void *userdata)
{
    char buf[128];

    (void)userdata;
    (void)snprintf(buf, sizeof buf, "%s|%s", http_request_param(req, "a"),
                   http_request_param(req, "b"));
    return http_reply(req, 200, "text/plain", buf, strlen(buf));
}

static int h_echo(struct http_request *req, void *userdata)
{
    json_t *j = NULL;
    json_t *v;
    int r;

    (void)userdata;
    r = http_request_json(req, (void **)&j);
    if (r < 0)
        return r;
    v = json_object_get(j, "percent");
    if (v && (!json_is_integer(v) || json_integer_value(v) > 100)) {
        json_decref(j);
        return http_error(req, -EINVAL, NULL, "percent", "percent must be 0-100");
    }
    r = http_set_header(req, "X-Echo", "1");
    if (r >= 0)
        r = http_reply_json(req, 201, j);
    json_decref(j);
    return r;
}

static int h_stale(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_error(req, -ESTALE, NULL, "version", "version 3 is stale, current is 4");
}

static int h_fail(struct http_request *req, void *userdata)
{
    (void)req;
    (void)userdata;
    return -EIO;
}

static int h_noreply(struct http_request *req, void *userdata)
{
    (void)req;
    (void)userdata;
    return 0;
}

static int h_arena(struct http_request *req, void *userdata)
{
    size_t total = 0;

    (void)userdata;
    /* 1 MiB cap in the test config: allocations stop before it. */
    while (http_alloc(req, 60000))
        total += 60000;
    if (total == 0 || total > 1024 * 1024)
        return -EIO;
    return http_reply_json_str(req, 200, "{\"ok\":true}");
}

static int h_metrics(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_reply_metrics(req, g_reg);
}

static int h_events(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_sse_open(req, http_request_param(req, "ch"), "event: hello\ndata: {}\n\n", 23);
}

static const struct http_route routes[] = {
    { "GET", "/items/{id}", h_item, NULL },    { "DELETE", "/items/{id}", h_item, NULL },
    { "GET", "/a/{a}/b/{b}", h_nested, NULL }, { "POST", "/echo", h_echo, NULL },
    { "PUT", "/stale", h_stale, NULL },        { "GET", "/fail", h_fail, NULL },
    { "GET", "/noreply", h_noreply, NULL },    { "GET", "/arena", h_arena, NULL },
    { "GET", "/metrics", h_metrics, NULL },    { "GET", "/events/{ch}", h_events, "events" },
};

static void start(unsigned threads, unsigned heartbeat_ms)
{
    struct http_config cfg = HTTP_CONFIG_INIT;

    g_reg = metrics_registry_new();
    ASSERT_TRUE(g_reg);
    cfg.routes = routes;
    cfg.n_routes = ARRAY_SIZE(routes);
    cfg.max_body = 1000;
    cfg.arena_max = 1024 * 1024;
    cfg.max_depth = 8;
    cfg.threads = threads;
    cfg.metrics = g_reg;
    cfg.sse_heartbeat_ms = heartbeat_ms;
    cfg.timeout_sec = 5;
    ASSERT_OK(http_server_start(&cfg, &g_srv));
    ASSERT_NE(http_server_port(g_srv), 0);
}

static void stop(void)
{
    g_srv = http_server_stop(g_srv);
    g_reg = metrics_registry_free(g_reg);
}

/* ===== A raw HTTP client ===== */

struct resp {
    unsigned status;
    char headers[4096];
    char body[16384];
};

static int connect_srv(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(http_server_port(g_srv)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ASSERT_TRUE(fd >= 0);
    ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        ASSERT_TRUE(k > 0);
        p += k;
        n -= (size_t)k;
    }
}

/* Reads until EOF (the requests say Connection: close). */
static void read_all(int fd, struct buf *out)
{
    char tmp[4096];

    for (;;) {
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == ECONNRESET)
            break;
        ASSERT_TRUE(k >= 0);
        if (k == 0)
            break;
        ASSERT_OK(buf_append(out, tmp, (size_t)k));
    }
}

static void parse_resp(const char *raw, struct resp *res)
{
    const char *hdr_end = strstr(raw, "\r\n\r\n");
    uint64_t st;
    char code[4] = { 0 };

    ASSERT_TRUE(hdr_end);
    ASSERT_TRUE(str_startswith(raw, "HTTP/1.1 "));
    memcpy(code, raw + 9, 3);
    ASSERT_OK(parse_u64(code, &st));
    res->status = (unsigned)st;
    (void)snprintf(res->headers, sizeof res->headers, "%.*s", (int)(hdr_end - raw), raw);
    (void)snprintf(res->body, sizeof res->body, "%s", hdr_end + 4);
}

static void request(const char *method, const char *path, const char *extra_headers,
                    const char *body, struct resp *res)
{
    struct buf req = BUF_INIT(0), out = BUF_INIT(0);
    int fd = connect_srv();

    ASSERT_OK(buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s", method,
                          path, extra_headers ? extra_headers : ""));
    if (body)
        ASSERT_OK(buf_appendf(&req, "Content-Length: %zu\r\n\r\n%s", strlen(body), body));
    else
        ASSERT_OK(buf_puts(&req, "\r\n"));
    send_all(fd, req.data, req.len);
    read_all(fd, &out);
    (void)close(fd);
    parse_resp(buf_str(&out), res);
    buf_release(&req);
    buf_release(&out);
}

static json_t *body_json(const struct resp *res)
{
    json_error_t e;
    json_t *j = json_loads(res->body, 0, &e);

    if (!j)
        T_FAIL("body is not JSON (%s): %s", e.text, res->body);
    return j;
}

static void assert_error(const struct resp *res, unsigned status, const char *code,
                         const char *field)
{
    json_t *j, *err;

    if (res->status != status)
        T_FAIL("status %u != %u; body: %s", res->status, status, res->body);
    ASSERT_CONTAINS(res->headers, "Content-Type: application/json");
    j = body_json(res);
    err = json_object_get(j, "error");
    ASSERT_TRUE(json_is_object(err));
    ASSERT_STREQ(json_string_value(json_object_get(err, "code")), code);
    ASSERT_TRUE(json_is_string(json_object_get(err, "message")));
    if (field)
        ASSERT_STREQ(json_string_value(json_object_get(err, "field")), field);
    else
        ASSERT_TRUE(json_object_get(err, "field") == NULL);
    json_decref(j);
}

/* ===== Cases ===== */

static void test_routing(void)
{
    struct resp res;
    json_t *j;

    start(1, 0);
    request("GET", "/items/a%20b%2Fc?q=x+y%21", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_CONTAINS(res.headers, "Content-Type: application/json");
    j = body_json(&res);
    ASSERT_STREQ(json_string_value(json_object_get(j, "id")), "a b/c");
    ASSERT_STREQ(json_string_value(json_object_get(j, "q")), "x y!");
    ASSERT_STREQ(json_string_value(json_object_get(j, "method")), "GET");
    json_decref(j);

    /* "//" collapses (OFREP clients with a trailing slash in baseUrl) */
    request("GET", "//items/k1", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_CONTAINS(res.body, "\"id\":\"k1\"");

    request("DELETE", "/items/k2", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_CONTAINS(res.body, "\"method\":\"DELETE\"");

    request("GET", "/a/1/b/2", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_STREQ(res.body, "1|2");

    request("HEAD", "/items/k3", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_STREQ(res.body, "");
    stop();
}

static void test_not_found(void)
{
    struct resp res;

    start(1, 0);
    request("GET", "/nope", NULL, NULL, &res);
    assert_error(&res, 404, "not_found", NULL);
    request("GET", "/items", NULL, NULL, &res);
    assert_error(&res, 404, "not_found", NULL);
    request("GET", "/items/a/b", NULL, NULL, &res);
    assert_error(&res, 404, "not_found", NULL);
    /* an empty segment is not a parameter */
    request("GET", "/a//b/x", NULL, NULL, &res);
    assert_error(&res, 404, "not_found", NULL);
    /* %00 and broken escapes in a parameter */
    request("GET", "/items/a%00b", NULL, NULL, &res);
    assert_error(&res, 400, "bad_path", NULL);
    request("GET", "/items/a%zz", NULL, NULL, &res);
    assert_error(&res, 400, "bad_path", NULL);
    stop();
}

static void test_method_not_allowed(void)
{
    struct resp res;

    start(1, 0);
    request("POST", "/items/x", NULL, "{}", &res);
    assert_error(&res, 405, "method_not_allowed", NULL);
    ASSERT_CONTAINS(res.headers, "Allow: GET, HEAD, DELETE");
    request("GET", "/echo", NULL, NULL, &res);
    assert_error(&res, 405, "method_not_allowed", NULL);
    ASSERT_CONTAINS(res.headers, "Allow: POST");
    stop();
}

static void test_body_limit(void)
{
    struct resp res;
    struct buf big = BUF_INIT(0), raw = BUF_INIT(0), out = BUF_INIT(0);
    int fd;

    start(1, 0);
    ASSERT_OK(buf_puts(&big, "{\"x\":\""));
    for (int i = 0; i < 2000; i++)
        ASSERT_OK(buf_puts(&big, "a"));
    ASSERT_OK(buf_puts(&big, "\"}"));
    request("POST", "/echo", "Content-Type: application/json\r\n", big.data, &res);
    assert_error(&res, 413, "payload_too_large", NULL);

    /* chunked upload over the limit: read, discarded, then 413 */
    fd = connect_srv();
    ASSERT_OK(buf_puts(&raw, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(buf_appendf(&raw, "%x\r\n", 600));
        for (int k = 0; k < 600; k++)
            ASSERT_OK(buf_puts(&raw, "a"));
        ASSERT_OK(buf_puts(&raw, "\r\n"));
    }
    ASSERT_OK(buf_puts(&raw, "0\r\n\r\n"));
    send_all(fd, raw.data, raw.len);
    read_all(fd, &out);
    (void)close(fd);
    parse_resp(buf_str(&out), &res);
    assert_error(&res, 413, "payload_too_large", NULL);

    /* just under the limit is fine */
    request("POST", "/echo", NULL, "{\"percent\":5}", &res);
    ASSERT_EQ(res.status, 201);
    ASSERT_CONTAINS(res.headers, "X-Echo: 1");
    ASSERT_STREQ(res.body, "{\"percent\":5}");
    buf_release(&big);
    buf_release(&raw);
    buf_release(&out);
    stop();
}

static void test_json_errors(void)
{
    struct resp res;
    char deep[64];

    start(1, 0);
    request("POST", "/echo", NULL, "{\"percent\":", &res);
    assert_error(&res, 400, "invalid_json", NULL);
    ASSERT_CONTAINS(res.body, "line 1");
    request("POST", "/echo", NULL, "", &res);
    assert_error(&res, 400, "invalid_json", NULL);
    request("POST", "/echo", NULL, "{\"a\":1,\"a\":2}", &res);
    assert_error(&res, 400, "invalid_json", NULL);
    request("POST", "/echo", NULL, "{\"s\":\"\xff\xfe\"}", &res);
    assert_error(&res, 400, "invalid_json", NULL);
    request("POST", "/echo", NULL, "{} trailing", &res);
    assert_error(&res, 400, "invalid_json", NULL);
    /* nesting: 9 levels with max_depth 8 */
    (void)snprintf(deep, sizeof deep, "%s", "[[[[[[[[[1]]]]]]]]]");
    request("POST", "/echo", NULL, deep, &res);
    assert_error(&res, 400, "invalid_json", NULL);
    ASSERT_CONTAINS(res.body, "deeper");
    request("POST", "/echo", "Content-Type: text/plain\r\n", "{}", &res);
    assert_error(&res, 415, "unsupported_media_type", NULL);
    request("POST", "/echo", "Content-Type: application/merge-patch+json\r\n", "{}", &res);
    ASSERT_EQ(res.status, 201);
    request("POST", "/echo", "Content-Type: application/json; charset=utf-8\r\n",
            "{\"percent\":101}", &res);
    assert_error(&res, 400, "invalid_argument", "percent");
    request("PUT", "/stale", NULL, "{}", &res);
    assert_error(&res, 409, "conflict", "version");
    ASSERT_CONTAINS(res.body, "stale");
    request("GET", "/fail", NULL, NULL, &res);
    assert_error(&res, 500, "internal", NULL);
    request("GET", "/noreply", NULL, NULL, &res);
    assert_error(&res, 500, "internal", NULL);
    stop();
}

static void test_errno_map(void)
{
    const char *code;

    ASSERT_EQ(http_status_from_errno(-EINVAL, &code), 400);
    ASSERT_STREQ(code, "invalid_argument");
    ASSERT_EQ(http_status_from_errno(-EACCES, NULL), 401);
    ASSERT_EQ(http_status_from_errno(-EPERM, NULL), 403);
    ASSERT_EQ(http_status_from_errno(-ENOENT, NULL), 404);
    ASSERT_EQ(http_status_from_errno(-EEXIST, NULL), 409);
    ASSERT_EQ(http_status_from_errno(-ESTALE, &code), 409);
    ASSERT_STREQ(code, "conflict");
    ASSERT_EQ(http_status_from_errno(-EMSGSIZE, NULL), 413);
    ASSERT_EQ(http_status_from_errno(-EMEDIUMTYPE, NULL), 415);
    ASSERT_EQ(http_status_from_errno(-EAGAIN, NULL), 503);
    ASSERT_EQ(http_status_from_errno(-ETIMEDOUT, NULL), 504);
    ASSERT_EQ(http_status_from_errno(-EIO, &code), 500);
    ASSERT_STREQ(code, "internal");
}

static void test_keepalive_and_arena(void)
{
    struct buf out = BUF_INIT(0);
    const char *two = "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /arena HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const char *p;
    int fd, n = 0;

    start(2, 0);
    fd = connect_srv();
    send_all(fd, two, strlen(two));
    read_all(fd, &out);
    (void)close(fd);
    for (p = buf_str(&out); (p = strstr(p, "HTTP/1.1 200")); p++)
        n++;
    ASSERT_EQ(n, 2);
    ASSERT_CONTAINS(buf_str(&out), "{\"ok\":true}");
    buf_release(&out);
    stop();
}

static void test_metrics(void)
{
    struct resp res;

    start(1, 0);
    request("GET", "/items/1", NULL, NULL, &res);
    request("GET", "/nope", NULL, NULL, &res);
    request("GET", "/metrics", NULL, NULL, &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_CONTAINS(res.headers, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
    ASSERT_CONTAINS(res.body, "http_requests_total{route=\"/items/{id}\",code=\"200\"} 1");
    ASSERT_CONTAINS(res.body, "http_requests_total{route=\"unmatched\",code=\"404\"} 1");
    ASSERT_CONTAINS(res.body, "http_request_duration_seconds_count{route=\"/items/{id}\"} 1");
    stop();
}

/* Reads from fd until needle shows up in acc or timeout_ms passes. */
static bool wait_for(int fd, struct buf *acc, const char *needle, int timeout_ms)
{
    uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;

    while (!strstr(buf_str(acc), needle)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char tmp[4096];
        ssize_t k;
        uint64_t now = now_usec();

        if (now >= deadline)
            return false;
        if (poll(&pfd, 1, (int)((deadline - now) / 1000) + 1) <= 0)
            continue;
        k = read(fd, tmp, sizeof tmp);
        if (k <= 0)
            return false;
        ASSERT_OK(buf_append(acc, tmp, (size_t)k));
    }
    return true;
}

static int open_stream(const char *ch, struct buf *acc)
{
    char req[256];
    int fd = connect_srv();

    (void)snprintf(req, sizeof req,
                   "GET /events/%s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", ch);
    send_all(fd, req, strlen(req));
    ASSERT_TRUE(wait_for(fd, acc, "event: hello", 2000));
    return fd;
}

static void test_sse(void)
{
    struct buf a = BUF_INIT(0), b = BUF_INIT(0), ev = BUF_INIT(0);
    uint64_t t0;
    int fa, fb;

    start(2, 300);
    fa = open_stream("env1", &a);
    fb = open_stream("env2", &b);
    ASSERT_CONTAINS(buf_str(&a), "Content-Type: text/event-stream");
    ASSERT_CONTAINS(buf_str(&a), "Cache-Control: no-cache");
    ASSERT_EQ(http_sse_count(g_srv), 2);

    ASSERT_OK(http_sse_format(&ev, "change", "7", "{\"a\":1}\nsecond"));
    ASSERT_STREQ(buf_str(&ev), "id: 7\nevent: change\ndata: {\"a\":1}\ndata: second\n\n");
    t0 = now_usec();
    ASSERT_EQ(http_sse_broadcast(g_srv, "env1", ev.data, ev.len), 1);
    ASSERT_TRUE(wait_for(fa, &a, "data: second", 1000));
    ASSERT_LE(now_usec() - t0, 500 * 1000); /* pushed, not polled */
    ASSERT_TRUE(strstr(buf_str(&b), "event: change") == NULL);

    /* every channel, many events back to back */
    buf_reset(&ev);
    for (int i = 0; i < 200; i++)
        ASSERT_OK(http_sse_format(&ev, "n", NULL, "x"));
    ASSERT_OK(http_sse_format(&ev, "last", NULL, "done"));
    ASSERT_EQ(http_sse_broadcast(g_srv, NULL, ev.data, ev.len), 2);
    ASSERT_TRUE(wait_for(fb, &b, "data: done", 1000));
    ASSERT_TRUE(wait_for(fa, &a, "data: done", 1000));

    /* an idle stream gets heartbeats */
    ASSERT_TRUE(wait_for(fa, &a, ": ping", 2000));

    /* a closed client goes away (found by the next heartbeat's write) */
    (void)close(fb);
    for (int i = 0; i < 100 && http_sse_count(g_srv) != 1; i++)
        sleep_usec(20 * 1000);
    ASSERT_EQ(http_sse_count(g_srv), 1);

    /* stopping the server ends the open stream cleanly */
    stop();
    buf_reset(&a);
    ASSERT_FALSE(wait_for(fa, &a, "never", 500));
    (void)close(fa);
    buf_release(&a);
    buf_release(&b);
    buf_release(&ev);
}

static void test_bad_config(void)
{
    static const struct http_route bad[] = { { "GET", "/x/{}", h_item, NULL } };
    static const struct http_route bad2[] = { { "GET", "x", h_item, NULL } };
    struct http_config cfg = HTTP_CONFIG_INIT;
    struct http_server *s = NULL, *s2 = NULL;

    cfg.listen = "127.0.0.1";
    ASSERT_ERRNO(http_server_start(&cfg, &s), -EINVAL);
    cfg.listen = "127.0.0.1:99999";
    ASSERT_ERRNO(http_server_start(&cfg, &s), -EINVAL);
    cfg.listen = "127.0.0.1:0";
    cfg.routes = bad;
    cfg.n_routes = 1;
    ASSERT_ERRNO(http_server_start(&cfg, &s), -EINVAL);
    cfg.routes = bad2;
    ASSERT_ERRNO(http_server_start(&cfg, &s), -EINVAL);
    cfg.routes = routes;
    cfg.n_routes = ARRAY_SIZE(routes);
    ASSERT_OK(http_server_start(&cfg, &s));
    {
        char addr[32];
        (void)snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)http_server_port(s));
        cfg.listen = addr;
        ASSERT_ERRNO(http_server_start(&cfg, &s2), -EADDRINUSE);
    }
    cfg.listen = "[::1]:0";
    if (http_server_start(&cfg, &s2) == 0) /* no IPv6 on some CI hosts */
        s2 = http_server_stop(s2);
    s = http_server_stop(s);
    ASSERT_TRUE(http_server_stop(NULL) == NULL);
}

T_MAIN(T_CASE(test_routing), T_CASE(test_not_found), T_CASE(test_method_not_allowed),
       T_CASE(test_body_limit), T_CASE(test_json_errors), T_CASE(test_errno_map),
       T_CASE(test_keepalive_and_arena), T_CASE(test_metrics), T_CASE(test_sse),
       T_CASE(test_bad_config))
