/* SPDX-License-Identifier: MIT */
/* infractl drill redis|kafka|all: the Redis + Sentinel and Kafka drills (src/drill), and every
 * cluster's faults in one report.  `drill all` runs `infractl drill CLUSTER --fault F --json`
 * once per fault (this program, as a child), so every PostgreSQL fault cmd_drill.c knows is
 * included, and merges their documents; --html draws any report's runs as timelines. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "drill/drill.h"
#include "drill/drill_kafka.h"
#include "drill/drill_redis.h"
#include "stack/stack.h"
#include "status.h"

static const char usage[] = "drill redis|kafka --fault F [--runs N] [--pause S] [--max-gap S] "
                            "[--victim leader|controller (kafka)] [--json] [--html FILE] | drill "
                            "all [--runs N] [--json] [--html FILE]";

#define REDIS_MASTER_NAME "mymaster" /* Sentinel's name for it (templates/sentinel) */
#define KAFKA_DRILL_TOPIC "infractl.drill"
#define REDIS_FAULTS      "crash, pause, switchover or partition"
#define KAFKA_FAULTS      "crash, pause or partition"

/* Default gap targets (--max-gap overrides): docs/drills.md says where they come from. */
static uint64_t default_max_gap(const char *cluster, const char *fault)
{
    if (streq(cluster, "redis"))
        return streq(fault, "pause") || streq(fault, "partition") ? 5 * USEC_PER_SEC
                                                                  : 2500 * USEC_PER_MSEC;
    /* the 10 s cut, the fencing (~2 s, ~4.5 s when the cut broker leads the quorum) and a
     * reconnect: a client may follow the cut leader until the cut ends (librdkafka 2.0.2 did) */
    if (streq(fault, "partition"))
        return 15 * USEC_PER_SEC;
    return streq(fault, "pause") ? 6 * USEC_PER_SEC : 3 * USEC_PER_SEC;
}

static void on_progress(const char *line, void *userdata)
{
    (void)userdata;
    fprintf(stderr, "drill: %s\n", line);
}

/* ===== Targets from the stack file ===== */

/* The service's pid as the supervisor reports it now (it changes with every restart). */
static pid_t service_pid(const char *service, void *userdata)
{
    struct status_snapshot snap = { 0 };
    pid_t pid = 0;

    if (status_fetch(userdata, &snap) < 0)
        return 0;
    for (size_t i = 0; i < snap.n_services; i++)
        if (streq(snap.services[i].name, service))
            pid = (pid_t)snap.services[i].pid;
    status_snapshot_release(&snap);
    return pid;
}

/* The service leading the KRaft quorum (status: the nodes' quorum-state records). */
struct controller_ctx {
    struct cli_ctx *ctx;
    const struct stack *stack;
};

static void kafka_controller(char *ret, size_t size, void *userdata)
{
    const struct controller_ctx *c = userdata;
    struct status_snapshot snap = { 0 };

    ret[0] = '\0';
    if (status_fetch(c->ctx, &snap) < 0)
        return;
    status_collect_roles(&snap, c->stack);
    (void)snprintf(ret, size, "%s", snap.kafka.controller);
    status_snapshot_release(&snap);
}

struct targets {
    struct drill_redis_target redis;
    struct drill_redis_node redis_nodes[8];
    struct drill_redis_node sentinels[8];
    struct drill_kafka_target kafka;
    struct drill_kafka_broker brokers[8];
    struct controller_ctx controller;
    struct buf bootstrap;
};

