/* SPDX-License-Identifier: MIT */
/* infractl drill postgres --fault crash|pg-crash|pause|stop|switchover|dcs|proxy|partition|
 * host-death [--runs N]:
 * failover drills on the
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
#include "drill/drill_alerts.h"
#include "drill/drill_report.h"
#include "httpc/httpc.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "status.h"

static const char usage[] =
        "drill postgres --fault crash|pg-crash|pause|stop|switchover|dcs|proxy|partition|"
        "host-death [--runs N] [--pause S] [--mode crash|pause] [--target haproxy|pgbouncer] "
        "[--max-gap S] [--alerts-wait S] [--json] [--html FILE] | drill redis|kafka --fault F "
        "[--runs N] [--pause S] [--max-gap S] [--victim leader|controller] [--json] [--html FILE] "
        "| drill all [--runs N] "
        "[--json] [--html FILE] | drill restore [--json] [--keep]";

static const struct cli_help_item drill_subcommands[] = {
    { "postgres --fault crash|pg-crash|pause|stop",
      "fault the PostgreSQL leader: crash = SIGKILL of its whole process tree, pg-crash = "
      "SIGKILL of its postmaster only, pause = SIGSTOP of Patroni and the postmaster (backends "
      "run on), stop = SIGTERM of Patroni" },
    { "postgres --fault switchover",
      "planned: POST /switchover to the leader's Patroni REST API (basic auth, the stack's "
      "patroni_api secret); the leader must come back as a streaming replica" },
    { "postgres --fault dcs [--mode crash|pause]",
      "etcd SIGKILLed (crash, the default) or SIGSTOPped for --pause (pause); the cluster must "
      "keep its leader and go on writing" },
    { "postgres --fault proxy [--target haproxy|pgbouncer]",
      "HAProxy (the default) or PgBouncer SIGKILLed; the supervisor restarts it; the leader "
      "must stay" },
    { "postgres --fault partition|host-death",
      "the drill cluster of scripts/drill-netns.sh only (nodes in network namespaces): the "
      "leader's namespace cut from its peers and etcd (partition; HAProxy still reaches it) or "
      "cut off entirely (host death) with nftables until a new leader + 2 s; no supervisor "
      "fences it, so the lease must expire.  A run fails on any write acknowledged by the old "
      "primary after the new one began (split brain)" },
    { "restore [--json] [--keep]",
      "point-in-time restore drill: a marker before and after a target time, restored into a "
      "scratch postgres, exactly the first present (cmd_backup.c)" },
    { "redis --fault crash|pause|switchover",
      "fault the Redis master (found through Sentinel): crash = SIGKILL (the supervisor restarts "
      "it), pause = SIGSTOP, switchover = SENTINEL FAILOVER; plain and WAIT 1-confirmed writes "
      "counted apart" },
    { "redis --fault partition",
      "the Redis drill cluster of scripts/drill-netns.sh --cluster redis only: the master's "
      "namespace cut from its replicas and the other Sentinels (nftables) while it runs on and "
      "the client still reaches it, until a new master + 2 s; the old master must rejoin as a "
      "replica.  WAIT-confirmed writes must survive; the plain ones the old master took are "
      "reported, the gap counts only writes that survived (default target 5 s)" },
    { "kafka --fault crash|pause|partition",
      "fault the broker leading the drill topic's partition; an idempotent acks=all producer, "
      "read back by a consumer.  partition: the drill cluster of scripts/drill-netns.sh "
      "--cluster kafka only: the leader's namespace cut from the other brokers and controllers "
      "for --pause (default 10s) while the host still reaches it" },
    { "all", "every fault of every cluster, --runs each; one JSON document with --json" },
    { NULL, NULL },
};

static const struct cli_help_item drill_options[] = {
    { "-r, --runs N", "runs, one after the other (default 1)" },
    { "-p, --pause S",
      "pause: how long the processes stay stopped (default 20s); kafka partition: how long the "
      "cut lasts (default 10s)" },
    { "-g, --max-gap S", "write-gap target per run (default 1s); exit 4 when a run misses it" },
    { "-m, --mode crash|pause", "dcs: SIGKILL etcd (default) or SIGSTOP it for --pause" },
    { "-t, --target haproxy|pgbouncer", "proxy: which proxy is killed (default haproxy)" },
    { "--victim leader|controller",
      "kafka: the broker leading partition 0 of the drill topic (default), or the active KRaft "
      "controller, drilled on the partition it leads (two elections in a row)" },
    { "-a, --alerts-wait S",
      "after each run, keep recording alerts this long (default 0: only during the run)" },
    { "--json", "one JSON document: every run and the summary" },
    { "--html FILE", "the runs as timelines (acks per 100 ms, fault and heal marks)" },
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
             "run passed, 4 when one did not, 1 when a drill could not run.  After dcs and\n"
             "proxy faults the leader must be the same (leader_kept) instead of rejoining.\n"
             "Alerts: Prometheus' /api/v1/alerts (pending, firing) and Alertmanager's\n"
             "/api/v2/alerts are polled every second during each run (the stack's services of\n"
             "kind prometheus / alertmanager); each change is a progress line and an entry of\n"
             "the run's \"alerts\" in --json, its time relative to the fault.\n",
};

struct target {
    struct drill_pg_target t;
    struct drill_pg_node nodes[16];
    char *conninfo;
};

/* The service of that kind (the first), as the dcs / proxy faults see it. */
static struct drill_pg_service find_service(const struct stack *s, const char *kind)
{
    for (size_t i = 0; i < s->n_services; i++) {
        const struct stack_service *svc = &s->services[i];

        if (svc->kind && streq(svc->kind, kind))
            return (struct drill_pg_service){
                .name = svc->name,
                .health = svc->health.present ? &svc->health.probe : NULL,
                .settle_usec = svc->backoff_reset_usec + USEC_PER_SEC,
            };
    }
    return (struct drill_pg_service){ .name = NULL };
}

