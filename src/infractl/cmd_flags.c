/* SPDX-License-Identifier: MIT */
/* infractl flags create|get|list|stage|kill|history|delete: rolloutd's admin API over HTTP
 * (src/httpc).  The URL comes from --url, $ROLLOUTD_URL, STATE/rolloutd/rolloutd.addr or
 * http://127.0.0.1:8090; the token from --token-file, $ROLLOUTD_TOKEN or
 * STATE/rolloutd/admin.token.  --json prints rolloutd's JSON unchanged. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "httpc/httpc.h"
#include "rolloutd_api.h"

/* Each subcommand's syntax: `help flags` lists them, and a usage error shows the one used. */
#define FLAGS_USAGE "flags [--url URL] [--token-file PATH] [--json] "
#define SYN_CREATE \
    "create KEY [--description TEXT] [--variants A,B|NAME=VALUE,...] [--from FLAG.json]"
#define SYN_GET     "get KEY"
#define SYN_LIST    "list"
#define SYN_STAGE   "stage KEY off|shadow|canary|partial|full [--env ENV] [--percent P]"
#define SYN_KILL    "kill KEY [--env ENV] [--off]"
#define SYN_HISTORY "history KEY [--limit N]"
#define SYN_DELETE  "delete KEY"

static const char usage[] = FLAGS_USAGE "SUBCOMMAND [ARGS]";

static const struct cli_help_item flags_subcommands[] = {
    { SYN_CREATE, "create a flag (--variants or --from, see below)" },
    { SYN_GET, "show one flag: version, type, each environment's stage and percentage" },
    { SYN_LIST, "show every flag" },
    { SYN_STAGE, "move ENV to a stage; --percent sets that stage's percentage (0-100)" },
    { SYN_KILL, "kill switch: control for everyone in ENV at once; --off lifts it" },
    { SYN_HISTORY, "who changed what and when, oldest first (N: 1-1000, default 100)" },
    { SYN_DELETE, "delete the flag (its history stays)" },
    { NULL, NULL },
};

static const struct cli_help_item flags_options[] = {
    { "--url URL", "rolloutd's URL (default: $ROLLOUTD_URL, else the stack's, see below)" },
    { "--token-file PATH", "admin token (default: $ROLLOUTD_TOKEN, STATE/rolloutd/admin.token)" },
    { "--json", "print rolloutd's JSON unchanged" },
    { "-d, --description TEXT", "create: the flag's description" },
    { "--variants A,B", "create: a boolean flag (A = control = false, B = candidate = true)" },
    { "--variants A,B,C,...", "create: a string flag whose values are the names" },
    { "--variants NAME=VALUE,...", "create: values as given (JSON when they parse, else strings)" },
    { "--from FLAG.json", "create: the whole flag JSON (docs/flags.md); not with --variants" },
    { "-e, --env ENV", "stage, kill: the environment (default production)" },
    { "-p, --percent P", "stage shadow|canary|partial: its percentage (0-100)" },
    { "--off", "kill: lift the kill switch" },
    { "-l, --limit N", "history: at most N entries" },
    { NULL, NULL },
};

const struct cli_help cmd_flags_help = {
    .usage = usage,
    .summary = "Manage rolloutd flags",
    .subcommands = flags_subcommands,
    .options = flags_options,
    .notes = "--url, --token-file and --json may stand anywhere after `flags`; the default\n"
             "URL is STATE/rolloutd/rolloutd.addr's (the stack's rolloutd), else " RDAPI_DEFAULT_URL
             ".\n"
             "Staging a flag to the stage and percentage it has, or killing it twice, changes\n"
             "nothing: rolloutd keeps its version and history.\n"
             "Exit codes: 0 done; 1 rolloutd refused the request (its message is printed);\n"
             "2 usage error; 3 rolloutd unreachable.\n",
};

static bool reply_unchanged(const struct httpc_response *rep)
{
    return strcasecmp(rep->header, "true") == 0;
}

static void print_envs(json_t *flag)
{
    json_t *envs = json_object_get(flag, "environments"), *env;
    const char *name;

    if (!json_object_size(envs)) {
        printf("  (no environments: off everywhere)\n");
        return;
    }
    json_object_foreach(envs, name, env)
    {
        const char *stage = json_string_value(json_object_get(env, "stage"));
        json_t *pct = stage ? json_object_get(env, stage) : NULL;

        printf("  %-12s %-8s", name, stage ? stage : "?");
        if (json_is_number(pct))
            printf(" %g%%", json_number_value(pct));
        if (json_is_true(json_object_get(env, "kill")))
            printf("  KILLED");
        printf("\n");
    }
}

