/* SPDX-License-Identifier: MIT */
/* kafka.c - the per-call librdkafka client (configuration, log and error callbacks, bounded
 * waits), error mapping, cluster metadata with per-broker counts, and the probe. */
#include "kafka.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka_int.h"

/* ===== Errors ===== */

int kfk__errno(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return -ETIMEDOUT;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return -ECONNREFUSED;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return -ECONNRESET;
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return -EHOSTUNREACH;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        return -EINVAL;
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
        return -EOPNOTSUPP;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return -EACCES;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__NOENT:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
        return -ENOENT;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return -EEXIST;
    case RD_KAFKA_RESP_ERR__DESTROY:
        return -ECANCELED;
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
        return -EAGAIN;
    default:
        return -EPROTO;
    }
}

const char *kfk_error_name(int kafka_error)
{
    return rd_kafka_err2name((rd_kafka_resp_err_t)kafka_error);
}

void kfk__appendf(char *dst, size_t n, const char *fmt, ...)
{
    size_t len = strnlen(dst, n);
    va_list ap;

    if (len + 1 >= n)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(dst + len, n - len, fmt, ap);
    va_end(ap);
}

int kfk__fail(struct err *reterr, rd_kafka_resp_err_t err, const char *what, const char *msg)
{
    return err_set(reterr, kfk__errno(err), 0, 0, "%s: %s", what,
                   msg && msg[0] ? msg : rd_kafka_err2str(err));
}

/* ===== The per-call client ===== */

/* librdkafka calls this from its own threads: core/log is thread-safe. */
static void client_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_debug("librdkafka[%d] %s: %s", level, fac, buf);
}

/* Records the bootstrap server whose connection could not be made ("host:port/bootstrap:
 * Connect to ... failed", "... Failed to resolve ..."); all_down once every one has failed.  A
 * connection that was up and closed (a learned broker, an idle bootstrap one) is not counted. */
static void note_failed(struct kfk_client *c, const char *reason)
{
    const char *end = strstr(reason, "/bootstrap: ");
    size_t len = end ? (size_t)(end - reason) : 0;

    if (!end || len >= sizeof c->failed[0] ||
        (!strstr(end, ": Connect to ") && !strstr(end, "Failed to resolve")))
        return;
    for (unsigned i = 0; i < c->n_failed; i++)
        if (strncmp(c->failed[i], reason, len) == 0 && c->failed[i][len] == '\0')
            return;
    if (c->n_failed < KFK_BOOTSTRAP_MAX) {
        memcpy(c->failed[c->n_failed], reason, len);
        c->failed[c->n_failed][len] = '\0';
        c->n_failed++;
    }
    if (c->n_failed >= c->n_bootstrap)
        c->all_down = true;
}

/* The number of distinct entries in a bootstrap list (at most KFK_BOOTSTRAP_MAX). */
static unsigned bootstrap_count(const char *bootstrap)
{
    const char *seen[KFK_BOOTSTRAP_MAX];
    size_t seen_len[KFK_BOOTSTRAP_MAX];
    unsigned n = 0;

    for (const char *p = bootstrap; *p && n < KFK_BOOTSTRAP_MAX;) {
        size_t len = strcspn(p, ",");
        bool dup = len == 0;

        for (unsigned i = 0; i < n && !dup; i++)
            dup = seen_len[i] == len && strncmp(seen[i], p, len) == 0;
        if (!dup) {
            seen[n] = p;
            seen_len[n++] = len;
        }
        p += len + (p[len] == ',');
    }
    return n ? n : 1;
}

/* Served by rd_kafka_poll() only, on the calling thread (no background queue is enabled). */
static void client_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kfk_client *c = opaque;

    (void)rk;
    log_debug("librdkafka error %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        c->all_down = true;
    } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE) {
        (void)snprintf(c->down_reason, sizeof c->down_reason, "%s", reason);
        note_failed(c, reason);
    }
}

static int clamp_ms(uint64_t ms, int lo, int hi)
{
    if (ms < (uint64_t)lo)
        return lo;
    if (ms > (uint64_t)hi)
        return hi;
    return (int)ms;
}

