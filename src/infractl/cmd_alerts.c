/* SPDX-License-Identifier: MIT */
/* infractl alerts: the alerts Alertmanager holds (GET /api/v2/alerts), most severe first.
 * The Alertmanager is --url, else $INFRACTL_ALERTMANAGER_URL, else the stack's service of kind
 * alertmanager (its status probe's port). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "httpc/httpc.h"
#include "stack/stack.h"

#define ALERTS_MAX_RESPONSE (16u << 20)
#define ALERTS_TIMEOUT_MS   5000L

static const char usage[] = "alerts [--all] [--json] [--url URL]";

static const struct cli_help_item alerts_options[] = {
    { "--all", "also the silenced and inhibited alerts (default: the active ones)" },
    { "--json", "print {\"alertmanager\": URL, \"alerts\": [...]} instead of the table" },
    { "--url URL", "the Alertmanager (default: $INFRACTL_ALERTMANAGER_URL, else the stack's)" },
    { NULL, NULL },
};

const struct cli_help cmd_alerts_help = {
    .usage = usage,
    .summary = "List the alerts Alertmanager holds, most severe first",
    .options = alerts_options,
    .notes = "Columns: alert, severity, state (active, suppressed), the service or instance, how\n"
             "long it has fired, its summary.  The Watchdog (severity none) always fires: it\n"
             "proves the alerting path works, and is listed but never counts as a problem.\n"
             "Exit codes: 0 no alert of severity info or above is active; 1 a request failed;\n"
             "2 usage error; 3 Alertmanager unreachable; 4 some alert is active.  See\n"
             "docs/alerts.md for each alert's runbook.\n",
};

/* http://127.0.0.1:PORT of the stack's alertmanager service; NULL when it has none. */
static char *stack_url(const struct cli_ctx *ctx)
{
    struct stack *s = NULL;
    char *url = NULL;

    if (cli_load_stack(ctx, false, &s, NULL) < 0)
        return NULL;
    for (size_t i = 0; i < s->n_services && !url; i++) {
        const struct stack_service *svc = &s->services[i];

        if (!svc->kind || !streq(svc->kind, "alertmanager"))
            continue;
        if (svc->has_status_probe && svc->status_probe.port)
            url = xasprintf("http://127.0.0.1:%u", svc->status_probe.port);
        else if (svc->n_ports)
            url = xasprintf("http://127.0.0.1:%u", svc->ports[0]);
    }
    stack_free(s);
    return url;
}

static const char *str_of(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));

    return v && *v ? v : dflt;
}

static int severity_rank(const char *sev)
{
    static const char *const order[] = { "critical", "warning", "info", "none" };

    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        if (streq(sev, order[i]))
            return (int)i;
    return (int)ARRAY_SIZE(order);
}

static int by_severity(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int rx = severity_rank(str_of(json_object_get(x, "labels"), "severity", "")),
        ry = severity_rank(str_of(json_object_get(y, "labels"), "severity", ""));

    if (rx != ry)
        return rx - ry;
    return strcmp(str_of(x, "startsAt", ""), str_of(y, "startsAt", ""));
}

/* Seconds since an RFC 3339 UTC time ("2026-12-05T11:40:00.123Z"); -1 when unreadable. */
static long long age_s(const char *rfc3339, time_t now)
{
    struct tm tm = { 0 };
    const char *end = rfc3339 ? strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    time_t t;

    if (!end)
        return -1;
    t = timegm(&tm);
    return t <= now ? (long long)(now - t) : 0;
}

/* The service (our target label), else the instance, else "-". */
static const char *where(json_t *labels)
{
    return str_of(labels, "service", str_of(labels, "instance", "-"));
}

static void print_table(json_t **alerts, size_t n)
{
    time_t now = time(NULL);
    int name_w = (int)strlen("ALERT"), where_w = (int)strlen("SERVICE");

    for (size_t i = 0; i < n; i++) {
        json_t *labels = json_object_get(alerts[i], "labels");
        int nl = (int)strlen(str_of(labels, "alertname", "?")), wl = (int)strlen(where(labels));

        name_w = nl > name_w ? nl : name_w;
        where_w = wl > where_w ? wl : where_w;
    }
    printf("%-*s %-9s %-11s %-*s %-9s %s\n", name_w, "ALERT", "SEVERITY", "STATE", where_w,
           "SERVICE", "SINCE", "SUMMARY");
    for (size_t i = 0; i < n; i++) {
        json_t *labels = json_object_get(alerts[i], "labels");
        json_t *ann = json_object_get(alerts[i], "annotations");
        long long age = age_s(str_of(alerts[i], "startsAt", NULL), now);
        char since[32] = "-";

        if (age >= 0)
            (void)format_duration(since, sizeof since, (uint64_t)age * USEC_PER_SEC);
        printf("%-*s %-9s %-11s %-*s %-9s %s\n", name_w, str_of(labels, "alertname", "?"),
               str_of(labels, "severity", "-"),
               str_of(json_object_get(alerts[i], "status"), "state", "?"), where_w, where(labels),
               since, str_of(ann, "summary", ""));
    }
    if (n == 0)
        printf("no alerts\n");
}

