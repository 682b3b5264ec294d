/* SPDX-License-Identifier: MIT */
/* infractl drill postgres --fault crash|pg-crash|pause|stop [--runs N]: failover drills on the
 * running stack (src/drill): a writer through PgBouncer -> HAProxy -> primary, a fault on the
 * leader, the final read on every node; per run and as min / median / p95 / max. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "drill/drill.h"
#include "drill/drill_report.h"
#include "stack/stack.h"
#include "status.h"

static const char usage[] =
        "drill postgres|redis|kafka --fault F [--runs N] [--pause S] [--max-gap S] [--json] "
        "[--html FILE] | drill all [--runs N] [--json] [--html FILE]";

static const struct cli_help_item drill_subcommands[] = {
    { "postgres --fault crash|pg-crash|pause|stop",
      "fault the PostgreSQL leader: crash = SIGKILL of its whole process tree, pg-crash = "
      "SIGKILL of its postmaster only, pause = SIGSTOP of Patroni and the postmaster (backends "
      "run on), stop = SIGTERM of Patroni" },
    { "redis --fault crash|pause|switchover",
      "fault the Redis master (found through Sentinel): crash = SIGKILL (the supervisor restarts "
      "it), pause = SIGSTOP, switchover = SENTINEL FAILOVER; plain and WAIT 1-confirmed writes "
      "counted apart" },
    { "kafka --fault crash|pause",
      "fault the broker leading the drill topic's partition; an idempotent acks=all producer, "
      "read back by a consumer" },
    { "all", "every fault of every cluster, --runs each; one JSON document with --json" },
    { NULL, NULL },
};

static const struct cli_help_item drill_options[] = {
    { "-r, --runs N", "runs, one after the other (default 1)" },
    { "-p, --pause S", "pause: how long the processes stay stopped (default 20s)" },
    { "-g, --max-gap S", "write-gap target per run (default 1s); exit 4 when a run misses it" },
    { "--json", "one JSON document: every run and the summary" },
    { "--html FILE", "redis, kafka, all: the runs as timelines (acks per 100 ms, fault and heal)" },
    { NULL, NULL },
};

const struct cli_help cmd_drill_help = {
    .usage = usage,
    .summary = "Failover drills: write gap and lost writes, measured",
    .subcommands = drill_subcommands,
    .options = drill_options,
    .notes = "A run passes when no acknowledged write is lost, the cluster healed (the faulted\n"
             "node is a streaming replica again) and the write gap (last acknowledged write\n"
             "before the fault to the first after it) is within --max-gap.  Exit 0 when every\n"
             "run passed, 4 when one did not, 1 when a drill could not run.\n",
};

struct target {
    struct drill_pg_target t;
    struct drill_pg_node nodes[16];
    char *conninfo;
};

/* The drill's view of the stack: Patroni nodes (kind patroni) and PgBouncer's client side
 * (kind pgbouncer, from its healthcheck: user, password, database). */
static int build_target(const struct stack *s, long supervisor, struct target *ret)
{
    const struct stack_service *bouncer = NULL;
    struct buf ci = BUF_INIT(0);
    char port[8];

    *ret = (struct target){ .t = { .supervisor = (pid_t)supervisor } };
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];

        if (svc->kind && streq(svc->kind, "pgbouncer") && svc->health.present)
            bouncer = svc;
        if (!svc->kind || !streq(svc->kind, "patroni") || !svc->has_status_probe ||
            !svc->health.present || ret->t.n_nodes == ARRAY_SIZE(ret->nodes))
            continue;
        ret->nodes[ret->t.n_nodes++] = (struct drill_pg_node){
            .name = svc->name,
            .pg_port = svc->status_probe.port,
            .rest_port = svc->health.probe.port,
            .user = svc->status_probe.user,
            .password = svc->status_probe.password,
        };
    }
    if (ret->t.n_nodes < 2 || !bouncer) {
        log_error("the stack has no PostgreSQL cluster to drill (services of kind patroni with a "
                  "status_probe, and a pgbouncer with a healthcheck)");
        return -ENOENT;
    }
    (void)snprintf(port, sizeof port, "%u", (unsigned)bouncer->health.probe.port);
    drill_conninfo_add(&ci, "host", "127.0.0.1");
    drill_conninfo_add(&ci, "port", port);
    drill_conninfo_add(&ci, "dbname", bouncer->health.probe.dbname);
    drill_conninfo_add(&ci, "user", bouncer->health.probe.user);
    if (bouncer->health.probe.password)
        drill_conninfo_add(&ci, "password", bouncer->health.probe.password);
    drill_conninfo_add(&ci, "connect_timeout", "1");
    drill_conninfo_add(&ci, "application_name", "infractl-drill");
    ret->conninfo = buf_detach(&ci, NULL);
    ret->t.write_conninfo = ret->conninfo;
    ret->t.dbname = bouncer->health.probe.dbname;
    ret->t.nodes = ret->nodes;
    return 0;
}