int kfk__client_open(struct kfk_client *c, const char *bootstrap, uint64_t timeout_usec,
                     struct err *reterr)
{
    uint64_t ms = (timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
    char sock_ms[16], setup_ms[16], api_ms[16], errstr[512];
    rd_kafka_conf_t *conf;
    struct {
        const char *key, *value;
    } settings[] = {
        { "bootstrap.servers", bootstrap },
        { "client.id", "ut-kfk" },
        /* Every request's own timeout is the call's. */
        { "socket.timeout.ms", sock_ms },
        { "api.version.request.timeout.ms", api_ms },
        /* Longer than the call: a broker that accepts the TCP connection but never answers
         * (SIGSTOPped) must end as -ETIMEDOUT at our deadline, not as "all brokers down". */
        { "socket.connection.setup.timeout.ms", setup_ms },
        { "reconnect.backoff.ms", "50" },
        { "reconnect.backoff.max.ms", "1000" },
        /* Metadata requests for all topics only: never create a topic by asking for it. */
        { "allow.auto.create.topics", "false" },
        /* A library must not reseed the program's rand(). */
        { "enable.random.seed", "false" },
        { "log_level", "6" },
    };

    *c = (struct kfk_client){ .bootstrap = bootstrap };
    if (!bootstrap || !bootstrap[0])
        return err_set(reterr, -EINVAL, 0, 0, "no bootstrap servers");
    c->n_bootstrap = bootstrap_count(bootstrap);
    if (timeout_usec == 0)
        return err_set(reterr, -EINVAL, 0, 0, "zero timeout");
    (void)snprintf(sock_ms, sizeof sock_ms, "%d", clamp_ms(ms, 10, 300000));
    (void)snprintf(api_ms, sizeof api_ms, "%d", clamp_ms(ms, 10, 300000));
    (void)snprintf(setup_ms, sizeof setup_ms, "%d", clamp_ms(ms + 1000, 1000, 3600000));

    conf = rd_kafka_conf_new();
    if (!conf)
        return err_set(reterr, -ENOMEM, 0, 0, "out of memory");
    for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
        if (rd_kafka_conf_set(conf, settings[i].key, settings[i].value, errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return err_set(reterr, -EINVAL, 0, 0, "librdkafka refused %s=%s: %s", settings[i].key,
                           settings[i].value, errstr);
        }
    rd_kafka_conf_set_log_cb(conf, client_log_cb);
    rd_kafka_conf_set_error_cb(conf, client_error_cb);
    rd_kafka_conf_set_opaque(conf, c);

    c->timeout_usec = timeout_usec;
    c->deadline_usec = now_usec() + timeout_usec;
    /* librdkafka blocks every signal in the threads it starts (they inherit the mask it sets
     * around thread creation), so none of them takes a signal meant for the program. */
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new() fails */
        return err_set(reterr, -EINVAL, 0, 0, "cannot create a librdkafka client: %s", errstr);
    }
    return 0;
}

void kfk__client_close(struct kfk_client *c)
{
    if (!c->rk)
        return;
    /* A producer handle has no consumer group to leave; outstanding requests are failed
     * locally (RD_KAFKA_RESP_ERR__DESTROY), not waited for.  The flag only makes that
     * explicit should a consumer handle ever come through here. */
    rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    c->rk = NULL;
}

int kfk__remaining_ms(const struct kfk_client *c)
{
    uint64_t now = now_usec(), left;

    if (now >= c->deadline_usec)
        return 0;
    left = (c->deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

bool kfk__all_down(struct kfk_client *c)
{
    (void)rd_kafka_poll(c->rk, 0);
    return c->all_down;
}

int kfk__fail_wait(struct kfk_client *c, struct err *reterr, const char *what)
{
    if (kfk__all_down(c)) {
        int r = strstr(c->down_reason, "resolve") ? -EHOSTUNREACH : -ECONNREFUSED;
        return err_set(reterr, r, 0, 0, "%s: all brokers are down (%s)%s%s", what, c->bootstrap,
                       c->down_reason[0] ? ": " : "", c->down_reason);
    }
    return err_set(reterr, -ETIMEDOUT, 0, 0, "%s: no answer from %s within %llums", what,
                   c->bootstrap, (unsigned long long)(c->timeout_usec / USEC_PER_MSEC));
}

int kfk__metadata(struct kfk_client *c, const struct rd_kafka_metadata **ret, struct err *reterr)
{
    bool sent = false;

    for (;;) {
        int left = kfk__remaining_ms(c);
        rd_kafka_resp_err_t e;

        /* Until a broker is usable, rd_kafka_metadata() only waits for one (and returns
         * _TRANSPORT): wait in slices and stop once everything is down.  Once a request went
         * out (_TIMED_OUT), give that broker the rest of the time. */
        e = rd_kafka_metadata(c->rk, 1, NULL, ret,
                              sent || left < KFK_SLICE_MS ? left : KFK_SLICE_MS);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__TRANSPORT && e != RD_KAFKA_RESP_ERR__TIMED_OUT)
            return kfk__fail(reterr, e, "metadata request failed", NULL);
        if (e == RD_KAFKA_RESP_ERR__TIMED_OUT)
            sent = true;
        if (kfk__all_down(c) || kfk__remaining_ms(c) == 0)
            return kfk__fail_wait(c, reterr, "metadata request");
    }
}

rd_kafka_AdminOptions_t *kfk__admin_options(struct kfk_client *c, rd_kafka_admin_op_t op,
                                            bool op_timeout)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(c->rk, op);
    int left = kfk__remaining_ms(c);
    char errstr[256];

    if (!o)
        return NULL;
    /* librdkafka's own timeout a little earlier than ours, so that its result (which says
     * what it was waiting for: "Failed while waiting for controller") is what the caller
     * sees. */
    left -= left > 10 * KFK_GRACE_MS ? KFK_GRACE_MS : left / 10;
    if (left < 1)
        left = 1;
    /* Both only fail for values out of range, which left is not. */
    if (rd_kafka_AdminOptions_set_request_timeout(o, left, errstr, sizeof errstr) != 0)
        log_debug("librdkafka: request timeout %d ms refused: %s", left, errstr);
    if (op_timeout &&
        rd_kafka_AdminOptions_set_operation_timeout(o, left, errstr, sizeof errstr) != 0)
        log_debug("librdkafka: operation timeout %d ms refused: %s", left, errstr);
    return o;
}

int kfk__admin_wait(struct kfk_client *c, rd_kafka_queue_t *q, const char *what,
                    rd_kafka_event_t **ret, struct err *reterr)
{
    for (;;) {
        int left = kfk__remaining_ms(c);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left < KFK_SLICE_MS ? left : KFK_SLICE_MS);
        rd_kafka_resp_err_t e;

        if (ev) {
            e = rd_kafka_event_error(ev);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                int r;
                if ((e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT) &&
                    kfk__all_down(c))
                    r = kfk__fail_wait(c, reterr, what);
                else
                    r = kfk__fail(reterr, e, what, rd_kafka_event_error_string(ev));
                rd_kafka_event_destroy(ev);
                return r;
            }
            *ret = ev;
            return 0;
        }
        if (kfk__all_down(c) || kfk__remaining_ms(c) == 0)
            return kfk__fail_wait(c, reterr, what);
    }
}

