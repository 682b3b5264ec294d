/* SPDX-License-Identifier: MIT */
/* The control protocol: one JSON object per line each way over STATE/control.sock.  The server
 * half runs inside sv_run()'s event loop (non-blocking clients, bounded lines); the client half
 * is sv_control_call(). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "supervise.h"
#include "sv_int.h"

static int sockaddr_for(const char *path, struct sockaddr_un *sa)
{
    size_t len = strlen(path);

    if (len >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len + 1);
    return 0;
}

/* ===== Server ===== */

int sv__control_listen(const char *path, int *ret_fd)
{
    struct sockaddr_un sa;
    mode_t old_umask;
    int fd, r;

    r = sockaddr_for(path, &sa);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* We hold supervisor.lock, so a socket file left there belongs to a dead supervisor. */
    if (unlink(path) < 0 && errno != ENOENT) {
        r = -errno;
        goto fail;
    }
    /* The umask makes the socket 0600 from its creation, with no window for other users. */
    old_umask = umask(0177);
    r = ret_nerrno(bind(fd, (struct sockaddr *)&sa, sizeof sa));
    (void)umask(old_umask);
    if (r < 0)
        goto fail;
    if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        goto fail;
    }
    *ret_fd = fd;
    return 0;
fail:
    (void)close(fd);
    return r;
}

void sv__control_accept(struct sv_sup *sup)
{
    for (;;) {
        struct sv_client *c;
        int fd = accept4(sup->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warning_errno(-errno, "accept() on the control socket failed, ignoring");
            return;
        }
        if (sup->n_clients >= SV_CONTROL_MAX_CLIENTS) {
            log_warning("too many control connections, closing a new one");
            (void)close(fd);
            continue;
        }
        c = xcalloc(1, sizeof *c);
        c->fd = fd;
        buf_init(&c->in, SV_CONTROL_MAX_LINE);
        buf_init(&c->out, SV_CONTROL_MAX_OUT);
        sup->clients[sup->n_clients++] = c;
    }
}

short sv__client_events(const struct sv_client *c)
{
    short ev = 0;

    if (!c->eof)
        ev |= POLLIN;
    if (c->out.len > 0)
        ev |= POLLOUT;
    return ev;
}

static void client_flush(struct sv_client *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                c->dead = true;
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
}

static void client_handle_lines(struct sv_sup *sup, struct sv_client *c)
{
    for (;;) {
        char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
        size_t len;

        if (!nl)
            return;
        len = (size_t)(nl - c->in.data);
        if (len > 0 && c->in.data[len - 1] == '\r')
            len--;
        if (len > 0)
            sv__control_handle(sup, c->in.data, len, &c->out);
        buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
    }
}

void sv__client_io(struct sv_sup *sup, struct sv_client *c, short revents)
{
    if (revents & POLLIN) {
        char chunk[4096];
        ssize_t n = read(c->fd, chunk, sizeof chunk);

        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                c->dead = true;
        } else if (n == 0) {
            c->eof = true;
            /* A last request without its newline still gets an answer. */
            if (c->in.len > 0)
                sv__control_handle(sup, c->in.data, c->in.len, &c->out);
            buf_reset(&c->in);
        } else {
            const char *p = chunk;
            size_t left = (size_t)n;

            /* Append up to each newline so one read with several requests is handled in full
             * while a single line longer than the limit is refused. */
            while (left > 0 && !c->eof) {
                const char *nl = memchr(p, '\n', left);
                size_t take = nl ? (size_t)(nl - p) + 1 : left;

                if (buf_append(&c->in, p, take) < 0) {
                    if (buf_puts(&c->out, "{\"ok\":false,\"error\":\"request line too long\"}\n") <
                        0)
                        c->dead = true;
                    c->eof = true;
                    buf_reset(&c->in);
                    break;
                }
                client_handle_lines(sup, c);
                p += take;
                left -= take;
            }
        }
    } else if (revents & (POLLHUP | POLLERR)) {
        c->dead = true;
    }
    if (!c->dead)
        client_flush(c);
    if (c->eof && c->out.len == 0)
        c->dead = true;
}