static void print_flag(json_t *flag)
{
    printf("%s  version %" JSON_INTEGER_FORMAT "  type %s\n",
           json_string_value(json_object_get(flag, "key")),
           json_integer_value(json_object_get(flag, "version")),
           json_string_value(json_object_get(flag, "type")));
    print_envs(flag);
}

static void show_list(json_t *j)
{
    json_t *flags = json_object_get(j, "flags"), *f;
    size_t i;

    if (!json_array_size(flags))
        printf("no flags\n");
    json_array_foreach(flags, i, f) print_flag(f);
}

static void show_history(json_t *j)
{
    json_t *h = json_object_get(j, "history"), *e;
    size_t i;

    json_array_foreach(h, i, e)
    {
        json_t *after = json_object_get(e, "after");
        printf("%-27s rev %-5" JSON_INTEGER_FORMAT " %-16s %-8s",
               json_string_value(json_object_get(e, "at")),
               json_integer_value(json_object_get(e, "revision")),
               json_string_value(json_object_get(e, "actor")),
               json_string_value(json_object_get(e, "action")));
        if (json_is_object(after))
            printf(" -> version %" JSON_INTEGER_FORMAT,
                   json_integer_value(json_object_get(after, "version")));
        printf("\n");
        if (json_is_object(after))
            print_envs(after);
    }
}

/* --variants A,B[,C...] or NAME=VALUE,...: the first is control, the second the candidate.
 * Two bare names make a boolean flag (false, true); more bare names a string flag whose
 * values are the names; NAME=VALUE takes VALUE as JSON when it parses (42, true, {"k":1}),
 * else as a string.  NULL on a malformed list (message logged). */
static json_t *variants_from_arg(const char *arg, json_t *flag)
{
    json_t *variants = json_object();
    char *copy = xstrdup(arg), *rest, *item;
    size_t n = 0, bare = 0;
    char *names[2] = { NULL, NULL };

    rest = copy;
    for (item = strsep(&rest, ","); item; item = strsep(&rest, ","), n++) {
        char *eq = strchr(item, '=');
        json_t *v;

        if (eq)
            *eq = '\0';
        if (!item[0] || json_object_get(variants, item)) {
            log_error("--variants: empty or repeated variant name in '%s'", arg);
            goto fail;
        }
        if (eq) {
            v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
            if (!v)
                v = json_string(eq + 1);
        } else {
            v = json_string(item);
            bare++;
        }
        if (!v || json_object_set_new(variants, item, v) < 0)
            goto fail;
        if (n < 2)
            names[n] = xstrdup(item);
    }
    if (n == 0) {
        log_error("--variants: no variant in '%s'", arg);
        goto fail;
    }
    if (bare != 0 && bare != n) {
        log_error("--variants: give either names only or NAME=VALUE for every variant");
        goto fail;
    }
    if (bare == 2) { /* control,candidate: a boolean flag */
        (void)json_object_set_new(variants, names[0], json_false());
        (void)json_object_set_new(variants, names[1], json_true());
    }
    (void)json_object_set_new(flag, "control", json_string(names[0]));
    (void)json_object_set_new(flag, "candidate", json_string(names[n > 1 ? 1 : 0]));
    free(names[0]);
    free(names[1]);
    free(copy);
    return variants;
fail:
    free(names[0]);
    free(names[1]);
    free(copy);
    json_decref(variants);
    return NULL;
}

