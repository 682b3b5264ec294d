/* SPDX-License-Identifier: MIT */
/* test_rollout_client.c - librollout's client: snapshot swaps under concurrent readers, the
 * SSE parser, and the fetch/stream protocol against a tiny HTTP server in this process (real
 * loopback sockets) that can be stopped and restarted on the same port. */
#include "t.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "core/time.h"
#include "metrics/metrics.h"
#include "rollout.h"
#include "rollout/client/client_int.h"

/* A snapshot whose flag "v" (stage off) resolves to control = "<version>". */
static char *snapshot_json(uint64_t version, const char *stage)
{
    static char buf[1024];

    (void)snprintf(buf, sizeof buf,
                   "{\"version\":%llu,\"env\":\"production\",\"segments\":[],\"flags\":[{\"key\":"
                   "\"v\",\"type\":\"string\",\"variants\":{\"control\":\"%llu\",\"candidate\":"
                   "\"new\"},\"environments\":{\"production\":{\"stage\":\"%s\"}}}]}",
                   (unsigned long long)version, (unsigned long long)version, stage);
    return buf;
}

static struct rollout_snapshot *make_snapshot(uint64_t version, const char *stage)
{
    const char *json = snapshot_json(version, stage);
    struct rollout_snapshot *s = NULL;
    struct err e = ERR_INIT;

    if (rollout_snapshot_parse(json, strlen(json), &s, &e) < 0)
        T_FAIL("snapshot: %s", e.msg);
    return s;
}

/* ===== SSE parser ===== */

struct sse_log {
    char text[1024];
};

static int log_event(const char *event, const char *id, const char *data, size_t len, void *ud)
{
    struct sse_log *l = ud;
    size_t n = strlen(l->text);

    (void)snprintf(l->text + n, sizeof l->text - n, "[%s|%s|%.*s]", event, id, (int)len, data);
    return 0;
}

static void test_sse_parser(void)
{
    const char *stream = ": ping\n\nevent: snapshot\r\nid: 7\r\ndata: {\"a\":\r\ndata:1}\r\n\r\n"
                         "data: plain\n\nevent: version\nretry: 5\ndata:{\"version\":9}\n\n"
                         "event: empty\n\n";
    struct rollout_sse p;
    struct sse_log whole = { "" }, bytes = { "" };

    rollout__sse_init(&p);
    ASSERT_OK(rollout__sse_feed(&p, stream, strlen(stream), log_event, &whole));
    rollout__sse_release(&p);
    ASSERT_STREQ(whole.text,
                 "[snapshot|7|{\"a\":\n1}][message|7|plain][version|7|{\"version\":9}]");
    /* Byte by byte gives the same events. */
    rollout__sse_init(&p);
    for (size_t i = 0; stream[i]; i++)
        ASSERT_OK(rollout__sse_feed(&p, stream + i, 1, log_event, &bytes));
    rollout__sse_release(&p);
    ASSERT_STREQ(bytes.text, whole.text);
}

/* ===== Swaps under concurrent readers ===== */

#define READERS 4
#define SWAPS   150 /* snapshots 2 .. SWAPS + 1 replace snapshot 1 */

struct swap_ctx {
    struct rollout_client *c;
    atomic_bool done;
    atomic_ulong evals; /* added by each reader when it ends */
    atomic_ulong live;  /* counted at each evaluation: the writer paces its swaps by it */
};

static void *reader_main(void *arg)
{
    struct swap_ctx *x = arg;
    struct rollout_ctx ctx = ROLLOUT_CTX("u", NULL, 0);
    unsigned long n = 0;

    while (!atomic_load(&x->done)) {
        struct rollout_result res;
        struct rollout_read rd;
        char want[32];

        rollout_client_read_begin(x->c, &rd);
        ASSERT_TRUE(rd.snapshot != NULL);
        ASSERT_OK(rollout_client_eval(x->c, "v", &ctx, ROLLOUT_TYPE_STRING, &rd, &res));
        /* The value lives in the snapshot: it must still be intact inside the section. */
        (void)snprintf(want, sizeof want, "%llu",
                       (unsigned long long)rollout_snapshot_version(rd.snapshot));
        if (strcmp(res.value->s, want) != 0)
            T_FAIL("read '%s' from snapshot %s", res.value->s, want);
        rollout_client_read_end(x->c, &rd);
        n++;
        atomic_fetch_add(&x->live, 1);
    }
    atomic_fetch_add(&x->evals, n);
    return NULL;
}

