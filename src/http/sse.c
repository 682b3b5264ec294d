/* SPDX-License-Identifier: MIT */
/* sse.c - Server-Sent Events: long-lived chunked responses fed by broadcasts.
 *
 * MHD pulls a stream's bytes through a content-reader callback.  When the queue is empty the
 * reader suspends the connection (allowed from a content reader) instead of returning 0, which
 * would make MHD's internal epoll loop spin.  A broadcast or the heartbeat ticker appends to the
 * queue and resumes it.  Both sides hold sse_lock, so a wake-up can never fall between "queue
 * empty" and "suspended"; MHD_resume_connection() is only called on a suspended connection, as
 * MHD requires.  A suspended connection neither times out nor notices a vanished client, so the
 * heartbeat also serves to find dead clients: the write fails and MHD ends the stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "core/time.h"
#include "http.h"
#include "http_int.h"

#define SSE_BLOCK_SIZE (32u * 1024)
#define SSE_HEARTBEAT  ": ping\n\n"

int http__sse_init(struct http_server *s)
{
    pthread_condattr_t attr;
    int r;

    r = -pthread_mutex_init(&s->sse_lock, NULL);
    if (r < 0)
        return r;
    r = -pthread_condattr_init(&attr);
    if (r < 0)
        goto fail_mutex;
    r = -pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (r == 0)
        r = -pthread_cond_init(&s->sse_cond, &attr);
    (void)pthread_condattr_destroy(&attr);
    if (r < 0)
        goto fail_mutex;
    return 0;
fail_mutex:
    (void)pthread_mutex_destroy(&s->sse_lock);
    return r;
}

/* Called with sse_lock held. */
static void sse_wake(struct http_sse *st)
{
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_sse *st = cls;
    struct http_server *s = st->srv;
    ssize_t n;

    (void)pos;
    (void)pthread_mutex_lock(&s->sse_lock);
    if (st->dropped) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (st->queue.len > 0) {
        size_t k = st->queue.len < max ? st->queue.len : max;
        memcpy(buf, st->queue.data, k);
        buf_consume(&st->queue, k);
        st->last_usec = now_usec();
        n = (ssize_t)k;
    } else if (st->closing) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        st->suspended = true;
        MHD_suspend_connection(st->conn);
        n = 0;
    }
    (void)pthread_mutex_unlock(&s->sse_lock);
    return n;
}

static void sse_free(void *cls)
{
    struct http_sse *st = cls;
    struct http_server *s = st->srv;

    (void)pthread_mutex_lock(&s->sse_lock);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->n_streams--;
    (void)pthread_cond_broadcast(&s->sse_cond);
    (void)pthread_mutex_unlock(&s->sse_lock);
    buf_release(&st->queue);
    free(st->channel);
    free(st);
}

static void *sse_ticker(void *arg)
{
    struct http_server *s = arg;
    uint64_t hb = (uint64_t)s->cfg.sse_heartbeat_ms * 1000;

    (void)pthread_mutex_lock(&s->sse_lock);
    while (!s->stopping) {
        struct timespec ts;
        uint64_t now;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(hb / 2 / 1000000);
        ts.tv_nsec += (long)(hb / 2 % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&s->sse_cond, &s->sse_lock, &ts);
        if (s->stopping)
            break;
        now = now_usec();
        for (struct http_sse *st = s->streams; st; st = st->next) {
            if (st->closing || st->dropped || st->queue.len > 0 || now - st->last_usec < hb)
                continue;
            if (buf_puts(&st->queue, SSE_HEARTBEAT) < 0)
                st->dropped = true;
            st->last_usec = now;
            sse_wake(st);
        }
    }
    (void)pthread_mutex_unlock(&s->sse_lock);
    return NULL;
}

static struct http_sse *sse_new(struct http_request *req, const char *channel, const char *initial,
                                size_t n)
{
    struct http_server *s = req->srv;
    struct http_sse *st = calloc(1, sizeof *st);

    if (!st)
        return NULL;
    st->srv = s;
    st->conn = req->conn;
    st->last_usec = now_usec();
    buf_init(&st->queue, s->cfg.sse_queue_max);
    st->channel = strdup(channel);
    if (!st->channel || (n && buf_append(&st->queue, initial, n) < 0)) {
        buf_release(&st->queue);
        free(st->channel);
        free(st);
        return NULL;
    }
    return st;
}