static int build_targets(struct cli_ctx *ctx, const struct stack *s, pid_t supervisor,
                         const char *cluster, struct targets *t)
{
    *t = (struct targets){ .bootstrap = BUF_INIT(0), .controller = { ctx, s } };
    t->redis = (struct drill_redis_target){ .supervisor = supervisor,
                                            .main_pid = service_pid,
                                            .main_pid_data = ctx,
                                            .master_name = REDIS_MASTER_NAME,
                                            .nodes = t->redis_nodes,
                                            .sentinels = t->sentinels };
    t->kafka = (struct drill_kafka_target){ .supervisor = supervisor,
                                            .main_pid = service_pid,
                                            .main_pid_data = ctx,
                                            .topic = KAFKA_DRILL_TOPIC,
                                            .brokers = t->brokers,
                                            .state_dir = ctx->state_dir,
                                            .controller = kafka_controller,
                                            .controller_data = &t->controller };
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];

        if (!svc->kind || !svc->has_status_probe)
            continue;
        if (streq(svc->kind, "redis") && t->redis.n_nodes < ARRAY_SIZE(t->redis_nodes)) {
            t->redis_nodes[t->redis.n_nodes++] =
                    (struct drill_redis_node){ .name = svc->name,
                                               .host = svc->status_probe.host,
                                               .port = svc->status_probe.port,
                                               .netns = svc->netns };
            t->redis.password = svc->status_probe.password;
        } else if (streq(svc->kind, "sentinel") &&
                   t->redis.n_sentinels < ARRAY_SIZE(t->sentinels)) {
            t->sentinels[t->redis.n_sentinels++] = (struct drill_redis_node){
                .name = svc->name, .host = svc->status_probe.host, .port = svc->status_probe.port
            };
        } else if (streq(svc->kind, "kafka") && t->kafka.n_brokers < ARRAY_SIZE(t->brokers)) {
            t->brokers[t->kafka.n_brokers++] =
                    (struct drill_kafka_broker){ .name = svc->name,
                                                 .port = svc->status_probe.port,
                                                 .host = svc->status_probe.host,
                                                 .netns = svc->netns };
        }
    }
    if (streq(cluster, "redis") && (t->redis.n_nodes < 2 || t->redis.n_sentinels == 0)) {
        log_error("the stack has no Redis to drill (services of kind redis and sentinel with a "
                  "status_probe)");
        return -ENOENT;
    }
    if (streq(cluster, "kafka")) {
        if (t->kafka.n_brokers < 2 || cli_kafka_bootstrap(ctx, &t->bootstrap) < 0) {
            log_error("the stack has no Kafka cluster to drill (services of kind kafka with a "
                      "status_probe)");
            return -ENOENT;
        }
        t->kafka.bootstrap = t->bootstrap.data;
    }
    return 0;
}

/* --fault partition cuts a node's network namespace: a stack whose nodes of the cluster have
 * none (the main stack) is refused from the stack file alone, before anything runs, and
 * whether or not it is up.  0, or the exit code after the error. */
static int check_partition_stack(const struct cli_ctx *ctx, const char *cluster)
{
    bool redis = streq(cluster, "redis");
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    char msg[600];
    int ret = CLI_EXIT_OK;

    if (stack_load(ctx->stack_path, &s, &e) < 0) {
        log_error("invalid stack file: %s", err_format(&e, msg, sizeof msg));
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < s->n_services && ret == CLI_EXIT_OK; i++) {
        const struct stack_service *svc = &s->services[i];

        if (svc->kind && streq(svc->kind, cluster) && !svc->netns) {
            log_error("--fault partition needs the %s in network namespaces, and %s of %s has "
                      "no netns: run it on the drill cluster (sudo scripts/drill-netns.sh "
                      "--cluster %s up; docs/drills.md)",
                      redis ? "Redis nodes" : "brokers", svc->name, ctx->stack_path, cluster);
            ret = CLI_EXIT_FAILURE;
        }
    }
    stack_free(s);
    return ret;
}

/* ===== One cluster, in this process ===== */

static bool run_passed(const struct drill_run *r, uint64_t max_gap)
{
    bool clean = r->healed && r->gap_usec <= max_gap;

    if (streq(r->cluster, "redis")) /* plain losses are reported, WAIT-confirmed ones fail */
        return clean && r->tally[1].lost == 0;
    return clean && r->tally[0].lost == 0 && r->tally[0].duplicates == 0;
}

