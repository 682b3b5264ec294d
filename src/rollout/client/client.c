/* SPDX-License-Identifier: MIT */
/* client.c - librollout's client object: the atomically swapped snapshot with its read-side
 * reclamation (sleepable-RCU style, docs/flags.md section 8), status, metrics and the
 * evaluation conveniences. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_int.h"
#include "core/err.h"
#include "core/time.h"
#include "metrics/metrics.h"
#include "rollout/rollout_int.h"

/* ===== Read side ===== */

void rollout_client_read_begin(struct rollout_client *c, struct rollout_read *rd)
{
    unsigned slot = rollout__thread_slot() % ROLLOUT_RD_SLOTS;
    unsigned g = atomic_load(&c->gen) & 1;

    /* Sequentially consistent: the increment is ordered before the load of current, which
     * the writer's exchange-then-check relies on. */
    atomic_fetch_add(&c->readers[g][slot].n, 1);
    rd->snapshot = atomic_load(&c->current);
    rd->slot = g * ROLLOUT_RD_SLOTS + slot;
}

void rollout_client_read_end(struct rollout_client *c, struct rollout_read *rd)
{
    atomic_fetch_sub(&c->readers[rd->slot / ROLLOUT_RD_SLOTS][rd->slot % ROLLOUT_RD_SLOTS].n, 1);
    rd->snapshot = NULL;
}

/* ===== Write side ===== */

static void wait_readers(struct rollout_client *c, unsigned g)
{
    for (unsigned round = 0;; round++) {
        bool busy = false;

        for (unsigned i = 0; i < ROLLOUT_RD_SLOTS && !busy; i++)
            busy = atomic_load(&c->readers[g][i].n) != 0;
        if (!busy)
            return;
        /* Read sections are one evaluation long: yield first, then sleep a little more each
         * round (a preempted reader may need a time slice). */
        if (round < 64)
            (void)sched_yield();
        else
            sleep_usec(round < 1000 ? 10 : 1000);
    }
}

/* After it returns, no reader can still hold a pointer loaded before the caller's exchange. */
static void synchronize(struct rollout_client *c)
{
    unsigned g = atomic_load(&c->gen);

    /* Stragglers of the inactive generation: readers that read gen before the previous flip
     * but incremented after that flip's wait; they may hold the pointer we just replaced. */
    wait_readers(c, (g + 1) & 1);
    atomic_store(&c->gen, g + 1);
    wait_readers(c, g & 1);
}

static void export_counts(struct rollout_client *c, struct rollout_snapshot *s)
{
    pthread_mutex_lock(&c->export_lock);
    (void)rollout_snapshot_export_counts(s, c->evals);
    pthread_mutex_unlock(&c->export_lock);
}

void rollout_client_set_snapshot(struct rollout_client *c, struct rollout_snapshot *s)
{
    struct rollout_snapshot *old;

    pthread_mutex_lock(&c->write_lock);
    old = atomic_exchange(&c->current, s);
    synchronize(c);
    /* Still under write_lock, so status and gauge follow swaps in order. */
    pthread_mutex_lock(&c->status_lock);
    c->st.has_snapshot = s != NULL;
    c->st.version = s ? rollout_snapshot_version(s) : 0;
    c->st.updated_usec = now_usec();
    pthread_cond_broadcast(&c->status_cond);
    pthread_mutex_unlock(&c->status_lock);
    metrics_gauge_set(c->version_gauge, s ? (double)rollout_snapshot_version(s) : 0);
    pthread_mutex_unlock(&c->write_lock);
    if (old) {
        /* No reader sees old any more: its counts are final. */
        export_counts(c, old);
        rollout_snapshot_unref(old);
    }
}

void rollout__client_install(struct rollout_client *c, struct rollout_snapshot *s)
{
    rollout_client_set_snapshot(c, s);
}

uint64_t rollout__client_version(struct rollout_client *c, bool *ret_has)
{
    uint64_t v;

    pthread_mutex_lock(&c->status_lock);
    v = c->st.version;
    if (ret_has)
        *ret_has = c->st.has_snapshot;
    pthread_mutex_unlock(&c->status_lock);
    return v;
}

