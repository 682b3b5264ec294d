/* SPDX-License-Identifier: MIT */
/* probe_kafka.c - kafka probe: kfk_probe() (a librdkafka metadata request to host:port) run in
 * a short-lived thread, since librdkafka has no non-blocking API.
 *
 * Lifetime: the probe and its thread share one reference-counted job (two references) and
 * nothing else: the thread reads the job's own copy of the bootstrap address, never the probe
 * or its spec.  When kfk_probe() returns, the thread stores the result in the job under the
 * lock and, if the probe still holds its end, writes one byte to the pipe whose read end is the
 * probe's fd; probe_step() then takes the result.  When the probe finishes first (its deadline)
 * or is freed, releasing drops the probe's reference and closes the read end under the same
 * lock, so the thread never writes to a closed pipe and never sees the probe's memory; the last
 * reference frees the job.  The thread is detached rather than joined: probe_free() must not
 * block the caller's event loop behind a hung broker, and a librdkafka call cannot be
 * cancelled; it ends by itself within the probe's timeout plus librdkafka's teardown.
 *
 * Signals: the thread is created with every signal blocked (the creating thread blocks them
 * around pthread_create(), so there is no window), SIGCHLD/SIGTERM/SIGINT/SIGHUP included: a
 * supervisor that reads them through a signalfd gets every one.  librdkafka's own threads
 * block all signals too.
 *
 * Results: 0 when the answer lists the broker at host:port and a controller; -EPROTO when it
 * does not (the reason in the message); the kafka.h errors when there is no answer
 * (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH ...).  kfk_probe() gets a little less time than the
 * probe so its own, more specific error usually arrives before the probe's deadline. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "kafka/kafka.h"
#include "probe_int.h"

/* kfk_probe() ends this much before the probe's deadline (at most a tenth of the timeout). */
#define PROBE_KAFKA_MARGIN_USEC (200 * USEC_PER_MSEC)

probe_kafka_fn probe__kafka_run = kfk_probe;

struct probe_kafka_job {
    pthread_mutex_t lock;
    probe_kafka_fn run; /* kfk_probe(), or a test's fake */
    unsigned refs;      /* under lock: the probe's and the thread's */
    bool abandoned;     /* under lock: the probe closed its read end */
    bool done;          /* under lock: r, res and err are set */
    char *bootstrap;    /* owned; read by the thread only */
    uint64_t timeout_usec;
    int wfd; /* the pipe's write end: used and closed by the thread, under lock */
    int r;
    struct kfk_probe_result res; /* owned until the probe takes it */
    struct err err;
};

static void job_free(struct probe_kafka_job *j)
{
    kfk_probe_result_release(&j->res);
    (void)fd_close(j->wfd);
    free(j->bootstrap);
    (void)pthread_mutex_destroy(&j->lock);
    free(j);
}

