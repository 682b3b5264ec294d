/* SPDX-License-Identifier: MIT */
/* test_probe.c - probes against real servers on 127.0.0.1: listening sockets, a forked HTTP
 * server, redis-server, PostgreSQL 15, real child processes and librdkafka's mock cluster. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka_mock.h"
#include "probe/probe.h"
#include "probe/probe_int.h"
#include "proc_self.h"
#include "srv.h"
#include "t.h"

#define MSEC USEC_PER_MSEC
/* String literals are const under -Wwrite-strings; specs hold char *. */
#define S(lit_) ((char *)(uintptr_t)(lit_))

/* ===== a forked HTTP server: one child per connection, canned answer after a delay ===== */

struct fake_http {
    pid_t pid;
    uint16_t port;
};

/* Answers every connection with `response` after delay_ms; "%REQ%" in it is replaced by the
 * request the server received.  keep_open: do not close after answering. */
static void fake_http_start(struct fake_http *f, const char *response, unsigned delay_ms,
                            bool keep_open)
{
    int lfd = srv_listen(0, 64, &f->port);

    ASSERT_OK(lfd);
    f->pid = fork();
    ASSERT_OK(f->pid);
    if (f->pid > 0) {
        (void)close(lfd);
        return;
    }
    (void)signal(SIGCHLD, SIG_IGN); /* auto-reap the per-connection children */
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            char req[4096];
            const char *mark = strstr(response, "%REQ%");
            size_t len = srv_http_read_request(c, req, sizeof req);

            srv__sleep_ms(delay_ms);
            if (mark) {
                (void)!write(c, response, (size_t)(mark - response));
                (void)!write(c, req, len);
                (void)!write(c, mark + 5, strlen(mark + 5));
            } else {
                (void)!write(c, response, strlen(response));
            }
            if (keep_open)
                srv__sleep_ms(10000);
            _exit(0);
        }
        (void)close(c);
    }
}

static void fake_http_stop(struct fake_http *f)
{
    (void)kill(f->pid, SIGKILL);
    (void)waitpid(f->pid, NULL, 0);
}

static struct probe_spec http_spec(uint16_t port, const char *path)
{
    struct probe_spec s = { .type = PROBE_HTTP, .port = port, .path = S(path) };
    return s;
}

static int run(const struct probe_spec *s, uint64_t timeout, struct buf *msg, struct buf *det)
{
    buf_reset(msg);
    buf_reset(det);
    return probe_run(s, timeout, msg, det);
}

/* ===== spec helpers ===== */

static void test_type_strings(void)
{
    enum probe_type t;

    for (unsigned i = 0; i < _PROBE_TYPE_MAX; i++) {
        ASSERT_OK(probe_type_from_string(probe_type_to_string((enum probe_type)i), &t));
        ASSERT_EQ(t, i);
    }
    ASSERT_STREQ(probe_type_to_string(PROBE_REDIS), "redis");
    ASSERT_STREQ(probe_type_to_string(PROBE_KAFKA), "kafka");
    ASSERT_OK(probe_type_from_string("kafka", &t));
    ASSERT_EQ(t, PROBE_KAFKA);
    ASSERT_ERRNO(probe_type_from_string("kafka2", &t), -EINVAL);
    ASSERT_ERRNO(probe_type_from_string(NULL, &t), -EINVAL);
    ASSERT_TRUE(probe_type_to_string(_PROBE_TYPE_MAX) == NULL);
}

static void test_spec_copy_release(void)
{
    char *cmd[] = { S("INFO"), S("replication"), NULL };
    struct probe_spec a = {
        .type = PROBE_REDIS, .host = S("127.0.0.2"), .port = 7, .password = S("pw"), .command = cmd
    };
    struct probe_spec b;

    probe_spec_copy(&b, &a);
    ASSERT_EQ(b.type, PROBE_REDIS);
    ASSERT_EQ(b.port, 7);
    ASSERT_TRUE(b.host != a.host && b.command != a.command && b.command[1] != cmd[1]);
    ASSERT_STREQ(b.host, "127.0.0.2");
    ASSERT_STREQ(b.password, "pw");
    ASSERT_STREQ(b.command[0], "INFO");
    ASSERT_STREQ(b.command[1], "replication");
    ASSERT_TRUE(b.command[2] == NULL && b.argv == NULL && b.path == NULL);
    probe_spec_release(&b);
    ASSERT_EQ(b.type, PROBE_TCP);
    ASSERT_TRUE(b.host == NULL && b.command == NULL);
    probe_spec_release(&b); /* twice is fine */
    probe_spec_release(NULL);
}