/* The port of the status probe of the service of that kind; 0 when none. */
static uint16_t status_port(const struct stack *s, const char *kind)
{
    for (size_t i = 0; i < s->n_services; i++)
        if (s->services[i].kind && streq(s->services[i].kind, kind) &&
            s->services[i].has_status_probe)
            return s->services[i].status_probe.port;
    return 0;
}

/* The drill's view of the stack: Patroni nodes (kind patroni) and PgBouncer's client side
 * (kind pgbouncer, from its healthcheck: user, password, database). */
static int build_target(const struct stack *s, struct stack_secrets *sec, const char *state_dir,
                        long supervisor, struct target *ret)
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
            .host = svc->status_probe.host,
            .netns = svc->netns,
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
    drill_conninfo_add(&ci, "host",
                       bouncer->health.probe.host ? bouncer->health.probe.host : "127.0.0.1");
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
    ret->t.dcs = find_service(s, "etcd");
    ret->t.haproxy = find_service(s, "haproxy");
    ret->t.pgbouncer = find_service(s, "pgbouncer");
    ret->t.api_user = "patroni";
    ret->t.api_password = stack_secrets_lookup("patroni_api", sec);
    ret->t.prometheus_port = status_port(s, "prometheus");
    ret->t.alertmanager_port = status_port(s, "alertmanager");
    ret->t.state_dir = state_dir;
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

static bool run_passed(enum drill_pg_fault f, const struct drill_pg_result *r, uint64_t max_gap)
{
    return r->lost == 0 && r->healed && r->dual_primary_acks == 0 &&
           (drill_pg_fault_hits_leader(f) ? r->old_leader_rejoined : r->leader_kept) &&
           r->gap_usec <= max_gap;
}