static int print_json(const char *url, json_t **alerts, size_t n)
{
    json_t *arr = json_array(), *root;
    int r;

    for (size_t i = 0; i < n; i++) {
        json_t *a = alerts[i], *labels = json_object_get(a, "labels");

        (void)json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:O, s:O, s:s, s:O}", "name",
                               str_of(labels, "alertname", ""), "severity",
                               str_of(labels, "severity", ""), "state",
                               str_of(json_object_get(a, "status"), "state", ""), "labels",
                               labels ? labels : json_null(), "annotations",
                               json_object_get(a, "annotations") ? json_object_get(a, "annotations")
                                                                 : json_null(),
                               "starts_at", str_of(a, "startsAt", ""), "status",
                               json_object_get(a, "status") ? json_object_get(a, "status")
                                                            : json_null()));
    }
    root = json_pack("{s:s, s:o}", "alertmanager", url, "alerts", arr);
    r = root && json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : -ENOMEM;
    putchar('\n');
    json_decref(root);
    return r;
}

static int list_alerts(const char *base, bool all, bool json)
{
    char *url = xasprintf("%s/api/v2/alerts%s", base,
                          all ? "" : "?active=true&silenced=false&inhibited=false");
    struct httpc_response resp = { .status = 0 };
    json_t *doc = NULL, **alerts = NULL;
    size_t n = 0, problems = 0;
    int r = httpc_call(&(struct httpc_request){ .url = url,
                                                .timeout_ms = ALERTS_TIMEOUT_MS,
                                                .max_body = ALERTS_MAX_RESPONSE },
                       &resp),
        ret;

    if (r < 0) {
        log_error("alertmanager %s: %s", base, resp.error);
        ret = r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ? CLI_EXIT_NOT_RUNNING
                                                                          : CLI_EXIT_FAILURE;
        goto out;
    }
    if (resp.status != 200) {
        log_error("alertmanager %s: GET /api/v2/alerts answered HTTP %ld", base, resp.status);
        ret = CLI_EXIT_FAILURE;
        goto out;
    }
    doc = json_loads(buf_str(&resp.body), 0, NULL);
    if (!json_is_array(doc)) {
        log_error("alertmanager %s: GET /api/v2/alerts is not a list of alerts", base);
        ret = CLI_EXIT_FAILURE;
        goto out;
    }
    n = json_array_size(doc);
    alerts = xcalloc(n ? n : 1, sizeof *alerts);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(doc, i);
        const char *sev = str_of(json_object_get(a, "labels"), "severity", "");

        alerts[i] = a;
        if (streq(str_of(json_object_get(a, "status"), "state", ""), "active") &&
            !streq(sev, "none"))
            problems++;
    }
    qsort(alerts, n, sizeof *alerts, by_severity);
    if (json) {
        if (print_json(base, alerts, n) < 0) {
            ret = CLI_EXIT_FAILURE;
            goto out;
        }
    } else {
        print_table(alerts, n);
    }
    ret = problems ? CLI_EXIT_UNHEALTHY : CLI_EXIT_OK;
out:
    free(alerts);
    json_decref(doc);
    httpc_response_release(&resp);
    free(url);
    return ret;
}

int cmd_alerts(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "all", no_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "url", required_argument, NULL, 'u' },
        { 0 },
    };
    bool all = false, json = false;
    char *url = NULL;
    int c, r;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'j':
            json = true;
            break;
        case 'u':
            free(url);
            url = xstrdup(optarg);
            break;
        default:
            free(url);
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        free(url);
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    }
    if (!url && getenv("INFRACTL_ALERTMANAGER_URL") && *getenv("INFRACTL_ALERTMANAGER_URL"))
        url = xstrdup(getenv("INFRACTL_ALERTMANAGER_URL"));
    if (!url)
        url = stack_url(ctx);
    if (!url) {
        log_error("no Alertmanager: the stack file %s has no service of kind alertmanager; "
                  "give --url or set INFRACTL_ALERTMANAGER_URL",
                  ctx->stack_path);
        return CLI_EXIT_FAILURE;
    }
    while (strlen(url) > 1 && url[strlen(url) - 1] == '/')
        url[strlen(url) - 1] = '\0';
    if (!str_startswith(url, "http://") && !str_startswith(url, "https://")) {
        r = cli_usage_error(usage, "--url: '%s' is not an http:// or https:// URL", url);
        free(url);
        return r;
    }
    if (httpc_init() < 0) {
        log_error("cannot initialize libcurl");
        free(url);
        return CLI_EXIT_FAILURE;
    }
    r = list_alerts(url, all, json);
    httpc_cleanup();
    free(url);
    return r;
}
