/* SPDX-License-Identifier: MIT */
/* test_schedule.c - scheduled services: the stack file's `schedule:` and `jobs:` (parsing and
 * errors), due times in UTC, the job state file, the Prometheus textfile, the status codec. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"
#include "stack/stack.h"
#include "supervise/supervise.h"
#include "supervise/sv_int.h"
#include "t.h"

#define SEC  USEC_PER_SEC
#define HOUR (3600 * SEC)
#define DAY  (24 * HOUR)

static struct stack *parse_ok(const char *text)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    int r = stack_parse("t.yml", text, strlen(text), &s, &e);

    if (r < 0)
        T_FAIL("parse failed: %d %u:%u %s", r, e.line, e.col, e.msg);
    return s;
}

#define EXPECT_ERR(text_, line_, col_, frag_)                                           \
    do {                                                                                \
        struct stack *s__ = NULL;                                                       \
        struct err ee__ = ERR_INIT;                                                     \
        ASSERT_ERRNO(stack_parse("t.yml", text_, strlen(text_), &s__, &ee__), -EINVAL); \
        ASSERT_TRUE(s__ == NULL);                                                       \
        ASSERT_CONTAINS(ee__.msg, frag_);                                               \
        ASSERT_EQ(ee__.line, line_);                                                    \
        ASSERT_EQ(ee__.col, col_);                                                      \
    } while (0)

#define HEAD "name: x\nservices:\n  d:\n    command: [/bin/true]\n  j:\n    command: [/bin/true]\n"

static void test_parse_every(void)
{
    struct stack *s = parse_ok(HEAD "    schedule:\n      every: 1h\n      offset: 30m\n"
                                    "      random_delay: 5m\n      timeout: 2h\n"
                                    "      persistent: true\n");
    const struct stack_service *d = &s->services[0], *j = &s->services[1];

    ASSERT_FALSE(d->schedule.present);
    ASSERT_TRUE(j->schedule.present);
    ASSERT_EQ(j->schedule.every_usec, HOUR);
    ASSERT_EQ(j->schedule.offset_usec, 30 * 60 * SEC);
    ASSERT_EQ(j->schedule.random_delay_usec, 5 * 60 * SEC);
    ASSERT_EQ(j->schedule.timeout_usec, 2 * HOUR);
    ASSERT_TRUE(j->schedule.persistent);
    /* a job is a one-shot whatever the default restart policy */
    ASSERT_STREQ(stack_restart_to_string(j->restart), "no");
    ASSERT_STREQ(stack_restart_to_string(d->restart), "on-failure");
    ASSERT_STREQ(s->job_metrics_dir, "${state_dir}/jobs");
    stack_free(s);

    /* defaults: no offset, no delay, 1h timeout, not persistent */
    s = parse_ok(HEAD "    schedule: {every: 2s}\n");
    j = &s->services[1];
    ASSERT_EQ(j->schedule.every_usec, 2 * SEC);
    ASSERT_EQ(j->schedule.offset_usec, 0u);
    ASSERT_EQ(j->schedule.random_delay_usec, 0u);
    ASSERT_EQ(j->schedule.timeout_usec, HOUR);
    ASSERT_FALSE(j->schedule.persistent);
    stack_free(s);

    /* timeout 0: no limit */
    s = parse_ok(HEAD "    schedule: {every: 2s, timeout: 0}\n");
    ASSERT_EQ(s->services[1].schedule.timeout_usec, 0u);
    stack_free(s);
}

static void test_parse_daily(void)
{
    struct stack *s = parse_ok(HEAD "    schedule: {daily: 02:00}\n");

    /* unquoted 02:00 stays a string (no YAML 1.1 sexagesimal) */
    ASSERT_EQ(s->services[1].schedule.every_usec, DAY);
    ASSERT_EQ(s->services[1].schedule.offset_usec, 2 * HOUR);
    stack_free(s);
    s = parse_ok(HEAD "    schedule: {daily: \"23:59:30\", random_delay: 10m}\n");
    ASSERT_EQ(s->services[1].schedule.offset_usec, (23 * 3600 + 59 * 60 + 30) * SEC);
    ASSERT_EQ(s->services[1].schedule.random_delay_usec, 10 * 60 * SEC);
    stack_free(s);
}

