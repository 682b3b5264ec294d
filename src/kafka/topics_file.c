/* SPDX-License-Identifier: MIT */
/* topics_file.c - the topics file: YAML (src/cfg) to kfk_topic_spec for one profile, and the
 * disk fit check. */
#include "topics_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/str.h"

#define MAX_TOPICS                  1000u
#define MAX_CONFIGS                 64u
#define MAX_BROKERS                 1000u
#define MAX_PARTITIONS              10000u
#define KAFKA_DEFAULT_SEGMENT_BYTES (1ULL << 30)

/* An ordered key -> value list where a later set of a key replaces its value. */
struct kv_list {
    const char *key[MAX_CONFIGS], *value[MAX_CONFIGS];
    size_t n;
};

struct parse {
    const struct cfg_ctx *c;
    struct kfk_topics_file *f;
    size_t cap_owned, n_owned;
    void **owned; /* what the specs point to: strings, config arrays; handed to f at the end */
};

/* Keeps the allocation ptr for the file's lifetime and returns it. */
static void *own(struct parse *p, void *ptr)
{
    if (p->n_owned == p->cap_owned) {
        p->cap_owned = p->cap_owned ? 2 * p->cap_owned : 64;
        p->owned = xrealloc(p->owned, p->cap_owned * sizeof *p->owned);
    }
    return p->owned[p->n_owned++] = ptr;
}

static const char *keep(struct parse *p, const char *s)
{
    return own(p, xstrdup(s));
}

/* Kafka config keys and topic names: letters, digits, '.', '_', '-' (Kafka's topic rule). */
static bool kafka_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || streq(s, ".") || streq(s, ".."))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void kv_set(struct kv_list *l, const char *key, const char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (streq(l->key[i], key)) {
            l->value[i] = value;
            return;
        }
    l->key[l->n] = key;
    l->value[l->n++] = value;
}

/* `configs:` (a map of scalars) merged into l; NULL n (absent) adds nothing. */
static int parse_configs(const struct cfg_ctx *c, const struct cfg_node *n, const char *path,
                         struct kv_list *l)
{
    char sub[CFG_PATH_MAX];
    int r;

    if (!n || cfg_node_is_null(n))
        return 0;
    r = cfg_expect(c, n, path, CFG_NODE_MAP);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n->n; i++) {
        const struct cfg_node *k = n->keys[i], *v = n->items[i];

        cfg_path_join(sub, path, k->value);
        if (!kafka_name_ok(k->value, 128))
            return cfg_error(c, k, "%s: '%.64s' is not a Kafka config name", sub, k->value);
        if (v->type != CFG_NODE_SCALAR || cfg_node_is_null(v))
            return cfg_error(c, v,
                             "%s: expected a value (write it as the broker reports it, "
                             "e.g. \"604800000\"), got %s",
                             sub, cfg_node_describe(v));
        if (l->n == MAX_CONFIGS)
            return cfg_error(c, k, "%s: more than %u configs", path, MAX_CONFIGS);
        kv_set(l, k->value, v->value);
    }
    return 0;
}

/* partitions / replication_factor of a topic or of defaults (absent: *ret unchanged). */
static int get_count(const struct cfg_ctx *c, const struct cfg_node *map, const char *path,
                     const char *key, uint64_t max, uint64_t *ret)
{
    const struct cfg_node *n = cfg_map_get(map, key);
    char sub[CFG_PATH_MAX];

    if (!n)
        return 0;
    return cfg_get_uint(c, n, cfg_path_join(sub, path, key), 1, max, ret);
}

struct defaults {
    uint64_t partitions, replication_factor; /* 0 = not given */
    struct kv_list configs;
};

static int parse_defaults(const struct cfg_ctx *c, const struct cfg_node *n, struct defaults *d)
{
    static const char *const keys[] = { "partitions", "replication_factor", "configs", NULL };
    int r;

    if (!n)
        return 0;
    r = cfg_check_keys(c, n, "defaults", keys);
    if (r == 0)
        r = get_count(c, n, "defaults", "partitions", MAX_PARTITIONS, &d->partitions);
    if (r == 0)
        r = get_count(c, n, "defaults", "replication_factor", MAX_BROKERS, &d->replication_factor);
    if (r == 0)
        r = parse_configs(c, cfg_map_get(n, "configs"), "defaults.configs", &d->configs);
    return r;
}

/* Every profile is checked; the chosen one's values go into f and chosen_configs. */
static int parse_profiles(struct parse *p, const struct cfg_node *root, const char *profile,
                          struct kv_list *chosen_configs)
{
    static const char *const keys[] = { "brokers", "broker_storage", "configs", NULL };
    const struct cfg_ctx *c = p->c;
    const struct cfg_node *n = cfg_map_get(root, "profiles");
    struct buf names = BUF_INIT(0);
    bool found = false;
    int r;

