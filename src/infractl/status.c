/* SPDX-License-Identifier: MIT */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/strv.h"
#include "core/time.h"
#include "probe/probe.h"
#include "stack/stack.h"
#include "status_int.h"
#include "supervise/supervise.h"

#define STATUS_TIMEOUT_USEC (3 * USEC_PER_SEC)
/* Role queries: the first round (every service's own probe, Patroni's /cluster and /patroni)
 * gets this much; the PostgreSQL query on the leader what is left of the budget, at least
 * PHASE2_MIN_USEC.  A node that answers none in time is reported, not waited for. */
#define PHASE1_TIMEOUT_USEC (150 * USEC_PER_MSEC)
#define PHASE2_MIN_USEC     (50 * USEC_PER_MSEC)
/* Patroni reaches etcd once per HA loop (loop_wait: 1 s in the local stack); a node whose
 * /patroni says it last did longer ago than this is cut off from it (or etcd hangs): warned. */
#define DCS_FRESH_SEC 5

/* One row per replica on a primary, one empty-join row on a standby.  The CASE keeps
 * pg_current_wal_lsn() (an error during recovery) from running on standbys. */
static const char pg_role_query[] =
        "SELECT pg_is_in_recovery(), r.application_name, r.state, r.sync_state, "
        "CASE WHEN pg_is_in_recovery() THEN NULL "
        "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint END, "
        "round(extract(epoch FROM r.replay_lag)::numeric, 6) "
        "FROM (SELECT 1) AS one LEFT JOIN pg_stat_replication AS r ON true";

/* The supervisor's view, through its own client (supervise.h: the wire format is its alone);
 * the strings move into the snapshot. */
int status_fetch(const struct cli_ctx *ctx, struct status_snapshot *ret)
{
    struct sv_status st;
    struct status_snapshot snap = { 0 };
    int r;

    r = sv_status_fetch(ctx->state_dir, STATUS_TIMEOUT_USEC, &st);
    if (r < 0)
        return r;
    snap.supervisor_pid = st.pid;
    snap.stack_name = st.stack;
    snap.state_dir = st.state_dir;
    st.stack = st.state_dir = NULL;
    snap.monitoring.rules = snap.monitoring.firing = -1;
    snap.n_services = st.n_services;
    snap.services = xcalloc(snap.n_services ? snap.n_services : 1, sizeof *snap.services);
    for (size_t i = 0; i < snap.n_services; i++) {
        struct sv_status_service *in = &st.services[i];

        snap.services[i] = (struct status_service){
            .name = in->name,
            .state = in->state,
            .health = in->health,
            .health_message = in->health_message,
            .last_exit = in->last_exit,
            .waiting_for = in->waiting_for,
            .job = in->job,
            .pid = in->pid,
            .started_at = in->started_at,
            .uptime_s = in->uptime_s,
            .restarts = in->restarts,
            .lag_bytes = -1,
            .lag_seconds = -1,
        };
        *in = (struct sv_status_service){ .pid = 0 };
    }
    sv_status_release(&st);
    *ret = snap;
    return 0;
}

static void service_release(struct status_service *sv)
{
    free(sv->name);
    free(sv->state);
    free(sv->health);
    free(sv->health_message);
    free(sv->last_exit);
    free(sv->waiting_for);
    sv_status_job_free(sv->job);
}

void status_snapshot_release(struct status_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_services; i++)
        service_release(&snap->services[i]);
    free(snap->services);
    free(snap->stack_name);
    free(snap->state_dir);
    for (size_t i = 0; i < snap->kafka.n_groups; i++)
        free(snap->kafka.groups[i].name);
    free(snap->kafka.groups);
    *snap = (struct status_snapshot){ 0 };
}

int status_filter(struct status_snapshot *snap, char **names, int n)
{
    size_t kept = 0;

    for (int j = 0; j < n; j++) {
        bool found = false;
        for (size_t i = 0; i < snap->n_services; i++)
            found = found || streq(snap->services[i].name, names[j]);
        if (!found) {
            log_error("unknown service '%s'", names[j]);
            return -ENOENT;
        }
    }
    for (size_t i = 0; i < snap->n_services; i++) {
        bool keep = false;
        for (int j = 0; j < n; j++)
            keep = keep || streq(snap->services[i].name, names[j]);
        if (keep)
            snap->services[kept++] = snap->services[i];
        else
            service_release(&snap->services[i]);
    }
    snap->n_services = kept;
    return 0;
}

bool status_service_up(const struct status_service *sv)
{
    /* A job is idle between its due times and may fail a run: not a daemon to wait for. */
    if (sv->job || streq(sv->state, "completed"))
        return true;
    if (streq(sv->state, "exited") && sv->last_exit && streq(sv->last_exit, "exit status 0") &&
        !sv->must_run)
        return true;
    return streq(sv->state, "running") &&
           (streq(sv->health, "healthy") || streq(sv->health, "none"));
}

int status_pending(const struct status_snapshot *snap, char *const *only, struct buf *out)
{
    int n = 0;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        if (status_service_up(sv) || (only && !strv_contains(only, sv->name)))
            continue;
        if (buf_appendf(out, "%s%s (%s%s%s)", n ? ", " : "", sv->name,
                        streq(sv->state, "running") ? sv->health : sv->state,
                        sv->waiting_for ? " on " : "", sv->waiting_for ? sv->waiting_for : "") < 0)
            break;
        n++;
    }
    return n;
}

/* ===== Role interpretation ===== */

/* Finds "key<kv>value" among records separated by any of seps ("\r\n" for Redis INFO lines,
 * "," for the fields of one INFO value); copies value into out (truncated to n-1). */
