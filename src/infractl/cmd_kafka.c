/* SPDX-License-Identifier: MIT */
/* infractl kafka TOOL [ARGS...]: Kafka's own CLI tools (kafka-topics, kafka-consumer-groups,
 * kafka-producer-perf-test ...) against the stack's brokers, run from the jars the brokers run
 * (the stack file's java and -cp), with the bootstrap list filled in; `kafka bootstrap` prints
 * that list for other clients (kcat -b "$(infractl kafka bootstrap)"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/strv.h"
#include "stack/stack.h"

static const char usage[] =
        "kafka TOOL [ARGS...] | kafka bootstrap | kafka apply [--topics FILE] [--profile P] "
        "[--bootstrap LIST] [--check] [--timeout S] [--json]";

/* Kafka's scripts are bin/kafka-NAME.sh; the same NAME runs the same main class here. */
static const struct kafka_tool {
    const char *name, *main_class;
} tools[] = {
    { "topics", "org.apache.kafka.tools.TopicCommand" },
    { "consumer-groups", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand" },
    { "configs", "org.apache.kafka.tools.ConfigCommand" },
    { "producer-perf-test", "org.apache.kafka.tools.ProducerPerformance" },
    { "consumer-perf-test", "org.apache.kafka.tools.ConsumerPerformance" },
    { "console-producer", "org.apache.kafka.tools.ConsoleProducer" },
    { "console-consumer", "org.apache.kafka.tools.consumer.ConsoleConsumer" },
    { "get-offsets", "org.apache.kafka.tools.GetOffsetShell" },
    { "log-dirs", "org.apache.kafka.tools.LogDirsCommand" },
    { "metadata-quorum", "org.apache.kafka.tools.MetadataQuorumCommand" },
};

static const struct cli_help_item kafka_subcommands[] = {
    { "topics ARGS", "kafka-topics: create, list, describe, alter topics" },
    { "consumer-groups ARGS", "kafka-consumer-groups: groups, their lag, offset resets" },
    { "configs ARGS", "kafka-configs: describe and alter configs" },
    { "producer-perf-test ARGS", "kafka-producer-perf-test: throughput and latency" },
    { "consumer-perf-test ARGS", "kafka-consumer-perf-test: consume throughput" },
    { "console-producer ARGS", "kafka-console-producer: stdin lines to a topic" },
    { "console-consumer ARGS", "kafka-console-consumer: a topic to stdout" },
    { "get-offsets ARGS", "kafka-get-offsets: partition offsets" },
    { "log-dirs ARGS", "kafka-log-dirs: replica sizes per log directory" },
    { "metadata-quorum ARGS", "kafka-metadata-quorum: the KRaft controller quorum" },
    { "bootstrap", "print the bootstrap list (host:port,...) of the stack's brokers" },
    { "apply [--topics FILE] [--profile P] [--bootstrap LIST] [--check] [--timeout S] [--json]",
      "make the cluster's topics match the topics file (default: infrastructure/kafka/"
      "topics.yml, profile local); --check validates and prints the plan only" },
    { NULL, NULL },
};

const struct cli_help cmd_kafka_help = {
    .usage = usage,
    .summary = "Kafka's CLI tools against the stack's brokers",
    .subcommands = kafka_subcommands,
    .notes = "ARGS are the tool's own (TOOL --help lists them); --bootstrap-server is added\n"
             "unless given.  The tool runs with the java and jars of the stack file's kafka\n"
             "services, logging warnings to stderr.  Its exit status is infractl's.\n",
};

/* The stack's brokers: services of kind kafka. */
static size_t kafka_services(const struct stack *s, const struct stack_service **ret, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n_services && n < max; i++)
        if (s->services[i].kind && streq(s->services[i].kind, "kafka"))
            ret[n++] = &s->services[i];
    return n;
}

/* host:port of a broker's client listener: its health check's address, else its first port. */
static int append_endpoint(struct buf *b, const struct stack_service *svc)
{
    const struct probe_spec *p = &svc->health.probe;
    uint16_t port = svc->health.present && p->port ? p->port : svc->n_ports ? svc->ports[0] : 0;

    if (!port)
        return log_error_errno(-EINVAL, "kafka service '%s' declares no port", svc->name);
    return buf_appendf(b, "%s%s:%u", b->len ? "," : "",
                       svc->health.present && p->host ? p->host : "127.0.0.1", port);
}

/* The classpath after -cp in the broker's command; NULL when there is none. */
static const char *classpath_of(const struct stack_service *svc)
{
    for (char **a = svc->argv; *a && a[1]; a++)
        if (streq(*a, "-cp") || streq(*a, "-classpath") || streq(*a, "--class-path"))
            return a[1];
    return NULL;
}

static bool has_bootstrap_arg(char **args, int n)
{
    for (int i = 0; i < n; i++)
        if (str_startswith(args[i], "--bootstrap-server") ||
            str_startswith(args[i], "--bootstrap-controller"))
            return true;
    return false;
}

static const struct kafka_tool *find_tool(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(tools); i++)
        if (streq(tools[i].name, name))
            return &tools[i];
    return NULL;
}