void rollout__client_set_connected(struct rollout_client *c, bool connected)
{
    pthread_mutex_lock(&c->status_lock);
    if (connected && !c->st.connected) {
        c->st.connects++;
        metrics_counter_add(c->connects_total, 1);
    }
    c->st.connected = connected;
    if (connected)
        c->st.last_error = 0;
    pthread_mutex_unlock(&c->status_lock);
    metrics_gauge_set(c->connected_gauge, connected ? 1 : 0);
}

void rollout__client_set_error(struct rollout_client *c, int r)
{
    pthread_mutex_lock(&c->status_lock);
    c->st.last_error = r;
    pthread_mutex_unlock(&c->status_lock);
}

void rollout_client_flush_metrics(struct rollout_client *c)
{
    struct rollout_snapshot *s;
    struct rollout_read rd;

    rollout_client_read_begin(c, &rd);
    /* The read section keeps current alive long enough to take a reference. */
    s = rollout_snapshot_ref((struct rollout_snapshot *)(uintptr_t)rd.snapshot);
    rollout_client_read_end(c, &rd);
    if (!s)
        return;
    export_counts(c, s);
    rollout_snapshot_unref(s);
}

/* ===== Lifecycle ===== */

static int dup_opt(const char *s, char **ret)
{
    *ret = NULL;
    if (!s)
        return 0;
    *ret = strdup(s);
    return *ret ? 0 : -ENOMEM;
}

static int register_metrics(struct rollout_client *c)
{
    static const char *const eval_labels[] = { "flag", "variant", NULL };
    struct metrics_family *f;
    int r;

    r = metrics_family_register(c->metrics, METRICS_COUNTER, "rollout_evaluations_total",
                                "Flag evaluations by resolved variant", eval_labels, NULL, 0,
                                &c->evals);
    if (r < 0)
        return r;
    r = metrics_family_register(c->metrics, METRICS_GAUGE, "rollout_snapshot_version",
                                "Version of the installed flag snapshot", NULL, NULL, 0, &f);
    if (r < 0)
        return r;
    c->version_gauge = metrics_series_get(f, NULL);
    r = metrics_family_register(c->metrics, METRICS_GAUGE, "rollout_client_connected",
                                "Whether the rolloutd stream is connected", NULL, NULL, 0, &f);
    if (r < 0)
        return r;
    c->connected_gauge = metrics_series_get(f, NULL);
    r = metrics_family_register(c->metrics, METRICS_COUNTER, "rollout_client_connects_total",
                                "Successful connections to the rolloutd stream", NULL, NULL, 0, &f);
    if (r < 0)
        return r;
    c->connects_total = metrics_series_get(f, NULL);
    if (!c->version_gauge || !c->connected_gauge || !c->connects_total)
        return -ENOMEM;
    return 0;
}

int rollout_client_new(const struct rollout_client_options *opts, struct rollout_client **ret,
                       struct err *reterr)
{
    struct rollout_snapshot *boot = NULL;
    struct rollout_client *c;
    pthread_condattr_t ca;
    int r;

    if (!opts || !opts->env || !rollout__env_name_valid(opts->env))
        return err_set(reterr, -EINVAL, 0, 0, "a valid environment name is required");
    if (opts->url && strncmp(opts->url, "http://", 7) != 0 &&
        strncmp(opts->url, "https://", 8) != 0)
        return err_set(reterr, -EINVAL, 0, 0, "url must start with http:// or https://");
    c = aligned_alloc(64, (sizeof *c + 63) / 64 * 64);
    if (!c)
        return -ENOMEM;
    memset(c, 0, sizeof *c);
    for (unsigned g = 0; g < 2; g++)
        for (unsigned i = 0; i < ROLLOUT_RD_SLOTS; i++)
            atomic_init(&c->readers[g][i].n, 0);
    atomic_init(&c->current, NULL);
    atomic_init(&c->gen, 0);
    atomic_init(&c->stop, false);
    pthread_mutex_init(&c->write_lock, NULL);
    pthread_mutex_init(&c->export_lock, NULL);
    pthread_mutex_init(&c->status_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->status_cond, &ca);
    pthread_condattr_destroy(&ca);

