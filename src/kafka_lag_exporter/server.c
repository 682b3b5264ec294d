/* SPDX-License-Identifier: MIT */
/* server.c - the routes of kafka_lag_exporter and the log of scrape problems. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "http/http.h"
#include "metrics/metrics.h"

/* A cluster with tens of thousands of partitions stays well below this. */
#define KLAG_METRICS_MAX ((size_t)64 << 20)

struct klag_server {
    struct http_server *http; /* owned */
    char *bootstrap;          /* owned */
    uint64_t timeout_usec;
    /* Held for a whole scrape: concurrent scrapes would only ask the cluster the same
     * questions at once.  Also guards last_problems. */
    pthread_mutex_t lock;
    char last_problems[KLAG_SCRAPE_MESSAGE_MAX];
};

/* Logs a scrape's problems when they differ from the previous scrape's, so that a cluster that
 * stays down is one log line, not one per scrape.  Caller holds s->lock. */
static void log_problems(struct klag_server *s, const struct klag_scrape *sc)
{
    if (streq(sc->message, s->last_problems))
        return;
    if (sc->message[0])
        log_warning("scrape of '%s': %s", s->bootstrap, sc->message);
    else
        log_notice("scrape of '%s': complete again", s->bootstrap);
    (void)snprintf(s->last_problems, sizeof s->last_problems, "%s", sc->message);
}

static int get_metrics(struct http_request *req, void *userdata)
{
    struct klag_server *s = userdata;
    struct klag_scrape sc;
    struct buf out = BUF_INIT(KLAG_METRICS_MAX);
    size_t n;
    char *text;
    int r;

    (void)pthread_mutex_lock(&s->lock);
    klag_scrape_run(s->bootstrap, s->timeout_usec, &sc);
    log_problems(s, &sc);
    (void)pthread_mutex_unlock(&s->lock);
    /* A cluster that did not answer is still a 200: the exposition says so
     * (kafka_lag_exporter_scrape_success 0), which alerting can use, a 5xx only says "down". */
    r = klag_render(&sc, &out);
    klag_scrape_release(&sc);
    if (r < 0) {
        buf_release(&out);
        return http_error(req, r, NULL, NULL, "cannot render the metrics");
    }
    text = buf_detach(&out, &n);
    return http_reply_take(req, 200, METRICS_CONTENT_TYPE, text, n);
}

static int get_healthz(struct http_request *req, void *userdata)
{
    (void)userdata;
    return http_reply(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static const struct http_route routes[] = {
    { "GET", "/metrics", get_metrics, NULL },
    { "GET", "/healthz", get_healthz, NULL },
};

int klag_server_start(const struct klag_server_config *cfg, struct klag_server **ret)
{
    struct http_config hc = HTTP_CONFIG_INIT;
    struct klag_server *s;
    int r;

    if (!cfg->bootstrap || !cfg->bootstrap[0] || cfg->timeout_usec == 0)
        return -EINVAL;
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    r = -pthread_mutex_init(&s->lock, NULL);
    if (r < 0) {
        free(s);
        return r;
    }
    s->timeout_usec = cfg->timeout_usec;
    s->bootstrap = strdup(cfg->bootstrap);
    if (!s->bootstrap) {
        r = -ENOMEM;
        goto fail;
    }
    hc.listen = cfg->listen;
    hc.routes = routes;
    hc.n_routes = ARRAY_SIZE(routes);
    hc.userdata = s;
    /* A scrape blocks its thread for up to the timeout: more threads keep /healthz answering
     * meanwhile. */
    hc.threads = 4;
    hc.max_connections = 64;
    hc.timeout_sec = 30;
    hc.max_body = 4096;
    r = http_server_start(&hc, &s->http);
    if (r < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    (void)klag_server_stop(s);
    return r;
}

uint16_t klag_server_port(const struct klag_server *s)
{
    return http_server_port(s->http);
}

struct klag_server *klag_server_stop(struct klag_server *s)
{
    if (!s)
        return NULL;
    s->http = http_server_stop(s->http);
    (void)pthread_mutex_destroy(&s->lock);
    free(s->bootstrap);
    free(s);
    return NULL;
}
