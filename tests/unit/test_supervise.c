/* SPDX-License-Identifier: MIT */
/* sv_run() end to end: a real supervisor in a forked child on a temporary state directory,
 * tiny shell services, everything observed through the control socket, the log files and
 * kill(pid, 0). */
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/strv.h"
#include "core/time.h"
#include "probe/probe.h"
#include "srv.h"
#include "supervise/supervise.h"
#include "t.h"

#define MSEC USEC_PER_MSEC
#define SEC  USEC_PER_SEC

/* ===== A spec built in memory ===== */

#define TB_MAX_SERVICES 8

static char **strv(const char *const *src)
{
    size_t n = 0;
    char **v;

    while (src[n])
        n++;
    v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(src[i]);
    return v;
}

static struct sv_spec *tb_new(void)
{
    return sv_spec_new("test");
}

/* A service running `/bin/sh -c script`, the supervisor's defaults, a quick stop grace. */
static struct sv_service *tb_add(struct sv_spec *s, const char *name, const char *script)
{
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    struct sv_service *svc;

    ASSERT_TRUE(s->n_services < TB_MAX_SERVICES); /* pointers stay valid below the first grow */
    svc = sv_spec_add(s, name);
    svc->line = (unsigned)s->n_services;
    svc->argv = strv(argv);
    svc->stop_grace_usec = 2 * SEC;
    return svc;
}

static void tb_dep(struct sv_service *svc, const char *on, enum sv_dep_cond cond)
{
    svc->deps = xrealloc(svc->deps, (svc->n_deps + 1) * sizeof *svc->deps);
    svc->deps[svc->n_deps++] = (struct sv_dep){ .service = xstrdup(on), .cond = cond };
}

static void tb_health_exec(struct sv_service *svc, const char *script)
{
    const char *argv[] = { "/bin/sh", "-c", script, NULL };

    svc->health.present = true;
    svc->health.probe = (struct probe_spec)PROBE_SPEC_INIT;
    svc->health.probe.type = PROBE_EXEC;
    svc->health.probe.argv = strv(argv);
    svc->health.interval_usec = 200 * MSEC;
    svc->health.timeout_usec = 1 * SEC;
    svc->health.retries = 1;
}

static void tb_free(struct sv_spec *s)
{
    (void)sv_spec_free(s);
}

/* ===== A supervisor in a child process ===== */

static pid_t sup_pid = -1;
static pid_t fake_pid = -1; /* fake_dcs_start() */
static bool in_supervisor;
static char state_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static pid_t sup_wait(uint64_t timeout_usec, int *ret_status)
{
    uint64_t end = now_usec() + timeout_usec;

    for (;;) {
        pid_t p = waitpid(sup_pid, ret_status, WNOHANG);

        if (p != 0 || now_usec() > end)
            return p;
        sleep_usec(10 * MSEC);
    }
}

/* Runs at exit of every test case (passed or failed): no supervisor, service or temporary
 * directory outlives it.  A second SIGTERM makes the supervisor SIGKILL every group. */
