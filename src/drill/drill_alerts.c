/* SPDX-License-Identifier: MIT */
/* drill_alerts.c - polls the alert lists of Prometheus and Alertmanager while a drill runs and
 * records each change (drill_alerts.h). */
#include "drill_alerts.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"
#include "httpc/httpc.h"

#define ALERTS_MAX_BODY (4u << 20)
#define ALERTS_HTTP_MS  2000L

enum source { SRC_PROMETHEUS, SRC_ALERTMANAGER, _SRC_MAX };

static const char *const source_names[_SRC_MAX] = { "prometheus", "alertmanager" };

struct seen {
    char *key; /* labels, compact with sorted keys */
    char state[16], name[64], where[96];
};

struct seen_set {
    struct seen *v;
    size_t n;
};

struct drill_alerts {
    uint16_t ports[_SRC_MAX];
    uint64_t interval_usec;
    pthread_t thread;
    bool started, joined;
    atomic_bool stop;
    pthread_mutex_t lock; /* everything below */
    struct seen_set current[_SRC_MAX];
    bool primed[_SRC_MAX];
    struct drill_alert_event *events, *snap;
    size_t n_events, cap_events;
    unsigned polls_ok, polls_failed;
    char last_error[256];
    struct buf baseline;
};

static void set_release(struct seen_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].key);
    free(s->v);
    *s = (struct seen_set){ 0 };
}

static const struct seen *set_find(const struct seen_set *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (streq(s->v[i].key, key))
            return &s->v[i];
    return NULL;
}

static void label_copy(char *dst, size_t n, json_t *labels)
{
    static const char *const keys[] = { "instance", "service", "job", "member" };
    const char *v = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(keys) && !v; i++)
        v = json_string_value(json_object_get(labels, keys[i]));
    (void)snprintf(dst, n, "%s", v ? v : "");
}

/* The alert list of one answer as a set; -EPROTO when the body is not what the API returns. */
static int parse(enum source src, const char *body, struct seen_set *ret)
{
    json_t *root = json_loads(body, 0, NULL), *list, *alert;
    size_t i;

    list = src == SRC_PROMETHEUS ? json_object_get(json_object_get(root, "data"), "alerts") : root;
    if (!json_is_array(list)) {
        json_decref(root);
        return -EPROTO;
    }
    ret->v = xcalloc(json_array_size(list) + 1, sizeof *ret->v);
    json_array_foreach(list, i, alert)
    {
        json_t *labels = json_object_get(alert, "labels");
        const char *name = json_string_value(json_object_get(labels, "alertname"));
        const char *sev = json_string_value(json_object_get(labels, "severity"));
        const char *state = src == SRC_PROMETHEUS
                                    ? json_string_value(json_object_get(alert, "state"))
                                    : json_string_value(json_object_get(
                                              json_object_get(alert, "status"), "state"));
        struct seen *s;
        char *key;

        if (!name || (sev && streq(sev, "none")) || streq(name, "Watchdog"))
            continue;
        key = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
        if (!key)
            continue;
        if (set_find(ret, key)) {
            free(key);
            continue;
        }
        s = &ret->v[ret->n++];
        s->key = key;
        (void)snprintf(s->state, sizeof s->state, "%s", state ? state : "?");
        (void)snprintf(s->name, sizeof s->name, "%s", name);
        label_copy(s->where, sizeof s->where, labels);
    }
    json_decref(root);
    return 0;
}

/* True when name is one of the comma-separated names of list. */
static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static void add_event(struct drill_alerts *a, uint64_t at, enum source src, const struct seen *s,
                      const char *state)
{
    struct drill_alert_event *e;

    if (a->n_events == a->cap_events) {
        a->cap_events = a->cap_events ? a->cap_events * 2 : 32;
        a->events = xrealloc(a->events, a->cap_events * sizeof *a->events);
    }
    e = &a->events[a->n_events++];
    *e = (struct drill_alert_event){ .at_usec = at };
    (void)snprintf(e->source, sizeof e->source, "%s", source_names[src]);
    (void)snprintf(e->name, sizeof e->name, "%s", s->name);
    (void)snprintf(e->where, sizeof e->where, "%s", s->where);
    (void)snprintf(e->state, sizeof e->state, "%s", state);
}

/* Compares the new set with the current one and records the changes (under the lock). */
static void diff(struct drill_alerts *a, enum source src, uint64_t at, struct seen_set *next)
{
    struct seen_set *cur = &a->current[src];

    if (!a->primed[src]) {
        for (size_t i = 0; i < next->n; i++)
            if (!list_has(a->baseline.data, next->v[i].name) &&
                buf_appendf(&a->baseline, "%s%s", a->baseline.len ? "," : "", next->v[i].name) < 0)
                break;
        a->primed[src] = true;
    } else {
        for (size_t i = 0; i < next->n; i++) {
            const struct seen *old = set_find(cur, next->v[i].key);

            if (!old || !streq(old->state, next->v[i].state))
                add_event(a, at, src, &next->v[i], next->v[i].state);
        }
        for (size_t i = 0; i < cur->n; i++)
            if (!set_find(next, cur->v[i].key))
                add_event(a, at, src, &cur->v[i], "resolved");
    }
    set_release(cur);
    *cur = *next;
    *next = (struct seen_set){ 0 };
}

