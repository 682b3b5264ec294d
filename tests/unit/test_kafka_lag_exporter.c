/* SPDX-License-Identifier: MIT */
/* test_kafka_lag_exporter.c - kafka_lag_exporter: the exposition of hand-built adapter answers
 * (what librdkafka's mock cannot produce: consumer groups, shrunk ISRs), the server in process
 * against the mock cluster over real TCP (libcurl), and the program's command line, exit codes
 * and signals.  Every listener is on 127.0.0.1 port 0. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "kafka_lag_exporter/collect.h"
#include "kafka_lag_exporter/server.h"
#include "kafka_mock.h"
#include "metrics/metrics.h"
#include "srv.h"
#include "t.h"

#define MSEC USEC_PER_MSEC

/* text without its "# HELP" lines: the help wording is free, names, types, labels, values and
 * order are not. */
static char *without_help(const char *text)
{
    struct buf out = BUF_INIT(0);

    while (*text) {
        size_t n = strcspn(text, "\n") + (text[strcspn(text, "\n")] == '\n');
        if (!str_startswith(text, "# HELP "))
            ASSERT_OK(buf_append(&out, text, n));
        text += n;
    }
    return buf_detach(&out, NULL);
}

/* ===== The exposition of hand-built answers ===== */

/* Two brokers (listed out of order); topic "orders" with partition 0 under-replicated (ISR {2}
 * of {1,2}, led by 2, not its preferred leader) and partition 1 without a leader (listed
 * first), topic "audit" healthy; group "billing" with one known and one unknown lag, and a
 * group whose name needs every escape. */
struct fixture {
    char host_a[16], host_b[16], orders[16], audit[16], billing[16], weird[32];
    int32_t r12[2], r21[2], i2[1];
    struct kfk_broker brokers[2];
    struct kfk_partition orders_parts[2], audit_parts[1];
    struct kfk_topic topics[2];
    struct kfk_metadata md;
    struct kfk_partition_lag billing_lag[2], weird_lag[1];
    struct kfk_group_lag groups[2];
    struct klag_scrape scrape;
};

static void fixture_init(struct fixture *f)
{
    *f = (struct fixture){
        .host_a = "broker-a",
        .host_b = "broker-b",
        .orders = "orders",
        .audit = "audit",
        .billing = "billing",
        .weird = "we\"ird\\grp\n1",
        .r12 = { 1, 2 },
        .r21 = { 2, 1 },
        .i2 = { 2 },
    };
    f->brokers[0] = (struct kfk_broker){ .id = 2, .host = f->host_b, .port = 31002 };
    f->brokers[1] = (struct kfk_broker){ .id = 1, .host = f->host_a, .port = 31001 };
    f->orders_parts[0] = (struct kfk_partition){ .id = 1,
                                                 .leader = -1,
                                                 .replicas = f->r21,
                                                 .n_replicas = 2,
                                                 .isr = f->r21,
                                                 .n_isr = 2,
                                                 .kafka_error = 5 /* LEADER_NOT_AVAILABLE */ };
    f->orders_parts[1] = (struct kfk_partition){
        .id = 0, .leader = 2, .replicas = f->r12, .n_replicas = 2, .isr = f->i2, .n_isr = 1
    };
    f->audit_parts[0] = (struct kfk_partition){
        .id = 0, .leader = 2, .replicas = f->r21, .n_replicas = 2, .isr = f->r21, .n_isr = 2
    };
    f->topics[0] = (struct kfk_topic){ .name = f->orders,
                                       .partitions = f->orders_parts,
                                       .n_partitions = 2 };
    f->topics[1] =
            (struct kfk_topic){ .name = f->audit, .partitions = f->audit_parts, .n_partitions = 1 };
    f->md = (struct kfk_metadata){ .brokers = f->brokers,
                                   .n_brokers = 2,
                                   .topics = f->topics,
                                   .n_topics = 2,
                                   .controller_id = 1,
                                   .orig_broker_id = 1 };
    /* Group rows come sorted from the adapter (kafka.h), and so they are here. */
    f->billing_lag[0] = (struct kfk_partition_lag){
        .topic = f->orders, .partition = 0, .committed = 40, .high = 50, .lag = 10
    };
    f->billing_lag[1] = (struct kfk_partition_lag){ .topic = f->orders,
                                                    .partition = 1,
                                                    .committed = 7,
                                                    .high = -1,
                                                    .lag = -1,
                                                    .error = -ETIMEDOUT };
    f->weird_lag[0] = (struct kfk_partition_lag){
        .topic = f->audit, .partition = 0, .committed = 3, .high = 3, .lag = 0
    };
    f->groups[0] = (struct kfk_group_lag){ .group = f->billing,
                                           .state = "Stable",
                                           .partitions = f->billing_lag,
                                           .n_partitions = 2,
                                           .total_lag = 10,
                                           .n_unknown = 1 };
    f->groups[1] = (struct kfk_group_lag){
        .group = f->weird, .state = "Empty", .partitions = f->weird_lag, .n_partitions = 1
    };
    f->scrape = (struct klag_scrape)KLAG_SCRAPE_INIT;
    f->scrape.metadata = &f->md;
    f->scrape.groups = f->groups;
    f->scrape.n_groups = 2;
    f->scrape.duration_usec = 250 * MSEC;
}