/* Drops one reference; the last frees the job. */
static void job_unref_locked(struct probe_kafka_job *j)
{
    bool last = --j->refs == 0;

    (void)pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

static void *kafka_thread(void *arg)
{
    struct probe_kafka_job *j = arg;
    struct kfk_probe_result res = { .self_id = -1, .controller_id = -1 };
    struct err e = ERR_INIT;
    int r;

    r = j->run(j->bootstrap, j->timeout_usec, &res, &e);
    (void)pthread_mutex_lock(&j->lock);
    j->r = r;
    j->res = res;
    j->err = e;
    j->done = true;
    /* One byte into an empty pipe never blocks; while the lock is held the probe cannot close
     * the read end, so there is no EPIPE either. */
    if (!j->abandoned && write(j->wfd, "", 1) < 0) {
    }
    j->wfd = fd_close(j->wfd);
    job_unref_locked(j);
    return NULL;
}

static void kafka_release(struct probe *p)
{
    struct probe_kafka_job *j = p->kafka_job;

    if (!j) {
        p->kafka_fd = fd_close(p->kafka_fd);
        return;
    }
    p->kafka_job = NULL;
    (void)pthread_mutex_lock(&j->lock);
    j->abandoned = true;
    p->kafka_fd = fd_close(p->kafka_fd);
    job_unref_locked(j);
}

/* Starts the detached thread with every signal blocked from its first instruction on. */
static int kafka_spawn(struct probe_kafka_job *j)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int r;

    r = -pthread_attr_init(&attr);
    if (r < 0)
        return r;
    r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (r == 0) {
        (void)sigfillset(&all);
        r = -pthread_sigmask(SIG_SETMASK, &all, &old);
        if (r == 0) {
            r = -pthread_create(&tid, &attr, kafka_thread, j);
            (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
    }
    (void)pthread_attr_destroy(&attr);
    return r;
}

static void kafka_start(struct probe *p)
{
    struct probe_kafka_job *j;
    const char *host = probe__host(p);
    uint64_t margin = p->timeout_usec / 10;
    int fds[2], r;

    if (p->spec->port == 0) {
        probe__finish(p, -EINVAL, "no port to probe");
        return;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
        probe__finish(p, -ENOMEM, "out of memory");
        return;
    }
    r = -pthread_mutex_init(&j->lock, NULL);
    if (r < 0) {
        free(j);
        probe__finish(p, r, "pthread_mutex_init() failed: %s", strerror(-r));
        return;
    }
    j->wfd = -1;
    j->refs = 2;
    j->run = probe__kafka_run;
    j->bootstrap = strchr(host, ':') ? xasprintf("[%s]:%u", host, (unsigned)p->spec->port)
                                     : xasprintf("%s:%u", host, (unsigned)p->spec->port);
    if (margin > PROBE_KAFKA_MARGIN_USEC)
        margin = PROBE_KAFKA_MARGIN_USEC;
    j->timeout_usec = p->timeout_usec > margin ? p->timeout_usec - margin : p->timeout_usec;
    p->kafka_job = j;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        r = -errno;
        j->refs = 1; /* no thread */
        probe__finish(p, r, "pipe2() failed: %s", strerror(-r));
        return;
    }
    p->kafka_fd = fds[0];
    j->wfd = fds[1];
    r = fd_set_nonblock(p->kafka_fd, true);
    if (r == 0)
        r = kafka_spawn(j);
    if (r < 0) {
        j->refs = 1;
        probe__finish(p, r, "cannot start the kafka probe's thread: %s", strerror(-r));
        return;
    }
    probe__wait(p, p->kafka_fd, POLLIN);
}

static void detail_line(struct probe *p, const char *fmt, ...) PRINTF(2, 3);
static void detail_line(struct probe *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    probe__detail_append(p, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void counts_line(struct probe *p, const struct kfk_counts *c)
{
    detail_line(p,
                " replicas=%u led=%u under_replicated=%u offline=%u replicas_internal=%u "
                "led_internal=%u under_replicated_internal=%u offline_internal=%u\n",
                c->replicas.n, c->led.n, c->under_replicated.n, c->offline.n, c->replicas.internal,
                c->led.internal, c->under_replicated.internal, c->offline.internal);
}

/* One line per broker (in id order) and one for the whole cluster. */
static void kafka_detail(struct probe *p, const struct kfk_probe_result *res)
{
    const struct kfk_metadata *md = res->metadata;
    struct kfk_counts c;
    int32_t last = INT32_MIN;

    for (size_t k = 0; k < md->n_brokers; k++) {
        const struct kfk_broker *b = NULL;
        for (size_t i = 0; i < md->n_brokers; i++)
            if (md->brokers[i].id > last && (!b || md->brokers[i].id < b->id))
                b = &md->brokers[i];
        if (!b)
            break;
        last = b->id;
        kfk_metadata_count(md, b->id, &c);
        detail_line(p, "broker=%d host=%s port=%d self=%d controller=%d", (int)b->id, b->host,
                    b->port, b->id == res->self_id, b->id == res->controller_id);
        counts_line(p, &c);
    }
    kfk_metadata_count(md, KFK_BROKER_ALL, &c);
    detail_line(p, "cluster brokers=%zu controller=%d self=%d topics=%zu", md->n_brokers,
                (int)res->controller_id, (int)res->self_id, md->n_topics);
    counts_line(p, &c);
}

static void kafka_step(struct probe *p, short revents)
{
    struct probe_kafka_job *j = p->kafka_job;
    struct kfk_probe_result res;
    struct err e;
    bool done;
    char b;
    ssize_t k;
    int r;

    (void)revents;
    k = read(p->kafka_fd, &b, 1);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    (void)pthread_mutex_lock(&j->lock);
    done = j->done;
    r = j->r;
    res = j->res;
    e = j->err;
    if (done) /* ours now */
        j->res = (struct kfk_probe_result){ .self_id = -1, .controller_id = -1 };
    (void)pthread_mutex_unlock(&j->lock);
    if (!done) {
        probe__finish(p, -EIO, "the kafka probe's thread ended without a result");
        return;
    }
    if (r < 0) {
        probe__finish(p, r, "%s", e.msg);
        return;
    }
    kafka_detail(p, &res);
    if (res.healthy)
        probe__finish(p, 0, "%zu broker%s, controller %d", res.n_brokers,
                      res.n_brokers == 1 ? "" : "s", (int)res.controller_id);
    else
        probe__finish(p, -EPROTO, "%s (%zu broker%s, controller %d)", res.reason, res.n_brokers,
                      res.n_brokers == 1 ? "" : "s", (int)res.controller_id);
    kfk_probe_result_release(&res);
}

const struct probe_ops probe__kafka_ops = {
    .start = kafka_start,
    .step = kafka_step,
    .release = kafka_release,
};