static bool kv_find(const char *text, const char *seps, char kv, const char *key, char *out,
                    size_t n)
{
    size_t klen = strlen(key);

    for (const char *p = text; p && *p;) {
        const char *end = strpbrk(p, seps);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == kv) {
            size_t vlen = len - klen - 1;
            if (vlen >= n)
                vlen = n - 1;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        p = end ? end + strspn(end, seps) : NULL;
    }
    return false;
}

static bool info_get(const char *info, const char *key, char *out, size_t n)
{
    return kv_find(info, "\r\n", ':', key, out, n);
}

static bool field_get(const char *list, const char *name, char *out, size_t n)
{
    return kv_find(list, ",", '=', name, out, n);
}

static int64_t to_i64(const char *s)
{
    int64_t v;
    return parse_i64(s, &v) < 0 ? -1 : v;
}

static bool job_is(const struct role_job *j, const char *kind)
{
    return j->svc && j->svc->kind && streq(j->svc->kind, kind);
}

bool status__job_ok(const struct role_job *j, const char *kind)
{
    return job_is(j, kind) && j->probe && probe_result(j->probe) == 0;
}
#define job_ok status__job_ok

/* Splits line into at most max fields at sep (in place); returns the count. */
static int split_fields(char *line, char sep, char **f, int max)
{
    int nf = 0;

    for (char *s = line; s && nf < max; nf++) {
        f[nf] = s;
        s = strchr(s, sep);
        if (s)
            *s++ = '\0';
    }
    return nf;
}

void status__for_each_line(const char *text, void (*fn)(char *line, void *ud), void *ud)
{
    for (const char *p = text; p && *p;) {
        char line[1024];
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);

        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        fn(line, ud);
        p = eol ? eol + 1 : NULL;
    }
}

static void interpret_redis(struct role_job *jobs, size_t n)
{
    int64_t master_offset = -1;
    char v[256];

    for (size_t i = 0; i < n; i++) {
        const char *d;
        if (!job_ok(&jobs[i], "redis"))
            continue;
        d = probe_detail(jobs[i].probe);
        if (info_get(d, "role", v, sizeof v) && streq(v, "master") &&
            info_get(d, "master_repl_offset", v, sizeof v))
            master_offset = to_i64(v);
    }
    for (size_t i = 0; i < n; i++) {
        struct status_service *sv = jobs[i].sv;
        const char *d;
        if (!job_ok(&jobs[i], "redis"))
            continue;
        d = probe_detail(jobs[i].probe);
        if (!info_get(d, "role", v, sizeof v))
            continue;
        if (streq(v, "master")) {
            char slaves[16] = "0";
            (void)info_get(d, "connected_slaves", slaves, sizeof slaves);
            (void)snprintf(sv->role, sizeof sv->role, "master");
            (void)snprintf(sv->detail, sizeof sv->detail, "%s connected replica(s)", slaves);
        } else {
            char link[16] = "?";
            (void)info_get(d, "master_link_status", link, sizeof link);
            (void)snprintf(sv->role, sizeof sv->role, "replica");
            (void)snprintf(sv->detail, sizeof sv->detail, "link %s", link);
            if (info_get(d, "slave_repl_offset", v, sizeof v) && master_offset >= 0 &&
                to_i64(v) >= 0)
                sv->lag_bytes = master_offset > to_i64(v) ? master_offset - to_i64(v) : 0;
        }
    }
}

static void interpret_sentinel(struct role_job *jobs, size_t n)
{
    char v[256];

    for (size_t i = 0; i < n; i++) {
        struct status_service *sv = jobs[i].sv;
        char addr[64] = "?", sentinels[16] = "?", st[16] = "?";

        if (!job_ok(&jobs[i], "sentinel"))
            continue;
        (void)snprintf(sv->role, sizeof sv->role, "sentinel");
        if (info_get(probe_detail(jobs[i].probe), "master0", v, sizeof v)) {
            (void)field_get(v, "address", addr, sizeof addr);
            (void)field_get(v, "sentinels", sentinels, sizeof sentinels);
            (void)field_get(v, "status", st, sizeof st);
        }
        (void)snprintf(sv->detail, sizeof sv->detail, "master %s, %s sentinels, %s", addr,
                       sentinels, st);
    }
}

struct haproxy_acc {
    struct buf write, read;
};

/* HAProxy stats CSV: pxname,svname,...; field 17 is status (UP/DOWN/...). */
static void haproxy_line(char *line, void *ud)
{
    struct haproxy_acc *acc = ud;
    char *f[20];
    struct buf *b;

    if (line[0] == '#' || split_fields(line, ',', f, 20) < 18)
        return;
    if (streq(f[1], "FRONTEND") || streq(f[1], "BACKEND") || !streq(f[17], "UP"))
        return;
    b = streq(f[0], "pg_write") ? &acc->write : streq(f[0], "pg_read") ? &acc->read : NULL;
    if (b && buf_appendf(b, "%s%s", b->len ? "," : "", f[1]) < 0)
        buf_reset(b);
}

static void interpret_haproxy(struct role_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct haproxy_acc acc = { BUF_INIT(256), BUF_INIT(256) };
        struct status_service *sv = jobs[i].sv;

        if (!job_ok(&jobs[i], "haproxy"))
            continue;
        status__for_each_line(probe_detail(jobs[i].probe), haproxy_line, &acc);
        (void)snprintf(sv->role, sizeof sv->role, "proxy");
        (void)snprintf(sv->detail, sizeof sv->detail, "write->%s read->%s",
                       acc.write.len ? buf_str(&acc.write) : "none",
                       acc.read.len ? buf_str(&acc.read) : "none");
        buf_release(&acc.write);
        buf_release(&acc.read);
    }
}

