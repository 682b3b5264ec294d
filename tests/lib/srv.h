/* SPDX-License-Identifier: MIT */
/* srv.h - start real throw-away servers for tests on 127.0.0.1: redis-server and a
 * PostgreSQL 15 cluster (initdb into a temp dir, fsync off, run as `postgres` when the test runs
 * as root).  Header-only; every server gets a fresh temp dir that srv_stop() removes.
 *
 *   struct srv s = SRV_INIT;
 *   ASSERT_OK(srv_redis_start(&s, "secret"));      s.port is the server's port
 *   ...
 *   srv_stop(&s);
 *
 * srv_pg_start() returns -ENOENT when /usr/lib/postgresql/15/bin is missing (callers print a
 * TAP "# SKIP" line then).  The superuser is "postgres" with the given password; TCP clients on
 * 127.0.0.1 must use scram-sha-256, unix sockets in s.dir are trusted.  Servers stay in the
 * test's process group, so t.h's kill of the group catches them if a case dies. */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define SRV_PG_BINDIR "/usr/lib/postgresql/15/bin"

struct srv {
    pid_t pid;     /* server process, 0 when not running */
    uint16_t port; /* TCP port on 127.0.0.1 */
    int stop_sig;  /* signal srv_stop() sends first */
    char dir[128]; /* temp dir (data, log, unix sockets); "" when none */
};
#define SRV_INIT                                            \
    {                                                       \
        .pid = 0, .port = 0, .stop_sig = SIGTERM, .dir = "" \
    }

static inline void srv__sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A port that was free a moment ago (bind port 0, read it back, close). 0 on error. */
static inline uint16_t srv_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port = 0;

    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    (void)close(fd);
    return port;
}

/* A listening socket on 127.0.0.1 (port 0 = any); *ret_port gets the port.  fd or -errno. */
static inline int srv_listen(uint16_t port, int backlog, uint16_t *ret_port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = -errno;
        (void)close(fd);
        return e;
    }
    *ret_port = ntohs(a.sin_port);
    return fd;
}

/* Reads one HTTP request from fd into req[size] for a fake server: the headers and as much body
 * as their Content-Length says, or what came before EOF.  NUL-terminated; returns its length. */
static inline size_t srv_http_read_request(int fd, char *req, size_t size)
{
    size_t len = 0;

    req[0] = '\0';
    while (len < size - 1) {
        ssize_t k = read(fd, req + len, size - 1 - len);
        const char *end, *cl;

        if (k <= 0)
            break;
        len += (size_t)k;
        req[len] = '\0';
        end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        cl = strstr(req, "Content-Length: ");
        if (len >= (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0))
            break;
    }
    return len;
}

static inline bool srv_tcp_accepts(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    (void)close(fd);
    return ok;
}

static inline int srv__rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static inline void srv__rm_rf(const char *dir)
{
    if (dir[0])
        (void)nftw(dir, srv__rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Owner for servers that refuse root; NULL when we are not root (run as ourselves). */
static inline const struct passwd *srv__run_as(void)
{
    return geteuid() == 0 ? getpwnam("postgres") : NULL;
}

/* Forks argv with stdout+stderr appended to dir/log, cwd = dir, as `pw` (via setpriv) when
 * given.  Returns the pid or -errno. */
static inline pid_t srv__spawn(const char *dir, const struct passwd *pw, const char *const *argv)
{
    char log[256];
    pid_t pid;

    (void)snprintf(log, sizeof log, "%s/log", dir);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        const char *pfx[] = { "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                              "--" };
        const char *full[64];
        size_t n = 0;
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
            chdir(dir) < 0)
            _exit(126);
        if (pw)
            for (size_t i = 0; i < sizeof pfx / sizeof pfx[0]; i++)
                full[n++] = pfx[i];
        for (size_t i = 0; argv[i] && n < 63; i++)
            full[n++] = argv[i];
        full[n] = NULL;
        (void)setenv("LC_ALL", "C", 1);
        (void)signal(SIGPIPE, SIG_DFL);
        execvp(full[0], (char *const *)(uintptr_t)full); /* exec does not write argv */
        _exit(127);
    }
    return pid;
}

/* Prints the server log as TAP comments (for failing setups). */
static inline void srv_dump_log(const struct srv *s)
{
    char path[256], line[512];
    FILE *f;

    (void)snprintf(path, sizeof path, "%s/log", s->dir);
    f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "# log: %s", line);
    (void)fclose(f);
}

static inline int srv__mkdir(struct srv *s, const char *kind, const struct passwd *pw)
{
    (void)snprintf(s->dir, sizeof s->dir, "/tmp/ut-%s-XXXXXX", kind);
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return -errno;
    }
    if (pw && chown(s->dir, pw->pw_uid, pw->pw_gid) < 0)
        return -errno;
    return 0;
}

/* Stops the server (stop_sig, then SIGKILL after 5s), reaps it and removes its dir. */
static inline void srv_stop(struct srv *s)
{
    if (s->pid > 0) {
        int status;
        (void)kill(s->pid, s->stop_sig);
        for (unsigned i = 0; i < 500; i++) {
            if (waitpid(s->pid, &status, WNOHANG) != 0)
                goto reaped;
            srv__sleep_ms(10);
        }
        (void)kill(s->pid, SIGKILL);
        (void)waitpid(s->pid, &status, 0);
    reaped:
        s->pid = 0;
    }
    srv__rm_rf(s->dir);
    s->dir[0] = '\0';
}

