/* SPDX-License-Identifier: MIT */
/* state.c - the in-memory model (flags, segments, tokens) mirrored from the store, the change
 * path (validate, commit, apply, publish) and the per-environment published snapshots. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "rolloutd.h"
#include "store.h"

static const enum store_kind kind_store[2] = { STORE_FLAG, STORE_SEGMENT };

/* ===== Items ===== */

static void item_release(struct rd_item *it)
{
    free(it->key);
    free(it->json);
    it->flag = rollout_flag_unref(it->flag);
    it->segment = rollout_segment_unref(it->segment);
}

static void items_clear(struct rd *rd)
{
    for (unsigned k = 0; k < 2; k++) {
        for (size_t i = 0; i < rd->n_items[k]; i++)
            item_release(&rd->items[k][i]);
        free(rd->items[k]);
        rd->items[k] = NULL;
        rd->n_items[k] = 0;
    }
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rd_item *)a)->key, ((const struct rd_item *)b)->key);
}

struct rd_item *rd_item_find(struct rd *rd, enum rd_kind kind, const char *key)
{
    struct rd_item probe = { .key = (char *)(uintptr_t)key };

    if (!rd->n_items[kind])
        return NULL;
    return bsearch(&probe, rd->items[kind], rd->n_items[kind], sizeof probe, item_cmp);
}

static void tokens_clear(struct auth_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        auth_token_release(&t[i]);
    free(t);
}

/* ===== Environments ===== */

struct rd_env *rd_env_find(struct rd *rd, const char *name)
{
    for (size_t i = 0; i < rd->n_envs; i++)
        if (streq(rd->envs[i].name, name))
            return &rd->envs[i];
    return NULL;
}

bool rd_env_known(struct rd *rd, const char *name)
{
    return rd_env_find(rd, name) != NULL;
}

static void env_state_free(struct rd_env_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < RD_EVAL_CACHE_SIZE; i++)
        free(atomic_load_explicit(&st->cache[i], memory_order_relaxed));
    (void)pthread_mutex_destroy(&st->cache_lock);
    rollout_snapshot_unref(st->snap);
    free(st->snap_json);
    free(st);
}

struct rd_env_state *rd_env_acquire(struct rd *rd, const char *env)
{
    struct rd_env *e = rd_env_find(rd, env);
    struct rd_env_state *st;

    if (!e)
        return NULL;
    (void)pthread_mutex_lock(&e->lock);
    st = e->cur;
    if (st)
        atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    (void)pthread_mutex_unlock(&e->lock);
    return st;
}

