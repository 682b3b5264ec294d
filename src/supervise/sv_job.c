/* SPDX-License-Identifier: MIT */
/* sv_job.c - scheduled services (jobs): due times in UTC, starting a job's run through the
 * state machine at each, skipping a due time while a run is still going, stopping a run past
 * its timeout, and recording each run: STATE/jobs/NAME.state (survives restarts) and a
 * Prometheus textfile for node-exporter (docs/internals/supervise.md, "Scheduled services"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "metrics/metrics.h"
#include "sv_int.h"

#define DAY_USEC (24 * 3600 * USEC_PER_SEC)
/* The loop re-reads the wall clock at least this often while a job waits for its due time,
 * so a clock set forward (or a suspend) delays a run by no more than this. */
#define CLOCK_RECHECK_USEC (60 * USEC_PER_SEC)
#define STATE_MAX_BYTES    4096u
#define METRICS_MAX_BYTES  (4u << 20)

/* ===== Due times ===== */

uint64_t sv_schedule_next(const struct sv_schedule *s, uint64_t after_usec)
{
    uint64_t every = s->every_usec, off = s->offset_usec % s->every_usec;

    if (after_usec < off)
        return off;
    return off + ((after_usec - off) / every + 1) * every;
}

uint64_t sv_schedule_prev(const struct sv_schedule *s, uint64_t at_usec)
{
    uint64_t every = s->every_usec, off = s->offset_usec % s->every_usec;

    if (at_usec < off)
        return 0;
    return off + ((at_usec - off) / every) * every;
}

/* "1h", "30m", "1h30m", "2s", "1s500ms": the nonzero units only. */
static const char *compact_duration(char *buf, size_t n, uint64_t usec)
{
    static const struct {
        uint64_t usec;
        const char *unit;
    } units[] = { { 3600 * USEC_PER_SEC, "h" },
                  { 60 * USEC_PER_SEC, "m" },
                  { USEC_PER_SEC, "s" },
                  { USEC_PER_MSEC, "ms" },
                  { 1, "us" } };
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(units) && len < n; i++) {
        uint64_t q = usec / units[i].usec;

        usec %= units[i].usec;
        if (q > 0)
            len += (size_t)snprintf(buf + len, n - len, "%" PRIu64 "%s", q, units[i].unit);
    }
    if (!buf[0])
        (void)snprintf(buf, n, "0s");
    return buf;
}

const char *sv_schedule_format(const struct sv_schedule *s, char *buf, size_t n)
{
    char a[64], b[64] = "", d[80] = "";

    if (s->random_delay_usec > 0)
        (void)snprintf(d, sizeof d, " + up to %s",
                       compact_duration(a, sizeof a, s->random_delay_usec));
    if (s->every_usec == DAY_USEC) {
        uint64_t sec = (s->offset_usec % DAY_USEC) / USEC_PER_SEC;

        if (sec % 60)
            (void)snprintf(b, sizeof b, ":%02u", (unsigned)(sec % 60));
        (void)snprintf(buf, n, "daily %02u:%02u%s UTC%s", (unsigned)(sec / 3600),
                       (unsigned)(sec / 60 % 60), b, d);
        return buf;
    }
    if (s->offset_usec % s->every_usec)
        (void)snprintf(b, sizeof b, " +%s",
                       compact_duration(a, sizeof a, s->offset_usec % s->every_usec));
    (void)snprintf(buf, n, "every %s%s%s", compact_duration(a, sizeof a, s->every_usec), b, d);
    return buf;
}

/* Uniform in [0, max]: spreads the runs of many hosts (systemd RandomizedDelaySec). */
static uint64_t random_delay(uint64_t max)
{
    uint64_t x;

    if (max == 0)
        return 0;
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x)
        x = now_usec() ^ ((uint64_t)getpid() << 32);
    return x % (max + 1);
}

/* Schedules the first due time after after_real. */
static void plan_next(struct sv_job *j, const struct sv_schedule *s, uint64_t after_real)
{
    j->next_nominal_usec = sv_schedule_next(s, after_real);
    j->next_due_usec = j->next_nominal_usec + random_delay(s->random_delay_usec);
}

/* ===== What a run leaves: the state file and the textfile ===== */