/* ===== tcp ===== */

static void test_tcp_ok(void)
{
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    uint16_t port = 0;
    int lfd = srv_listen(0, 8, &port);
    struct probe_spec s = { .type = PROBE_TCP, .port = port };
    char want[64];

    ASSERT_OK(lfd);
    ASSERT_OK(run(&s, 1000 * MSEC, &msg, &det));
    (void)snprintf(want, sizeof want, "connected to 127.0.0.1:%u", port);
    ASSERT_STREQ(buf_str(&msg), want);
    /* A name resolves too ("localhost" may be ::1 first: the probe tries every address). */
    s.host = S("localhost");
    ASSERT_OK(run(&s, 1000 * MSEC, &msg, &det));
    (void)close(lfd);
    buf_release(&msg);
    buf_release(&det);
}

static void test_tcp_refused(void)
{
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    uint16_t port = srv_free_port();
    struct probe_spec s = { .type = PROBE_TCP, .port = port };
    char want[96];

    ASSERT_ERRNO(run(&s, 1000 * MSEC, &msg, &det), -ECONNREFUSED);
    (void)snprintf(want, sizeof want, "connect to 127.0.0.1:%u: Connection refused", port);
    ASSERT_STREQ(buf_str(&msg), want);
    buf_release(&msg);
    buf_release(&det);
}

static void test_tcp_bad_input(void)
{
    struct probe_spec s = { .type = PROBE_TCP, .host = S("no such host!"), .port = 1 };
    struct probe *p = probe_start(&s, 1000 * MSEC);

    /* Failures known at start come back already done. */
    ASSERT_TRUE(probe_done(p));
    ASSERT_ERRNO(probe_result(p), -EHOSTUNREACH);
    ASSERT_CONTAINS(probe_message(p), "resolve 'no such host!'");
    ASSERT_EQ(probe_fd(p), -1);
    p = probe_free(p);
    s.host = NULL;
    s.port = 0;
    p = probe_start(&s, 1000 * MSEC);
    ASSERT_TRUE(probe_done(p));
    ASSERT_ERRNO(probe_result(p), -EINVAL);
    p = probe_free(p);
    ASSERT_TRUE(p == NULL);
}

/* The accept queue of a listener with backlog 0 holds one connection; later SYNs are dropped,
 * so a connect() hangs until the deadline. */
static void test_tcp_timeout_backlog_full(void)
{
    uint16_t port = 0;
    int lfd = srv_listen(0, 0, &port);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct probe_spec s = { .type = PROBE_TCP, .port = port };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    int fillers[4];
    uint64_t t0;

    ASSERT_OK(lfd);
    for (unsigned i = 0; i < ARRAY_SIZE(fillers); i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    srv__sleep_ms(50);
    t0 = now_usec();
    ASSERT_ERRNO(run(&s, 300 * MSEC, &msg, &det), -ETIMEDOUT);
    ASSERT_STREQ(buf_str(&msg), "timed out after 300ms");
    ASSERT_GE(now_usec() - t0, 300 * MSEC);
    ASSERT_LE(now_usec() - t0, 800 * MSEC);
    for (unsigned i = 0; i < ARRAY_SIZE(fillers); i++)
        (void)close(fillers[i]);
    (void)close(lfd);
    buf_release(&msg);
    buf_release(&det);
}

/* ===== http ===== */

static void test_http_200_body(void)
{
    struct fake_http f;
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    struct probe_spec s;
    char host[64];

    fake_http_start(&f, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%REQ%", 0, false);
    s = http_spec(f.port, "/health?x=1");
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "HTTP 200");
    /* The body echoes our request: HTTP/1.0, Host, Connection: close. */
    ASSERT_TRUE(str_startswith(buf_str(&det), "GET /health?x=1 HTTP/1.0\r\n"));
    (void)snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", f.port);
    ASSERT_CONTAINS(buf_str(&det), host);
    ASSERT_CONTAINS(buf_str(&det), "\r\nConnection: close\r\n");
    s.method = S("HEAD");
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_TRUE(str_startswith(buf_str(&det), "HEAD /health?x=1 HTTP/1.0\r\n"));
    fake_http_stop(&f);
    buf_release(&msg);
    buf_release(&det);
}

static void test_http_503(void)
{
    struct fake_http f;
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    struct probe_spec s;

    fake_http_start(&f, "HTTP/1.1 503 Service Unavailable\r\nX: y\r\n\r\nreplica lagging\n", 0,
                    false);
    s = http_spec(f.port, NULL);
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_STREQ(buf_str(&msg), "HTTP 503");
    ASSERT_STREQ(buf_str(&det), "replica lagging\n");
    fake_http_stop(&f);
    buf_release(&msg);
    buf_release(&det);
}

static void test_http_expect_status(void)
{
    struct fake_http f404, f200;
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    struct probe_spec s;

    fake_http_start(&f404, "HTTP/1.1 404 Not Found\r\n\r\nnope", 0, false);
    fake_http_start(&f200, "HTTP/1.1 200 OK\r\n\r\n", 0, false);
    s = http_spec(f404.port, "/missing");
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO); /* 404 is not 2xx */
    ASSERT_STREQ(buf_str(&msg), "HTTP 404");
    s.expect_status = 404;
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "HTTP 404");
    ASSERT_STREQ(buf_str(&det), "nope");
    s = http_spec(f200.port, "/");
    s.expect_status = 204;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_STREQ(buf_str(&msg), "HTTP 200 (expected 204)");
    ASSERT_STREQ(buf_str(&det), "");
    fake_http_stop(&f404);
    fake_http_stop(&f200);
    buf_release(&msg);
    buf_release(&det);
}

