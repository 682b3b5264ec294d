/* SPDX-License-Identifier: MIT */
/* sv_fence.c - what the supervisor does besides restarting, because it holds every process of
 * a service (sv_tree.c):
 *  - after a run ends, it kills what the run left behind and verifies every process gone
 *    before the service may start again;
 *  - once it is sure, it releases the service's lock in etcd by compare-and-delete (Patroni's
 *    leader key), so the synchronous standby takes over at once instead of waiting out the
 *    lease; a key that names someone else is never touched;
 *  - it fences a service whose main process is frozen (stopped longer than freeze_after) or
 *    fails its liveness probe: SIGKILL to the whole tree, so a frozen leader can never resume
 *    as leader.  The release above follows, as after any other end;
 *  - it fences a service whose watched process (lock.pidfile: the postmaster) crashed while
 *    the service holds the key; a clean exit that the main process answers for (Patroni
 *    demoting or restarting PostgreSQL) is left to it.  Other orphans are ignored.
 * A supervisor that dies with its host releases nothing: the lease expires as usual. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "sv_int.h"

#define TREE_RECHECK_USEC   (20 * USEC_PER_MSEC)   /* while a dead run's processes are dying */
#define TREE_WARN_USEC      (5 * USEC_PER_SEC)     /* "still alive" warnings, at most this often */
#define FREEZE_POLL_USEC    (50 * USEC_PER_MSEC)   /* state checks of a watched main process */
#define LOCK_TIMEOUT_USEC   (1000 * USEC_PER_MSEC) /* the compare-and-delete, etcd on loopback */
#define TREE_SCAN_USEC      (1000 * USEC_PER_MSEC) /* tree scans of a running fenced service */
#define LOCK_POLL_USEC      (100 * USEC_PER_MSEC)  /* "who holds the key now?" while waiting */
#define LOCK_SUCCESSOR_USEC (10 * USEC_PER_SEC)    /* longest wait for another holder */
/* After a clean exit of the watched process: how long the main process has to answer its
 * liveness probe (Patroni's REST API answers in 2-7 ms here; a Patroni shutting down has
 * stopped serving it before it stops PostgreSQL, and gets fenced this much later). */
#define ANSWER_USEC (100 * USEC_PER_MSEC)

static void min_deadline(uint64_t *d, uint64_t t)
{
    if (t > 0 && (*d == 0 || t < *d))
        *d = t;
}

static char *base64_of(const char *s)
{
    struct buf b = BUF_INIT(0);

    if (buf_append_base64(&b, s, strlen(s)) < 0)
        BUG("out of memory");
    return buf_detach(&b, NULL);
}

/* Standard base64 (etcd's JSON API) back to a string; NULL when s is not base64 or holds a
 * NUL.  The caller frees. */
static char *base64_text(const char *s)
{
    struct buf b = BUF_INIT(0);
    size_t n = 0;
    char *text;

    if (buf_append_unbase64(&b, s) < 0) {
        buf_release(&b);
        return NULL;
    }
    text = buf_detach(&b, &n);
    if (strlen(text) != n) {
        free(text);
        return NULL;
    }
    return text;
}

static void etcd_request(struct probe_spec *spec, const struct sv_lock *l, const char *path,
                         char *body)
{
    *spec = (struct probe_spec){
        .type = PROBE_HTTP,
        .host = xstrdup(l->host),
        .port = l->port,
        .path = xstrdup(path),
        .method = xstrdup("POST"),
        .expect_status = 200,
        .body = body,
    };
}

void sv__fence_init(struct sv_unit *u)
{
    const struct sv_lock *l = &u->svc->lock;
    char *key;

    if (!l->present)
        return;
    key = base64_of(l->key);
    u->lock_value_b64 = base64_of(l->value);
    /* etcd v3 JSON API: keys and values in base64. */
    etcd_request(&u->lock_del, l, "/v3/kv/txn",
                 xasprintf("{\"compare\":[{\"key\":\"%s\",\"target\":\"VALUE\",\"value\":\"%s\","
                           "\"result\":\"EQUAL\"}],\"success\":[{\"request_delete_range\":"
                           "{\"key\":\"%s\"}}]}",
                           key, u->lock_value_b64, key));
    etcd_request(&u->lock_get, l, "/v3/kv/range", xasprintf("{\"key\":\"%s\"}", key));
    free(key);
    if (l->handover_key) {
        key = base64_of(l->handover_key);
        etcd_request(&u->lock_handover_get, l, "/v3/kv/range", xasprintf("{\"key\":\"%s\"}", key));
        free(key);
    }
}

