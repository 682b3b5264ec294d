/* SPDX-License-Identifier: MIT */
/* infractl kafka apply: the topics file (infrastructure/kafka/topics.yml) onto the cluster
 * through the librdkafka adapter (kafka/kafka.h kfk_topics_apply()): missing topics created,
 * configs replaced where they differ, partitions added; idempotent.  The stack's one-shot
 * `kafka-topics` runs it once the brokers are healthy. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "kafka/kafka.h"
#include "kafka/topics_file.h"
#include "stack/stack.h"

static const char usage[] =
        "kafka apply [--topics FILE] [--profile P] [--bootstrap LIST] [--check] "
        "[--timeout S] [--json]";

struct apply_args {
    const char *file, *profile, *bootstrap;
    bool check, json;
    uint64_t timeout_usec;
};

static int parse_args(int argc, char **argv, struct apply_args *a)
{
    static const struct option opts[] = {
        { "topics", required_argument, NULL, 'f' },
        { "profile", required_argument, NULL, 'p' },
        { "bootstrap", required_argument, NULL, 'b' },
        { "check", no_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { 0 },
    };
    int c;

    *a = (struct apply_args){ .profile = "local", .timeout_usec = 30 * USEC_PER_SEC };
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:b:ct:j", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            a->file = optarg;
            break;
        case 'p':
            a->profile = optarg;
            break;
        case 'b':
            a->bootstrap = optarg;
            break;
        case 'c':
            a->check = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 't':
            if (parse_duration_usec(optarg, &a->timeout_usec) < 0 || a->timeout_usec == 0)
                return cli_usage_error(usage, "invalid --timeout '%s' (e.g. 30s, 2m)", optarg);
            break;
        default:
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static void print_plan(const struct kfk_topics_file *f, uint64_t per_broker)
{
    printf("profile %s: %zu topics, at most %.2f GiB per broker of %.2f GiB\n", f->profile,
           f->n_specs, (double)per_broker / (1 << 30), (double)f->broker_storage / (1 << 30));
    for (size_t i = 0; i < f->n_specs; i++) {
        const struct kfk_topic_spec *s = &f->specs[i];

        printf("%s: %d partitions, RF %d", s->name, (int)s->partitions, (int)s->replication_factor);
        for (size_t k = 0; k < s->n_configs; k++)
            printf("%s %s=%s", k ? "," : ";", s->configs[k].key, s->configs[k].value);
        putchar('\n');
    }
}

static void print_results(const struct kfk_topic_result *res, size_t n, bool json)
{
    json_t *arr = json ? json_array() : NULL;

    for (size_t i = 0; i < n; i++) {
        const struct kfk_topic_result *r = &res[i];

        if (arr) {
            (void)json_array_append_new(
                    arr, json_pack("{s:s, s:s, s:i, s:i, s:b, s:i, s:b, s:s}", "topic", r->name,
                                   "status", kfk_topic_status_to_string(r->status), "partitions",
                                   (json_int_t)r->partitions, "replication_factor",
                                   (json_int_t)r->replication_factor, "configs_replaced",
                                   r->configs_replaced, "partitions_added",
                                   (json_int_t)r->partitions_added, "rf_differs", r->rf_differs,
                                   "message", r->message));
            continue;
        }
        /* the message of a created topic repeats the counts */
        bool say = r->message[0] && r->status != KFK_TOPIC_CREATED;

        printf("%s: %s (%d partitions, RF %d)%s%s\n", r->name,
               kfk_topic_status_to_string(r->status), (int)r->partitions,
               (int)r->replication_factor, say ? ": " : "", say ? r->message : "");
    }
    if (arr) {
        (void)json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
}

/* The topics file next to the stack's (infrastructure/local -> infrastructure/kafka). */
static char *default_file(const struct cli_ctx *ctx)
{
    struct stack *s = NULL;
    struct err e = ERR_INIT;
    char msg[600], *path;

    if (stack_load(ctx->stack_path, &s, &e) < 0) {
        log_error("invalid stack file: %s", err_format(&e, msg, sizeof msg));
        return NULL;
    }
    path = xasprintf("%s/../kafka/topics.yml", s->dir);
    stack_free(s);
    {
        char *real = realpath(path, NULL); /* for messages; a missing file is reported later */

        if (real) {
            free(path);
            path = real;
        }
    }
    return path;
}

int cli_kafka_apply(int argc, char **argv, struct cli_ctx *ctx)
{
    struct apply_args a;
    struct kfk_topics_file *f = NULL;
    struct kfk_topic_result *res = NULL;
    struct buf bootstrap = BUF_INIT(0);
    struct err e = ERR_INIT;
    char *file = NULL, msg[600];
    uint64_t per_broker = 0;
    int r, ret = CLI_EXIT_FAILURE;

    r = parse_args(argc, argv, &a);
    if (r != 0)
        return r;
    file = a.file ? xstrdup(a.file) : default_file(ctx);
    if (!file)
        goto out;
    r = kfk_topics_file_load(file, a.profile, &f, &e);
    if (r == 0)
        r = kfk_topics_file_check_fit(f, &per_broker, &e);
    if (r < 0) {
        if (!e.file[0])
            err_set_file(&e, file);
        log_error("%s; nothing was applied", err_format(&e, msg, sizeof msg));
        goto out;
    }
    if (a.check) {
        print_plan(f, per_broker);
        ret = CLI_EXIT_OK;
        goto out;
    }
    if (a.bootstrap)
        r = buf_puts(&bootstrap, a.bootstrap);
    else
        r = cli_kafka_bootstrap(ctx, &bootstrap);
    if (r < 0)
        goto out;
    r = kfk_topics_apply(buf_str(&bootstrap), f->specs, f->n_specs, a.timeout_usec, &res, &e);
    if (r < 0) {
        log_error("cannot apply %s to %s: %s", file, buf_str(&bootstrap),
                  err_format(&e, msg, sizeof msg));
        goto out;
    }
    print_results(res, f->n_specs, a.json);
    if (r > 0)
        log_error("%d of %zu topics failed", r, f->n_specs);
    ret = r > 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
    kfk_topic_results_free(res, f ? f->n_specs : 0);
    kfk_topics_file_free(f);
    buf_release(&bootstrap);
    free(file);
    return ret;
}