static void test_http_garbage(void)
{
    static const char *const garbage[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
        "",
    };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);

    for (unsigned i = 0; i < ARRAY_SIZE(garbage); i++) {
        struct fake_http f;
        struct probe_spec s;

        fake_http_start(&f, garbage[i], 0, false);
        s = http_spec(f.port, NULL);
        ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
        ASSERT_CONTAINS(buf_str(&msg), garbage[i][0] ? "malformed HTTP response" : "without");
        fake_http_stop(&f);
    }
    buf_release(&msg);
    buf_release(&det);
}

/* A server that keeps the connection open after a Content-Length body is done early. */
static void test_http_content_length(void)
{
    struct fake_http f;
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    struct probe_spec s;
    uint64_t t0 = now_usec();

    fake_http_start(&f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, true);
    s = http_spec(f.port, NULL);
    ASSERT_OK(run(&s, 3000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "hello");
    ASSERT_LE(now_usec() - t0, 1000 * MSEC);
    fake_http_stop(&f);
    buf_release(&msg);
    buf_release(&det);
}

/* The kernel completes connects on a listener nobody accept()s: the request goes out and no
 * answer ever comes. */
static void test_http_timeout(void)
{
    uint16_t port = 0;
    int lfd = srv_listen(0, 8, &port);
    struct probe_spec s = http_spec(port, "/");
    struct probe *p;
    uint64_t t0 = now_usec();

    ASSERT_OK(lfd);
    p = probe_start(&s, 300 * MSEC);
    ASSERT_TRUE(p && !probe_done(p));
    ASSERT_ERRNO(probe_result(p), -EINPROGRESS);
    /* Drive it by hand, the way a supervisor's loop would. */
    while (!probe_done(p)) {
        struct pollfd pfd = { .fd = probe_fd(p), .events = probe_events(p) };
        uint64_t now = now_usec();
        int ms = probe_deadline(p) > now ? (int)((probe_deadline(p) - now) / 1000 + 1) : 0;
        int r = poll(&pfd, pfd.fd >= 0 ? 1 : 0, ms);
        ASSERT_OK(r);
        (void)probe_step(p, r > 0 ? pfd.revents : 0);
    }
    ASSERT_ERRNO(probe_result(p), -ETIMEDOUT);
    ASSERT_STREQ(probe_message(p), "timed out after 300ms");
    ASSERT_GE(probe_elapsed_usec(p), 300 * MSEC);
    ASSERT_LE(now_usec() - t0, 800 * MSEC);
    ASSERT_EQ(probe_fd(p), -1);
    p = probe_free(p);
    (void)close(lfd);
}

/* probe_step(p, 0) before the deadline does nothing; after it, the probe times out. */
static void test_deadline_step(void)
{
    uint16_t port = 0;
    int lfd = srv_listen(0, 8, &port);
    struct probe_spec s = http_spec(port, "/");
    struct probe *p = probe_start(&s, 50 * MSEC);

    ASSERT_OK(lfd);
    ASSERT_FALSE(probe_step(p, 0));
    ASSERT_TRUE(probe_fd(p) >= 0);
    srv__sleep_ms(60);
    ASSERT_TRUE(probe_step(p, 0));
    ASSERT_ERRNO(probe_result(p), -ETIMEDOUT);
    ASSERT_STREQ(probe_message(p), "timed out after 50ms");
    p = probe_free(p);
    (void)close(lfd);
}

/* ===== exec ===== */

static bool no_children(void)
{
    siginfo_t si;
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL) < 0 && errno == ECHILD;
}

