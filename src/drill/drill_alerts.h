/* SPDX-License-Identifier: MIT */
/* drill_alerts.h - the alerts that fire and resolve while a drill runs.  A thread polls
 * Prometheus' /api/v1/alerts (pending and firing: what the rules saw) and Alertmanager's
 * /api/v2/alerts (what reached the receivers) every interval and records each change as an
 * event: an alert that appears (pending / firing / active), changes state, or goes away
 * (resolved).  The alerts active at the first poll are the baseline (listed, not events); the
 * Watchdog (severity none, always firing) is ignored.
 *
 * Ownership: the watcher owns its events; drill_alerts_events() lends them until
 * drill_alerts_free().  Library code: nothing here logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct drill_alert_event {
    uint64_t at_usec; /* CLOCK_MONOTONIC of the poll that saw the change */
    char source[16];  /* "prometheus" or "alertmanager" */
    char name[64];    /* alertname */
    char where[96];   /* the instance / service / job label it names, "" when none */
    char state[16];   /* pending, firing (Prometheus), active, suppressed (Alertmanager),
                         resolved (gone from the list) */
};

struct drill_alerts;

/* Starts polling (a port of 0 skips that source).  NULL when both are 0, on OOM, or when the
 * thread cannot start. */
struct drill_alerts *drill_alerts_start(uint16_t prometheus_port, uint16_t alertmanager_port,
                                        uint64_t interval_usec);
/* Stops and joins the thread (events stay readable).  NULL-safe; idempotent. */
void drill_alerts_stop(struct drill_alerts *a);
struct drill_alerts *drill_alerts_free(struct drill_alerts *a); /* NULL-safe; returns NULL */

/* The events so far, oldest first (borrowed; valid until the next call or free).  Safe while
 * the thread runs: returns a snapshot copy owned by the watcher. */
size_t drill_alerts_events(struct drill_alerts *a, const struct drill_alert_event **ret);
/* Polls that failed (a source unreachable) and that succeeded, and the last error ("" none). */
void drill_alerts_polls(struct drill_alerts *a, unsigned *ret_ok, unsigned *ret_failed,
                        char *last_error, size_t n);
/* The alert names active at the first poll, comma-separated ("" when none); call after
 * drill_alerts_stop(). */
const char *drill_alerts_baseline(struct drill_alerts *a);