void sv__fence_release(struct sv_unit *u)
{
    free(u->tree);
    u->tree = NULL;
    u->n_tree = 0;
    u->lock_probe = probe_free(u->lock_probe);
    u->live_probe = probe_free(u->live_probe);
    u->answer_probe = probe_free(u->answer_probe);
    probe_spec_release(&u->lock_del);
    probe_spec_release(&u->lock_get);
    probe_spec_release(&u->lock_handover_get);
    free(u->lock_value_b64);
    u->lock_value_b64 = NULL;
}

bool sv__fence_busy(const struct sv_unit *u, void *userdata)
{
    (void)userdata;
    return u->tree_pending ||
           (u->lock_phase == SV_LOCK_RELEASE || u->lock_phase == SV_LOCK_SUCCESSOR);
}

void sv__fence_run_ended(struct sv_sup *sup, struct sv_unit *u, uint64_t now)
{
    (void)sup;
    u->fenced = false;
    if (u->lock_phase == SV_LOCK_CHECK || u->lock_phase == SV_LOCK_HANDOVER ||
        u->lock_phase == SV_LOCK_HANDED) { /* the run ended before the check did: moot */
        u->lock_probe = probe_free(u->lock_probe);
        u->answer_probe = probe_free(u->answer_probe);
        u->lock_phase = SV_LOCK_IDLE;
    }
    u->watched_pid = 0;
    u->tree_pending = true;
    u->tree_ended_usec = now;
    u->tree_warned_usec = now;
    u->live_probe = probe_free(u->live_probe);
    u->live_next_usec = 0;
    u->live_fails = 0;
    u->frozen_since_usec = 0;
    /* A service's processes do not outlive its main process (systemd's control-group mode):
     * this reaches those in sessions of their own, which the group kill did not. */
    (void)sv__tree_kill(u, SIGKILL);
}

/* SIGKILL to every process of u: the main process's exit then ends the run as usual. */
static void fence(struct sv_unit *u, const char *why)
{
    int n = sv__tree_kill(u, SIGKILL);

    u->fenced = true; /* until this run ends: what dies now is the fence's doing */
    u->fences++;
    u->frozen_since_usec = 0;
    u->live_fails = 0;
    u->live_probe = probe_free(u->live_probe);
    if (n < 0)
        log_error_errno(n, "fencing service '%s' (%s) failed: cannot list its processes",
                        u->svc->name, why);
    else
        log_warning("fencing service '%s': %s; SIGKILL to its %d processes", u->svc->name, why, n);
}

/* ---- the lock ---- */

static void lock_request(struct sv_unit *u, struct probe_spec *spec, uint64_t now);

/* The holder of the key in a range answer: NULL when nobody holds it (borrowed from root). */
static const char *holder_b64(json_t *root)
{
    json_t *kv = json_array_get(json_object_get(root, "kvs"), 0);

    return kv ? json_string_value(json_object_get(kv, "value")) : NULL;
}

/* SV_LOCK_CHECK: fence when the key is still the service's and its main process did not
 * answer for the exit (not asked after a crash); wait while either is unknown. */
static void check_decide(struct sv_unit *u)
{
    const char *name = u->svc->name;

    if (u->check_key == SV_CHECK_PENDING ||
        (u->check_key == SV_CHECK_YES && u->check_answer == SV_CHECK_PENDING))
        return;
    u->answer_probe = probe_free(u->answer_probe);
    u->lock_phase = SV_LOCK_IDLE;
    if (u->check_key != SV_CHECK_YES) {
        log_info("service '%s': does not hold %s: not fenced", name, u->svc->lock.key);
        return;
    }
    if (u->check_answer == SV_CHECK_YES) {
        log_notice("service '%s': %s, but its main process answers its liveness probe: a stop "
                   "of its own (a demote or a restart); not fenced",
                   name, u->lock_why);
        if (u->svc->lock.handover_key && u->state == SV_STATE_RUNNING) {
            u->lock_phase = SV_LOCK_HANDOVER;
            lock_request(u, &u->lock_handover_get, now_usec());
        }
        return;
    }
    if (u->check_answer == SV_CHECK_NO) {
        size_t n = strlen(u->lock_why);

        (void)snprintf(u->lock_why + n, sizeof u->lock_why - n,
                       ", and its main process did not answer its liveness probe");
    }
    if (u->state == SV_STATE_RUNNING || u->state == SV_STATE_STOPPING)
        fence(u, u->lock_why);
}

