/* SPDX-License-Identifier: MIT */
/* test_stack.c - stack file parser, start order, resolve/expand, secrets, preparation. */
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "supervise/supervise.h"
#include "t.h"

#define DATA UT_SOURCE_DIR "/tests/unit/data/stack"

/* Parses text, expects -EINVAL at line:col with msg containing frag. */
static struct err parse_err(const char *text)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    int r = stack_parse("t.yml", text, strlen(text), &s, &e);

    if (r != -EINVAL)
        T_FAIL("expected -EINVAL, got %d for:\n%s", r, text);
    if (s)
        T_FAIL("stack returned on error");
    return e;
}

#define EXPECT_ERR(text_, line_, col_, frag_) \
    do {                                      \
        struct err e__ = parse_err(text_);    \
        ASSERT_STREQ(e__.file, "t.yml");      \
        ASSERT_CONTAINS(e__.msg, frag_);      \
        ASSERT_EQ(e__.line, line_);           \
        ASSERT_EQ(e__.col, col_);             \
    } while (0)

static struct stack *parse_ok(const char *text)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    int r = stack_parse("t.yml", text, strlen(text), &s, &e);

    if (r < 0)
        T_FAIL("parse failed: %d %u:%u %s", r, e.line, e.col, e.msg);
    return s;
}

static struct stack *load_full(void)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    char b[600];

    if (stack_load(DATA "/full.yml", &s, &e) < 0)
        T_FAIL("%s", err_format(&e, b, sizeof b));
    return s;
}

static void test_full_example(void)
{
    struct stack *s = load_full();
    struct stack_service *etcd, *pg, *redis, *schema;

    ASSERT_STREQ(s->name, "ultrathink-local");
    ASSERT_STREQ(s->path, DATA "/full.yml");
    ASSERT_STREQ(s->dir, DATA);
    ASSERT_STREQ(s->secrets[0], "pg_superuser");
    ASSERT_STREQ(s->secrets[1], "redis");
    ASSERT_TRUE(s->secrets[2] == NULL);
    ASSERT_EQ(s->log_max_bytes, 20u * 1024 * 1024);
    ASSERT_EQ(s->log_keep, 5);
    ASSERT_EQ(s->n_services, 5); /* the fifth, a job: test_schedule.c */
    ASSERT_FALSE(s->resolved);

    etcd = &s->services[0];
    ASSERT_STREQ(etcd->name, "etcd");
    ASSERT_EQ(etcd->line, 9);
    ASSERT_STREQ(etcd->kind, "etcd");
    ASSERT_STREQ(etcd->package, "etcd-server");
    ASSERT_STREQ(etcd->argv[2], "${state_dir}/etcd");
    ASSERT_TRUE(etcd->argv[3] == NULL);
    ASSERT_STREQ(etcd->env[0], "ETCD_NAME=etcd1");
    ASSERT_STREQ(etcd->env[1], "EMPTY=");
    ASSERT_TRUE(etcd->env[2] == NULL);
    ASSERT_EQ(etcd->n_ports, 2);
    ASSERT_EQ(etcd->ports[1], 2380);
    ASSERT_TRUE(etcd->health.present);
    ASSERT_EQ(etcd->health.probe.type, PROBE_TCP);
    ASSERT_STREQ(etcd->health.probe.host, "127.0.0.1");
    ASSERT_EQ(etcd->health.probe.port, 2379);
    ASSERT_EQ(etcd->health.interval_usec, 2 * USEC_PER_SEC);
    ASSERT_EQ(etcd->health.timeout_usec, USEC_PER_SEC);
    ASSERT_EQ(etcd->health.retries, 3);
    ASSERT_EQ(etcd->health.start_period_usec, 0);
    ASSERT_EQ(etcd->restart, STACK_RESTART_ALWAYS);
    ASSERT_FALSE(etcd->has_status_probe);
    ASSERT_EQ(etcd->n_deps, 0);
    ASSERT_TRUE(etcd->user == NULL);
    ASSERT_TRUE(etcd->working_dir == NULL);

    pg = stack_find(s, "pg1");
    ASSERT_TRUE(pg == &s->services[1]);
    ASSERT_STREQ(pg->kind, "patroni");
    ASSERT_STREQ(pg->user, "postgres");
    ASSERT_STREQ(pg->working_dir, "${state_dir}/pg1");
    ASSERT_STREQ(pg->env[0], "LANG=C.UTF-8");
    ASSERT_STREQ(pg->env[1], "PGPASSWORD=${secret.pg_superuser}");
    ASSERT_STREQ(pg->env[2], "COST=$$5");
    ASSERT_STREQ(pg->dirs[1], "${state_dir}/pg1/data");
    ASSERT_TRUE(pg->dirs[2] == NULL);
    ASSERT_EQ(pg->n_files, 2);
    ASSERT_STREQ(pg->files[0].template_path, DATA "/patroni/pg1.yml");
    ASSERT_STREQ(pg->files[0].path, "${state_dir}/pg1/patroni.yml");
    ASSERT_EQ(pg->files[0].mode, 0600);
    ASSERT_TRUE(pg->files[0].overwrite);
    ASSERT_STREQ(pg->files[1].template_path, "${stack_dir}/patroni/pg1.yml");
    ASSERT_EQ(pg->files[1].mode, 0644);
    ASSERT_FALSE(pg->files[1].overwrite);
    ASSERT_EQ(pg->n_deps, 1);
    ASSERT_STREQ(pg->deps[0].service, "etcd");
    ASSERT_EQ(pg->deps[0].cond, STACK_DEP_HEALTHY);
    ASSERT_EQ(pg->deps[0].index, 0);
    ASSERT_EQ(pg->deps[0].line, 43);
    ASSERT_EQ(pg->health.probe.type, PROBE_HTTP);
    ASSERT_EQ(pg->health.probe.port, 8008);
    ASSERT_STREQ(pg->health.probe.path, "/health");
    ASSERT_STREQ(pg->health.probe.method, "GET");
    ASSERT_EQ(pg->health.probe.expect_status, 0);
    ASSERT_EQ(pg->health.interval_usec, USEC_PER_SEC);
    ASSERT_EQ(pg->health.timeout_usec, 500 * USEC_PER_MSEC);
    ASSERT_EQ(pg->health.retries, 5);
    ASSERT_EQ(pg->health.start_period_usec, 30 * USEC_PER_SEC);
    ASSERT_TRUE(pg->has_status_probe);
    ASSERT_EQ(pg->status_probe.type, PROBE_PG);
    ASSERT_STREQ(pg->status_probe.user, "postgres");
    ASSERT_STREQ(pg->status_probe.password, "${secret.pg_superuser}");
    ASSERT_STREQ(pg->status_probe.dbname, "postgres");
    ASSERT_STREQ(pg->status_probe.query, "SELECT 1");
    ASSERT_EQ(pg->restart, STACK_RESTART_ON_FAILURE);
    ASSERT_EQ(pg->backoff_initial_usec, 2 * USEC_PER_SEC);
    ASSERT_EQ(pg->backoff_max_usec, 60 * USEC_PER_SEC);
    ASSERT_EQ(pg->backoff_reset_usec, 90 * USEC_PER_SEC);
    ASSERT_EQ(pg->max_restarts, 4);
    ASSERT_EQ(pg->stop_signal, SIGINT);
    ASSERT_EQ(pg->stop_grace_usec, 20 * USEC_PER_SEC);

    redis = stack_find(s, "redis");
    ASSERT_TRUE(redis->kind && streq(redis->kind, "redis"));
    ASSERT_EQ(redis->status_probe.type, PROBE_REDIS);
    ASSERT_STREQ(redis->status_probe.command[0], "PING");
    ASSERT_TRUE(redis->status_probe.command[1] == NULL);
    ASSERT_TRUE(redis->status_probe.user == NULL);
    ASSERT_EQ(redis->health.probe.type, PROBE_EXEC);
    ASSERT_STREQ(redis->health.probe.argv[0], "/bin/true");
    ASSERT_TRUE(redis->health.probe.host == NULL);

    schema = stack_find(s, "schema");
    ASSERT_TRUE(schema->kind == NULL);
    ASSERT_TRUE(schema->package == NULL);
    ASSERT_STREQ(schema->argv[2], "echo $HOME");
    ASSERT_TRUE(schema->env && schema->env[0] == NULL);
    ASSERT_TRUE(schema->dirs && schema->dirs[0] == NULL);
    ASSERT_EQ(schema->n_ports, 0);
    ASSERT_EQ(schema->n_deps, 2);
    ASSERT_EQ(schema->deps[0].cond, STACK_DEP_STARTED);
    ASSERT_EQ(schema->deps[1].index, 2);
    ASSERT_EQ(schema->restart, STACK_RESTART_NO);
    ASSERT_STREQ(schema->health.probe.host, "localhost");
    ASSERT_STREQ(schema->health.probe.user, "default");
    ASSERT_STREQ(schema->health.probe.command[1], "replication");
    ASSERT_TRUE(stack_find(s, "nope") == NULL);
    stack_free(s);
}

