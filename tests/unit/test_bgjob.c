/* SPDX-License-Identifier: MIT */
/* core/bgjob: a call that returns in time, one its starter abandons (the thread must free the
 * argument later, and write to no closed pipe), the fd that tells the event loop, and the
 * thread's signal mask.  Under ASan a leak or a use after free of the argument fails it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/bgjob.h"
#include "core/str.h"
#include "core/time.h"
#include "t.h"

/* A gate the test opens, and a count of freed arguments (the test's side waits for it). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static unsigned n_freed;

struct call {
    bool wait_for_gate;
    int result;
    bool signals_blocked; /* SIGTERM, SIGCHLD, SIGINT and SIGHUP blocked in the thread */
    char *owned;          /* freed by call_free, so ASan sees a leak if it never runs */
};

static void call_run(void *arg)
{
    struct call *c = arg;
    sigset_t mask;

    (void)pthread_sigmask(SIG_SETMASK, NULL, &mask);
    c->signals_blocked = sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGCHLD) == 1 &&
                         sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGHUP) == 1;
    (void)pthread_mutex_lock(&lock);
    while (c->wait_for_gate && !gate_open)
        (void)pthread_cond_wait(&cond, &lock);
    (void)pthread_mutex_unlock(&lock);
    c->result = 42;
}

static void call_free(void *arg)
{
    struct call *c = arg;

    free(c->owned);
    free(c);
    (void)pthread_mutex_lock(&lock);
    n_freed++;
    (void)pthread_cond_broadcast(&cond);
    (void)pthread_mutex_unlock(&lock);
}

static struct call *call_new(bool wait_for_gate)
{
    struct call *c = calloc(1, sizeof *c);

    ASSERT_TRUE(c != NULL);
    c->wait_for_gate = wait_for_gate;
    c->owned = strdup("argument");
    return c;
}

static void gate_set(bool open)
{
    (void)pthread_mutex_lock(&lock);
    gate_open = open;
    (void)pthread_cond_broadcast(&cond);
    (void)pthread_mutex_unlock(&lock);
}

/* Waits (10 s at most) until `want` arguments were freed in all. */
static bool freed_reaches(unsigned want)
{
    uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;
    bool ok;

    (void)pthread_mutex_lock(&lock);
    while (n_freed < want && now_usec() < deadline) {
        (void)pthread_mutex_unlock(&lock);
        (void)usleep(1000);
        (void)pthread_mutex_lock(&lock);
    }
    ok = n_freed >= want;
    (void)pthread_mutex_unlock(&lock);
    return ok;
}

static unsigned freed_now(void)
{
    unsigned n;

    (void)pthread_mutex_lock(&lock);
    n = n_freed;
    (void)pthread_mutex_unlock(&lock);
    return n;
}

/* Returns in time: wait says done, the result is there, the thread had every signal blocked,
 * and release frees the argument. */
static void test_done_in_time(void)
{
    struct call *c = call_new(false);
    struct bgjob *j = NULL;
    unsigned before = freed_now();

    ASSERT_OK(bgjob_start(call_run, c, call_free, &j, NULL));
    ASSERT_TRUE(j != NULL);
    ASSERT_TRUE(bgjob_wait(j, now_usec() + 10 * USEC_PER_SEC));
    ASSERT_TRUE(bgjob_done(j));
    ASSERT_EQ(c->result, 42);
    ASSERT_TRUE(c->signals_blocked);
    ASSERT_EQ(freed_now(), before);
    j = bgjob_release(j);
    ASSERT_TRUE(j == NULL);
    ASSERT_EQ(freed_now(), before + 1);
    ASSERT_TRUE(bgjob_release(NULL) == NULL);
}

/* Still running at the deadline: wait says so, the starter releases it, and the thread frees
 * the argument when the call returns (the gate opens only after the release). */
static void test_abandoned(void)
{
    struct call *c = call_new(true);
    struct bgjob *j = NULL;
    unsigned before = freed_now();
    uint64_t t0;

    gate_set(false);
    ASSERT_OK(bgjob_start(call_run, c, call_free, &j, NULL));
    t0 = now_usec();
    ASSERT_FALSE(bgjob_wait(j, t0 + 50 * USEC_PER_MSEC));
    ASSERT_GE(now_usec() - t0, 50 * USEC_PER_MSEC);
    ASSERT_FALSE(bgjob_done(j));
    j = bgjob_release(j);
    ASSERT_EQ(freed_now(), before); /* the thread still has it */
    gate_set(true);
    ASSERT_TRUE(freed_reaches(before + 1));
}

/* With an fd: not readable while the call runs, readable once it returned.  Then a job whose
 * starter releases it (closing the read end) while the call runs: its thread frees the
 * argument when the call returns and writes nothing to the closed pipe. */
static void test_fd(void)
{
    struct call *c = call_new(true);
    struct bgjob *j = NULL;
    struct pollfd pfd = { .events = POLLIN };
    unsigned before = freed_now();
    char b;

    gate_set(false);
    ASSERT_OK(bgjob_start(call_run, c, call_free, &j, &pfd.fd));
    ASSERT_GE(pfd.fd, 0);
    ASSERT_EQ(poll(&pfd, 1, 50), 0);
    ASSERT_EQ(read(pfd.fd, &b, 1), -1);
    ASSERT_EQ(errno, EAGAIN); /* non-blocking */
    gate_set(true);
    ASSERT_EQ(poll(&pfd, 1, 10000), 1);
    ASSERT_TRUE(bgjob_done(j));
    ASSERT_EQ(c->result, 42);
    j = bgjob_release(j);
    ASSERT_EQ(freed_now(), before + 1);

    c = call_new(true);
    gate_set(false);
    ASSERT_OK(bgjob_start(call_run, c, call_free, &j, &pfd.fd));
    j = bgjob_release(j); /* closes the read end while the call runs */
    gate_set(true);
    ASSERT_TRUE(freed_reaches(before + 2));
}

/* Many at once, half abandoned: every argument freed exactly once. */
static void test_many(void)
{
    enum { N = 64 };
    struct bgjob *jobs[N];
    unsigned before = freed_now();

    gate_set(false);
    for (int i = 0; i < N; i++) {
        struct call *c = call_new(i % 2 == 1);
        int fd = -1;

        ASSERT_OK(bgjob_start(call_run, c, call_free, &jobs[i], i % 4 < 2 ? &fd : NULL));
    }
    for (int i = 0; i < N; i += 2)
        ASSERT_TRUE(bgjob_wait(jobs[i], now_usec() + 10 * USEC_PER_SEC));
    for (int i = 0; i < N; i++)
        jobs[i] = bgjob_release(jobs[i]);
    gate_set(true);
    ASSERT_TRUE(freed_reaches(before + N));
    (void)usleep(20000);
    ASSERT_EQ(freed_now(), before + N);
}

T_MAIN(T_CASE(test_done_in_time), T_CASE(test_abandoned), T_CASE(test_fd), T_CASE(test_many))
