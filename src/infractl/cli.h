/* SPDX-License-Identifier: MIT */
/* cli.h - infractl's command table entry points and the shared context. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct stack;
struct sv_spec;

/* Exit codes (docs/infractl.md "Exit codes"). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,     /* runtime failure, invalid stack file */
    CLI_EXIT_USAGE = 2,       /* bad command line */
    CLI_EXIT_NOT_RUNNING = 3, /* no supervisor runs for this state directory */
    CLI_EXIT_UNHEALTHY = 4,   /* status: some service is not healthy; up --wait: timed out */
};

struct cli_ctx {
    const char *stack_path; /* -f; borrowed from argv or the built-in default */
    const char *state_dir;  /* --state-dir; absolute */
    const char *tools_dir;  /* ${tools_dir}: $UT_TOOLS_DIR or cli_tools_dir()'s default */
};

/* Where scripts/install-deps.sh installs tools (Patroni's venv): $UT_TOOLS_DIR when absolute,
 * /opt/ultrathink-infra for root (service users must reach it), else
 * ~/.local/share/ultrathink-infra.  The script computes the same (--tools-dir).  Caller frees. */
char *cli_tools_dir(void);

struct stack_secrets;

/* One line of `infractl help COMMAND`: a subcommand's or an option's syntax, and what it does. */
struct cli_help_item {
    const char *syntax; /* "stage KEY STAGE [--env ENV] [--percent P]", "-t, --timeout S" */
    const char *help;   /* one short line */
};

/* What `infractl help COMMAND` (and `infractl COMMAND --help`) prints; the top-level help uses
 * usage and the subcommands' names.  Each cmd_<verb>.c defines its own next to its parser, so
 * the help lists exactly the options the parser accepts. */
struct cli_help {
    const char *usage;                       /* "up [--detach] ...": also the usage of errors */
    const char *summary;                     /* one line, no trailing period */
    const struct cli_help_item *subcommands; /* { NULL }-terminated; NULL when none */
    const struct cli_help_item *options;     /* { NULL }-terminated; NULL when none */
    const char *notes;                       /* NULL, or lines each ending in "\n" */
};

/* Loads and resolves the stack file (creating secrets when create_secrets).  Prints the error
 * (file:line:col) itself.  Caller frees *ret with stack_free() and, when ret_secrets is
 * non-NULL, *ret_secrets with stack_secrets_free(). */
int cli_load_stack(const struct cli_ctx *ctx, bool create_secrets, struct stack **ret,
                   struct stack_secrets **ret_secrets);
/* The stack as the supervisor's input (spec.c): a deep copy; free with sv_spec_free().  sel:
 * NULL for every service, or n_services flags choosing some (a spec to preflight: its
 * dependencies on services left out are dropped). */
struct sv_spec *cli_spec_from_stack(const struct stack *s, const bool *sel);
/* Prints "usage: infractl VERB ARGS" for a bad option/argument and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when a supervisor answers on the state directory's control socket. */
bool cli_supervisor_running(const struct cli_ctx *ctx);

extern const struct cli_help cmd_up_help, cmd_down_help, cmd_status_help, cmd_logs_help,
        cmd_restart_help, cmd_flags_help, cmd_gpu_help, cmd_drill_help, cmd_kafka_help,
        cmd_alerts_help, cmd_stop_help, cmd_rollout_help, cmd_backup_help, cmd_restore_help;

int cmd_up(int argc, char **argv, struct cli_ctx *ctx);
int cmd_down(int argc, char **argv, struct cli_ctx *ctx);
int cmd_status(int argc, char **argv, struct cli_ctx *ctx);
int cmd_logs(int argc, char **argv, struct cli_ctx *ctx);
int cmd_restart(int argc, char **argv, struct cli_ctx *ctx);
int cmd_stop(int argc, char **argv, struct cli_ctx *ctx); /* cmd_restart.c */
extern const struct cli_help cmd_run_help;
int cmd_run(int argc, char **argv, struct cli_ctx *ctx); /* cmd_run.c: scheduled services */
int cmd_flags(int argc, char **argv, struct cli_ctx *ctx);
int cmd_rollout(int argc, char **argv, struct cli_ctx *ctx); /* cmd_rollout.c: rollout plans */
int cmd_gpu(int argc, char **argv, struct cli_ctx *ctx);     /* cmd_gpu.c: gpu_agent client */
int cmd_drill(int argc, char **argv, struct cli_ctx *ctx);
/* cmd_drill_rk.c: `drill redis|kafka|all` (cmd_drill() hands them over when handles()). */
bool cmd_drill_rk_handles(int argc, char **argv);
int cmd_drill_rk(int argc, char **argv, struct cli_ctx *ctx);
/* The drill documents `docs` (a jansson array of series) drawn as timelines into path (says so
 * on stderr); 0 or -errno (logged). */
int cli_drill_write_html(const char *path, void *docs);
int cmd_kafka(int argc, char **argv, struct cli_ctx *ctx);
int cmd_alerts(int argc, char **argv, struct cli_ctx *ctx); /* cmd_alerts.c: Alertmanager */

/* cmd_backup.c: pgBackRest backups, point-in-time restores into a scratch instance. */
int cmd_backup(int argc, char **argv, struct cli_ctx *ctx);
int cmd_restore(int argc, char **argv, struct cli_ctx *ctx);
/* cmd_backup.c: `drill restore ARGS` (argv[0] = "restore"): PITR drill on the running stack. */
int cli_drill_restore(int argc, char **argv, struct cli_ctx *ctx);
/* cmd_kafka.c: the stack's bootstrap list ("127.0.0.1:9092,...") appended to out; -errno
 * (logged) when the stack has no kafka service. */
struct buf;
int cli_kafka_bootstrap(const struct cli_ctx *ctx, struct buf *out);
/* cmd_kafka_apply.c: `kafka apply ARGS` (argv[0] = "apply"). */
int cli_kafka_apply(int argc, char **argv, struct cli_ctx *ctx);