static void test_exec_true_false(void)
{
    char *t[] = { S("true"), NULL }, *f[] = { S("false"), NULL };
    char *sh[] = { S("/bin/sh"), S("-c"), S("echo out; echo err >&2; exit 3"), NULL };
    char *kill_self[] = { S("/bin/sh"), S("-c"), S("kill -TERM $$"), NULL };
    char *missing[] = { S("/nonexistent/cmd"), NULL };
    struct probe_spec s = { .type = PROBE_EXEC, .argv = t };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);

    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "exit status 0");
    s.argv = f;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EIO);
    ASSERT_STREQ(buf_str(&msg), "exit status 1");
    s.argv = sh;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EIO);
    ASSERT_STREQ(buf_str(&msg), "exit status 3");
    ASSERT_STREQ(buf_str(&det), "out\nerr\n");
    s.argv = kill_self;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EIO);
    ASSERT_STREQ(buf_str(&msg), "killed by signal 15");
    s.argv = missing;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -ENOENT);
    ASSERT_CONTAINS(buf_str(&msg), "/nonexistent/cmd");
    ASSERT_TRUE(no_children());
    buf_release(&msg);
    buf_release(&det);
}

static void test_exec_output_env(void)
{
    /* stdin is /dev/null, the child leads its own process group, signals are reset. */
    char *sh[] = { S("/bin/sh"), S("-c"),
                   S("cat; set -- $(cat /proc/$$/stat); test \"$5\" = $$ && echo own-pgrp;"
                     " head -c 20000 /dev/zero | tr '\\0' x"),
                   NULL };
    struct probe_spec s = { .type = PROBE_EXEC, .argv = sh };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);

    ASSERT_OK(run(&s, 3000 * MSEC, &msg, &det));
    ASSERT_TRUE(str_startswith(buf_str(&det), "own-pgrp\nxxxx"));
    ASSERT_EQ(det.len, PROBE_EXEC_OUTPUT); /* bounded */
    ASSERT_STREQ(buf_str(&msg), "exit status 0 (3625 bytes of output dropped)");
    buf_release(&msg);
    buf_release(&det);
}

static void test_exec_timeout_kills_group(void)
{
    char *sl[] = { S("sleep"), S("5"), NULL };
    struct probe_spec s = { .type = PROBE_EXEC, .argv = sl };
    struct probe *p = probe_start(&s, 300 * MSEC);
    pid_t pgid = p->exec_pid;
    uint64_t t0 = now_usec();

    ASSERT_TRUE(pgid > 0 && !probe_done(p));
    ASSERT_EQ(getpgid(pgid), pgid);
    probe_run_all(&p, 1);
    ASSERT_ERRNO(probe_result(p), -ETIMEDOUT);
    ASSERT_STREQ(probe_message(p), "timed out after 300ms");
    ASSERT_LE(now_usec() - t0, 1000 * MSEC);
    /* Reaped already at finish: no zombie, and the group is gone. */
    ASSERT_TRUE(no_children());
    ASSERT_TRUE(kill(-pgid, 0) < 0 && errno == ESRCH);
    p = probe_free(p);
}

