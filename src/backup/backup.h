/* SPDX-License-Identifier: MIT */
/* backup.h - pgBackRest driven as a child process: its configuration, progress, info, metrics. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/macro.h"

struct buf;
struct err;

#define BACKUP_MAX_NODES 8

/* ===== pgbackrest.conf ===== */

/* One pgN-* group of the stanza section. */
struct backup_node {
    char *path;        /* pgN-path: the node's data directory; owned */
    char *socket_path; /* pgN-socket-path; owned, NULL when unset */
    unsigned port;     /* pgN-port; 5432 when unset */
};

/* What infractl needs from pgbackrest.conf (an INI file: [global] and one [stanza]). */
struct backup_conf {
    char *path;      /* the file itself; owned */
    char *stanza;    /* the first section that is not global or global:CMD; owned */
    char *repo_path; /* repo1-path; owned, NULL when unset (pgBackRest's default) */
    char *log_path;  /* log-path; owned, NULL when unset (/var/log/pgbackrest) */
    char *compress_type;
    char *compress_level;
    struct backup_node nodes[BACKUP_MAX_NODES];
    size_t n_nodes;
};

/* Reads path into *ret (caller frees with backup_conf_release()).  -ENOENT when the file is
 * missing, -EINVAL (with file:line in reterr) when it has no stanza section or a pgN key of an
 * index over BACKUP_MAX_NODES. */
int backup_conf_load(const char *path, struct backup_conf *ret,
                     struct err *reterr) WARN_UNUSED_RESULT;
/* Parses text (the file's contents; path only names it in errors). */
int backup_conf_parse(const char *path, const char *text, struct backup_conf *ret,
                      struct err *reterr) WARN_UNUSED_RESULT;
void backup_conf_release(struct backup_conf *c);

/* ===== running pgbackrest ===== */

/* Progress of a backup or restore, from its --log-level-console=detail lines ("backup file
 * PATH (SIZE, PCT%)", "restore file ..."). */
struct backup_progress {
    uint64_t files;      /* files done */
    uint64_t bytes;      /* bytes of those files (pgBackRest's rounded sizes) */
    double percent;      /* pgBackRest's own figure: share of the total bytes done, 0..100 */
    uint64_t elapsed_us; /* since the start of the command */
};

/* Called for every progress line (and never after backup_run() returns).  userdata borrowed. */
typedef void (*backup_progress_fn)(const struct backup_progress *p, void *userdata);

/* How to run pgbackrest. */
struct backup_cmd {
    const char *bin;         /* "/usr/bin/pgbackrest" when NULL */
    const char *conf_path;   /* --config */
    const char *stanza;      /* --stanza (omitted when NULL) */
    const char *run_as;      /* user to become when root (e.g. "postgres"); NULL: stay */
    const char *const *args; /* NULL-terminated: options and the command ("backup", ...) */
    backup_progress_fn on_progress;
    void *userdata;
    uint64_t timeout_us; /* 0: none; the child is SIGTERMed (then SIGKILLed) when it passes */
};

/* What a run returned. */
struct backup_result {
    int exit_code; /* pgbackrest's exit status; -1 when it died of a signal */
    bool timed_out;
    uint64_t elapsed_us;
    struct backup_progress last; /* the last progress seen */
    char *out;                   /* stdout, whole (capped at 16 MiB); owned */
    char *error; /* the last ERROR line(s) of its output ("ERROR: [055]: ..."), owned; NULL
                  * when it printed none */
};

/* Runs pgbackrest with stdout and stderr on pipes, calling cmd->on_progress for each progress
 * line.  Returns 0 when it ran (whatever its exit status: see ret->exit_code), -ENOENT when the
 * binary is missing, -ESRCH when run_as is not a user, -errno when it could not be started.
 * *ret is always initialised; release it with backup_result_release(). */
int backup_run(const struct backup_cmd *cmd, struct backup_result *ret) WARN_UNUSED_RESULT;
void backup_result_release(struct backup_result *r);

/* Runs argv[0] (an absolute path) as run_as (NULL: stay) with stdout/stderr captured like
 * backup_run() (no progress).  For pg_ctl and the like. */
int backup_spawn(const char *const *argv, const char *run_as, uint64_t timeout_us,
                 struct backup_result *ret) WARN_UNUSED_RESULT;

