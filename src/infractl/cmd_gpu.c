/* SPDX-License-Identifier: MIT */
/* infractl gpu: reads gpu_agents (GET /api/v1/gpus) and drains or undrains one of their GPUs
 * (POST /api/v1/gpus/GPU/{drain,undrain}), over HTTP with libcurl (docs/gpu_agent.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "httpc/httpc.h"

#define GPU_DEFAULT_PORT "9842"
#define GPU_MAX_RESPONSE (4u << 20)
#define GPU_TIMEOUT_MS   5000L

#define SYN_STATUS  "status [--json] [--token-file F] [HOST[:PORT]...]"
#define SYN_DRAIN   "drain [--now] [--token-file F] HOST[:PORT] GPU"
#define SYN_UNDRAIN "undrain [--token-file F] HOST[:PORT] GPU"

static const char usage[] = "gpu " SYN_STATUS "\n"
                            "       infractl gpu " SYN_DRAIN "\n"
                            "       infractl gpu " SYN_UNDRAIN;

static const struct cli_help_item gpu_subcommands[] = {
    { SYN_STATUS, "each GPU's health, drain, worker, temperature, utilization and memory" },
    { SYN_DRAIN, "take GPU (index or UUID) out of service after its worker's current task" },
    { SYN_UNDRAIN, "put GPU back in service: its worker starts again" },
    { NULL, NULL },
};

static const struct cli_help_item gpu_options[] = {
    { "HOST[:PORT]", "a gpu_agent; the port defaults to 9842" },
    { "--json", "status: print {\"agents\": [...]} instead of the table" },
    { "--now", "drain: stop the worker at once instead of after its current task" },
    { "--token-file F", "the agent's API token (default: $GPU_AGENT_TOKEN_FILE)" },
    { NULL, NULL },
};

const struct cli_help cmd_gpu_help = {
    .usage = "gpu SUBCOMMAND [--json] [--now] [--token-file F] [ARGS]",
    .summary = "Read gpu_agents; take GPUs out of service and back",
    .subcommands = gpu_subcommands,
    .options = gpu_options,
    .notes = "status without HOST reads $INFRACTL_GPU_AGENTS (comma or space separated), else\n"
             "127.0.0.1:9842; an agent that does not answer is reported on stderr only.\n"
             "Exit codes: 0 done (status: every GPU healthy and in service); 1 a request failed\n"
             "(e.g. HTTP 401 or 404); 2 usage error; 3 an agent is unreachable; 4 (status) some\n"
             "GPU is failed or drained.  See docs/gpu_agent.md.\n",
};

/* "host" -> "http://host:9842", "host:1234" and "[::1]:1234" as given. */
static char *agent_url(const char *addr, const char *path)
{
    const char *colon = strrchr(addr, ':');
    bool has_port = colon && (addr[0] != '[' || colon > strchr(addr, ']'));

    if (str_startswith(addr, "http://"))
        return xasprintf("%s%s", addr, path);
    return xasprintf("http://%s%s%s%s", addr, has_port ? "" : ":", has_port ? "" : GPU_DEFAULT_PORT,
                     path);
}

/* One request to an agent: 0 with *ret (any HTTP status), or -errno with ret->error (the
 * agent cannot be reached: -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT; other transfer errors). */
static int request(const char *url, bool post, const char *token, struct httpc_response *ret)
{
    return httpc_call(&(struct httpc_request){ .method = post ? "POST" : "GET",
                                               .url = url,
                                               .token = token,
                                               .body = post ? "" : NULL,
                                               .timeout_ms = GPU_TIMEOUT_MS,
                                               .max_body = GPU_MAX_RESPONSE },
                      ret);
}

static bool unreachable_errno(int r)
{
    return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT;
}

static int read_token(const char *path, char **ret)
{
    struct buf b = BUF_INIT(4096);
    int r;

    *ret = NULL;
    if (!path)
        return 0;
    r = file_read_all(path, &b);
    if (r < 0) {
        buf_release(&b);
        return log_error_errno(r, "cannot read token file '%s'", path);
    }
    *ret = xasprintf("%.*s", (int)strcspn(buf_str(&b), "\r\n"), buf_str(&b));
    buf_release(&b);
    return 0;
}

/* ===== status ===== */

static const char *health_word(json_t *g)
{
    if (json_is_true(json_object_get(g, "healthy")))
        return json_is_true(json_object_get(g, "drained")) ? "drained" : "healthy";
    return "failed";
}

