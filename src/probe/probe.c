/* SPDX-License-Identifier: MIT */
/* probe.c - probe life cycle, deadline handling, the poll() driver and spec helpers. */
#include "probe.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/strv.h"
#include "core/time.h"
#include "probe_int.h"

static const char *const probe_type_names[_PROBE_TYPE_MAX] = {
    [PROBE_TCP] = "tcp",     [PROBE_HTTP] = "http", [PROBE_PG] = "pg",
    [PROBE_REDIS] = "redis", [PROBE_EXEC] = "exec", [PROBE_KAFKA] = "kafka",
};

static const struct probe_ops *const probe_type_ops[_PROBE_TYPE_MAX] = {
    [PROBE_TCP] = &probe__tcp_ops,   [PROBE_HTTP] = &probe__http_ops,
    [PROBE_PG] = &probe__pg_ops,     [PROBE_REDIS] = &probe__redis_ops,
    [PROBE_EXEC] = &probe__exec_ops, [PROBE_KAFKA] = &probe__kafka_ops,
};

const char *probe_type_to_string(enum probe_type t)
{
    if ((unsigned)t >= _PROBE_TYPE_MAX)
        return NULL;
    return probe_type_names[t];
}

int probe_type_from_string(const char *s, enum probe_type *ret)
{
    if (!s)
        return -EINVAL;
    for (unsigned i = 0; i < _PROBE_TYPE_MAX; i++)
        if (streq(s, probe_type_names[i])) {
            *ret = (enum probe_type)i;
            return 0;
        }
    return -EINVAL;
}