static void test_parse_jobs_section(void)
{
    struct stack *s = parse_ok("name: x\njobs:\n  metrics_dir: \"${state_dir}/node-exporter\"\n"
                               "services:\n  j:\n    command: [/bin/true]\n"
                               "    schedule: {every: 1h}\n");
    struct stack_vars vars = { .state_dir = "/st", .tools_dir = "/tools" };
    struct err e = ERR_INIT;

    ASSERT_STREQ(s->job_metrics_dir, "${state_dir}/node-exporter");
    ASSERT_OK(stack_resolve(s, &vars, &e));
    ASSERT_STREQ(s->job_metrics_dir, "/st/node-exporter");
    stack_free(s);
}

/* docs/stack-file.md's example of every field (tests/unit/data/stack/full.yml). */
static void test_full_example(void)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    const struct stack_service *j;

    ASSERT_OK(stack_load(UT_SOURCE_DIR "/tests/unit/data/stack/full.yml", &s, &e));
    ASSERT_STREQ(s->job_metrics_dir, "${state_dir}/node-exporter");
    j = stack_find(s, "backup-incr");
    ASSERT_TRUE(j && j->schedule.present);
    ASSERT_EQ(j->schedule.every_usec, HOUR);
    ASSERT_EQ(j->schedule.offset_usec, 30 * 60 * SEC);
    ASSERT_EQ(j->schedule.random_delay_usec, 5 * 60 * SEC);
    ASSERT_EQ(j->schedule.timeout_usec, 2 * HOUR);
    ASSERT_TRUE(j->schedule.persistent);
    ASSERT_EQ(j->n_deps, 1u);
    stack_free(s);
}

static void test_parse_errors(void)
{
    EXPECT_ERR(HEAD "    schedule: {every: 1h, daily: \"02:00\"}\n", 7, 27,
               "services.j.schedule: set either 'every' or 'daily', not both");
    EXPECT_ERR(HEAD "    schedule: {timeout: 1h}\n", 7, 5,
               "services.j.schedule: missing 'every' (a period) or 'daily'");
    EXPECT_ERR(HEAD "    schedule: {evry: 1h}\n", 7, 16,
               "unknown field 'services.j.schedule.evry' (did you mean 'every'?)");
    EXPECT_ERR(HEAD "    schedule: 1h\n", 7, 15, "services.j.schedule: expected a map");
    EXPECT_ERR(HEAD "    schedule: {every: 500ms}\n", 7, 23, "services.j.schedule.every");
    EXPECT_ERR(HEAD "    schedule: {daily: \"24:00\"}\n", 7, 23,
               "services.j.schedule.daily: invalid time of day '24:00' (HH:MM or HH:MM:SS, UTC)");
    EXPECT_ERR(HEAD "    schedule: {daily: \"2:00\"}\n", 7, 23, "invalid time of day '2:00'");
    EXPECT_ERR(HEAD "    schedule: {daily: \"02:60\"}\n", 7, 23, "invalid time of day");
    EXPECT_ERR(HEAD "    schedule: {daily: \"02:00:61\"}\n", 7, 23, "invalid time of day");
    EXPECT_ERR(HEAD "    schedule: {daily: \"02:00\", offset: 1m}\n", 7, 32,
               "services.j.schedule.offset: 'offset' goes with 'every'");
    EXPECT_ERR(HEAD "    schedule: {every: 1h, offset: 1h}\n", 7, 35,
               "services.j.schedule.offset: must be below the period (every)");
    EXPECT_ERR(HEAD "    schedule: {every: 1h, random_delay: 2h}\n", 7, 41,
               "services.j.schedule.random_delay: must be below the period (every)");
    EXPECT_ERR(HEAD "    schedule: {daily: \"01:00\", random_delay: 24h}\n", 7, 46,
               "must be below the period (a day)");
    EXPECT_ERR(HEAD "    schedule: {every: 1h, persistent: maybe}\n", 7, 39,
               "services.j.schedule.persistent");
    /* what makes a daemon is refused, at its key */
    EXPECT_ERR(HEAD "    restart: always\n    schedule: {every: 1h}\n", 7, 5,
               "services.j.restart: not for a scheduled service");
    EXPECT_ERR(HEAD "    schedule: {every: 1h}\n    healthcheck: {type: tcp, port: 1}\n", 8, 5,
               "services.j.healthcheck: not for a scheduled service");
    EXPECT_ERR(HEAD "    schedule: {every: 1h}\n    lock: {port: 1, key: /k, value: v}\n", 8, 5,
               "services.j.lock: not for a scheduled service");
    /* nothing waits on a job */
    EXPECT_ERR("name: x\nservices:\n  d:\n    command: [/bin/true]\n    depends_on: [j]\n"
               "  j:\n    command: [/bin/true]\n    schedule: {every: 1h}\n",
               5, 18, "services.d.depends_on: 'j' is a scheduled service (a job); nothing can");
    /* the jobs section */
    EXPECT_ERR(
            "name: x\njobs: {metrics_dir: textfile}\nservices:\n  j:\n    command: [/bin/true]\n",
            2, 21, "jobs.metrics_dir: 'textfile' is not an absolute path");
    EXPECT_ERR("name: x\njobs: {dir: /x}\nservices:\n  j:\n    command: [/bin/true]\n", 2, 8,
               "unknown field 'jobs.dir'");
}