    c->backoff_min = opts->backoff_min_usec ? opts->backoff_min_usec : 100 * 1000;
    c->backoff_max = opts->backoff_max_usec ? opts->backoff_max_usec : 30 * 1000 * 1000;
    if (c->backoff_max < c->backoff_min)
        c->backoff_max = c->backoff_min;
    c->idle_timeout = opts->idle_timeout_usec ? opts->idle_timeout_usec : 45 * 1000 * 1000;
    c->connect_timeout = opts->connect_timeout_usec ? opts->connect_timeout_usec : 5 * 1000 * 1000;
    r = dup_opt(opts->url, &c->url);
    if (r >= 0)
        r = dup_opt(opts->env, &c->env);
    if (r >= 0)
        r = dup_opt(opts->token, &c->token);
    if (r >= 0)
        r = dup_opt(opts->backup_path, &c->backup_path);
    if (r < 0)
        goto fail;
    /* Strip trailing slashes so paths join cleanly. */
    while (c->url && strlen(c->url) > 8 && c->url[strlen(c->url) - 1] == '/')
        c->url[strlen(c->url) - 1] = '\0';

    c->metrics = opts->metrics;
    if (!c->metrics) {
        c->own_metrics = metrics_registry_new();
        if (!c->own_metrics) {
            r = -ENOMEM;
            goto fail;
        }
        c->metrics = c->own_metrics;
    }
    r = register_metrics(c);
    if (r < 0) {
        err_set(reterr, r, 0, 0, "cannot register metrics: %s", strerror(-r));
        goto fail;
    }
    r = rollout__client_http_init(c);
    if (r < 0)
        goto fail;

    if (opts->bootstrap_path && access(opts->bootstrap_path, F_OK) == 0) {
        r = rollout_snapshot_load(opts->bootstrap_path, &boot, reterr);
        if (r < 0)
            goto fail;
        if (strcmp(rollout_snapshot_env(boot), c->env) != 0) {
            r = err_set(reterr, -EINVAL, 0, 0, "bootstrap snapshot is for environment '%s'",
                        rollout_snapshot_env(boot));
            err_set_file(reterr, opts->bootstrap_path);
            boot = rollout_snapshot_unref(boot);
            goto fail;
        }
        rollout_client_set_snapshot(c, boot);
    }
    *ret = c;
    return 0;
fail:
    rollout_client_free(c);
    return r;
}

int rollout_client_start(struct rollout_client *c)
{
    int r;

    if (!c->url)
        return -EINVAL;
    if (c->started)
        return -EALREADY;
    r = -pthread_create(&c->thread, NULL, rollout__client_main, c);
    if (r < 0)
        return r;
    c->started = true;
    return 0;
}

struct rollout_client *rollout_client_free(struct rollout_client *c)
{
    struct rollout_snapshot *s;

    if (!c)
        return NULL;
    if (c->started) {
        atomic_store(&c->stop, true);
        rollout__client_wakeup(c);
        pthread_join(c->thread, NULL);
    }
    rollout__client_http_release(c);
    s = atomic_exchange(&c->current, NULL);
    if (s) {
        if (c->evals)
            (void)rollout_snapshot_export_counts(s, c->evals);
        rollout_snapshot_unref(s);
    }
    metrics_registry_free(c->own_metrics);
    pthread_cond_destroy(&c->status_cond);
    pthread_mutex_destroy(&c->status_lock);
    pthread_mutex_destroy(&c->export_lock);
    pthread_mutex_destroy(&c->write_lock);
    free(c->url);
    free(c->env);
    free(c->token);
    free(c->backup_path);
    free(c);
    return NULL;
}