static void test_swap_under_concurrent_readers(void)
{
    struct rollout_client_options o = { .env = "production" };
    struct swap_ctx x = { 0 };
    pthread_t th[READERS];
    struct buf out = BUF_INIT(0);
    char line[128];
    struct err e = ERR_INIT;
    uint64_t v;

    ASSERT_OK(rollout_client_new(&o, &x.c, &e));
    rollout_client_set_snapshot(x.c, make_snapshot(1, "off"));
    for (int i = 0; i < READERS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, reader_main, &x), 0);
    /* Each swap waits for one more evaluation (10 s at most), so the readers run between the
     * swaps however loaded the machine is: without it, with the stack running beside it in CI,
     * the writer once made all its swaps before a reader ran at all.  Each swap waits for the
     * readers of the old snapshot to leave it, a time slice when one was preempted inside. */
    for (v = 2; v <= SWAPS + 1; v++) {
        unsigned long seen = atomic_load(&x.live);
        uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;

        rollout_client_set_snapshot(x.c, make_snapshot(v, "off"));
        while (atomic_load(&x.live) == seen && now_usec() < deadline)
            (void)sched_yield();
    }
    atomic_store(&x.done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);
    ASSERT_GE(atomic_load(&x.evals), SWAPS);
    /* Every evaluation is counted exactly once across SWAPS retired snapshots. */
    rollout_client_flush_metrics(x.c);
    ASSERT_OK(metrics_write_text(rollout_client_metrics(x.c), &out));
    (void)snprintf(line, sizeof line,
                   "rollout_evaluations_total{flag=\"v\",variant=\"control\"} %lu\n",
                   atomic_load(&x.evals));
    ASSERT_CONTAINS(buf_str(&out), line);
    (void)snprintf(line, sizeof line, "rollout_snapshot_version %d\n", SWAPS + 1);
    ASSERT_CONTAINS(buf_str(&out), line);
    buf_release(&out);
    rollout_client_free(x.c);
}

static void test_conveniences(void)
{
    struct rollout_client_options o = { .env = "production" };
    struct rollout_ctx ctx = ROLLOUT_CTX("u", NULL, 0);
    struct rollout_client *c = NULL;
    struct rollout_result res;
    struct err e = ERR_INIT;
    char buf[16];
    bool shadow = true;

    ASSERT_OK(rollout_client_new(&o, &c, &e));
    ASSERT_ERRNO(rollout_client_eval(c, "v", &ctx, ROLLOUT_TYPE_ANY, NULL, &res), -EAGAIN);
    ASSERT_EQ(res.error, ROLLOUT_ERROR_PROVIDER_NOT_READY);
    ASSERT_TRUE(rollout_client_bool(c, "v", &ctx, true, &shadow));
    ASSERT_FALSE(shadow);
    ASSERT_ERRNO(rollout_client_wait_version(c, 1, 1000), -ETIMEDOUT);
    rollout_client_set_snapshot(c, make_snapshot(5, "full"));
    ASSERT_OK(rollout_client_wait_version(c, 5, 1000));
    ASSERT_OK(rollout_client_eval(c, "v", &ctx, ROLLOUT_TYPE_ANY, NULL, &res));
    ASSERT_TRUE(res.value == NULL); /* no read section: scalars only */
    ASSERT_EQ(res.reason, ROLLOUT_REASON_STATIC);
    ASSERT_STREQ(rollout_client_variant(c, "v", &ctx, buf, sizeof buf, "def", NULL), "candidate");
    ASSERT_STREQ(rollout_client_variant(c, "x", &ctx, buf, sizeof buf, "def", NULL), "def");
    ASSERT_EQ(rollout_client_number(c, "v", &ctx, 7, NULL), 7); /* type mismatch: default */
    ASSERT_TRUE(rollout_client_bool(c, "v", &ctx, true, NULL));
    rollout_client_free(c);
}

/* ===== A tiny rolloutd stand-in ===== */

#define MAX_STREAMS 8

struct srv {
    pthread_mutex_t lock;
    pthread_t thread;
    int lfd, wake[2];
    uint16_t port;
    bool running;
    char snapshot[2048];
    uint64_t version;
    bool version_events; /* push "version" events instead of full snapshots */
    int status;          /* answer every request with this status when non-zero */
    int streams[MAX_STREAMS];
    unsigned n_streams;
    unsigned snapshot_gets, stream_gets, not_modified;
    char last_auth[128];
};

static void srv_write(int fd, const char *s)
{
    /* A client that went away is not an error for the server. */
    if (fd_write_all(fd, s, strlen(s)) < 0)
        return;
}