/* Due times are UTC: no time zone, no DST; a day is 86400 s. */
static void test_due_times(void)
{
    const struct sv_schedule hourly30 = { .present = true,
                                          .every_usec = HOUR,
                                          .offset_usec = 30 * 60 * SEC };
    const struct sv_schedule daily2 = { .present = true,
                                        .every_usec = DAY,
                                        .offset_usec = 2 * HOUR };
    const struct sv_schedule two = { .present = true, .every_usec = 2 * SEC };
    const uint64_t t1420 = 1796480400 * SEC; /* 2026-12-05 14:20:00 UTC */
    const uint64_t t1430 = 1796481000 * SEC;
    /* 2026-03-29 01:30 UTC: Europe's clocks go forward at 01:00 UTC that day */
    const uint64_t dst = 1774747800 * SEC;

    ASSERT_EQ(sv_schedule_next(&hourly30, t1420), t1430);
    /* strictly after: at a due time, the next one is a period later */
    ASSERT_EQ(sv_schedule_next(&hourly30, t1430), t1430 + HOUR);
    ASSERT_EQ(sv_schedule_next(&hourly30, t1430 - 1), t1430);
    ASSERT_EQ(sv_schedule_prev(&hourly30, t1430), t1430);
    ASSERT_EQ(sv_schedule_prev(&hourly30, t1430 - 1), t1430 - HOUR);
    ASSERT_EQ(sv_schedule_prev(&hourly30, t1420), t1430 - HOUR);
    /* before the first due time after the epoch there is none */
    ASSERT_EQ(sv_schedule_prev(&hourly30, 10 * SEC), 0u);
    ASSERT_EQ(sv_schedule_next(&hourly30, 10 * SEC), 30 * 60 * SEC);

    ASSERT_EQ(sv_schedule_next(&daily2, dst), 1774749600 * SEC); /* 02:00 UTC, 30 min later */
    ASSERT_EQ(sv_schedule_next(&daily2, 1774749600 * SEC), 1774836000 * SEC); /* + 86400 s */
    /* the autumn change (2026-10-25) changes nothing either */
    ASSERT_EQ(sv_schedule_next(&daily2, 1792893600 * SEC - 1), 1792893600 * SEC);
    ASSERT_EQ((1792893600 - 1774749600) % 86400, 0);

    ASSERT_EQ(sv_schedule_next(&two, 1001 * SEC), 1002 * SEC);
    ASSERT_EQ(sv_schedule_next(&two, 1002 * SEC + 1), 1004 * SEC);
}

static void test_format(void)
{
    char b[128];
    struct sv_schedule s = { .present = true, .every_usec = HOUR, .offset_usec = 30 * 60 * SEC };

    ASSERT_STREQ(sv_schedule_format(&s, b, sizeof b), "every 1h +30m");
    s.random_delay_usec = 5 * 60 * SEC;
    ASSERT_STREQ(sv_schedule_format(&s, b, sizeof b), "every 1h +30m + up to 5m");
    s = (struct sv_schedule){ .present = true, .every_usec = DAY, .offset_usec = 2 * HOUR };
    ASSERT_STREQ(sv_schedule_format(&s, b, sizeof b), "daily 02:00 UTC");
    s.offset_usec += 30 * SEC;
    ASSERT_STREQ(sv_schedule_format(&s, b, sizeof b), "daily 02:00:30 UTC");
    s = (struct sv_schedule){ .present = true, .every_usec = 2 * SEC };
    ASSERT_STREQ(sv_schedule_format(&s, b, sizeof b), "every 2s");
}