static void answer_finish(struct sv_unit *u)
{
    u->check_answer = probe_result(u->answer_probe) == 0 ? SV_CHECK_YES : SV_CHECK_NO;
    u->answer_probe = probe_free(u->answer_probe);
    check_decide(u);
}

/* SV_LOCK_HANDOVER: the handover key's answer (r: the request's result).  Present, and
 * naming this service as the leader to leave (or no leader): the key goes now. */
static void handover_done(struct sv_unit *u, int r, uint64_t now)
{
    const struct sv_lock *l = &u->svc->lock;
    json_t *root = r == 0 ? json_loads(probe_detail(u->lock_probe), 0, NULL) : NULL;
    const char *b64 = holder_b64(root);
    char *text = b64 ? base64_text(b64) : NULL;
    json_t *val = text ? json_loads(text, 0, NULL) : NULL;
    const char *leader = json_string_value(json_object_get(val, "leader"));
    bool ours = text && (!leader || !leader[0] || streq(leader, l->value));

    if (r != 0)
        log_info("service '%s': cannot read %s (%s)", u->svc->name, l->handover_key,
                 probe_message(u->lock_probe));
    u->lock_probe = probe_free(u->lock_probe);
    u->lock_phase = SV_LOCK_IDLE;
    if (ours && u->state == SV_STATE_RUNNING) {
        log_info("service '%s': a planned handover is under way (%s = %s): releasing %s now",
                 u->svc->name, l->handover_key, text, l->key);
        u->lock_phase = SV_LOCK_HANDED;
        lock_request(u, &u->lock_del, now);
    }
    json_decref(val);
    json_decref(root);
    free(text);
}

static void lock_done(struct sv_unit *u, uint64_t now)
{
    const struct sv_lock *l = &u->svc->lock;
    int r = probe_result(u->lock_probe);
    char took[32];

    if (u->lock_phase == SV_LOCK_HANDOVER) {
        handover_done(u, r, now);
        return;
    }
    if (u->lock_phase == SV_LOCK_HANDED) {
        if (r == 0 && strstr(probe_detail(u->lock_probe), "\"succeeded\":true"))
            log_notice("service '%s': released its lock %s = '%s' in etcd for the handover",
                       u->svc->name, l->key, l->value);
        else
            log_info("service '%s': lock %s not released for the handover (%s)", u->svc->name,
                     l->key, r == 0 ? "it moved on" : probe_message(u->lock_probe));
        u->lock_probe = probe_free(u->lock_probe);
        u->lock_phase = SV_LOCK_IDLE;
        return;
    }
    if (u->lock_phase == SV_LOCK_CHECK) {
        json_t *root = r == 0 ? json_loads(probe_detail(u->lock_probe), 0, NULL) : NULL;
        const char *holder = holder_b64(root);

        u->check_key = holder && streq(holder, u->lock_value_b64) ? SV_CHECK_YES : SV_CHECK_NO;
        u->lock_probe = probe_free(u->lock_probe);
        json_decref(root);
        check_decide(u);
        return;
    }
    (void)format_duration(took, sizeof took, now - u->tree_ended_usec);
    if (u->lock_phase == SV_LOCK_RELEASE) {
        if (r == 0 && strstr(probe_detail(u->lock_probe), "\"succeeded\":true"))
            log_notice("service '%s': released its lock %s = '%s' in etcd, %s after its end",
                       u->svc->name, l->key, l->value, took);
        else if (r == 0)
            log_info("service '%s': lock %s is not held by '%s' any more, left alone", u->svc->name,
                     l->key, l->value);
        else
            log_warning("service '%s': cannot release lock %s (%s); it expires with its lease",
                        u->svc->name, l->key, probe_message(u->lock_probe));
        /* Start again only once another member holds the key: a node restarted at once would
         * join the leader race with its newer WAL and win it back (Patroni lets the former
         * leader race in synchronous mode), undoing the failover. */
        u->lock_phase = SV_LOCK_SUCCESSOR;
        u->lock_deadline_usec = now + LOCK_SUCCESSOR_USEC;
        u->lock_next_usec = now;
        u->lock_probe = probe_free(u->lock_probe);
        return;
    }
    if (r == 0) {
        json_t *root = json_loads(probe_detail(u->lock_probe), 0, NULL);
        const char *holder = holder_b64(root);

        if (holder && !streq(holder, u->lock_value_b64)) {
            log_info("service '%s': another member holds %s now (%s after its end); starting "
                     "it again",
                     u->svc->name, l->key, took);
            u->lock_phase = SV_LOCK_IDLE;
        }
        json_decref(root);
    }
    u->lock_probe = probe_free(u->lock_probe);
    if (u->lock_phase == SV_LOCK_SUCCESSOR && now >= u->lock_deadline_usec) {
        log_warning("service '%s': no other member took %s within %s of its end; starting it "
                    "anyway",
                    u->svc->name, l->key, took);
        u->lock_phase = SV_LOCK_IDLE;
    }
    u->lock_next_usec = now + LOCK_POLL_USEC;
}

