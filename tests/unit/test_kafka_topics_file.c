/* SPDX-License-Identifier: MIT */
/* The topics file (src/kafka/topics_file.c): merging of defaults, profile and topic configs,
 * errors with file:line:col and the field, the disk fit check; and the repository's own
 * infrastructure/kafka/topics.yml under both of its profiles. */
#include <errno.h>
#include <string.h>

#include "core/err.h"
#include "kafka/topics_file.h"
#include "t.h"

static const char good[] = "defaults:\n"
                           "  partitions: 3\n"
                           "  replication_factor: 2\n"
                           "  configs:\n"
                           "    retention.ms: \"604800000\"\n"
                           "    min.insync.replicas: \"1\"\n"
                           "profiles:\n"
                           "  local:\n"
                           "    brokers: 3\n"
                           "    broker_storage: 1GiB\n"
                           "    configs:\n"
                           "      retention.bytes: \"1048576\"\n"
                           "      segment.bytes: \"1048576\"\n"
                           "  big:\n"
                           "    brokers: 2\n"
                           "    broker_storage: 100GiB\n"
                           "    configs:\n"
                           "      retention.bytes: \"1073741824\"\n"
                           "topics:\n"
                           "  a.ticks:\n"
                           "    partitions: 6\n"
                           "    configs:\n"
                           "      retention.ms: \"1000\"\n"
                           "  b.state:\n"
                           "    configs: {cleanup.policy: compact}\n"
                           "  c.plain: {}\n";

static struct kfk_topics_file *parse_ok(const char *text, const char *profile)
{
    struct kfk_topics_file *f = NULL;
    struct err e = ERR_INIT;
    char msg[600];
    int r = kfk_topics_file_parse("t.yml", text, strlen(text), profile, &f, &e);

    if (r < 0)
        T_FAIL("parse failed: %s", err_format(&e, msg, sizeof msg));
    return f;
}

/* The error of parsing text, formatted ("t.yml:L:C: msg"). */
static const char *parse_err(const char *text, const char *profile, char *buf, size_t n)
{
    struct kfk_topics_file *f = NULL;
    struct err e = ERR_INIT;

    ASSERT_ERRNO(kfk_topics_file_parse("t.yml", text, strlen(text), profile, &f, &e), -EINVAL);
    ASSERT_TRUE(f == NULL);
    return err_format(&e, buf, n);
}

static void test_merge_order_and_defaults(void)
{
    struct kfk_topics_file *f = parse_ok(good, "local");

    ASSERT_STREQ(f->profile, "local");
    ASSERT_EQ(f->brokers, 3u);
    ASSERT_EQ(f->broker_storage, 1ULL << 30);
    ASSERT_EQ(f->n_specs, 3u);
    ASSERT_STREQ(f->specs[0].name, "a.ticks");
    ASSERT_EQ(f->specs[0].partitions, 6);
    ASSERT_EQ(f->specs[0].replication_factor, 2);
    /* the topic's own value wins over the defaults' */
    ASSERT_STREQ(kfk_topic_spec_config(&f->specs[0], "retention.ms"), "1000");
    ASSERT_STREQ(kfk_topic_spec_config(&f->specs[0], "retention.bytes"), "1048576");
    ASSERT_EQ(f->specs[1].partitions, 3);
    ASSERT_STREQ(kfk_topic_spec_config(&f->specs[1], "cleanup.policy"), "compact");
    ASSERT_STREQ(kfk_topic_spec_config(&f->specs[1], "retention.ms"), "604800000");
    ASSERT_EQ(f->specs[2].n_configs, 4u); /* 2 defaults + 2 of the profile */
    ASSERT_TRUE(kfk_topic_spec_config(&f->specs[2], "cleanup.policy") == NULL);
    kfk_topics_file_free(f);

    f = parse_ok(good, "big");
    ASSERT_EQ(f->brokers, 2u);
    ASSERT_STREQ(kfk_topic_spec_config(&f->specs[2], "retention.bytes"), "1073741824");
    ASSERT_TRUE(kfk_topic_spec_config(&f->specs[2], "segment.bytes") == NULL);
    kfk_topics_file_free(f);
}

