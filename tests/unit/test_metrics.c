/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/fd.h"
#include "metrics/metrics.h"
#include "t.h"

#define GOLDEN UT_SOURCE_DIR "/tests/golden/metrics_basic.txt"

static struct metrics_registry *build_basic(void)
{
    static const char *const svc_labels[] = { "service", NULL };
    static const char *const path_labels[] = { "path", "code", NULL };
    static const double buckets[] = { 0.001, 0.01, 0.1, 1 };
    struct metrics_registry *r = metrics_registry_new();
    struct metrics_family *restarts, *up, *latency, *odd;

    ASSERT_TRUE(r != NULL);
    ASSERT_OK(metrics_family_register(r, METRICS_COUNTER, "infra_service_restarts_total",
                                      "Restarts of a supervised service.", svc_labels, NULL, 0,
                                      &restarts));
    ASSERT_OK(metrics_family_register(r, METRICS_GAUGE, "infra_service_up",
                                      "1 when the service is up.\nSecond line \\ backslash.",
                                      svc_labels, NULL, 0, &up));
    ASSERT_OK(metrics_family_register(r, METRICS_HISTOGRAM, "http_request_duration_seconds",
                                      "Request latency.", path_labels, buckets, 4, &latency));
    ASSERT_OK(metrics_family_register(r, METRICS_GAUGE, "gauge_specials", "Special values.", NULL,
                                      NULL, 0, &odd));
    metrics_counter_add(metrics_series_get(restarts, (const char *[]){ "pg1" }), 3);
    metrics_counter_add(metrics_series_get(restarts, (const char *[]){ "redis\"1\\\n" }), 1);
    metrics_gauge_set(metrics_series_get(up, (const char *[]){ "pg1" }), 1);
    metrics_gauge_set(metrics_series_get(up, (const char *[]){ "pg2" }), 0.25);
    {
        struct metrics_series *s = metrics_series_get(latency, (const char *[]){ "/x", "200" });
        metrics_histogram_observe(s, 0.0005);
        metrics_histogram_observe(s, 0.001); /* le is inclusive */
        metrics_histogram_observe(s, 0.05);
        metrics_histogram_observe(s, 3);
    }
    metrics_gauge_set(metrics_series_get(odd, NULL), HUGE_VAL);
    return r;
}

static void test_golden(void)
{
    struct metrics_registry *r = build_basic();
    struct buf out = BUF_INIT(0), want = BUF_INIT(0);

    ASSERT_OK(metrics_write_text(r, &out));
    if (getenv("T_REGEN"))
        ASSERT_OK(file_write_atomic(GOLDEN, out.data, out.len, 0644));
    ASSERT_OK(file_read_all(GOLDEN, &want));
    ASSERT_STREQ(buf_str(&out), buf_str(&want));
    buf_release(&out);
    buf_release(&want);
    metrics_registry_free(r);
}

static void test_validation(void)
{
    struct metrics_registry *r = metrics_registry_new();
    struct metrics_family *f;
    static const double bad[] = { 1, 0.5 };

    ASSERT_ERRNO(metrics_family_register(r, METRICS_COUNTER, "9bad", "", NULL, NULL, 0, &f),
                 -EINVAL);
    ASSERT_ERRNO(metrics_family_register(r, METRICS_COUNTER, "ok", "",
                                         (const char *[]){ "__reserved", NULL }, NULL, 0, &f),
                 -EINVAL);
    ASSERT_ERRNO(metrics_family_register(r, METRICS_HISTOGRAM, "h", "",
                                         (const char *[]){ "le", NULL }, bad, 1, &f),
                 -EINVAL);
    ASSERT_ERRNO(metrics_family_register(r, METRICS_HISTOGRAM, "h", "", NULL, bad, 2, &f), -EINVAL);
    ASSERT_OK(metrics_family_register(r, METRICS_GAUGE, "dup", "", NULL, NULL, 0, &f));
    ASSERT_ERRNO(metrics_family_register(r, METRICS_GAUGE, "dup", "", NULL, NULL, 0, &f), -EEXIST);
    metrics_registry_free(r);
}

static void test_all_or_nothing(void)
{
    struct metrics_registry *r = build_basic();
    struct buf full = BUF_INIT(0);

    ASSERT_OK(metrics_write_text(r, &full));
    for (size_t max = 1; max < full.len; max += 7) {
        struct buf out = BUF_INIT(max);
        ASSERT_ERRNO(metrics_write_text(r, &out), -ENOBUFS);
        /* A prefix of the full output that ends at a complete line. */
        ASSERT_TRUE(strncmp(buf_str(&out), buf_str(&full), out.len) == 0);
        ASSERT_TRUE(out.len == 0 || out.data[out.len - 1] == '\n');
        /* Never a family header without a sample after it: the last line is a sample. */
        if (out.len) {
            const char *last = out.data + out.len - 1;
            while (last > out.data && last[-1] != '\n')
                last--;
            ASSERT_TRUE(last[0] != '#');
        }
        buf_release(&out);
    }
    buf_release(&full);
    metrics_registry_free(r);
}

static struct metrics_series *shared_counter;

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        metrics_counter_add(shared_counter, 1);
    return NULL;
}

static void test_concurrent_counter(void)
{
    struct metrics_registry *r = metrics_registry_new();
    struct metrics_family *f;
    pthread_t th[4];
    struct buf out = BUF_INIT(0);

    ASSERT_OK(metrics_family_register(r, METRICS_COUNTER, "c_total", "c", NULL, NULL, 0, &f));
    shared_counter = metrics_series_get(f, NULL);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, bump, NULL), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    ASSERT_OK(metrics_write_text(r, &out));
    ASSERT_CONTAINS(buf_str(&out), "c_total 400000\n");
    buf_release(&out);
    metrics_registry_free(r);
}

/* The text helpers for programs without a registry escape like the registry does. */
static void test_text_helpers(void)
{
    static const char *const ln[] = { "group", "partition" };
    const char *lv[] = { "a\"b\\c\nd", "3" };
    struct buf out = BUF_INIT(0), small = BUF_INIT(10);

    ASSERT_OK(metrics_text_header(&out, "x_lag", METRICS_GAUGE, "Lag.\nIn \\ messages."));
    ASSERT_OK(metrics_text_sample(&out, "x_lag", ln, lv, 2, 42));
    ASSERT_OK(metrics_text_sample(&out, "x_up", NULL, NULL, 0, 0.5));
    ASSERT_STREQ(buf_str(&out), "# HELP x_lag Lag.\\nIn \\\\ messages.\n"
                                "# TYPE x_lag gauge\n"
                                "x_lag{group=\"a\\\"b\\\\c\\nd\",partition=\"3\"} 42\n"
                                "x_up 0.5\n");
    ASSERT_ERRNO(metrics_text_header(&out, "x", _METRICS_TYPE_MAX, ""), -EINVAL);
    ASSERT_ERRNO(metrics_text_sample(&small, "x_lag", ln, lv, 2, 1), -ENOBUFS);
    buf_release(&out);
    buf_release(&small);
}

T_MAIN(T_CASE(test_golden), T_CASE(test_validation), T_CASE(test_all_or_nothing),
       T_CASE(test_concurrent_counter), T_CASE(test_text_helpers))