static const char *const result_names[_SV_JOB_RESULT_MAX] = {
    [SV_JOB_SUCCESS] = "success",
    [SV_JOB_FAILURE] = "failure",
    [SV_JOB_TIMEOUT] = "timeout",
    [SV_JOB_SKIPPED] = "skipped",
};

const char *sv__job_result_name(enum sv_job_result r)
{
    return (unsigned)r < _SV_JOB_RESULT_MAX ? result_names[r] : "none";
}

int sv__job_state_format(const struct sv_job *j, struct buf *out)
{
    int r = buf_appendf(out,
                        "last_end_usec=%" PRIu64 "\nlast_success_usec=%" PRIu64
                        "\nlast_duration_usec=%" PRIu64 "\nlast_exit_code=%d\nlast_result=%s\n",
                        j->last_end_usec, j->last_success_usec, j->last_duration_usec,
                        j->last_exit_code,
                        j->last_result >= 0 ? sv__job_result_name(j->last_result) : "none");

    for (int i = 0; i < _SV_JOB_RESULT_MAX && r >= 0; i++)
        r = buf_appendf(out, "runs_%s=%" PRIu64 "\n", result_names[i], j->counts[i]);
    return r < 0 ? r : 0;
}

/* One "key=value" line into the job being read. */
static int state_line(struct sv_job *j, const char *key, const char *val)
{
    uint64_t *u64 = NULL;
    int64_t i;

    if (streq(key, "last_end_usec"))
        u64 = &j->last_end_usec;
    else if (streq(key, "last_success_usec"))
        u64 = &j->last_success_usec;
    else if (streq(key, "last_duration_usec"))
        u64 = &j->last_duration_usec;
    for (int k = 0; k < _SV_JOB_RESULT_MAX && !u64; k++)
        if (str_startswith(key, "runs_") && streq(key + 5, result_names[k]))
            u64 = &j->counts[k];
    if (u64)
        return parse_u64(val, u64);
    if (streq(key, "last_exit_code")) {
        if (parse_i64(val, &i) < 0 || i < -1 || i > 255)
            return -EINVAL;
        j->last_exit_code = (int)i;
        return 0;
    }
    if (streq(key, "last_result")) {
        j->last_result = -1;
        for (int k = 0; k < SV_JOB_SKIPPED; k++)
            if (streq(val, result_names[k]))
                j->last_result = k;
        return j->last_result >= 0 || streq(val, "none") ? 0 : -EINVAL;
    }
    return 0; /* a key of a later version */
}

int sv__job_state_parse(const char *text, struct sv_job *j)
{
    struct sv_job t = *j;
    const char *p = text;

    while (*p) {
        size_t len = strcspn(p, "\n");
        char line[256], *eq;

        if (len >= sizeof line)
            return -EINVAL;
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (p[len] == '\n');
        if (!line[0])
            continue;
        eq = strchr(line, '=');
        if (!eq)
            return -EINVAL;
        *eq = '\0';
        if (state_line(&t, line, eq + 1) < 0)
            return -EINVAL;
    }
    *j = t;
    return 0;
}

static char *state_path(const struct sv_sup *sup, const struct sv_unit *u)
{
    return xasprintf("%s/jobs/%s.state", sup->state_dir, u->svc->name);
}

static void state_save(const struct sv_sup *sup, const struct sv_unit *u)
{
    struct buf text = BUF_INIT(STATE_MAX_BYTES);
    char *path = state_path(sup, u);
    int r;

    r = sv__job_state_format(&u->job, &text);
    if (r >= 0)
        r = file_write_atomic(path, text.data, text.len, 0644);
    if (r < 0)
        log_warning_errno(r, "cannot write '%s', ignoring", path);
    buf_release(&text);
    free(path);
}

static void state_load(const struct sv_sup *sup, struct sv_unit *u)
{
    struct buf text = BUF_INIT(STATE_MAX_BYTES);
    char *path = state_path(sup, u);
    int r = file_read_all(path, &text);

    if (r >= 0)
        r = sv__job_state_parse(buf_str(&text), &u->job);
    if (r < 0 && r != -ENOENT)
        log_warning_errno(r, "cannot read '%s', the job starts with no history", path);
    buf_release(&text);
    free(path);
}

