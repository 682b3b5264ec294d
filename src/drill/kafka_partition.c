/* SPDX-License-Identifier: MIT */
/* kafka_partition.c - the Kafka partition fault (infractl drill kafka --fault partition): the
 * leader broker's network namespace is cut from the other brokers and controllers with the
 * nftables table of pg_netcut.c, TCP with the host's own address on the namespaces' network
 * let through, so the producer and the consumer on the host still reach the cut leader (the
 * case where a cut leader may go on acknowledging).  After pause_usec the cut is removed and
 * the run waits until every broker, asked on its own, reports the partition led by the same
 * broker with every replica in sync: a broker that was cut answers from its stale metadata
 * until it caught up, so one answer cannot say the cluster healed.  The evidence (which
 * broker led the KRaft quorum before and after, what the cut broker and the others logged)
 * goes to the run's "partition" object. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/macro.h"
#include "core/str.h"
#include "core/time.h"
#include "drill_int.h"
#include "drill_kafka.h"
#include "kafka/kafka.h"

#define POLL_USEC      (200 * USEC_PER_MSEC)
#define MD_USEC        (1 * USEC_PER_SEC)
#define QUIET_USEC     (5 * USEC_PER_SEC) /* whole this long after a cut that never showed */
#define LOG_LINES_MAX  80
#define LOG_LINE_CHARS 400
/* A progress line through the options o in scope. */
#define PROGRESS(...) drill__progressf(o->progress, o->userdata, __VA_ARGS__)

/* What the brokers log about a cut (Kafka 4.4's words): the broker's heartbeats to the
 * controller, a controller fencing a broker whose session timed out and the registration
 * changes, the KRaft quorum's leader resigning for want of a majority (check-quorum), failed
 * pre-votes and the new active controller, unfencing; and every line naming the drill topic
 * (ISR changes, truncation when the old leader rejoins). */
static const char *const log_patterns[] = {
    "Unable to send a heartbeat",
    "Fencing broker",
    "fenced=1",
    "fenced=-1",
    "to unfence has been granted",
    "Did not receive fetch request from the majority",
    "Completed transition to ResignedState",
    "Renouncing leadership",
    "Election timed out",
    "Completed transition to Leader",
    "Becoming the active controller",
    "Shrinking ISR",
    "AlterPartition",
};
#define N_LOG_PATTERNS (sizeof log_patterns / sizeof *log_patterns)

int drill_kafka_partition_check(const struct drill_kafka_target *t, struct err *reterr)
{
    for (size_t i = 0; i < t->n_brokers; i++)
        if (!t->brokers[i].netns || !t->brokers[i].host)
            return err_set(reterr, -EINVAL, 0, 0,
                           "--fault partition needs the brokers in network namespaces (%s has "
                           "%s): only on the Kafka drill cluster, `sudo scripts/drill-netns.sh "
                           "--cluster kafka up` (docs/drills.md)",
                           t->brokers[i].name, t->brokers[i].netns ? "no address" : "no netns");
    return 0;
}

/* The address this host uses to reach host (the bridge's own address): what the cut lets
 * through.  0 or -errno. */
static int local_addr_to(const char *host, uint16_t port, char *ret, size_t size)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) }, me;
    socklen_t len = sizeof me;
    int fd, r = 0;

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -EINVAL;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* a UDP connect sends nothing: the kernel only picks the route and the source address */
    if (connect(fd, (const struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&me, &len) < 0 ||
        !inet_ntop(AF_INET, &me.sin_addr, ret, (socklen_t)size))
        r = -errno;
    (void)close(fd);
    return r;
}

/* ===== The partition as each broker sees it ===== */

struct kview {
    bool answered;
    int32_t leader; /* -1 = none or not listed */
    size_t n_replicas, n_isr;
    bool brokers_all; /* every broker of the target is listed (registered, not fenced) */
};

static bool kview_whole(const struct kview *v)
{
    return v->answered && v->leader >= 0 && v->n_replicas >= 2 && v->n_isr == v->n_replicas &&
           v->brokers_all;
}