static void test_state_file(void)
{
    struct sv_job j = { .last_end_usec = 1796480400123456,
                        .last_success_usec = 1796480000000000,
                        .last_duration_usec = 2500000,
                        .last_exit_code = 3,
                        .last_result = SV_JOB_FAILURE,
                        .counts = { 4, 1, 2, 7 } },
                  back = { .last_result = -1, .last_exit_code = -1 };
    struct buf b = BUF_INIT(4096);

    ASSERT_OK(sv__job_state_format(&j, &b));
    ASSERT_CONTAINS(buf_str(&b), "last_result=failure\n");
    ASSERT_CONTAINS(buf_str(&b), "runs_skipped=7\n");
    ASSERT_OK(sv__job_state_parse(buf_str(&b), &back));
    ASSERT_TRUE(memcmp(&j.counts, &back.counts, sizeof j.counts) == 0);
    ASSERT_EQ(back.last_end_usec, j.last_end_usec);
    ASSERT_EQ(back.last_success_usec, j.last_success_usec);
    ASSERT_EQ(back.last_duration_usec, j.last_duration_usec);
    ASSERT_EQ(back.last_exit_code, 3);
    ASSERT_EQ(back.last_result, SV_JOB_FAILURE);
    /* a later version's key is ignored; a bad value leaves the job as it was */
    ASSERT_OK(sv__job_state_parse("runs_success=9\nsome_new_key=1\n", &back));
    ASSERT_EQ(back.counts[SV_JOB_SUCCESS], 9u);
    ASSERT_ERRNO(sv__job_state_parse("runs_success=10\nlast_exit_code=300\n", &back), -EINVAL);
    ASSERT_EQ(back.counts[SV_JOB_SUCCESS], 9u);
    ASSERT_ERRNO(sv__job_state_parse("last_result=great\n", &back), -EINVAL);
    ASSERT_ERRNO(sv__job_state_parse("no equals sign\n", &back), -EINVAL);
    buf_release(&b);
}

static void test_metrics_text(void)
{
    struct sv_spec *spec = sv_spec_new("x");
    struct sv_service *svc;
    struct sv_unit units[3];
    struct buf b = BUF_INIT(1 << 20);
    static const char want[] =
            "# HELP ultrathink_job_last_run_timestamp_seconds When the last run of the scheduled "
            "service ended (Unix time).\n"
            "# TYPE ultrathink_job_last_run_timestamp_seconds gauge\n"
            "ultrathink_job_last_run_timestamp_seconds{job=\"backup-incr\"} 1796480400.5\n"
            "# HELP ultrathink_job_last_success_timestamp_seconds When the last successful run "
            "(exit status 0) of the scheduled service ended (Unix time).\n"
            "# TYPE ultrathink_job_last_success_timestamp_seconds gauge\n"
            "ultrathink_job_last_success_timestamp_seconds{job=\"backup-incr\"} 1796476800\n"
            "# HELP ultrathink_job_last_duration_seconds How long the last run of the scheduled "
            "service took.\n"
            "# TYPE ultrathink_job_last_duration_seconds gauge\n"
            "ultrathink_job_last_duration_seconds{job=\"backup-incr\"} 12.25\n"
            "# HELP ultrathink_job_last_exit_code Exit status of the last run (128+N: killed by "
            "signal N; -1: no process exited).\n"
            "# TYPE ultrathink_job_last_exit_code gauge\n"
            "ultrathink_job_last_exit_code{job=\"backup-incr\"} 143\n"
            "# HELP ultrathink_job_runs_total Due times of the scheduled service by outcome "
            "(skipped: the previous run was still going).\n"
            "# TYPE ultrathink_job_runs_total counter\n"
            "ultrathink_job_runs_total{job=\"backup-incr\",result=\"success\"} 5\n"
            "ultrathink_job_runs_total{job=\"backup-incr\",result=\"failure\"} 0\n"
            "ultrathink_job_runs_total{job=\"backup-incr\",result=\"timeout\"} 1\n"
            "ultrathink_job_runs_total{job=\"backup-incr\",result=\"skipped\"} 2\n"
            "ultrathink_job_runs_total{job=\"never\",result=\"success\"} 0\n"
            "ultrathink_job_runs_total{job=\"never\",result=\"failure\"} 0\n"
            "ultrathink_job_runs_total{job=\"never\",result=\"timeout\"} 0\n"
            "ultrathink_job_runs_total{job=\"never\",result=\"skipped\"} 0\n";

    sv_spec_add(spec, "daemon");
    svc = sv_spec_add(spec, "backup-incr");
    svc->schedule = (struct sv_schedule){ .present = true, .every_usec = HOUR };
    svc = sv_spec_add(spec, "never");
    svc->schedule = (struct sv_schedule){ .present = true, .every_usec = HOUR };
    for (size_t i = 0; i < 3; i++) {
        sv_unit_init(&units[i], &spec->services[i], i);
        units[i].job = (struct sv_job){ .last_result = -1, .last_exit_code = -1 };
    }
    units[1].job = (struct sv_job){ .last_end_usec = 1796480400500000,
                                    .last_success_usec = 1796476800000000,
                                    .last_duration_usec = 12250000,
                                    .last_exit_code = 143,
                                    .last_result = SV_JOB_TIMEOUT,
                                    .counts = { 5, 0, 1, 2 } };
    ASSERT_OK(sv__job_metrics_format(units, 3, &b));
    ASSERT_STREQ(buf_str(&b), want);
    /* no job at all: an empty file */
    buf_reset(&b);
    ASSERT_OK(sv__job_metrics_format(units, 1, &b));
    ASSERT_STREQ(buf_str(&b), "");
    buf_release(&b);
    sv_spec_free(spec);
}