static const char expected_full[] =
        "# TYPE kafka_brokers gauge\n"
        "kafka_brokers 2\n"
        "# TYPE kafka_broker_info gauge\n"
        "kafka_broker_info{address=\"broker-a:31001\",id=\"1\"} 1\n"
        "kafka_broker_info{address=\"broker-b:31002\",id=\"2\"} 1\n"
        "# TYPE kafka_topic_partitions gauge\n"
        "kafka_topic_partitions{topic=\"audit\"} 1\n"
        "kafka_topic_partitions{topic=\"orders\"} 2\n"
        "# TYPE kafka_topic_partition_leader gauge\n"
        "kafka_topic_partition_leader{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_leader{topic=\"orders\",partition=\"0\"} 2\n"
        "kafka_topic_partition_leader{topic=\"orders\",partition=\"1\"} -1\n"
        "# TYPE kafka_topic_partition_replicas gauge\n"
        "kafka_topic_partition_replicas{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_replicas{topic=\"orders\",partition=\"0\"} 2\n"
        "kafka_topic_partition_replicas{topic=\"orders\",partition=\"1\"} 2\n"
        "# TYPE kafka_topic_partition_in_sync_replica gauge\n"
        "kafka_topic_partition_in_sync_replica{topic=\"audit\",partition=\"0\"} 2\n"
        "kafka_topic_partition_in_sync_replica{topic=\"orders\",partition=\"0\"} 1\n"
        "kafka_topic_partition_in_sync_replica{topic=\"orders\",partition=\"1\"} 2\n"
        "# TYPE kafka_topic_partition_leader_is_preferred gauge\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"audit\",partition=\"0\"} 1\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"orders\",partition=\"0\"} 0\n"
        "kafka_topic_partition_leader_is_preferred{topic=\"orders\",partition=\"1\"} 0\n"
        "# TYPE kafka_topic_partition_under_replicated_partition gauge\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"audit\",partition=\"0\"} 0\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"orders\",partition=\"0\"} 1\n"
        "kafka_topic_partition_under_replicated_partition{topic=\"orders\",partition=\"1\"} 0\n"
        "# TYPE kafka_consumergroup_current_offset gauge\n"
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",topic=\"orders\","
        "partition=\"0\"} 40\n"
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",topic=\"orders\","
        "partition=\"1\"} 7\n"
        "kafka_consumergroup_current_offset{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\","
        "partition=\"0\"} 3\n"
        "# TYPE kafka_consumergroup_current_offset_sum gauge\n"
        "kafka_consumergroup_current_offset_sum{consumergroup=\"billing\",topic=\"orders\"} 47\n"
        "kafka_consumergroup_current_offset_sum{consumergroup=\"we\\\"ird\\\\grp\\n1\","
        "topic=\"audit\"} 3\n"
        "# TYPE kafka_consumergroup_lag gauge\n"
        "kafka_consumergroup_lag{consumergroup=\"billing\",topic=\"orders\",partition=\"0\"} 10\n"
        "kafka_consumergroup_lag{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\","
        "partition=\"0\"} 0\n"
        "# TYPE kafka_consumergroup_lag_sum gauge\n"
        "kafka_consumergroup_lag_sum{consumergroup=\"we\\\"ird\\\\grp\\n1\",topic=\"audit\"} 0\n"
        "# TYPE kafka_lag_exporter_lag_unknown gauge\n"
        "kafka_lag_exporter_lag_unknown{consumergroup=\"billing\"} 1\n"
        "kafka_lag_exporter_lag_unknown{consumergroup=\"we\\\"ird\\\\grp\\n1\"} 0\n"
        "# TYPE kafka_lag_exporter_consumergroup_scrape_success gauge\n"
        "kafka_lag_exporter_consumergroup_scrape_success 1\n"
        "# TYPE kafka_lag_exporter_scrape_success gauge\n"
        "kafka_lag_exporter_scrape_success 1\n"
        "# TYPE kafka_lag_exporter_scrape_duration_seconds gauge\n"
        "kafka_lag_exporter_scrape_duration_seconds 0.25\n";

