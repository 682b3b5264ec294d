/* SPDX-License-Identifier: MIT */
/* infractl - brings the local HA stack up, shows its health, controls it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "supervise/supervise.h"

#define CLI_ANY  UINT32_MAX
#define PROGNAME "infractl"

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv, struct cli_ctx *ctx);
    const struct cli_help *help; /* defined in cmd_<name>.c, beside the option parser */
};

static int cmd_help(int argc, char **argv, struct cli_ctx *ctx);
static int cmd_version(int argc, char **argv, struct cli_ctx *ctx);

static const struct cli_help help_help = { .usage = "help [COMMAND]", .summary = "Show help" };
static const struct cli_help version_help = { .usage = "version", .summary = "Show the version" };

static const struct cli_cmd commands[] = {
    { "up", cmd_up, &cmd_up_help },
    { "down", cmd_down, &cmd_down_help },
    { "status", cmd_status, &cmd_status_help },
    { "logs", cmd_logs, &cmd_logs_help },
    { "restart", cmd_restart, &cmd_restart_help },
    { "stop", cmd_stop, &cmd_stop_help },
    { "run", cmd_run, &cmd_run_help },
    { "flags", cmd_flags, &cmd_flags_help },
    { "rollout", cmd_rollout, &cmd_rollout_help },
    { "gpu", cmd_gpu, &cmd_gpu_help },
    { "drill", cmd_drill, &cmd_drill_help },
    { "kafka", cmd_kafka, &cmd_kafka_help },
    { "alerts", cmd_alerts, &cmd_alerts_help },
    { "backup", cmd_backup, &cmd_backup_help },
    { "restore", cmd_restore, &cmd_restore_help },
    { "help", cmd_help, &help_help },
    { "version", cmd_version, &version_help },
};

static int cmd_version(int argc, char **argv, struct cli_ctx *ctx)
{
    (void)argc;
    (void)argv;
    (void)ctx;
    printf("infractl %s\n", UT_VERSION);
    return CLI_EXIT_OK;
}

/* Options: "  SYNTAX  help" in two columns, the help on the next line when SYNTAX is wide. */
static void print_options(FILE *f, const struct cli_help_item *items)
{
    for (const struct cli_help_item *it = items; it->syntax; it++) {
        if (strlen(it->syntax) <= 24)
            fprintf(f, "  %-24s %s\n", it->syntax, it->help);
        else
            fprintf(f, "  %s\n  %-24s %s\n", it->syntax, "", it->help);
    }
}

/* The top-level help: every command with all its options, and its subcommands' names. */
static void print_help(FILE *f)
{
    char *tools = cli_tools_dir();

    fprintf(f, "usage: infractl [-f STACKFILE] [--state-dir DIR] COMMAND [ARGS]\n\n"
               "Brings the ultrathink HA stack up on this machine and controls it.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        const struct cli_help *h = commands[i].help;

        fprintf(f, "  %s\n      %s\n", h->usage, h->summary);
        if (!h->subcommands)
            continue;
        for (const struct cli_help_item *it = h->subcommands; it->syntax; it++)
            fprintf(f, "%s%.*s", it == h->subcommands ? "      SUBCOMMAND: " : ", ",
                    (int)strcspn(it->syntax, " "), it->syntax);
        fprintf(f, " (`infractl help %s`)\n", commands[i].name);
    }
    fprintf(f,
            "\nOptions (before or after COMMAND):\n"
            "  -f, --file STACKFILE   stack file (default: $INFRACTL_STACK_FILE or\n"
            "                         %s/infrastructure/local/stack.yml)\n"
            "  --state-dir DIR        data, logs, secrets, control socket (default:\n"
            "                         $INFRACTL_STATE_DIR or %s/.infra)\n"
            "  -h, --help             this help; `infractl help COMMAND` (or `infractl COMMAND\n"
            "                         --help`) for one command's options\n"
            "\nEnvironment:\n"
            "  UT_TOOLS_DIR           where scripts/install-deps.sh put Patroni's virtual\n"
            "                         environment: ${tools_dir} in stack files (default now:\n"
            "                         %s)\n"
            "\nExit codes:\n"
            "  0  success\n"
            "  1  runtime failure (also: invalid stack file, port in use, missing binary)\n"
            "  2  usage error\n"
            "  3  the stack is not running (status, restart); flags, rollout: rolloutd\n"
            "     unreachable;\n"
            "     gpu: an agent is unreachable\n"
            "  4  not healthy: status found an unhealthy service; up --wait timed out;\n"
            "     gpu status: a GPU failed or is drained; rollout status --watch: the\n"
            "     rollout paused or --timeout passed\n",
            UT_SOURCE_DIR, UT_SOURCE_DIR, tools);
    free(tools);
}

