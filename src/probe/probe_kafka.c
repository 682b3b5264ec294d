/* SPDX-License-Identifier: MIT */
/* probe_kafka.c - kafka probe: kfk_probe() (a librdkafka metadata request to host:port) run as
 * a bgjob (core/bgjob.h), since librdkafka has no non-blocking API.  The probe waits on the
 * job's fd in the caller's event loop; the job owns its own copy of the bootstrap address and
 * never sees the probe or its spec.  When the probe finishes first (its deadline) or is freed,
 * it releases the job, which frees itself when kfk_probe() returns: probe_free() never blocks
 * the event loop behind a hung broker, and a librdkafka call ends by itself within the probe's
 * timeout plus librdkafka's teardown.  The job's thread has every signal blocked, so a
 * supervisor that reads SIGCHLD/SIGTERM/SIGINT/SIGHUP through a signalfd gets every one;
 * librdkafka's own threads block all signals too.
 *
 * Results: 0 when the answer lists the broker at host:port and a controller; -EPROTO when it
 * does not (the reason in the message); the kafka.h errors when there is no answer
 * (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH ...).  kfk_probe() gets a little less time than the
 * probe so its own, more specific error usually arrives before the probe's deadline. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/bgjob.h"
#include "core/err.h"
#include "core/str.h"
#include "kafka/kafka.h"
#include "probe_int.h"

/* kfk_probe() ends this much before the probe's deadline (at most a tenth of the timeout). */
#define PROBE_KAFKA_MARGIN_USEC (200 * USEC_PER_MSEC)

probe_kafka_fn probe__kafka_run = kfk_probe;

struct probe_kafka_call { /* the job's argument */
    probe_kafka_fn run;   /* kfk_probe(), or a test's fake */
    char *bootstrap;
    uint64_t timeout_usec;
    int r;
    struct kfk_probe_result res; /* the job's until the probe takes it */
    struct err err;
};

static void call_run(void *arg)
{
    struct probe_kafka_call *c = arg;

    c->r = c->run(c->bootstrap, c->timeout_usec, &c->res, &c->err);
}

static void call_free(void *arg)
{
    struct probe_kafka_call *c = arg;

    kfk_probe_result_release(&c->res);
    free(c->bootstrap);
    free(c);
}

static void kafka_release(struct probe *p)
{
    p->kafka_job = bgjob_release(p->kafka_job); /* closes kafka_fd */
    p->kafka_call = NULL;
    p->kafka_fd = -1;
}

static void kafka_start(struct probe *p)
{
    struct probe_kafka_call *c;
    const char *host = probe__host(p);
    uint64_t margin = p->timeout_usec / 10;
    int r;

    if (p->spec->port == 0) {
        probe__finish(p, -EINVAL, "no port to probe");
        return;
    }
    c = xcalloc(1, sizeof *c);
    c->run = probe__kafka_run;
    c->bootstrap = strchr(host, ':') ? xasprintf("[%s]:%u", host, (unsigned)p->spec->port)
                                     : xasprintf("%s:%u", host, (unsigned)p->spec->port);
    if (margin > PROBE_KAFKA_MARGIN_USEC)
        margin = PROBE_KAFKA_MARGIN_USEC;
    c->timeout_usec = p->timeout_usec > margin ? p->timeout_usec - margin : p->timeout_usec;
    c->res = (struct kfk_probe_result){ .self_id = -1, .controller_id = -1 };
    c->err = (struct err)ERR_INIT;
    r = bgjob_start(call_run, c, call_free, &p->kafka_job, &p->kafka_fd);
    if (r < 0) {
        probe__finish(p, r, "cannot start the kafka probe's thread: %s", strerror(-r));
        return;
    }
    p->kafka_call = c;
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
    struct probe_kafka_call *c = p->kafka_call;
    struct kfk_probe_result res;
    char b;

    (void)revents;
    if (read(p->kafka_fd, &b, 1) < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (!bgjob_done(p->kafka_job)) {
        probe__finish(p, -EIO, "the kafka probe's thread ended without a result");
        return;
    }
    if (c->r < 0) {
        probe__finish(p, c->r, "%s", c->err.msg);
        return;
    }
    res = c->res; /* ours now */
    c->res = (struct kfk_probe_result){ .self_id = -1, .controller_id = -1 };
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