static json_t *stats_json(const uint64_t *v, size_t n)
{
    struct drill_stats st;

    drill_stats(v, n, &st);
    return json_pack("{s:f, s:f, s:f, s:f}", "min", (double)st.min / 1000.0, "median",
                     (double)st.median / 1000.0, "p95", (double)st.p95 / 1000.0, "max",
                     (double)st.max / 1000.0);
}

/* The document of one cluster and fault: every run, the summary, the verdict. */
static json_t *series_json(const char *cluster, const char *fault, const struct drill_run *runs,
                           size_t n, uint64_t max_gap, bool passed)
{
    json_t *doc = json_object(), *arr = json_array(), *tallies = json_object();
    uint64_t *gaps = xcalloc(n + 1, sizeof *gaps), *leaders = xcalloc(n + 1, sizeof *leaders);
    unsigned healed = 0;

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, drill_run_json(&runs[i], run_passed(&runs[i], max_gap)));
        gaps[i] = runs[i].gap_usec;
        leaders[i] = runs[i].new_leader_usec;
        healed += runs[i].healed;
    }
    for (size_t k = 0; n && k < DRILL_TALLIES; k++) {
        unsigned lost = 0, dup = 0, acked = 0, unknown = 0, recovered = 0;

        if (!runs[0].tally[k].name)
            continue;
        for (size_t i = 0; i < n; i++) {
            acked += runs[i].tally[k].acked;
            unknown += runs[i].tally[k].unknown;
            recovered += runs[i].tally[k].recovered;
            lost += runs[i].tally[k].lost;
            dup += runs[i].tally[k].duplicates;
        }
        json_object_set_new(tallies, runs[0].tally[k].name,
                            json_pack("{s:i, s:i, s:i, s:i, s:i}", "acked", acked, "unknown",
                                      unknown, "recovered", recovered, "lost", lost, "duplicates",
                                      dup));
    }
    json_object_set_new(doc, "cluster", json_string(cluster));
    json_object_set_new(doc, "fault", json_string(fault));
    json_object_set_new(doc, "runs", arr);
    json_object_set_new(doc, "gap_ms", stats_json(gaps, n));
    json_object_set_new(doc, "new_leader_ms", stats_json(leaders, n));
    json_object_set_new(doc, "totals", tallies);
    json_object_set_new(doc, "healed", json_integer(healed));
    json_object_set_new(doc, "max_gap_target_ms", json_real((double)max_gap / 1000.0));
    json_object_set_new(doc, "passed", json_boolean(passed));
    free(gaps);
    free(leaders);
    return doc;
}

static void print_summary(json_t *doc, FILE *f)
{
    json_t *g = json_object_get(doc, "gap_ms"), *tl = json_object_get(doc, "totals"), *v;
    const char *name;

    fprintf(f,
            "summary: %s --fault %s: %zu runs  gap ms min %.0f / median %.0f / p95 %.0f / "
            "max %.0f  healed %lld",
            json_string_value(json_object_get(doc, "cluster")),
            json_string_value(json_object_get(doc, "fault")),
            json_array_size(json_object_get(doc, "runs")),
            json_real_value(json_object_get(g, "min")),
            json_real_value(json_object_get(g, "median")),
            json_real_value(json_object_get(g, "p95")), json_real_value(json_object_get(g, "max")),
            json_integer_value(json_object_get(doc, "healed")));
    json_object_foreach(tl, name, v)
    {
        fprintf(f, "  %s: acked %lld lost %lld dup %lld", name,
                json_integer_value(json_object_get(v, "acked")),
                json_integer_value(json_object_get(v, "lost")),
                json_integer_value(json_object_get(v, "duplicates")));
    }
    fprintf(f, "  %s\n", json_is_true(json_object_get(doc, "passed")) ? "PASSED" : "FAILED");
}

struct args {
    const char *cluster, *fault, *html, *victim;
    uint64_t runs, pause_usec, max_gap;
    bool json;
};

