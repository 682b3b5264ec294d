/* SPDX-License-Identifier: MIT */
/* http.c - librollout's fetch/stream thread: GET /v1/snapshot, then follow /v1/stream (SSE),
 * reconnecting with jittered exponential backoff while the last snapshot keeps serving
 * (docs/flags.md section 5).  All transfers run on one curl multi handle so that
 * rollout_client_free() can interrupt any wait with curl_multi_wakeup(). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_int.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/time.h"
#include "rollout/rollout_int.h"

#define FLUSH_INTERVAL_USEC (1000 * 1000)
#define POLL_MS             200

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int rollout__client_http_init(struct rollout_client *c)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return -EIO;
    if (!c->url)
        return 0;
    c->multi = curl_multi_init();
    return c->multi ? 0 : -ENOMEM;
}

void rollout__client_http_release(struct rollout_client *c)
{
    if (c->multi)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
}

void rollout__client_wakeup(struct rollout_client *c)
{
    if (c->multi)
        (void)curl_multi_wakeup(c->multi);
}

static bool stopping(struct rollout_client *c)
{
    return atomic_load(&c->stop);
}

static void maybe_flush(struct rollout_client *c)
{
    uint64_t now = now_usec();

    if (now - c->last_flush_usec >= FLUSH_INTERVAL_USEC) {
        c->last_flush_usec = now;
        rollout_client_flush_metrics(c);
    }
}

/* ===== Installing what the server sent ===== */

/* Parses a snapshot document and installs it when its version differs from the installed
 * one (force) or is newer.  The raw text goes to the backup file. */
static int accept_snapshot(struct rollout_client *c, const char *text, size_t len, bool force)
{
    struct rollout_snapshot *s = NULL;
    struct err e = ERR_INIT;
    uint64_t cur;
    bool has;
    int r;

    r = rollout_snapshot_parse(text, len, &s, &e);
    if (r < 0) {
        log_debug("rolloutd sent an invalid snapshot: %s", e.msg);
        return -EPROTO;
    }
    if (strcmp(rollout_snapshot_env(s), c->env) != 0) {
        rollout_snapshot_unref(s);
        return -EPROTO;
    }
    cur = rollout__client_version(c, &has);
    if (has && (force ? rollout_snapshot_version(s) == cur : rollout_snapshot_version(s) <= cur)) {
        rollout_snapshot_unref(s);
        return 0;
    }
    rollout__client_install(c, s);
    if (c->backup_path) {
        r = file_write_atomic(c->backup_path, text, len, 0644);
        if (r < 0)
            log_debug("cannot write snapshot backup '%s': %s, ignoring", c->backup_path,
                      strerror(-r));
    }
    return 0;
}

/* ===== Transfers ===== */

struct xfer {
    struct rollout_client *c;
    CURL *easy;
    bool stream;
    struct buf body;        /* snapshot GET */
    struct rollout_sse sse; /* stream */
    bool saw_body;          /* stream: first byte seen (status checked) */
    bool got_event;         /* stream: an event arrived since connect */
    bool first_event;       /* stream: the next snapshot event is the connect-time one */
    bool refetch;           /* stream: a version event asked for GET /v1/snapshot */
    uint64_t last_byte_usec;
    int error; /* why a callback aborted the transfer */
};

static int http_status_errno(long code)
{
    switch (code) {
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    default:
        return -EPROTO;
    }
}