static char *str_copy(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void probe_spec_release(struct probe_spec *spec)
{
    if (!spec)
        return;
    free(spec->host);
    free(spec->path);
    free(spec->method);
    free(spec->body);
    free(spec->user);
    free(spec->password);
    free(spec->dbname);
    free(spec->query);
    (void)strv_free(spec->command);
    (void)strv_free(spec->argv);
    *spec = (struct probe_spec)PROBE_SPEC_INIT;
}

void probe_spec_copy(struct probe_spec *dst, const struct probe_spec *src)
{
    *dst = (struct probe_spec){
        .type = src->type,
        .host = str_copy(src->host),
        .port = src->port,
        .path = str_copy(src->path),
        .method = str_copy(src->method),
        .body = str_copy(src->body),
        .expect_status = src->expect_status,
        .user = str_copy(src->user),
        .password = str_copy(src->password),
        .dbname = str_copy(src->dbname),
        .query = str_copy(src->query),
        .command = strv_copy(src->command),
        .argv = strv_copy(src->argv),
    };
}

/* ===== internal helpers ===== */

void probe__one_line(char *dst, size_t n, const char *s)
{
    size_t len;

    if (n == 0)
        return;
    dst[0] = '\0';
    if (!s)
        return;
    s += strspn(s, " \t\r\n");
    len = strcspn(s, "\r\n");
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

void probe__finish(struct probe *p, int r, const char *fmt, ...)
{
    va_list ap;

    if (p->done)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    /* Messages end up in one-line status output and logfmt fields. */
    for (char *c = p->message; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    p->result = r;
    p->done = true;
    p->end_usec = now_usec();
    p->fd = -1;
    p->events = 0;
    p->ops->release(p);
}

void probe__wait(struct probe *p, int fd, short events)
{
    p->fd = fd;
    p->events = events;
}

void probe__detail_append(struct probe *p, const void *data, size_t n)
{
    size_t room = PROBE_DETAIL_MAX - p->detail.len;

    if (n > room)
        n = room;
    if (n > 0 && buf_append(&p->detail, data, n) < 0)
        return; /* bounded by construction; on OOM the detail stays short */
}

const char *probe__host(const struct probe *p)
{
    return p->spec->host && p->spec->host[0] ? p->spec->host : "127.0.0.1";
}

/* ===== public API ===== */

struct probe *probe_start(const struct probe_spec *spec, uint64_t timeout_usec)
{
    struct probe *p = calloc(1, sizeof *p);

    if (!p)
        return NULL;
    p->spec = spec;
    p->timeout_usec = timeout_usec;
    p->start_usec = now_usec();
    p->deadline_usec =
            timeout_usec > UINT64_MAX - p->start_usec ? UINT64_MAX : p->start_usec + timeout_usec;
    p->fd = -1;
    p->net.fd = -1;
    p->exec_pidfd = p->exec_out = p->exec_epfd = -1;
    p->kafka_fd = -1;
    buf_init(&p->detail, PROBE_DETAIL_MAX);
    buf_init(&p->http_in, PROBE_HTTP_MAX);
    buf_init(&p->net.out, 0);

    if ((unsigned)spec->type >= _PROBE_TYPE_MAX) {
        p->ops = &probe__tcp_ops; /* anything with a harmless release */
        probe__finish(p, -EINVAL, "unknown probe type %d", (int)spec->type);
        return p;
    }
    p->ops = probe_type_ops[spec->type];
    p->ops->start(p);
    return p;
}

struct probe *probe_free(struct probe *p)
{
    if (!p)
        return NULL;
    p->ops->release(p);
    buf_release(&p->detail);
    buf_release(&p->http_in);
    free(p);
    return NULL;
}

int probe_fd(const struct probe *p)
{
    return p->done ? -1 : p->fd;
}

short probe_events(const struct probe *p)
{
    return p->done ? 0 : p->events;
}

uint64_t probe_deadline(const struct probe *p)
{
    return p->deadline_usec;
}

bool probe_step(struct probe *p, short revents)
{
    if (p->done)
        return true;
    if (revents & POLLNVAL)
        probe__finish(p, -EBADF, "probe fd %d was closed behind the probe's back", p->fd);
    else if (revents)
        p->ops->step(p, revents);
    if (!p->done && now_usec() >= p->deadline_usec)
        probe__finish(p, -ETIMEDOUT, "timed out after %" PRIu64 "ms",
                      p->timeout_usec / USEC_PER_MSEC);
    return p->done;
}

bool probe_done(const struct probe *p)
{
    return p->done;
}

int probe_result(const struct probe *p)
{
    return p->done ? p->result : -EINPROGRESS;
}

const char *probe_message(const struct probe *p)
{
    return p->done ? p->message : "in progress";
}

const char *probe_detail(const struct probe *p)
{
    return buf_str(&p->detail);
}

uint64_t probe_elapsed_usec(const struct probe *p)
{
    return (p->done ? p->end_usec : now_usec()) - p->start_usec;
}

void probe_run_all(struct probe **probes, unsigned n)
{
    struct pollfd *pfd = xcalloc(n ? n : 1, sizeof *pfd);
    unsigned *idx = xcalloc(n ? n : 1, sizeof *idx);

    for (;;) {
        uint64_t now, next = UINT64_MAX;
        unsigned npfd = 0, pending = 0;
        int timeout_ms, r;

        for (unsigned i = 0; i < n; i++) {
            struct probe *p = probes[i];
            if (p->done)
                continue;
            pending++;
            if (p->deadline_usec < next)
                next = p->deadline_usec;
            if (p->fd >= 0) {
                pfd[npfd] = (struct pollfd){ .fd = p->fd, .events = p->events };
                idx[npfd++] = i;
            }
        }
        if (pending == 0)
            break;
        now = now_usec();
        if (next <= now)
            timeout_ms = 0;
        else if (next - now >= (uint64_t)INT_MAX * USEC_PER_MSEC)
            timeout_ms = INT_MAX;
        else /* round up so we never wake just before a deadline */
            timeout_ms = (int)((next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);

        r = poll(pfd, npfd, timeout_ms);
        if (r < 0 && errno != EINTR) {
            int e = -errno;
            for (unsigned i = 0; i < n; i++)
                probe__finish(probes[i], e, "poll() failed: %s", strerror(-e));
            break;
        }
        for (unsigned k = 0; r > 0 && k < npfd; k++)
            if (pfd[k].revents)
                (void)probe_step(probes[idx[k]], pfd[k].revents);
        /* Deadlines: probe_step() with 0 only acts once the deadline has passed. */
        now = now_usec();
        for (unsigned i = 0; i < n; i++)
            if (!probes[i]->done && probes[i]->deadline_usec <= now)
                (void)probe_step(probes[i], 0);
    }
    free(pfd);
    free(idx);
}

int probe_run(const struct probe_spec *spec, uint64_t timeout_usec, struct buf *msg,
              struct buf *detail)
{
    struct probe *p = probe_start(spec, timeout_usec);
    int r;

    if (!p)
        return -ENOMEM;
    probe_run_all(&p, 1);
    r = probe_result(p);
    /* Both are bounded by the caller's buffers: text that does not fit is left out, the
     * result stays the probe's. */
    if (msg && buf_puts(msg, probe_message(p)) < 0) {
    }
    if (detail && buf_puts(detail, probe_detail(p)) < 0) {
    }
    p = probe_free(p);
    return r;
}