/* The stack file's service defaults are the supervisor's (sv_service_init(): one fact; the
 * stack model and the engine know nothing of each other, so this test ties them). */
static void test_defaults_are_the_supervisors(void)
{
    struct stack *s = parse_ok("name: x\nservices:\n  a:\n    command: [/bin/true]\n"
                               "    healthcheck: {type: tcp, port: 1}\n"
                               "    liveness: {type: tcp, port: 1}\n");
    struct stack_service *a = &s->services[0];
    struct sv_spec *spec = sv_spec_new("x");
    const struct sv_service *d = sv_spec_add(spec, "a");

    ASSERT_EQ(s->log_max_bytes, spec->log_max_bytes);
    ASSERT_EQ(s->log_keep, spec->log_keep);
    ASSERT_STREQ(stack_restart_to_string(a->restart), sv_restart_to_string(d->restart));
    ASSERT_EQ(a->backoff_initial_usec, d->backoff_initial_usec);
    ASSERT_EQ(a->backoff_max_usec, d->backoff_max_usec);
    ASSERT_EQ(a->backoff_reset_usec, d->backoff_reset_usec);
    ASSERT_EQ(a->max_restarts, d->max_restarts);
    ASSERT_EQ(a->stop_signal, d->stop_signal);
    ASSERT_EQ(a->stop_grace_usec, d->stop_grace_usec);
    ASSERT_EQ(a->freeze_after_usec, d->freeze_after_usec);
    ASSERT_EQ(a->health.interval_usec, d->health.interval_usec);
    ASSERT_EQ(a->health.timeout_usec, d->health.timeout_usec);
    ASSERT_EQ(a->health.start_period_usec, d->health.start_period_usec);
    ASSERT_EQ(a->health.retries, d->health.retries);
    ASSERT_EQ(a->liveness.interval_usec, d->liveness.interval_usec);
    ASSERT_EQ(a->liveness.timeout_usec, d->liveness.timeout_usec);
    ASSERT_EQ(a->liveness.retries, d->liveness.retries);
    sv_spec_free(spec);
    stack_free(s);
}

