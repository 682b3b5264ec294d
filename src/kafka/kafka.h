/* SPDX-License-Identifier: MIT */
/* kafka.h - librdkafka adapter: cluster metadata with per-broker partition counts, topics as
 * code, consumer-group lag and a health probe.
 *
 * Every call is blocking and self-contained: it creates its own librdkafka client (so callers
 * never meet librdkafka's lifetime rules), does its requests, and destroys the client before it
 * returns.  Every request is bounded by timeout_usec: a dead broker (connection refused) fails
 * fast, a hung or SIGSTOPped one fails at the deadline.  The client's teardown comes on top; it
 * does not wait for outstanding requests (librdkafka fails them locally) and takes a few ms.
 * One thing librdkafka cannot bound: it resolves host names with a blocking getaddrinfo() in
 * its broker threads, and its teardown waits for that, so a bootstrap host whose DNS lookup
 * hangs delays the return by the resolver's own timeout.  Numeric addresses and names in
 * /etc/hosts never do.
 *
 * Calls are thread-safe and may run concurrently (each has its own client); they must not be
 * called from a librdkafka callback.  Every thread librdkafka starts has all signals blocked.
 * Its sockets are O_CLOEXEC, but librdkafka (2.12.1 as 2.0.2) makes each broker's wakeup pipe with
 * plain pipe() (2 fds per known broker, open while a call runs): a program that fork()s and exec()s
 * from another thread meanwhile passes them on unless its child closes fds >= 3
 * (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) before execve()).
 * librdkafka's own log lines go to core/log.h at debug level; the adapter prints nothing else.
 *
 * bootstrap is librdkafka's bootstrap.servers: "host:port[,host:port...]".
 *
 * Errors are -errno with librdkafka's or the broker's message in *reterr (NULL-safe):
 *   -EINVAL        bad arguments (empty bootstrap, zero timeout, a bad spec: err field says which)
 *                  or a request the broker rejected as invalid
 *   -ECONNREFUSED  every bootstrap broker is down (connection refused or closed at once)
 *   -ETIMEDOUT     no answer in time (a hung or SIGSTOPped broker; no controller)
 *   -EHOSTUNREACH  a bootstrap host does not resolve
 *   -ECONNRESET    the connection broke during a request
 *   -EOPNOTSUPP    the brokers do not implement a request (old brokers; librdkafka's mock cluster)
 *   -EACCES        authentication or authorization failed
 *   -ENOENT        unknown topic, partition or group;  -EEXIST  the topic already exists
 *   -EAGAIN        a retriable cluster condition (no leader or coordinator yet)
 *   -EPROTO        any other error the broker or librdkafka reported
 *   -ENOMEM */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct err;

/* ===== Cluster metadata ===== */

struct kfk_broker {
    int32_t id;
    char *host; /* owned */
    int port;
};

struct kfk_partition {
    int32_t id;
    int32_t leader;    /* broker id; -1 when the partition has no leader (offline) */
    int32_t *replicas; /* owned; n_replicas broker ids */
    size_t n_replicas;
    int32_t *isr; /* owned; the in-sync replicas */
    size_t n_isr;
    int kafka_error; /* the broker's error code for the partition, 0 = none (kfk_error_name()) */
};

struct kfk_topic {
    char *name;    /* owned */
    bool internal; /* the name starts with "__" (__consumer_offsets, __transaction_state ...) */
    int kafka_error;
    struct kfk_partition *partitions; /* owned */
    size_t n_partitions;
};

struct kfk_metadata {
    struct kfk_broker *brokers; /* owned; the live brokers the answer lists */
    size_t n_brokers;
    struct kfk_topic *topics; /* owned; every topic, internal ones included */
    size_t n_topics;
    /* The controller id the answer carried, as librdkafka reports it; -1 when unknown.  Under
     * KRaft a broker answers with some live broker's id (clients cannot reach the quorum's
     * controllers), and librdkafka's mock cluster always answers 0. */
    int32_t controller_id;
    int32_t orig_broker_id; /* the broker that answered; -1 when librdkafka had no id for it */
    char *orig_broker_name; /* owned; librdkafka's name for it ("127.0.0.1:9092/1") */
};

/* Fetches the metadata of the whole cluster (every broker and topic) into a new *ret, which the
 * caller releases with kfk_metadata_release().  0 or -errno (see the top of this file); *ret is
 * written only on success. */
