/* SPDX-License-Identifier: MIT */
/* kafka_int.h - module-private: the per-call librdkafka client and the helpers that kafka.c,
 * kafka_topics.c and kafka_lag.c share.  Tests may include it.
 *
 * A client lives for one public call: kfk__client_open() creates the rd_kafka_t with timeouts
 * derived from the call's, every wait goes through kfk__metadata() / kfk__admin_wait() in
 * slices so that "every broker is down" (librdkafka's error callback, served by rd_kafka_poll()
 * in the calling thread) ends the call at once, and kfk__client_close() destroys it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* The librdkafka that cmake/Rdkafka.cmake builds against; 2.0.2 (Debian 12's headers) loses
 * acknowledged messages after a leader change and lets watermark queries run past their
 * timeout. */
#if RD_KAFKA_VERSION < 0x020c0100
#error "librdkafka 2.12.1 or newer required: scripts/install-deps.sh build installs it"
#endif

#include "core/macro.h"
#include "kafka.h"

/* How long one wait lasts before the error callback is checked again. */
#define KFK_SLICE_MS 100
/* librdkafka's admin request timeout is this much shorter than the time left (at most a tenth
 * of it), so its own timeout result arrives before the call's deadline. */
#define KFK_GRACE_MS 50

/* Bootstrap servers told apart when counting failures (more count as this many). */
#define KFK_BOOTSTRAP_MAX 16

struct kfk_client {
    rd_kafka_t *rk;        /* owned */
    const char *bootstrap; /* borrowed */
    uint64_t timeout_usec, deadline_usec;
    /* Written by the error callback, which runs only inside rd_kafka_poll() on the caller's
     * thread. */
    bool all_down;
    char down_reason[200]; /* the last transport error before everything went down */
    /* librdkafka >= 2.10 raises no _ALL_BROKERS_DOWN for bootstrap servers that refuse (it
     * re-bootstraps instead): all_down is also set once each bootstrap server has failed. */
    unsigned n_bootstrap; /* distinct entries in bootstrap */
    unsigned n_failed;
    char failed[KFK_BOOTSTRAP_MAX][64]; /* librdkafka's names of the servers that failed */
};

/* Creates the client for one call (producer type: no consumer group to leave on teardown).
 * 0; -EINVAL for an empty bootstrap or zero timeout; -ENOMEM or -EINVAL (a configuration
 * librdkafka refused) with its message. */
int kfk__client_open(struct kfk_client *c, const char *bootstrap, uint64_t timeout_usec,
                     struct err *reterr) WARN_UNUSED_RESULT;
/* Destroys the client (NULL-safe for a client that was never opened). */
void kfk__client_close(struct kfk_client *c);
/* Milliseconds left until the call's deadline, >= 0. */
int kfk__remaining_ms(const struct kfk_client *c);
/* Serves librdkafka's callbacks; true when every broker is down. */
bool kfk__all_down(struct kfk_client *c);

/* librdkafka/Kafka error -> -errno (see kafka.h); 0 for RD_KAFKA_RESP_ERR_NO_ERROR. */
int kfk__errno(rd_kafka_resp_err_t err);
/* Sets *reterr to "<what>: <msg>" with code kfk__errno(err) and returns that code. */
int kfk__fail(struct err *reterr, rd_kafka_resp_err_t err, const char *what, const char *msg);
/* The failure for a wait that ended without an answer: -ECONNREFUSED when every broker is down
 * (with librdkafka's reason), else -ETIMEDOUT. */
int kfk__fail_wait(struct kfk_client *c, struct err *reterr, const char *what);

/* Metadata of every topic and broker within the call's deadline; *ret is librdkafka's (free it
 * with rd_kafka_metadata_destroy()). */
int kfk__metadata(struct kfk_client *c, const struct rd_kafka_metadata **ret,
                  struct err *reterr) WARN_UNUSED_RESULT;
/* Converts librdkafka's metadata into ours.  0 or -ENOMEM. */
int kfk__metadata_copy(const struct rd_kafka_metadata *rmd, int32_t controller_id,
                       struct kfk_metadata **ret) WARN_UNUSED_RESULT;

/* Admin options for op whose request timeout is the time left (and, with op_timeout, the
 * broker-side operation timeout too).  NULL on OOM. */
rd_kafka_AdminOptions_t *kfk__admin_options(struct kfk_client *c, rd_kafka_admin_op_t op,
                                            bool op_timeout);
/* Waits on q for the result event of an admin request, checking the error callback between
 * slices.  *ret is the event (rd_kafka_event_destroy() it); its own error is checked, so a
 * returned event carries per-item results only. */
int kfk__admin_wait(struct kfk_client *c, rd_kafka_queue_t *q, const char *what,
                    rd_kafka_event_t **ret, struct err *reterr) WARN_UNUSED_RESULT;

/* Appends printf output to dst (size n), silently truncating. */
void kfk__appendf(char *dst, size_t n, const char *fmt, ...) PRINTF(3, 4);