static void test_defaults(void)
{
    struct stack *s = parse_ok("name: x\nservices:\n  a:\n    command: [/bin/true]\n");
    struct stack_service *a = &s->services[0];

    ASSERT_EQ(s->log_max_bytes, 10u * 1024 * 1024);
    ASSERT_EQ(s->log_keep, 3);
    ASSERT_TRUE(s->secrets && s->secrets[0] == NULL);
    ASSERT_FALSE(a->health.present);
    ASSERT_FALSE(a->has_status_probe);
    ASSERT_EQ(a->restart, STACK_RESTART_ON_FAILURE);
    ASSERT_EQ(a->backoff_initial_usec, USEC_PER_SEC);
    ASSERT_EQ(a->backoff_max_usec, 30 * USEC_PER_SEC);
    ASSERT_EQ(a->backoff_reset_usec, 60 * USEC_PER_SEC);
    ASSERT_EQ(a->max_restarts, 0);
    ASSERT_EQ(a->stop_signal, SIGTERM);
    ASSERT_EQ(a->stop_grace_usec, 10 * USEC_PER_SEC);
    ASSERT_TRUE(a->netns == NULL);
    ASSERT_EQ(a->health.interval_usec, 2 * USEC_PER_SEC);
    ASSERT_EQ(a->health.timeout_usec, USEC_PER_SEC);
    ASSERT_EQ(a->health.retries, 3);
    ASSERT_TRUE(a->env && !a->env[0]);
    ASSERT_TRUE(a->dirs && !a->dirs[0]);
    ASSERT_TRUE(a->files == NULL || a->n_files == 0);
    stack_free(s);

    /* restart: no unquoted is the string "no" too; bare depends_on map entry */
    s = parse_ok("name: x\nservices:\n  a:\n    command: [/bin/true]\n    restart: no\n"
                 "  b:\n    command: [/bin/true]\n    depends_on:\n      a: {}\n");
    ASSERT_EQ(s->services[0].restart, STACK_RESTART_NO);
    ASSERT_EQ(s->services[1].deps[0].cond, STACK_DEP_STARTED);
    stack_free(s);
}

#define HDR "name: x\nservices:\n"

static void test_err_unknown_field(void)
{
    EXPECT_ERR(HDR "  pg1:\n    command: [a]\n    helthcheck:\n      type: tcp\n", 5, 5,
               "unknown field 'services.pg1.helthcheck' (did you mean 'healthcheck'?)");
    EXPECT_ERR("name: x\nservice: {}\n", 2, 1, "unknown field 'service'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    files:\n      - template: t\n        path: /x\n"
                   "        owner: me\n",
               8, 9, "unknown field 'services.a.files[0].owner'");
    EXPECT_ERR("name: x\nlog: {max_size: 1MiB, kept: 2}\nservices: {a: {command: [a]}}\n", 2, 23,
               "unknown field 'log.kept'");
}

static void test_err_types(void)
{
    EXPECT_ERR(HDR "  a:\n    command: /bin/true\n", 4, 14,
               "services.a.command: expected a list, got a string");
    EXPECT_ERR(HDR "  a:\n    command: []\n", 4, 14, "services.a.command: must not be an empty");
    EXPECT_ERR(HDR "  a:\n    command: [[x]]\n", 4, 15,
               "services.a.command[0]: expected a string, got a list");
    EXPECT_ERR("name: x\nservices: [a]\n", 2, 11, "services: expected a map, got a list");
    EXPECT_ERR("- a\n", 1, 1, "expected a map");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    ports: 80\n", 5, 12,
               "services.a.ports: expected a list");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    environment: FOO\n", 5, 18,
               "services.a.environment: expected a map (KEY: value) or a list");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    environment: [FOO]\n", 5, 19,
               "expected \"KEY=value\"");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    user:\n", 5, 10,
               "services.a.user: expected a string, got nothing (null)");
}

static void test_err_values(void)
{
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    stop_grace_period: 10 sec\n", 5, 24,
               "services.a.stop_grace_period: invalid duration '10 sec'");
    EXPECT_ERR("name: x\nlog:\n  max_size: 10XB\nservices: {a: {command: [a]}}\n", 3, 13,
               "log.max_size: invalid size '10XB'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    ports: [80, 70000]\n", 5, 17,
               "services.a.ports[1]: invalid port '70000'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    files: [{template: t, path: /x, mode: '0999'}]\n",
               5, 43, "services.a.files[0].mode: invalid mode '0999'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    stop_signal: TERM\n", 5, 18,
               "services.a.stop_signal: unknown signal 'TERM'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    restart: sometimes\n", 5, 14,
               "services.a.restart: unknown restart policy 'sometimes'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    kind: mysql\n", 5, 11,
               "services.a.kind: unknown kind 'mysql'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    netns: ../x\n", 5, 12,
               "services.a.netns: invalid network namespace name '../x' (letters, digits, _.-)");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    restart_backoff: {initial: 50ms}\n", 5, 32,
               "services.a.restart_backoff.initial: duration '50ms' is below the minimum of 100ms");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    files: [{template: t, path: rel/x}]\n", 5, 33,
               "services.a.files[0].path: 'rel/x' is not an absolute path");
    EXPECT_ERR(HDR
               "  a:\n    command: [a]\n    files: [{template: t, path: /x, overwrite: maybe}]\n",
               5, 48, "services.a.files[0].overwrite: invalid boolean 'maybe'");
    EXPECT_ERR(HDR "  A:\n    command: [a]\n", 3, 3, "invalid service name 'A'");
    EXPECT_ERR("name: Bad Name\nservices: {a: {command: [a]}}\n", 1, 7, "name: invalid name");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    depends_on: {b: {condition: service_ready}}\n"
                   "  b:\n    command: [a]\n",
               5, 33, "services.a.depends_on.b.condition: unknown condition 'service_ready'");
}