static void test_errors_name_line_and_field(void)
{
    char buf[600];
    char text[4096];

    ASSERT_CONTAINS(parse_err(good, "staging", buf, sizeof buf),
                    "no profile 'staging' (the file has: local, big)");
    /* replication factor above the profile's brokers */
    (void)snprintf(text, sizeof text, "%s  d.wide:\n    replication_factor: 3\n", good);
    ASSERT_CONTAINS(parse_err(text, "big", buf, sizeof buf),
                    "t.yml:27:3: topics.d.wide.replication_factor: replication factor 3 is more "
                    "than the 2 brokers of profile 'big'");
    (void)snprintf(text, sizeof text, "%s  d.bad:\n    partitons: 3\n", good);
    ASSERT_CONTAINS(parse_err(text, "local", buf, sizeof buf),
                    "unknown field 'topics.d.bad.partitons' (did you mean 'partitions'?)");
    (void)snprintf(text, sizeof text, "%s  d.zero:\n    partitions: 0\n", good);
    ASSERT_CONTAINS(parse_err(text, "local", buf, sizeof buf), "t.yml:28:17:");
    ASSERT_CONTAINS(buf, "topics.d.zero.partitions");
    (void)snprintf(text, sizeof text, "%s  \"bad/name\": {}\n", good);
    ASSERT_CONTAINS(parse_err(text, "local", buf, sizeof buf),
                    "topics.bad/name: 'bad/name' is not a valid topic name");
    (void)snprintf(text, sizeof text, "%s  d.list:\n    configs: {retention.ms: [1]}\n", good);
    ASSERT_CONTAINS(parse_err(text, "local", buf, sizeof buf),
                    "topics.d.list.configs.retention.ms: expected a value");
    ASSERT_CONTAINS(parse_err("profiles:\n  x:\n    brokers: 1\n", "x", buf, sizeof buf),
                    "missing required field 'profiles.x.broker_storage'");
    ASSERT_CONTAINS(parse_err("topics: {}\n", "x", buf, sizeof buf),
                    "missing required field 'profiles'");
    ASSERT_CONTAINS(parse_err("", "x", buf, sizeof buf), "empty file");
    /* a list where a map belongs (found by fuzz_topics_file: it crashed the parser) */
    ASSERT_CONTAINS(parse_err("profiles: {local: [brokers: 1, br]}\n", "local", buf, sizeof buf),
                    "t.yml:1:19: profiles.local: expected a map, got a list");
    ASSERT_CONTAINS(parse_err("profiles: {p: {brokers: 1, broker_storage: 1G}}\n"
                              "defaults: [1]\ntopics: {t: {partitions: 1}}\n",
                              "p", buf, sizeof buf),
                    "defaults: expected a map, got a list");
    /* no partitions anywhere */
    ASSERT_CONTAINS(parse_err("profiles: {p: {brokers: 1, broker_storage: 1G}}\n"
                              "topics: {t: {replication_factor: 1}}\n",
                              "p", buf, sizeof buf),
                    "missing required field 'topics.t.partitions'");
}

static void test_fit_check(void)
{
    struct kfk_topics_file *f = parse_ok(good, "local");
    struct err e = ERR_INIT;
    uint64_t bytes = 0;
    char text[4096], msg[600];

    /* 12 partitions x RF 2 x (1 MiB + 1 MiB) / 3 brokers = 16 MiB */
    ASSERT_OK(kfk_topics_file_check_fit(f, &bytes, &e));
    ASSERT_EQ(bytes, 16ULL << 20);
    kfk_topics_file_free(f);

    /* 12 x 2 x (1 GiB + 1 GiB default segment) / 2 = 24 GiB > 100 GiB? no: fits */
    f = parse_ok(good, "big");
    ASSERT_OK(kfk_topics_file_check_fit(f, &bytes, &e));
    ASSERT_EQ(bytes, 24ULL << 30);
    kfk_topics_file_free(f);

    (void)snprintf(text, sizeof text, "%s  d.huge:\n    partitions: 200\n", good);
    f = parse_ok(text, "big");
    ASSERT_ERRNO(kfk_topics_file_check_fit(f, &bytes, &e), -ENOSPC);
    ASSERT_CONTAINS(err_format(&e, msg, sizeof msg), "profile 'big': the topics may take 424.0 "
                                                     "GiB per broker");
    kfk_topics_file_free(f);

    (void)snprintf(text, sizeof text, "%s  d.unbounded:\n    configs: {retention.bytes: \"-1\"}\n",
                   good);
    f = parse_ok(text, "local");
    e = (struct err)ERR_INIT;
    ASSERT_ERRNO(kfk_topics_file_check_fit(f, &bytes, &e), -ERANGE);
    ASSERT_CONTAINS(err_format(&e, msg, sizeof msg), "topic 'd.unbounded' (profile 'local') has "
                                                     "no size bound");
    kfk_topics_file_free(f);
}

/* The file the stack applies: both profiles parse, fit, and keep the seed's settings. */
static void test_repository_file(void)
{
    static const char *const profiles[] = { "local", "production" };

    for (size_t k = 0; k < 2; k++) {
        struct kfk_topics_file *f = NULL;
        struct err e = ERR_INIT;
        uint64_t bytes;
        char msg[600];
        int r = kfk_topics_file_load(UT_SOURCE_DIR "/infrastructure/kafka/topics.yml", profiles[k],
                                     &f, &e);

        if (r < 0)
            T_FAIL("%s: %s", profiles[k], err_format(&e, msg, sizeof msg));
        ASSERT_OK(kfk_topics_file_check_fit(f, &bytes, &e));
        ASSERT_GE(f->n_specs, 1u);
        for (size_t i = 0; i < f->n_specs; i++) {
            ASSERT_EQ(f->specs[i].replication_factor, 2);
            ASSERT_STREQ(kfk_topic_spec_config(&f->specs[i], "retention.ms"), "604800000");
            ASSERT_STREQ(kfk_topic_spec_config(&f->specs[i], "unclean.leader.election.enable"),
                         "false");
            ASSERT_STREQ(kfk_topic_spec_config(&f->specs[i], "min.insync.replicas"), "1");
        }
        kfk_topics_file_free(f);
    }
}

T_MAIN(T_CASE(test_merge_order_and_defaults), T_CASE(test_errors_name_line_and_field),
       T_CASE(test_fit_check), T_CASE(test_repository_file))