static void send_event_locked(struct srv *s, int fd)
{
    char ev[2300];

    if (s->version_events)
        (void)snprintf(ev, sizeof ev, "event: version\ndata: {\"version\":%llu}\n\n",
                       (unsigned long long)s->version);
    else
        (void)snprintf(ev, sizeof ev, "event: snapshot\nid: %llu\ndata: %s\n\n",
                       (unsigned long long)s->version, s->snapshot);
    srv_write(fd, ev);
}

static void header_value(const char *req, const char *name, char *out, size_t n)
{
    const char *p = strcasestr(req, name);
    size_t len = 0;

    out[0] = '\0';
    if (!p)
        return;
    p += strlen(name);
    while (*p == ' ')
        p++;
    while (p[len] && p[len] != '\r' && p[len] != '\n' && len + 1 < n)
        len++;
    memcpy(out, p, len);
    out[len] = '\0';
}

static void handle(struct srv *s, int fd)
{
    char req[4096], inm[64], etag[64], resp[2600];
    size_t len = 0;
    struct timeval tv = { .tv_sec = 2 };

    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (len + 1 < sizeof req) {
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);

        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    pthread_mutex_lock(&s->lock);
    header_value(req, "\nAuthorization:", s->last_auth, sizeof s->last_auth);
    if (s->status) {
        (void)snprintf(resp, sizeof resp,
                       "HTTP/1.1 %d Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                       s->status);
        srv_write(fd, resp);
        close(fd);
    } else if (strncmp(req, "GET /v1/snapshot?env=production ", 32) == 0) {
        s->snapshot_gets++;
        header_value(req, "\nIf-None-Match:", inm, sizeof inm);
        (void)snprintf(etag, sizeof etag, "\"%llu\"", (unsigned long long)s->version);
        if (strcmp(inm, etag) == 0) {
            s->not_modified++;
            srv_write(fd, "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n");
        } else {
            (void)snprintf(resp, sizeof resp,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: %s\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           etag, strlen(s->snapshot), s->snapshot);
            srv_write(fd, resp);
        }
        close(fd);
    } else if (strncmp(req, "GET /v1/stream?env=production ", 30) == 0 &&
               s->n_streams < MAX_STREAMS) {
        s->stream_gets++;
        srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\nConnection: close\r\n\r\n");
        send_event_locked(s, fd);
        s->streams[s->n_streams++] = fd;
    } else {
        srv_write(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        close(fd);
    }
    pthread_mutex_unlock(&s->lock);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;

    for (;;) {
        struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN },
                               { .fd = s->wake[0], .events = POLLIN } };

        if (poll(p, 2, 1000) < 0)
            continue;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

            if (fd >= 0)
                handle(s, fd);
        }
    }
    return NULL;
}

static void srv_start(struct srv *s)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port) };
    socklen_t alen = sizeof a;
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_TRUE(s->lfd >= 0);
    ASSERT_OK(setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    ASSERT_OK(bind(s->lfd, (struct sockaddr *)&a, sizeof a));
    ASSERT_OK(listen(s->lfd, 16));
    ASSERT_OK(getsockname(s->lfd, (struct sockaddr *)&a, &alen));
    s->port = ntohs(a.sin_port);
    ASSERT_OK(pipe2(s->wake, O_CLOEXEC));
    ASSERT_EQ(pthread_create(&s->thread, NULL, srv_main, s), 0);
    s->running = true;
}

/* Closes the listener and every stream: from the client's side rolloutd went away. */
static void srv_stop(struct srv *s)
{
    if (!s->running)
        return;
    srv_write(s->wake[1], "x");
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    close(s->lfd);
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->n_streams; i++)
        close(s->streams[i]);
    s->n_streams = 0;
    pthread_mutex_unlock(&s->lock);
    s->running = false;
}

static void srv_publish(struct srv *s, uint64_t version, const char *stage)
{
    pthread_mutex_lock(&s->lock);
    s->version = version;
    (void)snprintf(s->snapshot, sizeof s->snapshot, "%s", snapshot_json(version, stage));
    for (unsigned i = 0; i < s->n_streams; i++)
        send_event_locked(s, s->streams[i]);
    pthread_mutex_unlock(&s->lock);
}

static void srv_init(struct srv *s, uint64_t version)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    srv_publish(s, version, "off");
    srv_start(s);
}

static struct rollout_client *client_for(struct srv *s, const char *backup, const char *boot)
{
    char url[64];
    struct rollout_client_options o = {
        .env = "production",
        .token = "s3cret",
        .backup_path = backup,
        .bootstrap_path = boot,
        .backoff_min_usec = 20 * 1000,
        .backoff_max_usec = 200 * 1000,
        .idle_timeout_usec = 2 * 1000 * 1000,
    };
    struct rollout_client *c = NULL;
    struct err e = ERR_INIT;

