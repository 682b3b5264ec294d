/* SPDX-License-Identifier: MIT */
/* collect.h - one scrape of kafka_lag_exporter: the cluster's metadata and every consumer
 * group's lag, asked through the kafka adapter at request time, rendered as Prometheus text
 * under kafka_exporter's metric names (docs/kafka_lag_exporter.md lists them).
 *
 * Not produced, because the adapter does not read them (and a made-up value would be worse than
 * none): kafka_topic_partition_current_offset and kafka_topic_partition_oldest_offset (the
 * partitions' newest and oldest offsets: the adapter reads high watermarks only for partitions
 * some group committed), kafka_consumergroup_members (needs DescribeConsumerGroups),
 * kafka_consumergroupzookeeper_lag_zookeeper (ZooKeeper-stored offsets; the cluster is KRaft). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct buf;
struct kfk_metadata;
struct kfk_group_lag;

#define KLAG_SCRAPE_MESSAGE_MAX 512

/* What one scrape learnt.  klag_scrape_run() fills it; hand-built ones (tests) may point at
 * memory they own, as long as they are not passed to klag_scrape_release(). */
struct klag_scrape {
    /* Owned; NULL when the metadata request failed: then the scrape failed as a whole and
     * nothing else was asked. */
    struct kfk_metadata *metadata;
    int metadata_error; /* -errno of that failure, else 0 */
    /* Owned; as kfk_consumer_lag() returns them: sorted by group, each group's partitions by
     * topic, then partition.  The exposition relies on that order. */
    struct kfk_group_lag *groups;
    size_t n_groups;
    /* -errno when no group list came back (then there are no group series at all), else 0.
     * A group whose own offsets could not be read has its error in its row instead. */
    int groups_error;
    char message[KLAG_SCRAPE_MESSAGE_MAX]; /* what went wrong, for the log; "" when nothing did */
    uint64_t duration_usec;                /* how long the scrape took */
};
#define KLAG_SCRAPE_INIT                                                                         \
    {                                                                                            \
        .metadata = NULL, .metadata_error = 0, .groups = NULL, .n_groups = 0, .groups_error = 0, \
        .message = "", .duration_usec = 0                                                        \
    }

/* Asks the cluster at bootstrap ("host:port,...") for its metadata, then for every consumer
 * group's lag, all within timeout_usec (> 0): the lag requests get what the metadata request
 * left.  Never fails as a whole: failures are recorded in *ret (metadata_error, groups_error,
 * a group's error, message), which the caller releases with klag_scrape_release().  Blocking;
 * thread-safe (every call has its own librdkafka clients). */
void klag_scrape_run(const char *bootstrap, uint64_t timeout_usec, struct klag_scrape *ret);
/* Frees what s owns and resets it to KLAG_SCRAPE_INIT.  NULL-safe. */
void klag_scrape_release(struct klag_scrape *s);

/* Whether the scrape reached the cluster (kafka_lag_exporter_scrape_success). */
static inline bool klag_scrape_success(const struct klag_scrape *s)
{
    return s->metadata != NULL;
}

/* Appends the exposition of s (borrowed) to out: every family's HELP and TYPE lines, then its
 * samples in a fixed order (topics by name, partitions by id, brokers by id, groups by name),
 * label values escaped.  A family without samples is left out.  When the scrape failed, only
 * kafka_lag_exporter_scrape_success 0 and kafka_lag_exporter_scrape_duration_seconds.
 * 0, or -ENOBUFS (out->max reached) / -ENOMEM, with out cut back to its length before the call. */
int klag_render(const struct klag_scrape *s, struct buf *out) WARN_UNUSED_RESULT;
