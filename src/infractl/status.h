/* SPDX-License-Identifier: MIT */
/* status.h - the supervisor's view of the stack (over the control socket) joined with each
 * service's role and replication lag (queried from the services themselves). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct buf;
struct cli_ctx;
struct stack;
struct sv_status_job;

struct status_service {
    char *name, *state, *health, *health_message, *last_exit, *waiting_for; /* owned */
    struct sv_status_job *job; /* owned; NULL unless a scheduled service (supervise.h) */
    long pid;                  /* 0 when not running */
    double started_at;
    double uptime_s;
    unsigned restarts;
    /* Filled by status_collect_roles(); empty/-1 when unknown. */
    char role[32];      /* leader, sync replica, replica, master, sentinel, ... */
    char detail[96];    /* e.g. "master 127.0.0.1:6380, 3 sentinels" */
    char endpoint[64];  /* host:port */
    int64_t lag_bytes;  /* replicas: bytes behind the primary */
    double lag_seconds; /* PostgreSQL replicas: replay lag */
    int64_t timeline;   /* PostgreSQL members: from Patroni's /cluster; 0 when unknown */
    char role_error[128];
    bool must_run; /* restart: always: "exited" is not up (a database node, not a job) */
    /* Kafka brokers: partitions of this broker, counted as Kafka's per-broker gauges do. */
    struct status_partitions {
        bool known;
        unsigned led;              /* partitions it leads */
        unsigned under_replicated; /* of those, with fewer in-sync replicas than replicas */
        unsigned offline;          /* without a leader, the broker among their replicas */
    } partitions;
};

/* One Kafka consumer group and its lag summed over the partitions it committed offsets for. */
struct status_group {
    char *name; /* owned */
    char state[32];
    int64_t lag;
    unsigned partitions, unknown; /* partitions counted; of those, lag unknown */
    char error[256];              /* "" when its offsets were read */
};

/* The Kafka cluster as a whole (kind kafka services), when the stack has one. */
struct status_kafka {
    bool present;
    bool metadata_known; /* a broker answered: the counts below are real */
    unsigned partitions, under_replicated, offline; /* every partition, internal ones too */
    char controller[64];         /* the service leading the KRaft quorum; "" when none is known */
    long long quorum_epoch;      /* the highest leader epoch a node recorded; -1 when unknown */
    struct status_group *groups; /* owned */
    size_t n_groups;
    bool groups_known;
    char groups_error[256]; /* why the groups are not known */
};

/* Prometheus and Alertmanager (kinds prometheus, alertmanager), when the stack has them. */
struct status_monitoring {
    bool prometheus_known;              /* Prometheus answered its targets query */
    unsigned targets_up, targets_total; /* scrape targets, by their `up` series */
    char targets_down[256];             /* "job/instance, ..." of the targets down; "" if none */
    long rules;                         /* rules loaded (alerting + recording); -1 unknown */
    long firing;                        /* alerts firing; -1 unknown */
    char firing_alerts[256];            /* their names, ", "-separated (each once) */
    bool alertmanager_known;            /* Alertmanager answered its alerts query */
    unsigned am_active, am_silenced, am_inhibited, am_unprocessed;
};

/* Backups and WAL archiving (status_backup.c), when the stack renders a pgbackrest.conf. */
struct status_backup {
    bool present;
    bool known;               /* `infractl backup` has written its metrics */
    int64_t last_success;     /* Unix seconds of the newest backup; 0 when none */
    char last_type[16];       /* its type (full, diff, incr) */
    char failed_types[32];    /* types whose last run failed, ", "-separated */
    bool archive_known;       /* the primary's archive_status was read */
    bool archive_failing;     /* a segment waits longer than archiving ever should */
    unsigned archive_waiting; /* .ready segments */
    int64_t archive_oldest_s; /* how long the oldest waits */
    char archive_node[32];
    char archive_error[256]; /* pgBackRest's async error file, when failing */
};

/* A replicated group of services (the PostgreSQL cluster, the Redis primary and replicas) as
 * a whole: degraded when it runs short of what the stack file declares. */
struct status_cluster {
    char name[16];    /* "postgres", "redis" */
    unsigned members; /* declared in the stack file */
    unsigned running;
    bool degraded;
    char problems[512]; /* "; "-separated, "" when whole */
};
#define STATUS_MAX_CLUSTERS 4

struct status_snapshot {
    long supervisor_pid;
    char *stack_name; /* owned */
    char *state_dir;  /* owned */
    struct status_service *services;
    size_t n_services;
    /* Filled by status_collect_roles(). */
    struct status_cluster clusters[STATUS_MAX_CLUSTERS];
    size_t n_clusters;
    char warnings[512];                  /* one per line, "" when none (an old Patroni, say) */
    struct status_kafka kafka;           /* filled by status_collect_roles() */
    struct status_monitoring monitoring; /* filled by status_collect_roles() */
    struct status_backup backup;         /* filled by status_collect_roles() */
};

/* Asks the supervisor of ctx->state_dir.  -ENOENT/-ECONNREFUSED when none runs. */
int status_fetch(const struct cli_ctx *ctx, struct status_snapshot *ret);
void status_snapshot_release(struct status_snapshot *snap);
/* Keeps only the named services; -ENOENT (after logging) for a name that is not there. */
int status_filter(struct status_snapshot *snap, char **names, int n);
/* A service counts as up when running and healthy (or without health check), or when a
 * one-shot completed successfully. */
bool status_service_up(const struct status_service *svc);
/* Number of services that are not up, among those named in only (NULL-terminated; NULL: all);
 * appends "name (state)" for each to out. */
int status_pending(const struct status_snapshot *snap, char *const *only, struct buf *out);
/* The cluster ("postgres", "redis", "kafka") the stack's service is a member of; NULL when
 * none. */
const char *status_cluster_of(const struct stack *s, const char *service);
/* Queries roles and lag of every service whose kind has a status_probe, all concurrently,
 * within STATUS_ROLE_BUDGET_USEC in all (Kafka: STATUS_KAFKA_BUDGET_USEC): a service that does not
 * answer in time (frozen, say) gets role_error "no answer within ..." and does not hold up the
 * others.  Then judges the clusters (snap->clusters). */
#define STATUS_ROLE_BUDGET_USEC (200 * 1000)
/* Kafka brokers (JVMs: a GC pause or a burst of partition work delays an answer by 100 ms and
 * more on a loaded machine) and the consumer-group lag query get this much, concurrently with
 * the first round; typical answers take 10-40 ms. */
#define STATUS_KAFKA_BUDGET_USEC (400 * 1000)
/* True when a cluster is degraded. */
bool status_any_degraded(const struct status_snapshot *snap);
void status_collect_roles(struct status_snapshot *snap, const struct stack *s);
void status_print_table(const struct status_snapshot *snap, FILE *f);
/* The scheduled services' section of the table (status_jobs.c): schedule, last run, its result
 * and duration, next run.  Prints nothing when the snapshot has no job. */
void status_print_jobs(const struct status_snapshot *snap, FILE *f);
/* {"running": false, "state_dir": ...} (jansson); 0 or -ENOMEM. */
int status_print_not_running(const char *state_dir, FILE *f);
/* One JSON document (jansson); 0 or -ENOMEM. */
int status_print_json(const struct status_snapshot *snap, FILE *f);