int rollout_client_wait_version(struct rollout_client *c, uint64_t min_version,
                                uint64_t timeout_usec)
{
    uint64_t deadline = now_usec() + timeout_usec;
    struct timespec ts;
    int r = 0;

    ts.tv_sec = (time_t)(deadline / 1000000);
    ts.tv_nsec = (long)(deadline % 1000000) * 1000;
    pthread_mutex_lock(&c->status_lock);
    while (!(c->st.has_snapshot && c->st.version >= min_version)) {
        if (pthread_cond_timedwait(&c->status_cond, &c->status_lock, &ts) == ETIMEDOUT) {
            r = c->st.has_snapshot && c->st.version >= min_version ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&c->status_lock);
    return r;
}

void rollout_client_status(struct rollout_client *c, struct rollout_client_status *ret)
{
    pthread_mutex_lock(&c->status_lock);
    *ret = c->st;
    pthread_mutex_unlock(&c->status_lock);
}

struct metrics_registry *rollout_client_metrics(struct rollout_client *c)
{
    return c->metrics;
}

/* ===== Evaluation ===== */

int rollout_client_eval(struct rollout_client *c, const char *key, const struct rollout_ctx *ctx,
                        enum rollout_type want, const struct rollout_read *rd,
                        struct rollout_result *ret)
{
    struct rollout_read own;
    const struct rollout_snapshot *s;
    int r;

    if (!rd)
        rollout_client_read_begin(c, &own);
    s = rd ? rd->snapshot : own.snapshot;
    if (s) {
        r = rollout_eval(s, key, ctx, want, ret);
    } else {
        *ret = (struct rollout_result){ .reason = ROLLOUT_REASON_ERROR,
                                        .error = ROLLOUT_ERROR_PROVIDER_NOT_READY,
                                        .bucket = UINT32_MAX };
        r = -EAGAIN;
    }
    if (!rd) {
        ret->value = NULL;
        ret->variant = NULL;
        ret->shadow_value = NULL;
        ret->shadow_variant = NULL;
        rollout_client_read_end(c, &own);
    }
    return r;
}

bool rollout_client_bool(struct rollout_client *c, const char *key, const struct rollout_ctx *ctx,
                         bool def, bool *ret_shadow)
{
    struct rollout_result res;
    struct rollout_read rd;
    bool v = def;

    rollout_client_read_begin(c, &rd);
    if (rd.snapshot && rollout_eval(rd.snapshot, key, ctx, ROLLOUT_TYPE_BOOLEAN, &res) >= 0)
        v = res.value->b;
    else
        res.shadow = false;
    rollout_client_read_end(c, &rd);
    if (ret_shadow)
        *ret_shadow = res.shadow;
    return v;
}

double rollout_client_number(struct rollout_client *c, const char *key,
                             const struct rollout_ctx *ctx, double def, bool *ret_shadow)
{
    struct rollout_result res;
    struct rollout_read rd;
    double v = def;

    rollout_client_read_begin(c, &rd);
    if (rd.snapshot && rollout_eval(rd.snapshot, key, ctx, ROLLOUT_TYPE_NUMBER, &res) >= 0)
        v = res.value->n;
    else
        res.shadow = false;
    rollout_client_read_end(c, &rd);
    if (ret_shadow)
        *ret_shadow = res.shadow;
    return v;
}

const char *rollout_client_variant(struct rollout_client *c, const char *key,
                                   const struct rollout_ctx *ctx, char *buf, size_t n,
                                   const char *def, bool *ret_shadow)
{
    struct rollout_result res;
    struct rollout_read rd;
    const char *v = def;

    rollout_client_read_begin(c, &rd);
    if (rd.snapshot && n && rollout_eval(rd.snapshot, key, ctx, ROLLOUT_TYPE_ANY, &res) >= 0) {
        size_t len = strlen(res.variant);

        if (len >= n)
            len = n - 1;
        memcpy(buf, res.variant, len);
        buf[len] = '\0';
        v = buf;
    } else {
        res.shadow = false;
    }
    rollout_client_read_end(c, &rd);
    if (ret_shadow)
        *ret_shadow = res.shadow;
    return v;
}