struct family {
    const char *name;
    enum metrics_type type;
    const char *help;
};

static const struct family families[] = {
    { "ultrathink_job_last_run_timestamp_seconds", METRICS_GAUGE,
      "When the last run of the scheduled service ended (Unix time)." },
    { "ultrathink_job_last_success_timestamp_seconds", METRICS_GAUGE,
      "When the last successful run (exit status 0) of the scheduled service ended (Unix time)." },
    { "ultrathink_job_last_duration_seconds", METRICS_GAUGE,
      "How long the last run of the scheduled service took." },
    { "ultrathink_job_last_exit_code", METRICS_GAUGE,
      "Exit status of the last run (128+N: killed by signal N; -1: no process exited)." },
    { "ultrathink_job_runs_total", METRICS_COUNTER,
      "Due times of the scheduled service by outcome (skipped: the previous run was still "
      "going)." },
};

/* Family f's sample of job j (NULL when it has none yet). */
static int job_sample(struct buf *out, size_t f, const char *name, const struct sv_job *j)
{
    static const char *const job_label[] = { "job" };
    static const char *const run_labels[] = { "job", "result" };
    const char *vals[2] = { name, NULL };
    double v;
    int r = 0;

    switch (f) {
    case 0:
        v = (double)j->last_end_usec / 1e6;
        break;
    case 1:
        if (j->last_success_usec == 0)
            return 0;
        v = (double)j->last_success_usec / 1e6;
        break;
    case 2:
        v = (double)j->last_duration_usec / 1e6;
        break;
    case 3:
        v = j->last_exit_code;
        break;
    default:
        for (int k = 0; k < _SV_JOB_RESULT_MAX && r >= 0; k++) {
            vals[1] = result_names[k];
            r = metrics_text_sample(out, families[f].name, run_labels, vals, 2,
                                    (double)j->counts[k]);
        }
        return r;
    }
    if (j->last_result < 0)
        return 0; /* never ran: no last run to speak of */
    return metrics_text_sample(out, families[f].name, job_label, vals, 1, v);
}

int sv__job_metrics_format(const struct sv_unit *units, size_t n, struct buf *out)
{
    int r = 0;

    for (size_t f = 0; f < ARRAY_SIZE(families) && r >= 0; f++) {
        size_t mark = out->len;
        bool any = false;

        r = metrics_text_header(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < n && r >= 0; i++) {
            size_t before = out->len;

            if (!units[i].svc->schedule.present)
                continue;
            r = job_sample(out, f, units[i].svc->name, &units[i].job);
            any = any || out->len > before;
        }
        /* A family without samples yet is left out entirely. */
        if (r >= 0 && !any) {
            out->len = mark;
            if (out->data)
                out->data[mark] = '\0';
        }
    }
    return r < 0 ? r : 0;
}

static char *metrics_path(const struct sv_sup *sup)
{
    if (sup->spec->job_metrics_dir)
        return xasprintf("%s/%s", sup->spec->job_metrics_dir, SV_JOB_METRICS_FILE);
    return xasprintf("%s/jobs/%s", sup->state_dir, SV_JOB_METRICS_FILE);
}

/* Rewrites the textfile (temp file, fsync, rename: node-exporter never reads half of it). */
static void metrics_write(struct sv_sup *sup)
{
    struct buf text = BUF_INIT(METRICS_MAX_BYTES);
    char *path = metrics_path(sup), *dir = xstrdup(path);
    int r;

    *strrchr(dir, '/') = '\0';
    r = sv__job_metrics_format(sup->units, sup->n_units, &text);
    if (r >= 0)
        r = mkdir_p(dir, 0755);
    if (r >= 0)
        r = file_write_atomic(path, text.data ? text.data : "", text.len, 0644);
    if (r < 0 && !sup->job_metrics_failed)
        log_warning_errno(r, "cannot write the jobs' metrics to '%s', ignoring", path);
    sup->job_metrics_failed = r < 0;
    buf_release(&text);
    free(dir);
    free(path);
}

/* ===== Runs ===== */

static bool idle(const struct sv_unit *u)
{
    return u->state == SV_STATE_STOPPED || u->state == SV_STATE_EXITED ||
           u->state == SV_STATE_FAILED;
}

