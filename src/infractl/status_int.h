/* SPDX-License-Identifier: MIT */
/* status_int.h - what status.c shares with the per-kind role readers beside it
 * (status_kafka.c).  Internal to infractl's status. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/macro.h"
#include "probe/probe.h"
#include "status.h"

struct stack;
struct stack_service;

/* One service's role query during status_collect_roles(). */
struct role_job {
    struct status_snapshot *snap;
    struct status_service *sv;
    const struct stack_service *svc;
    struct probe_spec spec;
    struct probe *probe;
    /* Further questions to the same service, asked with the first round: patroni: GET
     * /patroni on the REST port (its role, version and when it last reached etcd);
     * prometheus: the rules and alerts queries (status_monitoring.c). */
    struct probe_spec extra_spec[2];
    struct probe *extra[2];
};
#define JOB_PATRONI_NODE 0

/* The job's service is of this kind and its status probe answered. */
bool status__job_ok(const struct role_job *j, const char *kind);
/* The service's kind in the stack file is `kind`. */
bool status__kind_is(const struct stack *s, const struct status_service *sv, const char *kind);
/* Calls fn for each line of text (copied into a bounded buffer). */
void status__for_each_line(const char *text, void (*fn)(char *line, void *ud), void *ud);
/* Counts sv as a member of c; true when it runs, else a problem ("pg2 backoff") and false. */
bool status__member_running(struct status_cluster *c, const struct status_service *sv);
/* Marks the cluster degraded and appends a "; "-separated problem. */
void status__problem(struct status_cluster *c, const char *fmt, ...) PRINTF(2, 3);

/* status_kafka.c: roles and partitions of kind kafka (from the kafka status probe's detail
 * and the nodes' KRaft quorum state), the kafka cluster's judgment, consumer-group lag. */
void status__interpret_kafka(struct role_job *jobs, size_t n);
void status__judge_kafka(struct status_snapshot *snap, const struct stack *s,
                         struct status_cluster *c);
/* status_monitoring.c: Prometheus (kind prometheus: targets up, rules loaded, alerts firing,
 * from its query API) and Alertmanager (kind alertmanager: alerts active, silenced, inhibited,
 * from its API v2).  start asks what the status probe alone does not (into j->extra). */
void status__monitoring_start(struct role_job *j, uint64_t timeout_usec, struct probe **probes,
                              unsigned *np);
void status__interpret_prometheus(struct role_job *jobs, size_t n);
void status__interpret_alertmanager(struct role_job *jobs, size_t n);

/* status_backup.c: the last backups (node-exporter textfiles of `infractl backup`) and the
 * primary's WAL archiving (its archive_status), read from files only. */
void status__collect_backup(struct status_snapshot *snap, const struct stack *s);
void status__print_backup(const struct status_backup *b, FILE *f);
struct json_t *status__backup_json(const struct status_backup *b);

/* Consumer-group lag, asked in a thread of its own while the role probes run. */
struct status_lag_query;
struct status_lag_query *status__lag_start(const struct status_snapshot *snap,
                                           const struct stack *s, uint64_t timeout_usec);
/* Waits for the answer until the timeout given to start plus STATUS_LAG_GRACE_USEC (librdkafka's
 * teardown), fills snap->kafka.groups or groups_error ("no answer within N ms" when the query
 * still runs: it is abandoned, and frees itself) and releases q.  NULL-safe. */
#define STATUS_LAG_GRACE_USEC (300 * 1000)
void status__lag_finish(struct status_lag_query *q, struct status_snapshot *snap);