struct pool_acc {
    int64_t cl_active, cl_waiting, sv_active, sv_idle;
};

/* SHOW POOLS: database, user, cl_active, cl_waiting, ..., sv_active (6), ..., sv_idle (9). */
static void pgbouncer_line(char *line, void *ud)
{
    struct pool_acc *acc = ud;
    char *f[16];

    if (split_fields(line, '\t', f, 16) < 10)
        return;
    acc->cl_active += to_i64(f[2]) > 0 ? to_i64(f[2]) : 0;
    acc->cl_waiting += to_i64(f[3]) > 0 ? to_i64(f[3]) : 0;
    acc->sv_active += to_i64(f[6]) > 0 ? to_i64(f[6]) : 0;
    acc->sv_idle += to_i64(f[9]) > 0 ? to_i64(f[9]) : 0;
}

static void interpret_pgbouncer(struct role_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pool_acc acc = { 0 };
        struct status_service *sv = jobs[i].sv;

        if (!job_ok(&jobs[i], "pgbouncer"))
            continue;
        status__for_each_line(probe_detail(jobs[i].probe), pgbouncer_line, &acc);
        (void)snprintf(sv->role, sizeof sv->role, "pooler");
        (void)snprintf(sv->detail, sizeof sv->detail,
                       "clients %" PRId64 " active %" PRId64 " waiting, servers %" PRId64
                       " active %" PRId64 " idle",
                       acc.cl_active, acc.cl_waiting, acc.sv_active, acc.sv_idle);
    }
}

static void interpret_patroni(struct role_job *jobs, size_t n)
{
    const char *leader_rows = NULL;

    for (size_t i = 0; i < n; i++) {
        const char *d;
        if (!job_ok(&jobs[i], "patroni"))
            continue;
        d = probe_detail(jobs[i].probe);
        if (d[0] == 'f') {
            (void)snprintf(jobs[i].sv->role, sizeof jobs[i].sv->role, "leader");
            leader_rows = d;
        } else {
            (void)snprintf(jobs[i].sv->role, sizeof jobs[i].sv->role, "replica");
        }
    }
    if (!leader_rows)
        return;
    for (size_t i = 0; i < n; i++)
        if (job_is(&jobs[i], "patroni") && streq(jobs[i].sv->state, "running") &&
            !streq(jobs[i].sv->role, "leader"))
            (void)snprintf(jobs[i].sv->detail, sizeof jobs[i].sv->detail, "not streaming");
    /* Rows: in_recovery \t application_name \t state \t sync_state \t lag_bytes \t lag_s */
    for (const char *p = leader_rows; p && *p;) {
        char line[512], *f[6] = { 0 };
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        int nf;

        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol ? eol + 1 : NULL;
        nf = split_fields(line, '\t', f, 6);
        if (nf < 6 || !f[1][0])
            continue;
        for (size_t i = 0; i < n; i++) {
            struct status_service *sv = jobs[i].sv;
            if (!job_is(&jobs[i], "patroni") || !streq(sv->name, f[1]))
                continue;
            (void)snprintf(sv->role, sizeof sv->role, "%s",
                           streq(f[3], "sync") ? "sync replica" : "replica");
            (void)snprintf(sv->detail, sizeof sv->detail, "%s", f[2]);
            sv->lag_bytes = f[4][0] ? to_i64(f[4]) : -1;
            sv->lag_seconds = f[5][0] ? strtod(f[5], NULL) : 0.0;
        }
    }
}

/* How each kind of service is asked for its role; query overrides a pg status_probe's. */
static const struct role_kind {
    const char *kind;
    const char *query;
    void (*interpret)(struct role_job *jobs, size_t n);
} role_kinds[] = {
    { "patroni", pg_role_query, interpret_patroni },
    { "redis", NULL, interpret_redis },
    { "sentinel", NULL, interpret_sentinel },
    { "haproxy", NULL, interpret_haproxy },
    { "pgbouncer", NULL, interpret_pgbouncer },
    { "kafka", NULL, status__interpret_kafka },
    { "prometheus", NULL, status__interpret_prometheus },
    { "alertmanager", NULL, status__interpret_alertmanager },
};

static const struct role_kind *role_kind_find(const char *kind)
{
    for (size_t i = 0; kind && i < ARRAY_SIZE(role_kinds); i++)
        if (streq(role_kinds[i].kind, kind))
            return &role_kinds[i];
    return NULL;
}

/* Each Patroni node's role as it sees itself (GET /patroni: role, sync_standby, timeline): sets
 * the members' roles and returns the first that says it is the primary (borrowed from jobs), or
 * NULL.  Not GET /cluster: Patroni answers that with a fresh read from etcd in a thread of its
 * REST API, and while etcd hangs those reads hold the threads and the etcd client, so that a
 * `status --watch` asking five times a second stopped the leader's writes for 13 s during a 20 s
 * etcd freeze (failsafe mode needs every node's REST API).  /patroni reads nothing from etcd. */
