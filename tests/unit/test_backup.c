/* SPDX-License-Identifier: MIT */
/* test_backup.c - src/backup: pgbackrest.conf, progress lines, info JSON, target times, metrics,
 * and running a child process (a stand-in script for pgbackrest). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup/backup.h"
#include "core/buf.h"
#include "core/err.h"
#include "t.h"

static void test_conf(void)
{
    static const char text[] = "# comment\n"
                               "[global]\n"
                               "repo1-path=/state/pgbackrest/repo\n"
                               "log-path = /state/pgbackrest/log\n"
                               "compress-type=zst\n"
                               "[global:archive-get]\n"
                               "archive-async=y\n"
                               "[ultrathink]\n"
                               "pg1-path=/state/pg1/data\n"
                               "pg1-port=5433\n"
                               "pg1-socket-path=/state/pg1/sock\n"
                               "pg2-path=/state/pg2/data\n"
                               "pg3-path=/state/pg3/data\n"
                               "pg3-port=5435\n";
    struct backup_conf c;
    struct err e = ERR_INIT;

    ASSERT_OK(backup_conf_parse("x.conf", text, &c, &e));
    ASSERT_STREQ(c.stanza, "ultrathink");
    ASSERT_STREQ(c.repo_path, "/state/pgbackrest/repo");
    ASSERT_STREQ(c.log_path, "/state/pgbackrest/log");
    ASSERT_STREQ(c.compress_type, "zst");
    ASSERT_EQ(c.n_nodes, 3);
    ASSERT_STREQ(c.nodes[0].path, "/state/pg1/data");
    ASSERT_EQ(c.nodes[0].port, 5433);
    ASSERT_STREQ(c.nodes[0].socket_path, "/state/pg1/sock");
    ASSERT_EQ(c.nodes[1].port, 5432); /* pgBackRest's default */
    ASSERT_EQ(c.nodes[2].port, 5435);
    backup_conf_release(&c);

    ASSERT_ERRNO(backup_conf_parse("x.conf", "[global]\nrepo1-path=/r\n", &c, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "no stanza");
    ASSERT_ERRNO(backup_conf_parse("x.conf", "[s]\npg1-port=99999\n", &c, &e), -EINVAL);
    ASSERT_EQ(e.line, 2);
    ASSERT_CONTAINS(e.msg, "not a port");
    ASSERT_ERRNO(backup_conf_parse("x.conf", "[s]\npg9-path=/x\n", &c, &e), -EINVAL);
    ASSERT_ERRNO(backup_conf_parse("x.conf", "[s\n", &c, &e), -EINVAL);
    ASSERT_ERRNO(backup_conf_load("/nonexistent/pgbackrest.conf", &c, &e), -ENOENT);
}

static void test_progress(void)
{
    struct backup_progress p = { 0 };

    ASSERT_TRUE(backup_progress_parse_line(
            "2026-12-05 14:19:39.100 P01 DETAIL: backup file /s/pg2/data/base/1/1249 (440KB, "
            "1.35%) checksum 0123abcd",
            &p));
    ASSERT_EQ(p.files, 1);
    ASSERT_EQ(p.bytes, 440 * 1024);
    ASSERT_TRUE(p.percent > 1.34 && p.percent < 1.36);
    ASSERT_TRUE(backup_progress_parse_line(
            "P02 DETAIL: restore file /d/base/5/16384 (1.5MB, 50.00%) checksum ff", &p));
    ASSERT_EQ(p.files, 2);
    ASSERT_EQ(p.bytes, 440 * 1024 + 1572864);
    /* a path with parentheses, bundling fields, a zero-length file */
    ASSERT_TRUE(backup_progress_parse_line(
            "P01 DETAIL: backup file /d/odd (name) (bundle 1/128, 0B, 100.00%)", &p));
    ASSERT_EQ(p.files, 3);
    ASSERT_TRUE(p.percent > 99.9);
    /* not progress */
    ASSERT_FALSE(backup_progress_parse_line("P00 INFO: backup start archive = 0001", &p));
    ASSERT_FALSE(backup_progress_parse_line("P01 DETAIL: backup file /x (8XB, 1%)", &p));
    ASSERT_FALSE(backup_progress_parse_line("P01 DETAIL: backup file /x (8KB, 101%)", &p));
    ASSERT_EQ(p.files, 3);
}