static void test_render_hand_built(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    char *got;

    fixture_init(&f);
    ASSERT_OK(buf_puts(&out, "kept\n")); /* rendering appends */
    ASSERT_OK(klag_render(&f.scrape, &out));
    ASSERT_TRUE(str_startswith(buf_str(&out), "kept\n# HELP kafka_brokers "));
    got = without_help(buf_str(&out) + 5);
    ASSERT_STREQ(got, expected_full);
    free(got);
    /* Every family has exactly one HELP line, right before its TYPE line. */
    for (const char *p = buf_str(&out); (p = strstr(p, "\n# TYPE ")); p++) {
        const char *help = p;
        while (help > out.data && help[-1] != '\n')
            help--;
        ASSERT_TRUE(str_startswith(help, "# HELP "));
        ASSERT_TRUE(strncmp(help + 7, p + 8, strcspn(p + 8, " ")) == 0);
    }
    buf_release(&out);
}

/* The group list did not come back: the metadata series stay, no group series at all. */
static void test_render_groups_unavailable(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    const char *text;

    fixture_init(&f);
    f.scrape.groups = NULL;
    f.scrape.n_groups = 0;
    f.scrape.groups_error = -EOPNOTSUPP;
    ASSERT_OK(klag_render(&f.scrape, &out));
    text = buf_str(&out);
    ASSERT_CONTAINS(text, "\nkafka_topic_partitions{topic=\"orders\"} 2\n");
    ASSERT_TRUE(!strstr(text, "kafka_consumergroup"));
    ASSERT_TRUE(!strstr(text, "lag_unknown"));
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_consumergroup_scrape_success 0\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_scrape_success 1\n");
    buf_release(&out);
}

/* One group's offsets could not be read: its series are missing, the others' stay. */
static void test_render_group_error(void)
{
    struct fixture f;
    struct buf out = BUF_INIT(0);
    const char *text;

    fixture_init(&f);
    f.groups[0].error = -ECONNRESET;
    ASSERT_OK(klag_render(&f.scrape, &out));
    text = buf_str(&out);
    ASSERT_TRUE(!strstr(text, "billing"));
    ASSERT_CONTAINS(text,
                    "kafka_lag_exporter_lag_unknown{consumergroup=\"we\\\"ird\\\\grp\\n1\"} 0\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_consumergroup_scrape_success 0\n");
    buf_release(&out);
}

/* The cluster did not answer: the two own gauges (HELP and TYPE included), nothing else. */
static void test_render_failed_scrape(void)
{
    struct klag_scrape s = KLAG_SCRAPE_INIT;
    struct buf out = BUF_INIT(0);
    char *got;

    s.metadata_error = -ECONNREFUSED;
    s.duration_usec = 1500;
    ASSERT_OK(klag_render(&s, &out));
    ASSERT_TRUE(str_startswith(buf_str(&out), "# HELP kafka_lag_exporter_scrape_success "));
    ASSERT_CONTAINS(buf_str(&out), "\n# HELP kafka_lag_exporter_scrape_duration_seconds ");
    got = without_help(buf_str(&out));
    ASSERT_STREQ(got, "# TYPE kafka_lag_exporter_scrape_success gauge\n"
                      "kafka_lag_exporter_scrape_success 0\n"
                      "# TYPE kafka_lag_exporter_scrape_duration_seconds gauge\n"
                      "kafka_lag_exporter_scrape_duration_seconds 0.0015\n");
    free(got);
    buf_release(&out);
}