static void test_err_missing(void)
{
    EXPECT_ERR("services: {a: {command: [a]}}\n", 1, 1, "missing required field 'name'");
    EXPECT_ERR("name: x\n", 1, 1, "missing required field 'services'");
    EXPECT_ERR(HDR "  a:\n    user: root\n", 3, 3, "missing required field 'services.a.command'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck:\n      port: 80\n", 5, 5,
               "missing required field 'services.a.healthcheck.type'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck:\n      type: http\n", 5, 5,
               "missing required field 'services.a.healthcheck.port'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    status_probe: {type: exec}\n", 5, 5,
               "missing required field 'services.a.status_probe.command'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    files:\n      - path: /x\n", 6, 9,
               "missing required field 'services.a.files[0].template'");
    EXPECT_ERR("name: x\nservices: {}\n", 2, 11, "at least one service");
    EXPECT_ERR("", 0, 0, "empty");
}

static void test_err_probe_keys(void)
{
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck:\n      type: tcp\n      port: 1\n"
                   "      path: /x\n",
               8, 7, "field 'services.a.healthcheck.path' is not valid for probe type 'tcp'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    status_probe:\n      type: pg\n      port: 1\n"
                   "      interval: 1s\n",
               8, 7, "unknown field 'services.a.status_probe.interval'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck: {type: exec, command: [x], host: h}\n",
               5, 45, "field 'services.a.healthcheck.host' is not valid for probe type 'exec'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck: {type: kafka, port: 1, path: /x}\n", 5,
               41, "field 'services.a.healthcheck.path' is not valid for probe type 'kafka'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck: {type: smtp, port: 25}\n", 5, 25,
               "services.a.healthcheck.type: unknown probe type 'smtp'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck: {type: http, port: 1, "
                   "expect_status: 700}\n",
               5, 55, "services.a.healthcheck.expect_status: 700 is out of range");
}

/* A kafka probe is a bootstrap broker: host (default 127.0.0.1) and port. */
static void test_kafka_probe(void)
{
    struct stack *s = parse_ok(HDR "  kafka1:\n    command: [a]\n    healthcheck:\n"
                                   "      type: kafka\n      port: 29092\n");

    ASSERT_EQ(s->services[0].health.probe.type, PROBE_KAFKA);
    ASSERT_STREQ(s->services[0].health.probe.host, "127.0.0.1");
    ASSERT_EQ(s->services[0].health.probe.port, 29092);
    stack_free(s);
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    healthcheck: {type: kafka}\n", 5, 5,
               "missing required field 'services.a.healthcheck.port'");
}

static void test_err_ports_deps(void)
{
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    ports: [5432]\n  b:\n    command: [b]\n"
                   "    ports: [1, 5432]\n",
               8, 16, "services.b.ports[1]: port 5432 is already used by service 'a'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    ports: [7, 7]\n", 5, 16, "port 7 is listed twice");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    depends_on: [etdc]\n", 5, 18,
               "services.a.depends_on: unknown service 'etdc'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    depends_on: [b]\n  b:\n    command: [b]\n"
                   "    depends_on: [c]\n  c:\n    command: [c]\n    depends_on:\n      a:\n"
                   "        condition: service_healthy\n",
               5, 18, "services.a.depends_on: dependency cycle: a -> b -> c -> a");
    EXPECT_ERR(HDR "  z:\n    command: [a]\n  a:\n    command: [a]\n    depends_on: [a]\n", 7, 18,
               "dependency cycle: a -> a");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    depends_on: [b, b]\n  b: {command: [b]}\n", 5, 21,
               "'b' is listed twice");
}

static void test_err_refs(void)
{
    EXPECT_ERR(HDR "  a:\n    command: [a, \"${home}\"]\n", 4, 18,
               "services.a.command[1]: unknown reference '${home}'");
    EXPECT_ERR(HDR "  a:\n    command: [a, \"${secret.pw}\"]\n", 4, 18,
               "services.a.command[1]: secret 'pw' is not declared under 'secrets'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    environment: {X: \"${state_dir\"}\n", 5, 22,
               "services.a.environment.X: unterminated reference");
    EXPECT_ERR("name: x\nsecrets: [a, a]\nservices: {a: {command: [a]}}\n", 2, 14,
               "secret 'a' is listed twice");
    /* secrets may come after services in the file */
    stack_free(parse_ok("name: x\nservices: {a: {command: [\"${secret.pw}\", \"$${x}\"]}}\n"
                        "secrets: [pw]\n"));
}

static void test_err_yaml(void)
{
    EXPECT_ERR("name: x\nservices:\n  a: [\n", 4, 1, "YAML syntax error");
    EXPECT_ERR("name: &n x\nservices: {a: {command: [a]}}\n", 1, 7, "anchors are not supported");
    EXPECT_ERR("name: x\nservices:\n  a:\n    command: [a]\n  a:\n    command: [b]\n", 5, 3,
               "duplicate key 'a' (lines 3 and 5)");
}

static void test_load_missing_file(void)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;

    ASSERT_ERRNO(stack_load(DATA "/does-not-exist.yml", &s, &e), -ENOENT);
    ASSERT_CONTAINS(e.file, "does-not-exist.yml");
    ASSERT_TRUE(s == NULL);
}

