/* SPDX-License-Identifier: MIT */
/* server.h - kafka_lag_exporter's HTTP side: GET /metrics scrapes the cluster at request time
 * (collect.h; one scrape at a time, no background thread), GET /healthz answers "ok".  main.c
 * runs it until a signal; tests start it in process on port 0. */
#pragma once

#include <stdint.h>

#include "core/macro.h"

struct klag_server;

struct klag_server_config {
    const char *listen;    /* "HOST:PORT", "[V6]:PORT" or ":PORT"; port 0 = any free one */
    const char *bootstrap; /* the cluster: "host:port[,host:port...]" */
    uint64_t timeout_usec; /* budget of one scrape's Kafka requests, > 0 */
};

/* Binds cfg->listen and serves; when it returns 0 the listener accepts connections.  cfg's
 * strings are copied.  -EINVAL for a listen address that does not parse or resolve, an empty
 * bootstrap or a zero timeout; bind()'s -errno (-EADDRINUSE, -EACCES ...); -ENOMEM; -EIO when
 * libmicrohttpd refuses to start.  *ret is written only on success. */
int klag_server_start(const struct klag_server_config *cfg,
                      struct klag_server **ret) WARN_UNUSED_RESULT;
/* The bound port (the one picked, with port 0). */
uint16_t klag_server_port(const struct klag_server *s);
/* Stops accepting, waits for the requests in progress (a scrape ends within its timeout) and
 * frees s.  NULL-safe; returns NULL. */
struct klag_server *klag_server_stop(struct klag_server *s);