/* A full buffer fails the whole rendering and leaves out as it was. */
static void test_render_enobufs(void)
{
    struct fixture f;
    struct buf full = BUF_INIT(0);

    fixture_init(&f);
    ASSERT_OK(klag_render(&f.scrape, &full));
    for (size_t max = 8; max < full.len; max += 97) {
        struct buf out = BUF_INIT(max);
        ASSERT_OK(buf_puts(&out, "pre\n"));
        ASSERT_ERRNO(klag_render(&f.scrape, &out), -ENOBUFS);
        ASSERT_STREQ(buf_str(&out), "pre\n");
        buf_release(&out);
    }
    buf_release(&full);
}

static void test_scrape_bad_args(void)
{
    struct klag_scrape s;
    struct klag_server *srv = NULL;

    /* The adapter refuses an empty bootstrap: a failed scrape, not a crash. */
    klag_scrape_run("", 100 * MSEC, &s);
    ASSERT_FALSE(klag_scrape_success(&s));
    ASSERT_ERRNO(s.metadata_error, -EINVAL);
    ASSERT_CONTAINS(s.message, "bootstrap");
    klag_scrape_release(&s);
    klag_scrape_release(NULL);
    ASSERT_ERRNO(klag_server_start(&(struct klag_server_config){ .listen = "127.0.0.1:0",
                                                                 .bootstrap = "",
                                                                 .timeout_usec = MSEC },
                                   &srv),
                 -EINVAL);
    ASSERT_ERRNO(klag_server_start(&(struct klag_server_config){ .listen = "no-port",
                                                                 .bootstrap = "127.0.0.1:1",
                                                                 .timeout_usec = MSEC },
                                   &srv),
                 -EINVAL);
    ASSERT_TRUE(srv == NULL);
    ASSERT_TRUE(klag_server_stop(NULL) == NULL);
}

/* ===== The server in process, over TCP ===== */

struct resp {
    long status;
    struct buf body;
    char content_type[128];
    uint64_t usec; /* how long the request took */
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return buf_append(userdata, p, size * n) == 0 ? size * n : 0;
}

static void http_get(uint16_t port, const char *path, struct resp *res)
{
    CURL *c = curl_easy_init();
    char url[128];
    char *ct = NULL;
    uint64_t t0 = now_usec();

    *res = (struct resp){ .body = BUF_INIT(0) };
    ASSERT_TRUE(c != NULL);
    (void)snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    ASSERT_EQ(curl_easy_setopt(c, CURLOPT_URL, url), CURLE_OK);
    ASSERT_EQ(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
    ASSERT_EQ(curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body), CURLE_OK);
    ASSERT_EQ(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L), CURLE_OK);
    ASSERT_EQ(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
    ASSERT_EQ(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status), CURLE_OK);
    ASSERT_EQ(curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct), CURLE_OK);
    (void)snprintf(res->content_type, sizeof res->content_type, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    res->usec = now_usec() - t0;
}

static struct klag_server *start_server(const char *bootstrap, uint64_t timeout_usec)
{
    struct klag_server *srv = NULL;

    ASSERT_OK(klag_server_start(&(struct klag_server_config){ .listen = "127.0.0.1:0",
                                                              .bootstrap = bootstrap,
                                                              .timeout_usec = timeout_usec },
                                &srv));
    ASSERT_NE(klag_server_port(srv), 0);
    return srv;
}