/* Waits up to 10s for ready(); fails early when the server exits. */
static inline int srv__wait_ready(struct srv *s, bool (*ready)(const struct srv *))
{
    for (unsigned i = 0; i < 1000; i++) {
        int status;
        if (ready(s))
            return 0;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            srv_dump_log(s);
            return -ECHILD;
        }
        srv__sleep_ms(10);
    }
    srv_dump_log(s);
    return -ETIMEDOUT;
}

static inline bool srv__redis_ready(const struct srv *s)
{
    return srv_tcp_accepts(s->port);
}

/* redis-server on 127.0.0.1:<free port>, no persistence, requirepass when password != NULL. */
static inline int srv_redis_start(struct srv *s, const char *password)
{
    char port[12];
    const char *argv[32];
    size_t n = 0;
    pid_t pid;
    int r;

    *s = (struct srv)SRV_INIT;
    r = srv__mkdir(s, "redis", NULL);
    if (r < 0)
        return r;
    s->port = srv_free_port();
    (void)snprintf(port, sizeof port, "%u", (unsigned)s->port);
    argv[n++] = "redis-server";
    argv[n++] = "--port", argv[n++] = port;
    argv[n++] = "--bind", argv[n++] = "127.0.0.1";
    argv[n++] = "--save", argv[n++] = "";
    argv[n++] = "--appendonly", argv[n++] = "no";
    argv[n++] = "--daemonize", argv[n++] = "no";
    argv[n++] = "--dir", argv[n++] = s->dir;
    argv[n++] = "--logfile", argv[n++] = "";
    if (password)
        argv[n++] = "--requirepass", argv[n++] = password;
    argv[n] = NULL;
    pid = srv__spawn(s->dir, NULL, argv);
    if (pid < 0) {
        srv_stop(s);
        return pid;
    }
    s->pid = pid;
    r = srv__wait_ready(s, srv__redis_ready);
    if (r < 0)
        srv_stop(s);
    return r;
}

static inline bool srv__pg_ready(const struct srv *s)
{
    char conninfo[256];

    (void)snprintf(conninfo, sizeof conninfo,
                   "host=127.0.0.1 port=%u dbname=postgres connect_timeout=2", (unsigned)s->port);
    return PQping(conninfo) == PQPING_OK;
}

static inline int srv__run(const char *dir, const struct passwd *pw, const char *const *argv)
{
    int status;
    pid_t pid = srv__spawn(dir, pw, argv);

    if (pid < 0)
        return pid;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* PostgreSQL 15 on 127.0.0.1:<free port>; -ENOENT when PostgreSQL 15 is not installed. */
static inline int srv_pg_start(struct srv *s, const char *password)
{
    const struct passwd *pw = srv__run_as();
    char pwfile[192], data[192], port[8], pwopt[256];
    const char *initdb[] = { SRV_PG_BINDIR "/initdb",
                             "-D",
                             data,
                             "-U",
                             "postgres",
                             pwopt,
                             "-N",
                             "--no-instructions",
                             "--no-locale",
                             "-E",
                             "UTF8",
                             "--auth-host=scram-sha-256",
                             "--auth-local=trust",
                             NULL };
    const char *postgres[] = { SRV_PG_BINDIR "/postgres",
                               "-D",
                               data,
                               "-p",
                               port,
                               "-k",
                               s->dir,
                               "-h",
                               "127.0.0.1",
                               "-c",
                               "fsync=off",
                               "-c",
                               "full_page_writes=off",
                               "-c",
                               "synchronous_commit=off",
                               "-c",
                               "shared_buffers=16MB",
                               "-c",
                               "max_connections=20",
                               "-c",
                               "logging_collector=off",
                               "-c",
                               "password_encryption=scram-sha-256",
                               NULL };
    FILE *f;
    pid_t pid;
    int r;

    *s = (struct srv)SRV_INIT;
    s->stop_sig = SIGQUIT; /* immediate shutdown: nothing here needs to survive */
    if (access(SRV_PG_BINDIR "/postgres", X_OK) < 0)
        return -ENOENT;
    if (geteuid() == 0 && !pw)
        return -ENOENT; /* root without a postgres user cannot run PostgreSQL */
    r = srv__mkdir(s, "pg", pw);
    if (r < 0)
        return r;
    (void)snprintf(pwfile, sizeof pwfile, "%s/pw", s->dir);
    (void)snprintf(data, sizeof data, "%s/data", s->dir);
    (void)snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pwfile);
    f = fopen(pwfile, "we");
    if (!f) {
        r = -errno;
        goto fail;
    }
    fprintf(f, "%s\n", password ? password : "postgres");
    if (fclose(f) != 0 || (pw && chown(pwfile, pw->pw_uid, pw->pw_gid) < 0)) {
        r = -errno;
        goto fail;
    }
    r = srv__run(s->dir, pw, initdb);
    if (r < 0) {
        srv_dump_log(s);
        goto fail;
    }
    s->port = srv_free_port();
    (void)snprintf(port, sizeof port, "%u", (unsigned)s->port);
    pid = srv__spawn(s->dir, pw, postgres);
    if (pid < 0) {
        r = pid;
        goto fail;
    }
    s->pid = pid;
    r = srv__wait_ready(s, srv__pg_ready);
    if (r < 0)
        goto fail;
    return 0;
fail:
    srv_stop(s);
    return r;
}