static void test_exec_free_kills_stragglers(void)
{
    char *sh[] = { S("/bin/sh"), S("-c"), S("sleep 30 & sleep 30 & wait"), NULL };
    struct probe_spec s = { .type = PROBE_EXEC, .argv = sh };
    struct probe *p;
    pid_t pgid;
    unsigned killed = 0;
    int status;

    /* Orphans come to us instead of PID 1 (which may not reap in containers), so we can check
     * how they died. */
    ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    p = probe_start(&s, 10000 * MSEC);
    pgid = p->exec_pid;
    srv__sleep_ms(100);
    ASSERT_EQ(waitpid(-1, &status, WNOHANG), 0); /* running */
    p = probe_free(p);
    /* The shell is reaped by the probe; its two background sleeps were in the group. */
    while (waitpid(-1, &status, 0) > 0)
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            killed++;
    ASSERT_EQ(killed, 2);
    ASSERT_TRUE(kill(-pgid, 0) < 0 && errno == ESRCH);
}

/* A waitpid(-1) loop elsewhere that steals the status is reported, not waited out. */
static void test_exec_status_stolen(void)
{
    char *t[] = { S("true"), NULL };
    struct probe_spec s = { .type = PROBE_EXEC, .argv = t };
    struct probe *p = probe_start(&s, 5000 * MSEC);
    int status;

    ASSERT_EQ(waitpid(-1, &status, 0), p->exec_pid);
    probe_run_all(&p, 1);
    ASSERT_ERRNO(probe_result(p), -ECHILD);
    ASSERT_LE(probe_elapsed_usec(p), 1000 * MSEC);
    p = probe_free(p);
}

/* ===== redis ===== */

static void test_redis(void)
{
    struct srv r = SRV_INIT;
    char *info[] = { S("INFO"), S("replication"), NULL };
    char *setcmd[] = { S("SET"), S("k"), S("v"), NULL };
    char *lpush[] = { S("RPUSH"), S("l"), S("a"), S("b"), NULL };
    char *lrange[] = { S("LRANGE"), S("l"), S("0"), S("-1"), NULL };
    char *bogus[] = { S("NOSUCHCOMMAND"), NULL };
    struct probe_spec s = { .type = PROBE_REDIS };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);

    ASSERT_OK(srv_redis_start(&r, "s3cret"));
    s.port = r.port;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_TRUE(str_startswith(buf_str(&msg), "NOAUTH Authentication required"));
    s.password = S("wrong");
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_TRUE(str_startswith(buf_str(&msg), "WRONGPASS"));
    s.password = S("s3cret");
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "PONG");
    ASSERT_STREQ(buf_str(&det), "PONG");
    s.user = S("default"); /* ACL form: AUTH user password */
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    s.command = info;
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_CONTAINS(buf_str(&det), "role:master");
    s.command = setcmd;
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "OK");
    s.command = lpush;
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "2");
    s.command = lrange;
    ASSERT_OK(run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "a\nb");
    s.command = bogus;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_CONTAINS(buf_str(&msg), "unknown command");
    srv_stop(&r);
    s.command = NULL;
    ASSERT_ERRNO(run(&s, 2000 * MSEC, &msg, &det), -ECONNREFUSED);
    buf_release(&msg);
    buf_release(&det);
}

/* ===== pg ===== */