/* Asks broker b alone (its own address as the only bootstrap server); a client that found
 * another broker to answer is not b's view and is discarded. */
static void kview_read(const struct drill_kafka_target *t, const struct drill_kafka_broker *b,
                       int32_t partition, struct kview *ret)
{
    struct kfk_metadata *md = NULL;
    char bootstrap[128];
    const struct kfk_broker *self;

    *ret = (struct kview){ .leader = -1 };
    (void)snprintf(bootstrap, sizeof bootstrap, "%s:%u", b->host, (unsigned)b->port);
    if (kfk_metadata_fetch(bootstrap, MD_USEC, &md, NULL) < 0)
        return;
    self = kfk_metadata_broker(md, md->orig_broker_id);
    ret->answered = md->orig_broker_id < 0 || (self && self->port == b->port);
    for (size_t i = 0; ret->answered && i < md->n_topics; i++) {
        const struct kfk_topic *tp = &md->topics[i];

        for (size_t k = 0; streq(tp->name, t->topic) && k < tp->n_partitions; k++)
            if (tp->partitions[k].id == partition) {
                ret->leader = tp->partitions[k].leader;
                ret->n_replicas = tp->partitions[k].n_replicas;
                ret->n_isr = tp->partitions[k].n_isr;
            }
    }
    ret->brokers_all = true;
    for (size_t i = 0; i < t->n_brokers; i++) {
        bool found = false;

        for (size_t k = 0; k < md->n_brokers && !found; k++)
            found = md->brokers[k].port == t->brokers[i].port &&
                    streq(md->brokers[k].host, t->brokers[i].host);
        ret->brokers_all = ret->brokers_all && found;
    }
    md = kfk_metadata_release(md);
}

/* The target broker whose Kafka id is id, as broker b's metadata lists it; NULL if none. */
static const struct drill_kafka_broker *broker_by_id(const struct drill_kafka_target *t,
                                                     const struct drill_kafka_broker *b, int32_t id)
{
    struct kfk_metadata *md = NULL;
    const struct drill_kafka_broker *ret = NULL;
    const struct kfk_broker *kb;
    char bootstrap[128];

    (void)snprintf(bootstrap, sizeof bootstrap, "%s:%u", b->host, (unsigned)b->port);
    if (kfk_metadata_fetch(bootstrap, MD_USEC, &md, NULL) < 0)
        return NULL;
    kb = kfk_metadata_broker(md, id);
    for (size_t i = 0; kb && i < t->n_brokers; i++)
        if (t->brokers[i].port == kb->port && streq(t->brokers[i].host, kb->host))
            ret = &t->brokers[i];
    md = kfk_metadata_release(md);
    return ret;
}

/* ===== Evidence ===== */

/* The lines service logged from offset `from` that match log_patterns or name the topic:
 * "lines" (at most LOG_LINES_MAX, each cut at LOG_LINE_CHARS) and "counts" (matches per
 * pattern, all lines counted). */
static json_t *log_evidence(const struct drill_kafka_target *t, const char *service, off_t from)
{
    struct drill_pg_target logs = { .state_dir = t->state_dir };
    const char *pats[N_LOG_PATTERNS + 2];
    char *text = xcalloc(1, 256 * 1024), first[32] = "";
    json_t *lines = json_array(), *counts = json_object();
    unsigned count[N_LOG_PATTERNS + 1] = { 0 };

    memcpy(pats, log_patterns, sizeof log_patterns);
    pats[N_LOG_PATTERNS] = t->topic;
    pats[N_LOG_PATTERNS + 1] = NULL;
    drill__log_scan(&logs, service, from, pats, text, 256 * 1024, first, sizeof first);
    for (char *line = text, *nl; *line; line = nl + 1) {
        size_t len;

        nl = line + strcspn(line, "\n");
        len = (size_t)(nl - line);
        if (len < 24 || line[4] != '-' || line[10] != 'T') { /* the rest of a long line */
            if (!*nl)
                break;
            continue;
        }
        for (size_t k = 0; k <= N_LOG_PATTERNS; k++)
            if (memmem(line, len, pats[k], strlen(pats[k])))
                count[k]++;
        if (json_array_size(lines) < LOG_LINES_MAX)
            json_array_append_new(lines,
                                  json_stringn(line, len < LOG_LINE_CHARS ? len : LOG_LINE_CHARS));
        if (!*nl)
            break;
    }
    for (size_t k = 0; k <= N_LOG_PATTERNS; k++)
        if (count[k])
            json_object_set_new(counts, pats[k], json_integer(count[k]));
    free(text);
    return json_pack("{s:o, s:o}", "counts", counts, "lines", lines);
}

