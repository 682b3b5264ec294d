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
 *    as leader.  The release above follows, as after any other end.
 * A supervisor that dies with its host releases nothing: the lease expires as usual. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
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
}

void sv__fence_release(struct sv_unit *u)
{
    free(u->tree);
    u->tree = NULL;
    u->n_tree = 0;
    u->lock_probe = probe_free(u->lock_probe);
    u->live_probe = probe_free(u->live_probe);
    probe_spec_release(&u->lock_del);
    probe_spec_release(&u->lock_get);
    free(u->lock_value_b64);
    u->lock_value_b64 = NULL;
}

bool sv__fence_busy(const struct sv_unit *u, void *userdata)
{
    (void)userdata;
    return u->tree_pending || (u->lock_phase != SV_LOCK_IDLE && u->lock_phase != SV_LOCK_CHECK);
}

void sv__fence_run_ended(struct sv_sup *sup, struct sv_unit *u, uint64_t now)
{
    (void)sup;
    u->fenced = false;
    if (u->lock_phase == SV_LOCK_CHECK) { /* the run ended before etcd answered: moot */
        u->lock_probe = probe_free(u->lock_probe);
        u->lock_phase = SV_LOCK_IDLE;
    }
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

static void lock_done(struct sv_unit *u, uint64_t now)
{
    const struct sv_lock *l = &u->svc->lock;
    int r = probe_result(u->lock_probe);
    char took[32];

    if (u->lock_phase == SV_LOCK_CHECK) {
        json_t *root = r == 0 ? json_loads(probe_detail(u->lock_probe), 0, NULL) : NULL;
        const char *holder = holder_b64(root);
        bool ours = holder && streq(holder, u->lock_value_b64);

        u->lock_probe = probe_free(u->lock_probe);
        u->lock_phase = SV_LOCK_IDLE;
        if (ours && (u->state == SV_STATE_RUNNING || u->state == SV_STATE_STOPPING))
            fence(u, u->lock_why);
        json_decref(root);
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

void sv__fence_orphan_exited(struct sv_sup *sup, pid_t pid, uint64_t now)
{
    pid_t self = getpid();

    for (size_t i = 0; i < sup->n_units; i++) {
        struct sv_unit *u = &sup->units[i];
        bool left_to_us = false;

        /* A stop we were asked for (`infractl restart`) counts too; a `down` does not. */
        if (!u->svc->lock.present ||
            (u->state != SV_STATE_RUNNING && u->state != SV_STATE_STOPPING) || u->pid <= 0 ||
            u->lock_phase != SV_LOCK_IDLE || u->fenced || sup->shutting_down)
            continue;
        for (size_t k = 0; k < u->n_tree && !left_to_us; k++)
            left_to_us = u->tree[k].pid == pid && u->tree[k].ppid == self;
        if (!left_to_us)
            continue;
        /* Its database is down while it may hold the key: crashed (Patroni would restart it in
         * place, 2-3 s) or stopped by a graceful shutdown (Patroni releases the key after a
         * fixed 1 s sleep).  A failover to the synchronous standby is faster, and as safe:
         * the whole tree is killed and verified gone before the key is released. */
        (void)snprintf(u->lock_why, sizeof u->lock_why,
                       "process %d, which it left to us, exited while it holds %s", (int)pid,
                       u->svc->lock.key);
        log_info("service '%s': process %d (left to us) exited; does it hold %s?", u->svc->name,
                 (int)pid, u->svc->lock.key);
        u->lock_phase = SV_LOCK_CHECK;
        lock_request(u, &u->lock_get, now);
        return;
    }
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

static void watch(struct sv_unit *u, uint64_t now, uint64_t *next)
{
    const struct sv_service *svc = u->svc;

    /* Know a fenced service's processes before they lose their parents (sv_tree.c). */
    if (svc->lock.present) {
        if (now >= u->tree_scanned_usec + TREE_SCAN_USEC) {
            (void)sv__tree_refresh(u);
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
    }
}

void sv__fence_step(struct sv_sup *sup, size_t idx, int which, int fd, short revents, uint64_t now)
{
    struct sv_unit *u = &sup->units[idx];
    struct probe *p = which == 0 ? u->live_probe : u->lock_probe;

    if (!p || probe_fd(p) != fd || !probe_step(p, revents))
        return;
    if (which == 0)
        live_finish(u, now);
    else
        lock_done(u, now);
}
