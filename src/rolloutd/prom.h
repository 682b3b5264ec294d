/* SPDX-License-Identifier: MIT */
/* prom.h - Prometheus HTTP API instant queries (GET /api/v1/query) for rollout analyses, over
 * src/httpc (libcurl, with a timeout).  Thread-safe after httpc_init().
 *
 * Ownership: every argument is borrowed for the call; results are plain values. */
#pragma once

#include <stddef.h>

#include "core/macro.h"

struct err;

/* Runs query at base_url (e.g. "http://127.0.0.1:9490") within timeout_ms.  1 with *ret set
 * when the result is one number; 0 when there is no data (an empty vector, or NaN); -errno with
 * e when Prometheus could not be asked or refused the query (-ECONNREFUSED, -ETIMEDOUT, -EIO,
 * -EPROTO for an answer that is not one number, e.g. several series). */
int prom_query(const char *base_url, const char *query, long timeout_ms, double *ret,
               struct err *e) WARN_UNUSED_RESULT;

/* The answer part of prom_query(): parses an /api/v1/query response body.  Same results. */
int prom_parse(const char *body, size_t len, double *ret, struct err *e) WARN_UNUSED_RESULT;