    (void)snprintf(url, sizeof url, "http://127.0.0.1:%u/", s->port);
    o.url = url;
    if (rollout_client_new(&o, &c, &e) < 0)
        T_FAIL("client: %s", e.msg);
    return c;
}

static const char *value_of(struct rollout_client *c)
{
    static char out[64];
    struct rollout_ctx ctx = ROLLOUT_CTX("u", NULL, 0);
    struct rollout_result res;
    struct rollout_read rd;

    rollout_client_read_begin(c, &rd);
    if (rollout_client_eval(c, "v", &ctx, ROLLOUT_TYPE_STRING, &rd, &res) < 0)
        (void)snprintf(out, sizeof out, "error %s", rollout_error_name(res.error));
    else
        (void)snprintf(out, sizeof out, "%s", res.value->s);
    rollout_client_read_end(c, &rd);
    return out;
}

static void wait_connected(struct rollout_client *c, bool want, unsigned min_connects)
{
    uint64_t end = now_usec() + 10 * 1000 * 1000;
    struct rollout_client_status st;

    for (;;) {
        rollout_client_status(c, &st);
        if (st.connected == want && st.connects >= min_connects)
            return;
        if (now_usec() > end)
            T_FAIL("connected=%d connects=%u, wanted %d/%u", st.connected, st.connects, want,
                   min_connects);
        sleep_usec(5000);
    }
}

static void test_fetch_then_stream(void)
{
    struct srv s;
    struct rollout_client *c;

    srv_init(&s, 1);
    c = client_for(&s, NULL, NULL);
    ASSERT_OK(rollout_client_start(c));
    ASSERT_ERRNO(rollout_client_start(c), -EALREADY);
    ASSERT_OK(rollout_client_wait_version(c, 1, 5 * 1000 * 1000));
    ASSERT_STREQ(value_of(c), "1");
    wait_connected(c, true, 1);
    srv_publish(&s, 2, "off");
    ASSERT_OK(rollout_client_wait_version(c, 2, 5 * 1000 * 1000));
    ASSERT_STREQ(value_of(c), "2");
    srv_publish(&s, 3, "full");
    ASSERT_OK(rollout_client_wait_version(c, 3, 5 * 1000 * 1000));
    ASSERT_STREQ(value_of(c), "new");
    pthread_mutex_lock(&s.lock);
    ASSERT_STREQ(s.last_auth, "Bearer s3cret");
    ASSERT_EQ(s.snapshot_gets, 1);
    ASSERT_EQ(s.stream_gets, 1);
    pthread_mutex_unlock(&s.lock);
    rollout_client_free(c); /* interrupts the open stream */
    srv_stop(&s);
}

static void test_reconnect_after_restart_keeps_last_snapshot(void)
{
    struct rollout_client_status st;
    struct rollout_client *c;
    struct srv s;
    uint16_t port;

    srv_init(&s, 10);
    c = client_for(&s, NULL, NULL);
    ASSERT_OK(rollout_client_start(c));
    ASSERT_OK(rollout_client_wait_version(c, 10, 5 * 1000 * 1000));
    wait_connected(c, true, 1);
    port = s.port;
    srv_stop(&s);
    wait_connected(c, false, 1);
    /* rolloutd is down: the last known snapshot keeps serving. */
    sleep_usec(300 * 1000); /* several failed reconnects (backoff 20..200 ms) */
    ASSERT_STREQ(value_of(c), "10");
    rollout_client_status(c, &st);
    ASSERT_TRUE(st.last_error < 0);
    ASSERT_TRUE(st.has_snapshot);
    /* It comes back on the same port with newer state. */
    s.port = port;
    srv_publish(&s, 11, "off");
    srv_start(&s);
    ASSERT_OK(rollout_client_wait_version(c, 11, 5 * 1000 * 1000));
    ASSERT_STREQ(value_of(c), "11");
    wait_connected(c, true, 2);
    rollout_client_free(c);
    srv_stop(&s);
}

static void test_restarted_server_with_lower_version(void)
{
    struct rollout_client *c;
    struct srv s;
    uint16_t port;

    srv_init(&s, 50);
    c = client_for(&s, NULL, NULL);
    ASSERT_OK(rollout_client_start(c));
    ASSERT_OK(rollout_client_wait_version(c, 50, 5 * 1000 * 1000));
    port = s.port;
    srv_stop(&s);
    /* A rebuilt server restarts its counter: the client follows the server's truth. */
    s.port = port;
    srv_publish(&s, 2, "off");
    srv_start(&s);
    for (int i = 0; i < 500 && strcmp(value_of(c), "2") != 0; i++)
        sleep_usec(10 * 1000);
    ASSERT_STREQ(value_of(c), "2");
    rollout_client_free(c);
    srv_stop(&s);
}