int cli_drill_write_html(const char *path, void *docs)
{
    int r = drill_html_write(path, docs);

    if (r < 0)
        log_error("cannot write %s: %s", path, strerror(-r));
    else
        fprintf(stderr, "drill: timeline written to %s\n", path);
    return r;
}

static int run_cluster(const struct args *a, struct cli_ctx *ctx)
{
    struct status_snapshot snap = { 0 };
    struct drill_run *res = NULL;
    struct stack *s = NULL;
    struct targets t = { .bootstrap = BUF_INIT(0) };
    bool redis = streq(a->cluster, "redis"), passed = true;
    uint64_t max_gap = a->max_gap ? a->max_gap : default_max_gap(a->cluster, a->fault);
    struct drill_redis_options ro = { .pause_usec = a->pause_usec, .progress = on_progress };
    struct drill_kafka_options ko = { .pause_usec = a->pause_usec, .progress = on_progress };
    size_t done = 0;
    json_t *doc;
    int r, ret = CLI_EXIT_FAILURE;

    if (redis ? drill_redis_fault_from_string(a->fault, &ro.fault) < 0
              : drill_kafka_fault_from_string(a->fault, &ko.fault) < 0)
        return cli_usage_error(usage, "unknown %s fault '%s' (%s)", a->cluster, a->fault,
                               redis ? REDIS_FAULTS : KAFKA_FAULTS);
    if (a->victim && (redis || drill_kafka_victim_from_string(a->victim, &ko.victim) < 0))
        return cli_usage_error(usage,
                               redis ? "--victim is Kafka's (redis drills the master)"
                                     : "--victim: expected leader or controller, got '%s'",
                               a->victim);
    if (streq(a->fault, "partition") && (ret = check_partition_stack(ctx, a->cluster)) != 0)
        return ret;
    ret = CLI_EXIT_FAILURE;
    if (status_fetch(ctx, &snap) < 0) {
        log_error("the stack is not running (state dir %s)", ctx->state_dir);
        return CLI_EXIT_NOT_RUNNING;
    }
    if (cli_load_stack(ctx, false, &s, NULL) < 0 ||
        build_targets(ctx, s, (pid_t)snap.supervisor_pid, a->cluster, &t) < 0)
        goto out;
    res = xcalloc(a->runs, sizeof *res);
    for (; done < a->runs; done++) {
        struct err e = ERR_INIT;
        char msg[512];

        fprintf(stderr, "drill: run %zu/%llu: %s --fault %s\n", done + 1,
                (unsigned long long)a->runs, a->cluster, a->fault);
        r = redis ? drill_redis_run(&t.redis, &ro, &res[done], &e)
                  : drill_kafka_run(&t.kafka, &ko, &res[done], &e);
        if (r < 0) {
            log_error("drill run %zu: %s", done + 1, err_format(&e, msg, sizeof msg));
            goto out;
        }
        passed = passed && run_passed(&res[done], max_gap);
        drill_run_print(&res[done], (unsigned)done + 1, stderr);
    }
    doc = series_json(a->cluster, a->fault, res, done, max_gap, passed);
    if (!redis)
        json_object_set_new(doc, "victim", json_string(drill_kafka_victim_to_string(ko.victim)));
    if (a->json) {
        if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
            log_error("cannot write the JSON report");
        fputc('\n', stdout);
    } else {
        print_summary(doc, stdout);
    }
    if (a->html) {
        json_t *docs = json_array();

        json_array_append(docs, doc);
        if (cli_drill_write_html(a->html, docs) < 0)
            passed = false;
        json_decref(docs);
    }
    json_decref(doc);
    ret = passed ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    for (size_t i = 0; res && i < done; i++)
        drill_run_release(&res[i]);
    free(res);
    buf_release(&t.bootstrap);
    stack_free(s);
    status_snapshot_release(&snap);
    return ret;
}

/* ===== drill all: every cluster's faults, one child each ===== */

/* Runs `infractl [-f STACK] [--state-dir DIR] drill CLUSTER --fault F --runs N --json` and
 * parses its document.  NULL when the child failed to run a drill (exit 1..3) or printed no
 * document; its exit status in *status. */