static void test_pg(void)
{
    struct srv pg = SRV_INIT;
    struct probe_spec s = { .type = PROBE_PG, .user = S("postgres"), .password = S("pgpw") };
    struct buf msg = BUF_INIT(0), det = BUF_INIT(0);
    int r = srv_pg_start(&pg, "pgpw");

    if (r == -ENOENT)
        T_SKIP("PostgreSQL 15 is not installed in " SRV_PG_BINDIR
               " (Debian package postgresql-15: scripts/install-deps.sh)");
    ASSERT_OK(r);
    s.port = pg.port;
    ASSERT_OK(run(&s, 5000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "1");
    ASSERT_STREQ(buf_str(&msg), "query ok, 1 row");

    s.query = S("SELECT g, 'row ' || g, NULL FROM generate_series(1, 3) g");
    ASSERT_OK(run(&s, 5000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "1\trow 1\t\n2\trow 2\t\n3\trow 3\t");
    ASSERT_STREQ(buf_str(&msg), "query ok, 3 rows");

    s.query = S("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()");
    ASSERT_OK(run(&s, 5000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&det), "infractl-probe");

    s.query = S("SELECT * FROM no_such_table");
    ASSERT_ERRNO(run(&s, 5000 * MSEC, &msg, &det), -EPROTO);
    ASSERT_CONTAINS(buf_str(&msg), "no_such_table");
    ASSERT_TRUE(!strchr(buf_str(&msg), '\n'));

    s.query = NULL;
    s.password = S("wrong");
    ASSERT_ERRNO(run(&s, 5000 * MSEC, &msg, &det), -EACCES);
    ASSERT_CONTAINS(buf_str(&msg), "password authentication failed");
    ASSERT_TRUE(!strchr(buf_str(&msg), '\n'));

    /* Unix socket in the temp dir (trusted). */
    s.host = pg.dir;
    s.password = NULL;
    ASSERT_OK(run(&s, 5000 * MSEC, &msg, &det));

    srv_stop(&pg);
    s.host = NULL;
    ASSERT_ERRNO(run(&s, 5000 * MSEC, &msg, &det), -ECONNREFUSED);
    ASSERT_CONTAINS(buf_str(&msg), "Connection refused");
    buf_release(&msg);
    buf_release(&det);
}

/* ===== kafka (librdkafka's mock cluster; tests/lib/kafka_mock.h) ===== */

static void test_kafka_healthy(void)
{
    struct kmock m;
    struct buf msg = BUF_INIT(4096), det = BUF_INIT(PROBE_DETAIL_MAX);
    struct probe_spec s = { .type = PROBE_KAFKA }; /* host: 127.0.0.1 by default */
    char line[128];
    unsigned lines = 0;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 6, 3), 0); /* a replica on each */
    s.port = kmock_port(&m, 2);
    ASSERT_OK(run(&s, 3000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "3 brokers, controller 0");
    (void)snprintf(line, sizeof line, "broker=2 host=127.0.0.1 port=%u self=1 controller=0 ",
                   (unsigned)s.port);
    ASSERT_CONTAINS(buf_str(&det), line);
    ASSERT_CONTAINS(buf_str(&det), "broker=1 host=127.0.0.1");
    ASSERT_CONTAINS(buf_str(&det), " self=0 controller=0 replicas=6 led=");
    ASSERT_CONTAINS(buf_str(&det), "cluster brokers=3 controller=0 self=2 topics=1 replicas=6 "
                                   "led=6 under_replicated=0 offline=0 replicas_internal=0");
    for (const char *c = buf_str(&det); *c; c++)
        lines += *c == '\n';
    ASSERT_EQ(lines, 4);
    kmock_stop(&m);
    buf_release(&msg);
    buf_release(&det);
}

static void test_kafka_down_and_bad_input(void)
{
    struct kmock m;
    struct buf msg = BUF_INIT(4096), det = BUF_INIT(PROBE_DETAIL_MAX);
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("127.0.0.1") };
    uint64_t t0;

    kmock_start(&m, 1);
    s.port = kmock_port(&m, 1);
    ASSERT_EQ(rd_kafka_mock_broker_set_down(m.mc, -1), 0);
    t0 = now_usec();
    ASSERT_ERRNO(run(&s, 3000 * MSEC, &msg, &det), -ECONNREFUSED);
    ASSERT_LE(now_usec() - t0, 1500 * MSEC); /* refused at once, not at the deadline */
    ASSERT_CONTAINS(buf_str(&msg), "all brokers are down");
    ASSERT_CONTAINS(buf_str(&msg), "Connection refused");
    ASSERT_STREQ(buf_str(&det), "");
    kmock_stop(&m);

    s.port = 0;
    ASSERT_ERRNO(run(&s, 3000 * MSEC, &msg, &det), -EINVAL);
    ASSERT_STREQ(buf_str(&msg), "no port to probe");
    buf_release(&msg);
    buf_release(&det);
}

/* Brokers that accept connections and never answer in time (as when SIGSTOPped): the probe
 * ends by its deadline, whoever notices first (kfk_probe() gets slightly less time). */
static void test_kafka_hung_broker_deadline(void)
{
    struct kmock m;
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("127.0.0.1") };
    struct probe *p;
    uint64_t took;

    kmock_start(&m, 3);
    kmock_hang(&m, 30000);
    s.port = kmock_port(&m, 1);
    p = probe_start(&s, 600 * MSEC);
    ASSERT_TRUE(p != NULL);
    probe_run_all(&p, 1);
    took = probe_elapsed_usec(p);
    ASSERT_ERRNO(probe_result(p), -ETIMEDOUT);
    ASSERT_GE(took, 500 * MSEC);
    ASSERT_LE(took, 700 * MSEC);
    ASSERT_TRUE(strstr(probe_message(p), "no answer from 127.0.0.1:") ||
                strstr(probe_message(p), "timed out after 600ms"));
    ASSERT_EQ(probe_fd(p), -1);
    p = probe_free(p);
    kmock_stop(&m);
}