void rd_env_release(struct rd_env_state *st)
{
    if (st && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
        env_state_free(st);
}

char *rd_snapshot_event(const struct rd_env_state *st, size_t *ret_len)
{
    struct buf b = BUF_INIT(0);

    if (buf_appendf(&b, "event: snapshot\nid: %" PRIu64 "\ndata: ", st->revision) < 0 ||
        buf_append(&b, st->snap_json, st->snap_len) < 0 || buf_puts(&b, "\n\n") < 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, ret_len);
}

/* Collects the model's flags and segments as arrays for rollout_snapshot_build(), optionally
 * with one item replaced/added/removed (the change being validated). */
struct model_view {
    struct rollout_flag **flags;
    size_t n_flags;
    struct rollout_segment **segments;
    size_t n_segments;
};

static void view_release(struct model_view *v)
{
    free(v->flags);
    free(v->segments);
}

static int view_build(struct rd *rd, const struct rd_change *c, struct model_view *v)
{
    *v = (struct model_view){ 0 };
    v->flags = calloc(rd->n_items[RD_FLAGS] + 1, sizeof *v->flags);
    v->segments = calloc(rd->n_items[RD_SEGMENTS] + 1, sizeof *v->segments);
    if (!v->flags || !v->segments) {
        view_release(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < rd->n_items[RD_FLAGS]; i++) {
        struct rd_item *it = &rd->items[RD_FLAGS][i];
        if (c && c->kind == RD_FLAGS && streq(c->key, it->key))
            continue;
        v->flags[v->n_flags++] = it->flag;
    }
    for (size_t i = 0; i < rd->n_items[RD_SEGMENTS]; i++) {
        struct rd_item *it = &rd->items[RD_SEGMENTS][i];
        if (c && c->kind == RD_SEGMENTS && streq(c->key, it->key))
            continue;
        v->segments[v->n_segments++] = it->segment;
    }
    if (c && c->kind == RD_FLAGS && c->flag)
        v->flags[v->n_flags++] = c->flag;
    if (c && c->kind == RD_SEGMENTS && c->segment)
        v->segments[v->n_segments++] = c->segment;
    return 0;
}

static int env_state_build(struct rd *rd, struct rd_env *env, const struct model_view *v,
                           struct rd_env_state **ret, struct err *e)
{
    struct rd_env_state *st = calloc(1, sizeof *st);
    struct buf b = BUF_INIT(ROLLOUT_SNAPSHOT_MAX);
    int r;

    if (!st)
        return -ENOMEM;
    atomic_init(&st->refs, 1);
    (void)pthread_mutex_init(&st->cache_lock, NULL);
    st->env = env->name;
    st->revision = rd->revision;
    r = rollout_snapshot_build(env->name, rd->revision ? rd->revision : 1, v->flags, v->n_flags,
                               v->segments, v->n_segments, &st->snap, e);
    if (r < 0)
        goto fail;
    r = rollout_snapshot_serialize(st->snap, &b);
    if (r < 0)
        goto fail;
    st->snap_json = buf_detach(&b, &st->snap_len);
    (void)snprintf(st->etag, sizeof st->etag, "\"%" PRIu64 "\"", rd->revision);
    *ret = st;
    return 0;
fail:
    buf_release(&b);
    env_state_free(st);
    return r;
}

int rd_publish(struct rd *rd)
{
    struct model_view v;
    int r, ret = 0;

    r = view_build(rd, NULL, &v);
    if (r < 0)
        return r;
    for (size_t i = 0; i < rd->n_envs; i++) {
        struct rd_env *env = &rd->envs[i];
        struct rd_env_state *st = NULL, *old;
        struct err e = ERR_INIT;
        char *ev;
        size_t n;

        r = env_state_build(rd, env, &v, &st, &e);
        if (r < 0) {
            /* The model was validated before commit; a failure here means another replica wrote
             * something this one cannot serve.  Keep serving the previous state. */
            log_error("cannot publish environment '%s' at revision %" PRIu64 ": %s", env->name,
                      rd->revision, e.msg[0] ? e.msg : strerror(-r));
            ret = r;
            continue;
        }
        (void)pthread_mutex_lock(&env->lock);
        old = env->cur;
        env->cur = st;
        (void)pthread_mutex_unlock(&env->lock);
        rd_env_release(old);
        if (rd->http) {
            ev = rd_snapshot_event(st, &n);
            if (ev)
                (void)http_sse_broadcast(rd->http, env->name, ev, n);
            free(ev);
        }
    }
    view_release(&v);
    if (rd->m_revision) {
        struct metrics_series *s = metrics_series_get(rd->m_revision, NULL);
        if (s)
            metrics_gauge_set(s, (double)rd->revision);
    }
    return ret;
}

/* ===== Evaluation counters ===== */

static size_t eval_hash(const char *key, const char *variant, enum rollout_reason reason)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h ^= (uintptr_t)variant;
    h = (h ^ (uint64_t)reason) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

static bool eval_entry_is(const struct rd_eval_entry *en, const char *key, const char *variant,
                          enum rollout_reason reason)
{
    return en->variant == variant && en->reason == reason && streq(en->key, key);
}

void rd_count_eval(struct rd *rd, struct rd_env_state *st, const char *key,
                   const struct rollout_result *res)
{
    struct metrics_series *series = NULL;
    size_t h, i;

    if (res->reason == ROLLOUT_REASON_ERROR || !res->variant) {
        const char *labels[] = { st->env, rollout_error_name(res->error), NULL };
        struct metrics_series *s;

        if (!labels[1])
            labels[1] = "GENERAL";
        s = metrics_series_get(rd->m_eval_errors, labels);
        if (s)
            metrics_counter_add(s, 1);
        return;
    }
    /* Lock-free lookup; entries are immutable once published. */
    h = eval_hash(key, res->variant, res->reason);
    for (i = 0; i < 8; i++) {
        struct rd_eval_entry *en = atomic_load_explicit(&st->cache[(h + i) % RD_EVAL_CACHE_SIZE],
                                                        memory_order_acquire);
        if (!en)
            break;
        if (eval_entry_is(en, key, res->variant, res->reason)) {
            metrics_counter_add(en->series, 1);
            return;
        }
    }
    {
        const char *labels[] = { st->env, key, res->variant, rollout_reason_name(res->reason),
                                 NULL };
        series = metrics_series_get(rd->m_evals, labels);
    }
    if (!series)
        return;
    metrics_counter_add(series, 1);
    (void)pthread_mutex_lock(&st->cache_lock);
    for (i = 0; i < 8; i++) {
        _Atomic(struct rd_eval_entry *) *slot = &st->cache[(h + i) % RD_EVAL_CACHE_SIZE];
        struct rd_eval_entry *en = atomic_load_explicit(slot, memory_order_relaxed);
        size_t klen = strlen(key) + 1;

        if (en && eval_entry_is(en, key, res->variant, res->reason))
            break;
        if (en)
            continue;
        en = malloc(sizeof *en + klen);
        if (!en)
            break;
        en->variant = res->variant;
        en->reason = res->reason;
        en->series = series;
        memcpy(en->key, key, klen);
        atomic_store_explicit(slot, en, memory_order_release);
        break;
    }
    (void)pthread_mutex_unlock(&st->cache_lock);
}

/* ===== Loading ===== */

static int item_from_row(enum rd_kind kind, const struct store_row *row, struct rd_item *it,
                         struct err *e)
{
    int r;

    *it = (struct rd_item){ 0 };
    if (kind == RD_FLAGS)
        r = rollout_flag_parse(row->json, strlen(row->json), &it->flag, e);
    else
        r = rollout_segment_parse(row->json, strlen(row->json), &it->segment, e);
    if (r < 0)
        return r;
    it->key = xstrdup(row->key);
    it->json = xstrdup(row->json);
    it->version = row->version;
    return 0;
}

int rd_reload(struct rd *rd, struct err *e)
{
    struct store_data d = { 0 };
    struct rd_item *items[2] = { NULL, NULL };
    size_t n_items[2] = { 0, 0 };
    struct auth_token *tokens = NULL;
    size_t n_tokens = 0;
    int r;

    r = store_load(rd->store, &d, e);
    if (r < 0)
        return r;
    for (unsigned k = 0; k < 2; k++) {
        enum store_kind sk = kind_store[k];
        items[k] = xcalloc(d.n_rows[sk] + 1, sizeof *items[k]);
        for (size_t i = 0; i < d.n_rows[sk]; i++) {
            struct err pe = ERR_INIT;
            r = item_from_row((enum rd_kind)k, &d.rows[sk][i], &items[k][n_items[k]], &pe);
            if (r < 0) {
                /* A row this version cannot parse (written by a newer rolloutd?): skip it
                 * rather than serve nothing. */
                log_error("ignoring stored %s '%s': %s", store_kind_name(sk), d.rows[sk][i].key,
                          pe.msg);
                continue;
            }
            n_items[k]++;
        }
        qsort(items[k], n_items[k], sizeof *items[k], item_cmp);
    }
    tokens = xcalloc(d.n_rows[STORE_TOKEN] + 1, sizeof *tokens);
    for (size_t i = 0; i < d.n_rows[STORE_TOKEN]; i++) {
        if (auth_token_from_json(d.rows[STORE_TOKEN][i].json, &tokens[n_tokens]) < 0) {
            log_error("ignoring stored token '%s': unreadable", d.rows[STORE_TOKEN][i].key);
            continue;
        }
        n_tokens++;
    }

    items_clear(rd);
    for (unsigned k = 0; k < 2; k++) {
        rd->items[k] = items[k];
        rd->n_items[k] = n_items[k];
    }
    (void)pthread_rwlock_wrlock(&rd->tokens_lock);
    tokens_clear(rd->tokens, rd->n_tokens);
    rd->tokens = tokens;
    rd->n_tokens = n_tokens;
    (void)pthread_rwlock_unlock(&rd->tokens_lock);
    rd->revision = d.revision;
    store_data_release(&d);
    return rd_publish(rd);
}

int rd_sync(struct rd *rd, struct err *e)
{
    uint64_t rev;
    int r;

    (void)pthread_mutex_lock(&rd->lock);
    r = store_revision(rd->store, &rev, e);
    if (r >= 0 && rev != rd->revision) {
        log_info("store revision %" PRIu64 " (have %" PRIu64 "): reloading", rev, rd->revision);
        r = rd_reload(rd, e);
        if (r >= 0)
            r = 1;
    }
    (void)pthread_mutex_unlock(&rd->lock);
    return r;
}

/* ===== Changes ===== */

static void count_store_error(struct rd *rd, const char *op)
{
    const char *labels[] = { op, NULL };
    struct metrics_series *s = metrics_series_get(rd->m_store_errors, labels);

    if (s)
        metrics_counter_add(s, 1);
}

static void count_change(struct rd *rd, const char *kind, const char *action)
{
    const char *labels[] = { kind, action, NULL };
    struct metrics_series *s = metrics_series_get(rd->m_changes, labels);

    if (s)
        metrics_counter_add(s, 1);
}

/* After a commit at revision rev: apply c to the model when nothing else happened in between,
 * otherwise (another replica committed too) reload everything. */
static int apply_change(struct rd *rd, struct rd_change *c, uint64_t rev, struct err *e)
{
    struct rd_item *it;
    enum rd_kind k = c->kind;

    if (rev != rd->revision + 1) {
        c->flag = rollout_flag_unref(c->flag);
        c->segment = rollout_segment_unref(c->segment);
        return rd_reload(rd, e);
    }
    rd->revision = rev;
    it = rd_item_find(rd, k, c->key);
    if (!c->json) {
        if (it) {
            size_t idx = (size_t)(it - rd->items[k]);
            item_release(it);
            memmove(it, it + 1, (rd->n_items[k] - idx - 1) * sizeof *it);
            rd->n_items[k]--;
        }
    } else if (it) {
        free(it->json);
        it->json = xstrdup(c->json);
        it->version = c->version;
        rollout_flag_unref(it->flag);
        rollout_segment_unref(it->segment);
        it->flag = c->flag;
        it->segment = c->segment;
    } else {
        rd->items[k] = xrealloc(rd->items[k], (rd->n_items[k] + 1) * sizeof *rd->items[k]);
        rd->items[k][rd->n_items[k]++] = (struct rd_item){ .key = xstrdup(c->key),
                                                           .version = c->version,
                                                           .json = xstrdup(c->json),
                                                           .flag = c->flag,
                                                           .segment = c->segment };
        qsort(rd->items[k], rd->n_items[k], sizeof *rd->items[k], item_cmp);
    }
    c->flag = NULL;
    c->segment = NULL;
    return rd_publish(rd);
}

int rd_commit(struct rd *rd, struct rd_change *c, struct err *e)
{
    struct rd_item *cur = rd_item_find(rd, c->kind, c->key);
    struct model_view v;
    struct rollout_snapshot *check = NULL;
    struct store_change sc;
    uint64_t rev = 0;
    int r;

    /* The model with the change must still build: no rule may name a missing segment. */
    r = view_build(rd, c, &v);
    if (r < 0)
        goto out;
    r = rollout_snapshot_build(rd->env_names[0], rd->revision + 1, v.flags, v.n_flags, v.segments,
                               v.n_segments, &check, e);
    view_release(&v);
    rollout_snapshot_unref(check);
    if (r < 0)
        goto out;

    sc = (struct store_change){ .kind = kind_store[c->kind],
                                .key = c->key,
                                .expect_version = c->expect_version,
                                .json = c->json,
                                .version = c->version,
                                .actor = c->actor,
                                .action = c->action,
                                .audit_before = cur ? cur->json : NULL,
                                .audit_after = c->json,
                                .reason = c->reason };
    r = store_commit(rd->store, &sc, &rev, e);
    if (r < 0) {
        if (r != -ESTALE && r != -ENOENT && r != -EEXIST)
            count_store_error(rd, "commit");
        goto out;
    }
    count_change(rd, store_kind_name(sc.kind), c->action);
    r = apply_change(rd, c, rev, e);
    if (r < 0) {
        /* Committed (durable) but the model could not be refreshed: report it, keep serving. */
        log_error("change to %s '%s' committed at revision %" PRIu64 " but not applied: %s",
                  store_kind_name(sc.kind), c->key, rev, e && e->msg[0] ? e->msg : strerror(-r));
        r = 0;
    }
out:
    c->flag = rollout_flag_unref(c->flag);
    c->segment = rollout_segment_unref(c->segment);
    return r;
}

/* ===== Tokens ===== */

static int token_commit(struct rd *rd, const char *id, const char *json, uint64_t expect,
                        const char *actor, const char *action, const char *before,
                        const char *after, struct err *e)
{
    struct store_change sc = { .kind = STORE_TOKEN,
                               .key = id,
                               .expect_version = expect,
                               .json = json,
                               .version = 1,
                               .actor = actor,
                               .action = action,
                               .audit_before = before,
                               .audit_after = after };
    uint64_t rev;
    int r = store_commit(rd->store, &sc, &rev, e);

    if (r < 0) {
        count_store_error(rd, "commit");
        return r;
    }
    count_change(rd, "token", action);
    /* Token changes do not change snapshots, but they move the store revision. */
    if (rev != rd->revision + 1)
        return rd_reload(rd, e);
    rd->revision = rev;
    return 1;
}

int rd_token_add(struct rd *rd, struct auth_token *t, const char *actor, struct err *e)
{
    char *stored = auth_token_to_json(t, true), *pub = auth_token_to_json(t, false);
    int r = -ENOMEM;

    if (!stored || !pub)
        goto out;
    r = token_commit(rd, t->id, stored, 0, actor, "create", NULL, pub, e);
    if (r == 1) {
        (void)pthread_rwlock_wrlock(&rd->tokens_lock);
        rd->tokens = xrealloc(rd->tokens, (rd->n_tokens + 1) * sizeof *rd->tokens);
        rd->tokens[rd->n_tokens++] = *t;
        (void)pthread_rwlock_unlock(&rd->tokens_lock);
        *t = (struct auth_token){ 0 };
        r = 0;
    }
out:
    free(stored);
    free(pub);
    return r;
}

int rd_token_delete(struct rd *rd, const char *id, const char *actor, struct err *e)
{
    struct auth_token *t = NULL;
    char *pub = NULL;
    size_t admins = 0;
    int r;

    for (size_t i = 0; i < rd->n_tokens; i++) {
        if (rd->tokens[i].scope == AUTH_SCOPE_ADMIN)
            admins++;
        if (streq(rd->tokens[i].id, id))
            t = &rd->tokens[i];
    }
    if (!t)
        return -ENOENT;
    if (t->scope == AUTH_SCOPE_ADMIN && admins == 1)
        return err_set(e, -EEXIST, 0, 0, "refusing to delete the last admin token");
    pub = auth_token_to_json(t, false);
    if (!pub)
        return -ENOMEM;
    r = token_commit(rd, id, NULL, 1, actor, "delete", pub, NULL, e);
    free(pub);
    if (r == 1) {
        (void)pthread_rwlock_wrlock(&rd->tokens_lock);
        for (size_t i = 0; i < rd->n_tokens; i++) {
            if (!streq(rd->tokens[i].id, id))
                continue;
            auth_token_release(&rd->tokens[i]);
            memmove(&rd->tokens[i], &rd->tokens[i + 1],
                    (rd->n_tokens - i - 1) * sizeof *rd->tokens);
            rd->n_tokens--;
            break;
        }
        (void)pthread_rwlock_unlock(&rd->tokens_lock);
        r = 0;
    }
    return r;
}

int rd_bootstrap_admin(struct rd *rd, struct err *e)
{
    struct auth_token t = { 0 };
    char secret[AUTH_TOKEN_LEN + 1], id[17], *path = NULL, *line = NULL;
    int r;

    for (size_t i = 0; i < rd->n_tokens; i++)
        if (rd->tokens[i].scope == AUTH_SCOPE_ADMIN)
            return 0;
    r = auth_token_generate(secret, id);
    if (r < 0)
        return err_set(e, r, 0, 0, "getrandom() failed: %s", strerror(-r));
    t.id = xstrdup(id);
    t.name = xstrdup("bootstrap-admin");
    t.env = xstrdup("*");
    t.scope = AUTH_SCOPE_ADMIN;
    t.created_usec = now_realtime_usec();
    auth_sha256(secret, strlen(secret), t.hash);
    /* The file first: a token in the store that nobody can read would lock everyone out. */
    path = xasprintf("%s/admin.token", rd->state_dir);
    line = xasprintf("%s\n", secret);
    r = file_write_atomic(path, line, strlen(line), 0600);
    if (r < 0) {
        err_set(e, r, 0, 0, "cannot write '%s': %s", path, strerror(-r));
        goto out;
    }
    r = rd_token_add(rd, &t, "rolloutd", e);
    if (r < 0)
        goto out;
    log_notice("created an admin token (id %s); it is in %s (mode 0600)", id, path);
out:
    explicit_bzero(secret, sizeof secret);
    if (line)
        explicit_bzero(line, strlen(line));
    auth_token_release(&t);
    free(path);
    free(line);
    return r;
}

/* ===== Init ===== */

int rd_init(struct rd *rd, struct err *e)
{
    static const char *const eval_labels[] = { "env", "flag", "variant", "reason", NULL };
    static const char *const err_labels[] = { "env", "code", NULL };
    static const char *const op_labels[] = { "op", NULL };
    static const char *const change_labels[] = { "kind", "action", NULL };
    int r;

    (void)pthread_mutex_init(&rd->lock, NULL);
    (void)pthread_rwlock_init(&rd->tokens_lock, NULL);
    rd->envs = xcalloc(rd->n_envs, sizeof *rd->envs);
    for (size_t i = 0; i < rd->n_envs; i++) {
        rd->envs[i].name = rd->env_names[i];
        (void)pthread_mutex_init(&rd->envs[i].lock, NULL);
    }
    rd->metrics = metrics_registry_new();
    if (!rd->metrics)
        return -ENOMEM;
    r = metrics_family_register(rd->metrics, METRICS_COUNTER, "rolloutd_evaluations_total",
                                "Flag evaluations served, by environment, flag, variant and "
                                "reason.",
                                eval_labels, NULL, 0, &rd->m_evals);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_COUNTER,
                                    "rolloutd_evaluation_errors_total",
                                    "Evaluations that ended in an OpenFeature error, by code.",
                                    err_labels, NULL, 0, &rd->m_eval_errors);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_COUNTER, "rolloutd_store_errors_total",
                                    "Store operations that failed, by operation.", op_labels, NULL,
                                    0, &rd->m_store_errors);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_COUNTER, "rolloutd_changes_total",
                                    "Committed changes, by kind and action.", change_labels, NULL,
                                    0, &rd->m_changes);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_GAUGE, "rolloutd_store_revision",
                                    "The store revision this replica serves.", NULL, NULL, 0,
                                    &rd->m_revision);
    if (r >= 0)
        r = metrics_family_register(rd->metrics, METRICS_GAUGE, "rolloutd_sse_streams",
                                    "Open snapshot streams (all environments).", NULL, NULL, 0,
                                    &rd->m_streams);
    if (r < 0)
        return err_set(e, r, 0, 0, "cannot register metrics: %s", strerror(-r));
    {
        /* Make the store error series visible at 0 so alerts can use rate(). */
        const char *ops[] = { "commit", "load", "history", "notify" };
        for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
            const char *labels[] = { ops[i], NULL };
            (void)metrics_series_get(rd->m_store_errors, labels);
        }
    }
    return 0;
}

void rd_release(struct rd *rd)
{
    items_clear(rd);
    tokens_clear(rd->tokens, rd->n_tokens);
    rd->tokens = NULL;
    rd->n_tokens = 0;
    for (size_t i = 0; rd->envs && i < rd->n_envs; i++) {
        rd_env_release(rd->envs[i].cur);
        (void)pthread_mutex_destroy(&rd->envs[i].lock);
    }
    free(rd->envs);
    rd->envs = NULL;
    rd->metrics = metrics_registry_free(rd->metrics);
    (void)pthread_rwlock_destroy(&rd->tokens_lock);
    (void)pthread_mutex_destroy(&rd->lock);
}
