/* SPDX-License-Identifier: MIT */
/* topics_file.h - the topics file (infrastructure/kafka/topics.yml): defaults, per-environment
 * profiles (broker count, disk per broker, size configs) and the topics, turned into the specs
 * kfk_topics_apply() takes, for one chosen profile.
 *
 *   defaults:  { partitions: N, replication_factor: N, configs: {KEY: VALUE, ...} }
 *   profiles:  { NAME: { brokers: N, broker_storage: SIZE, configs: {...} }, ... }
 *   topics:    { NAME: { partitions: N, replication_factor: N, configs: {...} } | {}, ... }
 *
 * A topic's configs are defaults.configs, then the profile's, then its own (a later value of a
 * key wins); values are strings as the broker reports them.  Errors are -EINVAL with
 * file:line:col and the field path in *reterr (core/err.h). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"
#include "kafka.h"

struct err;

struct kfk_topics_file {
    char *profile;                /* the chosen profile's name (owned) */
    unsigned brokers;             /* the profile's broker count */
    uint64_t broker_storage;      /* the profile's disk per broker, bytes */
    struct kfk_topic_spec *specs; /* in file order; every string owned by this struct */
    size_t n_specs;
};

/* Parses text (named name in errors) for profile.  The profile must exist; every topic's
 * replication factor must be at most the profile's brokers. */
int kfk_topics_file_parse(const char *name, const char *text, size_t len, const char *profile,
                          struct kfk_topics_file **ret, struct err *reterr) WARN_UNUSED_RESULT;
/* Reads and parses path (errors name it). */
int kfk_topics_file_load(const char *path, const char *profile, struct kfk_topics_file **ret,
                         struct err *reterr) WARN_UNUSED_RESULT;
/* NULL-safe; returns NULL. */
struct kfk_topics_file *kfk_topics_file_free(struct kfk_topics_file *f);

/* The value of config key in spec (borrowed), or NULL. */
const char *kfk_topic_spec_config(const struct kfk_topic_spec *spec, const char *key);

/* Worst-case bytes the topics take on one broker: each partition's replicas at retention.bytes
 * plus one active segment (segment.bytes, Kafka's default 1 GiB when unset), spread evenly over
 * the profile's brokers.  -ERANGE with *reterr naming the topic when one has no size bound
 * (retention.bytes unset or -1); -ENOSPC with *reterr giving the figures when the worst case
 * exceeds broker_storage; else 0 with *ret_bytes set. */
int kfk_topics_file_check_fit(const struct kfk_topics_file *f, uint64_t *ret_bytes,
                              struct err *reterr) WARN_UNUSED_RESULT;