    if (!n)
        return cfg_missing(c, root, "", "profiles");
    r = cfg_expect(c, n, "profiles", CFG_NODE_MAP);
    for (size_t i = 0; r == 0 && i < n->n; i++) {
        const struct cfg_node *m = n->items[i];
        struct kv_list configs = { .n = 0 };
        char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
        uint64_t brokers = 0, storage = 0;

        cfg_path_join(path, "profiles", n->keys[i]->value);
        r = cfg_check_keys(c, m, path, keys);
        if (r == 0 && buf_appendf(&names, "%s%s", names.len ? ", " : "", n->keys[i]->value) < 0)
            r = -ENOMEM;
        if (r == 0 && !cfg_map_get(m, "brokers"))
            r = cfg_missing(c, n->keys[i], path, "brokers");
        if (r == 0)
            r = get_count(c, m, path, "brokers", MAX_BROKERS, &brokers);
        if (r == 0 && !cfg_map_get(m, "broker_storage"))
            r = cfg_missing(c, n->keys[i], path, "broker_storage");
        if (r == 0)
            r = cfg_get_size(c, cfg_map_get(m, "broker_storage"),
                             cfg_path_join(sub, path, "broker_storage"), 1, &storage);
        if (r == 0)
            r = parse_configs(c, cfg_map_get(m, "configs"), cfg_path_join(sub, path, "configs"),
                              &configs);
        if (r == 0 && streq(n->keys[i]->value, profile)) {
            found = true;
            p->f->brokers = (unsigned)brokers;
            p->f->broker_storage = storage;
            *chosen_configs = configs;
        }
    }
    if (r == 0 && !found)
        r = cfg_error(c, n, "profiles: no profile '%s' (the file has: %s)", profile,
                      names.len ? buf_str(&names) : "none");
    buf_release(&names);
    return r;
}

static int parse_topic(struct parse *p, const struct cfg_node *key, const struct cfg_node *m,
                       const struct defaults *d, const struct kv_list *profile_configs)
{
    static const char *const keys[] = { "partitions", "replication_factor", "configs", NULL };
    const struct cfg_ctx *c = p->c;
    struct kfk_topics_file *f = p->f;
    struct kfk_topic_spec *spec = &f->specs[f->n_specs];
    struct kv_list configs = d->configs;
    struct kfk_config_kv *kv;
    uint64_t partitions = d->partitions, rf = d->replication_factor;
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX];
    int r;

    cfg_path_join(path, "topics", key->value);
    if (!kafka_name_ok(key->value, 249))
        return cfg_error(c, key,
                         "%s: '%.64s' is not a valid topic name (letters, digits, '.', "
                         "'_', '-'; at most 249)",
                         path, key->value);
    if (!cfg_node_is_null(m)) {
        r = cfg_check_keys(c, m, path, keys);
        if (r == 0)
            r = get_count(c, m, path, "partitions", MAX_PARTITIONS, &partitions);
        if (r == 0)
            r = get_count(c, m, path, "replication_factor", MAX_BROKERS, &rf);
        if (r < 0)
            return r;
    }
    if (!partitions)
        return cfg_missing(c, key, path, "partitions");
    if (!rf)
        return cfg_missing(c, key, path, "replication_factor");
    if (rf > f->brokers)
        return cfg_error(c, key,
                         "%s: replication factor %llu is more than the %u brokers of profile '%s'",
                         cfg_path_join(sub, path, "replication_factor"), (unsigned long long)rf,
                         f->brokers, f->profile);
    for (size_t i = 0; i < profile_configs->n; i++)
        kv_set(&configs, profile_configs->key[i], profile_configs->value[i]);
    if (!cfg_node_is_null(m)) {
        r = parse_configs(c, cfg_map_get(m, "configs"), cfg_path_join(sub, path, "configs"),
                          &configs);
        if (r < 0)
            return r;
    }
    kv = own(p, xcalloc(configs.n ? configs.n : 1, sizeof *kv));
    for (size_t i = 0; i < configs.n; i++)
        kv[i] = (struct kfk_config_kv){ .key = keep(p, configs.key[i]),
                                        .value = keep(p, configs.value[i]) };
    *spec = (struct kfk_topic_spec){ .name = keep(p, key->value),
                                     .partitions = (int32_t)partitions,
                                     .replication_factor = (int16_t)rf,
                                     .configs = kv,
                                     .n_configs = configs.n };
    f->n_specs++;
    return 0;
}

static int parse_root(struct parse *p, const struct cfg_node *root, const char *profile)
{
    static const char *const keys[] = { "defaults", "profiles", "topics", NULL };
    const struct cfg_ctx *c = p->c;
    struct defaults *d = xcalloc(1, sizeof *d);
    struct kv_list *profile_configs = xcalloc(1, sizeof *profile_configs);
    const struct cfg_node *topics;
    int r;

    if (!root) {
        r = cfg_error(c, NULL, "empty file: expected 'profiles' and 'topics'");
        goto out;
    }
    r = cfg_expect(c, root, "", CFG_NODE_MAP);
    if (r == 0)
        r = cfg_check_keys(c, root, "", keys);
    if (r == 0)
        r = parse_defaults(c, cfg_map_get(root, "defaults"), d);
    if (r == 0)
        r = parse_profiles(p, root, profile, profile_configs);
    if (r < 0)
        goto out;
    topics = cfg_map_get(root, "topics");
    if (!topics) {
        r = cfg_missing(c, root, "", "topics");
        goto out;
    }
    r = cfg_expect(c, topics, "topics", CFG_NODE_MAP);
    if (r == 0 && topics->n > MAX_TOPICS)
        r = cfg_error(c, topics, "topics: more than %u topics", MAX_TOPICS);
    if (r < 0)
        goto out;
    p->f->specs = xcalloc(topics->n ? topics->n : 1, sizeof *p->f->specs);
    for (size_t i = 0; r == 0 && i < topics->n; i++)
        r = parse_topic(p, topics->keys[i], topics->items[i], d, profile_configs);
out:
    free(d);
    free(profile_configs);
    return r;
}