int kfk_metadata_fetch(const char *bootstrap, uint64_t timeout_usec, struct kfk_metadata **ret,
                       struct err *reterr) WARN_UNUSED_RESULT;
/* Frees md and everything in it.  NULL-safe; returns NULL. */
struct kfk_metadata *kfk_metadata_release(struct kfk_metadata *md);

/* The broker whose id is id, or NULL; borrowed from md. */
const struct kfk_broker *kfk_metadata_broker(const struct kfk_metadata *md, int32_t id);

#define KFK_BROKER_ALL (-1)

/* A partition count, and how many of those partitions belong to internal topics. */
struct kfk_count {
    unsigned n;
    unsigned internal; /* included in n */
};

struct kfk_counts {
    struct kfk_count replicas;         /* partitions with the broker among their replicas */
    struct kfk_count led;              /* partitions the broker leads */
    struct kfk_count under_replicated; /* led by it, with fewer in-sync replicas than replicas */
    struct kfk_count offline;          /* without a leader, the broker among their replicas */
};

/* Counts the partitions of broker_id in md, the way Kafka's per-broker gauges do
 * (UnderReplicatedPartitions counts the partitions a broker leads).  With KFK_BROKER_ALL: every
 * partition, every led one, every under-replicated one with a leader, every one without a
 * leader.  Never fails; an unknown broker id counts zeros. */
void kfk_metadata_count(const struct kfk_metadata *md, int32_t broker_id, struct kfk_counts *ret);

/* librdkafka's name for a Kafka or librdkafka error code ("LEADER_NOT_AVAILABLE"); static. */
const char *kfk_error_name(int kafka_error);

/* ===== Topics as code ===== */

struct kfk_config_kv {
    const char *key;   /* "retention.ms" */
    const char *value; /* "604800000": as the broker reports it, or every apply is an update */
};

/* One topic as it should be; everything borrowed from the caller for the call. */
struct kfk_topic_spec {
    const char *name;
    int32_t partitions;         /* >= 1 */
    int16_t replication_factor; /* >= 1; applied at creation, only reported afterwards */
    /* The topic's whole dynamic (topic-level) config: keys not listed here revert to the
     * broker's defaults, since AlterConfigs replaces a topic's config as a whole. */
    const struct kfk_config_kv *configs;
    size_t n_configs;
    /* NULL: Kafka places the replicas.  Else partitions * replication_factor broker ids (>= 0,
     * distinct within a partition): partition p's replicas at [p * replication_factor], the
     * first its preferred leader.  Applied at creation only: an existing topic keeps its
     * placement, and partitions added later are placed by Kafka. */
    const int32_t *replicas;
};

enum kfk_topic_status {
    KFK_TOPIC_UNCHANGED,
    KFK_TOPIC_CREATED,
    KFK_TOPIC_UPDATED, /* configs replaced and/or partitions added */
    KFK_TOPIC_ERROR,
    _KFK_TOPIC_STATUS_MAX,
};

/* "unchanged", "created", "updated", "error"; NULL for anything else. */
const char *kfk_topic_status_to_string(enum kfk_topic_status s);

struct kfk_topic_result {
    char *name; /* owned copy of the spec's name */
    enum kfk_topic_status status;
    int error;                  /* -errno when status is KFK_TOPIC_ERROR, else 0 */
    int32_t partitions;         /* the topic's partition count afterwards; -1 when unknown */
    int32_t replication_factor; /* the topic's; -1 when unknown */
    bool rf_differs;            /* replication factor != spec: reported, never changed here */
    bool partitions_exceed;     /* more partitions than the spec: Kafka cannot remove partitions */
    bool configs_replaced;      /* AlterConfigs was sent (and succeeded) */
    unsigned partitions_added;
    char message[512]; /* what changed or differs, or the broker's error message */
};

/* Makes the cluster match specs[0..n): creates missing topics (CreateTopics, with their
 * configs), and for existing ones replaces the dynamic config when it differs from the spec's
 * (DescribeConfigs, then AlterConfigs: written for librdkafka 2.0.2, which had no
 * IncrementalAlterConfigs) and adds partitions when there are fewer than the spec's
 * (CreatePartitions).  A replication factor that differs, or a partition count above the spec's, is
 * reported, never changed.  Idempotent: a second apply of the same specs reports
 * KFK_TOPIC_UNCHANGED for each.
 *
 * On success *ret_results holds n results in spec order (the caller frees them with
 * kfk_topic_results_free()) and the return value is how many have status KFK_TOPIC_ERROR.
 * -EINVAL for bad specs (reterr's field names the spec: "topics[2].partitions"; duplicate
 * names), or -errno when the cluster could not be asked at all (then nothing was written). */