static const char *patroni_leader(struct role_job *jobs, size_t n)
{
    const char *leader = NULL;

    for (size_t i = 0; i < n; i++) {
        const struct probe *node =
                job_is(&jobs[i], "patroni") ? jobs[i].extra[JOB_PATRONI_NODE] : NULL;
        struct status_service *sv = jobs[i].sv;
        const char *role;
        json_t *root;

        if (!node || probe_result(node) < 0)
            continue;
        root = json_loads(probe_detail(node), 0, NULL);
        role = json_string_value(json_object_get(root, "role"));
        if (json_is_integer(json_object_get(root, "timeline")))
            sv->timeline = json_integer_value(json_object_get(root, "timeline"));
        if (role && (streq(role, "primary") || streq(role, "master"))) {
            (void)snprintf(sv->role, sizeof sv->role, "leader");
            leader = leader ? leader : sv->name;
        } else if (role && (streq(role, "replica") || streq(role, "standby_leader"))) {
            (void)snprintf(sv->role, sizeof sv->role, "%s",
                           json_is_true(json_object_get(root, "sync_standby")) ? "sync replica"
                                                                               : "replica");
        } else if (role) { /* "demoted", "uninitialized", ...: as Patroni says */
            (void)snprintf(sv->role, sizeof sv->role, "%s", role);
        }
        json_decref(root);
    }
    return leader;
}

static void start_job(struct role_job *j, const struct role_kind *kind, uint64_t timeout,
                      struct probe **probes, unsigned *np)
{
    probe_spec_copy(&j->spec, &j->svc->status_probe);
    if (kind->query) {
        free(j->spec.query);
        j->spec.query = xstrdup(kind->query);
    }
    j->probe = probe_start(&j->spec, timeout);
    if (j->probe)
        probes[(*np)++] = j->probe;
}

/* GET path on the REST port of a Patroni node's health check (same host and port). */
static struct probe *patroni_get(const struct stack_service *svc, const char *path,
                                 struct probe_spec *spec)
{
    probe_spec_copy(spec, &svc->health.probe);
    free(spec->path);
    spec->path = xstrdup(path);
    spec->expect_status = 200;
    return probe_start(spec, PHASE1_TIMEOUT_USEC);
}

/* A warning when no Patroni node reached etcd in the last DCS_FRESH_SEC (their /patroni's
 * dcs_last_seen): Patroni's failsafe mode, the roles as each node last saw them. */
static void warn_dcs_unreached(const struct role_job *jobs, size_t n, struct status_snapshot *snap)
{
    long long now = (long long)(now_realtime_usec() / USEC_PER_SEC), freshest = -1;
    size_t len = strlen(snap->warnings);

    for (size_t i = 0; i < n; i++) {
        const struct probe *node =
                job_is(&jobs[i], "patroni") ? jobs[i].extra[JOB_PATRONI_NODE] : NULL;
        json_t *root, *seen;

        if (!node || probe_result(node) < 0)
            continue;
        root = json_loads(probe_detail(node), 0, NULL);
        seen = json_object_get(root, "dcs_last_seen");
        if (!json_is_integer(seen) || now - json_integer_value(seen) <= DCS_FRESH_SEC)
            freshest = 0; /* reached lately (or an older Patroni that does not say) */
        else if (freshest < 0 || now - json_integer_value(seen) < freshest)
            freshest = now - json_integer_value(seen);
        json_decref(root);
    }
    if (freshest > 0)
        (void)snprintf(snap->warnings + len, sizeof snap->warnings - len,
                       "warning: no Patroni node reached etcd in the last %d s (the latest %lld "
                       "s ago): failsafe mode, roles as each node sees itself\n",
                       DCS_FRESH_SEC, freshest);
}

/* "4.1.5" -> 40105 (each part below 100); -1 when it is not such a version. */
static long version_number(const char *v)
{
    long n = 0;
    int parts = 0;

    while (v && *v && parts < 3) {
        char part[8];
        size_t len = strspn(v, "0123456789");
        uint64_t x;

        if (len == 0 || len >= sizeof part)
            return -1;
        memcpy(part, v, len);
        part[len] = '\0';
        if (parse_uint_range(part, 0, 99, &x) < 0)
            return -1;
        n = n * 100 + (long)x;
        parts++;
        v += len;
        if (*v != '.')
            break;
        v++;
    }
    for (; parts < 3; parts++)
        n *= 100;
    return n;
}

/* Patroni before 3.0.3 unconditionally rewrites the leader key when it resumes from a freeze
 * (etcd3 _update_leader), demoting the new leader: acknowledged writes are lost. */
static void check_patroni_version(struct status_snapshot *snap, const struct role_job *j)
{
    const struct probe *version = job_is(j, "patroni") ? j->extra[JOB_PATRONI_NODE] : NULL;
    json_t *root;
    const char *v;
    long num;
    size_t len = strlen(snap->warnings);

    if (!version || probe_result(version) < 0)
        return;
    root = json_loads(probe_detail(version), 0, NULL);
    v = json_string_value(json_object_get(json_object_get(root, "patroni"), "version"));
    num = version_number(v);
    if (num >= 0 && num < 30003)
        (void)snprintf(snap->warnings + len, sizeof snap->warnings - len,
                       "warning: %s runs Patroni %s, older than 3.0.3: a leader that resumes "
                       "from a freeze can take its key back and lose acknowledged writes "
                       "(scripts/install-deps.sh installs 4.1.5)\n",
                       j->sv->name, v);
    json_decref(root);
}

/* ===== Clusters as a whole ===== */

bool status__kind_is(const struct stack *s, const struct status_service *sv, const char *kind)
{
    const struct stack_service *svc = s ? stack_find(s, sv->name) : NULL;

    return svc && svc->kind && streq(svc->kind, kind);
}

bool status__member_running(struct status_cluster *c, const struct status_service *sv)
{
    c->members++;
    if (!streq(sv->state, "running")) {
        status__problem(c, "%s %s", sv->name, sv->state);
        return false;
    }
    c->running++;
    return true;
}