/* `infractl help COMMAND`: usage, every subcommand with its options, every option. */
static void print_command_help(FILE *f, const struct cli_help *h)
{
    fprintf(f, "usage: infractl %s\n\n%s.\n", h->usage, h->summary);
    if (h->subcommands) {
        fprintf(f, "\nSubcommands:\n");
        for (const struct cli_help_item *it = h->subcommands; it->syntax; it++)
            fprintf(f, "  %s\n      %s\n", it->syntax, it->help);
    }
    if (h->options) {
        fprintf(f, "\nOptions:\n");
        print_options(f, h->options);
    }
    if (h->notes)
        fprintf(f, "\n%s", h->notes);
    fprintf(f, "\nSee docs/infractl.md for details.\n");
}

static const struct cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (streq(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv, struct cli_ctx *ctx)
{
    (void)ctx;
    if (argc > 1) {
        const struct cli_cmd *c = find_cmd(argv[1]);
        if (!c) {
            log_error("unknown command '%s'", argv[1]);
            return CLI_EXIT_USAGE;
        }
        print_command_help(stdout, c->help);
        return CLI_EXIT_OK;
    }
    print_help(stdout);
    return CLI_EXIT_OK;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", PROGNAME);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: infractl %s\n", usage);
    return CLI_EXIT_USAGE;
}

int cli_load_stack(const struct cli_ctx *ctx, bool create_secrets, struct stack **ret,
                   struct stack_secrets **ret_secrets)
{
    struct stack *s = NULL;
    struct stack_secrets *sec = NULL;
    struct err e = ERR_INIT;
    char msg[600];
    int r;

    r = stack_load(ctx->stack_path, &s, &e);
    if (r < 0) {
        log_error("invalid stack file: %s", err_format(&e, msg, sizeof msg));
        goto out;
    }
    r = stack_secrets_ensure_err(s, ctx->state_dir, create_secrets, &sec, &e);
    if (r < 0) {
        if (r == -ENOENT && !create_secrets)
            log_error("%s (has `infractl up` run with --state-dir %s?)", e.msg, ctx->state_dir);
        else
            log_error("%s", err_format(&e, msg, sizeof msg));
        goto out;
    }
    {
        struct stack_vars vars = { .state_dir = ctx->state_dir,
                                   .tools_dir = ctx->tools_dir,
                                   .secret = stack_secrets_lookup,
                                   .userdata = sec };
        r = stack_resolve(s, &vars, &e);
    }
    if (r < 0) {
        log_error("%s", err_format(&e, msg, sizeof msg));
        goto out;
    }
    *ret = s;
    s = NULL;
    if (ret_secrets) {
        *ret_secrets = sec;
        sec = NULL;
    }
out:
    stack_secrets_free(sec);
    stack_free(s);
    return r;
}

bool cli_supervisor_running(const struct cli_ctx *ctx)
{
    struct sv_status st;
    int r = sv_status_fetch(ctx->state_dir, 2 * USEC_PER_SEC, &st);

    sv_status_release(r >= 0 ? &st : NULL);
    return r >= 0;
}

static char *absolute_path(const char *p)
{
    char cwd[PATH_MAX];

    if (p[0] == '/')
        return xstrdup(p);
    if (!getcwd(cwd, sizeof cwd))
        return xstrdup(p);
    return xasprintf("%s/%s", cwd, p);
}

/* True when every existing directory on the way to path can be traversed by anyone: the
 * services run as several system users (postgres, redis, etcd, haproxy). */
static bool path_traversable(const char *path)
{
    char p[PATH_MAX];
    struct stat st;

    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p)
        return false;
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        *slash = '\0';
        if (stat(p[0] ? p : "/", &st) == 0 && !(st.st_mode & S_IXOTH))
            return false;
        if (!p[0])
            break;
    }
    return true;
}

/* The repository's .infra/ when service users can reach it; otherwise (a checkout under
 * /root, say) a directory under /var/tmp named after the checkout, so `make up` works
 * wherever the repository was cloned. */