static void poll_one(struct drill_alerts *a, enum source src)
{
    static const char *const paths[_SRC_MAX] = { "/api/v1/alerts", "/api/v2/alerts" };
    struct seen_set next = { 0 };
    struct httpc_response resp;
    char url[96], msg[256] = "";
    uint64_t at;
    int r;

    (void)snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)a->ports[src], paths[src]);
    r = httpc_call(&(struct httpc_request){ .url = url,
                                            .timeout_ms = ALERTS_HTTP_MS,
                                            .connect_timeout_ms = 1000L,
                                            .max_body = ALERTS_MAX_BODY },
                   &resp);
    at = now_usec();
    if (r < 0) {
        (void)snprintf(msg, sizeof msg, "%s: %.150s", url, resp.error);
    } else if (resp.status != 200) {
        (void)snprintf(msg, sizeof msg, "%s: HTTP %ld", url, resp.status);
        r = -EPROTO;
    }
    if (r == 0 && parse(src, resp.body.data ? resp.body.data : "", &next) < 0) {
        (void)snprintf(msg, sizeof msg, "%s: not an alert list", url);
        r = -EPROTO;
    }
    httpc_response_release(&resp);
    pthread_mutex_lock(&a->lock);
    if (r < 0) {
        a->polls_failed++;
        (void)snprintf(a->last_error, sizeof a->last_error, "%s", msg);
    } else {
        a->polls_ok++;
        diff(a, src, at, &next);
    }
    pthread_mutex_unlock(&a->lock);
    set_release(&next);
}

static void *watch(void *userdata)
{
    struct drill_alerts *a = userdata;

    while (!atomic_load(&a->stop)) {
        uint64_t next = now_usec() + a->interval_usec;

        for (unsigned s = 0; s < _SRC_MAX; s++)
            if (a->ports[s])
                poll_one(a, (enum source)s);
        while (!atomic_load(&a->stop) && now_usec() < next)
            sleep_usec(20 * USEC_PER_MSEC);
    }
    return NULL;
}

struct drill_alerts *drill_alerts_start(uint16_t prometheus_port, uint16_t alertmanager_port,
                                        uint64_t interval_usec)
{
    struct drill_alerts *a;

    if (!prometheus_port && !alertmanager_port)
        return NULL;
    a = xcalloc(1, sizeof *a);
    a->ports[SRC_PROMETHEUS] = prometheus_port;
    a->ports[SRC_ALERTMANAGER] = alertmanager_port;
    a->interval_usec = interval_usec ? interval_usec : USEC_PER_SEC;
    buf_init(&a->baseline, 4096);
    pthread_mutex_init(&a->lock, NULL);
    atomic_init(&a->stop, false);
    if (pthread_create(&a->thread, NULL, watch, a) != 0)
        return drill_alerts_free(a);
    a->started = true;
    return a;
}

void drill_alerts_stop(struct drill_alerts *a)
{
    if (!a || !a->started || a->joined)
        return;
    atomic_store(&a->stop, true);
    (void)pthread_join(a->thread, NULL);
    a->joined = true;
}

struct drill_alerts *drill_alerts_free(struct drill_alerts *a)
{
    if (!a)
        return NULL;
    drill_alerts_stop(a);
    for (unsigned s = 0; s < _SRC_MAX; s++)
        set_release(&a->current[s]);
    free(a->events);
    free(a->snap);
    buf_release(&a->baseline);
    pthread_mutex_destroy(&a->lock);
    free(a);
    return NULL;
}

size_t drill_alerts_events(struct drill_alerts *a, const struct drill_alert_event **ret)
{
    size_t n;

    pthread_mutex_lock(&a->lock);
    n = a->n_events;
    free(a->snap);
    a->snap = xcalloc(n + 1, sizeof *a->snap);
    if (n)
        memcpy(a->snap, a->events, n * sizeof *a->snap);
    pthread_mutex_unlock(&a->lock);
    *ret = a->snap;
    return n;
}

void drill_alerts_polls(struct drill_alerts *a, unsigned *ret_ok, unsigned *ret_failed,
                        char *last_error, size_t n)
{
    pthread_mutex_lock(&a->lock);
    *ret_ok = a->polls_ok;
    *ret_failed = a->polls_failed;
    (void)snprintf(last_error, n, "%s", a->last_error);
    pthread_mutex_unlock(&a->lock);
}

const char *drill_alerts_baseline(struct drill_alerts *a)
{
    return a->baseline.data ? a->baseline.data : "";
}