void status__problem(struct status_cluster *c, const char *fmt, ...)
{
    size_t len = strlen(c->problems);
    va_list ap;

    c->degraded = true;
    if (len && len + 2 < sizeof c->problems) {
        memcpy(c->problems + len, "; ", 3);
        len += 2;
    }
    va_start(ap, fmt);
    (void)vsnprintf(c->problems + len, sizeof c->problems - len, fmt, ap);
    va_end(ap);
}

/* Every member running and answering, one leader, a synchronous replica, every replica
 * streaming on the leader's timeline. */
static void judge_postgres(struct status_snapshot *snap, const struct stack *s,
                           struct status_cluster *c)
{
    const struct status_service *leader = NULL;
    unsigned leaders = 0, sync = 0;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];

        if (!status__kind_is(s, sv, "patroni") || !status__member_running(c, sv))
            continue;
        if (streq(sv->role, "leader")) {
            leaders++;
            leader = sv;
        }
        sync += streq(sv->role, "sync replica");
    }
    if (c->members == 0)
        return;
    if (leaders == 0)
        status__problem(c, "no leader");
    else if (leaders > 1)
        status__problem(c, "%u leaders", leaders);
    if (leaders == 1 && c->members > 1 && sync == 0)
        status__problem(c, "no synchronous replica");
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];

        if (!status__kind_is(s, sv, "patroni") || !streq(sv->state, "running") || sv == leader)
            continue;
        if (sv->role_error[0])
            status__problem(c, "%s does not answer (%s)", sv->name, sv->role_error);
        else if (!streq(sv->detail, "streaming"))
            status__problem(c, "%s not streaming", sv->name);
        if (leader && sv->timeline > 0 && leader->timeline > 0 && sv->timeline != leader->timeline)
            status__problem(c, "%s on timeline %lld, the leader on %lld", sv->name,
                            (long long)sv->timeline, (long long)leader->timeline);
    }
}

/* One master, every replica's link up, the Sentinels agreeing on the master. */
static void judge_redis(struct status_snapshot *snap, const struct stack *s,
                        struct status_cluster *c)
{
    const char *seen = NULL;
    unsigned masters = 0;

    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        bool node = status__kind_is(s, sv, "redis"), sentinel = status__kind_is(s, sv, "sentinel");

        if (!node && !sentinel)
            continue;
        c->members += node;
        if (!streq(sv->state, "running")) {
            status__problem(c, "%s %s", sv->name, sv->state);
            continue;
        }
        c->running += node;
        if (sv->role_error[0]) {
            status__problem(c, "%s does not answer (%s)", sv->name, sv->role_error);
        } else if (node && streq(sv->role, "master")) {
            masters++;
        } else if (node && !streq(sv->detail, "link up")) {
            status__problem(c, "%s %s", sv->name,
                            sv->detail[0] ? sv->detail : "replication unknown");
        } else if (sentinel) {
            if (seen && strcspn(seen, ",") == strcspn(sv->detail, ",") &&
                strncmp(seen, sv->detail, strcspn(seen, ",")) != 0)
                status__problem(c, "the Sentinels disagree on the master");
            seen = seen ? seen : sv->detail;
        }
    }
    if (c->members == 0)
        return;
    if (masters != 1)
        status__problem(c, masters ? "%u masters" : "no master", masters);
}

/* Each cluster, its judge, and the kinds of service that are its members. */
static const struct cluster_kind {
    const char *name;
    void (*judge)(struct status_snapshot *, const struct stack *, struct status_cluster *);
    const char *member_kinds[3];
} cluster_kinds[] = { { "postgres", judge_postgres, { "patroni" } },
                      { "redis", judge_redis, { "redis", "sentinel" } },
                      { "kafka", status__judge_kafka, { "kafka" } } };

const char *status_cluster_of(const struct stack *s, const char *service)
{
    const struct stack_service *svc = stack_find(s, service);

    for (size_t k = 0; svc && svc->kind && k < ARRAY_SIZE(cluster_kinds); k++)
        for (size_t j = 0; j < ARRAY_SIZE(cluster_kinds[k].member_kinds); j++)
            if (cluster_kinds[k].member_kinds[j] &&
                streq(cluster_kinds[k].member_kinds[j], svc->kind))
                return cluster_kinds[k].name;
    return NULL;
}

static void judge_clusters(struct status_snapshot *snap, const struct stack *s)
{
    const struct cluster_kind *kinds = cluster_kinds;

    snap->n_clusters = 0;
    for (size_t k = 0; k < ARRAY_SIZE(cluster_kinds) && snap->n_clusters < STATUS_MAX_CLUSTERS;
         k++) {
        struct status_cluster *c = &snap->clusters[snap->n_clusters];

        *c = (struct status_cluster){ .members = 0 };
        (void)snprintf(c->name, sizeof c->name, "%s", kinds[k].name);
        kinds[k].judge(snap, s, c);
        if (c->members > 0)
            snap->n_clusters++;
    }
}

bool status_any_degraded(const struct status_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_clusters; i++)
        if (snap->clusters[i].degraded)
            return true;
    return false;
}