int http_sse_open(struct http_request *req, const char *channel, const char *initial, size_t n)
{
    struct http_server *s = req->srv;
    struct http_sse *st;

    if (req->reply != HTTP__REPLY_NONE || !channel)
        return -EINVAL;
    st = sse_new(req, channel, initial, n);
    if (!st)
        return -ENOMEM;
    /* Linked now, not when MHD gets the response, so that a broadcast made right after this
     * call (under a caller's lock that also covered building `initial`) is not lost. */
    (void)pthread_mutex_lock(&s->sse_lock);
    if (s->stopping) {
        (void)pthread_mutex_unlock(&s->sse_lock);
        buf_release(&st->queue);
        free(st->channel);
        free(st);
        return -ESHUTDOWN;
    }
    if (!s->ticker_started && s->cfg.sse_heartbeat_ms > 0) {
        if (pthread_create(&s->ticker, NULL, sse_ticker, s) == 0)
            s->ticker_started = true;
    }
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->n_streams++;
    (void)pthread_mutex_unlock(&s->sse_lock);
    req->sse = st;
    req->reply = HTTP__REPLY_SSE;
    req->status = 200;
    return 0;
}

void http__sse_discard(struct http_request *req)
{
    if (req->sse) {
        sse_free(req->sse);
        req->sse = NULL;
    }
}

struct MHD_Response *http__sse_response(struct http_request *req)
{
    struct http_sse *st = req->sse;
    struct MHD_Response *resp;

    req->sse = NULL; /* from here sse_free() owns st: it runs when MHD drops the response */
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_SIZE, sse_reader, st,
                                             sse_free);
    if (!resp) {
        sse_free(st);
        return NULL;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") !=
                MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES ||
        http__add_headers(req, resp) < 0)
        goto fail;
    return resp;
fail:
    MHD_destroy_response(resp); /* calls sse_free() */
    return NULL;
}

int http_sse_broadcast(struct http_server *s, const char *channel, const char *data, size_t n)
{
    int count = 0;

    (void)pthread_mutex_lock(&s->sse_lock);
    for (struct http_sse *st = s->streams; st; st = st->next) {
        if (st->closing || st->dropped || (channel && !streq(channel, st->channel)))
            continue;
        if (buf_append(&st->queue, data, n) < 0) {
            /* A client this far behind gets cut off; it reconnects and resyncs. */
            st->dropped = true;
            buf_release(&st->queue);
        } else {
            count++;
        }
        sse_wake(st);
    }
    (void)pthread_mutex_unlock(&s->sse_lock);
    return count;
}

unsigned http_sse_count(struct http_server *s)
{
    unsigned n;

    (void)pthread_mutex_lock(&s->sse_lock);
    n = s->n_streams;
    (void)pthread_mutex_unlock(&s->sse_lock);
    return n;
}

void http__sse_shutdown(struct http_server *s)
{
    uint64_t deadline = now_usec() + 2 * USEC_PER_SEC;
    bool join;

    (void)pthread_mutex_lock(&s->sse_lock);
    s->stopping = true;
    for (struct http_sse *st = s->streams; st; st = st->next) {
        st->closing = true;
        sse_wake(st);
    }
    (void)pthread_cond_broadcast(&s->sse_cond);
    join = s->ticker_started;
    s->ticker_started = false;
    (void)pthread_mutex_unlock(&s->sse_lock);
    if (join)
        (void)pthread_join(s->ticker, NULL);

    /* Let MHD flush the queues and end the streams; stragglers are closed by MHD_stop_daemon. */
    (void)pthread_mutex_lock(&s->sse_lock);
    while (s->n_streams > 0 && s->mhd) {
        struct timespec ts;
        uint64_t now = now_usec();

        if (now >= deadline)
            break;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&s->sse_cond, &s->sse_lock, &ts);
        /* Streams may have suspended again between the wake-up and the reader call. */
        for (struct http_sse *st = s->streams; st; st = st->next)
            sse_wake(st);
    }
    (void)pthread_mutex_unlock(&s->sse_lock);
}

int http_sse_format(struct buf *out, const char *event, const char *id, const char *data)
{
    size_t mark = out->len;
    const char *p = data ? data : "";
    int r = 0;

    if ((event && strpbrk(event, "\r\n")) || (id && strpbrk(id, "\r\n")))
        return -EINVAL;
    if (id)
        r = buf_appendf(out, "id: %s\n", id);
    if (r >= 0 && event)
        r = buf_appendf(out, "event: %s\n", event);
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        if (r >= 0)
            r = buf_puts(out, "data: ");
        if (r >= 0)
            r = buf_append(out, p, n);
        if (r >= 0)
            r = buf_puts(out, "\n");
        p += n;
        if (*p == '\r' && p[1] == '\n')
            p++;
        if (!*p)
            break;
        p++;
    }
    if (r >= 0)
        r = buf_puts(out, "\n");
    if (r < 0) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return r;
}