/* probe_free() while the thread is still inside librdkafka: it returns at once, and the thread
 * finishes later on its own without touching the freed probe (ASan would see it); then every
 * thread and fd is gone. */
static void test_kafka_free_while_running(void)
{
    struct kmock m;
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("127.0.0.1") };
    struct probe *p[3];
    unsigned threads, fds;
    uint64_t t0;

    fds = t_count_fds(); /* before the mock: its broker's socket of a closed connection may
                          * outlive the probe a while (a load-dependent count) */
    kmock_start(&m, 1);
    kmock_hang(&m, 30000);
    s.port = kmock_port(&m, 1);
    threads = t_count_threads();
    for (unsigned i = 0; i < 3; i++) {
        p[i] = probe_start(&s, (400 + 100 * i) * MSEC);
        ASSERT_TRUE(p[i] && probe_fd(p[i]) >= 0 && probe_events(p[i]) == POLLIN);
    }
    srv__sleep_ms(50);
    ASSERT_GE(t_count_threads(), threads + 3);
    t0 = now_usec();
    p[0] = probe_free(p[0]);
    ASSERT_LE(now_usec() - t0, 150 * MSEC); /* not the ~300 ms its call has left */
    /* One finishes by its deadline (the thread still runs), then is freed. */
    while (!probe_step(p[1], 0))
        srv__sleep_ms(10);
    ASSERT_ERRNO(probe_result(p[1]), -ETIMEDOUT);
    p[1] = probe_free(p[1]);
    /* One is left to its thread and read normally. */
    probe_run_all(&p[2], 1);
    ASSERT_ERRNO(probe_result(p[2]), -ETIMEDOUT);
    p[2] = probe_free(p[2]);
    t_wait_threads(threads);
    kmock_stop(&m);
    ASSERT_EQ(t_count_fds(), fds);
}

/* Bits of the signals the supervisor reads through its signalfd, in a SigBlk mask. */
static bool sigs_blocked(unsigned long long mask)
{
    static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP };

    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (!(mask & (1ULL << (sigs[i] - 1))))
            return false;
    return true;
}

/* The tids of this process's threads, into tids (at most n); returns how many. */
static unsigned list_tids(long *tids, unsigned n)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    unsigned k = 0;

    ASSERT_TRUE(d != NULL);
    while ((de = readdir(d)) && k < n)
        if (de->d_name[0] != '.')
            tids[k++] = strtol(de->d_name, NULL, 10);
    (void)closedir(d);
    return k;
}

/* Every thread the probe brings (its own and librdkafka's, which it starts) blocks SIGCHLD,
 * SIGTERM, SIGINT and SIGHUP, and the caller's mask is left as it was.  (The mock cluster's
 * threads are the test's: rd_kafka_mock_cluster_new() does not block signals.) */
static void test_kafka_thread_blocks_signals(void)
{
    struct kmock m;
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("127.0.0.1") };
    struct probe *p;
    sigset_t before, after;
    long old[64], now[64];
    unsigned n_old, n_now, checked = 0, threads;

    kmock_start(&m, 1);
    kmock_hang(&m, 30000);
    s.port = kmock_port(&m, 1);
    threads = t_count_threads();
    n_old = list_tids(old, 64);
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, NULL, &before));
    p = probe_start(&s, 1000 * MSEC);
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, NULL, &after));
    ASSERT_EQ(sigismember(&after, SIGTERM), sigismember(&before, SIGTERM));
    ASSERT_EQ(sigismember(&after, SIGCHLD), sigismember(&before, SIGCHLD));
    srv__sleep_ms(100);
    n_now = list_tids(now, 64);
    for (unsigned i = 0; i < n_now; i++) {
        char path[64], text[4096], *blk;
        bool known = false;
        FILE *f;
        size_t k;

        for (unsigned j = 0; j < n_old && !known; j++)
            known = old[j] == now[i];
        if (known)
            continue;
        (void)snprintf(path, sizeof path, "/proc/self/task/%ld/status", now[i]);
        f = fopen(path, "re");
        if (!f)
            continue; /* ended meanwhile */
        k = fread(text, 1, sizeof text - 1, f);
        (void)fclose(f);
        text[k] = '\0';
        blk = strstr(text, "SigBlk:");
        ASSERT_TRUE(blk != NULL);
        if (!sigs_blocked(strtoull(blk + 7, NULL, 16)))
            T_FAIL("thread %ld does not block SIGCHLD/SIGTERM/SIGINT/SIGHUP: %.24s", now[i], blk);
        checked++;
    }
    ASSERT_GE(checked, 3); /* the probe's thread, its client's main and broker threads */
    p = probe_free(p);
    t_wait_threads(threads);
    kmock_stop(&m);
}