void status_collect_roles(struct status_snapshot *snap, const struct stack *s)
{
    struct role_job *jobs = xcalloc(snap->n_services ? snap->n_services : 1, sizeof *jobs);
    struct probe **probes = xcalloc(3 * snap->n_services + 1, sizeof *probes);
    uint64_t started = now_usec(), left;
    struct status_lag_query *lag;
    const char *leader;
    unsigned np = 0;

    /* Phase 1, all at once: every status probe except PostgreSQL's, and each Patroni node's
     * /patroni (cheap HTTP: its own role, patroni_leader()).  Phase 2: one PostgreSQL
     * connection, to the leader, whose pg_stat_replication has every replica's state and lag;
     * connections cost tens of milliseconds each (backend start, SCRAM), so the replicas are not
     * asked themselves unless no member's REST API answered. */
    for (size_t i = 0; i < snap->n_services; i++) {
        struct status_service *sv = &snap->services[i];
        const struct stack_service *svc = stack_find(s, sv->name);
        const struct role_kind *kind;

        jobs[i].snap = snap;
        jobs[i].sv = sv;
        jobs[i].svc = svc;
        if (!svc)
            continue;
        if (svc->n_ports)
            (void)snprintf(sv->endpoint, sizeof sv->endpoint, "127.0.0.1:%u", svc->ports[0]);
        sv->must_run = svc->restart == STACK_RESTART_ALWAYS;
        kind = role_kind_find(svc->kind);
        if (!kind || !svc->has_status_probe || !streq(sv->state, "running"))
            continue;
        if (!streq(kind->kind, "patroni")) {
            start_job(&jobs[i], kind,
                      streq(kind->kind, "kafka") ? STATUS_KAFKA_BUDGET_USEC : PHASE1_TIMEOUT_USEC,
                      probes, &np);
            status__monitoring_start(&jobs[i], PHASE1_TIMEOUT_USEC, probes, &np);
            continue;
        }
        if (svc->health.present && svc->health.probe.type == PROBE_HTTP) {
            jobs[i].extra[JOB_PATRONI_NODE] =
                    patroni_get(svc, "/patroni", &jobs[i].extra_spec[JOB_PATRONI_NODE]);
            if (jobs[i].extra[JOB_PATRONI_NODE])
                probes[np++] = jobs[i].extra[JOB_PATRONI_NODE];
        }
    }
    lag = status__lag_start(snap, s, STATUS_KAFKA_BUDGET_USEC);
    probe_run_all(probes, np);
    warn_dcs_unreached(jobs, snap->n_services, snap);
    for (size_t i = 0; i < snap->n_services; i++) {
        check_patroni_version(snap, &jobs[i]);
        const struct probe *node =
                job_is(&jobs[i], "patroni") ? jobs[i].extra[JOB_PATRONI_NODE] : NULL;

        if (node && probe_result(node) == -ETIMEDOUT)
            (void)snprintf(jobs[i].sv->role_error, sizeof jobs[i].sv->role_error,
                           "REST API: no answer within %llu ms",
                           (unsigned long long)(PHASE1_TIMEOUT_USEC / USEC_PER_MSEC));
    }
    leader = patroni_leader(jobs, snap->n_services);
    np = 0;
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct role_kind *kind = jobs[i].svc ? role_kind_find(jobs[i].svc->kind) : NULL;

        if (!kind || !streq(kind->kind, "patroni") || !jobs[i].svc->has_status_probe ||
            !streq(jobs[i].sv->state, "running") || (leader && !streq(jobs[i].sv->name, leader)))
            continue;
        left = STATUS_ROLE_BUDGET_USEC > now_usec() - started
                       ? STATUS_ROLE_BUDGET_USEC - (now_usec() - started)
                       : 0;
        start_job(&jobs[i], kind, left > PHASE2_MIN_USEC ? left : PHASE2_MIN_USEC, probes, &np);
    }
    probe_run_all(probes, np);

    for (size_t i = 0; i < snap->n_services; i++) {
        struct probe *p = jobs[i].probe;

        if (!p || probe_result(p) >= 0)
            continue;
        if (probe_result(p) == -ETIMEDOUT)
            (void)snprintf(jobs[i].sv->role_error, sizeof jobs[i].sv->role_error,
                           "no answer within %llu ms",
                           (unsigned long long)(probe_elapsed_usec(p) / USEC_PER_MSEC));
        else
            (void)snprintf(jobs[i].sv->role_error, sizeof jobs[i].sv->role_error, "%s",
                           probe_message(p));
    }
    for (size_t k = 0; k < ARRAY_SIZE(role_kinds); k++)
        role_kinds[k].interpret(jobs, snap->n_services);
    for (size_t i = 0; i < snap->n_services; i++) {
        probe_free(jobs[i].probe);
        probe_spec_release(&jobs[i].spec);
        for (size_t k = 0; k < ARRAY_SIZE(jobs[i].extra); k++) {
            probe_free(jobs[i].extra[k]);
            probe_spec_release(&jobs[i].extra_spec[k]);
        }
    }
    status__lag_finish(lag, snap);
    judge_clusters(snap, s);
    status__collect_backup(snap, s);
    free(probes);
    free(jobs);
}

/* ===== Output ===== */

static void format_lag(const struct status_service *sv, char *out, size_t n)
{
    if (sv->lag_bytes < 0) {
        (void)snprintf(out, n, "-");
        return;
    }
    if (sv->lag_seconds >= 0)
        (void)snprintf(out, n, "%" PRId64 "B/%.3fs", sv->lag_bytes, sv->lag_seconds);
    else
        (void)snprintf(out, n, "%" PRId64 "B", sv->lag_bytes);
}

/* "kafka: controller kafka1 (epoch 7), 36 partitions, 0 under-replicated, 0 offline" and the
 * consumer groups with their total lag. */
