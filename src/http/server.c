/* SPDX-License-Identifier: MIT */
/* server.c - the MHD daemon: listener, limits, the access handler (first-call / body / final
 * call), dispatch through the route table and per-route metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "http.h"
#include "http_int.h"
#include "metrics/metrics.h"

/* A client that keeps sending after its body was refused is cut off after this much. */
#define HTTP_DISCARD_MAX (16u * 1024 * 1024)

static const double duration_buckets[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                           0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                           0.5,     1,      2.5,     5,      10 };

PRINTF(2, 0) static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    if (log__max_level < LOG_LVL_DEBUG)
        return;
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_debug("libmicrohttpd: %s", msg);
}

/* We decode path segments and query values ourselves, after splitting, so that "%2F" stays
 * inside its segment: MHD's default unescaper would decode the whole URL first. */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* ===== Listener ===== */

static int parse_listen(const char *addr, char **ret_host, char **ret_port)
{
    const char *colon, *host = addr;
    size_t host_len;

    if (!addr || !addr[0])
        return -EINVAL;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        host = addr + 1;
        host_len = (size_t)(end - host);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -EINVAL;
        host_len = (size_t)(colon - addr);
    }
    if (!colon[1])
        return -EINVAL;
    *ret_host = host_len ? strndup(host, host_len) : NULL;
    if (host_len && !*ret_host)
        return -ENOMEM;
    *ret_port = xstrdup(colon + 1);
    return 0;
}

static int bind_listener(const char *addr, int *ret_fd, uint16_t *ret_port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char *host = NULL, *port = NULL;
    uint64_t port_num;
    int fd = -1, one = 1, r;

    r = parse_listen(addr, &host, &port);
    if (r < 0)
        goto out;
    r = parse_uint_range(port, 0, 65535, &port_num);
    if (r < 0) {
        r = -EINVAL;
        goto out;
    }
    r = getaddrinfo(host, port, &hints, &res);
    if (r != 0) {
        r = r == EAI_SYSTEM ? -errno : -EINVAL;
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        r = -errno;
        goto out;
    }
    *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *ret_fd = fd;
    fd = -1;
    r = 0;
out:
    if (res)
        freeaddrinfo(res);
    (void)fd_close(fd);
    free(host);
    free(port);
    return r;
}

/* ===== Requests ===== */

static struct http_request *request_new(struct http_server *s, struct MHD_Connection *conn,
                                        const char *method)
{
    struct http_request *req = http__request_alloc();

    if (!req)
        return NULL;
    req->srv = s;
    req->conn = conn;
    req->method = method;
    req->start_usec = now_usec();
    buf_init(&req->body, s->cfg.max_body);
    return req;
}

static void request_free(struct http_request *req)
{
    if (!req)
        return;
    buf_release(&req->body);
    free(req->reply_body);
    http__sse_discard(req);
    http__arena_release(req);
    free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_free(*con_cls);
    *con_cls = NULL;
}

static void count_request(struct http_request *req, unsigned status)
{
    struct http_server *s = req->srv;
    struct http__route *rt = req->route ? req->route : &s->unmatched;
    struct metrics_series *m;

    if (!s->m_requests || status < 100 || status > 599)
        return;
    m = atomic_load_explicit(&rt->by_status[status - 100], memory_order_acquire);
    if (!m) {
        char code[8];
        const char *name =
                rt->def ? (rt->def->name ? rt->def->name : rt->def->pattern) : "unmatched";
        const char *labels[] = { name, code, NULL };

        (void)snprintf(code, sizeof code, "%u", status);
        m = metrics_series_get(s->m_requests, labels);
        if (!m)
            return;
        atomic_store_explicit(&rt->by_status[status - 100], m, memory_order_release);
    }
    metrics_counter_add(m, 1);
    if (rt->duration && req->reply != HTTP__REPLY_SSE)
        metrics_histogram_observe(rt->duration, (double)(now_usec() - req->start_usec) / 1e6);
}

/* The response to queue: the handler's reply, or the error body when it failed (r < 0). */
static struct MHD_Response *build_response(struct http_request *req, int r)
{
    if (r < 0) {
        /* A handler may have replied and then failed: the error wins, its headers stay. */
        if (req->reply == HTTP__REPLY_SSE)
            http__sse_discard(req);
        if (http__reply_error(req, r) < 0)
            return NULL;
    }
    if (req->reply == HTTP__REPLY_SSE)
        return http__sse_response(req);
    return http__body_response(req);
}