static size_t index_of(const struct stack *s, const char *name)
{
    return (size_t)(stack_find(s, name) - s->services);
}

static void test_start_order(void)
{
    struct stack *s;
    size_t order[8];

    s = load_full();
    stack_start_order(s, order);
    ASSERT_EQ(order[0], index_of(s, "etcd"));
    ASSERT_EQ(order[1], index_of(s, "pg1"));
    ASSERT_EQ(order[2], index_of(s, "redis"));
    ASSERT_EQ(order[3], index_of(s, "schema"));
    stack_free(s);

    /* dependencies first, otherwise file order */
    s = parse_ok(HDR "  web: {command: [w], depends_on: [api, cache]}\n"
                     "  api: {command: [a], depends_on: [db]}\n"
                     "  cache: {command: [c]}\n"
                     "  db: {command: [d]}\n"
                     "  tool: {command: [t]}\n");
    stack_start_order(s, order);
    ASSERT_STREQ(s->services[order[0]].name, "cache");
    ASSERT_STREQ(s->services[order[1]].name, "db");
    ASSERT_STREQ(s->services[order[2]].name, "api");
    ASSERT_STREQ(s->services[order[3]].name, "web");
    ASSERT_STREQ(s->services[order[4]].name, "tool");
    stack_free(s);
}

static const char *fake_secret(const char *name, void *userdata)
{
    (void)userdata;
    if (streq(name, "pg_superuser"))
        return "s3cr3t";
    if (streq(name, "redis"))
        return "r3d1s";
    return NULL;
}

static const char *no_secret(const char *name, void *userdata)
{
    (void)name;
    (void)userdata;
    return NULL;
}

static void test_resolve(void)
{
    struct stack_vars vars = { .state_dir = "/var/lib/ut", .secret = fake_secret };
    struct stack *s = load_full();
    struct stack_service *pg = stack_find(s, "pg1");
    struct err e = ERR_INIT;

    ASSERT_OK(stack_resolve(s, &vars, &e));
    ASSERT_TRUE(s->resolved);
    ASSERT_STREQ(s->services[0].argv[2], "/var/lib/ut/etcd");
    ASSERT_STREQ(pg->argv[1], "/var/lib/ut/pg1/patroni.yml");
    ASSERT_STREQ(pg->working_dir, "/var/lib/ut/pg1");
    ASSERT_STREQ(pg->env[1], "PGPASSWORD=s3cr3t");
    ASSERT_STREQ(pg->env[2], "COST=$5");
    ASSERT_STREQ(pg->dirs[1], "/var/lib/ut/pg1/data");
    ASSERT_STREQ(pg->files[0].path, "/var/lib/ut/pg1/patroni.yml");
    ASSERT_STREQ(pg->files[1].template_path, DATA "/patroni/pg1.yml");
    ASSERT_STREQ(pg->status_probe.password, "s3cr3t");
    ASSERT_STREQ(stack_find(s, "redis")->argv[4], "r3d1s");
    ASSERT_STREQ(stack_find(s, "schema")->argv[2], "echo $HOME");
    /* a second resolve would turn "$" into garbage: refused */
    ASSERT_ERRNO(stack_resolve(s, &vars, &e), -EALREADY);
    stack_free(s);
}