static void print_kafka(const struct status_kafka *k, FILE *f)
{
    if (!k->present)
        return;
    fprintf(f, "kafka: controller %s", k->controller[0] ? k->controller : "unknown");
    if (k->quorum_epoch >= 0)
        fprintf(f, " (epoch %lld)", k->quorum_epoch);
    if (k->metadata_known)
        fprintf(f, ", %u partitions, %u under-replicated, %u offline", k->partitions,
                k->under_replicated, k->offline);
    fprintf(f, "\nkafka consumer groups:%s", k->groups_known && !k->n_groups ? " none" : "");
    if (!k->groups_known)
        fprintf(f, " unknown (%s)", k->groups_error);
    for (size_t i = 0; i < k->n_groups; i++) {
        const struct status_group *g = &k->groups[i];

        fprintf(f, "%s %s lag %" PRId64 " (%s", i ? "," : "", g->name, g->lag, g->state);
        if (g->unknown)
            fprintf(f, ", %u partitions unknown", g->unknown);
        if (g->error[0])
            fprintf(f, ", %s", g->error);
        fputc(')', f);
    }
    fputc('\n', f);
}

/* "prometheus: targets down: ...", "alerts firing: ..." when there are any. */
static void print_monitoring(const struct status_monitoring *m, FILE *f)
{
    if (m->prometheus_known && m->targets_down[0])
        fprintf(f, "prometheus: %u of %u targets down: %s\n", m->targets_total - m->targets_up,
                m->targets_total, m->targets_down);
    if (m->firing > 0)
        fprintf(f, "alerts firing (%ld): %s\n", m->firing, m->firing_alerts);
}

void status_print_table(const struct status_snapshot *snap, FILE *f)
{
    int name_w = (int)strlen("SERVICE");

    for (size_t i = 0; i < snap->n_services; i++)
        if ((int)strlen(snap->services[i].name) > name_w)
            name_w = (int)strlen(snap->services[i].name);
    fprintf(f, "%-*s %-9s %-8s %-8s %-4s %-9s %-19s %-14s %-16s %s\n", name_w, "SERVICE", "STATE",
            "PID", "UPTIME", "RST", "HEALTH", "ROLE", "LAG", "ENDPOINT", "DETAIL");
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        char pid[24] = "-", up[16] = "-", lag[48];
        const char *detail =
                sv->detail[0]       ? sv->detail
                : sv->role_error[0] ? sv->role_error
                : sv->waiting_for   ? sv->waiting_for
                : !streq(sv->health, "healthy") && sv->health_message && sv->health_message[0]
                        ? sv->health_message
                : sv->last_exit && !streq(sv->state, "running") ? sv->last_exit
                                                                : "";

        if (sv->pid > 0) {
            (void)snprintf(pid, sizeof pid, "%ld", sv->pid);
            (void)format_duration(up, sizeof up, (uint64_t)(sv->uptime_s * 1e6));
        }
        format_lag(sv, lag, sizeof lag);
        fprintf(f, "%-*s %-9s %-8s %-8s %-4u %-9s %-19s %-14s %-16s %s\n", name_w, sv->name,
                sv->state, pid, up, sv->restarts, sv->health, sv->role[0] ? sv->role : "-", lag,
                sv->endpoint[0] ? sv->endpoint : "-", detail);
    }
    for (size_t i = 0; i < snap->n_clusters; i++) {
        const struct status_cluster *c = &snap->clusters[i];

        fprintf(f, "%s%s cluster: %s, %u/%u members running%s%s\n", i == 0 ? "\n" : "", c->name,
                c->degraded ? "DEGRADED" : "healthy", c->running, c->members,
                c->degraded ? ": " : "", c->problems);
    }
    status_print_jobs(snap, f);
    print_kafka(&snap->kafka, f);
    print_monitoring(&snap->monitoring, f);
    status__print_backup(&snap->backup, f);
    fputs(snap->warnings, f);
}