int kfk_topics_apply(const char *bootstrap, const struct kfk_topic_spec *specs, size_t n,
                     uint64_t timeout_usec, struct kfk_topic_result **ret_results,
                     struct err *reterr) WARN_UNUSED_RESULT;
/* NULL-safe; returns NULL. */
struct kfk_topic_result *kfk_topic_results_free(struct kfk_topic_result *results, size_t n);

/* ===== Consumer-group lag ===== */

struct kfk_partition_lag {
    char *topic; /* owned */
    int32_t partition;
    int64_t committed; /* the group's committed offset */
    int64_t high;      /* the partition's high watermark; -1 when it could not be read */
    int64_t lag;       /* max(0, high - committed); -1 when high is unknown */
    int error;         /* -errno when the watermark could not be read, else 0 */
};

struct kfk_group_lag {
    char *group;    /* owned */
    char state[32]; /* librdkafka's name: "Stable", "Empty", "PreparingRebalance" ... "Unknown" */
    bool simple;    /* a simple consumer group (offsets only, no members) */
    struct kfk_partition_lag *partitions; /* owned; sorted by topic, then partition */
    size_t n_partitions;
    int64_t total_lag;  /* sum of the known lags */
    unsigned n_unknown; /* partitions whose lag is unknown (error set) */
    int error;          /* -errno when the group's committed offsets could not be read */
    char message[256];  /* the error's message, "" when none */
};

/* For every consumer group (ListConsumerGroups) and every partition it committed an offset for
 * (ListConsumerGroupOffsets): the committed offset, the high watermark
 * (rd_kafka_query_watermark_offsets) and the lag, plus the group's state and its total.
 * *ret_groups (sorted by group id; the caller frees it with kfk_consumer_lag_free()) and *ret_n
 * are written on success.  A group whose offsets cannot be read keeps its error in the row; the
 * call fails only when no group list came back at all (every broker failed to list). */
int kfk_consumer_lag(const char *bootstrap, uint64_t timeout_usec,
                     struct kfk_group_lag **ret_groups, size_t *ret_n,
                     struct err *reterr) WARN_UNUSED_RESULT;
/* The same for the named groups only (no ListConsumerGroups: state "Unknown").  topics, when
 * not NULL, asks for the committed offsets of every partition of those topics instead of "every
 * partition the group committed"; partitions without a committed offset are left out either
 * way.  -ENOENT when a named topic does not exist. */
int kfk_consumer_lag_of(const char *bootstrap, const char *const *groups, size_t n_groups,
                        const char *const *topics, size_t n_topics, uint64_t timeout_usec,
                        struct kfk_group_lag **ret_groups, size_t *ret_n,
                        struct err *reterr) WARN_UNUSED_RESULT;
/* NULL-safe; returns NULL. */
struct kfk_group_lag *kfk_consumer_lag_free(struct kfk_group_lag *groups, size_t n);

/* ===== Probe ===== */

struct kfk_probe_result {
    bool healthy;          /* self_id >= 0 and controller_id >= 0 */
    int32_t self_id;       /* the id of the broker at the (first) bootstrap address, -1 when the
                              answer does not list it (fenced, or not a member) */
    int32_t controller_id; /* -1 when the answer named none */
    size_t n_brokers;
    char reason[256];              /* why it is not healthy; "" when healthy */
    struct kfk_metadata *metadata; /* owned: released by kfk_probe_result_release() */
};

/* One health check of the broker at bootstrap: a metadata request it answers, which must list
 * that broker itself (its own id) and a controller.  0 when it answered (ret->healthy says
 * whether both hold; the caller releases *ret), -errno when it did not (nothing written). */
int kfk_probe(const char *bootstrap, uint64_t timeout_usec, struct kfk_probe_result *ret,
              struct err *reterr) WARN_UNUSED_RESULT;
/* Frees what r owns and zeroes it.  NULL-safe. */
void kfk_probe_result_release(struct kfk_probe_result *r);