static void on_progress(const char *line, void *userdata)
{
    (void)userdata;
    fprintf(stderr, "drill: %s\n", line);
}

/* The run's acknowledgement times and marks, for the timeline of its JSON (drill_report.h). */
static void on_timeline(const uint64_t *acks, size_t n, const struct drill_pg_marks *m,
                        void *userdata)
{
    struct drill_run *tl = userdata;

    tl->start_at = m->start;
    tl->fault_at = m->fault;
    tl->resume_at = m->resume;
    tl->heal_at = m->heal;
    tl->end_at = m->end;
    drill_run_set_acks(tl, acks, n);
}

static double ms(uint64_t usec)
{
    return (double)usec / 1000.0;
}

static bool run_passed(const struct drill_pg_result *r, uint64_t max_gap)
{
    return r->lost == 0 && r->healed && r->old_leader_rejoined && r->gap_usec <= max_gap;
}

static json_t *run_json(const struct drill_pg_result *r, uint64_t max_gap)
{
    return json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, "
                     "s:b, s:s}",
                     "old_leader", r->old_leader, "new_leader", r->new_leader, "gap_ms",
                     ms(r->gap_usec), "max_gap_ms", ms(r->max_gap_usec), "new_leader_ms",
                     ms(r->new_leader_usec), "heal_ms", ms(r->heal_usec), "acked", r->acked,
                     "failed", r->failed, "unknown", r->unknown, "lost", r->lost, "recovered",
                     r->recovered, "phantom", r->phantom, "healed", r->healed,
                     "old_leader_rejoined", r->old_leader_rejoined, "passed",
                     run_passed(r, max_gap), "note", r->note);
}

static json_t *stats_json(const uint64_t *v, size_t n)
{
    struct drill_stats st;

    drill_stats(v, n, &st);
    return json_pack("{s:f, s:f, s:f, s:f}", "min", ms(st.min), "median", ms(st.median), "p95",
                     ms(st.p95), "max", ms(st.max));
}

static void print_summary(const struct drill_pg_result *res, size_t n, FILE *f)
{
    uint64_t *gaps = xcalloc(n + 1, sizeof *gaps), *leaders = xcalloc(n + 1, sizeof *leaders);
    struct drill_stats g, l;
    unsigned lost = 0, healed = 0;

    for (size_t i = 0; i < n; i++) {
        gaps[i] = res[i].gap_usec;
        leaders[i] = res[i].new_leader_usec;
        lost += res[i].lost;
        healed += res[i].healed && res[i].old_leader_rejoined;
    }
    drill_stats(gaps, n, &g);
    drill_stats(leaders, n, &l);
    fprintf(f,
            "summary: %zu runs  write gap ms min %.0f / median %.0f / p95 %.0f / max %.0f  "
            "new leader ms median %.0f / max %.0f  lost %u  healed %u/%zu\n",
            n, ms(g.min), ms(g.median), ms(g.p95), ms(g.max), ms(l.median), ms(l.max), lost, healed,
            n);
    free(gaps);
    free(leaders);
}