static json_t *opt_string(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

int status_print_not_running(const char *state_dir, FILE *f)
{
    json_t *root = json_pack("{s:b, s:s}", "running", 0, "state_dir", state_dir);
    int r = root && json_dumpf(root, f, JSON_INDENT(2)) == 0 ? 0 : -ENOMEM;

    fputc('\n', f);
    json_decref(root);
    return r;
}

/* {"controller", "quorum_epoch", "partitions", "under_replicated", "offline" (null when no
 * broker answered), "consumer_groups": [{"name", "state", "lag", "partitions",
 * "partitions_unknown", "error"}] (null when unknown), "consumer_groups_error"}. */
static json_t *kafka_json(const struct status_kafka *k)
{
    json_t *o = json_object(), *groups = k->groups_known ? json_array() : json_null();

#define KAFKA_COUNT(v) (k->metadata_known ? json_integer((json_int_t)(v)) : json_null())
    (void)json_object_set_new(o, "controller", opt_string(k->controller));
    (void)json_object_set_new(o, "quorum_epoch",
                              k->quorum_epoch >= 0 ? json_integer(k->quorum_epoch) : json_null());
    (void)json_object_set_new(o, "partitions", KAFKA_COUNT(k->partitions));
    (void)json_object_set_new(o, "under_replicated", KAFKA_COUNT(k->under_replicated));
    (void)json_object_set_new(o, "offline", KAFKA_COUNT(k->offline));
#undef KAFKA_COUNT
    for (size_t i = 0; groups && k->groups_known && i < k->n_groups; i++) {
        const struct status_group *g = &k->groups[i];

        (void)json_array_append_new(
                groups, json_pack("{s:s, s:s, s:I, s:i, s:i, s:o}", "name", g->name, "state",
                                  g->state, "lag", (json_int_t)g->lag, "partitions",
                                  (json_int_t)g->partitions, "partitions_unknown",
                                  (json_int_t)g->unknown, "error", opt_string(g->error)));
    }
    (void)json_object_set_new(o, "consumer_groups", groups);
    (void)json_object_set_new(o, "consumer_groups_error", opt_string(k->groups_error));
    return o;
}

/* {"targets_up", "targets_total", "targets_down", "rules", "firing", "firing_alerts"} (null
 * when Prometheus did not answer) and {"alerts_active", "alerts_silenced", "alerts_inhibited",
 * "alerts_unprocessed"} (null when Alertmanager did not). */
static json_t *monitoring_json(const struct status_monitoring *m)
{
    json_t *o = json_object();

#define PROM(v) (m->prometheus_known ? (v) : json_null())
#define AM(v)   (m->alertmanager_known ? json_integer((json_int_t)(v)) : json_null())
    (void)json_object_set_new(o, "targets_up", PROM(json_integer(m->targets_up)));
    (void)json_object_set_new(o, "targets_total", PROM(json_integer(m->targets_total)));
    (void)json_object_set_new(o, "targets_down", PROM(json_string(m->targets_down)));
    (void)json_object_set_new(o, "rules", m->rules >= 0 ? json_integer(m->rules) : json_null());
    (void)json_object_set_new(o, "firing", m->firing >= 0 ? json_integer(m->firing) : json_null());
    (void)json_object_set_new(o, "firing_alerts", PROM(json_string(m->firing_alerts)));
    (void)json_object_set_new(o, "alerts_active", AM(m->am_active));
    (void)json_object_set_new(o, "alerts_silenced", AM(m->am_silenced));
    (void)json_object_set_new(o, "alerts_inhibited", AM(m->am_inhibited));
    (void)json_object_set_new(o, "alerts_unprocessed", AM(m->am_unprocessed));
#undef PROM
#undef AM
    return o;
}

int status_print_json(const struct status_snapshot *snap, FILE *f)
{
    json_t *root = json_object(), *arr = json_array();
    size_t up = 0;
    int r = 0;

    if (!root || !arr) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < snap->n_services; i++) {
        const struct status_service *sv = &snap->services[i];
        /* The supervisor's fields under its own keys (supervise.h), then what status adds. */
        const struct sv_status_service view = {
            .name = sv->name,
            .state = sv->state,
            .pid = (int)sv->pid,
            .started_at = sv->started_at,
            .uptime_s = sv->uptime_s,
            .restarts = sv->restarts,
            .health = sv->health,
            .health_message = sv->health_message,
            .last_exit = sv->last_exit,
            .waiting_for = sv->waiting_for,
            .job = sv->job,
        };
        json_t *o = sv_status_service_json(&view);

        if (!o ||
            json_object_update_new(
                    o, json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}", "role", opt_string(sv->role),
                                 "detail", opt_string(sv->detail), "lag_bytes",
                                 sv->lag_bytes >= 0 ? json_integer(sv->lag_bytes) : json_null(),
                                 "lag_seconds",
                                 sv->lag_seconds >= 0 ? json_real(sv->lag_seconds) : json_null(),
                                 "endpoint", opt_string(sv->endpoint), "up",
                                 status_service_up(sv))) < 0 ||
            json_array_append_new(arr, o) < 0) {
            r = -ENOMEM;
            goto out;
        }
        if (sv->role_error[0])
            (void)json_object_set_new(o, "role_error", json_string(sv->role_error));
        if (sv->partitions.known)
            (void)json_object_set_new(o, "partitions",
                                      json_pack("{s:i, s:i, s:i}", "led",
                                                (json_int_t)sv->partitions.led, "under_replicated",
                                                (json_int_t)sv->partitions.under_replicated,
                                                "offline", (json_int_t)sv->partitions.offline));
        up += status_service_up(sv);
    }
    (void)json_object_set_new(root, "running", json_true());
    (void)json_object_set_new(root, "stack", opt_string(snap->stack_name));
    (void)json_object_set_new(root, "state_dir", opt_string(snap->state_dir));
    (void)json_object_set_new(root, "supervisor_pid", json_integer(snap->supervisor_pid));
    (void)json_object_set_new(root, "services_total", json_integer((json_int_t)snap->n_services));
    (void)json_object_set_new(root, "services_up", json_integer((json_int_t)up));
    (void)json_object_set(root, "services", arr);
    {
        json_t *clusters = json_array();

        for (size_t i = 0; clusters && i < snap->n_clusters; i++) {
            const struct status_cluster *c = &snap->clusters[i];

            (void)json_array_append_new(
                    clusters, json_pack("{s:s, s:i, s:i, s:b, s:s}", "name", c->name, "members",
                                        (json_int_t)c->members, "running", (json_int_t)c->running,
                                        "degraded", c->degraded, "problems", c->problems));
        }
        (void)json_object_set_new(root, "clusters", clusters ? clusters : json_null());
        (void)json_object_set_new(root, "warnings", json_string(snap->warnings));
    }
    if (snap->kafka.present)
        (void)json_object_set_new(root, "kafka", kafka_json(&snap->kafka));
    if (snap->monitoring.prometheus_known || snap->monitoring.alertmanager_known)
        (void)json_object_set_new(root, "monitoring", monitoring_json(&snap->monitoring));
    if (snap->backup.present)
        (void)json_object_set_new(root, "backup", status__backup_json(&snap->backup));
    /* 15 significant digits print a value rounded to the millisecond as such (4471.866, not
     * 4471.8659999999999), and drop the binary noise of the other reals (lag_seconds). */
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0)
        r = -EIO;
    fputc('\n', f);
out:
    json_decref(arr);
    json_decref(root);
    return r;
}
