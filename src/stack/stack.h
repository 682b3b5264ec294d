/* SPDX-License-Identifier: MIT */
/* stack.h - the stack model: services the supervisor runs, parsed from one compose-like YAML
 * stack file (docs/stack-file.md).  A parsed stack keeps ${...} references unexpanded;
 * stack_resolve() expands them once the state directory and secrets exist. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"
#include "probe/probe.h"

struct buf;
struct err;

enum stack_restart {
    STACK_RESTART_NO,
    STACK_RESTART_ON_FAILURE,
    STACK_RESTART_ALWAYS,
    _STACK_RESTART_MAX,
};

enum stack_dep_cond {
    STACK_DEP_STARTED,   /* service_started */
    STACK_DEP_HEALTHY,   /* service_healthy */
    STACK_DEP_COMPLETED, /* service_completed_successfully */
    _STACK_DEP_COND_MAX,
};

struct stack_dep {
    char *service; /* name of a service of the same stack (validated) */
    enum stack_dep_cond cond;
    size_t index;       /* that service's index in stack.services */
    unsigned line, col; /* where the dependency is named in the stack file */
};

struct stack_health {
    bool present; /* false: the service is "healthy" as soon as it is running */
    struct probe_spec probe;
    uint64_t interval_usec;     /* default 2s */
    uint64_t timeout_usec;      /* default 1s */
    uint64_t start_period_usec; /* default 0: failures in it do not count */
    unsigned retries;           /* consecutive failures before unhealthy; default 3 */
};

/* A lease-backed lock the service holds in etcd (Patroni's leader key).  Once every process of
 * the service is verified gone, the supervisor deletes the key if its value still names this
 * service (compare-and-delete, etcd v3), so a standby takes over without waiting out the lease;
 * a key that has moved on is never touched. */
struct stack_lock {
    bool present;
    char *host; /* etcd client endpoint; default 127.0.0.1 */
    uint16_t port;
    char *key;          /* e.g. /service/ultrathink/leader */
    char *value;        /* the value that means "held by this service" (the Patroni member name) */
    char *pidfile;      /* the guarded process's pid file (postmaster.pid); NULL = none */
    char *handover_key; /* present while a planned handover runs (Patroni's failover key) */
};

struct stack_file {
    char *template_path; /* absolute after parse (relative ones are taken from the stack dir) */
    char *path;          /* output path */
    unsigned mode;       /* default 0644 */
    bool overwrite;      /* default true; false = write only when missing */
    bool expand;         /* default true; false = copy the file as it is (scripts, SQL) */
};

/* A scheduled service (a job, docs/stack-file.md `schedule:`): a one-shot the supervisor starts
 * at offset + k * every after the Unix epoch, UTC (so `daily: "02:00"` is every 24h, offset 2h). */
struct stack_schedule {
    bool present;
    uint64_t every_usec;        /* the period: `every`, or 24h for `daily` */
    uint64_t offset_usec;       /* below every_usec */
    uint64_t random_delay_usec; /* each run starts up to this much later; below every_usec */
    uint64_t timeout_usec;      /* a run still going is stopped after this; 0 = never; default 1h */
    bool persistent;            /* run once at start when a due time passed while down */
};

struct stack_service {
    char *name;
    unsigned line;     /* line of the service's key in the stack file */
    char *kind;        /* role interpreter for status: etcd, patroni, haproxy, pgbouncer, redis,
                          sentinel, or NULL (generic) */
    char *package;     /* Debian package providing argv[0] ("pypi:NAME==VERSION" for a PyPI one
                          in the tools dir), for "not found" errors; may be NULL */
    char **argv;       /* NULL-terminated, argc >= 1 */
    char **env;        /* NULL-terminated "KEY=VALUE" list (may be empty, never NULL) */
    char *user;        /* run as (when the supervisor is root); NULL = supervisor's user */
    char *working_dir; /* NULL = state dir */
    char *netns;       /* network namespace (/run/netns/NAME, ip netns) it runs in; NULL = the
                          supervisor's */
    struct stack_dep *deps;
    size_t n_deps;
    struct stack_health health;
    /* Liveness (Kubernetes style): `retries` failures in a row after start_period and the whole
     * process tree is killed (SIGKILL) and the service restarted by its policy. */
    struct stack_health liveness;
    uint64_t freeze_after_usec; /* main process stopped (SIGSTOP) this long: killed like a
                                   failed liveness; 0 = never */
    struct stack_lock lock;
    bool has_status_probe;          /* status_probe present */
    struct probe_spec status_probe; /* endpoint/credentials for role and lag queries */
    enum stack_restart restart;     /* default on-failure */
    uint64_t backoff_initial_usec;  /* default 1s (never below 1s between starts) */
    uint64_t backoff_max_usec;      /* default 30s */
    uint64_t backoff_reset_usec;    /* uptime after which backoff resets; default 60s */
    unsigned max_restarts;          /* consecutive failed starts before "failed"; 0 = unlimited */
    int stop_signal;                /* default SIGTERM */
    uint64_t stop_grace_usec;       /* default 10s, then SIGKILL to the process group */
    uint16_t *ports;                /* TCP ports the service binds (checked free before up) */
    size_t n_ports;
    char **dirs; /* NULL-terminated; created 0700 and owned by user */
    struct stack_file *files;
    size_t n_files;
    struct stack_schedule schedule; /* present: a job, never a daemon (restart "no") */
};