static void test_resolve_missing_secret(void)
{
    struct stack_vars vars = { .state_dir = "/var/lib/ut", .secret = no_secret };
    struct stack *s = load_full();
    struct err e = ERR_INIT;

    ASSERT_ERRNO(stack_resolve(s, &vars, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "services.pg1.environment[1]: secret 'pg_superuser' is missing");
    ASSERT_CONTAINS(e.file, "full.yml");
    ASSERT_EQ(e.line, 22);
    /* all or nothing: nothing was expanded */
    ASSERT_FALSE(s->resolved);
    ASSERT_STREQ(s->services[0].argv[2], "${state_dir}/etcd");
    ASSERT_STREQ(stack_find(s, "pg1")->env[2], "COST=$$5");
    stack_free(s);

    /* a relative state dir is refused */
    s = load_full();
    vars.state_dir = "rel";
    ASSERT_ERRNO(stack_resolve(s, &vars, &e), -EINVAL);
    stack_free(s);
}

/* A cluster member: fenced when frozen or not live, its leader key released once it is gone;
 * its command in the tools dir (Patroni from PyPI). */
static void test_fencing_fields(void)
{
    struct stack_vars vars = { .state_dir = "/st", .tools_dir = "/opt/ut", .secret = fake_secret };
    struct err e = ERR_INIT;
    struct stack *s;
    struct stack_service *pg;

    s = parse_ok(HDR "  pg1:\n    package: \"pypi:patroni==4.1.5\"\n"
                     "    command: [\"${tools_dir}/patroni-4.1.5/bin/patroni\", x]\n"
                     "    freeze_after: 200ms\n"
                     "    liveness: {type: http, port: 8008, path: /liveness, retries: 2}\n"
                     "    lock: {port: 2479, key: /service/u/leader, value: pg1,\n"
                     "           pidfile: \"${state_dir}/pg1/data/postmaster.pid\",\n"
                     "           handover_key: /service/u/failover}\n");
    pg = &s->services[0];
    ASSERT_STREQ(pg->package, "pypi:patroni==4.1.5");
    ASSERT_TRUE(pg->netns == NULL);
    ASSERT_EQ(pg->freeze_after_usec, 200 * USEC_PER_MSEC);
    ASSERT_TRUE(pg->liveness.present);
    ASSERT_EQ(pg->liveness.probe.port, 8008);
    ASSERT_EQ(pg->liveness.retries, 2);
    ASSERT_EQ(pg->liveness.interval_usec, 2 * USEC_PER_SEC);
    ASSERT_TRUE(pg->lock.present);
    ASSERT_STREQ(pg->lock.host, "127.0.0.1");
    ASSERT_EQ(pg->lock.port, 2479);
    ASSERT_STREQ(pg->lock.key, "/service/u/leader");
    ASSERT_STREQ(pg->lock.value, "pg1");
    ASSERT_STREQ(pg->lock.handover_key, "/service/u/failover");
    ASSERT_OK(stack_resolve(s, &vars, &e));
    ASSERT_STREQ(pg->argv[0], "/opt/ut/patroni-4.1.5/bin/patroni");
    ASSERT_STREQ(pg->lock.pidfile, "/st/pg1/data/postmaster.pid");
    stack_free(s);
    s = parse_ok(HDR "  a:\n    command: [a]\n    lock: {port: 1, key: k, value: a}\n");
    ASSERT_TRUE(s->services[0].lock.pidfile == NULL && s->services[0].lock.handover_key == NULL);
    stack_free(s);

    EXPECT_ERR(HDR "  a:\n    command: [a]\n    lock: {port: 2479, value: a}\n", 5, 5,
               "missing required field 'services.a.lock.key'");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    lock: {type: zk, port: 1, key: k, value: a}\n", 5,
               18, "services.a.lock.type: unknown lock type 'zk' (etcd)");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    lock: {port: 1, key: k, value: a, ttl: 3}\n", 5, 39,
               "unknown field 'services.a.lock.ttl'");
    EXPECT_ERR(HDR
               "  a:\n    command: [a]\n    lock: {port: 1, key: k, value: a, pidfile: x.pid}\n",
               5, 48, "services.a.lock.pidfile:");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    freeze_after: 10ms\n", 5, 19,
               "services.a.freeze_after: duration '10ms' is below the minimum of 50ms");
    EXPECT_ERR(HDR "  a:\n    command: [a]\n    liveness: {type: http}\n", 5, 5,
               "missing required field 'services.a.liveness.port'");
    EXPECT_ERR(HDR "  a:\n    package: pypi:patroni\n    command: [a]\n", 4, 14,
               "services.a.package: invalid PyPI requirement 'pypi:patroni'");
    EXPECT_ERR(HDR "  a:\n    command: [\"${tool_dir}/x\"]\n", 4, 15,
               "unknown reference '${tool_dir}'");
}