/* Sample lines (not comments) in text. */
static unsigned count_samples(const char *text)
{
    unsigned n = 0;

    for (const char *p = text; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n'))
        n += p[0] != '#' && p[0] != '\n';
    return n;
}

/* librdkafka's mock cluster (tests/lib/kafka_mock.h): metadata is real, but the mock has no
 * ListGroups handler, so kfk_consumer_lag() fails with -EOPNOTSUPP (test_kafka.c
 * test_lag_all_groups_mock_lacks_list_groups).  The scrape still succeeds: the broker and topic
 * series are there, kafka_lag_exporter_consumergroup_scrape_success is 0 and no
 * kafka_consumergroup_* series is written.  The group series are covered by the hand-built
 * cases above. */
static void test_server_mock_cluster(void)
{
    struct kmock m;
    struct klag_server *srv;
    struct resp res;
    const char *text;
    char line[256];

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "orders", 3, 3), 0);
    ASSERT_EQ(rd_kafka_mock_topic_create(m.mc, "audit", 1, 3), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 0, 1), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 1, 3), 0);
    ASSERT_EQ(rd_kafka_mock_partition_set_leader(m.mc, "orders", 2, -1), 0);
    srv = start_server(m.bootstraps, 5000 * MSEC);

    http_get(klag_server_port(srv), "/metrics", &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_STREQ(res.content_type, METRICS_CONTENT_TYPE);
    text = buf_str(&res.body);
    ASSERT_CONTAINS(text, "\nkafka_brokers 3\n");
    for (int id = 1; id <= 3; id++) {
        (void)snprintf(line, sizeof line,
                       "\nkafka_broker_info{address=\"127.0.0.1:%u\",id=\"%d\"} 1\n",
                       (unsigned)kmock_port(&m, id), id);
        ASSERT_CONTAINS(text, line);
    }
    /* Topics by name, partitions by id. */
    ASSERT_CONTAINS(text, "\nkafka_topic_partitions{topic=\"audit\"} 1\n"
                          "kafka_topic_partitions{topic=\"orders\"} 3\n");
    ASSERT_CONTAINS(text, "\nkafka_topic_partition_leader{topic=\"orders\",partition=\"0\"} 1\n"
                          "kafka_topic_partition_leader{topic=\"orders\",partition=\"1\"} 3\n"
                          "kafka_topic_partition_leader{topic=\"orders\",partition=\"2\"} -1\n");
    ASSERT_CONTAINS(text, "\nkafka_topic_partition_replicas{topic=\"orders\",partition=\"2\"} 3\n");
    /* The mock keeps ISR == replicas whatever happens. */
    ASSERT_CONTAINS(
            text, "\nkafka_topic_partition_in_sync_replica{topic=\"orders\",partition=\"2\"} 3\n");
    ASSERT_CONTAINS(text, "\nkafka_topic_partition_under_replicated_partition{topic=\"orders\","
                          "partition=\"1\"} 0\n");
    ASSERT_CONTAINS(text, "\nkafka_topic_partition_leader_is_preferred{topic=\"orders\","
                          "partition=\"2\"} 0\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_scrape_success 1\n");
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_consumergroup_scrape_success 0\n");
    ASSERT_TRUE(!strstr(text, "kafka_consumergroup_"));
    ASSERT_TRUE(!strstr(text, "lag_unknown"));
    ASSERT_CONTAINS(text, "\nkafka_lag_exporter_scrape_duration_seconds ");
    buf_release(&res.body);

    http_get(klag_server_port(srv), "/healthz", &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_STREQ(buf_str(&res.body), "ok\n");
    buf_release(&res.body);
    http_get(klag_server_port(srv), "/other", &res);
    ASSERT_EQ(res.status, 404);
    buf_release(&res.body);

    srv = klag_server_stop(srv);
    kmock_stop(&m);
}

/* Every broker down: still a 200, with only the two own gauges; refused at once. */
static void test_server_cluster_down(void)
{
    struct kmock m;
    struct klag_server *srv;
    struct resp res;

    kmock_start(&m, 3);
    ASSERT_EQ(rd_kafka_mock_broker_set_down(m.mc, -1), 0);
    srv = start_server(m.bootstraps, 5000 * MSEC);
    http_get(klag_server_port(srv), "/metrics", &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_LE(res.usec, 2500 * MSEC);
    ASSERT_CONTAINS(buf_str(&res.body), "\nkafka_lag_exporter_scrape_success 0\n");
    ASSERT_EQ(count_samples(buf_str(&res.body)), 2);
    buf_release(&res.body);
    srv = klag_server_stop(srv);
    kmock_stop(&m);
}

struct bg_get {
    uint16_t port;
    struct resp res;
};

static void *bg_get_main(void *userdata)
{
    struct bg_get *g = userdata;

    http_get(g->port, "/metrics", &g->res);
    return NULL;
}

/* Brokers that accept connections and never answer: the scrape ends at --timeout, two
 * concurrent scrapes are served one after the other, and /healthz answers meanwhile. */
static void test_server_hung_cluster(void)
{
    struct kmock m;
    struct klag_server *srv;
    struct bg_get g[2];
    pthread_t th[2];
    struct resp res;

    kmock_start(&m, 1);
    kmock_hang(&m, 30000);
    srv = start_server(m.bootstraps, 600 * MSEC);
    for (int i = 0; i < 2; i++) {
        g[i] = (struct bg_get){ .port = klag_server_port(srv) };
        ASSERT_EQ(pthread_create(&th[i], NULL, bg_get_main, &g[i]), 0);
    }
    sleep_usec(100 * MSEC);
    http_get(klag_server_port(srv), "/healthz", &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_LE(res.usec, 300 * MSEC);
    buf_release(&res.body);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        ASSERT_EQ(g[i].res.status, 200);
        ASSERT_CONTAINS(buf_str(&g[i].res.body), "\nkafka_lag_exporter_scrape_success 0\n");
        ASSERT_LE(g[i].res.usec, 3000 * MSEC);
        buf_release(&g[i].res.body);
    }
    /* Serialized: the later of the two waited for the earlier one's whole scrape. */
    ASSERT_GE(g[0].res.usec > g[1].res.usec ? g[0].res.usec : g[1].res.usec, 1150 * MSEC);
    srv = klag_server_stop(srv);
    kmock_stop(&m);
}

/* ===== The program ===== */

/* Starts the program with args (NULL-terminated); its stdout and stderr go to *ret_fd. */
static pid_t spawn(const char *const *args, int *ret_fd)
{
    const char *argv[16] = { KLAG_BIN };
    size_t n = 1;
    int p[2];
    pid_t pid;

    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    ASSERT_OK(pipe2(p, O_CLOEXEC));
    pid = fork();
    ASSERT_OK(pid);
    if (pid == 0) {
        if (dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(126);
        execv(KLAG_BIN, (char *const *)(uintptr_t)argv); /* exec does not write argv */
        _exit(127);
    }
    (void)close(p[1]);
    *ret_fd = p[0];
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        ASSERT_EQ(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the program to its end: its exit code, and what it wrote into out. */
static int run(const char *const *args, struct buf *out)
{
    char tmp[4096];
    int fd;
    pid_t pid = spawn(args, &fd);
    ssize_t k;

    buf_reset(out);
    while ((k = read(fd, tmp, sizeof tmp)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        ASSERT_TRUE(k > 0);
        ASSERT_OK(buf_append(out, tmp, (size_t)k));
    }
    (void)close(fd);
    return wait_exit(pid);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_usage_errors(void)
{
    struct buf out = BUF_INIT(0);

    ASSERT_EQ(run(ARGS("--bootstrap", "127.0.0.1:1", "--bogus"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "kafka_lag_exporter: unknown option '--bogus' (see --help)\n");
    ASSERT_EQ(run(ARGS("-x"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "unknown option '-x'");
    ASSERT_EQ(run(ARGS("--listen", "127.0.0.1:0"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "--bootstrap is required");
    ASSERT_EQ(run((const char *const[]){ NULL }, &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "--bootstrap is required");
    ASSERT_EQ(run(ARGS("--bootstrap"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "option '--bootstrap' needs an argument");
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1,,b:2"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "invalid --bootstrap 'a:1,,b:2'");
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "--timeout", "0"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "invalid --timeout '0'");
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "--timeout", "soon"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "invalid --timeout 'soon'");
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "--timeout", "11m"), &out), 2);
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "--listen", "localhost"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "invalid --listen 'localhost'");
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "--listen", "127.0.0.1:65536"), &out), 2);
    ASSERT_EQ(run(ARGS("--bootstrap", "a:1", "extra"), &out), 2);
    ASSERT_CONTAINS(buf_str(&out), "unexpected argument 'extra'");

    ASSERT_EQ(run(ARGS("--help"), &out), 0);
    ASSERT_TRUE(str_startswith(buf_str(&out), "usage: kafka_lag_exporter --bootstrap"));
    ASSERT_CONTAINS(buf_str(&out), "Exit codes:");
    ASSERT_EQ(run(ARGS("--version"), &out), 0);
    ASSERT_STREQ(buf_str(&out), "kafka_lag_exporter " UT_VERSION "\n");
    buf_release(&out);
}

/* A port in use: exit code 1, and the message names the address and the error. */
static void test_cannot_listen(void)
{
    struct buf out = BUF_INIT(0);
    char listen_addr[32], want[96];
    uint16_t port = 0;
    int fd = srv_listen(0, 1, &port);

    ASSERT_OK(fd);
    (void)snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%u", (unsigned)port);
    ASSERT_EQ(run(ARGS("--bootstrap", "127.0.0.1:1", "--listen", listen_addr), &out), 1);
    (void)snprintf(want, sizeof want, "cannot listen on '%s' (EADDRINUSE): ", listen_addr);
    ASSERT_CONTAINS(buf_str(&out), want);
    ASSERT_CONTAINS(buf_str(&out), strerror(EADDRINUSE));
    (void)close(fd);
    buf_release(&out);
}

/* Reads the program's output until the line that names its port. */
static uint16_t read_port(int fd, struct buf *out)
{
    uint64_t deadline = now_usec() + 10000 * MSEC;
    const char *p;
    uint64_t port;

    while (!(p = strstr(buf_str(out), "(port "))) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char tmp[1024];
        ssize_t k;

        ASSERT_TRUE(now_usec() < deadline);
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        k = read(fd, tmp, sizeof tmp);
        ASSERT_TRUE(k > 0);
        ASSERT_OK(buf_append(out, tmp, (size_t)k));
    }
    p += 6;
    {
        char digits[8] = { 0 };
        memcpy(digits, p, strspn(p, "0123456789") < 7 ? strspn(p, "0123456789") : 7);
        ASSERT_OK(parse_u64(digits, &port));
    }
    ASSERT_TRUE(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* The program serves on port 0, ignores SIGHUP and stops with exit code 0 on SIGTERM. */
static void test_program_serves_and_stops(void)
{
    char bootstrap[32];
    struct buf out = BUF_INIT(0);
    struct resp res;
    uint16_t port;
    pid_t pid;
    int fd;

    /* A port nobody listens on: every scrape is refused at once. */
    port = srv_free_port();
    ASSERT_NE(port, 0);
    (void)snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%u", (unsigned)port);
    pid = spawn(ARGS("--bootstrap", bootstrap, "--listen", "127.0.0.1:0", "--timeout", "2s"), &fd);
    port = read_port(fd, &out);
    ASSERT_CONTAINS(buf_str(&out), "listening on 127.0.0.1:0");
    http_get(port, "/healthz", &res);
    ASSERT_EQ(res.status, 200);
    buf_release(&res.body);
    http_get(port, "/metrics", &res);
    ASSERT_EQ(res.status, 200);
    ASSERT_CONTAINS(buf_str(&res.body), "\nkafka_lag_exporter_scrape_success 0\n");
    buf_release(&res.body);
    ASSERT_OK(kill(pid, SIGHUP));
    sleep_usec(100 * MSEC);
    http_get(port, "/healthz", &res);
    ASSERT_EQ(res.status, 200);
    buf_release(&res.body);
    ASSERT_OK(kill(pid, SIGTERM));
    ASSERT_EQ(wait_exit(pid), 0);
    (void)close(fd);
    buf_release(&out);
}

T_MAIN(T_CASE(test_render_hand_built), T_CASE(test_render_groups_unavailable),
       T_CASE(test_render_group_error), T_CASE(test_render_failed_scrape),
       T_CASE(test_render_enobufs), T_CASE(test_scrape_bad_args), T_CASE(test_server_mock_cluster),
       T_CASE(test_server_cluster_down), T_CASE(test_server_hung_cluster),
       T_CASE(test_usage_errors), T_CASE(test_cannot_listen), T_CASE(test_program_serves_and_stops))