struct stack {
    char *name;
    char *path;             /* the stack file as given */
    char *dir;              /* absolute directory of the stack file */
    char **secrets;         /* NULL-terminated names */
    uint64_t log_max_bytes; /* per-service log size before rotation; default 10 MiB */
    unsigned log_keep;      /* rotated files kept; default 3 */
    char *job_metrics_dir;  /* `jobs.metrics_dir`: where the supervisor writes the jobs' Prometheus
                               textfile; default "${state_dir}/jobs" */
    struct stack_service *services; /* in file order */
    size_t n_services;
    bool resolved; /* stack_resolve() succeeded: strings hold final values */
};

#define STACK_MAX_SERVICES 1024u /* more is refused at parse time */

/* Parses a stack file.  On error returns -EINVAL (or -errno for I/O), fills *reterr with
 * file:line:col and a message naming the field, and writes nothing to *ret.
 * The result is freed with stack_free(). */
int stack_load(const char *path, struct stack **ret, struct err *reterr) WARN_UNUSED_RESULT;
/* Same from a memory buffer; `name` is used as the file name in errors. */
int stack_parse(const char *name, const char *text, size_t len, struct stack **ret,
                struct err *reterr) WARN_UNUSED_RESULT;
/* NULL-safe; returns NULL. */
struct stack *stack_free(struct stack *s);

/* The service called name, or NULL. */
struct stack_service *stack_find(const struct stack *s, const char *name);
/* Service indices in start order (dependencies first).  ret_order has n_services entries. */
void stack_start_order(const struct stack *s, size_t *ret_order);
/* Marks in sel (n_services entries, set by the caller, e.g. all false) the named services and
 * everything they depend on, transitively (what `up SERVICE...` starts).  -ENOENT with
 * *reterr naming the first unknown service; sel is then unspecified. */
int stack_closure(const struct stack *s, char *const *names, size_t n_names, bool *sel,
                  struct err *reterr) WARN_UNUSED_RESULT;

/* "no", "on-failure", "always"; "service_started", ... (NULL if unknown).  Stop signals are
 * named by core/signal.h. */
const char *stack_restart_to_string(enum stack_restart r);
const char *stack_dep_cond_to_string(enum stack_dep_cond c);

/* Values for ${...} references. */
struct stack_vars {
    const char *state_dir; /* absolute */
    const char *tools_dir; /* absolute: installed tools (scripts/install-deps.sh --tools-dir) */
    /* Returns the secret's value (borrowed) or NULL when missing. */
    const char *(*secret)(const char *name, void *userdata);
    void *userdata;
};

/* Expands ${state_dir}, ${stack_dir}, ${tools_dir}, ${secret.NAME} and $$ in every string of the
 * stack (argv, env, dirs, file paths, working_dir, probe fields).  -EINVAL with *reterr naming the
 * service and field when a value is missing. */
int stack_resolve(struct stack *s, const struct stack_vars *vars,
                  struct err *reterr) WARN_UNUSED_RESULT;
/* All or nothing: on error the stack is unchanged.  A stack is resolved at most once
 * (-EALREADY after that, since "$$" has become "$").  After success every working_dir, dirs
 * entry and files[].path/template_path is absolute (-EINVAL otherwise). */
/* Expands one template string with the same rules (for rendering `files:`). */
int stack_expand(const struct stack *s, const struct stack_vars *vars, const char *in,
                 struct buf *out, struct err *reterr) WARN_UNUSED_RESULT;
/* Appends the expansion to out.  On error (-EINVAL: unknown or undeclared reference, missing
 * value; -ENOBUFS: out->max hit) reterr->line/col give the position inside `in` (1-based). */

/* Prepares one service of a RESOLVED stack (-EINVAL otherwise) for its start: creates its
 * dirs (mkdir -p, 0700; leaf and the components it creates are chowned to svc->user when
 * running as root) and renders its files (template expanded with stack_expand(), written
 * atomically with the file's mode and chowned likewise; overwrite=false keeps an existing
 * file; a missing parent directory is created like a dir).  -EINVAL naming the user when
 * svc->user does not exist (checked when running as root); other errors name the path or the
 * template (file:line:col for a bad reference inside it) in *reterr. */
int stack_prepare_service(const struct stack *s, const struct stack_service *svc,
                          const struct stack_vars *vars, struct err *reterr) WARN_UNUSED_RESULT;