/* The exit status as a number: N, or 128+N for signal N (as a shell reports it). */
static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* The unit went back to an idle state: the run is over. */
static void run_ended(struct sv_sup *sup, struct sv_unit *u, uint64_t now)
{
    struct sv_job *j = &u->job;
    bool spawned = u->spawns > j->run_spawns;
    enum sv_job_result res;
    char took[64];

    j->active = false;
    if (!spawned && !j->timed_out && u->state == SV_STATE_STOPPED) {
        /* Stopped (by hand, or the shutdown) while it waited for its dependencies. */
        log_info("job '%s': run cancelled before it started", u->svc->name);
        return;
    }
    j->last_exit_code = spawned && u->has_exited ? exit_code_of(u->exit_status) : -1;
    if (j->timed_out)
        res = SV_JOB_TIMEOUT;
    else if (spawned && j->last_exit_code == 0 && u->exec_errno == 0)
        res = SV_JOB_SUCCESS;
    else
        res = SV_JOB_FAILURE;
    j->last_result = (int)res;
    j->last_end_usec = now_realtime_usec();
    /* From the spawn: waiting for dependencies or for the gap between starts is not work. */
    j->last_duration_usec =
            now - (spawned && u->started_usec > j->run_started_usec ? u->started_usec
                                                                    : j->run_started_usec);
    if (res == SV_JOB_SUCCESS)
        j->last_success_usec = j->last_end_usec;
    j->counts[res]++;
    log_full_errno(res == SV_JOB_SUCCESS ? LOG_LVL_INFO : LOG_LVL_WARNING, 0,
                   "job '%s': %s after %s (exit code %d)", u->svc->name, result_names[res],
                   format_duration(took, sizeof took, j->last_duration_usec), j->last_exit_code);
    state_save(sup, u);
    metrics_write(sup);
}

/* The unit left its idle states: by the schedule or by a start request. */
static void run_began(struct sv_unit *u, uint64_t now)
{
    u->job.active = true;
    u->job.timed_out = false;
    u->job.run_started_usec = now;
    u->job.run_spawns = u->spawns;
}

void sv__job_init(struct sv_sup *sup, struct sv_unit *u, bool held, uint64_t now_real)
{
    const struct sv_schedule *s = &u->svc->schedule;
    struct sv_job *j = &u->job;
    char *dir = xasprintf("%s/jobs", sup->state_dir);
    uint64_t prev;
    int r;

    *j = (struct sv_job){ .enabled = !held, .last_exit_code = -1, .last_result = -1 };
    r = mkdir_p(dir, 0755);
    if (r < 0)
        log_warning_errno(r, "cannot create '%s', ignoring", dir);
    free(dir);
    state_load(sup, u);
    if (!j->enabled)
        return;
    plan_next(j, s, now_real);
    /* A due time passed since the last recorded run (the supervisor was down): catch up. */
    prev = sv_schedule_prev(s, now_real);
    if (s->persistent && j->last_end_usec > 0 && prev > j->last_end_usec) {
        log_info("job '%s': a run was due while the supervisor was down, running it now",
                 u->svc->name);
        j->next_nominal_usec = prev;
        j->next_due_usec = now_real + random_delay(s->random_delay_usec);
    }
}

void sv__job_start_all(struct sv_sup *sup)
{
    for (size_t i = 0; i < sup->n_units; i++)
        if (sup->units[i].svc->schedule.present) {
            metrics_write(sup);
            return;
        }
}

void sv__job_request(struct sv_sup *sup, struct sv_unit *u, enum sv_event ev, uint64_t now)
{
    bool on = ev != SV_EVENT_STOP_REQUEST;

    (void)sup;
    if (!u->svc->schedule.present)
        return;
    /* The run begins now, before settle() spawns it (spawns counted from here). */
    if (on && idle(u) && !u->job.active)
        run_began(u, now);
    if (u->job.enabled == on)
        return;
    u->job.enabled = on;
    u->job.next_nominal_usec = u->job.next_due_usec = 0;
    if (on)
        plan_next(&u->job, &u->svc->schedule, now_realtime_usec());
    log_info("job '%s': schedule %s", u->svc->name, on ? "enabled" : "held until a start");
}