static void print_gpu_row(const char *host, json_t *g)
{
    json_t *w = json_object_get(g, "worker"), *t = json_object_get(g, "temperature_celsius"),
           *u = json_object_get(g, "utilization_ratio"),
           *mu = json_object_get(g, "memory_used_bytes"),
           *mt = json_object_get(g, "memory_total_bytes");
    const char *uuid = json_string_value(json_object_get(g, "uuid"));
    const char *reason = json_string_value(json_object_get(g, "reason"));
    char drain[64] = "-", worker[48] = "-", temp[16] = "-", util[16] = "-", mem[48] = "-";

    if (json_is_true(json_object_get(g, "drained")))
        (void)snprintf(drain, sizeof drain, "%s (%s)",
                       json_string_value(json_object_get(g, "tier")), reason ? reason : "?");
    if (json_is_object(w))
        (void)snprintf(worker, sizeof worker, "%s, %lld restarts",
                       json_string_value(json_object_get(w, "state")),
                       (long long)json_integer_value(json_object_get(w, "restarts")));
    if (json_is_number(t))
        (void)snprintf(temp, sizeof temp, "%.0fC", json_number_value(t));
    if (json_is_number(u))
        (void)snprintf(util, sizeof util, "%.0f%%", json_number_value(u) * 100);
    if (json_is_number(mu) && json_is_number(mt))
        (void)snprintf(mem, sizeof mem, "%.0f/%.0f MiB", json_number_value(mu) / 1048576.0,
                       json_number_value(mt) / 1048576.0);
    printf("%-10s %-3lld %-14.12s %-8s %-24s %-22s %-6s %-5s %s\n", host,
           (long long)json_integer_value(json_object_get(g, "index")), uuid ? uuid : "-",
           health_word(g), drain, worker, temp, util, mem);
}

static int gpu_status(int argc, char **argv, const char *token_file, bool json)
{
    const char *env = getenv("INFRACTL_GPU_AGENTS");
    char *env_copy = NULL, *token = NULL, *save = NULL;
    const char *addrs[64];
    size_t n = 0;
    json_t *all = json_array();
    bool all_ok = true, unreachable = false, header = false;
    int r;

    for (int i = 0; i < argc && n < ARRAY_SIZE(addrs); i++)
        addrs[n++] = argv[i];
    if (n == 0 && env && env[0]) {
        env_copy = xstrdup(env);
        for (char *p = strtok_r(env_copy, ", ", &save); p && n < ARRAY_SIZE(addrs);
             p = strtok_r(NULL, ", ", &save))
            addrs[n++] = p;
    }
    if (n == 0)
        addrs[n++] = "127.0.0.1:" GPU_DEFAULT_PORT;
    r = read_token(token_file, &token);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char *url = agent_url(addrs[i], "/api/v1/gpus");
        struct httpc_response resp;
        json_t *doc = NULL, *gpus;
        size_t k;
        json_t *g;

        r = request(url, false, token, &resp);
        if (r >= 0 && resp.status == 200)
            doc = json_loadb(buf_str(&resp.body), resp.body.len, 0, NULL);
        if (!doc || !json_is_object(doc)) {
            const char *why = r < 0                ? resp.error
                              : resp.status != 200 ? "unexpected HTTP status"
                                                   : "invalid JSON";

            unreachable = true;
            if (json)
                (void)json_array_append_new(
                        all, json_pack("{s:s, s:s}", "address", addrs[i], "error", why));
            else
                fprintf(stderr, "infractl: gpu_agent at %s: %s\n", addrs[i], why);
            json_decref(doc);
            free(url);
            httpc_response_release(&resp);
            continue;
        }
        gpus = json_object_get(doc, "gpus");
        /* The header comes with the first agent that answered: an unreachable agent is only
         * an error on stderr, never an empty table. */
        if (!json && !header) {
            printf("%-10s %-3s %-14s %-8s %-24s %-22s %-6s %-5s %s\n", "HOST", "GPU", "UUID",
                   "HEALTH", "DRAIN", "WORKER", "TEMP", "UTIL", "MEMORY");
            header = true;
        }
        json_array_foreach(gpus, k, g)
        {
            all_ok = all_ok && json_is_true(json_object_get(g, "healthy")) &&
                     !json_is_true(json_object_get(g, "drained"));
            if (!json)
                print_gpu_row(json_string_value(json_object_get(doc, "host")), g);
        }
        if (!json && json_array_size(gpus) == 0)
            printf("%-10s %s\n", json_string_value(json_object_get(doc, "host")),
                   json_is_true(json_object_get(doc, "nvml_up")) ? "no GPUs"
                                                                 : "NVML not available");
        (void)json_object_set_new(doc, "address", json_string(addrs[i]));
        (void)json_array_append_new(all, doc);
        free(url);
        httpc_response_release(&resp);
    }
    if (json) {
        json_t *root = json_pack("{s:o}", "agents", all);
        char *text = json_dumps(root, JSON_INDENT(2));

        all = NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(root);
    }
    r = unreachable ? CLI_EXIT_NOT_RUNNING : all_ok ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    json_decref(all);
    free(token);
    free(env_copy);
    return r < 0 ? CLI_EXIT_FAILURE : r;
}