/* ===== many at once ===== */

static void test_run_all_concurrent(void)
{
    struct fake_http slow1, slow2;
    uint16_t lport = 0;
    int lfd = srv_listen(0, 8, &lport);
    char *sl[] = { S("/bin/sh"), S("-c"), S("sleep 0.5; echo done"), NULL };
    char *fl[] = { S("false"), NULL };
    struct probe_spec specs[5];
    struct probe *p[5];
    uint64_t t0, took;
    unsigned fds;

    ASSERT_OK(lfd);
    fake_http_start(&slow1, "HTTP/1.0 200 OK\r\n\r\none", 500, false);
    fake_http_start(&slow2, "HTTP/1.0 500 Oops\r\n\r\ntwo", 500, false);
    specs[0] = http_spec(slow1.port, "/");
    specs[1] = http_spec(slow2.port, "/");
    specs[2] = (struct probe_spec){ .type = PROBE_EXEC, .argv = sl };
    specs[3] = (struct probe_spec){ .type = PROBE_TCP, .port = lport };
    specs[4] = (struct probe_spec){ .type = PROBE_EXEC, .argv = fl };
    fds = t_count_fds();
    t0 = now_usec();
    for (unsigned i = 0; i < 5; i++)
        p[i] = probe_start(&specs[i], 3000 * MSEC);
    probe_run_all(p, 5);
    took = now_usec() - t0;
    ASSERT_OK(probe_result(p[0]));
    ASSERT_STREQ(probe_detail(p[0]), "one");
    ASSERT_ERRNO(probe_result(p[1]), -EPROTO);
    ASSERT_STREQ(probe_message(p[1]), "HTTP 500");
    ASSERT_OK(probe_result(p[2]));
    ASSERT_STREQ(probe_detail(p[2]), "done\n");
    ASSERT_OK(probe_result(p[3]));
    ASSERT_ERRNO(probe_result(p[4]), -EIO);
    /* The three slow ones (500ms each) overlapped: about the max, far from the 1500ms sum. */
    ASSERT_GE(took, 500 * MSEC);
    ASSERT_LE(took, 1100 * MSEC);
    ASSERT_LE(probe_elapsed_usec(p[3]), 300 * MSEC);
    /* Finished probes hold no fd (sockets, pipes, pidfds, epoll fds all closed). */
    ASSERT_EQ(t_count_fds(), fds);
    for (unsigned i = 0; i < 5; i++)
        p[i] = probe_free(p[i]);
    fake_http_stop(&slow1);
    fake_http_stop(&slow2);
    (void)close(lfd);
}

T_MAIN(T_CASE(test_type_strings), T_CASE(test_spec_copy_release), T_CASE(test_tcp_ok),
       T_CASE(test_tcp_refused), T_CASE(test_tcp_bad_input), T_CASE(test_tcp_timeout_backlog_full),
       T_CASE(test_http_200_body), T_CASE(test_http_503), T_CASE(test_http_expect_status),
       T_CASE(test_http_garbage), T_CASE(test_http_content_length), T_CASE(test_http_timeout),
       T_CASE(test_deadline_step), T_CASE(test_exec_true_false), T_CASE(test_exec_output_env),
       T_CASE(test_exec_timeout_kills_group), T_CASE(test_exec_free_kills_stragglers),
       T_CASE(test_exec_status_stolen), T_CASE(test_redis), T_CASE(test_pg),
       T_CASE(test_kafka_healthy), T_CASE(test_kafka_down_and_bad_input),
       T_CASE(test_kafka_hung_broker_deadline), T_CASE(test_kafka_free_while_running),
       T_CASE(test_kafka_thread_blocks_signals), T_CASE(test_run_all_concurrent))