/* ===== Metadata ===== */

static int dup_str(const char *s, char **ret)
{
    *ret = strdup(s ? s : "");
    return *ret ? 0 : -ENOMEM;
}

static int dup_ids(const int32_t *ids, int n, int32_t **ret, size_t *ret_n)
{
    *ret = NULL;
    *ret_n = 0;
    if (n <= 0)
        return 0;
    *ret = calloc((size_t)n, sizeof **ret);
    if (!*ret)
        return -ENOMEM;
    memcpy(*ret, ids, (size_t)n * sizeof **ret);
    *ret_n = (size_t)n;
    return 0;
}

static int copy_topic(const struct rd_kafka_metadata_topic *rt, struct kfk_topic *t)
{
    int r;

    t->kafka_error = rt->err;
    r = dup_str(rt->topic, &t->name);
    if (r < 0)
        return r;
    t->internal = strncmp(t->name, "__", 2) == 0;
    if (rt->partition_cnt <= 0)
        return 0;
    t->partitions = calloc((size_t)rt->partition_cnt, sizeof *t->partitions);
    if (!t->partitions)
        return -ENOMEM;
    t->n_partitions = (size_t)rt->partition_cnt;
    for (int i = 0; i < rt->partition_cnt; i++) {
        const struct rd_kafka_metadata_partition *rp = &rt->partitions[i];
        struct kfk_partition *p = &t->partitions[i];

        p->id = rp->id;
        p->leader = rp->leader;
        p->kafka_error = rp->err;
        r = dup_ids(rp->replicas, rp->replica_cnt, &p->replicas, &p->n_replicas);
        if (r < 0)
            return r;
        r = dup_ids(rp->isrs, rp->isr_cnt, &p->isr, &p->n_isr);
        if (r < 0)
            return r;
    }
    return 0;
}