static void test_backup_then_bootstrap_while_down(void)
{
    char dir[] = "/tmp/rollout-test-XXXXXX", path[64];
    struct rollout_client_status st;
    struct rollout_client *c;
    struct srv s;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    (void)snprintf(path, sizeof path, "%s/last.json", dir);
    srv_init(&s, 7);
    c = client_for(&s, path, path); /* no file yet: bootstrap skipped */
    ASSERT_OK(rollout_client_start(c));
    ASSERT_OK(rollout_client_wait_version(c, 7, 5 * 1000 * 1000));
    rollout_client_free(c);
    srv_stop(&s);
    /* The process restarts while rolloutd is down: it serves the last known snapshot. */
    c = client_for(&s, path, path);
    ASSERT_STREQ(value_of(c), "7");
    ASSERT_OK(rollout_client_start(c));
    sleep_usec(200 * 1000);
    rollout_client_status(c, &st);
    ASSERT_FALSE(st.connected);
    ASSERT_EQ(st.version, 7);
    ASSERT_STREQ(value_of(c), "7");
    rollout_client_free(c);
    (void)unlink(path);
    (void)rmdir(dir);
}

static void test_version_events_refetch(void)
{
    struct rollout_client *c;
    struct srv s;

    srv_init(&s, 1);
    s.version_events = true;
    c = client_for(&s, NULL, NULL);
    ASSERT_OK(rollout_client_start(c));
    ASSERT_OK(rollout_client_wait_version(c, 1, 5 * 1000 * 1000));
    wait_connected(c, true, 1);
    srv_publish(&s, 4, "off");
    ASSERT_OK(rollout_client_wait_version(c, 4, 5 * 1000 * 1000));
    ASSERT_STREQ(value_of(c), "4");
    pthread_mutex_lock(&s.lock);
    ASSERT_EQ(s.snapshot_gets, 2); /* initial GET + one refetch */
    pthread_mutex_unlock(&s.lock);
    rollout_client_free(c);
    srv_stop(&s);
}

static void test_unauthorized(void)
{
    struct rollout_client_status st;
    struct rollout_client *c;
    struct srv s;
    uint64_t end;

    srv_init(&s, 1);
    s.status = 401;
    c = client_for(&s, NULL, NULL);
    ASSERT_OK(rollout_client_start(c));
    end = now_usec() + 5 * 1000 * 1000;
    do {
        sleep_usec(10 * 1000);
        rollout_client_status(c, &st);
    } while (st.last_error != -EACCES && now_usec() < end);
    ASSERT_ERRNO(st.last_error, -EACCES);
    ASSERT_FALSE(st.has_snapshot);
    ASSERT_STREQ(value_of(c), "error PROVIDER_NOT_READY");
    rollout_client_free(c);
    srv_stop(&s);
}

static void test_idle_stream_reconnects(void)
{
    struct rollout_client_options o = {
        .env = "production",
        .backoff_min_usec = 20 * 1000,
        .idle_timeout_usec = 300 * 1000,
    };
    struct rollout_client *c = NULL;
    struct err e = ERR_INIT;
    char url[64];
    struct srv s;

    srv_init(&s, 1);
    (void)snprintf(url, sizeof url, "http://127.0.0.1:%u", s.port);
    o.url = url;
    ASSERT_OK(rollout_client_new(&o, &c, &e));
    ASSERT_OK(rollout_client_start(c));
    /* The server never sends keep-alives: each stream is declared dead after 300 ms. */
    wait_connected(c, true, 3);
    ASSERT_STREQ(value_of(c), "1");
    pthread_mutex_lock(&s.lock);
    ASSERT_GE(s.not_modified, 2); /* reconnects revalidate with If-None-Match */
    pthread_mutex_unlock(&s.lock);
    rollout_client_free(c);
    srv_stop(&s);
}

T_MAIN(T_CASE(test_sse_parser), T_CASE(test_swap_under_concurrent_readers),
       T_CASE(test_conveniences), T_CASE(test_fetch_then_stream),
       T_CASE(test_reconnect_after_restart_keeps_last_snapshot),
       T_CASE(test_restarted_server_with_lower_version),
       T_CASE(test_backup_then_bootstrap_while_down), T_CASE(test_version_events_refetch),
       T_CASE(test_unauthorized), T_CASE(test_idle_stream_reconnects))