static void lock_request(struct sv_unit *u, struct probe_spec *spec, uint64_t now)
{
    u->lock_probe = probe_start(spec, LOCK_TIMEOUT_USEC);
    if (!u->lock_probe) {
        log_warning("service '%s': cannot reach etcd for its lock (out of memory)", u->svc->name);
        u->lock_phase = SV_LOCK_IDLE;
        return;
    }
    if (probe_done(u->lock_probe))
        lock_done(u, now);
}

/* The tree is verified gone: release the lock, unless something still holds a port of the
 * service (a process our bookkeeping missed must never be left running as leader). */
static void lock_start(struct sv_unit *u, uint64_t now)
{
    const struct sv_service *svc = u->svc;

    for (size_t i = 0; i < svc->n_ports; i++) {
        int r = sv__port_free(svc->ports[i]);

        if (r == -EADDRINUSE) {
            log_error("service '%s': port %u is still in use although none of its processes "
                      "remains: not releasing its lock %s (it expires with its lease)",
                      svc->name, (unsigned)svc->ports[i], svc->lock.key);
            return;
        }
    }
    u->lock_phase = SV_LOCK_RELEASE;
    lock_request(u, &u->lock_del, now);
}

/* Successor checks, one at a time, every LOCK_POLL_USEC. */
static void lock_tick(struct sv_unit *u, uint64_t now, uint64_t *next)
{
    if (u->lock_phase != SV_LOCK_SUCCESSOR || u->lock_probe)
        return;
    if (now >= u->lock_next_usec)
        lock_request(u, &u->lock_get, now);
    if (u->lock_phase == SV_LOCK_SUCCESSOR && !u->lock_probe)
        min_deadline(next, u->lock_next_usec);
}

/* A dead run's processes: kill again what is left, or declare them gone. */
static void check_tree(struct sv_sup *sup, struct sv_unit *u, uint64_t now, uint64_t *next)
{
    char took[32];
    int r;

    r = sv__tree_refresh(u);
    if (r < 0) {
        log_error_errno(r, "service '%s': cannot list its processes; its lock is not released",
                        u->svc->name);
        u->tree_pending = false;
        return;
    }
    if (u->n_tree > 0) {
        for (size_t i = 0; i < u->n_tree; i++)
            (void)kill(u->tree[i].pid, SIGKILL);
        if (now >= u->tree_warned_usec + TREE_WARN_USEC) {
            log_warning("service '%s': %zu of its processes are still alive %s after SIGKILL "
                        "(pid %d in state %c); waiting before it starts again",
                        u->svc->name, u->n_tree,
                        format_duration(took, sizeof took, now - u->tree_ended_usec),
                        (int)u->tree[0].pid, u->tree[0].state);
            u->tree_warned_usec = now;
        }
        min_deadline(next, now + TREE_RECHECK_USEC);
        return;
    }
    u->tree_pending = false;
    log_info("service '%s': every process of its last run is gone (%s after its main process)",
             u->svc->name, format_duration(took, sizeof took, now - u->tree_ended_usec));
    if (u->svc->lock.present && !sup->shutting_down)
        lock_start(u, now);
}