void sv__control_prune(struct sv_sup *sup, bool all)
{
    size_t k = 0;

    for (size_t i = 0; i < sup->n_clients; i++) {
        struct sv_client *c = sup->clients[i];

        if (all || c->dead) {
            (void)close(c->fd);
            buf_release(&c->in);
            buf_release(&c->out);
            free(c);
        } else {
            sup->clients[k++] = c;
        }
    }
    sup->n_clients = k;
}

/* ===== Requests ===== */

static json_t *json_error(const char *fmt, ...) PRINTF(1, 2);
static json_t *json_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote the request (a JSON parser's "near '...'"), which may hold bytes that are
     * not UTF-8: a JSON string must be, or there would be no reply at all. */
    for (char *q = msg; *q; q++)
        if ((unsigned char)*q >= 0x80 || (unsigned char)*q < 0x20)
            *q = '?';
    return sv__reply_error(msg);
}

/* The status reply, through the one encoder (sv_status.c). */
static json_t *status_json(const struct sv_sup *sup)
{
    uint64_t now = now_usec();
    struct sv_status st = {
        .pid = (int)sup->pid,
        .started_at = (double)sup->started_realtime_usec / 1e6,
        .stack = xstrdup(sup->spec->name),
        .state_dir = xstrdup(sup->state_dir),
        .shutting_down = sup->shutting_down,
        .n_services = sup->n_units,
    };
    json_t *o;

    st.services = xcalloc(sup->n_units + 1, sizeof *st.services);
    for (size_t i = 0; i < sup->n_units; i++) {
        const struct sv_unit *u = &sup->units[i];
        char exit_buf[64], wait_buf[128];
        const char *waiting = sv__sup_waiting_for(sup, u, wait_buf, sizeof wait_buf);
        bool live = u->pid > 0;

        st.services[i] = (struct sv_status_service){
            .name = xstrdup(u->svc->name),
            .state = xstrdup(sv_state_to_string(u->state)),
            .pid = live ? (int)u->pid : 0,
            .started_at = u->spawns > 0 ? (double)u->started_realtime_usec / 1e6 : 0,
            /* to the millisecond: a double of microseconds prints as 4471.8663340000003 */
            .uptime_s = live ? (double)((now - u->started_usec) / 1000) / 1e3 : 0.0,
            .restarts = u->restarts,
            .health = xstrdup(u->svc->health.present ? sv_health_to_string(u->health) : "none"),
            .health_message = xstrdup(u->health_msg),
            .last_exit = u->has_exited ? xstrdup(sv_format_exit(exit_buf, sizeof exit_buf,
                                                                u->exit_status))
                                       : NULL,
            .waiting_for = waiting ? xstrdup(waiting) : NULL,
            .job = sv__job_status(u),
        };
    }
    o = sv__status_encode(&st);
    sv_status_release(&st);
    return o;
}

static json_t *service_request(struct sv_sup *sup, json_t *req, const char *cmd)
{
    const char *name = sv__request_service(req);
    struct sv_stop_request stop = { .set = false };
    struct sv_unit *u;
    enum sv_event ev;

    if (!name)
        return json_error("'%s' needs a \"service\" string", cmd);
    u = sv__sup_find(sup, name);
    if (!u)
        return json_error("unknown service '%s'", name);
    if (streq(cmd, sv__request_name(SV_REQUEST_STOP))) {
        struct sv_stop_options o;
        const char *why = NULL;
        int r = sv__stop_options_decode(req, &o, &why);

        if (r < 0)
            return json_error("%s", why);
        stop = (struct sv_stop_request){
            .set = r > 0, .sig = o.signal, .grace_usec = o.grace_usec, .main_only = o.main_only
        };
        ev = SV_EVENT_STOP_REQUEST;
    } else {
        if (sup->shutting_down)
            return json_error("cannot %s: the supervisor is shutting down", cmd);
        ev = streq(cmd, sv__request_name(SV_REQUEST_START)) ? SV_EVENT_START
                                                            : SV_EVENT_RESTART_REQUEST;
    }
    log_info("control: %s service '%s'", cmd, name);
    /* A job stopped by hand stays off its schedule until started again (like a held one). */
    sv__job_request(sup, u, ev, now_usec());
    u->stop_req = stop;
    sv__sup_request(sup, u, ev);
    u->stop_req = (struct sv_stop_request){ .set = false };
    return sv__reply_ok(sv_state_to_string(u->state));
}