int cmd_drill(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "fault", required_argument, NULL, 'f' }, { "runs", required_argument, NULL, 'r' },
        { "pause", required_argument, NULL, 'p' }, { "max-gap", required_argument, NULL, 'g' },
        { "json", no_argument, NULL, 'j' },        { NULL, 0, NULL, 0 },
    };
    struct drill_pg_options o = { .fault = _DRILL_PG_FAULT_MAX };
    struct status_snapshot snap = { 0 };
    struct drill_pg_result *res = NULL;
    struct drill_run *tl = NULL;
    struct stack *s = NULL;
    struct target tgt = { 0 };
    uint64_t max_gap = USEC_PER_SEC, runs = 1, v;
    bool json = false, all_passed = true;
    size_t done = 0;
    int c, r, ret = CLI_EXIT_FAILURE;

    if (cmd_drill_rk_handles(argc, argv))
        return cmd_drill_rk(argc, argv, ctx);
    while ((c = getopt_long(argc, argv, "f:r:p:g:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (drill_pg_fault_from_string(optarg, &o.fault) < 0)
                return cli_usage_error(usage, "unknown fault '%s' (crash, pg-crash, pause or stop)",
                                       optarg);
            break;
        case 'r':
            if (parse_uint_range(optarg, 1, 1000, &runs) < 0)
                return cli_usage_error(usage, "--runs: expected 1..1000, got '%s'", optarg);
            break;
        case 'p':
            if (parse_duration_usec(optarg, &v) < 0 || v == 0)
                return cli_usage_error(usage, "--pause: invalid duration '%s'", optarg);
            o.pause_usec = v;
            break;
        case 'g':
            if (parse_duration_usec(optarg, &max_gap) < 0)
                return cli_usage_error(usage, "--max-gap: invalid duration '%s'", optarg);
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_usage_error(usage, "unknown option");
        }
    }
    if (optind >= argc || !streq(argv[optind], "postgres"))
        return cli_usage_error(usage,
                               optind < argc ? "unknown cluster '%s' (postgres)"
                                             : "which cluster? (postgres)",
                               optind < argc ? argv[optind] : "");
    if (optind + 1 < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind + 1]);
    if (o.fault == _DRILL_PG_FAULT_MAX)
        return cli_usage_error(usage, "--fault is required (crash, pg-crash, pause or stop)");

    r = status_fetch(ctx, &snap);
    if (r < 0) {
        log_error("the stack is not running (state dir %s)", ctx->state_dir);
        return CLI_EXIT_NOT_RUNNING;
    }
    if (cli_load_stack(ctx, false, &s, NULL) < 0 || build_target(s, snap.supervisor_pid, &tgt) < 0)
        goto out;
    o.progress = on_progress;
    o.timeline = on_timeline;
    res = xcalloc(runs, sizeof *res);
    tl = xcalloc(runs, sizeof *tl);
    for (; done < runs; done++) {
        struct err e = ERR_INIT;
        char msg[512];

        fprintf(stderr, "drill: run %zu/%llu: postgres --fault %s\n", done + 1,
                (unsigned long long)runs, drill_pg_fault_to_string(o.fault));
        o.userdata = &tl[done];
        r = drill_pg_run(&tgt.t, &o, &res[done], &e);
        if (r < 0) {
            log_error("drill run %zu: %s", done + 1, err_format(&e, msg, sizeof msg));
            goto out;
        }
        all_passed = all_passed && run_passed(&res[done], max_gap);
        fprintf(stderr,
                "drill: run %zu: %s -> %s  gap %.0f ms  new leader %.0f ms  healed %s %.1f s  "
                "acked %u  unknown %u (recovered %u)  lost %u%s%s\n",
                done + 1, res[done].old_leader,
                res[done].new_leader[0] ? res[done].new_leader : "-", ms(res[done].gap_usec),
                ms(res[done].new_leader_usec), res[done].healed ? "yes" : "NO",
                (double)res[done].heal_usec / USEC_PER_SEC, res[done].acked, res[done].unknown,
                res[done].recovered, res[done].lost, res[done].note[0] ? "  " : "", res[done].note);
    }
    if (json) {
        json_t *doc = json_object(), *arr = json_array();
        uint64_t *gaps = xcalloc(done + 1, sizeof *gaps);
        unsigned lost = 0;

        for (size_t i = 0; i < done; i++) {
            json_t *rj = run_json(&res[i], max_gap), *x = drill_run_json(&tl[i], false);

            json_object_set(rj, "timeline", json_object_get(x, "timeline"));
            json_decref(x);
            json_array_append_new(arr, rj);
            gaps[i] = res[i].gap_usec;
            lost += res[i].lost;
        }
        json_object_set_new(doc, "cluster", json_string("postgres"));
        json_object_set_new(doc, "fault", json_string(drill_pg_fault_to_string(o.fault)));
        json_object_set_new(doc, "runs", arr);
        json_object_set_new(doc, "gap_ms", stats_json(gaps, done));
        json_object_set_new(doc, "lost", json_integer(lost));
        json_object_set_new(doc, "max_gap_target_ms", json_real(ms(max_gap)));
        json_object_set_new(doc, "passed", json_boolean(all_passed));
        free(gaps);
        if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
            log_error("cannot write the JSON report");
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        print_summary(res, done, stdout);
    }
    ret = all_passed ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    for (size_t i = 0; tl && i < runs; i++)
        drill_run_release(&tl[i]);
    free(tl);
    free(res);
    free(tgt.conninfo);
    stack_free(s);
    status_snapshot_release(&snap);
    return ret;
}