static const char info_json[] =
        "[{\"archive\":[{\"database\":{\"id\":1,\"repo-key\":1},\"id\":\"15-1\","
        "\"max\":\"000000030000000000000012\",\"min\":\"000000010000000000000001\"}],"
        "\"backup\":[{\"archive\":{\"start\":\"000000020000000000000007\",\"stop\":"
        "\"000000020000000000000007\"},\"error\":false,\"info\":{\"delta\":33549998,"
        "\"repository\":{\"delta\":4057333,\"size\":4057333},\"size\":33549998},\"label\":"
        "\"20261205-141938F\",\"prior\":null,\"timestamp\":{\"start\":1796480378,\"stop\":"
        "1796480381},\"type\":\"full\"},"
        "{\"archive\":{\"start\":\"00000003000000000000000A\",\"stop\":"
        "\"00000003000000000000000A\"},\"error\":false,\"info\":{\"delta\":1000,"
        "\"repository\":{\"delta\":200,\"size\":4057533},\"size\":33550998},\"label\":"
        "\"20261205-141938F_20261205-150000I\",\"prior\":\"20261205-141938F\",\"timestamp\":{"
        "\"start\":1796482800,\"stop\":1796482802},\"type\":\"incr\"}],"
        "\"cipher\":\"none\",\"db\":[{\"id\":1,\"system-id\":7715824417652540123,\"version\":"
        "\"15\"}],\"name\":\"ultrathink\",\"status\":{\"code\":0,\"lock\":{\"backup\":{\"held\":"
        "false}},\"message\":\"ok\"}}]";

static void test_info(void)
{
    struct backup_info i;
    struct err e = ERR_INIT;
    const struct backup_set *s;

    ASSERT_OK(backup_info_parse(info_json, "ultrathink", &i, &e));
    ASSERT_STREQ(i.stanza, "ultrathink");
    ASSERT_EQ(i.status_code, 0);
    ASSERT_FALSE(i.backup_running);
    ASSERT_STREQ(i.wal_min, "000000010000000000000001");
    ASSERT_STREQ(i.wal_max, "000000030000000000000012");
    ASSERT_EQ(i.n_sets, 2);
    ASSERT_EQ(i.sets[0].type, BACKUP_TYPE_FULL);
    ASSERT_EQ(i.sets[0].stop, 1796480381);
    ASSERT_EQ(i.sets[0].size, 33549998);
    ASSERT_EQ(i.sets[0].repo_delta, 4057333);
    ASSERT_STREQ(i.sets[0].prior, "");
    ASSERT_STREQ(i.sets[1].prior, "20261205-141938F");
    s = backup_info_latest(&i, _BACKUP_TYPE_MAX);
    ASSERT_STREQ(s->label, "20261205-141938F_20261205-150000I");
    s = backup_info_latest(&i, BACKUP_TYPE_FULL);
    ASSERT_STREQ(s->label, "20261205-141938F");
    ASSERT_TRUE(backup_info_latest(&i, BACKUP_TYPE_DIFF) == NULL);
    backup_info_release(&i);

    ASSERT_ERRNO(backup_info_parse(info_json, "other", &i, &e), -ENOENT);
    ASSERT_ERRNO(backup_info_parse("{}", NULL, &i, &e), -EPROTO);
    ASSERT_ERRNO(backup_info_parse("not json", NULL, &i, &e), -EPROTO);
    ASSERT_ERRNO(
            backup_info_parse("[{\"name\":\"s\",\"backup\":[{\"label\":\"x\"}]}]", NULL, &i, &e),
            -EPROTO);
    /* a fresh stanza: no backups, no archive */
    ASSERT_OK(backup_info_parse("[{\"name\":\"s\",\"status\":{\"code\":2,\"message\":\"no valid "
                                "backups\"},\"backup\":[],\"archive\":[]}]",
                                NULL, &i, &e));
    ASSERT_EQ(i.n_sets, 0);
    ASSERT_EQ(i.status_code, 2);
    ASSERT_STREQ(i.wal_min, "");
    backup_info_release(&i);
}