static void test_expand(void)
{
    struct stack_vars vars = { .state_dir = "/st", .secret = fake_secret };
    struct stack *s = load_full();
    struct buf out = BUF_INIT(0);
    struct err e = ERR_INIT;

    ASSERT_OK(stack_expand(s, &vars, "a ${state_dir} $$ $$$$ ${stack_dir}/x $y $", &out, &e));
    {
        char *want = xasprintf("a /st $ $$ %s/x $y $", DATA);
        ASSERT_STREQ(buf_str(&out), want);
        free(want);
    }
    buf_reset(&out);
    ASSERT_OK(stack_expand(s, &vars, "", &out, &e));
    ASSERT_STREQ(buf_str(&out), "");
    buf_reset(&out);
    ASSERT_OK(stack_expand(s, &vars, "pw=${secret.redis}\n", &out, &e));
    ASSERT_STREQ(buf_str(&out), "pw=r3d1s\n");
    buf_reset(&out);
    ASSERT_ERRNO(stack_expand(s, &vars, "x\n  y ${bogus}", &out, &e), -EINVAL);
    ASSERT_EQ(e.line, 2);
    ASSERT_EQ(e.col, 5);
    ASSERT_CONTAINS(e.msg, "unknown reference '${bogus}'");
    vars.secret = no_secret;
    ASSERT_ERRNO(stack_expand(s, &vars, "${secret.redis}", &out, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "secret 'redis' is missing");
    ASSERT_ERRNO(stack_expand(s, &vars, "${secret.other}", &out, &e), -EINVAL);
    ASSERT_CONTAINS(e.msg, "not declared");
    ASSERT_ERRNO(stack_expand(s, &vars, "ab ${state_dir", &out, &e), -EINVAL);
    ASSERT_EQ(e.col, 4);
    ASSERT_CONTAINS(e.msg, "unterminated");
    buf_release(&out);
    stack_free(s);
}

/* --- secrets and preparation (real files under a temporary directory) --------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static char tmpdir[64];

static void tmp_cleanup(void)
{
    if (tmpdir[0])
        (void)nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_make(void)
{
    (void)snprintf(tmpdir, sizeof tmpdir, "/tmp/ut-stack-XXXXXX");
    if (!mkdtemp(tmpdir))
        T_FAIL("mkdtemp failed");
    (void)atexit(tmp_cleanup);
    return tmpdir;
}

static void write_file(const char *path, const char *text)
{
    ASSERT_OK(file_write_atomic(path, text, strlen(text), 0644));
}

static char *read_text(const char *path)
{
    struct buf b = BUF_INIT(0);

    ASSERT_OK(file_read_all(path, &b));
    return buf_detach(&b, NULL);
}

static bool is_alnum32(const char *v)
{
    size_t n = 0;

    for (; v[n]; n++)
        if (!((v[n] >= 'a' && v[n] <= 'z') || (v[n] >= 'A' && v[n] <= 'Z') ||
              (v[n] >= '0' && v[n] <= '9')))
            return false;
    return n == 32;
}

static void test_secrets(void)
{
    const char *t = tmp_make();
    char *state = xasprintf("%s/state", t), *p, *v;
    struct stack *s = parse_ok("name: x\nsecrets: [pg, redis]\nservices: {a: {command: [a]}}\n");
    struct stack_secrets *ss = NULL, *again = NULL;
    struct err e = ERR_INIT;
    struct stat st;
    char pg[64];

    /* create=false on a fresh state dir: -ENOENT naming the secret */
    ASSERT_ERRNO(stack_secrets_ensure_err(s, state, false, &ss, &e), -ENOENT);
    ASSERT_CONTAINS(e.msg, "secret 'pg' does not exist");
    ASSERT_TRUE(ss == NULL);
    ASSERT_ERRNO(stack_secrets_ensure(s, state, false, &ss), -ENOENT);

    ASSERT_OK(stack_secrets_ensure(s, state, true, &ss));
    ASSERT_TRUE(is_alnum32(stack_secrets_lookup("pg", ss)));
    ASSERT_TRUE(is_alnum32(stack_secrets_lookup("redis", ss)));
    ASSERT_FALSE(streq(stack_secrets_lookup("pg", ss), stack_secrets_lookup("redis", ss)));
    ASSERT_TRUE(stack_secrets_lookup("other", ss) == NULL);
    (void)snprintf(pg, sizeof pg, "%s", stack_secrets_lookup("pg", ss));

    p = xasprintf("%s/secrets", state);
    ASSERT_OK(stat(p, &st));
    ASSERT_EQ(st.st_mode & 07777, 0700);
    free(p);
    p = xasprintf("%s/secrets/pg", state);
    ASSERT_OK(stat(p, &st));
    ASSERT_EQ(st.st_mode & 07777, 0600);
    v = read_text(p);
    ASSERT_STREQ(v, pg);
    free(v);

    /* reload: same values, with or without create */
    ASSERT_OK(stack_secrets_ensure(s, state, false, &again));
    ASSERT_STREQ(stack_secrets_lookup("pg", again), pg);
    ASSERT_STREQ(stack_secrets_lookup("redis", again), stack_secrets_lookup("redis", ss));
    again = stack_secrets_free(again);
    ASSERT_OK(stack_secrets_ensure(s, state, true, &again));
    ASSERT_STREQ(stack_secrets_lookup("pg", again), pg);
    again = stack_secrets_free(again);

    /* a hand-written secret keeps its value minus the trailing newline */
    write_file(p, "handmade\n");
    ASSERT_OK(stack_secrets_ensure(s, state, false, &again));
    ASSERT_STREQ(stack_secrets_lookup("pg", again), "handmade");
    again = stack_secrets_free(again);
    write_file(p, "");
    ASSERT_ERRNO(stack_secrets_ensure(s, state, true, &again), -EINVAL);

    /* usable as stack_vars.secret */
    {
        struct stack_vars vars = { .state_dir = state,
                                   .secret = stack_secrets_lookup,
                                   .userdata = ss };
        struct buf out = BUF_INIT(0);

        ASSERT_OK(stack_expand(s, &vars, "${secret.pg}", &out, &e));
        ASSERT_STREQ(buf_str(&out), pg);
        buf_release(&out);
    }
    ASSERT_TRUE(stack_secrets_free(ss) == NULL);
    ASSERT_TRUE(stack_secrets_free(NULL) == NULL);
    free(p);
    free(state);
    stack_free(s);
    tmp_cleanup(); /* the harness _exit()s after a passing case: atexit() covers failures */
}

