/* SPDX-License-Identifier: MIT */
/* The drill record shared by every cluster: write gaps from acknowledgement times, the JSON
 * timeline, the HTML page, fault names.  The drills themselves run against the real stack
 * (tests/integration/test_drill_*.sh). */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "drill/drill.h"
#include "drill/drill_kafka.h"
#include "drill/drill_redis.h"
#include "drill/drill_report.h"

#define MS USEC_PER_MSEC

static void test_gap_around_the_fault(void)
{
    /* acks every 10 ms from 1 s to 3 s, fault at 2.5 s, next ack at 4.2 s, then to 5 s */
    uint64_t v[400];
    size_t n = 0;
    struct drill_run r = { .start_at = 1000 * MS, .fault_at = 2500 * MS, .end_at = 5000 * MS };

    for (uint64_t t = 1000; t <= 3000; t += 10)
        v[n++] = t * MS;
    for (uint64_t t = 4200; t <= 4900; t += 10)
        v[n++] = t * MS;
    drill_run_set_acks(&r, v, n);
    ASSERT_EQ(r.n_acks, n);
    /* a leader that goes on acknowledging after the fault: the outage starts when it stops */
    ASSERT_EQ(r.gap_usec, 1200 * MS);
    ASSERT_EQ(r.max_gap_usec, 1200 * MS);
    drill_run_release(&r);
    ASSERT_TRUE(r.acks == NULL);
}

static void test_gap_without_recovery(void)
{
    uint64_t v[] = { 1300 * MS, 1100 * MS, 1200 * MS }; /* unsorted: sorted on the way in */
    struct drill_run r = { .start_at = 1000 * MS, .fault_at = 1250 * MS, .end_at = 9000 * MS };

    drill_run_set_acks(&r, v, 3);
    ASSERT_EQ(r.acks[0], 1100 * MS);
    ASSERT_EQ(r.gap_usec, 7700 * MS); /* from the last ack to the end */
    drill_run_release(&r);

    r = (struct drill_run){ .start_at = 1000 * MS, .fault_at = 1500 * MS, .end_at = 9000 * MS };
    drill_run_set_acks(&r, v, 3);
    ASSERT_EQ(r.gap_usec, 7700 * MS); /* none after the fault at all */
    drill_run_release(&r);

    r = (struct drill_run){ .start_at = 1000 * MS, .fault_at = 1500 * MS, .end_at = 9000 * MS };
    drill_run_set_acks(&r, NULL, 0);
    ASSERT_EQ(r.gap_usec, 8000 * MS); /* nothing ever acknowledged */
    drill_run_release(&r);
}

static json_t *sample_doc(void)
{
    uint64_t v[] = { 1050 * MS, 1060 * MS, 1150 * MS, 1950 * MS };
    struct drill_run r = { .cluster = "redis",
                           .fault = "crash",
                           .victim = "redis1",
                           .new_leader = "redis2",
                           .tally = { { .name = "plain", .acked = 2, .lost = 1 },
                                      { .name = "wait", .acked = 2 } },
                           .healed = true,
                           .start_at = 1000 * MS,
                           .fault_at = 1200 * MS,
                           .heal_at = 1900 * MS,
                           .end_at = 2000 * MS };
    json_t *doc, *run;

    (void)snprintf(r.note, sizeof r.note, "<b>&</b>");
    drill_run_set_acks(&r, v, 4);
    r.evidence = json_pack("{s:{s:s}}", "evidence", "old_master", "redis1"); /* owned by r */
    run = drill_run_json(&r, true);
    drill_run_release(&r);
    ASSERT_TRUE(r.evidence == NULL);
    doc = json_pack("{s:s, s:s, s:[o], s:{s:f, s:f, s:f, s:f}, s:b}", "cluster", "redis", "fault",
                    "crash", "runs", run, "gap_ms", "min", 750.0, "median", 750.0, "p95", 750.0,
                    "max", 750.0, "passed", true);
    ASSERT_TRUE(doc != NULL);
    return doc;
}

static void test_json_timeline(void)
{
    json_t *doc = sample_doc(), *run = json_array_get(json_object_get(doc, "runs"), 0);
    json_t *tl = json_object_get(run, "timeline"), *bins = json_object_get(tl, "acks_per_100ms");

    ASSERT_TRUE(json_is_true(json_object_get(run, "passed")));
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(run, "plain"), "lost")), 1);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(run, "wait"), "acked")), 2);
    /* a fault's evidence is the run's, and outlives drill_run_release() in the JSON */
    ASSERT_STREQ(json_string_value(json_object_get(json_object_get(run, "evidence"), "old_master")),
                 "redis1");
    ASSERT_EQ(json_real_value(json_object_get(run, "gap_ms")), 800.0);
    ASSERT_EQ(json_real_value(json_object_get(tl, "fault_ms")), 200.0);
    ASSERT_EQ(json_real_value(json_object_get(tl, "resume_ms")), -1.0); /* never */
    ASSERT_EQ(json_real_value(json_object_get(tl, "heal_ms")), 900.0);
    ASSERT_EQ(json_array_size(bins), 11u); /* 0..1000 ms in 100 ms bins */
    ASSERT_EQ(json_integer_value(json_array_get(bins, 0)), 2);
    ASSERT_EQ(json_integer_value(json_array_get(bins, 1)), 1);
    ASSERT_EQ(json_integer_value(json_array_get(bins, 9)), 1);
    json_decref(doc);
}

