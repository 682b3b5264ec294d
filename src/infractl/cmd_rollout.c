/* SPDX-License-Identifier: MIT */
/* infractl rollout start|status|pause|resume|abort: metric-gated rollout plans, run by rolloutd's
 * controller (docs/rollouts.md), over rolloutd's admin API (rolloutd_api.c).  A plan file is
 * YAML or JSON; rolloutd validates it and names the field, which is mapped back to the file's
 * line and column here. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cfg/cfg.h"
#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "httpc/httpc.h"
#include "rolloutd_api.h"

/* Each subcommand's syntax: `help rollout` lists them, and a usage error shows the one used. */
#define ROLLOUT_USAGE "rollout [--url URL] [--token-file PATH] [--json] "
#define SYN_START     "start FLAG --plan FILE [--env ENV]"
#define SYN_STATUS    "status [FLAG] [--watch] [--interval S] [--timeout S]"
#define SYN_PAUSE     "pause FLAG"
#define SYN_RESUME    "resume FLAG"
#define SYN_ABORT     "abort FLAG"

static const char usage[] = ROLLOUT_USAGE "SUBCOMMAND [ARGS]";

static const struct cli_help_item rollout_subcommands[] = {
    { SYN_START, "start the plan in FILE (YAML or JSON) for FLAG; --env overrides the plan's" },
    { SYN_STATUS, "show a rollout (every rollout without FLAG); --watch follows it to the end" },
    { SYN_PAUSE, "stop analysing and promoting; the flag stays where it is" },
    { SYN_RESUME, "continue a paused rollout (paused time does not count)" },
    { SYN_ABORT, "stop the rollout and roll the flag back to the last safe stage" },
    { NULL, NULL },
};

static const struct cli_help_item rollout_options[] = {
    { "--url URL", "rolloutd's URL (default: $ROLLOUTD_URL, else the stack's)" },
    { "--token-file PATH", "admin token (default: $ROLLOUTD_TOKEN, STATE/rolloutd/admin.token)" },
    { "--json", "print rolloutd's JSON unchanged (--watch: one line per change)" },
    { "-p, --plan FILE", "start: the plan (docs/rollouts.md; infrastructure/rollouts/*.yml)" },
    { "-e, --env ENV", "start: the environment (default: the plan's, else rolloutd's first)" },
    { "-w, --watch", "status: print every change until the rollout ends or pauses" },
    { "-i, --interval S", "status --watch: seconds between polls (default 2)" },
    { "-t, --timeout S", "status --watch: give up after S seconds (default: never)" },
    { NULL, NULL },
};

const struct cli_help cmd_rollout_help = {
    .usage = usage,
    .summary = "Run metric-gated rollout plans in rolloutd",
    .subcommands = rollout_subcommands,
    .options = rollout_options,
    .notes = "--url, --token-file and --json may stand anywhere after `rollout`.\n"
             "Exit codes: 0 done (status --watch: the rollout succeeded); 1 rolloutd refused\n"
             "the request, or the watched rollout was rolled back, aborted or failed; 2 usage\n"
             "error; 3 rolloutd unreachable; 4 status --watch: the rollout paused (it needs a\n"
             "person: no data, or paused by hand) or --timeout passed.\n",
};

/* ===== Plan files ===== */

/* A YAML scalar as JSON: plain true/false/null and numbers keep their type, anything quoted
 * stays a string (so a plan may be written in JSON too: JSON is YAML). */
static json_t *scalar_json(const struct cfg_node *n)
{
    char *end;
    double d;

    if (n->plain) {
        if (streq(n->value, "true") || streq(n->value, "false"))
            return json_boolean(streq(n->value, "true"));
        if (streq(n->value, "null") || streq(n->value, "~") || !n->value[0])
            return json_null();
        d = strtod(n->value, &end);
        if (end != n->value && !*end && isfinite(d)) {
            json_t *i = json_loads(n->value, JSON_DECODE_ANY, NULL);
            if (json_is_number(i))
                return i;
            json_decref(i);
            return json_real(d);
        }
    }
    return json_string(n->value);
}

static json_t *yaml_json(const struct cfg_node *n)
{
    json_t *j;

    if (!n)
        return json_null();
    if (n->type == CFG_NODE_SCALAR)
        return scalar_json(n);
    j = n->type == CFG_NODE_MAP ? json_object() : json_array();
    for (size_t i = 0; j && i < n->n; i++) {
        if (n->type == CFG_NODE_MAP)
            (void)json_object_set_new(j, n->keys[i]->value, yaml_json(n->items[i]));
        else
            (void)json_array_append_new(j, yaml_json(n->items[i]));
    }
    return j;
}

/* The node a field path ("steps[1].analysis[0].threshold.min") names, or the deepest one that
 * exists on the way there. */