static void test_prepare(void)
{
    const char *t = tmp_make();
    char *path = xasprintf("%s/stack.yml", t), *state = xasprintf("%s/state", t), *p, *v;
    struct stack_secrets *ss = NULL;
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    struct stat st;
    char *want;
    bool root = geteuid() == 0;

    write_file(path, "name: prep\n"
                     "secrets: [pw]\n"
                     "services:\n"
                     "  a:\n"
                     "    command: [/bin/true]\n"
                     "    user: nobody\n"
                     "    dirs: [\"${state_dir}/a/data\"]\n"
                     "    files:\n"
                     "      - template: app.tmpl\n"
                     "        path: \"${state_dir}/a/conf/app.conf\"\n"
                     "        mode: \"0640\"\n"
                     "      - template: app.tmpl\n"
                     "        path: \"${state_dir}/a/keep.conf\"\n"
                     "        overwrite: false\n"
                     "      - template: bad.tmpl\n"
                     "        path: \"${state_dir}/a/copy.sh\"\n"
                     "        mode: \"0755\"\n"
                     "        expand: false\n"
                     "  b:\n"
                     "    command: [/bin/true]\n"
                     "    files: [{template: bad.tmpl, path: \"${state_dir}/b.conf\"}]\n"
                     "  c:\n"
                     "    command: [/bin/true]\n"
                     "    user: ut-no-such-user\n"
                     "    dirs: [\"${state_dir}/c\"]\n"
                     "  d:\n"
                     "    command: [/bin/true]\n"
                     "    files: [{template: missing.tmpl, path: \"${state_dir}/d.conf\"}]\n"
                     "  e:\n"
                     "    command: [/bin/true]\n"
                     "    user: nobody\n"
                     "    dirs: [\"${state_dir}/link\"]\n");
    p = xasprintf("%s/app.tmpl", t);
    write_file(p, "pw=${secret.pw}\nstate=${state_dir}\ncost=$$1\n");
    free(p);
    p = xasprintf("%s/bad.tmpl", t);
    write_file(p, "ok\nx = ${nope}\n");
    free(p);

    ASSERT_OK(stack_load(path, &s, &e));
    ASSERT_OK(stack_secrets_ensure(s, state, true, &ss));
    {
        struct stack_vars vars = { .state_dir = state,
                                   .secret = stack_secrets_lookup,
                                   .userdata = ss };
        struct passwd *nobody = getpwnam("nobody");

        /* only a resolved stack can be prepared */
        ASSERT_ERRNO(stack_prepare_service(s, &s->services[0], &vars, &e), -EINVAL);
        ASSERT_CONTAINS(e.msg, "not resolved");
        ASSERT_OK(stack_resolve(s, &vars, &e));

        /* the kept file exists before; the other is rendered */
        p = xasprintf("%s/a", state);
        ASSERT_OK(mkdir_p(p, 0755));
        free(p);
        p = xasprintf("%s/a/keep.conf", state);
        write_file(p, "mine\n");
        free(p);
        ASSERT_OK(stack_prepare_service(s, &s->services[0], &vars, &e));

        p = xasprintf("%s/a/data", state);
        ASSERT_OK(stat(p, &st));
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        ASSERT_EQ(st.st_mode & 07777, 0700);
        if (root) {
            ASSERT_TRUE(nobody != NULL);
            ASSERT_EQ(st.st_uid, nobody->pw_uid);
            ASSERT_EQ(st.st_gid, nobody->pw_gid);
        } else {
            ASSERT_EQ(st.st_uid, geteuid());
        }
        free(p);

        p = xasprintf("%s/a/conf/app.conf", state);
        ASSERT_OK(stat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0640);
        if (root)
            ASSERT_EQ(st.st_uid, nobody->pw_uid);
        v = read_text(p);
        want = xasprintf("pw=%s\nstate=%s\ncost=$1\n", stack_secrets_lookup("pw", ss), state);
        ASSERT_STREQ(v, want);
        free(v);
        /* overwrite=true (default) rewrites a changed file */
        write_file(p, "changed\n");
        ASSERT_OK(stack_prepare_service(s, &s->services[0], &vars, &e));
        v = read_text(p);
        ASSERT_STREQ(v, want);
        free(v);
        free(want);
        free(p);

        /* expand: false copies the file as it is, its own ${...} included */
        p = xasprintf("%s/a/copy.sh", state);
        v = read_text(p);
        ASSERT_STREQ(v, "ok\nx = ${nope}\n");
        ASSERT_OK(stat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0755);
        free(v);
        free(p);

        p = xasprintf("%s/a/keep.conf", state);
        v = read_text(p);
        ASSERT_STREQ(v, "mine\n");
        free(v);
        /* once missing, an overwrite=false file is rendered */
        ASSERT_OK(unlink(p));
        ASSERT_OK(stack_prepare_service(s, &s->services[0], &vars, &e));
        v = read_text(p);
        ASSERT_CONTAINS(v, "cost=$1\n");
        free(v);
        free(p);

        /* a bad reference inside a template: file:line:col of the template */
        e = (struct err)ERR_INIT;
        ASSERT_ERRNO(stack_prepare_service(s, &s->services[1], &vars, &e), -EINVAL);
        ASSERT_CONTAINS(e.file, "/bad.tmpl");
        ASSERT_EQ(e.line, 2);
        ASSERT_EQ(e.col, 5);
        ASSERT_CONTAINS(e.msg, "unknown reference '${nope}'");
        p = xasprintf("%s/b.conf", state);
        ASSERT_ERRNO(stat(p, &st) < 0 ? -errno : 0, -ENOENT);
        free(p);

        /* a missing template is named */
        e = (struct err)ERR_INIT;
        ASSERT_ERRNO(stack_prepare_service(s, &s->services[3], &vars, &e), -ENOENT);
        ASSERT_CONTAINS(e.file, "/missing.tmpl");

        /* a symlinked dir is used but never chmod'ed/chowned through */
        p = xasprintf("%s/target", t);
        ASSERT_OK(mkdir(p, 0755));
        {
            char *link = xasprintf("%s/link", state);

            ASSERT_OK(symlink(p, link));
            free(link);
        }
        ASSERT_OK(stack_prepare_service(s, &s->services[4], &vars, &e));
        ASSERT_OK(stat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0755);
        ASSERT_EQ(st.st_uid, geteuid());
        free(p);

        /* an unknown user is an error when running as root (the only time it is used) */
        e = (struct err)ERR_INIT;
        if (root) {
            ASSERT_ERRNO(stack_prepare_service(s, &s->services[2], &vars, &e), -EINVAL);
            ASSERT_CONTAINS(e.msg, "user 'ut-no-such-user' does not exist");
        } else {
            ASSERT_OK(stack_prepare_service(s, &s->services[2], &vars, &e));
        }
    }
    stack_secrets_free(ss);
    stack_free(s);
    free(state);
    free(path);
    tmp_cleanup();
}

T_MAIN(T_CASE(test_full_example), T_CASE(test_defaults), T_CASE(test_defaults_are_the_supervisors),
       T_CASE(test_err_unknown_field), T_CASE(test_err_types), T_CASE(test_err_values),
       T_CASE(test_err_missing), T_CASE(test_err_probe_keys), T_CASE(test_kafka_probe),
       T_CASE(test_err_ports_deps), T_CASE(test_err_refs), T_CASE(test_err_yaml),
       T_CASE(test_load_missing_file), T_CASE(test_start_order), T_CASE(test_resolve),
       T_CASE(test_resolve_missing_secret), T_CASE(test_expand), T_CASE(test_secrets),
       T_CASE(test_prepare), T_CASE(test_fencing_fields))