void sv__fence_orphan_exited(struct sv_sup *sup, pid_t pid, int status, uint64_t now)
{
    char how[64];

    (void)sv_format_exit(how, sizeof how, status);
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

        if (pid <= 0 || u->watched_pid != pid)
            continue;
        u->watched_pid = 0;
        /* A stop we were asked for (`infractl restart`) counts too; a `down` does not. */
        if ((u->state != SV_STATE_RUNNING && u->state != SV_STATE_STOPPING) || u->pid <= 0 ||
            u->lock_phase != SV_LOCK_IDLE || u->fenced || sup->shutting_down) {
            log_debug("service '%s': its watched process %d ended (%s)", u->svc->name, (int)pid,
                      how);
            return;
        }
        /* Its database is down while it may hold the key.  Crashed (Patroni would restart it
         * in place, 2-3 s), or stopped by a graceful shutdown of Patroni (which releases the
         * key after a fixed 1 s sleep): a failover to the synchronous standby is faster, and
         * as safe, since the whole tree is killed and verified gone before the key is
         * released.  Stopped cleanly while Patroni still serves (a switchover's demote, a
         * restart): Patroni is doing its job, and a fence would turn a clean demote into a
         * restart and a pg_rewind. */
        (void)snprintf(u->lock_why, sizeof u->lock_why,
                       "its watched process %d ended (%s) while it holds %s", (int)pid, how,
                       u->svc->lock.key);
        log_info("service '%s': its watched process %d ended (%s); does it hold %s?", u->svc->name,
                 (int)pid, how, u->svc->lock.key);
        u->check_key = SV_CHECK_PENDING;
        u->check_answer = SV_CHECK_NOT_ASKED;
        if (clean && u->state == SV_STATE_RUNNING && u->svc->liveness.present) {
            u->answer_probe = probe_start(&u->svc->liveness.probe, ANSWER_USEC);
            u->check_answer = SV_CHECK_PENDING;
            if (!u->answer_probe)
                u->check_answer = SV_CHECK_NO;
            else if (probe_done(u->answer_probe))
                answer_finish(u);
        }
        u->lock_phase = SV_LOCK_CHECK;
        lock_request(u, &u->lock_get, now);
        return;
    }
    log_debug("reaped process %d (%s): not a service's main or watched process", (int)pid, how);
}

/* ---- watching a running service ---- */

static void live_finish(struct sv_unit *u, uint64_t now)
{
    const struct sv_check *lv = &u->svc->liveness;
    int r = probe_result(u->live_probe);
    char why[320];

    u->live_next_usec = u->live_started_usec + lv->interval_usec;
    if (u->live_next_usec <= now)
        u->live_next_usec = now + 1;
    if (r == 0 || now < u->started_usec + lv->start_period_usec) {
        u->live_fails = r == 0 ? 0 : u->live_fails;
        u->live_probe = probe_free(u->live_probe);
        return;
    }
    u->live_fails++;
    (void)snprintf(why, sizeof why, "liveness failed %u time(s) in a row (%s)", u->live_fails,
                   probe_message(u->live_probe));
    u->live_probe = probe_free(u->live_probe);
    if (u->live_fails >= (lv->retries > 0 ? lv->retries : 1))
        fence(u, why);
    else
        log_warning("service '%s': %s", u->svc->name, why);
}

/* The process lock.pidfile names (its first line) becomes the watched one once the last scan
 * found it among the service's processes; while the file is missing or names no member (the
 * postmaster removes it as it shuts down), the one known before stays watched as long as it
 * runs. */
static void watch_pidfile(struct sv_unit *u)
{
    struct buf b = BUF_INIT(4096);
    int64_t pid = 0;
    bool still = false;

    if (file_read_all(u->svc->lock.pidfile, &b) >= 0 && b.len > 0) {
        b.data[strcspn(b.data, "\n")] = '\0';
        if (parse_i64(b.data, &pid) < 0)
            pid = 0;
    }
    buf_release(&b);
    for (size_t i = 0; i < u->n_tree; i++) {
        if (pid > 0 && u->tree[i].pid == (pid_t)pid) {
            if (u->watched_pid != (pid_t)pid)
                log_debug("service '%s': watching process %d (%s)", u->svc->name, (int)pid,
                          u->svc->lock.pidfile);
            u->watched_pid = (pid_t)pid;
            return;
        }
        still = still || (u->watched_pid > 0 && u->tree[i].pid == u->watched_pid);
    }
    if (!still)
        u->watched_pid = 0;
}