/* The job object travels through the status reply: encoded by the supervisor, decoded by
 * every client, absent (null) for daemons; an exit code of -1 is null. */
static void test_status_codec(void)
{
    char sched[] = "every 2s", failure[] = "failure", d[] = "d", j[] = "j", running[] = "running",
         exited[] = "exited", none[] = "none", empty[] = "", x[] = "x", dir[] = "/s";
    struct sv_status_job job = { .schedule = sched,
                                 .scheduled = true,
                                 .next_run = 1796480402,
                                 .last_run = 1796480400.25,
                                 .last_result = failure,
                                 .last_duration_s = 0.5,
                                 .last_exit_code = -1,
                                 .runs_failure = 3,
                                 .runs_skipped = 1 };
    struct sv_status_service svcs[2] = {
        { .name = d, .state = running, .health = none, .health_message = empty },
        { .name = j, .state = exited, .health = none, .health_message = empty, .job = &job },
    };
    struct sv_status st = { .pid = 1,
                            .stack = x,
                            .state_dir = dir,
                            .services = svcs,
                            .n_services = 2 },
                     back;
    json_t *o = sv__status_encode(&st);
    char *text = json_dumps(o, JSON_COMPACT);

    ASSERT_TRUE(text != NULL);
    ASSERT_CONTAINS(text, "\"job\":null");
    ASSERT_CONTAINS(text, "\"last_exit_code\":null");
    ASSERT_OK(sv_status_decode(text, strlen(text), &back));
    ASSERT_TRUE(back.services[0].job == NULL);
    ASSERT_TRUE(back.services[1].job != NULL);
    ASSERT_STREQ(back.services[1].job->schedule, "every 2s");
    ASSERT_TRUE(back.services[1].job->scheduled);
    ASSERT_STREQ(back.services[1].job->last_result, "failure");
    ASSERT_EQ(back.services[1].job->last_exit_code, -1);
    ASSERT_EQ(back.services[1].job->runs_failure, 3u);
    ASSERT_EQ(back.services[1].job->runs_skipped, 1u);
    ASSERT_TRUE(back.services[1].job->last_success == 0);
    ASSERT_TRUE(back.services[1].job->last_duration_s == 0.5);
    sv_status_release(&back);
    free(text);
    json_decref(o);

    /* a garbled job object is a protocol error */
    {
        static const char bad[] =
                "{\"ok\":true,\"supervisor\":{\"pid\":1,\"started_at\":null,\"stack\":\"x\","
                "\"state_dir\":\"/s\",\"shutting_down\":false},\"services\":[{\"name\":\"j\","
                "\"state\":\"exited\",\"pid\":null,\"started_at\":null,\"uptime_s\":0,"
                "\"restarts\":0,\"health\":\"none\",\"health_message\":\"\",\"last_exit\":null,"
                "\"waiting_for\":null,\"job\":{\"schedule\":\"every 2s\"}}]}";

        ASSERT_ERRNO(sv_status_decode(bad, strlen(bad), &back), -EPROTO);
    }
}

T_MAIN(T_CASE(test_parse_every), T_CASE(test_parse_daily), T_CASE(test_parse_jobs_section),
       T_CASE(test_full_example), T_CASE(test_parse_errors), T_CASE(test_due_times),
       T_CASE(test_format), T_CASE(test_state_file), T_CASE(test_metrics_text),
       T_CASE(test_status_codec))