static void test_time(void)
{
    struct err e = ERR_INIT;
    int64_t us;
    char buf[40];

    ASSERT_OK(backup_time_parse("1970-01-01 00:00:00+00", &us, &e));
    ASSERT_EQ(us, 0);
    ASSERT_OK(backup_time_parse("2026-12-03 14:03:00+00", &us, &e));
    ASSERT_EQ(us, 1796306580LL * 1000000);
    ASSERT_OK(backup_time_parse("2026-12-03T15:03:00+01:00", &us, &e));
    ASSERT_EQ(us, 1796306580LL * 1000000);
    ASSERT_OK(backup_time_parse("2026-12-03 09:03Z", &us, &e));
    ASSERT_EQ(us, (1796306580LL - 5 * 3600) * 1000000);
    ASSERT_OK(backup_time_parse("2026-12-03 14:03:00.25-0130", &us, &e));
    ASSERT_EQ(us, (1796306580LL + 5400) * 1000000 + 250000);
    ASSERT_OK(backup_time_parse("2024-02-29 00:00:00.123456789+00", &us, &e));
    ASSERT_EQ(us % 1000000, 123456);
    ASSERT_STREQ(backup_time_format(1796306580LL * 1000000 + 5, buf, sizeof buf),
                 "2026-12-03 14:03:00.000005+00");

    ASSERT_ERRNO(backup_time_parse("2026-12-03 14:03:00", &us, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "time zone is required");
    ASSERT_ERRNO(backup_time_parse("2025-02-29 00:00:00+00", &us, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "no such date");
    ASSERT_ERRNO(backup_time_parse("2026-12-03 24:00:00+00", &us, &e), -EINVAL);
    ASSERT_ERRNO(backup_time_parse("yesterday", &us, &e), -EINVAL);
    ASSERT_ERRNO(backup_time_parse("2026-12-03", &us, &e), -EINVAL);
    ASSERT_ERRNO(backup_time_parse("2026-12-03 14:03:00+00 x", &us, &e), -EINVAL);
    ASSERT_ERRNO(backup_time_parse("2026-12-03 14:03:00.+00", &us, &e), -EINVAL);
}

static void test_metrics(void)
{
    struct backup_info i;
    struct err e = ERR_INIT;
    struct buf out = BUF_INIT(1 << 16);
    struct backup_outcome o = { .stanza = "ultrathink",
                                .type = BACKUP_TYPE_INCR,
                                .success = false,
                                .attempt_end = 1796482900,
                                .duration_s = 1.5 };

    ASSERT_OK(backup_metrics_format_run(&o, &out));
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_status{stanza=\"ultrathink\","
                                   "type=\"incr\"} 0\n");
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_attempt_timestamp_seconds{stanza="
                                   "\"ultrathink\",type=\"incr\"} 1796482900\n");
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_duration_seconds{stanza="
                                   "\"ultrathink\",type=\"incr\"} 1.500\n");
    buf_reset(&out);
    ASSERT_OK(backup_info_parse(info_json, NULL, &i, &e));
    ASSERT_OK(backup_metrics_format_repo(&i, &out));
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_success_timestamp_seconds{stanza="
                                   "\"ultrathink\",type=\"full\"} 1796480381\n");
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_success_timestamp_seconds{stanza="
                                   "\"ultrathink\",type=\"incr\"} 1796482802\n");
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_last_size_bytes{stanza=\"ultrathink\","
                                   "type=\"full\"} 33549998\n");
    ASSERT_CONTAINS(buf_str(&out), "ultrathink_backup_sets{stanza=\"ultrathink\"} 2\n");
    ASSERT_TRUE(strstr(buf_str(&out), "type=\"diff\"") == NULL);
    backup_info_release(&i);
    /* a label that would need escaping is refused, not written broken */
    o.stanza = "a\"b";
    ASSERT_ERRNO(backup_metrics_format_run(&o, &out), -EINVAL);
    buf_release(&out);
}

static int progress_calls;
static void count_progress(const struct backup_progress *p, void *userdata)
{
    (void)p;
    (void)userdata;
    progress_calls++;
}

/* A stand-in pgbackrest: prints its arguments, two progress lines and an error, exits 55. */
static void test_run(void)
{
    char dir[] = "/tmp/ut-backup-run.XXXXXX", path[64];
    const char *args[] = { "--type=full", "backup", NULL };
    struct backup_cmd cmd = { .bin = path,
                              .conf_path = "/c.conf",
                              .stanza = "s",
                              .args = args,
                              .on_progress = count_progress };
    struct backup_result res;
    FILE *f;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    (void)snprintf(path, sizeof path, "%s/pgbackrest", dir);
    f = fopen(path, "we");
    ASSERT_TRUE(f != NULL);
    fputs("#!/bin/sh\n"
          "echo \"args: $*\"\n"
          "echo 'P01 DETAIL: backup file /a (8KB, 50.00%) checksum x'\n"
          "echo 'P01 DETAIL: backup file /b (8KB, 100.00%) checksum y'\n"
          "echo 'ERROR: [055]: unable to load info file' >&2\n"
          "exit 55\n",
          f);
    ASSERT_OK(fclose(f));
    ASSERT_OK(chmod(path, 0755));

    ASSERT_OK(backup_run(&cmd, &res));
    ASSERT_EQ(res.exit_code, 55);
    ASSERT_FALSE(res.timed_out);
    ASSERT_CONTAINS(res.out, "args: --config=/c.conf --stanza=s --type=full backup");
    ASSERT_STREQ(res.error, "ERROR: [055]: unable to load info file");
    ASSERT_EQ(res.last.files, 2);
    ASSERT_EQ(res.last.bytes, 16384);
    ASSERT_EQ(progress_calls, 2);
    backup_result_release(&res);

    /* a hanging child is stopped at the timeout */
    f = fopen(path, "we");
    ASSERT_TRUE(f != NULL);
    fputs("#!/bin/sh\nexec sleep 30\n", f);
    ASSERT_OK(fclose(f));
    cmd.timeout_us = 200 * 1000;
    ASSERT_OK(backup_run(&cmd, &res));
    ASSERT_TRUE(res.timed_out);
    ASSERT_TRUE(res.elapsed_us < 10 * 1000000ull);
    backup_result_release(&res);

    ASSERT_OK(unlink(path));
    ASSERT_OK(rmdir(dir));
    cmd.timeout_us = 0;
    ASSERT_ERRNO(backup_run(&cmd, &res), -ENOENT);
    backup_result_release(&res);
}

T_MAIN(T_CASE(test_conf), T_CASE(test_progress), T_CASE(test_info), T_CASE(test_time),
       T_CASE(test_metrics), T_CASE(test_run))