static void cleanup(void)
{
    int status;

    if (in_supervisor)
        return;
    if (fake_pid > 0) {
        (void)kill(fake_pid, SIGKILL);
        (void)waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
    if (sup_pid > 0) {
        (void)kill(sup_pid, SIGTERM);
        if (sup_wait(300 * MSEC, &status) == 0) {
            (void)kill(sup_pid, SIGTERM);
            if (sup_wait(3 * SEC, &status) == 0) {
                (void)kill(sup_pid, SIGKILL);
                (void)waitpid(sup_pid, &status, 0);
            }
        }
        sup_pid = -1;
    }
    /* UT_KEEP=1 keeps the state directory (supervisor.log, logs/) for a post-mortem. */
    if (state_dir[0] && !getenv("UT_KEEP"))
        (void)nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    state_dir[0] = '\0';
}

static void make_state_dir(void)
{
    snprintf(state_dir, sizeof state_dir, "/tmp/ut-supervise-XXXXXX");
    ASSERT_TRUE(mkdtemp(state_dir) != NULL);
    ASSERT_EQ(atexit(cleanup), 0);
}

static char *state_path(const char *name)
{
    return xasprintf("%s/%s", state_dir, name);
}

/* Forks the supervisor (its log goes to STATE/supervisor.log) and waits for its readiness. */
static void sup_start(const struct sv_spec *s)
{
    int pfd[2];
    char c = 0;
    struct pollfd p;

    ASSERT_EQ(pipe2(pfd, O_CLOEXEC), 0);
    sup_pid = fork();
    ASSERT_TRUE(sup_pid >= 0);
    if (sup_pid == 0) {
        char *log = state_path("supervisor.log");
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        struct sv_options opts = { .state_dir = state_dir, .ready_fd = pfd[1] };
        int r;

        (void)close(pfd[0]);
        free(log);
        if (fd >= 0)
            (void)dup2(fd, 2);
        log_set_daemon_mode(1);
        log_set_max_level(LOG_LVL_DEBUG);
        r = sv_run(s, &opts);
        /* exit(), not _exit(), so LeakSanitizer checks the supervisor too; cleanup() is the
         * test's, not ours. */
        in_supervisor = true;
        exit(r < 0 ? 100 + (-r & 0x7f) : 0);
    }
    (void)close(pfd[1]);
    p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    ASSERT_EQ(read(pfd[0], &c, 1), 1);
    ASSERT_EQ(c, '\n');
    (void)close(pfd[0]);
}

static json_t *control(const char *request)
{
    char *resp = NULL;
    json_error_t jerr;
    json_t *j;

    ASSERT_OK(sv_control_call(state_dir, request, 2 * SEC, &resp));
    j = json_loads(resp, 0, &jerr);
    if (!j)
        T_FAIL("bad JSON response '%s': %s", resp, jerr.text);
    free(resp);
    return j;
}

static json_t *service_of(json_t *status, const char *name)
{
    json_t *svcs = json_object_get(status, "services"), *it;
    size_t i;

    json_array_foreach(
            svcs, i, it) if (streq(json_string_value(json_object_get(it, "name")), name)) return it;
    T_FAIL("service '%s' not in status", name);
}

static const char *str_field(json_t *svc, const char *key)
{
    const char *v = json_string_value(json_object_get(svc, key));
    return v ? v : "(null)";
}

static long long int_field(json_t *svc, const char *key)
{
    json_t *v = json_object_get(svc, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Polls status until service `name` has field `key` == `want` (strings) within timeout. */
static json_t *wait_state(const char *name, const char *key, const char *want, uint64_t timeout)
{
    uint64_t end = now_usec() + timeout;

    for (;;) {
        json_t *st = control("{\"cmd\":\"status\"}");
        json_t *svc = service_of(st, name);

        if (streq(str_field(svc, key), want))
            return st;
        if (now_usec() > end)
            T_FAIL("service '%s': %s is '%s', wanted '%s'", name, key, str_field(svc, key), want);
        json_decref(st);
        sleep_usec(30 * MSEC);
    }
}

static bool pid_gone(pid_t pid, uint64_t timeout)
{
    uint64_t end = now_usec() + timeout;

    while (kill(pid, 0) == 0 || errno != ESRCH) {
        if (now_usec() > end)
            return false;
        sleep_usec(10 * MSEC);
    }
    return true;
}

static pid_t read_pid_file(const char *name, uint64_t timeout)
{
    char *path = state_path(name);
    uint64_t end = now_usec() + timeout;
    struct buf b = BUF_INIT(64);
    uint64_t v = 0;

    for (;;) {
        buf_reset(&b);
        if (file_read_all(path, &b) == 0 && b.len > 1 && b.data[b.len - 1] == '\n') {
            b.data[--b.len] = '\0';
            ASSERT_OK(parse_u64(b.data, &v));
            break;
        }
        if (now_usec() > end)
            T_FAIL("no pid in '%s'", path);
        sleep_usec(20 * MSEC);
    }
    buf_release(&b);
    free(path);
    return (pid_t)v;
}

static char *read_text(const char *path)
{
    struct buf b = BUF_INIT(0);

    if (file_read_all(path, &b) < 0)
        return xstrdup("");
    return buf_detach(&b, NULL);
}

/* The file's text once it contains `needle`, or as it is when `timeout` has passed: a service
 * that is "running" has been forked, not necessarily run its first command. */
static char *read_text_with(const char *path, const char *needle, uint64_t timeout)
{
    uint64_t end = now_usec() + timeout;
    char *text;

    while (!strstr(text = read_text(path), needle) && now_usec() < end) {
        free(text);
        sleep_usec(20 * MSEC);
    }
    return text;
}

/* `down` over the socket, then the supervisor must exit 0 and remove its socket and pid. */
static void sup_down(void)
{
    json_t *r = control("{\"cmd\":\"down\"}");
    char *sock = state_path("control.sock"), *pidf = state_path("supervisor.pid");
    int status = 0;

    ASSERT_TRUE(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    ASSERT_EQ(sup_wait(10 * SEC, &status), sup_pid);
    sup_pid = -1;
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    ASSERT_TRUE(access(sock, F_OK) < 0 && errno == ENOENT);
    ASSERT_TRUE(access(pidf, F_OK) < 0 && errno == ENOENT);
    free(sock);
    free(pidf);
}

/* ===== Cases ===== */

static void test_crashing_service_is_restarted(void)
{
    struct sv_spec *s = tb_new();
    json_t *st, *svc;
    char *log;

    make_state_dir();
    tb_add(s, "crasher", "echo \"run $$\"; exit 1");
    tb_add(s, "steady", "exec sleep 100");
    sup_start(s);
    st = wait_state("crasher", "last_exit", "exit status 1", 3 * SEC);
    json_decref(st);
    /* The backoff (1s) passes, it runs again: the restart counter shows it. */
    for (uint64_t end = now_usec() + 4 * SEC;; sleep_usec(50 * MSEC)) {
        st = control("{\"cmd\":\"status\"}");
        svc = service_of(st, "crasher");
        if (int_field(svc, "restarts") >= 1)
            break;
        ASSERT_TRUE(now_usec() < end);
        json_decref(st);
    }
    ASSERT_TRUE(json_is_number(json_object_get(svc, "started_at")));
    ASSERT_TRUE(json_is_null(json_object_get(svc, "waiting_for")));
    ASSERT_STREQ(str_field(svc, "health"), "none");
    svc = service_of(st, "steady");
    ASSERT_STREQ(str_field(svc, "state"), "running");
    ASSERT_TRUE(int_field(svc, "pid") > 0);
    ASSERT_EQ(int_field(svc, "restarts"), 0);
    ASSERT_STREQ(str_field(json_object_get(st, "supervisor"), "stack"), "test");
    ASSERT_EQ(int_field(json_object_get(st, "supervisor"), "pid"), sup_pid);
    json_decref(st);

    /* Both runs wrote to the log: two different pids. */
    log = sv_log_path(state_dir, "crasher");
    for (uint64_t end = now_usec() + 3 * SEC;; sleep_usec(30 * MSEC)) {
        char *text = read_text(log);
        char *first = strstr(text, "run "), *second = first ? strstr(first + 4, "run ") : NULL;
        bool ok = first && second && strncmp(first, second, strcspn(first, "\n")) != 0;

        free(text);
        if (ok)
            break;
        ASSERT_TRUE(now_usec() < end);
    }
    sup_down();
    free(log);
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_stop_escalates_to_sigkill_for_the_group(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    json_t *st, *r;
    pid_t main_pid, grandchild;
    uint64_t t0, took;
    char *script;

    make_state_dir();
    script = xasprintf("trap '' TERM; sleep 100 & echo $! > %s/grandchild; wait", state_dir);
    svc = tb_add(s, "stubborn", script);
    svc->stop_grace_usec = 500 * MSEC;
    svc->restart = SV_RESTART_ALWAYS;
    free(script);
    sup_start(s);
    st = wait_state("stubborn", "state", "running", 3 * SEC);
    main_pid = (pid_t)int_field(service_of(st, "stubborn"), "pid");
    json_decref(st);
    grandchild = read_pid_file("grandchild", 3 * SEC);
    ASSERT_TRUE(main_pid > 0 && grandchild > 0);
    ASSERT_EQ(getpgid(grandchild), main_pid); /* one process group per service */

    t0 = now_usec();
    r = control("{\"cmd\":\"stop\",\"service\":\"stubborn\"}");
    ASSERT_TRUE(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    st = wait_state("stubborn", "state", "stopped", 5 * SEC);
    took = now_usec() - t0;
    ASSERT_GE(took, 450 * MSEC); /* SIGTERM was ignored: the grace period ran out */
    ASSERT_LE(took, 3 * SEC);
    ASSERT_STREQ(str_field(service_of(st, "stubborn"), "last_exit"), "killed by signal 9");
    ASSERT_TRUE(json_is_null(json_object_get(service_of(st, "stubborn"), "pid")));
    json_decref(st);
    ASSERT_TRUE(pid_gone(main_pid, 2 * SEC));
    ASSERT_TRUE(pid_gone(grandchild, 2 * SEC));
    /* A requested stop is not a crash: restart: always does not bring it back. */
    sleep_usec(1200 * MSEC);
    st = wait_state("stubborn", "state", "stopped", 0);
    json_decref(st);
    sup_down();
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_service_healthy_dependency_waits(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *late, *app;
    char *script, *check;
    json_t *st, *svc;

    make_state_dir();
    script = xasprintf("sleep 1; touch %s/ready; exec sleep 100", state_dir);
    check = xasprintf("test -f %s/ready", state_dir);
    late = tb_add(s, "late", script);
    tb_health_exec(late, check);
    late->health.start_period_usec = 10 * SEC;
    app = tb_add(s, "app", "exec sleep 100");
    tb_dep(app, "late", SV_DEP_HEALTHY);
    free(script);
    free(check);
    sup_start(s);

    st = wait_state("late", "state", "running", 2 * SEC);
    svc = service_of(st, "app");
    ASSERT_STREQ(str_field(svc, "state"), "waiting");
    ASSERT_STREQ(str_field(svc, "waiting_for"), "late (service_healthy)");
    ASSERT_TRUE(json_is_null(json_object_get(svc, "pid")));
    ASSERT_TRUE(json_is_null(json_object_get(svc, "started_at")));
    ASSERT_STREQ(str_field(service_of(st, "late"), "health"), "starting");
    json_decref(st);

    st = wait_state("app", "state", "running", 5 * SEC);
    ASSERT_STREQ(str_field(service_of(st, "late"), "health"), "healthy");
    ASSERT_TRUE(json_is_null(json_object_get(service_of(st, "app"), "waiting_for")));
    json_decref(st);
    sup_down();
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_completed_successfully_dependency(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    json_t *st;
    char *script;

    make_state_dir();
    script = xasprintf("echo schema > %s/init.out", state_dir);
    svc = tb_add(s, "init", script);
    svc->restart = SV_RESTART_NO;
    free(script);
    svc = tb_add(s, "badinit", "exit 3");
    svc->restart = SV_RESTART_NO;
    svc = tb_add(s, "app", "exec sleep 100");
    tb_dep(svc, "init", SV_DEP_COMPLETED);
    svc = tb_add(s, "app2", "exec sleep 100");
    tb_dep(svc, "badinit", SV_DEP_COMPLETED);
    sup_start(s);

    st = wait_state("app", "state", "running", 3 * SEC);
    ASSERT_STREQ(str_field(service_of(st, "init"), "state"), "exited");
    ASSERT_STREQ(str_field(service_of(st, "init"), "last_exit"), "exit status 0");
    json_decref(st);
    st = wait_state("badinit", "state", "failed", 3 * SEC);
    ASSERT_STREQ(str_field(service_of(st, "badinit"), "last_exit"), "exit status 3");
    /* A dependency that failed for good keeps its dependent waiting, naming it. */
    ASSERT_STREQ(str_field(service_of(st, "app2"), "state"), "waiting");
    ASSERT_STREQ(str_field(service_of(st, "app2"), "waiting_for"),
                 "badinit (service_completed_successfully)");
    json_decref(st);
    {
        char *out = state_path("init.out"), *text = read_text(out);

        ASSERT_STREQ(text, "schema\n");
        free(text);
        free(out);
    }
    sup_down();
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_restart_stop_start_commands(void)
{
    struct sv_spec *s = tb_new();
    json_t *st, *r;
    pid_t pid1, pid2;

    make_state_dir();
    tb_add(s, "svc", "exec sleep 100");
    sup_start(s);
    st = wait_state("svc", "state", "running", 3 * SEC);
    pid1 = (pid_t)int_field(service_of(st, "svc"), "pid");
    json_decref(st);
    {
        /* The log exists from the first start on, even for a silent service. */
        char *log = sv_log_path(state_dir, "svc");
        struct stat lst;

        ASSERT_EQ(stat(log, &lst), 0);
        ASSERT_EQ(lst.st_size, 0);
        free(log);
    }

    r = control("{\"cmd\":\"restart\",\"service\":\"svc\"}");
    ASSERT_TRUE(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    ASSERT_TRUE(pid_gone(pid1, 3 * SEC));
    for (uint64_t end = now_usec() + 3 * SEC;; sleep_usec(30 * MSEC)) {
        st = control("{\"cmd\":\"status\"}");
        pid2 = (pid_t)int_field(service_of(st, "svc"), "pid");
        if (pid2 > 0 && pid2 != pid1 && streq(str_field(service_of(st, "svc"), "state"), "running"))
            break;
        ASSERT_TRUE(now_usec() < end);
        json_decref(st);
    }
    ASSERT_EQ(int_field(service_of(st, "svc"), "restarts"), 1);
    json_decref(st);

    r = control("{\"cmd\":\"restart\",\"service\":\"nope\"}");
    ASSERT_TRUE(json_is_false(json_object_get(r, "ok")));
    ASSERT_STREQ(str_field(r, "error"), "unknown service 'nope'");
    json_decref(r);
    r = control("{\"cmd\":\"frobnicate\"}");
    ASSERT_TRUE(json_is_false(json_object_get(r, "ok")));
    json_decref(r);
    r = control("not json");
    ASSERT_TRUE(json_is_false(json_object_get(r, "ok")));
    json_decref(r);

    r = control("{\"cmd\":\"stop\",\"service\":\"svc\"}");
    json_decref(r);
    st = wait_state("svc", "state", "stopped", 3 * SEC);
    json_decref(st);
    ASSERT_TRUE(pid_gone(pid2, 2 * SEC));
    r = control("{\"cmd\":\"start\",\"service\":\"svc\"}");
    ASSERT_TRUE(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    st = wait_state("svc", "state", "running", 3 * SEC);
    ASSERT_EQ(int_field(service_of(st, "svc"), "restarts"), 2);
    json_decref(st);
    sup_down();
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_down_stops_in_reverse_order_and_leaves_nothing(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    pid_t pids[8], grandchild;
    size_t n = 0;
    json_t *st, *it;
    size_t i;
    char *script, *order_path, *order;

    make_state_dir();
    order_path = state_path("order");
    /* Each writes its pid once its trap is set: a stop before that would kill it silently. */
    script = xasprintf("trap 'echo db >> %s; exit 0' TERM; echo $$ > %s/db.pid; "
                       "while :; do sleep 0.05; done",
                       order_path, state_dir);
    tb_add(s, "db", script);
    free(script);
    script = xasprintf("trap 'sleep 0.3; echo app >> %s; exit 0' TERM; echo $$ > %s/app.pid; "
                       "while :; do sleep 0.05; done",
                       order_path, state_dir);
    svc = tb_add(s, "app", script);
    tb_dep(svc, "db", SV_DEP_STARTED);
    free(script);
    script = xasprintf("sleep 100 & echo $! > %s/grandchild; exec sleep 100", state_dir);
    tb_add(s, "forker", script);
    free(script);
    tb_add(s, "crasher", "exit 1");
    sup_start(s);

    st = wait_state("app", "state", "running", 3 * SEC);
    json_decref(st);
    st = wait_state("forker", "state", "running", 3 * SEC);
    json_array_foreach(json_object_get(st, "services"), i, it)
    {
        if (int_field(it, "pid") > 0)
            pids[n++] = (pid_t)int_field(it, "pid");
    }
    json_decref(st);
    grandchild = read_pid_file("grandchild", 3 * SEC);
    pids[n++] = grandchild;
    ASSERT_TRUE(read_pid_file("db.pid", 3 * SEC) > 0);
    ASSERT_TRUE(read_pid_file("app.pid", 3 * SEC) > 0);
    ASSERT_GE(n, 4);

    sup_down();
    for (size_t k = 0; k < n; k++)
        ASSERT_TRUE(pid_gone(pids[k], 2 * SEC));
    /* The dependent stopped (slowly) before its dependency was asked to. */
    order = read_text(order_path);
    ASSERT_STREQ(order, "app\ndb\n");
    free(order);
    free(order_path);
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

/* Patroni runs the postmaster in a session of its own: when the main process is gone, what
 * it left outside its process group is inherited by the supervisor and stopped at the end. */
static void test_child_in_own_session_is_stopped_at_down(void)
{
    struct sv_spec *s = tb_new();
    pid_t orphan, main_pid;
    json_t *st;
    char *script;

    make_state_dir();
    script = xasprintf("setsid sleep 100 & echo $! > %s/orphan; exec sleep 100", state_dir);
    tb_add(s, "detacher", script);
    free(script);
    sup_start(s);
    st = wait_state("detacher", "state", "running", 3 * SEC);
    main_pid = (pid_t)int_field(service_of(st, "detacher"), "pid");
    json_decref(st);
    orphan = read_pid_file("orphan", 3 * SEC);
    ASSERT_TRUE(orphan > 0 && orphan != main_pid);
    for (int i = 0; i < 100 && getpgid(orphan) == getpgid(main_pid); i++)
        sleep_usec(10 * MSEC); /* until setsid(1) has run */
    ASSERT_NE(getpgid(orphan), getpgid(main_pid));

    sup_down();
    ASSERT_TRUE(pid_gone(main_pid, 2 * SEC));
    ASSERT_TRUE(pid_gone(orphan, 2 * SEC));
    tb_free(s);
    cleanup();
}

/* When the main process ends, what it left in sessions of its own (PostgreSQL's postmaster and
 * backends) is killed and verified gone before the service starts again: found by the
 * UT_SERVICE mark and, for a child whose environment was overwritten, by ancestry. */
static void test_run_end_kills_the_whole_tree_before_restart(void)
{
    struct sv_spec *s = tb_new();
    pid_t detached, grandchild, main_pid;
    json_t *st;
    char *script, *text, *log;

    make_state_dir();
    /* A detached child (own session) that starts a grandchild whose environment is empty
     * (env -i: the mark is gone, as PostgreSQL's backends overwrite theirs). */
    script = xasprintf("d=%s; if [ ! -e $d/ran ]; then touch $d/ran; "
                       "setsid sh -c \"env -i sleep 100 & echo \\$! > $d/grandchild; "
                       "exec sleep 100\" & echo $! > $d/detached; sleep 0.5; exit 3; fi; "
                       "exec sleep 100",
                       state_dir);
    tb_add(s, "leaver", script);
    free(script);
    sup_start(s);
    detached = read_pid_file("detached", 3 * SEC);
    grandchild = read_pid_file("grandchild", 3 * SEC);
    ASSERT_TRUE(detached > 0 && grandchild > 0);
    /* The first run exits 3: its detached child and the unmarked grandchild are killed. */
    ASSERT_TRUE(pid_gone(detached, 3 * SEC));
    ASSERT_TRUE(pid_gone(grandchild, 3 * SEC));
    st = wait_state("leaver", "state", "running", 5 * SEC);
    main_pid = (pid_t)int_field(service_of(st, "leaver"), "pid");
    ASSERT_TRUE(main_pid > 0);
    ASSERT_EQ(int_field(service_of(st, "leaver"), "restarts"), 1);
    json_decref(st);
    log = state_path("supervisor.log");
    text = read_text(log);
    ASSERT_CONTAINS(text, "service 'leaver': every process of its last run is gone");
    free(text);
    free(log);
    tb_free(s);
    cleanup();
}

/* A main process stopped (SIGSTOP) longer than freeze_after is fenced: SIGKILL to the tree,
 * then a restart by policy. */
static void test_frozen_service_is_fenced(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    pid_t first, child;
    json_t *st;
    char *script, *log, *text;

    make_state_dir();
    script = xasprintf("d=%s; setsid sleep 100 & echo $! > $d/child.$$; exec sleep 100", state_dir);
    svc = tb_add(s, "freezer", script);
    free(script);
    svc->restart = SV_RESTART_ALWAYS;
    svc->freeze_after_usec = 200 * MSEC;
    sup_start(s);
    st = wait_state("freezer", "state", "running", 3 * SEC);
    first = (pid_t)int_field(service_of(st, "freezer"), "pid");
    json_decref(st);
    {
        char name[32];

        (void)snprintf(name, sizeof name, "child.%d", (int)first);
        child = read_pid_file(name, 3 * SEC);
    }
    ASSERT_EQ(kill(first, SIGSTOP), 0);
    ASSERT_TRUE(pid_gone(first, 3 * SEC));
    ASSERT_TRUE(pid_gone(child, 3 * SEC));
    for (uint64_t end = now_usec() + 5 * SEC;;) {
        st = control("{\"cmd\":\"status\"}");
        if (int_field(service_of(st, "freezer"), "pid") > 0 &&
            int_field(service_of(st, "freezer"), "pid") != first)
            break;
        json_decref(st);
        if (now_usec() > end)
            T_FAIL("the fenced service was not restarted");
        sleep_usec(50 * MSEC);
    }
    json_decref(st);
    log = state_path("supervisor.log");
    text = read_text(log);
    ASSERT_CONTAINS(text, "fencing service 'freezer': its main process");
    ASSERT_CONTAINS(text, "is stopped for");
    free(text);
    free(log);
    tb_free(s);
    cleanup();
}

/* A liveness probe failing `retries` times in a row after start_period fences the service. */
static void test_failed_liveness_fences(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    const char *argv[] = { "/bin/sh", "-c", "exit 1", NULL };
    pid_t first;
    json_t *st;
    char *log, *text;

    make_state_dir();
    svc = tb_add(s, "hung", "exec sleep 100");
    svc->restart = SV_RESTART_ALWAYS;
    svc->liveness.present = true;
    svc->liveness.probe = (struct probe_spec)PROBE_SPEC_INIT;
    svc->liveness.probe.type = PROBE_EXEC;
    svc->liveness.probe.argv = strv(argv);
    svc->liveness.interval_usec = 100 * MSEC;
    svc->liveness.timeout_usec = 1 * SEC;
    svc->liveness.retries = 3;
    sup_start(s);
    st = wait_state("hung", "state", "running", 3 * SEC);
    first = (pid_t)int_field(service_of(st, "hung"), "pid");
    json_decref(st);
    ASSERT_TRUE(pid_gone(first, 5 * SEC));
    log = state_path("supervisor.log");
    text = read_text(log);
    ASSERT_CONTAINS(text, "fencing service 'hung': liveness failed 3 time(s) in a row");
    free(text);
    free(log);
    tb_free(s);
    cleanup();
}

/* ===== A fake etcd (v3 JSON API: kv/range, kv/txn) and Patroni REST API (/liveness) ===== */

#define FAKE_LEADER_KEY   "/svc/leader"
#define FAKE_HANDOVER_KEY "/svc/failover"

static char *b64(const char *s)
{
    struct buf b = BUF_INIT(0);

    ASSERT_OK(buf_append_base64(&b, s, strlen(s)));
    return buf_detach(&b, NULL);
}

/* Writes text to STATE/name atomically (the fake server reads it per request). */
static void put_file(const char *name, const char *text)
{
    char *path = state_path(name), *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ASSERT_TRUE(fd >= 0);
    ASSERT_OK(fd_write_all(fd, text, strlen(text)));
    (void)close(fd);
    ASSERT_EQ(rename(tmp, path), 0);
    free(tmp);
    free(path);
}

static bool file_exists(const char *name)
{
    char *path = state_path(name);
    bool r = access(path, F_OK) == 0;

    free(path);
    return r;
}

static void fake_reply(int c, const char *body)
{
    char head[128];

    (void)snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   strlen(body));
    (void)!write(c, head, strlen(head));
    (void)!write(c, body, strlen(body));
}

/* One request on c.  The state dir steers the answers: file `held` holds the leader key's
 * value (base64, as etcd shows it; absent = no key), `handover` the handover key's, `hang`
 * makes /liveness hang; a successful compare-and-delete removes `held` and appends to
 * `deleted`. */
static void fake_serve(int c, const char *handover_b64)
{
    char req[8192], *body, *path = NULL, *text;
    struct buf v = BUF_INIT(4096);
    size_t len = srv_http_read_request(c, req, sizeof req);

    body = strstr(req, "\r\n\r\n");
    body = body ? body + 4 : req + len;
    if (str_startswith(req, "GET /liveness")) {
        if (file_exists("hang"))
            srv__sleep_ms(3000);
        else
            fake_reply(c, "");
        return;
    }
    if (strstr(req, "POST /v3/kv/txn")) {
        path = state_path("held");
        if (unlink(path) == 0) {
            put_file("deleted", "1\n");
            fake_reply(c, "{\"succeeded\":true}");
        } else {
            fake_reply(c, "{\"succeeded\":false}");
        }
        free(path);
        return;
    }
    path = state_path(strstr(body, handover_b64) ? "handover" : "held");
    if (file_read_all(path, &v) == 0 && v.len > 0) {
        text = xasprintf("{\"kvs\":[{\"value\":\"%s\"}],\"count\":\"1\"}", v.data);
        fake_reply(c, text);
        free(text);
    } else {
        fake_reply(c, "{}");
    }
    buf_release(&v);
    free(path);
}

/* Forks the fake server (one child per connection); returns its port. */
static uint16_t fake_dcs_start(void)
{
    char *handover_b64 = b64(FAKE_HANDOVER_KEY);
    uint16_t port = 0;
    int lfd = srv_listen(0, 64, &port);

    ASSERT_OK(lfd);
    fake_pid = fork();
    ASSERT_TRUE(fake_pid >= 0);
    if (fake_pid > 0) {
        (void)close(lfd);
        free(handover_b64);
        return port;
    }
    in_supervisor = true; /* not the test: no cleanup() at exit */
    (void)signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(lfd, NULL, NULL);

        if (c < 0)
            continue;
        if (fork() == 0) {
            fake_serve(c, handover_b64);
            _exit(0);
        }
        (void)close(c);
    }
}

/* A Patroni-like node: a lock in the fake etcd, a liveness probe on the fake REST API, and a
 * watched "postmaster" (STATE/pm.pid) that the main process leaves to the supervisor like
 * Patroni does (a clean exit on SIGTERM, as a fast shutdown).  extra: more shell run before
 * the main process execs sleep. */
static struct sv_spec *node_spec(uint16_t port, const char *extra, bool handover)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    char *script;

    script = xasprintf("d=%s; pm() { (setsid sh -c \"trap 'exit 0' TERM; echo \\$\\$ > $d/$1.tmp; "
                       "mv $d/$1.tmp $d/$1; while :; do sleep 0.05; done\" &); }; "
                       "pm pm.pid; %s exec sleep 100",
                       state_dir, extra);
    svc = tb_add(s, "n1", script);
    free(script);
    svc->restart = SV_RESTART_ALWAYS;
    svc->liveness.present = true;
    svc->liveness.probe = (struct probe_spec)PROBE_SPEC_INIT;
    svc->liveness.probe.type = PROBE_HTTP;
    svc->liveness.probe.host = xstrdup("127.0.0.1");
    svc->liveness.probe.port = port;
    svc->liveness.probe.path = xstrdup("/liveness");
    svc->liveness.interval_usec = 200 * MSEC;
    svc->liveness.timeout_usec = 1 * SEC;
    svc->liveness.retries = 1000; /* only the lock check may fence here */
    svc->lock = (struct sv_lock){ .present = true,
                                  .host = xstrdup("127.0.0.1"),
                                  .port = port,
                                  .key = xstrdup(FAKE_LEADER_KEY),
                                  .value = xstrdup("n1"),
                                  .pidfile = state_path("pm.pid"),
                                  .handover_key = handover ? xstrdup(FAKE_HANDOVER_KEY) : NULL };
    return s;
}

/* The node runs and its watched process is known to the supervisor (its tree scans run every
 * second); returns the main pid, *ret_pm the watched pid. */
static pid_t node_up(pid_t *ret_pm)
{
    json_t *st = wait_state("n1", "state", "running", 3 * SEC);
    pid_t main_pid = (pid_t)int_field(service_of(st, "n1"), "pid");

    json_decref(st);
    *ret_pm = read_pid_file("pm.pid", 3 * SEC);
    ASSERT_TRUE(main_pid > 0 && *ret_pm > 0);
    sleep_usec(1300 * MSEC);
    return main_pid;
}

/* A fresh state dir, the fake etcd and REST API with the leader key held by n1, and the node
 * of node_spec(extra, handover) started and up: returns the main pid, *ret_pm the watched
 * one, *ret_s the spec (tb_free() it). */
static pid_t node_start(const char *extra, bool handover, struct sv_spec **ret_s, pid_t *ret_pm)
{
    char *held;
    uint16_t port;

    make_state_dir();
    port = fake_dcs_start();
    held = b64("n1");
    put_file("held", held);
    free(held);
    *ret_s = node_spec(port, extra, handover);
    sup_start(*ret_s);
    return node_up(ret_pm);
}

static void assert_log(const char *fragment, bool present)
{
    char *log = state_path("supervisor.log"), *text = read_text(log);

    if (present)
        ASSERT_CONTAINS(text, fragment);
    else if (strstr(text, fragment))
        T_FAIL("supervisor.log has '%s'", fragment);
    free(text);
    free(log);
}

/* Other processes the service leaves to the supervisor (pgBackRest's detached archive-async
 * worker) are reaped and ignored, even killed by a signal while the key is held; a crash of
 * the watched process is fenced. */
static void test_only_the_watched_process_fences(void)
{
    struct sv_spec *s;
    char *fragment;
    pid_t pm, main_pid = node_start("(setsid sh -c 'sleep 1.6; kill -9 $$' &);", false, &s, &pm);

    sleep_usec(800 * MSEC); /* the decoy died by SIGKILL 1.6 s after the start */
    ASSERT_EQ(kill(main_pid, 0), 0);
    assert_log("killed by signal 9): not a service's main or watched process", true);
    assert_log("fencing service 'n1'", false);
    ASSERT_EQ(kill(pm, SIGKILL), 0);
    ASSERT_TRUE(pid_gone(main_pid, 3 * SEC));
    fragment = xasprintf("fencing service 'n1': its watched process %d ended (killed by signal 9) "
                         "while it holds " FAKE_LEADER_KEY,
                         (int)pm);
    assert_log(fragment, true);
    for (uint64_t end = now_usec() + 3 * SEC; file_exists("held");) {
        if (now_usec() > end)
            T_FAIL("the fenced node's key was not released");
        sleep_usec(20 * MSEC);
    }
    free(fragment);
    tb_free(s);
    cleanup();
}

/* A clean exit of the watched process while the main process answers its liveness probe is
 * the service's own doing (Patroni demoting or restarting PostgreSQL): not fenced, the key
 * kept; with a handover under way that names the node, the key is released at once. */
static void test_clean_exit_answered_is_not_fenced(void)
{
    struct sv_spec *s;
    char *handover = b64("{\"leader\":\"n1\",\"member\":null}");
    pid_t pm, pm2, main_pid = node_start("pm pm2.pid;", true, &s, &pm);

    pm2 = read_pid_file("pm2.pid", 3 * SEC);
    /* a restart: no handover key */
    ASSERT_EQ(kill(pm, SIGTERM), 0);
    ASSERT_TRUE(pid_gone(pm, 2 * SEC));
    sleep_usec(500 * MSEC);
    ASSERT_EQ(kill(main_pid, 0), 0);
    ASSERT_TRUE(file_exists("held"));
    assert_log("ended (exit status 0) while it holds " FAKE_LEADER_KEY
               ", but its main process answers its liveness probe",
               true);
    assert_log("fencing service 'n1'", false);
    /* a switchover: the next postmaster exits while the handover key names the node */
    {
        char pid[32];

        (void)snprintf(pid, sizeof pid, "%d\n", (int)pm2);
        put_file("pm.pid", pid);
    }
    put_file("handover", handover);
    sleep_usec(1300 * MSEC); /* a tree scan reads the pid file */
    ASSERT_EQ(kill(pm2, SIGTERM), 0);
    for (uint64_t end = now_usec() + 3 * SEC; file_exists("held");) {
        if (now_usec() > end)
            T_FAIL("the key was not released for the handover");
        sleep_usec(20 * MSEC);
    }
    ASSERT_EQ(kill(main_pid, 0), 0);
    assert_log("released its lock " FAKE_LEADER_KEY " = 'n1' in etcd for the handover", true);
    assert_log("fencing service 'n1'", false);
    free(handover);
    tb_free(s);
    cleanup();
}

/* A clean exit that the main process does not answer for (Patroni shutting down has stopped
 * its REST API first) is fenced as before, as is one while the key is held by nobody else. */
static void test_clean_exit_unanswered_is_fenced(void)
{
    struct sv_spec *s;
    pid_t pm, main_pid = node_start("", false, &s, &pm);

    put_file("hang", "1\n");
    ASSERT_EQ(kill(pm, SIGTERM), 0);
    ASSERT_TRUE(pid_gone(main_pid, 3 * SEC));
    assert_log("ended (exit status 0) while it holds " FAKE_LEADER_KEY
               ", and its main process did not answer its liveness probe; SIGKILL",
               true);
    tb_free(s);
    cleanup();
}

static void test_log_file_and_rotation(void)
{
    struct sv_spec *s = tb_new();
    char *log, *log1, *log2, *log3, *text;
    struct stat st0, st1, st2;

    make_state_dir();
    s->log_max_bytes = 1000;
    s->log_keep = 2;
    /* 35 lines of 100 bytes: 3500 bytes = .log.2 (dropped first 1000 rotate out), .1, .log */
    tb_add(s, "chatty",
           "i=0; while [ $i -lt 35 ]; do "
           "echo 0123456789012345678901234567890123456789012345678901234567890123456789012345678"
           "90123456789012345678; i=$((i+1)); done; exec sleep 100");
    sup_start(s);
    log = sv_log_path(state_dir, "chatty");
    log1 = xasprintf("%s.1", log);
    log2 = xasprintf("%s.2", log);
    log3 = xasprintf("%s.3", log);
    for (uint64_t end = now_usec() + 3 * SEC;; sleep_usec(30 * MSEC)) {
        if (stat(log, &st0) == 0 && st0.st_size == 500 && stat(log1, &st1) == 0)
            break;
        ASSERT_TRUE(now_usec() < end);
    }
    ASSERT_EQ(stat(log2, &st2), 0);
    ASSERT_EQ(st1.st_size, 1000);
    ASSERT_EQ(st2.st_size, 1000);
    ASSERT_TRUE(stat(log3, &st2) < 0 && errno == ENOENT);
    ASSERT_EQ(st0.st_mode & 0777, 0640);
    text = read_text(log);
    ASSERT_EQ(strlen(text), 500);
    ASSERT_TRUE(str_endswith(text, "45678\n"));
    free(text);
    sup_down();
    free(log);
    free(log1);
    free(log2);
    free(log3);
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_second_supervisor_is_busy(void)
{
    struct sv_spec *s = tb_new();
    struct sv_options opts;
    char *pidf, *text;

    make_state_dir();
    tb_add(s, "svc", "exec sleep 100");
    sup_start(s);
    opts = (struct sv_options){ .state_dir = state_dir, .ready_fd = -1 };
    ASSERT_ERRNO(sv_run(s, &opts), -EBUSY);
    /* The running supervisor is untouched: its pid file and socket still answer. */
    pidf = state_path("supervisor.pid");
    text = read_text(pidf);
    ASSERT_EQ(strtol(text, NULL, 10), sup_pid);
    free(text);
    free(pidf);
    json_decref(wait_state("svc", "state", "running", 3 * SEC));
    {
        char *sock = state_path("control.sock"), *big = xmalloc(6000), *resp = NULL;
        struct stat sst;

        ASSERT_EQ(stat(sock, &sst), 0);
        ASSERT_TRUE(S_ISSOCK(sst.st_mode));
        ASSERT_EQ(sst.st_mode & 0777, 0600);
        /* Request lines are bounded: a huge one is refused, the supervisor carries on. */
        memset(big, ' ', 5999);
        big[0] = '{';
        big[5997] = '}';
        big[5998] = '\0';
        ASSERT_OK(sv_control_call(state_dir, big, 2 * SEC, &resp));
        ASSERT_STREQ(resp, "{\"ok\":false,\"error\":\"request line too long\"}");
        free(resp);
        free(big);
        free(sock);
    }
    json_decref(wait_state("svc", "state", "running", 0));
    sup_down();
    /* With the supervisor gone, the client says so. */
    {
        char *resp = NULL;

        ASSERT_ERRNO(sv_control_call(state_dir, "{\"cmd\":\"status\"}", SEC, &resp), -ENOENT);
    }
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_exec_failure_is_reported_once(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    json_t *st;
    char *log, *text, *first;

    make_state_dir();
    svc = tb_add(s, "ghost", "unused");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("/nonexistent/ghostd");
    svc->restart = SV_RESTART_NO;
    sup_start(s);
    st = wait_state("ghost", "state", "failed", 3 * SEC);
    ASSERT_STREQ(str_field(service_of(st, "ghost"), "last_exit"), "exit status 127");
    json_decref(st);
    sup_down();
    log = state_path("supervisor.log");
    text = read_text(log);
    first = strstr(text, "exec '/nonexistent/ghostd' failed: No such file or directory");
    ASSERT_TRUE(first != NULL);
    ASSERT_TRUE(strstr(first + 1, "exec '/nonexistent/ghostd' failed") == NULL);
    free(text);
    free(log);
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

/* netns: a missing namespace fails the start with a clear reason; as root, a service in a
 * fresh namespace (ip netns add) sees only its loopback interface. */
/* The namespace a test made, deleted at exit even when an assertion fails first (T_FAIL
 * exits); only by the process that made it, not by a forked child that exits. */
static char made_netns[64];
static pid_t made_netns_owner;

static void delete_made_netns(void)
{
    char cmd[128];

    if (!made_netns[0] || getpid() != made_netns_owner)
        return;
    (void)snprintf(cmd, sizeof cmd, "/usr/sbin/ip netns del %s", made_netns);
    if (system(cmd) == 0)
        made_netns[0] = '\0';
}

static void test_netns(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    char *log = NULL, *text = NULL, ns[64], cmd[128];
    bool can = geteuid() == 0 && access("/usr/sbin/ip", X_OK) == 0;
    json_t *st;

    make_state_dir();
    svc = tb_add(s, "lost", "exec sleep 100");
    svc->netns = xstrdup("ut-no-such-netns");
    svc->restart = SV_RESTART_NO;
    (void)snprintf(ns, sizeof ns, "ut-sv-test-%d", (int)getpid());
    if (can) {
        (void)snprintf(cmd, sizeof cmd, "/usr/sbin/ip netns add %s", ns);
        can = system(cmd) == 0;
    }
    if (can) {
        (void)snprintf(made_netns, sizeof made_netns, "%s", ns);
        made_netns_owner = getpid();
        (void)atexit(delete_made_netns);
    }
    if (can) {
        svc = tb_add(s, "inside", "cat /proc/net/dev; exec sleep 100");
        svc->netns = xstrdup(ns);
    }
    sup_start(s);
    st = wait_state("lost", "state", "failed", 3 * SEC);
    json_decref(st);
    if (can) {
        json_decref(wait_state("inside", "state", "running", 3 * SEC));
        log = sv_log_path(state_dir, "inside");
        text = read_text_with(log, "lo:", 5 * SEC);
    }
    sup_down();
    if (can) {
        ASSERT_CONTAINS(text, "lo:");
        ASSERT_TRUE(strstr(text, "eth0:") == NULL && strstr(text, "ens") == NULL);
        free(text);
        free(log);
    }
    log = state_path("supervisor.log");
    text = read_text(log);
    ASSERT_CONTAINS(text, "service 'lost': entering its network namespace failed: No such file");
    free(text);
    free(log);
    if (can) {
        delete_made_netns();
        ASSERT_TRUE(made_netns[0] == '\0');
    }
    tb_free(s);
    cleanup();
}

static void test_environment_user_and_working_dir(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    const char *env[] = { "LANG=en_US.UTF-8", "EXTRA=1", NULL };
    char *log, *text;
    bool root = geteuid() == 0;
    int leak[2];

    make_state_dir();
    svc = tb_add(s, "envy",
                 "echo \"uid=$(id -u) gid=$(id -g) cwd=$(pwd)\"; echo \"PATH=$PATH\"; "
                 "echo \"LANG=$LANG EXTRA=$EXTRA HOME=$HOME USER=$USER\"; "
                 "echo \"fds=$(ls /proc/$$/fd | tr '\\n' ' ')\"; "
                 "echo \"stdin=$(cat | wc -c)\"; exec sleep 100");
    strv_free(svc->env);
    svc->env = strv(env);
    svc->working_dir = xstrdup("/tmp");
    if (root)
        svc->user = xstrdup("nobody"); /* privileges are dropped only by a root supervisor */
    /* A pipe without O_CLOEXEC, as libraries in other threads make them (librdkafka's): the
     * supervisor inherits it, its services must not. */
    ASSERT_EQ(pipe(leak), 0);
    sup_start(s);
    json_decref(wait_state("envy", "state", "running", 3 * SEC));
    log = sv_log_path(state_dir, "envy");
    text = read_text_with(log, "stdin=", 3 * SEC);
    ASSERT_CONTAINS(text, "stdin=");
    ASSERT_CONTAINS(text, "cwd=/tmp\n");
    ASSERT_CONTAINS(text, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    ASSERT_CONTAINS(text, "LANG=en_US.UTF-8 EXTRA=1 HOME="); /* the service's env wins */
    ASSERT_CONTAINS(text, "stdin=0\n");
    ASSERT_CONTAINS(text, "fds=0 1 2 3 \n"); /* 3: the shell's pipe from $(...) */
    if (root) {
        ASSERT_CONTAINS(text, "uid=65534 gid=65534 ");
        ASSERT_CONTAINS(text, "HOME=/nonexistent USER=nobody\n");
    }
    free(text);
    free(log);
    sup_down();
    (void)close(leak[0]);
    (void)close(leak[1]);
    tb_free(s);
    cleanup();
}

static void test_sigterm_stops_and_supervisor_death_kills_services(void)
{
    struct sv_spec *s = tb_new();
    json_t *st;
    pid_t svc_pid, p;
    int status = 0;

    /* Orphans come to this process, not to a PID 1 that may never reap them. */
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    make_state_dir();
    tb_add(s, "svc", "exec sleep 100");
    sup_start(s);
    st = wait_state("svc", "state", "running", 3 * SEC);
    svc_pid = (pid_t)int_field(service_of(st, "svc"), "pid");
    json_decref(st);
    ASSERT_EQ(kill(sup_pid, SIGTERM), 0);
    ASSERT_EQ(sup_wait(5 * SEC, &status), sup_pid);
    sup_pid = -1;
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_TRUE(pid_gone(svc_pid, 2 * SEC));

    /* A supervisor killed outright: PR_SET_PDEATHSIG sends SIGTERM to its services. */
    sup_start(s);
    st = wait_state("svc", "state", "running", 3 * SEC);
    svc_pid = (pid_t)int_field(service_of(st, "svc"), "pid");
    json_decref(st);
    ASSERT_EQ(kill(sup_pid, SIGKILL), 0);
    ASSERT_EQ(sup_wait(5 * SEC, &status), sup_pid);
    sup_pid = -1;
    for (uint64_t end = now_usec() + 3 * SEC;; sleep_usec(10 * MSEC)) {
        p = waitpid(svc_pid, &status, WNOHANG);
        if (p == svc_pid)
            break;
        ASSERT_TRUE(now_usec() < end);
    }
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGTERM);
    tb_free(s);
    cleanup();
}

static void test_preflight(void)
{
    struct sv_spec *s = tb_new();
    struct sv_service *svc;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof sa;
    struct err e = ERR_INIT;
    char want[128];
    int fd;

    svc = tb_add(s, "redis1", "exec sleep 100");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("sh"); /* found on the default PATH */
    ASSERT_OK(sv_preflight(s, &e));

    /* A port somebody listens on. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_TRUE(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    svc->ports = xcalloc(1, sizeof(uint16_t));
    svc->ports[0] = ntohs(sa.sin_port);
    svc->n_ports = 1;
    ASSERT_ERRNO(sv_preflight(s, &e), -EADDRINUSE);
    snprintf(want, sizeof want, "port %u of service 'redis1' is already in use",
             (unsigned)svc->ports[0]);
    ASSERT_STREQ(e.msg, want);
    (void)close(fd);
    ASSERT_OK(sv_preflight(s, &e)); /* free again once the listener is gone */

    /* A missing binary names the Debian package to install. */
    svc = tb_add(s, "pg1", "unused");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("/usr/bin/patroni-not-installed");
    svc->package = xstrdup("patroni");
    ASSERT_ERRNO(sv_preflight(s, &e), -ENOENT);
    ASSERT_STREQ(e.msg, "service 'pg1': '/usr/bin/patroni-not-installed' not found (install the "
                        "Debian package 'patroni')");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("no-such-command-anywhere");
    free(svc->package);
    svc->package = NULL;
    ASSERT_ERRNO(sv_preflight(s, &e), -ENOENT);
    ASSERT_STREQ(e.msg, "service 'pg1': 'no-such-command-anywhere' not found");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("/etc/passwd"); /* exists, not executable */
    ASSERT_ERRNO(sv_preflight(s, &e), -ENOENT);
    ASSERT_CONTAINS(e.msg, "is not an executable file");
    free(svc->argv[0]);
    svc->argv[0] = xstrdup("/bin/sh");

    /* An unknown user. */
    svc->user = xstrdup("no-such-user-ut");
    ASSERT_ERRNO(sv_preflight(s, &e), -EINVAL);
    ASSERT_STREQ(e.msg, "service 'pg1': user 'no-such-user-ut' does not exist");
    free(svc->user);
    svc->user = NULL;

    /* The same port declared by two services. */
    svc->ports = xcalloc(1, sizeof(uint16_t));
    svc->ports[0] = s->services[0].ports[0];
    svc->n_ports = 1;
    ASSERT_ERRNO(sv_preflight(s, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "declared by both service 'redis1' and service 'pg1'");
    tb_free(s);
    cleanup(); /* the harness ends a passing case with _exit(), which skips atexit() */
}

static void test_control_client_without_supervisor(void)
{
    char *resp = NULL;
    char long_dir[200];

    make_state_dir();
    ASSERT_ERRNO(sv_control_call(state_dir, "{\"cmd\":\"status\"}", SEC, &resp), -ENOENT);
    memset(long_dir, 'a', sizeof long_dir - 1);
    long_dir[0] = '/';
    long_dir[sizeof long_dir - 1] = '\0';
    ASSERT_ERRNO(sv_control_call(long_dir, "{}", SEC, &resp), -ENAMETOOLONG);
    ASSERT_TRUE(resp == NULL);
    cleanup();
}

T_MAIN(T_CASE(test_crashing_service_is_restarted),
       T_CASE(test_stop_escalates_to_sigkill_for_the_group),
       T_CASE(test_service_healthy_dependency_waits),
       T_CASE(test_completed_successfully_dependency), T_CASE(test_restart_stop_start_commands),
       T_CASE(test_down_stops_in_reverse_order_and_leaves_nothing),
       T_CASE(test_child_in_own_session_is_stopped_at_down),
       T_CASE(test_run_end_kills_the_whole_tree_before_restart),
       T_CASE(test_frozen_service_is_fenced), T_CASE(test_failed_liveness_fences),
       T_CASE(test_only_the_watched_process_fences), T_CASE(test_clean_exit_answered_is_not_fenced),
       T_CASE(test_clean_exit_unanswered_is_fenced), T_CASE(test_log_file_and_rotation),
       T_CASE(test_second_supervisor_is_busy), T_CASE(test_exec_failure_is_reported_once),
       T_CASE(test_environment_user_and_working_dir), T_CASE(test_netns),
       T_CASE(test_sigterm_stops_and_supervisor_death_kills_services), T_CASE(test_preflight),
       T_CASE(test_control_client_without_supervisor))