static int on_event(const char *event, const char *id, const char *data, size_t len, void *ud)
{
    struct xfer *x = ud;
    int r = 0;

    (void)id;
    if (strcmp(event, "snapshot") == 0) {
        r = accept_snapshot(x->c, data, len, x->first_event);
        x->first_event = false;
        x->got_event = true;
    } else if (strcmp(event, "version") == 0) {
        json_t *j = json_loadb(data, len, 0, NULL);
        json_t *v = json_object_get(j, "version");
        bool has;

        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            uint64_t cur = rollout__client_version(x->c, &has);

            if (!has || (uint64_t)json_integer_value(v) > cur)
                x->refetch = true;
            x->got_event = true;
        } else {
            r = -EPROTO;
        }
        json_decref(j);
    }
    return r;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    int r;

    x->last_byte_usec = now_usec();
    if (!x->stream) {
        r = buf_append(&x->body, data, len);
        if (r < 0) {
            x->error = r;
            return 0;
        }
        return len;
    }
    if (!x->saw_body) {
        long code = 0;

        /* Check the status before feeding anything to the SSE parser: an error page is not
         * an event stream. */
        (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200) {
            x->error = http_status_errno(code);
            return 0;
        }
        x->saw_body = true;
    }
    r = rollout__sse_feed(&x->sse, data, len, on_event, x);
    if (r < 0) {
        x->error = r;
        return 0;
    }
    return len;
}

static int curl_to_errno(CURLcode cc)
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
    default:
        return -EIO;
    }
}

struct headers {
    struct curl_slist *list;
    bool oom;
};

static void header_add(struct headers *h, const char *line)
{
    struct curl_slist *l = curl_slist_append(h->list, line);

    if (!l)
        h->oom = true;
    else
        h->list = l;
}

