/* SPDX-License-Identifier: MIT */
/* test_probe_kafka.c - the kafka probe's thread and the job it shares with the probe, with a
 * fake in place of kfk_probe() (probe__kafka_run): results handed over through the pipe, probes
 * finished by their deadline or freed while their thread still runs, the signal mask.  No
 * librdkafka thread is started here, so this test also runs under ThreadSanitizer (make tsan),
 * which cannot follow librdkafka's glibc C11 threads; test_probe.c runs the real thing
 * against librdkafka's mock cluster. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "probe/probe.h"
#include "probe/probe_int.h"
#include "proc_self.h"
#include "t.h"

#define MSEC    USEC_PER_MSEC
#define S(lit_) ((char *)(uintptr_t)(lit_))

static atomic_int fake_calls;
static atomic_bool fake_mask_ok = true;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A two-broker answer (ids 1 and 2, one topic with two partitions led by 1 and 2). */
static struct kfk_metadata *fake_metadata(int32_t controller)
{
    struct kfk_metadata *md = calloc(1, sizeof *md);
    struct kfk_topic *t;

    ASSERT_TRUE(md != NULL);
    md->controller_id = controller;
    md->orig_broker_id = 1;
    md->orig_broker_name = strdup("fake:1/1");
    md->n_brokers = 2;
    md->brokers = calloc(2, sizeof *md->brokers);
    ASSERT_TRUE(md->brokers != NULL);
    for (int i = 0; i < 2; i++) {
        md->brokers[i].id = i + 1;
        md->brokers[i].host = strdup("fake");
        md->brokers[i].port = i + 1;
    }
    md->n_topics = 1;
    md->topics = t = calloc(1, sizeof *t);
    ASSERT_TRUE(t != NULL);
    t->name = strdup("orders");
    t->n_partitions = 2;
    t->partitions = calloc(2, sizeof *t->partitions);
    ASSERT_TRUE(t->partitions != NULL);
    for (int i = 0; i < 2; i++) {
        struct kfk_partition *p = &t->partitions[i];
        p->id = i;
        p->leader = i + 1;
        p->n_replicas = 2;
        p->replicas = calloc(2, sizeof *p->replicas);
        p->n_isr = (size_t)(2 - i); /* partition 1: under-replicated */
        p->isr = calloc(2, sizeof *p->isr);
        ASSERT_TRUE(p->replicas && p->isr);
        p->replicas[0] = p->isr[0] = i + 1;
        p->replicas[1] = p->isr[1] = 2 - i;
    }
    return md;
}

static bool mask_blocks_supervisor_signals(void)
{
    sigset_t cur;

    if (pthread_sigmask(SIG_SETMASK, NULL, &cur) != 0)
        return false;
    return sigismember(&cur, SIGCHLD) == 1 && sigismember(&cur, SIGTERM) == 1 &&
           sigismember(&cur, SIGINT) == 1 && sigismember(&cur, SIGHUP) == 1 &&
           sigismember(&cur, SIGPIPE) == 1;
}

/* The bootstrap's host says what to do: "healthy", "nocontroller", "refused", "slow<ms>". */
static int fake_probe(const char *bootstrap, uint64_t timeout_usec, struct kfk_probe_result *ret,
                      struct err *reterr)
{
    atomic_fetch_add(&fake_calls, 1);
    if (!mask_blocks_supervisor_signals())
        atomic_store(&fake_mask_ok, false);
    if (strncmp(bootstrap, "slow", 4) == 0) {
        unsigned ms = 0;
        for (const char *c = bootstrap + 4; *c >= '0' && *c <= '9'; c++)
            ms = ms * 10 + (unsigned)(*c - '0');
        sleep_ms(ms);
        if (ms * MSEC >= timeout_usec)
            return err_set(reterr, -ETIMEDOUT, 0, 0, "fake: no answer within %llums",
                           (unsigned long long)(timeout_usec / MSEC));
    }
    if (strncmp(bootstrap, "refused", 7) == 0)
        return err_set(reterr, -ECONNREFUSED, 0, 0, "fake: all brokers are down");
    *ret = (struct kfk_probe_result){
        .healthy = true,
        .self_id = 1,
        .controller_id = 2,
        .n_brokers = 2,
        .metadata = fake_metadata(2),
    };
    if (strncmp(bootstrap, "nocontroller", 12) == 0) {
        ret->healthy = false;
        ret->controller_id = ret->metadata->controller_id = -1;
        (void)snprintf(ret->reason, sizeof ret->reason, "no controller known");
    }
    return 0;
}

static void *noop_thread(void *arg)
{
    return arg;
}

/* The thread count before a probe starts.  One thread is started and joined first: a
 * sanitizer's runtime starts a helper thread of its own with the first one. */
static unsigned threads_baseline(void)
{
    pthread_t t;

    ASSERT_OK(-pthread_create(&t, NULL, noop_thread, NULL));
    ASSERT_OK(-pthread_join(t, NULL));
    return t_count_threads();
}