static void watch(struct sv_unit *u, uint64_t now, uint64_t *next)
{
    const struct sv_service *svc = u->svc;

    /* Know a fenced service's processes before they lose their parents (sv_tree.c). */
    if (svc->lock.present) {
        if (now >= u->tree_scanned_usec + TREE_SCAN_USEC) {
            if (sv__tree_refresh(u) >= 0 && svc->lock.pidfile)
                watch_pidfile(u);
            u->tree_scanned_usec = now;
        }
        min_deadline(next, u->tree_scanned_usec + TREE_SCAN_USEC);
    }
    if (svc->freeze_after_usec > 0) {
        char st = sv__proc_state(u->pid);

        if (st == 'T' || st == 't') {
            char d[32], why[96];

            if (u->frozen_since_usec == 0)
                u->frozen_since_usec = now;
            if (now - u->frozen_since_usec >= svc->freeze_after_usec) {
                (void)snprintf(why, sizeof why, "its main process (pid %d) is stopped for %s",
                               (int)u->pid,
                               format_duration(d, sizeof d, now - u->frozen_since_usec));
                fence(u, why);
                return;
            }
        } else {
            u->frozen_since_usec = 0;
        }
        min_deadline(next, now + FREEZE_POLL_USEC);
    }
    if (!svc->liveness.present || u->live_probe)
        return;
    if (u->live_next_usec == 0)
        u->live_next_usec = now;
    if (now >= u->live_next_usec) {
        u->live_started_usec = now;
        u->live_probe = probe_start(&svc->liveness.probe, svc->liveness.timeout_usec);
        if (!u->live_probe)
            u->live_next_usec = now + svc->liveness.interval_usec;
        else if (probe_done(u->live_probe))
            live_finish(u, now);
    }
    if (!u->live_probe)
        min_deadline(next, u->live_next_usec);
}

uint64_t sv__fence_tick(struct sv_sup *sup, uint64_t now)
{
    uint64_t next = 0;

    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->tree_pending)
            check_tree(sup, u, now, &next);
        if (u->lock_probe && now >= probe_deadline(u->lock_probe) && probe_step(u->lock_probe, 0))
            lock_done(u, now);
        lock_tick(u, now, &next);
        if (u->live_probe && now >= probe_deadline(u->live_probe) && probe_step(u->live_probe, 0))
            live_finish(u, now);
        if (u->answer_probe && now >= probe_deadline(u->answer_probe) &&
            probe_step(u->answer_probe, 0))
            answer_finish(u);
        if (u->state == SV_STATE_RUNNING && u->pid > 0 && !sup->shutting_down) {
            watch(u, now, &next);
        } else {
            u->live_probe = probe_free(u->live_probe);
            u->live_next_usec = 0;
            u->frozen_since_usec = 0;
        }
        if (u->lock_probe)
            min_deadline(&next, probe_deadline(u->lock_probe));
        if (u->live_probe)
            min_deadline(&next, probe_deadline(u->live_probe));
        if (u->answer_probe)
            min_deadline(&next, probe_deadline(u->answer_probe));
    }
    return next;
}

void sv__fence_fds(struct sv_sup *sup,
                   void (*add)(void *ctx, int fd, short events, size_t idx, int which), void *ctx)
{
    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];

        if (u->live_probe && probe_fd(u->live_probe) >= 0)
            add(ctx, probe_fd(u->live_probe), probe_events(u->live_probe), i, 0);
        if (u->lock_probe && probe_fd(u->lock_probe) >= 0)
            add(ctx, probe_fd(u->lock_probe), probe_events(u->lock_probe), i, 1);
        if (u->answer_probe && probe_fd(u->answer_probe) >= 0)
            add(ctx, probe_fd(u->answer_probe), probe_events(u->answer_probe), i, 2);
    }
}

void sv__fence_step(struct sv_sup *sup, size_t idx, int which, int fd, short revents, uint64_t now)
{
    struct sv_unit *u = &sup->units[idx];
    struct probe *p = which == 0 ? u->live_probe : which == 1 ? u->lock_probe : u->answer_probe;

    if (!p || probe_fd(p) != fd || !probe_step(p, revents))
        return;
    if (which == 0)
        live_finish(u, now);
    else if (which == 1)
        lock_done(u, now);
    else
        answer_finish(u);
}