static CURL *easy_new(struct rollout_client *c, const char *path, struct xfer *x, struct headers *h)
{
    char url[2048], line[512];
    uint64_t cur;
    bool has;
    CURL *e;

    if ((size_t)snprintf(url, sizeof url, "%s%s?env=%s", c->url, path, c->env) >= sizeof url)
        return NULL;
    e = curl_easy_init();
    if (!e)
        return NULL;
    if (c->token) {
        (void)snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
        header_add(h, line);
    }
    cur = rollout__client_version(c, &has);
    if (x->stream) {
        header_add(h, "Accept: text/event-stream");
        if (has) {
            (void)snprintf(line, sizeof line, "Last-Event-ID: %llu", (unsigned long long)cur);
            header_add(h, line);
        }
    } else {
        header_add(h, "Accept: application/json");
        if (has) {
            (void)snprintf(line, sizeof line, "If-None-Match: \"%llu\"", (unsigned long long)cur);
            header_add(h, line);
        }
    }
    if (h->oom) {
        curl_easy_cleanup(e);
        return NULL;
    }
    (void)curl_easy_setopt(e, CURLOPT_URL, url);
    (void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->list);
    (void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    (void)curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    (void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout / 1000));
    (void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    (void)curl_easy_setopt(e, CURLOPT_FAILONERROR, 0L);
    (void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!x->stream)
        (void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    return e;
}

/* Runs one transfer on the multi handle until it ends, the client stops, or (streams) the
 * connection goes idle.  Between polls it flushes metrics and serves refetch requests. */
static int run_transfer(struct rollout_client *c, CURL *e, struct xfer *x, long *ret_code);

static int fetch_snapshot(struct rollout_client *c)
{
    struct xfer x = { .c = c, .stream = false };
    struct headers h = { 0 };
    long code = 0;
    CURL *e;
    int r;

    buf_init(&x.body, ROLLOUT_SNAPSHOT_MAX);
    e = easy_new(c, "/v1/snapshot", &x, &h);
    if (!e) {
        r = -ENOMEM;
        goto out;
    }
    r = run_transfer(c, e, &x, &code);
    if (r < 0)
        goto out;
    if (code == 304)
        r = 0;
    else if (code == 200)
        r = accept_snapshot(c, buf_str(&x.body), x.body.len, true);
    else
        r = http_status_errno(code);
out:
    if (e)
        curl_easy_cleanup(e);
    curl_slist_free_all(h.list);
    buf_release(&x.body);
    return r;
}

static int run_transfer(struct rollout_client *c, CURL *e, struct xfer *x, long *ret_code)
{
    CURLM *m = c->multi;
    bool connected = false;
    int r = 0, running, q;

    x->easy = e;
    x->last_byte_usec = now_usec();
    if (curl_multi_add_handle(m, e) != CURLM_OK)
        return -ENOMEM;
    for (;;) {
        CURLMsg *msg;
        bool done = false;
        CURLcode cc = CURLE_OK;

        if (curl_multi_perform(m, &running) != CURLM_OK) {
            r = -EIO;
            break;
        }
        /* A refetch nested inside a stream transfer shares the multi handle, so completion
         * messages for the other transfer are parked in the client until it looks. */
        while ((msg = curl_multi_info_read(m, &q)))
            if (msg->msg == CURLMSG_DONE) {
                c->done_easy = msg->easy_handle;
                c->done_result = (int)msg->data.result;
            }
        if (c->done_easy == e) {
            done = true;
            cc = (CURLcode)c->done_result;
            c->done_easy = NULL;
        }
        if (x->stream && x->saw_body && !connected) {
            connected = true; /* the first body byte of a 200 response */
            rollout__client_set_connected(c, true);
        }
        if (done) {
            long code = 0;

            (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (x->error < 0)
                r = x->error;
            else if (cc != CURLE_OK)
                r = curl_to_errno(cc);
            else if (x->stream)
                r = code == 200 ? -ECONNRESET : http_status_errno(code); /* streams never end */
            break;
        }
        if (stopping(c)) {
            r = -ECANCELED;
            break;
        }
        if (x->stream && x->refetch) {
            x->refetch = false;
            r = fetch_snapshot(c);
            if (r < 0)
                break;
        }
        if (x->stream && now_usec() - x->last_byte_usec > c->idle_timeout) {
            r = -ETIMEDOUT;
            break;
        }
        maybe_flush(c);
        (void)curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
    }
    if (ret_code)
        (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, ret_code);
    (void)curl_multi_remove_handle(m, e);
    if (c->done_easy == e)
        c->done_easy = NULL;
    if (connected)
        rollout__client_set_connected(c, false);
    return r;
}

static int follow_stream(struct rollout_client *c, bool *ret_got_event)
{
    struct xfer x = { .c = c, .stream = true, .first_event = true };
    struct headers h = { 0 };
    CURL *e;
    int r;

    rollout__sse_init(&x.sse);
    e = easy_new(c, "/v1/stream", &x, &h);
    if (!e) {
        r = -ENOMEM;
        goto out;
    }
    r = run_transfer(c, e, &x, NULL);
out:
    *ret_got_event = x.got_event;
    if (e)
        curl_easy_cleanup(e);
    curl_slist_free_all(h.list);
    rollout__sse_release(&x.sse);
    return r;
}

/* Waits usec (interruptible by rollout_client_free()), flushing metrics meanwhile. */
static void backoff_wait(struct rollout_client *c, uint64_t usec)
{
    uint64_t end = now_usec() + usec;

    while (!stopping(c)) {
        uint64_t now = now_usec();
        uint64_t left = end > now ? end - now : 0;

        if (!left)
            break;
        maybe_flush(c);
        (void)curl_multi_poll(c->multi, NULL, 0,
                              (int)(left / 1000 < POLL_MS ? left / 1000 + 1 : POLL_MS), NULL);
    }
}

void *rollout__client_main(void *arg)
{
    struct rollout_client *c = arg;
    uint64_t backoff = c->backoff_min, seed = now_usec() | 1;

    while (!stopping(c)) {
        bool got_event = false;
        uint64_t delay;
        int r;

        r = fetch_snapshot(c);
        if (r >= 0 && !stopping(c))
            r = follow_stream(c, &got_event);
        if (stopping(c))
            break;
        rollout__client_set_error(c, r);
        log_debug("rolloutd connection ended: %s", strerror(r < 0 ? -r : EIO));
        if (got_event)
            backoff = c->backoff_min;
        /* +-20 % jitter (xorshift) so that clients restarted together spread out. */
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        delay = backoff * 8 / 10 + (backoff ? seed % (backoff * 4 / 10 + 1) : 0);
        backoff_wait(c, delay);
        backoff = backoff * 2 > c->backoff_max ? c->backoff_max : backoff * 2;
    }
    return NULL;
}