static char *default_state_dir(void)
{
    const char *src = UT_SOURCE_DIR;
    uint32_t h = 2166136261u; /* FNV-1a of the checkout path */

    if (path_traversable(UT_SOURCE_DIR "/.infra"))
        return xstrdup(UT_SOURCE_DIR "/.infra");
    for (const char *c = src; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return xasprintf("/var/tmp/ultrathink-infra-%08x", h);
}

char *cli_tools_dir(void)
{
    const char *env = getenv("UT_TOOLS_DIR"), *home = getenv("HOME");

    if (env && env[0] == '/')
        return xstrdup(env);
    if (geteuid() == 0)
        return xstrdup("/opt/ultrathink-infra");
    return xasprintf("%s/.local/share/ultrathink-infra", home && home[0] == '/' ? home : "/tmp");
}

static void suggest(const char *verb)
{
    const char *best = NULL;
    unsigned best_d = 3;

    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        unsigned d = str_edit_distance(verb, commands[i].name);
        if (d < best_d) {
            best_d = d;
            best = commands[i].name;
        }
    }
    if (best)
        log_error("unknown command '%s', did you mean '%s'?", verb, best);
    else
        log_error("unknown command '%s' (see 'infractl help')", verb);
}

/* Pulls the global options (-f/--file, --state-dir, -h) out of argv wherever they stand, so
 * that `infractl -f x status` and `infractl status -f x` both work, as with compose.  After
 * `logs`, -f is its --follow (as in tail and compose); --file still names the stack file. */
static int parse_global(int *argc, char **argv, const char **stack, const char **state, bool *help)
{
    const char *verb = NULL;
    int out = 1;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;

        if (streq(a, "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (verb && streq(verb, "kafka") && a[0] != '-' && !streq(a, "apply") &&
            !streq(a, "bootstrap")) {
            /* `kafka TOOL ARGS`: ARGS are the Kafka tool's own (its --help, its --file) */
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (!verb && a[0] != '-')
            verb = a;
        if ((streq(a, "-f") && !(verb && streq(verb, "logs"))) || streq(a, "--file"))
            dst = stack;
        else if (str_startswith(a, "--file="))
            dst = stack, val = a + 7;
        else if (streq(a, "--state-dir"))
            dst = state;
        else if (str_startswith(a, "--state-dir="))
            dst = state, val = a + 12;
        else if (streq(a, "-h") || streq(a, "--help")) {
            *help = true;
            continue;
        }
        if (!dst) {
            argv[out++] = argv[i];
            continue;
        }
        if (!val) {
            if (i + 1 >= *argc) {
                log_error("option '%s' needs a value", a);
                return -EINVAL;
            }
            val = argv[++i];
        }
        *dst = val;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int main(int argc, char **argv)
{
    const char *stack = getenv("INFRACTL_STACK_FILE");
    const char *state = getenv("INFRACTL_STATE_DIR");
    char *state_abs = NULL, *stack_default = NULL, *tools = NULL;
    struct cli_ctx ctx = { 0 };
    const struct cli_cmd *cmd;
    struct sigaction sa = { .sa_handler = SIG_IGN };
    bool help = false;
    int r;

    log_set_prog(PROGNAME);
    (void)sigaction(SIGPIPE, &sa, NULL);
    if (parse_global(&argc, argv, &stack, &state, &help) < 0)
        return CLI_EXIT_USAGE;
    if (help && argc < 2) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (streq(argv[1], "--version"))
        return cmd_version(0, NULL, NULL);
    cmd = find_cmd(argv[1]);
    if (!cmd) {
        suggest(argv[1]);
        return CLI_EXIT_USAGE;
    }
    if (help) {
        char help_verb[] = "help";
        char *hargv[] = { help_verb, argv[1], NULL };
        return cmd_help(2, hargv, &ctx);
    }
    if (!stack)
        stack = stack_default = xstrdup(UT_SOURCE_DIR "/infrastructure/local/stack.yml");
    state_abs = state ? absolute_path(state) : default_state_dir();
    tools = cli_tools_dir();
    ctx.stack_path = stack;
    ctx.state_dir = state_abs;
    ctx.tools_dir = tools;

    optind = 0; /* the command parses its own options with getopt_long */
    r = cmd->fn(argc - 1, argv + 1, &ctx);

    if (fflush(stdout) != 0 && errno != EPIPE) {
        log_error("write to stdout failed: %s", strerror(errno));
        r = CLI_EXIT_FAILURE;
    }
    free(state_abs);
    free(tools);
    free(stack_default);
    return r;
}