/* ===== drain / undrain ===== */

static int gpu_action(const char *verb, const char *addr, const char *gpu, bool now,
                      const char *token_file)
{
    char *token = NULL, *path, *url;
    struct httpc_response resp;
    json_t *doc;
    int r;

    if (!gpu[0] || strpbrk(gpu, "/?#% "))
        return cli_usage_error(usage, "invalid GPU '%s' (an index or a UUID)", gpu);
    r = read_token(token_file, &token);
    if (r < 0)
        return CLI_EXIT_FAILURE;
    path = xasprintf("/api/v1/gpus/%s/%s%s", gpu, verb, now ? "?mode=now" : "");
    url = agent_url(addr, path);
    r = request(url, true, token, &resp);
    free(path);
    free(url);
    free(token);
    if (r < 0) {
        fprintf(stderr, "infractl: gpu_agent at %s: %s\n", addr, resp.error);
        httpc_response_release(&resp);
        return unreachable_errno(r) ? CLI_EXIT_NOT_RUNNING : CLI_EXIT_FAILURE;
    }
    doc = json_loadb(buf_str(&resp.body), resp.body.len, 0, NULL);
    if (resp.status != 200) {
        const char *msg =
                json_string_value(json_object_get(json_object_get(doc, "error"), "message"));

        if (!msg)
            msg = json_string_value(json_object_get(doc, "message"));
        fprintf(stderr, "infractl: %s GPU %s on %s failed (HTTP %ld): %s\n", verb, gpu, addr,
                resp.status, msg ? msg : buf_str(&resp.body));
        json_decref(doc);
        httpc_response_release(&resp);
        return CLI_EXIT_FAILURE;
    }
    printf("%s: GPU %lld (%s) %s\n", addr,
           (long long)json_integer_value(json_object_get(doc, "gpu")),
           json_string_value(json_object_get(doc, "uuid")),
           streq(verb, "undrain") ? "undrained, worker starting"
           : now                  ? "drained, worker stopped now"
                                  : "drained, worker stops after its current task");
    json_decref(doc);
    httpc_response_release(&resp);
    return CLI_EXIT_OK;
}

int cmd_gpu(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "now", no_argument, NULL, 'n' },
        { "token-file", required_argument, NULL, 't' },
        { 0 },
    };
    const char *token_file = getenv("GPU_AGENT_TOKEN_FILE"), *verb;
    bool json = false, now = false;
    int c, r;

    (void)ctx;
    if (argc < 2)
        return cli_usage_error(usage, "missing subcommand (status, drain or undrain)");
    verb = argv[1];
    if (!streq(verb, "status") && !streq(verb, "drain") && !streq(verb, "undrain"))
        return cli_usage_error(usage, "unknown subcommand '%s'", verb);
    argc--;
    argv++;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'n':
            now = true;
            break;
        case 't':
            token_file = optarg;
            break;
        default:
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((json && !streq(verb, "status")) || (now && !streq(verb, "drain")))
        return cli_usage_error(usage, "option '%s' does not apply to 'gpu %s'",
                               json ? "--json" : "--now", verb);
    if (httpc_init() < 0) {
        log_error("cannot initialize libcurl");
        return CLI_EXIT_FAILURE;
    }
    if (streq(verb, "status"))
        r = gpu_status(argc - optind, argv + optind, token_file, json);
    else if (argc - optind != 2)
        r = cli_usage_error(usage, "'gpu %s' needs HOST[:PORT] and GPU", verb);
    else
        r = gpu_action(verb, argv[optind], argv[optind + 1], now, token_file);
    httpc_cleanup();
    return r;
}