/* The run's alert events, their times in ms relative to the fault. */
static json_t *alerts_json(const struct drill_pg_result *r)
{
    json_t *arr = json_array();
    const struct drill_alert_event *ev;
    size_t n;

    if (!r->alerts)
        return arr;
    n = drill_alerts_events(r->alerts, &ev);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:f, s:s, s:s, s:s, s:s}", "at_ms",
                                        ((double)ev[i].at_usec - (double)r->fault_at_usec) / 1000.0,
                                        "source", ev[i].source, "alert", ev[i].name, "where",
                                        ev[i].where, "state", ev[i].state));
    return arr;
}

static size_t alert_count(const struct drill_pg_result *r)
{
    const struct drill_alert_event *ev;

    return r->alerts ? drill_alerts_events(r->alerts, &ev) : 0;
}

static json_t *run_json(enum drill_pg_fault f, const struct drill_pg_result *r, uint64_t max_gap)
{
    unsigned ok = 0, failed = 0;
    char last[256] = "";
    json_t *o;

    if (r->alerts)
        drill_alerts_polls(r->alerts, &ok, &failed, last, sizeof last);
    o = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, "
                  "s:b, s:s}",
                  "old_leader", r->old_leader, "new_leader", r->new_leader, "gap_ms",
                  ms(r->gap_usec), "max_gap_ms", ms(r->max_gap_usec), "new_leader_ms",
                  ms(r->new_leader_usec), "heal_ms", ms(r->heal_usec), "acked", r->acked, "failed",
                  r->failed, "unknown", r->unknown, "lost", r->lost, "recovered", r->recovered,
                  "phantom", r->phantom, "healed", r->healed, "old_leader_rejoined",
                  r->old_leader_rejoined, "passed", run_passed(f, r, max_gap), "note", r->note);
    json_object_set_new(o, "leader_kept", json_boolean(r->leader_kept));
    json_object_set_new(o, "writer_history",
                        json_pack("{s:i, s:i, s:s, s:s, s:f, s:f}", "ack_servers", r->ack_servers,
                                  "dual_primary_acks", r->dual_primary_acks, "old_primary",
                                  r->old_server, "new_primary", r->new_server, "old_last_ack_ms",
                                  (double)r->old_last_ack_usec / 1000.0, "new_first_ack_ms",
                                  (double)r->new_first_ack_usec / 1000.0));
    if (drill_pg_fault_is_cut(f))
        json_object_set_new(o, "partition_evidence",
                            json_pack("{s:s, s:s, s:s}", "old_leader_demoted_at", r->old_demoted_at,
                                      "new_leader_promoted_at", r->new_promoted_at,
                                      "old_leader_log", r->old_log));
    json_object_set_new(o, "alerts", alerts_json(r));
    json_object_set_new(o, "alert_polls",
                        json_pack("{s:i, s:i, s:s, s:s}", "ok", ok, "failed", failed, "last_error",
                                  last, "baseline",
                                  r->alerts ? drill_alerts_baseline(r->alerts) : ""));
    return o;
}

static json_t *stats_json(const uint64_t *v, size_t n)
{
    struct drill_stats st;

    drill_stats(v, n, &st);
    return json_pack("{s:f, s:f, s:f, s:f}", "min", ms(st.min), "median", ms(st.median), "p95",
                     ms(st.p95), "max", ms(st.max));
}