static void test_html_page(void)
{
    char path[] = "/tmp/ut-drill-html.XXXXXX";
    int fd = mkstemp(path);
    json_t *docs = json_array();
    struct buf b = BUF_INIT(0);

    ASSERT_GE(fd, 0);
    close(fd);
    json_array_append_new(docs, sample_doc());
    ASSERT_OK(drill_html_write(path, docs));
    ASSERT_GE(file_read_all(path, &b), 0);
    ASSERT_CONTAINS(b.data, "<svg");
    ASSERT_CONTAINS(b.data, "fault 0.2 s");
    ASSERT_CONTAINS(b.data, "healed 0.9 s");
    ASSERT_CONTAINS(b.data, "&lt;b&gt;&amp;&lt;/b&gt;"); /* the note, escaped */
    ASSERT_TRUE(strstr(b.data, "<script") == NULL);
    buf_release(&b);
    unlink(path);
    ASSERT_ERRNO(drill_html_write("/nonexistent-dir/x.html", docs), -ENOENT);
    json_decref(docs);
}

static void test_fault_names(void)
{
    enum drill_redis_fault rf;
    enum drill_kafka_fault kf;
    enum drill_kafka_victim kv;

    for (unsigned i = 0; i < _DRILL_REDIS_FAULT_MAX; i++) {
        ASSERT_OK(drill_redis_fault_from_string(drill_redis_fault_to_string(i), &rf));
        ASSERT_EQ((unsigned)rf, i);
    }
    for (unsigned i = 0; i < _DRILL_KAFKA_FAULT_MAX; i++) {
        ASSERT_OK(drill_kafka_fault_from_string(drill_kafka_fault_to_string(i), &kf));
        ASSERT_EQ((unsigned)kf, i);
    }
    ASSERT_ERRNO(drill_redis_fault_from_string("host-death", &rf), -EINVAL);
    ASSERT_ERRNO(drill_kafka_fault_from_string("switchover", &kf), -EINVAL);
    ASSERT_TRUE(drill_redis_fault_to_string(_DRILL_REDIS_FAULT_MAX) == NULL);
    /* the Kafka victims */
    ASSERT_OK(drill_kafka_victim_from_string("controller", &kv));
    ASSERT_EQ(kv, DRILL_KAFKA_VICTIM_CONTROLLER);
    ASSERT_STREQ(drill_kafka_victim_to_string(DRILL_KAFKA_VICTIM_LEADER), "leader");
    ASSERT_ERRNO(drill_kafka_victim_from_string("follower", &kv), -EINVAL);
    ASSERT_TRUE(drill_kafka_victim_to_string(_DRILL_KAFKA_VICTIM_MAX) == NULL);
}

/* --fault partition needs every broker in a namespace on its own address; the run's findings
 * (extra) go into its JSON and are freed with it. */
static void test_kafka_partition_check_and_evidence(void)
{
    struct drill_kafka_broker main_stack[] = { { .name = "kafka1", .port = 9092 },
                                               { .name = "kafka2", .port = 9093 } };
    struct drill_kafka_broker netns[] = {
        { .name = "kafka1", .port = 9092, .host = "10.233.0.11", .netns = "ut-drill-kf1" },
        { .name = "kafka2", .port = 9093, .host = "10.233.0.12", .netns = "ut-drill-kf2" },
    };
    struct drill_kafka_target t = { .brokers = main_stack, .n_brokers = 2 };
    struct drill_run r = { .start_at = 1000 * MS, .fault_at = 2000 * MS, .end_at = 3000 * MS };
    struct err e = ERR_INIT;
    char msg[512];
    json_t *o;

    ASSERT_ERRNO(drill_kafka_partition_check(&t, &e), -EINVAL);
    err_format(&e, msg, sizeof msg);
    ASSERT_TRUE(strstr(msg, "network namespaces (kafka1 has no netns)") != NULL);
    ASSERT_TRUE(strstr(msg, "drill-netns.sh --cluster kafka up") != NULL);
    netns[1].host = NULL;
    t.brokers = netns;
    ASSERT_ERRNO(drill_kafka_partition_check(&t, &e), -EINVAL);
    err_format(&e, msg, sizeof msg);
    ASSERT_TRUE(strstr(msg, "kafka2 has no address") != NULL);
    netns[1].host = "10.233.0.12";
    ASSERT_OK(drill_kafka_partition_check(&t, &e));

    r.evidence = json_pack("{s:{s:b}}", "partition", "victim_was_controller", 1);
    o = drill_run_json(&r, true);
    ASSERT_TRUE(json_is_true(
            json_object_get(json_object_get(o, "partition"), "victim_was_controller")));
    ASSERT_TRUE(json_is_string(json_object_get(o, "note"))); /* the common fields stay */
    json_decref(o);
    drill_run_release(&r);
    ASSERT_TRUE(r.evidence == NULL);
}

static void test_stats(void)
{
    uint64_t v[] = { 5, 1, 4, 2, 3, 10, 9, 8, 7, 6 };
    struct drill_stats s;

    drill_stats(v, 10, &s);
    ASSERT_EQ(s.min, 1u);
    ASSERT_EQ(s.median, 5u); /* (5 + 6) / 2 */
    ASSERT_EQ(s.p95, 10u);   /* nearest rank of 10 runs: the slowest */
    ASSERT_EQ(s.max, 10u);
}

T_MAIN(T_CASE(test_gap_around_the_fault), T_CASE(test_gap_without_recovery),
       T_CASE(test_json_timeline), T_CASE(test_html_page), T_CASE(test_fault_names),
       T_CASE(test_stats), T_CASE(test_kafka_partition_check_and_evidence))