static const struct cfg_node *node_at(const struct cfg_node *root, const char *path)
{
    const struct cfg_node *n = root;
    char buf[256];
    char *save = NULL, *tok;

    (void)snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); n && tok; tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        const struct cfg_node *next;

        if (br)
            *br = '\0';
        next = tok[0] && n->type == CFG_NODE_MAP ? cfg_map_get(n, tok) : n;
        if (!next)
            return n;
        n = next;
        while (br) {
            char *close = strchr(br + 1, ']');
            uint64_t i;

            if (!close)
                return n;
            *close = '\0';
            if (parse_u64(br + 1, &i) < 0 || n->type != CFG_NODE_SEQ || i >= n->n)
                return n;
            n = n->items[i];
            br = strchr(close + 1, '[');
        }
    }
    return n;
}

/* ===== Output ===== */

static void print_duration(uint64_t s)
{
    if (s >= 3600 && s % 3600 == 0)
        printf("%" PRIu64 "h", s / 3600);
    else if (s >= 60 && s % 60 == 0)
        printf("%" PRIu64 "m", s / 60);
    else
        printf("%" PRIu64 "s", s);
}

static void print_step(json_t *st, size_t i, size_t cur, bool final)
{
    json_t *an = json_object_get(st, "analysis"), *m;
    const char *stage = json_string_value(json_object_get(st, "stage"));
    size_t k;

    printf("  %s %zu %-8s %6g %%  ", i == cur ? (final ? "*" : ">") : " ", i, stage ? stage : "?",
           json_number_value(json_object_get(st, "percent")));
    print_duration((uint64_t)json_integer_value(json_object_get(st, "duration_s")));
    json_array_foreach(an, k, m)
    {
        json_t *th = json_object_get(m, "threshold");
        printf("%s%s", k ? ", " : "  gated by ", json_string_value(json_object_get(m, "name")));
        if (json_object_get(th, "min"))
            printf(" >= %g", json_number_value(json_object_get(th, "min")));
        if (json_object_get(th, "max"))
            printf(" <= %g", json_number_value(json_object_get(th, "max")));
    }
    printf("\n");
}

static void show_rollout(json_t *j)
{
    json_t *steps = json_object_get(j, "steps"), *h = json_object_get(j, "history"), *st;
    const char *state = json_string_value(json_object_get(j, "state"));
    size_t cur = (size_t)json_integer_value(json_object_get(j, "step")), i, n;
    bool final = state && !streq(state, "running") && !streq(state, "paused");

    printf("%s in %s: %s at step %zu of %zu (since %s)\n",
           json_string_value(json_object_get(j, "flag")),
           json_string_value(json_object_get(j, "environment")), state ? state : "?", cur,
           json_array_size(steps), json_string_value(json_object_get(j, "step_started_at")));
    printf("  reason: %s\n", json_string_value(json_object_get(j, "reason")));
    printf("  checks in this step: %" JSON_INTEGER_FORMAT " failed (limit %" JSON_INTEGER_FORMAT
           "), %" JSON_INTEGER_FORMAT " passed in a row (need %" JSON_INTEGER_FORMAT
           "); every %" JSON_INTEGER_FORMAT " s\n",
           json_integer_value(json_object_get(j, "failures")),
           json_integer_value(json_object_get(j, "failure_limit")),
           json_integer_value(json_object_get(j, "successes")),
           json_integer_value(json_object_get(j, "consecutive_successes")),
           json_integer_value(json_object_get(j, "interval_s")));
    json_array_foreach(steps, i, st) print_step(st, i, cur, final);
    /* The last analysis: the entries that share the newest timestamp. */
    n = json_array_size(h);
    if (n) {
        const char *last = json_string_value(json_object_get(json_array_get(h, n - 1), "at"));
        printf("  last analysis %s:", last ? last : "?");
        for (i = n; i-- > 0;) {
            json_t *e = json_array_get(h, i), *v = json_object_get(e, "value");
            const char *at = json_string_value(json_object_get(e, "at"));
            if (!at || !last || !streq(at, last))
                break;
            printf(" %s", json_string_value(json_object_get(e, "metric")));
            if (json_is_number(v))
                printf("=%g", json_number_value(v));
            printf(" %s;", json_string_value(json_object_get(e, "result")));
        }
        printf("\n");
    }
}

static void show_list(json_t *j)
{
    json_t *list = json_object_get(j, "rollouts"), *r;
    size_t i;

    if (!json_array_size(list))
        printf("no rollouts\n");
    json_array_foreach(list, i, r)
    {
        json_t *st = json_array_get(json_object_get(r, "steps"),
                                    (size_t)json_integer_value(json_object_get(r, "step")));
        printf("%-24s %-12s %-12s step %" JSON_INTEGER_FORMAT " (%s %g %%)  %s\n",
               json_string_value(json_object_get(r, "flag")),
               json_string_value(json_object_get(r, "environment")),
               json_string_value(json_object_get(r, "state")),
               json_integer_value(json_object_get(r, "step")),
               json_string_value(json_object_get(st, "stage")),
               json_number_value(json_object_get(st, "percent")),
               json_string_value(json_object_get(r, "reason")));
    }
}