static int do_create(const struct rdapi *fc, int argc, char **argv)
{
    static const struct option opts[] = { { "description", required_argument, NULL, 'd' },
                                          { "from", required_argument, NULL, 'f' },
                                          { "variants", required_argument, NULL, 'v' },
                                          { NULL, 0, NULL, 0 } };
    const char *desc = NULL, *file = NULL, *variants = NULL;
    struct buf text = BUF_INIT(16u << 20);
    char *body = NULL;
    int c, r;

    while ((c = getopt_long(argc, argv, "d:", opts, NULL)) >= 0) {
        if (c == 'd')
            desc = optarg;
        else if (c == 'f')
            file = optarg;
        else if (c == 'v')
            variants = optarg;
        else
            return cli_usage_error(FLAGS_USAGE SYN_CREATE, "flags create: unknown option '%s'",
                                   argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage_error(FLAGS_USAGE SYN_CREATE, "flags create needs KEY");
    if (file && variants)
        return cli_usage_error(FLAGS_USAGE SYN_CREATE,
                               "flags create: --variants and --from exclude each other");
    if (file) {
        json_t *j;
        r = file_read_all(file, &text);
        if (r < 0) {
            log_error("cannot read '%s': %s", file, strerror(-r));
            return CLI_EXIT_FAILURE;
        }
        j = json_loads(buf_str(&text), 0, NULL);
        if (!json_is_object(j) || (json_object_get(j, "key") &&
                                   !streq(json_is_string(json_object_get(j, "key"))
                                                  ? json_string_value(json_object_get(j, "key"))
                                                  : "",
                                          argv[optind]))) {
            log_error("'%s' is not a flag JSON object with key '%s'", file, argv[optind]);
            json_decref(j);
            buf_release(&text);
            return CLI_EXIT_FAILURE;
        }
        (void)json_object_set_new(j, "key", json_string(argv[optind]));
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    } else {
        json_t *j = json_pack("{s:s}", "key", argv[optind]);
        if (desc && j)
            (void)json_object_set_new(j, "description", json_string(desc));
        if (variants && j) {
            json_t *v = variants_from_arg(variants, j);
            if (!v) {
                json_decref(j);
                return CLI_EXIT_USAGE;
            }
            (void)json_object_set_new(j, "variants", v);
        }
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    buf_release(&text);
    if (!body) {
        log_error("invalid key or description (not UTF-8?)");
        return CLI_EXIT_FAILURE;
    }
    r = rdapi_simple(fc, "POST", "/api/v1/flags", body, print_flag);
    free(body);
    return r;
}

/* Prints what a stage or kill request that changed nothing found: "demo.v1: already canary 5% in
 * production (version 3 unchanged)". */
static int print_unchanged(const struct httpc_response *rep, const char *env_name, bool kill)
{
    json_t *flag = json_loads(buf_str(&rep->body), 0, NULL);
    json_t *env = json_object_get(json_object_get(flag, "environments"), env_name);
    const char *stage = json_string_value(json_object_get(env, "stage"));
    json_t *pct = stage ? json_object_get(env, stage) : NULL;

    if (!json_is_object(flag)) {
        json_decref(flag);
        log_error("rolloutd sent invalid JSON");
        return CLI_EXIT_FAILURE;
    }

    printf("%s: ", json_string_value(json_object_get(flag, "key")));
    if (kill)
        printf(json_is_true(json_object_get(env, "kill")) ? "already killed"
                                                          : "kill switch already off");
    else {
        printf("already %s", stage ? stage : "?");
        if (json_is_number(pct))
            printf(" %g%%", json_number_value(pct));
    }
    printf(" in %s (version %" JSON_INTEGER_FORMAT " unchanged)\n", env_name,
           json_integer_value(json_object_get(flag, "version")));
    json_decref(flag);
    return CLI_EXIT_OK;
}

static int do_stage_or_kill(const struct rdapi *fc, int argc, char **argv, bool kill)
{
    static const struct option opts[] = { { "env", required_argument, NULL, 'e' },
                                          { "percent", required_argument, NULL, 'p' },
                                          { "off", no_argument, NULL, 'o' },
                                          { NULL, 0, NULL, 0 } };
    const char *env = "production", *pct = NULL;
    const char *syntax = kill ? FLAGS_USAGE SYN_KILL : FLAGS_USAGE SYN_STAGE;
    struct httpc_response rep = { 0 };
    bool off = false;
    json_t *j;
    char *body, *key, *path;
    int c, r;

    while ((c = getopt_long(argc, argv, "e:p:", opts, NULL)) >= 0) {
        if (c == 'e')
            env = optarg;
        else if (c == 'p' && !kill)
            pct = optarg;
        else if (c == 'o' && kill)
            off = true;
        else if (c == 'p' || c == 'o')
            return cli_usage_error(syntax, "option '--%s' does not apply to 'flags %s'",
                                   c == 'p' ? "percent" : "off", kill ? "kill" : "stage");
        else
            return cli_usage_error(syntax, "flags %s: unknown option '%s'", kill ? "kill" : "stage",
                                   argv[optind - 1]);
    }
    if (optind != argc - (kill ? 1 : 2))
        return cli_usage_error(syntax,
                               kill ? "flags kill needs KEY" : "flags stage needs KEY STAGE");
    j = json_pack("{s:s}", "env", env);
    if (kill) {
        (void)json_object_set_new(j, "kill", json_boolean(!off));
    } else {
        (void)json_object_set_new(j, "stage", json_string(argv[optind + 1]));
        if (pct) {
            /* Sent as a JSON number text so rolloutd checks the range and precision itself. */
            json_t *n = json_loads(pct, JSON_DECODE_ANY, NULL);
            if (!json_is_number(n)) {
                json_decref(n);
                json_decref(j);
                return cli_usage_error(syntax, "--percent must be a number, not '%s'", pct);
            }
            (void)json_object_set_new(j, "percent", n);
        }
    }
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!body)
        return CLI_EXIT_FAILURE;
    key = rdapi_path_escape(argv[optind]);
    path = xasprintf("/api/v1/flags/%s/%s", key, kill ? "kill" : "stage");
    r = rdapi_call(fc, "POST", path, body, &rep);
    if (r != 0)
        goto out;
    if (rep.status < 200 || rep.status >= 300)
        r = rdapi_report_error(&rep);
    else if (fc->json || !reply_unchanged(&rep))
        r = rdapi_output(fc, &rep, print_flag);
    else /* the flag already was so: rolloutd kept its version and history */
        r = print_unchanged(&rep, env, kill);
out:
    httpc_response_release(&rep);
    free(body);
    free(key);
    free(path);
    return r;
}

static int do_keyed(const struct rdapi *fc, int argc, char **argv, const char *verb)
{
    static const struct option opts[] = { { "limit", required_argument, NULL, 'l' },
                                          { NULL, 0, NULL, 0 } };
    const char *syntax = streq(verb, "get")       ? FLAGS_USAGE SYN_GET
                         : streq(verb, "history") ? FLAGS_USAGE SYN_HISTORY
                                                  : FLAGS_USAGE SYN_DELETE;
    uint64_t limit = 100;
    char *key, *path;
    int c, r;

    while ((c = getopt_long(argc, argv, "l:", opts, NULL)) >= 0) {
        if (c == 'l' && streq(verb, "history") && parse_uint_range(optarg, 1, 1000, &limit) >= 0)
            continue;
        if (c == 'l')
            return streq(verb, "history")
                           ? cli_usage_error(syntax, "invalid --limit '%s' (1-1000)", optarg)
                           : cli_usage_error(syntax,
                                             "option '--limit' does not apply to 'flags %s'", verb);
        return cli_usage_error(syntax, "flags %s: unknown option '%s'", verb, argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage_error(syntax, "flags %s needs KEY", verb);
    key = rdapi_path_escape(argv[optind]);
    if (streq(verb, "get")) {
        path = xasprintf("/api/v1/flags/%s", key);
        r = rdapi_simple(fc, "GET", path, NULL, print_flag);
    } else if (streq(verb, "history")) {
        path = xasprintf("/api/v1/flags/%s/history?limit=%" PRIu64, key, limit);
        r = rdapi_simple(fc, "GET", path, NULL, show_history);
    } else {
        path = xasprintf("/api/v1/flags/%s", key);
        r = rdapi_simple(fc, "DELETE", path, NULL, NULL);
        if (r == CLI_EXIT_OK && !fc->json)
            printf("deleted flag '%s'\n", argv[optind]);
        else if (r == CLI_EXIT_OK) {
            json_t *o = json_pack("{s:b}", "deleted", 1);

            if (o && json_dumpf(o, stdout, JSON_COMPACT) == 0)
                fputc('\n', stdout);
            json_decref(o);
        }
    }
    free(key);
    free(path);
    return r;
}

int cmd_flags(int argc, char **argv, struct cli_ctx *ctx)
{
    struct rdapi fc = { 0 };
    const char *verb;
    int r;

    r = rdapi_open(&fc, &argc, argv, ctx, usage);
    if (r != CLI_EXIT_OK)
        return r;
    optind = 1;
    opterr = 0; /* the verbs name a bad option themselves */
    if (optind >= argc) {
        rdapi_close(&fc);
        return cli_usage_error(usage, "flags needs a subcommand");
    }
    verb = argv[optind];
    /* Each verb parses its options from its own argv (argv[0] = the verb). */
    argc -= optind;
    argv += optind;
    optind = 0;
    if (streq(verb, "create"))
        r = do_create(&fc, argc, argv);
    else if (streq(verb, "list")) {
        r = argc == 1 ? rdapi_simple(&fc, "GET", "/api/v1/flags", NULL, show_list)
                      : cli_usage_error(FLAGS_USAGE SYN_LIST, "flags list takes no arguments");
    } else if (streq(verb, "stage"))
        r = do_stage_or_kill(&fc, argc, argv, false);
    else if (streq(verb, "kill"))
        r = do_stage_or_kill(&fc, argc, argv, true);
    else if (streq(verb, "get") || streq(verb, "history") || streq(verb, "delete"))
        r = do_keyed(&fc, argc, argv, verb);
    else
        r = cli_usage_error(usage, "unknown flags subcommand '%s'", verb);
    rdapi_close(&fc);
    return r;
}
