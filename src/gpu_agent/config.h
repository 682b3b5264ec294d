/* SPDX-License-Identifier: MIT */
/* config.h - gpu_agent's configuration file (YAML, docs/gpu_agent.md "Configuration"): where
 * it listens, where it keeps state, how often it collects, which XIDs drain a GPU, and the
 * per-GPU worker (command template, environment, user, stop signal and grace, restarts).
 * Parsing is strict: unknown keys, wrong types and bad values fail with file:line:col.
 *
 * Ownership: agent_config_load() returns a config the caller frees with agent_config_free();
 * every string in it belongs to the config. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/macro.h"

struct err;
struct buf;

#define AGENT_DEFAULT_PORT   9842
#define AGENT_DEFAULT_LISTEN ":9842"
#define AGENT_MAX_GPUS       64
#define AGENT_XID_MAX        1023 /* XIDs above this are counted but cannot be configured */

/* What an XID or a failure signal does to a GPU (DESIGN.md "GPU health model"). */
enum gpu_tier {
    GPU_TIER_COUNT,       /* application fault or informational: counted, the GPU stays */
    GPU_TIER_DRAIN_LATER, /* the worker finishes its current task, then the GPU is drained */
    GPU_TIER_FAIL_NOW,    /* the worker is stopped at once; its task is redelivered elsewhere */
    _GPU_TIER_MAX,
};

enum agent_restart {
    AGENT_RESTART_ALWAYS,
    AGENT_RESTART_ON_FAILURE,
    _AGENT_RESTART_MAX,
};

struct agent_worker_config {
    bool present;      /* a `worker:` section exists: one worker per GPU is supervised */
    char **argv;       /* NULL-terminated templates ({index} {uuid} {pci_bus_id} {name} ...) */
    char **env;        /* NULL-terminated "KEY=template" (never NULL when present) */
    char *user;        /* NULL = the agent's user */
    char *working_dir; /* NULL = the state directory */
    enum agent_restart restart;      /* default always */
    uint64_t backoff_initial_usec;   /* default 1s */
    uint64_t backoff_max_usec;       /* default 30s */
    uint64_t backoff_reset_usec;     /* default 60s */
    unsigned max_restarts;           /* default 0 = unlimited */
    int stop_signal;                 /* fail-now drains and shutdown: to the process group;
                                        default SIGTERM */
    uint64_t stop_grace_usec;        /* then SIGKILL; default 10s */
    int drain_later_signal;          /* drain-later: to the main process only; default SIGTERM */
    uint64_t drain_later_grace_usec; /* then SIGKILL to the group; default 24h */
    uint64_t log_max_bytes;          /* per worker log before rotation; default 10 MiB */
    unsigned log_keep;               /* rotated logs kept; default 3 */
};

struct agent_config {
    char *path;                     /* the file as given */
    char *listen_address;           /* "HOST:PORT" or ":PORT"; default ":9842" */
    char *state_dir;                /* absolute; default /var/lib/gpu_agent */
    char *hostname;                 /* NULL = gethostname() */
    char *nvml_library;             /* NULL = "libnvidia-ml.so.1" */
    char *api_token_file;           /* NULL = drain/undrain need no token */
    uint64_t collect_interval_usec; /* default 1s, at least 100ms */
    bool all_gpus;                  /* default true; false: only gpus[] get workers */
    unsigned *gpus;
    size_t n_gpus;
    /* tier of each XID 0..AGENT_XID_MAX (others are GPU_TIER_COUNT) */
    unsigned char xid_tier[AGENT_XID_MAX + 1];
    struct agent_worker_config worker;
};

/* Loads and validates path.  -EINVAL with *reterr (file:line:col and the key) for a bad file,
 * other -errno (reterr names the file) when it cannot be read.  *ret written on success only. */
int agent_config_load(const char *path, struct agent_config **ret,
                      struct err *reterr) WARN_UNUSED_RESULT;
/* The same from text (name is used in errors). */
int agent_config_parse(const char *name, const char *text, size_t len, struct agent_config **ret,
                       struct err *reterr) WARN_UNUSED_RESULT;
/* NULL-safe; returns NULL. */
struct agent_config *agent_config_free(struct agent_config *c);

/* The built-in tiers: fail now 46 48 62 64 74 79 95 119 120 140 143 155 156 158; drain later
 * 54 63 92 94 110 136; everything else counted only (13, 31, 43, 45, 68, 109, ...). */
void agent_config_default_xid_tiers(unsigned char tiers[AGENT_XID_MAX + 1]);
/* "count", "drain_later", "fail_now". */
const char *gpu_tier_to_string(enum gpu_tier t);

/* Identity a worker template may use. */
struct worker_vars {
    unsigned index;
    const char *uuid, *pci_bus_id, *name, *host;
    unsigned minor;
};

/* Expands {index} {uuid} {pci_bus_id} {name} {minor} {host} in tmpl, with {{ and }} for
 * literal braces, appending to out.  -EINVAL for an unknown or unterminated placeholder
 * (*ret_col, may be NULL, gets its 1-based position), -ENOBUFS when out->max is hit. */
int worker_template_expand(const char *tmpl, const struct worker_vars *v, struct buf *out,
                           unsigned *ret_col) WARN_UNUSED_RESULT;