int kfk__metadata_copy(const struct rd_kafka_metadata *rmd, int32_t controller_id,
                       struct kfk_metadata **ret)
{
    struct kfk_metadata *md = calloc(1, sizeof *md);
    int r = -ENOMEM;

    if (!md)
        return -ENOMEM;
    md->controller_id = controller_id;
    md->orig_broker_id = rmd->orig_broker_id;
    if (dup_str(rmd->orig_broker_name, &md->orig_broker_name) < 0)
        goto out;
    if (rmd->broker_cnt > 0) {
        md->brokers = calloc((size_t)rmd->broker_cnt, sizeof *md->brokers);
        if (!md->brokers)
            goto out;
        md->n_brokers = (size_t)rmd->broker_cnt;
        for (int i = 0; i < rmd->broker_cnt; i++) {
            md->brokers[i].id = rmd->brokers[i].id;
            md->brokers[i].port = rmd->brokers[i].port;
            if (dup_str(rmd->brokers[i].host, &md->brokers[i].host) < 0)
                goto out;
        }
    }
    if (rmd->topic_cnt > 0) {
        md->topics = calloc((size_t)rmd->topic_cnt, sizeof *md->topics);
        if (!md->topics)
            goto out;
        md->n_topics = (size_t)rmd->topic_cnt;
        for (int i = 0; i < rmd->topic_cnt; i++)
            if (copy_topic(&rmd->topics[i], &md->topics[i]) < 0)
                goto out;
    }
    *ret = md;
    md = NULL;
    r = 0;
out:
    (void)kfk_metadata_release(md);
    return r;
}

struct kfk_metadata *kfk_metadata_release(struct kfk_metadata *md)
{
    if (!md)
        return NULL;
    for (size_t i = 0; i < md->n_brokers; i++)
        free(md->brokers[i].host);
    free(md->brokers);
    for (size_t i = 0; i < md->n_topics; i++) {
        struct kfk_topic *t = &md->topics[i];
        for (size_t j = 0; j < t->n_partitions; j++) {
            free(t->partitions[j].replicas);
            free(t->partitions[j].isr);
        }
        free(t->partitions);
        free(t->name);
    }
    free(md->topics);
    free(md->orig_broker_name);
    free(md);
    return NULL;
}

int kfk_metadata_fetch(const char *bootstrap, uint64_t timeout_usec, struct kfk_metadata **ret,
                       struct err *reterr)
{
    struct kfk_client c;
    const struct rd_kafka_metadata *rmd = NULL;
    int r;

    r = kfk__client_open(&c, bootstrap, timeout_usec, reterr);
    if (r < 0)
        goto out;
    r = kfk__metadata(&c, &rmd, reterr);
    if (r < 0)
        goto out;
    /* The answer just parsed set librdkafka's cached controller id: no wait needed. */
    r = kfk__metadata_copy(rmd, rd_kafka_controllerid(c.rk, 0), ret);
    if (r < 0)
        err_set(reterr, r, 0, 0, "out of memory copying the metadata");
out:
    if (rmd)
        rd_kafka_metadata_destroy(rmd);
    kfk__client_close(&c);
    return r;
}

const struct kfk_broker *kfk_metadata_broker(const struct kfk_metadata *md, int32_t id)
{
    for (size_t i = 0; i < md->n_brokers; i++)
        if (md->brokers[i].id == id)
            return &md->brokers[i];
    return NULL;
}