static json_t *run_child(const struct cli_ctx *ctx, const char *cluster, const char *fault,
                         uint64_t runs, int *status)
{
    char runs_s[24], *argv[16];
    int fds[2], n = 0, st;
    struct buf out = BUF_INIT(0);
    json_t *doc = NULL;
    pid_t pid;

    (void)snprintf(runs_s, sizeof runs_s, "%llu", (unsigned long long)runs);
    argv[n++] = xstrdup("infractl");
    argv[n++] = xstrdup("--state-dir");
    argv[n++] = xstrdup(ctx->state_dir);
    argv[n++] = xstrdup("-f");
    argv[n++] = xstrdup(ctx->stack_path);
    argv[n++] = xstrdup("drill");
    argv[n++] = xstrdup(cluster);
    argv[n++] = xstrdup("--fault");
    argv[n++] = xstrdup(fault);
    argv[n++] = xstrdup("--runs");
    argv[n++] = xstrdup(runs_s);
    argv[n++] = xstrdup("--json");
    argv[n] = NULL;
    *status = -1;
    pid = pipe2(fds, O_CLOEXEC) < 0 ? -1 : 0;
    fflush(stdout);
    fflush(stderr);
    if (pid == 0 && (pid = fork()) < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    if (pid < 0) {
        for (int i = 0; i < n; i++)
            free(argv[i]);
        return NULL;
    }
    if (pid == 0) {
        (void)dup3(fds[1], STDOUT_FILENO, 0); /* stdout stays open across exec */
        close(fds[0]);
        close(fds[1]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    for (int i = 0; i < n; i++)
        free(argv[i]);
    for (;;) {
        char chunk[4096];
        ssize_t k = read(fds[0], chunk, sizeof chunk);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || buf_append(&out, chunk, (size_t)k) < 0)
            break;
    }
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (out.len)
        doc = json_loadb(out.data, out.len, 0, NULL);
    buf_release(&out);
    return doc;
}

static int run_all(const struct args *a, struct cli_ctx *ctx)
{
    json_t *docs = json_array(), *report;
    bool passed = true, failed = false;
    char names[_DRILL_PG_FAULT_MAX + _DRILL_REDIS_FAULT_MAX + _DRILL_KAFKA_FAULT_MAX][2][24];
    struct status_snapshot snap = { 0 };
    size_t n = 0;
    int ret;

    if (status_fetch(ctx, &snap) < 0) {
        log_error("the stack is not running (state dir %s)", ctx->state_dir);
        json_decref(docs);
        return CLI_EXIT_NOT_RUNNING;
    }
    status_snapshot_release(&snap);

    /* Partitions and host death need the drill clusters in network namespaces (make
     * drill-netns); every other fault runs on the local stack. */
    for (unsigned i = 0; i < _DRILL_PG_FAULT_MAX; i++) {
        if (i == DRILL_PG_PARTITION || i == DRILL_PG_HOST_DEATH)
            continue;
        (void)snprintf(names[n][0], sizeof names[n][0], "postgres");
        (void)snprintf(names[n][1], sizeof names[n][1], "%s", drill_pg_fault_to_string(i));
        n++;
    }
    for (unsigned i = 0; i < _DRILL_REDIS_FAULT_MAX; i++) {
        if (i == DRILL_REDIS_PARTITION) /* the Redis drill cluster only */
            continue;
        (void)snprintf(names[n][0], sizeof names[n][0], "redis");
        (void)snprintf(names[n][1], sizeof names[n][1], "%s", drill_redis_fault_to_string(i));
        n++;
    }
    for (unsigned i = 0; i < _DRILL_KAFKA_FAULT_MAX; i++) {
        if (i == DRILL_KAFKA_PARTITION) /* the Kafka drill cluster only */
            continue;
        (void)snprintf(names[n][0], sizeof names[n][0], "kafka");
        (void)snprintf(names[n][1], sizeof names[n][1], "%s", drill_kafka_fault_to_string(i));
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        int st;
        json_t *doc;

        fprintf(stderr, "drill: == %s --fault %s (%zu/%zu)\n", names[i][0], names[i][1], i + 1, n);
        doc = run_child(ctx, names[i][0], names[i][1], a->runs, &st);
        if (!doc || (st != CLI_EXIT_OK && st != CLI_EXIT_UNHEALTHY)) {
            log_error("drill %s --fault %s could not run (exit %d)", names[i][0], names[i][1], st);
            json_decref(doc);
            failed = true;
            continue;
        }
        passed = passed && st == CLI_EXIT_OK;
        if (!a->json)
            print_summary(doc, stdout);
        json_array_append_new(docs, doc);
    }
    report = json_pack("{s:o, s:b}", "drills", json_incref(docs), "passed", passed && !failed);
    if (a->json) {
        if (json_dumpf(report, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
            log_error("cannot write the JSON report");
        fputc('\n', stdout);
    }
    ret = failed ? CLI_EXIT_FAILURE : passed ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
    if (a->html && cli_drill_write_html(a->html, docs) < 0 && ret == CLI_EXIT_OK)
        ret = CLI_EXIT_FAILURE;
    json_decref(report);
    json_decref(docs);
    return ret;
}

bool cmd_drill_rk_handles(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            bool takes = strchr(argv[i], '=') == NULL &&
                         (streq(argv[i], "--fault") || streq(argv[i], "-f") ||
                          streq(argv[i], "--runs") || streq(argv[i], "-r") ||
                          streq(argv[i], "--pause") || streq(argv[i], "-p") ||
                          streq(argv[i], "--max-gap") || streq(argv[i], "-g") ||
                          streq(argv[i], "--html") || streq(argv[i], "--victim"));

            i += takes;
            continue;
        }
        return streq(argv[i], "redis") || streq(argv[i], "kafka") || streq(argv[i], "all");
    }
    return false;
}

int cmd_drill_rk(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "fault", required_argument, NULL, 'f' },  { "runs", required_argument, NULL, 'r' },
        { "pause", required_argument, NULL, 'p' },  { "max-gap", required_argument, NULL, 'g' },
        { "json", no_argument, NULL, 'j' },         { "html", required_argument, NULL, 'H' },
        { "victim", required_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
    };
    struct args a = { .runs = 1 };
    int c;

    while ((c = getopt_long(argc, argv, "f:r:p:g:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            a.fault = optarg;
            break;
        case 'r':
            if (parse_uint_range(optarg, 1, 1000, &a.runs) < 0)
                return cli_usage_error(usage, "--runs: expected 1..1000, got '%s'", optarg);
            break;
        case 'p':
            if (parse_duration_usec(optarg, &a.pause_usec) < 0 || a.pause_usec == 0)
                return cli_usage_error(usage, "--pause: invalid duration '%s'", optarg);
            break;
        case 'g':
            if (parse_duration_usec(optarg, &a.max_gap) < 0 || a.max_gap == 0)
                return cli_usage_error(usage, "--max-gap: invalid duration '%s'", optarg);
            break;
        case 'j':
            a.json = true;
            break;
        case 'H':
            a.html = optarg;
            break;
        case 'V':
            a.victim = optarg;
            break;
        default:
            return cli_usage_error(usage, "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error(usage, "which cluster? (postgres, redis, kafka or all)");
    a.cluster = argv[optind];
    if (optind + 1 < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind + 1]);
    if (streq(a.cluster, "all")) {
        if (a.fault || a.pause_usec || a.max_gap || a.victim)
            return cli_usage_error(usage, "drill all runs every fault with its defaults: no "
                                          "--fault, --pause, --max-gap or --victim");
        return run_all(&a, ctx);
    }
    if (!a.fault)
        return cli_usage_error(usage, "--fault is required (%s)",
                               streq(a.cluster, "redis") ? REDIS_FAULTS : KAFKA_FAULTS);
    return run_cluster(&a, ctx);
}