/* Parses one output line of pgbackrest into *p (files and bytes are added, percent replaced).
 * Returns true when the line was a progress line.  Pure; for tests. */
bool backup_progress_parse_line(const char *line, struct backup_progress *p);

/* ===== pgbackrest info --output=json ===== */

enum backup_type {
    BACKUP_TYPE_FULL,
    BACKUP_TYPE_DIFF,
    BACKUP_TYPE_INCR,
    _BACKUP_TYPE_MAX,
};
const char *backup_type_name(enum backup_type t);
/* -EINVAL when s is not full, diff or incr. */
int backup_type_parse(const char *s, enum backup_type *ret) WARN_UNUSED_RESULT;

struct backup_set {
    char label[64];
    enum backup_type type;
    int64_t start, stop; /* Unix seconds */
    uint64_t size;       /* database size */
    uint64_t delta;      /* database bytes copied by this backup */
    uint64_t repo_size;  /* repository size of the set (this backup and its references) */
    uint64_t repo_delta; /* repository bytes written by this backup */
    char wal_start[25], wal_stop[25]; /* the WAL the backup needs */
    char prior[64];                   /* the backup it builds on; "" for a full one */
    bool error;                       /* pgBackRest found page checksum errors */
};

struct backup_info {
    char stanza[64];
    int status_code;  /* pgBackRest's stanza status: 0 ok, 1 missing stanza path, 2 no valid
                       * backups, 3 missing stanza data, 4 different cipher, 5 lock, 6 ... */
    char status[128]; /* its message */
    bool backup_running;
    char wal_min[25], wal_max[25]; /* the archive's range; "" when empty */
    struct backup_set *sets;       /* oldest first; owned */
    size_t n_sets;
};

/* Parses the JSON of `pgbackrest --stanza=S info --output=json` (an array of stanzas; the one
 * named stanza, or the first when stanza is NULL).  -EPROTO with a message in reterr when the
 * document is not what pgBackRest writes, -ENOENT when the stanza is not in it. */
int backup_info_parse(const char *json, const char *stanza, struct backup_info *ret,
                      struct err *reterr) WARN_UNUSED_RESULT;
void backup_info_release(struct backup_info *i);
/* The newest set of type t (any type when t is _BACKUP_TYPE_MAX); NULL when none. */
const struct backup_set *backup_info_latest(const struct backup_info *i, enum backup_type t);

/* ===== recovery targets ===== */

/* Parses a recovery target time: "YYYY-MM-DD HH:MM[:SS[.ffffff]]" (or T between) followed by
 * "Z", "+HH", "+HHMM" or "+HH:MM" (or -).  A zone is required: a target must not depend on
 * whose clock reads it.  *ret_us: microseconds since the epoch.  -EINVAL when malformed (the
 * message in reterr says which part). */
int backup_time_parse(const char *s, int64_t *ret_us, struct err *reterr) WARN_UNUSED_RESULT;
/* "YYYY-MM-DD HH:MM:SS.ffffff+00" of us into buf (at least 32 bytes); returns buf. */
const char *backup_time_format(int64_t us, char *buf, size_t n);

/* ===== node-exporter textfile metrics ===== */

/* The outcome of one `infractl backup` run (ultrathink_backup_* series of its type). */
struct backup_outcome {
    const char *stanza;
    enum backup_type type; /* as asked for (pgBackRest makes a full of an incr without one) */
    bool success;
    int64_t attempt_end; /* Unix seconds */
    double duration_s;   /* of this run */
};

/* Appends the exposition of one run: ultrathink_backup_last_status (1/0),
 * _last_attempt_timestamp_seconds and _last_duration_seconds, labels stanza and type.  One
 * file per type (backup-TYPE.prom) keeps the other types' last runs.  -ENOBUFS when full. */
int backup_metrics_format_run(const struct backup_outcome *o, struct buf *out) WARN_UNUSED_RESULT;
/* Appends what the repository says, for every type that has a backup:
 * ultrathink_backup_last_success_timestamp_seconds (its stop time), _last_size_bytes (the
 * database), _last_repo_size_bytes (written to the repository), _last_backup_duration_seconds;
 * and ultrathink_backup_sets.  -ENOBUFS when out is full. */
int backup_metrics_format_repo(const struct backup_info *i, struct buf *out) WARN_UNUSED_RESULT;
