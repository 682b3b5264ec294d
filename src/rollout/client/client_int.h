/* SPDX-License-Identifier: MIT */
/* client_int.h - librollout client internals: the client object (read-side reclamation
 * counters, swap, status), the SSE parser and the fetch/stream thread. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "rollout.h"

/* ===== SSE (text/event-stream) parser ===== */

/* Called per complete event; a negative return stops parsing and is returned by sse_feed. */
typedef int (*rollout_sse_event_fn)(const char *event, const char *id, const char *data,
                                    size_t data_len, void *userdata);

struct rollout_sse {
    struct buf line; /* the current partial line */
    struct buf data; /* data lines of the current event, joined with '\n' */
    char event[64];  /* current event name ("" = "message") */
    char id[64];
    bool has_data;
};
#define ROLLOUT_SSE_LINE_MAX (ROLLOUT_SNAPSHOT_MAX + 64u)

void rollout__sse_init(struct rollout_sse *p);
void rollout__sse_release(struct rollout_sse *p);
/* Feeds bytes; calls fn for each complete event.  0, fn's negative result, or -ENOBUFS for a
 * line over ROLLOUT_SSE_LINE_MAX / -ENOMEM. */
int rollout__sse_feed(struct rollout_sse *p, const char *data, size_t len, rollout_sse_event_fn fn,
                      void *userdata);

/* ===== Client ===== */

#define ROLLOUT_RD_SLOTS 64

struct rd_counter {
    _Alignas(64) _Atomic unsigned long n;
};

struct rollout_client {
    /* Read side: readers touch only these (see docs/flags.md "Snapshot reclamation"). */
    struct rd_counter readers[2][ROLLOUT_RD_SLOTS];
    _Alignas(64) _Atomic(struct rollout_snapshot *) current;
    _Atomic unsigned gen;

    /* Write side. */
    pthread_mutex_t write_lock;  /* one swap at a time */
    pthread_mutex_t export_lock; /* one counter export at a time */
    pthread_mutex_t status_lock;
    pthread_cond_t status_cond; /* broadcast on every install (CLOCK_MONOTONIC) */
    struct rollout_client_status st;

    /* Options, owned copies. */
    char *url, *env, *token, *backup_path;
    uint64_t backoff_min, backoff_max, idle_timeout, connect_timeout;

    struct metrics_registry *metrics, *own_metrics;
    struct metrics_family *evals;
    struct metrics_series *version_gauge, *connected_gauge, *connects_total;

    /* The fetch/stream thread. */
    pthread_t thread;
    bool started;
    _Atomic bool stop;
    void *multi;     /* CURLM * */
    void *done_easy; /* CURL *: a finished transfer not yet collected (http.c) */
    int done_result; /* its CURLcode */
    uint64_t last_flush_usec;
};

/* Installs s (one reference taken over): rollout_client_set_snapshot(). */
void rollout__client_install(struct rollout_client *c, struct rollout_snapshot *s);
void rollout__client_set_connected(struct rollout_client *c, bool connected);
void rollout__client_set_error(struct rollout_client *c, int r);
uint64_t rollout__client_version(struct rollout_client *c, bool *ret_has);
/* Thread body (http.c). */
void *rollout__client_main(void *arg);
int rollout__client_http_init(struct rollout_client *c);
void rollout__client_http_release(struct rollout_client *c);
void rollout__client_wakeup(struct rollout_client *c);