static void test_result_handed_over(void)
{
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("healthy"), .port = 9092 };
    struct buf msg = BUF_INIT(1024), det = BUF_INIT(PROBE_DETAIL_MAX);
    unsigned threads = threads_baseline(), fds = t_count_fds();

    probe__kafka_run = fake_probe;
    ASSERT_OK(probe_run(&s, 2000 * MSEC, &msg, &det));
    ASSERT_STREQ(buf_str(&msg), "2 brokers, controller 2");
    ASSERT_STREQ(buf_str(&det), "broker=1 host=fake port=1 self=1 controller=0 replicas=2 led=1 "
                                "under_replicated=0 offline=0 replicas_internal=0 led_internal=0 "
                                "under_replicated_internal=0 offline_internal=0\n"
                                "broker=2 host=fake port=2 self=0 controller=1 replicas=2 led=1 "
                                "under_replicated=1 offline=0 replicas_internal=0 led_internal=0 "
                                "under_replicated_internal=0 offline_internal=0\n"
                                "cluster brokers=2 controller=2 self=1 topics=1 replicas=2 led=2 "
                                "under_replicated=1 offline=0 replicas_internal=0 led_internal=0 "
                                "under_replicated_internal=0 offline_internal=0\n");
    ASSERT_EQ(atomic_load(&fake_calls), 1);

    buf_reset(&msg);
    s.host = S("nocontroller");
    ASSERT_ERRNO(probe_run(&s, 2000 * MSEC, &msg, NULL), -EPROTO);
    ASSERT_STREQ(buf_str(&msg), "no controller known (2 brokers, controller -1)");

    buf_reset(&msg);
    s.host = S("refused");
    ASSERT_ERRNO(probe_run(&s, 2000 * MSEC, &msg, NULL), -ECONNREFUSED);
    ASSERT_STREQ(buf_str(&msg), "fake: all brokers are down");

    /* A slow answer still inside the deadline; kfk_probe() got a little less time. */
    buf_reset(&msg);
    s.host = S("slow300");
    ASSERT_OK(probe_run(&s, 1000 * MSEC, &msg, NULL));
    ASSERT_TRUE(atomic_load(&fake_mask_ok));
    t_wait_threads(threads);
    ASSERT_EQ(t_count_fds(), fds);
    buf_release(&msg);
    buf_release(&det);
}

static void test_deadline_wins(void)
{
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("slow5000"), .port = 1 };
    unsigned threads = threads_baseline();
    struct probe *p;

    probe__kafka_run = fake_probe;
    p = probe_start(&s, 300 * MSEC);
    probe_run_all(&p, 1);
    ASSERT_ERRNO(probe_result(p), -ETIMEDOUT);
    ASSERT_STREQ(probe_message(p), "timed out after 300ms");
    ASSERT_GE(probe_elapsed_usec(p), 300 * MSEC);
    ASSERT_LE(probe_elapsed_usec(p), 450 * MSEC);
    ASSERT_EQ(probe_fd(p), -1);
    p = probe_free(p); /* the thread still sleeps: it ends on its own */
    ASSERT_EQ(t_count_threads(), threads + 1);
    t_wait_threads(threads);
}

/* Many probes, freed at every stage: before their thread answers, right as it answers, after
 * their deadline, after being read.  ASan and TSan watch the job's hand-over. */
static void test_free_at_every_stage(void)
{
    enum { N = 48 };
    static const char *const hosts[] = { "slow0", "slow5", "slow20", "slow60" };
    struct probe_spec s[N];
    struct probe *p[N];
    unsigned threads = threads_baseline(), fds = t_count_fds();

    probe__kafka_run = fake_probe;
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < N; i++) {
            s[i] = (struct probe_spec){ .type = PROBE_KAFKA, .host = S(hosts[i % 4]), .port = 1 };
            p[i] = probe_start(&s[i], (uint64_t)(10 + (i % 7) * 10) * MSEC);
            ASSERT_TRUE(p[i] != NULL);
        }
        for (unsigned i = 0; i < N; i += 3)
            p[i] = probe_free(p[i]); /* at once */
        sleep_ms(round * 10);
        for (unsigned i = 1; i < N; i += 3) {
            (void)probe_step(p[i], POLLIN); /* whatever state it is in */
            p[i] = probe_free(p[i]);
        }
        for (unsigned i = 2; i < N; i += 3) {
            probe_run_all(&p[i], 1);
            ASSERT_TRUE(probe_result(p[i]) == 0 || probe_result(p[i]) == -ETIMEDOUT);
            p[i] = probe_free(p[i]);
        }
    }
    t_wait_threads(threads);
    ASSERT_EQ(t_count_fds(), fds);
    ASSERT_TRUE(atomic_load(&fake_mask_ok));
}

/* The caller's own mask is untouched by probe_start(). */
static void test_caller_mask_unchanged(void)
{
    struct probe_spec s = { .type = PROBE_KAFKA, .host = S("healthy"), .port = 1 };
    sigset_t before, after, term;
    struct probe *p;

    probe__kafka_run = fake_probe;
    (void)sigemptyset(&term);
    (void)sigaddset(&term, SIGTERM);
    ASSERT_OK(pthread_sigmask(SIG_BLOCK, &term, NULL)); /* a supervisor's signalfd setup */
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, NULL, &before));
    p = probe_start(&s, 1000 * MSEC);
    ASSERT_OK(pthread_sigmask(SIG_SETMASK, NULL, &after));
    for (int sig = 1; sig < 32; sig++)
        ASSERT_EQ(sigismember(&after, sig), sigismember(&before, sig));
    probe_run_all(&p, 1);
    ASSERT_OK(probe_result(p));
    p = probe_free(p);
    ASSERT_TRUE(atomic_load(&fake_mask_ok));
}

T_MAIN(T_CASE(test_result_handed_over), T_CASE(test_deadline_wins),
       T_CASE(test_free_at_every_stage), T_CASE(test_caller_mask_unchanged))