static MHD_RESULT queue(struct http_request *req, int r)
{
    struct MHD_Response *resp = build_response(req, r);
    MHD_RESULT ret;

    if (!resp)
        return MHD_NO;
    ret = MHD_queue_response(req->conn, req->status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        count_request(req, req->status);
    return ret;
}

static MHD_RESULT dispatch(struct http_request *req, const char *url)
{
    const char *allow = NULL;
    int r;

    req->dispatched = true;
    req->path = http__normalize_path(req, url);
    if (!req->path)
        return queue(req, -ENOMEM);
    r = http__route_match(req, &allow);
    if (r == -ENOENT)
        return queue(req, http_error(req, -ENOENT, "not_found", NULL, "no such resource '%s'",
                                     req->path));
    if (r == -ENOTSUP) {
        req->route = NULL;
        if (http_set_header(req, "Allow", allow) < 0)
            return queue(req, -ENOMEM);
        req->err_status = 405;
        return queue(req,
                     http_error(req, -ENOTSUP, "method_not_allowed", NULL,
                                "method %s not allowed here (allowed: %s)", req->method, allow));
    }
    if (r == -EBADMSG)
        return queue(req, http_error(req, -EINVAL, "bad_path", NULL,
                                     "path has an invalid percent-encoding"));
    if (r < 0)
        return queue(req, r);
    if (req->body_too_large)
        return queue(req, http_error(req, -EMSGSIZE, NULL, NULL,
                                     "request body larger than %zu bytes", req->srv->cfg.max_body));
    r = req->route->def->fn(req, req->srv->cfg.userdata);
    if (r >= 0 && req->reply == HTTP__REPLY_NONE)
        r = http_error(req, -EIO, "internal", NULL, "handler sent no reply");
    return queue(req, r < 0 ? r : 0);
}

static MHD_RESULT on_access(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct http_request *req = *con_cls;

    (void)version;
    if (!req) {
        const char *cl;
        uint64_t n;

        req = request_new(s, conn, method);
        if (!req)
            return MHD_NO; /* out of memory: drop this connection, keep serving others */
        *con_cls = req;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && parse_u64(cl, &n) >= 0 && n > s->cfg.max_body) {
            /* Refuse before reading: MHD sends no "100 Continue" and closes afterwards. */
            req->body_too_large = true;
            req->dispatched = true;
            req->path = http__normalize_path(req, url);
            return queue(req, http_error(req, -EMSGSIZE, NULL, NULL,
                                         "request body larger than %zu bytes", s->cfg.max_body));
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!req->body_too_large) {
            int r = buf_append(&req->body, upload_data, *upload_data_size);
            if (r == -ENOBUFS) {
                req->body_too_large = true;
                buf_release(&req->body);
            } else if (r < 0) {
                return MHD_NO;
            }
        }
        req->upload_seen += *upload_data_size;
        *upload_data_size = 0;
        if (req->body_too_large && req->upload_seen > HTTP_DISCARD_MAX)
            return MHD_NO;
        return MHD_YES;
    }
    if (req->dispatched)
        return MHD_YES;
    return dispatch(req, url);
}

/* ===== Server ===== */

static int register_metrics(struct http_server *s)
{
    static const char *const req_labels[] = { "route", "code", NULL };
    static const char *const dur_labels[] = { "route", NULL };
    int r;

    if (!s->cfg.metrics)
        return 0;
    r = metrics_family_register(s->cfg.metrics, METRICS_COUNTER, "http_requests_total",
                                "HTTP requests answered, by route pattern and status code.",
                                req_labels, NULL, 0, &s->m_requests);
    if (r < 0)
        return r;
    r = metrics_family_register(s->cfg.metrics, METRICS_HISTOGRAM, "http_request_duration_seconds",
                                "Time from request start to the queued response, by route.",
                                dur_labels, duration_buckets, ARRAY_SIZE(duration_buckets),
                                &s->m_duration);
    if (r < 0)
        return r;
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct http_route *d = s->routes[i].def;
        const char *labels[] = { d->name ? d->name : d->pattern, NULL };
        s->routes[i].duration = metrics_series_get(s->m_duration, labels);
        if (!s->routes[i].duration)
            return -ENOMEM;
    }
    return 0;
}

int http_server_start(const struct http_config *cfg, struct http_server **ret)
{
    struct http_server *s;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    int r;

    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->listen_fd = -1;
    if (s->cfg.threads == 0)
        s->cfg.threads = 1;
    if (s->cfg.max_depth == 0)
        s->cfg.max_depth = 32;
    r = http__sse_init(s);
    if (r < 0) {
        free(s);
        return r;
    }
    r = http__routes_compile(s);
    if (r < 0)
        goto fail;
    r = register_metrics(s);
    if (r < 0)
        goto fail;
    r = bind_listener(cfg->listen, &s->listen_fd, &s->port);
    if (r < 0)
        goto fail;
    s->mhd =
            MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_LISTEN_SOCKET,
                             s->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned)s->cfg.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                             (unsigned)s->cfg.per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)s->cfg.timeout_sec, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t)s->cfg.conn_memory, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                             s, MHD_OPTION_UNESCAPE_CALLBACK, mhd_unescape_none, s,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_THREAD_POOL_SIZE,
                             (unsigned)(s->cfg.threads > 1 ? s->cfg.threads : 0), MHD_OPTION_END);
    if (!s->mhd) {
        r = -EIO;
        goto fail;
    }
    *ret = s;
    return 0;
fail:
    (void)http_server_stop(s);
    return r;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

struct http_server *http_server_stop(struct http_server *s)
{
    if (!s)
        return NULL;
    if (s->mhd) {
        /* MHD must not be stopped with suspended connections: end the streams first. */
        http__sse_shutdown(s);
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    } else {
        http__sse_shutdown(s);
    }
    /* MHD does not close a listen socket it was given. */
    s->listen_fd = fd_close(s->listen_fd);
    http__routes_free(s);
    (void)pthread_cond_destroy(&s->sse_cond);
    (void)pthread_mutex_destroy(&s->sse_lock);
    free(s);
    return NULL;
}