/* The file and what its specs point to (the parse's owned list). */
struct kfk_topics_file_private {
    struct kfk_topics_file pub; /* first: the public pointer is this struct's */
    void **owned;
    size_t n_owned;
};

int kfk_topics_file_parse(const char *name, const char *text, size_t len, const char *profile,
                          struct kfk_topics_file **ret, struct err *reterr)
{
    struct kfk_topics_file_private *fp = xcalloc(1, sizeof *fp);
    struct cfg_ctx c = { .file = name, .reterr = reterr };
    struct parse p = { .c = &c, .f = &fp->pub };
    struct cfg_node *root = NULL;
    int r;

    fp->pub.profile = xstrdup(profile ? profile : "");
    r = cfg_parse(name, text, len, &root, reterr);
    if (r == 0)
        r = parse_root(&p, root, fp->pub.profile);
    cfg_node_free(root);
    fp->owned = p.owned;
    fp->n_owned = p.n_owned;
    if (r < 0) {
        kfk_topics_file_free(&fp->pub);
        return r;
    }
    *ret = &fp->pub;
    return 0;
}

int kfk_topics_file_load(const char *path, const char *profile, struct kfk_topics_file **ret,
                         struct err *reterr)
{
    struct buf text = BUF_INIT(CFG_MAX_BYTES);
    int r = cfg_read_file(path, &text, reterr);

    if (r == 0)
        r = kfk_topics_file_parse(path, text.data ? text.data : "", text.len, profile, ret, reterr);
    buf_release(&text);
    return r;
}

struct kfk_topics_file *kfk_topics_file_free(struct kfk_topics_file *f)
{
    struct kfk_topics_file_private *fp = (struct kfk_topics_file_private *)f;

    if (!f)
        return NULL;
    free(f->specs);
    free(f->profile);
    for (size_t i = 0; i < fp->n_owned; i++)
        free(fp->owned[i]);
    free(fp->owned);
    free(fp);
    return NULL;
}

const char *kfk_topic_spec_config(const struct kfk_topic_spec *spec, const char *key)
{
    for (size_t i = 0; i < spec->n_configs; i++)
        if (streq(spec->configs[i].key, key))
            return spec->configs[i].value;
    return NULL;
}

/* A config that must be a byte count; -1 / absent = unbounded (returns false). */
static bool config_bytes(const struct kfk_topic_spec *spec, const char *key, uint64_t *ret)
{
    const char *v = kfk_topic_spec_config(spec, key);
    int64_t n;

    if (!v || parse_i64(v, &n) < 0 || n < 0)
        return false;
    *ret = (uint64_t)n;
    return true;
}

int kfk_topics_file_check_fit(const struct kfk_topics_file *f, uint64_t *ret_bytes,
                              struct err *reterr)
{
    /* Sums in bytes over at most MAX_TOPICS x MAX_PARTITIONS x MAX_BROKERS replicas: kept
     * below 2^64 by computing in long double. */
    long double total = 0;
    uint64_t per_broker;

    for (size_t i = 0; i < f->n_specs; i++) {
        const struct kfk_topic_spec *s = &f->specs[i];
        uint64_t retention, segment = KAFKA_DEFAULT_SEGMENT_BYTES;

        if (!config_bytes(s, "retention.bytes", &retention))
            return err_set(reterr, -ERANGE, 0, 0,
                           "topic '%s' (profile '%s') has no size bound: set retention.bytes "
                           "so its disk use can be planned",
                           s->name, f->profile);
        (void)config_bytes(s, "segment.bytes", &segment);
        total += (long double)s->partitions * (long double)s->replication_factor *
                 ((long double)retention + (long double)segment);
    }
    total /= f->brokers ? f->brokers : 1;
    per_broker = total >= (long double)UINT64_MAX ? UINT64_MAX : (uint64_t)total;
    if (ret_bytes)
        *ret_bytes = per_broker;
    if (per_broker > f->broker_storage)
        return err_set(reterr, -ENOSPC, 0, 0,
                       "profile '%s': the topics may take %.1f GiB per broker (each partition's "
                       "replicas at retention.bytes plus a segment), more than its "
                       "broker_storage of %.1f GiB",
                       f->profile, (double)per_broker / (1 << 30),
                       (double)f->broker_storage / (1 << 30));
    return 0;
}