static void show_started(json_t *j)
{
    printf("rollout of %s started in %s\n", json_string_value(json_object_get(j, "flag")),
           json_string_value(json_object_get(j, "environment")));
    show_rollout(j);
}

/* ===== Subcommands ===== */

/* rolloutd's refusal of a plan, with the file position of the field it names. */
static int plan_error(const struct httpc_response *rep, const char *file,
                      const struct cfg_node *root)
{
    json_t *j = json_loads(buf_str(&rep->body), 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *field = json_string_value(json_object_get(e, "field"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    int r;

    if (rep->status == 400 && msg && root) {
        const struct cfg_node *n = field ? node_at(root, field) : root;
        log_error("%s:%u:%u: %s", file, n ? n->line : 1, n ? n->col : 1, msg);
        r = CLI_EXIT_FAILURE;
    } else {
        r = rdapi_report_error(rep);
    }
    json_decref(j);
    return r;
}

static int do_start(const struct rdapi *a, int argc, char **argv)
{
    static const struct option opts[] = { { "plan", required_argument, NULL, 'p' },
                                          { "env", required_argument, NULL, 'e' },
                                          { NULL, 0, NULL, 0 } };
    const char *plan = NULL, *env = NULL, *syntax = ROLLOUT_USAGE SYN_START;
    struct httpc_response rep = { 0 };
    struct cfg_node *root = NULL;
    struct err e = ERR_INIT;
    char msg[600], *body = NULL, *key = NULL, *path = NULL;
    json_t *j;
    int c, r;

    while ((c = getopt_long(argc, argv, "p:e:", opts, NULL)) >= 0) {
        if (c == 'p')
            plan = optarg;
        else if (c == 'e')
            env = optarg;
        else
            return cli_usage_error(syntax, "rollout start: unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1 || !plan)
        return cli_usage_error(syntax, "rollout start needs FLAG and --plan FILE");
    r = cfg_load_file(plan, &root, &e);
    if (r < 0) {
        log_error("%s", err_format(&e, msg, sizeof msg));
        return CLI_EXIT_FAILURE;
    }
    if (!root || root->type != CFG_NODE_MAP) {
        log_error("%s: a plan is a map (environment, interval_s, steps, ...)", plan);
        cfg_node_free(root);
        return CLI_EXIT_FAILURE;
    }
    j = yaml_json(root);
    if (env)
        (void)json_object_set_new(j, "environment", json_string(env));
    body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!body) {
        r = CLI_EXIT_FAILURE;
        goto out;
    }
    key = rdapi_path_escape(argv[optind]);
    path = xasprintf("/api/v1/rollouts/%s", key);
    r = rdapi_call(a, "POST", path, body, &rep);
    if (r != CLI_EXIT_OK)
        goto out;
    if (rep.status < 200 || rep.status >= 300)
        r = plan_error(&rep, plan, root);
    else
        r = rdapi_output(a, &rep, show_started);
out:
    httpc_response_release(&rep);
    cfg_node_free(root);
    free(body);
    free(key);
    free(path);
    return r;
}

/* The outcome of a watched rollout as an exit code; -1 while it goes on. */
static int watch_outcome(const char *state)
{
    if (!state)
        return CLI_EXIT_FAILURE;
    if (streq(state, "succeeded"))
        return CLI_EXIT_OK;
    if (streq(state, "running"))
        return -1;
    if (streq(state, "paused"))
        return CLI_EXIT_UNHEALTHY;
    return CLI_EXIT_FAILURE;
}

static int watch(const struct rdapi *a, const char *path, double interval, double timeout)
{
    struct timespec start, now;
    char *last = NULL;
    int r;

    (void)clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct httpc_response rep = { 0 };
        json_t *j = NULL;
        const char *updated;
        int outcome;

        r = rdapi_call(a, "GET", path, NULL, &rep);
        if (r == CLI_EXIT_OK && (rep.status < 200 || rep.status >= 300))
            r = rdapi_report_error(&rep);
        if (r == CLI_EXIT_OK)
            j = json_loads(buf_str(&rep.body), 0, NULL);
        if (r == CLI_EXIT_OK && !j) {
            log_error("rolloutd sent invalid JSON");
            r = CLI_EXIT_FAILURE;
        }
        if (r != CLI_EXIT_OK) {
            httpc_response_release(&rep);
            break;
        }
        updated = json_string_value(json_object_get(j, "updated_at"));
        if (!last || !updated || !streq(last, updated)) {
            free(last);
            last = xstrdup(updated ? updated : "");
            if (a->json) {
                printf("%s\n", buf_str(&rep.body));
            } else {
                show_rollout(j);
                printf("\n");
            }
            (void)fflush(stdout);
        }
        outcome = watch_outcome(json_string_value(json_object_get(j, "state")));
        json_decref(j);
        httpc_response_release(&rep);
        if (outcome >= 0) {
            r = outcome;
            break;
        }
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        if (timeout > 0 &&
            (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >=
                    timeout) {
            log_error("rollout still running after %g s (--timeout)", timeout);
            r = CLI_EXIT_UNHEALTHY;
            break;
        }
        {
            struct timespec ts = { .tv_sec = (time_t)interval,
                                   .tv_nsec = (long)((interval - floor(interval)) * 1e9) };
            (void)nanosleep(&ts, NULL);
        }
    }
    free(last);
    return r;
}

static int parse_seconds(const char *s, double min, double *ret)
{
    char *end;
    double d = strtod(s, &end);

    if (end == s || *end || !isfinite(d) || d < min || d > 86400)
        return -EINVAL;
    *ret = d;
    return 0;
}

static int do_status(const struct rdapi *a, int argc, char **argv)
{
    static const struct option opts[] = { { "watch", no_argument, NULL, 'w' },
                                          { "interval", required_argument, NULL, 'i' },
                                          { "timeout", required_argument, NULL, 't' },
                                          { NULL, 0, NULL, 0 } };
    const char *syntax = ROLLOUT_USAGE SYN_STATUS;
    double interval = 2, timeout = 0;
    bool watching = false;
    char *key, *path;
    int c, r;

    while ((c = getopt_long(argc, argv, "wi:t:", opts, NULL)) >= 0) {
        if (c == 'w')
            watching = true;
        else if (c == 'i' && parse_seconds(optarg, 0.1, &interval) >= 0)
            continue;
        else if (c == 't' && parse_seconds(optarg, 0.1, &timeout) >= 0)
            continue;
        else if (c == 'i' || c == 't')
            return cli_usage_error(syntax, "--%s must be seconds (0.1-86400), not '%s'",
                                   c == 'i' ? "interval" : "timeout", optarg);
        else
            return cli_usage_error(syntax, "rollout status: unknown option '%s'", argv[optind - 1]);
    }
    if (optind == argc) {
        if (watching)
            return cli_usage_error(syntax, "--watch needs FLAG");
        return rdapi_simple(a, "GET", "/api/v1/rollouts", NULL, show_list);
    }
    if (optind != argc - 1)
        return cli_usage_error(syntax, "rollout status takes one FLAG");
    key = rdapi_path_escape(argv[optind]);
    path = xasprintf("/api/v1/rollouts/%s", key);
    r = watching ? watch(a, path, interval, timeout)
                 : rdapi_simple(a, "GET", path, NULL, show_rollout);
    free(key);
    free(path);
    return r;
}

static int do_action(const struct rdapi *a, int argc, char **argv, const char *verb)
{
    char *syntax = xasprintf(ROLLOUT_USAGE "%s FLAG", verb), *key, *path;
    int r;

    if (argc != 2) {
        r = cli_usage_error(syntax, "rollout %s needs FLAG", verb);
        free(syntax);
        return r;
    }
    free(syntax);
    key = rdapi_path_escape(argv[1]);
    path = xasprintf("/api/v1/rollouts/%s/%s", key, verb);
    r = rdapi_simple(a, "POST", path, "", show_rollout);
    free(key);
    free(path);
    return r;
}

int cmd_rollout(int argc, char **argv, struct cli_ctx *ctx)
{
    struct rdapi a = { 0 };
    const char *verb;
    int r;

    r = rdapi_open(&a, &argc, argv, ctx, usage);
    if (r != CLI_EXIT_OK)
        return r;
    optind = 1;
    opterr = 0; /* the verbs name a bad option themselves */
    if (optind >= argc) {
        rdapi_close(&a);
        return cli_usage_error(usage, "rollout needs a subcommand");
    }
    verb = argv[optind];
    /* Each verb parses its options from its own argv (argv[0] = the verb). */
    argc -= optind;
    argv += optind;
    optind = 0;
    if (streq(verb, "start"))
        r = do_start(&a, argc, argv);
    else if (streq(verb, "status"))
        r = do_status(&a, argc, argv);
    else if (streq(verb, "pause") || streq(verb, "resume") || streq(verb, "abort"))
        r = do_action(&a, argc, argv, verb);
    else
        r = cli_usage_error(usage, "unknown rollout subcommand '%s'", verb);
    rdapi_close(&a);
    return r;
}