/* How many of the lines in evidence (log_evidence()'s) contain both a and b (b may be NULL). */
static unsigned lines_with(json_t *evidence, const char *a, const char *b)
{
    json_t *line;
    size_t i;
    unsigned n = 0;

    json_array_foreach(json_object_get(evidence, "lines"), i, line)
    {
        const char *l = json_string_value(line);

        n += strstr(l, a) && (!b || strstr(l, b));
    }
    return n;
}

/* ===== The fault ===== */

int drill__kafka_partition(const struct drill_kafka_target *t, const struct drill_kafka_options *o,
                           const struct drill_kafka_broker *victim, int32_t victim_id,
                           int32_t partition, struct drill_run *res, char *msg, size_t msg_size)
{
    struct drill_pg_target logs = { .state_dir = t->state_dir };
    off_t log_from[16] = { 0 };
    char host_addr[INET_ADDRSTRLEN], ctl_before[64], ctl_after[64];
    bool cut = true, degraded = false;
    uint64_t deadline;
    json_t *ev, *others, *vlog, *summary, *olog;
    const char *name;
    char fencing[48];
    unsigned fenced = 0;
    int r;

    r = local_addr_to(victim->host, victim->port, host_addr, sizeof host_addr);
    if (r < 0) {
        (void)snprintf(msg, msg_size, "no route to %s (%s)", victim->host, strerror(-r));
        return r;
    }
    drill__kafka_controller(t, ctl_before, sizeof ctl_before);
    for (size_t i = 0; i < t->n_brokers && i < ARRAY_SIZE(log_from); i++)
        log_from[i] = drill__log_size(&logs, t->brokers[i].name);
    res->fault_at = now_usec();
    r = drill__netcut(victim->netns, host_addr, 0, msg, msg_size);
    if (r < 0)
        return r;
    PROGRESS("fault: %s's namespace %s cut from the other brokers and controllers for "
             "%.1f s (TCP with %s, the producer's and consumer's host, passes); active "
             "controller %s",
             victim->name, victim->netns, (double)o->pause_usec / USEC_PER_SEC, host_addr,
             ctl_before[0] ? ctl_before : "unknown");
    deadline = res->fault_at + o->pause_usec + o->heal_timeout_usec;
    for (;;) {
        uint64_t now = now_usec();
        struct kview v[16];
        bool agree = true;

        if (cut && now >= res->fault_at + o->pause_usec) {
            r = drill__netheal(victim->netns, msg, msg_size);
            cut = r < 0; /* retried on the next round */
            res->resume_at = now_usec();
            PROGRESS("cut of %s removed%s%s", victim->netns, r < 0 ? ": " : "", r < 0 ? msg : "");
        }
        for (size_t i = 0; i < t->n_brokers && i < ARRAY_SIZE(v); i++) {
            kview_read(t, &t->brokers[i], partition, &v[i]);
            /* only the others speak for the cluster while the cut leader is cut */
            if (&t->brokers[i] != victim && v[i].answered && v[i].leader >= 0 &&
                v[i].leader != victim_id && !res->new_leader_usec) {
                const struct drill_kafka_broker *b = broker_by_id(t, &t->brokers[i], v[i].leader);

                res->new_leader_usec = now_usec() - res->fault_at;
                (void)snprintf(res->new_leader, sizeof res->new_leader, "%s", b ? b->name : "?");
                PROGRESS("new leader %s (broker %d, as %s reports) after %.2f s", res->new_leader,
                         (int)v[i].leader, t->brokers[i].name,
                         (double)res->new_leader_usec / USEC_PER_SEC);
            }
            if (&t->brokers[i] != victim && v[i].answered)
                degraded = degraded || !kview_whole(&v[i]) || v[i].leader != victim_id;
            agree = agree && kview_whole(&v[i]) && v[i].leader == v[0].leader;
        }
        if (!cut && !degraded && agree && now >= res->resume_at + QUIET_USEC) {
            /* a cut shorter than the fencing (a session timeout, more when the cut broker led
             * the quorum): nothing moved, and the cluster has been whole ever since */
            (void)snprintf(res->note, sizeof res->note,
                           "the cut did not show: no broker reported %s fenced or the partition "
                           "degraded within it",
                           victim->name);
            degraded = true;
        }
        if (!cut && degraded && agree) {
            res->healed = true;
            res->heal_at = now_usec();
            res->heal_usec = res->heal_at - res->fault_at;
            PROGRESS("healed after %.1f s: every broker reports %s/%d led by broker %d, "
                     "%zu of %zu replicas in sync",
                     (double)res->heal_usec / USEC_PER_SEC, t->topic, (int)partition,
                     (int)v[0].leader, v[0].n_isr, v[0].n_replicas);
            break;
        }
        if (now >= deadline) {
            (void)snprintf(res->note, sizeof res->note,
                           "not healed within %.0f s of the cut (every broker reporting the "
                           "partition whole, one leader)",
                           (double)(deadline - res->fault_at) / USEC_PER_SEC);
            break;
        }
        sleep_usec(POLL_USEC);
    }
    if (cut && drill__netheal(victim->netns, msg, msg_size) < 0)
        PROGRESS("cannot remove the cut of %s: %s", victim->netns, msg);

    drill__kafka_controller(t, ctl_after, sizeof ctl_after);
    others = json_object();
    for (size_t i = 0; i < t->n_brokers && i < ARRAY_SIZE(log_from); i++)
        if (&t->brokers[i] != victim)
            json_object_set_new(others, t->brokers[i].name,
                                log_evidence(t, t->brokers[i].name, log_from[i]));
    vlog = log_evidence(t, victim->name, log_from[victim - t->brokers]);
    (void)snprintf(fencing, sizeof fencing, "Fencing broker %d ", (int)victim_id);
    json_object_foreach(others, name, olog) fenced += lines_with(olog, fencing, NULL);
    summary = json_pack("{s:i, s:b, s:i, s:b, s:b}", "heartbeats_failed",
                        (int)lines_with(vlog, "Unable to send a heartbeat", NULL),
                        "fenced_by_controller", fenced > 0, "isr_shrink_attempts",
                        (int)lines_with(vlog, "Shrinking ISR", t->topic), "truncation_logged",
                        lines_with(vlog, "Truncating partition", t->topic) > 0,
                        "resigned_quorum_leadership",
                        lines_with(vlog, "Completed transition to ResignedState", NULL) > 0);
    ev = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:O, s:o, s:o}", "netns", victim->netns,
                   "host_addr", host_addr, "controller_before", ctl_before, "controller_after",
                   ctl_after, "victim_was_controller",
                   ctl_before[0] && streq(ctl_before, victim->name), "victim", victim->name,
                   "summary", summary, "victim_log", vlog, "others_log", others);
    res->evidence = json_pack("{s:o}", "partition", ev);
    PROGRESS("%s's own log: %lld heartbeats to the controller failed, %lld ISR shrink attempts "
             "on %s, %s to the new leader's log on rejoining; %s by a controller%s%s",
             victim->name, json_integer_value(json_object_get(summary, "heartbeats_failed")),
             json_integer_value(json_object_get(summary, "isr_shrink_attempts")), t->topic,
             json_is_true(json_object_get(summary, "truncation_logged")) ? "a truncation"
                                                                         : "no truncation",
             fenced ? "fenced" : "not fenced",
             ctl_before[0] && streq(ctl_before, victim->name)
                     ? "; it was the active KRaft controller, after the run: "
                     : "",
             ctl_before[0] && streq(ctl_before, victim->name)
                     ? (ctl_after[0] ? ctl_after : "unknown")
                     : "");
    json_decref(summary);
    return 0;
}