/* The due time came: start a run, or count it skipped when one is still going. */
static void due(struct sv_sup *sup, struct sv_unit *u, uint64_t now, uint64_t now_real)
{
    struct sv_job *j = &u->job;
    char ago[64];

    if (j->active || !idle(u)) {
        j->counts[SV_JOB_SKIPPED]++;
        log_warning("job '%s': still running after %s, skipping the run due now", u->svc->name,
                    format_duration(ago, sizeof ago, now - j->run_started_usec));
        state_save(sup, u);
        metrics_write(sup);
    } else {
        log_info("job '%s': due, starting", u->svc->name);
        sv_fsm_dispatch(u, SV_EVENT_START, 0, now, &sup->ops);
        run_began(u, now);
    }
    plan_next(j, &u->svc->schedule,
              now_real > j->next_nominal_usec ? now_real : j->next_nominal_usec);
}

uint64_t sv__job_tick(struct sv_sup *sup, uint64_t now)
{
    uint64_t now_real = now_realtime_usec(), deadline = 0;

    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];
        struct sv_job *j = &u->job;
        uint64_t timeout = u->svc->schedule.timeout_usec, t;

        if (!u->svc->schedule.present)
            continue;
        if (!j->active && !idle(u)) {
            /* Started some other way than a request or the schedule: it may have spawned. */
            run_began(u, now);
            if (u->state != SV_STATE_WAITING && u->state != SV_STATE_BACKOFF && u->spawns > 0)
                j->run_spawns = u->spawns - 1;
        }
        if (j->active && timeout > 0 && !j->timed_out && u->state != SV_STATE_STOPPING &&
            !idle(u) && now >= j->run_started_usec + timeout) {
            char what[64];

            log_warning("job '%s': still running after its timeout of %s, stopping it",
                        u->svc->name, format_duration(what, sizeof what, timeout));
            j->timed_out = true;
            sv_fsm_dispatch(u, SV_EVENT_STOP_REQUEST, 0, now, &sup->ops);
        }
        if (j->active && idle(u))
            run_ended(sup, u, now);
        if (j->active && timeout > 0 && !j->timed_out) {
            t = j->run_started_usec + timeout;
            if (deadline == 0 || t < deadline)
                deadline = t;
        }
        if (!j->enabled || sup->shutting_down || j->next_due_usec == 0)
            continue;
        /* The clock was set back by more than a period: plan from the new time. */
        if (j->next_nominal_usec > now_real + u->svc->schedule.every_usec)
            plan_next(j, &u->svc->schedule, now_real);
        if (now_real >= j->next_due_usec) {
            due(sup, u, now, now_real);
            /* The run waits for settle() to see its dependencies: turn the loop at once. */
            deadline = now;
            continue;
        }
        t = now + (j->next_due_usec - now_real < CLOCK_RECHECK_USEC ? j->next_due_usec - now_real
                                                                    : CLOCK_RECHECK_USEC);
        if (deadline == 0 || t < deadline)
            deadline = t;
    }
    return deadline;
}

struct sv_status_job *sv__job_status(const struct sv_unit *u)
{
    const struct sv_job *j = &u->job;
    struct sv_status_job *st;
    char sched[160];

    if (!u->svc->schedule.present)
        return NULL;
    st = xcalloc(1, sizeof *st);
    *st = (struct sv_status_job){
        .schedule = xstrdup(sv_schedule_format(&u->svc->schedule, sched, sizeof sched)),
        .scheduled = j->enabled,
        .next_run = j->enabled ? (double)j->next_due_usec / 1e6 : 0,
        .last_run = (double)j->last_end_usec / 1e6,
        .last_success = (double)j->last_success_usec / 1e6,
        .last_result = j->last_result >= 0 ? xstrdup(result_names[j->last_result]) : NULL,
        .last_duration_s = (double)(j->last_duration_usec / 1000) / 1e3,
        .last_exit_code = j->last_result >= 0 ? j->last_exit_code : -1,
        .runs_success = (unsigned)j->counts[SV_JOB_SUCCESS],
        .runs_failure = (unsigned)j->counts[SV_JOB_FAILURE],
        .runs_timeout = (unsigned)j->counts[SV_JOB_TIMEOUT],
        .runs_skipped = (unsigned)j->counts[SV_JOB_SKIPPED],
    };
    return st;
}