static bool ids_contain(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void count_add(struct kfk_count *c, bool internal)
{
    c->n++;
    c->internal += internal;
}

void kfk_metadata_count(const struct kfk_metadata *md, int32_t broker_id, struct kfk_counts *ret)
{
    bool all = broker_id == KFK_BROKER_ALL;

    *ret = (struct kfk_counts){ 0 };
    for (size_t i = 0; i < md->n_topics; i++) {
        const struct kfk_topic *t = &md->topics[i];
        for (size_t j = 0; j < t->n_partitions; j++) {
            const struct kfk_partition *p = &t->partitions[j];
            bool replica = all || ids_contain(p->replicas, p->n_replicas, broker_id);
            bool led = p->leader >= 0 && (all || p->leader == broker_id);

            if (replica)
                count_add(&ret->replicas, t->internal);
            if (led)
                count_add(&ret->led, t->internal);
            if (led && p->n_isr < p->n_replicas)
                count_add(&ret->under_replicated, t->internal);
            if (p->leader < 0 && replica)
                count_add(&ret->offline, t->internal);
        }
    }
}

/* ===== Probe ===== */

/* The first bootstrap entry's host and port ("PLAINTEXT://h:p,..." and "[v6]:p" too). */
static void bootstrap_first(const char *bootstrap, char *host, size_t n, int *ret_port)
{
    const char *s = bootstrap, *end, *colon, *scheme = strstr(bootstrap, "://");
    size_t len;

    if (scheme && scheme < bootstrap + strcspn(bootstrap, ","))
        s = scheme + 3;
    end = s + strcspn(s, ",");
    colon = end;
    while (colon > s && colon[-1] != ':')
        colon--;
    *ret_port = -1;
    if (colon > s) {
        int port = 0;
        for (const char *d = colon; d < end && *d >= '0' && *d <= '9' && port <= 65535; d++)
            port = port * 10 + (*d - '0');
        *ret_port = port;
        end = colon - 1;
    }
    if (end > s && s[0] == '[' && end[-1] == ']') {
        s++;
        end--;
    }
    len = (size_t)(end - s) < n - 1 ? (size_t)(end - s) : n - 1;
    memcpy(host, s, len);
    host[len] = '\0';
}

/* The id of the broker listed at host:port; else the answering broker's, when librdkafka
 * named it after that address ("host:port/<id>"); -1 when the answer does not list it. */
static int32_t find_self(const struct kfk_metadata *md, const char *bootstrap)
{
    char host[256], prefix[300];
    int port;

    bootstrap_first(bootstrap, host, sizeof host, &port);
    for (size_t i = 0; i < md->n_brokers; i++)
        if (md->brokers[i].port == port && strcmp(md->brokers[i].host, host) == 0)
            return md->brokers[i].id;
    (void)snprintf(prefix, sizeof prefix, "%s:%d/", host, port);
    if (md->orig_broker_id >= 0 && strncmp(md->orig_broker_name, prefix, strlen(prefix)) == 0 &&
        kfk_metadata_broker(md, md->orig_broker_id))
        return md->orig_broker_id;
    return -1;
}

int kfk_probe(const char *bootstrap, uint64_t timeout_usec, struct kfk_probe_result *ret,
              struct err *reterr)
{
    struct kfk_metadata *md = NULL;
    struct kfk_probe_result res = { .self_id = -1, .controller_id = -1 };
    int r;

    r = kfk_metadata_fetch(bootstrap, timeout_usec, &md, reterr);
    if (r < 0)
        return r;
    res.metadata = md;
    res.n_brokers = md->n_brokers;
    res.controller_id = md->controller_id;
    res.self_id = find_self(md, bootstrap);
    if (res.self_id < 0)
        (void)snprintf(res.reason, sizeof res.reason,
                       "the answer does not list the broker at %s (fenced, or its advertised "
                       "address differs)",
                       bootstrap);
    else if (res.controller_id < 0)
        (void)snprintf(res.reason, sizeof res.reason, "no controller known");
    res.healthy = res.self_id >= 0 && res.controller_id >= 0;
    *ret = res;
    return 0;
}

void kfk_probe_result_release(struct kfk_probe_result *r)
{
    if (!r)
        return;
    (void)kfk_metadata_release(r->metadata);
    *r = (struct kfk_probe_result){ .self_id = -1, .controller_id = -1 };
}