/* Replaces this process with the tool's JVM. */
static int exec_tool(const struct kafka_tool *t, const struct stack_service *broker,
                     const char *bootstrap, char **args, int n_args)
{
    const char *cp = classpath_of(broker), *java = broker->argv[0];
    char **argv, *log_opt = NULL, *libs_dir;
    size_t k = 0;
    int r;

    if (!cp)
        return log_error_errno(-EINVAL, "kafka service '%s': no -cp in its command", broker->name);
    /* DIR/libs/<star> -> DIR/config/tools-log4j2.xml, where install-deps puts it */
    argv = xcalloc((size_t)n_args + 16, sizeof *argv);
    libs_dir = xstrdup(cp);
    if (str_endswith(libs_dir, "/libs/*")) {
        libs_dir[strlen(libs_dir) - strlen("/libs/*")] = '\0';
        log_opt = xasprintf("-Dlog4j2.configurationFile=%s/config/tools-log4j2.xml", libs_dir);
        if (access(log_opt + strlen("-Dlog4j2.configurationFile="), R_OK) < 0) {
            free(log_opt);
            log_opt = NULL;
        }
    }
    argv[k++] = xstrdup(java);
    /* A client: small heap, no JIT warm-up worth waiting for. */
    argv[k++] = xstrdup("-Xms32m");
    argv[k++] = xstrdup("-Xmx512m");
    argv[k++] = xstrdup("-XX:+UseSerialGC");
    argv[k++] = xstrdup("-XX:TieredStopAtLevel=1");
    argv[k++] = xstrdup("-Djava.awt.headless=true");
    if (log_opt)
        argv[k++] = log_opt; /* argv owns it now */
    argv[k++] = xstrdup("-cp");
    argv[k++] = xstrdup(cp);
    argv[k++] = xstrdup(t->main_class);
    if (!has_bootstrap_arg(args, n_args)) {
        argv[k++] = xstrdup("--bootstrap-server");
        argv[k++] = xstrdup(bootstrap);
    }
    for (int i = 0; i < n_args; i++)
        argv[k++] = xstrdup(args[i]);
    argv[k] = NULL;
    fflush(NULL);
    execv(java, argv);
    r = log_error_errno(-errno, "cannot run '%s' (install the Debian package '%s')", java,
                        broker->package ? broker->package : "openjdk-17-jre-headless");
    free(libs_dir);
    strv_free(argv);
    return r;
}

/* The stack's brokers and their bootstrap list; 0 or -errno (logged). */
static int load_brokers(const struct cli_ctx *ctx, struct stack **ret_stack,
                        const struct stack_service **brokers, size_t max, size_t *ret_n,
                        struct buf *bootstrap)
{
    struct stack *s = NULL;
    size_t n;
    int r;

    if (cli_load_stack(ctx, false, &s, NULL) < 0)
        return -EINVAL;
    n = kafka_services(s, brokers, max);
    if (n == 0) {
        log_error("stack '%s' (%s) has no service of kind kafka", s->name, ctx->stack_path);
        stack_free(s);
        return -ENOENT;
    }
    for (size_t i = 0; i < n; i++) {
        r = append_endpoint(bootstrap, brokers[i]);
        if (r < 0) {
            stack_free(s);
            return r;
        }
    }
    *ret_stack = s;
    *ret_n = n;
    return 0;
}

int cli_kafka_bootstrap(const struct cli_ctx *ctx, struct buf *out)
{
    const struct stack_service *brokers[64];
    struct stack *s = NULL;
    size_t n;
    int r = load_brokers(ctx, &s, brokers, ARRAY_SIZE(brokers), &n, out);

    stack_free(s);
    return r;
}

int cmd_kafka(int argc, char **argv, struct cli_ctx *ctx)
{
    const struct stack_service *brokers[64];
    const struct kafka_tool *tool = NULL;
    struct stack *s = NULL;
    struct buf bootstrap = BUF_INIT(0);
    size_t n;
    int ret = CLI_EXIT_FAILURE;

    if (argc < 2)
        return cli_usage_error(usage,
                               "missing TOOL (topics, consumer-groups, ...; see help kafka)");
    if (streq(argv[1], "apply"))
        return cli_kafka_apply(argc - 1, argv + 1, ctx);
    if (!streq(argv[1], "bootstrap")) {
        tool = find_tool(argv[1]);
        if (!tool)
            return cli_usage_error(usage, "unknown tool '%s' (see infractl help kafka)", argv[1]);
    } else if (argc > 2)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[2]);
    if (load_brokers(ctx, &s, brokers, ARRAY_SIZE(brokers), &n, &bootstrap) < 0)
        goto out;
    if (!tool) {
        printf("%s\n", buf_str(&bootstrap));
        ret = CLI_EXIT_OK;
        goto out;
    }
    (void)exec_tool(tool, brokers[0], buf_str(&bootstrap), argv + 2, argc - 2);
out:
    buf_release(&bootstrap);
    stack_free(s);
    return ret;
}