void sv__control_handle(struct sv_sup *sup, const char *line, size_t len, struct buf *out)
{
    json_error_t jerr;
    json_t *req, *resp = NULL;
    const char *cmd;
    char *text;

    req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object(req)) {
        resp = json_error("invalid request: %s", req ? "not a JSON object" : jerr.text);
        goto reply;
    }
    cmd = sv__request_cmd(req);
    if (!cmd)
        resp = json_error("%s", "missing \"cmd\" string");
    else if (streq(cmd, "status"))
        resp = status_json(sup);
    else if (streq(cmd, sv__request_name(SV_REQUEST_START)) ||
             streq(cmd, sv__request_name(SV_REQUEST_STOP)) ||
             streq(cmd, sv__request_name(SV_REQUEST_RESTART)))
        resp = service_request(sup, req, cmd);
    else if (streq(cmd, sv__request_name(SV_REQUEST_DOWN))) {
        log_notice("control: down requested");
        sv__sup_shutdown(sup);
        resp = sv__reply_ok(NULL);
    } else
        resp = json_error("unknown command '%s'", cmd);

reply:
    text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    /* Every request gets one line: a reply that cannot be encoded becomes an error reply. */
    if (!text) {
        json_decref(resp);
        resp = sv__reply_error("the reply could not be encoded");
        text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    }
    if (!text || buf_puts(out, text) < 0 || buf_puts(out, "\n") < 0)
        log_warning("control: response dropped (too large or out of memory)");
    free(text);
    json_decref(resp);
    json_decref(req);
}

/* ===== Client ===== */

static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int timeout = -1, n;

        if (deadline > 0) {
            uint64_t now = now_usec();

            if (now >= deadline)
                return -ETIMEDOUT;
            timeout = (int)((deadline - now + 999) / 1000);
        }
        n = poll(&p, 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n > 0)
            return 0;
    }
}

int sv_control_call(const char *state_dir, const char *request_json, uint64_t timeout_usec,
                    char **ret_response)
{
    struct sockaddr_un sa;
    struct buf req = BUF_INIT(0), resp = BUF_INIT(SV_CONTROL_MAX_OUT);
    uint64_t deadline = timeout_usec > 0 ? now_usec() + timeout_usec : 0;
    char *path, *nl;
    size_t sent = 0;
    int fd = -1, r;

    path = xasprintf("%s/control.sock", state_dir);
    r = sockaddr_for(path, &sa);
    free(path);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        r = -errno;
        if (r == -EAGAIN) /* unix sockets: the listen backlog is full */
            r = -ECONNREFUSED;
        goto out;
    }
    r = buf_puts(&req, request_json);
    if (r >= 0 && (req.len == 0 || req.data[req.len - 1] != '\n'))
        r = buf_puts(&req, "\n");
    if (r < 0)
        goto out;
    while (sent < req.len) {
        ssize_t n = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EAGAIN) {
            r = wait_fd(fd, POLLOUT, deadline);
            if (r < 0)
                goto out;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        sent += (size_t)n;
    }
    for (;;) {
        char chunk[8192];
        ssize_t n;

        nl = resp.len ? memchr(resp.data, '\n', resp.len) : NULL;
        if (nl)
            break;
        r = wait_fd(fd, POLLIN, deadline);
        if (r < 0)
            goto out;
        n = read(fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0) {
            r = -EPROTO;
            goto out;
        }
        r = buf_append(&resp, chunk, (size_t)n);
        if (r < 0)
            goto out;
    }
    *nl = '\0';
    resp.len = (size_t)(nl - resp.data);
    *ret_response = buf_detach(&resp, NULL);
    r = 0;
out:
    fd_close(fd);
    buf_release(&req);
    buf_release(&resp);
    return r;
}