static void print_summary(enum drill_pg_fault fault, const struct drill_pg_result *res, size_t n,
                          FILE *f)
{
    uint64_t *gaps = xcalloc(n + 1, sizeof *gaps), *leaders = xcalloc(n + 1, sizeof *leaders);
    struct drill_stats g, l;
    unsigned lost = 0, healed = 0;

    for (size_t i = 0; i < n; i++) {
        gaps[i] = res[i].gap_usec;
        leaders[i] = res[i].new_leader_usec;
        lost += res[i].lost;
        healed += res[i].healed && (drill_pg_fault_hits_leader(fault) ? res[i].old_leader_rejoined
                                                                      : res[i].leader_kept);
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
        { "fault", required_argument, NULL, 'f' },  { "runs", required_argument, NULL, 'r' },
        { "pause", required_argument, NULL, 'p' },  { "max-gap", required_argument, NULL, 'g' },
        { "json", no_argument, NULL, 'j' },         { "mode", required_argument, NULL, 'm' },
        { "target", required_argument, NULL, 't' }, { "alerts-wait", required_argument, NULL, 'a' },
        { "html", required_argument, NULL, 'H' },   { NULL, 0, NULL, 0 },
    };
    struct drill_pg_options o = { .fault = _DRILL_PG_FAULT_MAX };
    struct status_snapshot snap = { 0 };
    struct drill_pg_result *res = NULL;
    struct drill_run *tl = NULL;
    struct stack *s = NULL;
    struct stack_secrets *sec = NULL;
    struct target tgt = { 0 };
    bool have_mode = false, have_target = false;
    uint64_t max_gap = USEC_PER_SEC, runs = 1, v;
    const char *html = NULL;
    bool json = false, all_passed = true, html_failed = false;
    size_t done = 0;
    int c, r, ret = CLI_EXIT_FAILURE;

    if (argc > 1 && streq(argv[1], "restore"))
        return cli_drill_restore(argc - 1, argv + 1, ctx);
    if (cmd_drill_rk_handles(argc, argv))
        return cmd_drill_rk(argc, argv, ctx);
    while ((c = getopt_long(argc, argv, "f:r:p:g:m:t:a:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (drill_pg_fault_from_string(optarg, &o.fault) < 0)
                return cli_usage_error(usage,
                                       "unknown fault '%s' (crash, pg-crash, pause, stop, "
                                       "switchover, dcs, proxy, partition or host-death)",
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
        case 'm':
            if (!streq(optarg, "crash") && !streq(optarg, "pause"))
                return cli_usage_error(usage, "--mode: expected crash or pause, got '%s'", optarg);
            o.dcs_pause = streq(optarg, "pause");
            have_mode = true;
            break;
        case 't':
            if (drill_pg_proxy_from_string(optarg, &o.proxy) < 0)
                return cli_usage_error(usage, "--target: expected haproxy or pgbouncer, got '%s'",
                                       optarg);
            have_target = true;
            break;
        case 'a':
            if (parse_duration_usec(optarg, &o.alerts_wait_usec) < 0)
                return cli_usage_error(usage, "--alerts-wait: invalid duration '%s'", optarg);
            break;
        case 'H':
            html = optarg;
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
        return cli_usage_error(usage, "--fault is required (crash, pg-crash, pause, stop, "
                                      "switchover, dcs, proxy, partition or host-death)");
    if (have_mode && o.fault != DRILL_PG_DCS)
        return cli_usage_error(usage, "--mode applies to --fault dcs only");
    if (have_target && o.fault != DRILL_PG_PROXY)
        return cli_usage_error(usage, "--target applies to --fault proxy only");

    r = status_fetch(ctx, &snap);
    if (r < 0) {
        log_error("the stack is not running (state dir %s)", ctx->state_dir);
        return CLI_EXIT_NOT_RUNNING;
    }
    /* Patroni's /switchover and the alert polls (src/httpc); before any thread starts. */
    if (httpc_init() < 0) {
        log_error("cannot initialize libcurl");
        goto out;
    }
    if (cli_load_stack(ctx, false, &s, &sec) < 0 ||
        build_target(s, sec, ctx->state_dir, snap.supervisor_pid, &tgt) < 0)
        goto out;
    o.progress = on_progress;
    o.timeline = on_timeline;
    res = xcalloc(runs, sizeof *res);
    tl = xcalloc(runs, sizeof *tl);
    for (; done < runs; done++) {
        struct err e = ERR_INIT;
        char msg[512];

        fprintf(stderr, "drill: run %zu/%llu: postgres --fault %s%s%s\n", done + 1,
                (unsigned long long)runs, drill_pg_fault_to_string(o.fault),
                o.fault == DRILL_PG_DCS     ? (o.dcs_pause ? " --mode pause" : " --mode crash")
                : o.fault == DRILL_PG_PROXY ? " --target "
                                            : "",
                o.fault == DRILL_PG_PROXY ? drill_pg_proxy_to_string(o.proxy) : "");
        o.userdata = &tl[done];
        r = drill_pg_run(&tgt.t, &o, &res[done], &e);
        if (r < 0) {
            log_error("drill run %zu: %s", done + 1, err_format(&e, msg, sizeof msg));
            goto out;
        }
        all_passed = all_passed && run_passed(o.fault, &res[done], max_gap);
        fprintf(stderr,
                "drill: run %zu: %s -> %s  gap %.0f ms  new leader %.0f ms  healed %s %.1f s  "
                "acked %u  unknown %u (recovered %u)  lost %u  alert changes %zu%s%s\n",
                done + 1, res[done].old_leader,
                res[done].new_leader[0] ? res[done].new_leader : "-", ms(res[done].gap_usec),
                ms(res[done].new_leader_usec), res[done].healed ? "yes" : "NO",
                (double)res[done].heal_usec / USEC_PER_SEC, res[done].acked, res[done].unknown,
                res[done].recovered, res[done].lost, alert_count(&res[done]),
                res[done].note[0] ? "  " : "", res[done].note);
    }
    if (json || html) {
        json_t *doc = json_object(), *arr = json_array();
        uint64_t *gaps = xcalloc(done + 1, sizeof *gaps);
        unsigned lost = 0;

        for (size_t i = 0; i < done; i++) {
            json_t *rj = run_json(o.fault, &res[i], max_gap), *x = drill_run_json(&tl[i], false);

            json_object_set(rj, "timeline", json_object_get(x, "timeline"));
            json_decref(x);
            json_array_append_new(arr, rj);
            gaps[i] = res[i].gap_usec;
            lost += res[i].lost;
        }
        json_object_set_new(doc, "cluster", json_string("postgres"));
        json_object_set_new(doc, "fault", json_string(drill_pg_fault_to_string(o.fault)));
        if (o.fault == DRILL_PG_DCS)
            json_object_set_new(doc, "mode", json_string(o.dcs_pause ? "pause" : "crash"));
        if (o.fault == DRILL_PG_PROXY)
            json_object_set_new(doc, "target", json_string(drill_pg_proxy_to_string(o.proxy)));
        json_object_set_new(doc, "runs", arr);
        json_object_set_new(doc, "gap_ms", stats_json(gaps, done));
        json_object_set_new(doc, "lost", json_integer(lost));
        json_object_set_new(doc, "max_gap_target_ms", json_real(ms(max_gap)));
        json_object_set_new(doc, "passed", json_boolean(all_passed));
        free(gaps);
        if (json) {
            if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
                log_error("cannot write the JSON report");
            fputc('\n', stdout);
        }
        if (html) {
            json_t *docs = json_pack("[O]", doc);

            html_failed = cli_drill_write_html(html, docs) < 0;
            json_decref(docs);
        }
        json_decref(doc);
    }
    if (!json)
        print_summary(o.fault, res, done, stdout);
    ret = html_failed ? CLI_EXIT_FAILURE : all_passed ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    for (size_t i = 0; res && i < runs; i++)
        res[i].alerts = drill_alerts_free(res[i].alerts);
    for (size_t i = 0; tl && i < runs; i++)
        drill_run_release(&tl[i]);
    free(tl);
    free(res);
    free(tgt.conninfo);
    stack_secrets_free(sec);
    stack_free(s);
    status_snapshot_release(&snap);
    httpc_cleanup(); /* a no-op when httpc_init() was not reached or failed */
    return ret;
}
