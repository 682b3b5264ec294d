/* SPDX-License-Identifier: MIT */
/* rolloutd - feature flags for gradual rollouts: admin API, OFREP evaluation, snapshots and an
 * SSE change stream for librollout, /metrics.  See docs/rolloutd.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "rolloutd.h"
#include "store.h"

#define EXIT_USAGE 2

static const char *arg_listen = "127.0.0.1:8090";
static const char *arg_store;
static const char *arg_state_dir;
static const char *arg_pg_listen;
static const char *arg_envs = "production,staging";
static unsigned arg_threads = 2;
static uint64_t arg_max_body = 1024 * 1024;
static struct rd_ctl_config arg_ctl = { .prometheus_url = "http://127.0.0.1:9090",
                                        .webhook_url = NULL,
                                        .tick_ms = 1000,
                                        .lease_ttl_ms = 10000,
                                        .query_timeout_ms = 5000 };

static void help(FILE *f)
{
    fprintf(f, "usage: rolloutd --state-dir DIR [OPTIONS]\n\n"
               "Feature flags for gradual rollouts (off, shadow, canary, partial, full): admin\n"
               "API, OFREP evaluation, snapshots + SSE stream for librollout, /metrics.\n\n"
               "Options:\n"
               "  --listen ADDR:PORT      HTTP listener (default 127.0.0.1:8090; port 0 = any)\n"
               "  --store SPEC            sqlite:PATH (default sqlite:STATE/rolloutd.db) or\n"
               "                          postgres:CONNINFO (several replicas share it)\n"
               "  --state-dir DIR         admin.token, rolloutd.addr, the default database\n"
               "  --pg-listen CONNINFO    direct PostgreSQL connection for LISTEN (default: the\n"
               "                          store's; needed when the store goes through PgBouncer)\n"
               "  --environments LIST     comma-separated; the first is the default\n"
               "                          (default production,staging)\n"
               "  --threads N             HTTP threads (default 2)\n"
               "  --max-body SIZE         request body limit (default 1MiB)\n"
               "  --log-level LEVEL       error, warning, notice, info (default), debug\n"
               "\nRollout plans (docs/rollouts.md):\n"
               "  --prometheus-url URL    Prometheus for the analyses (default\n"
               "                          http://127.0.0.1:9090)\n"
               "  --rollout-webhook URL   POST an Alertmanager-style webhook on each rollback\n"
               "  --rollout-tick-ms N     controller loop period (default 1000; 50-60000)\n"
               "  --lease-ttl-ms N        controller lease across replicas (default 10000)\n"
               "  --query-timeout-ms N    per Prometheus query and webhook (default 5000)\n"
               "  -h, --help              this help\n"
               "  --version               print the version\n"
               "\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 runtime failure, 2 usage error.\n");
}

static int parse_args(int argc, char **argv)
{
    enum {
        OPT_LISTEN = 0x100,
        OPT_STORE,
        OPT_STATE,
        OPT_PG_LISTEN,
        OPT_ENVS,
        OPT_THREADS,
        OPT_MAX_BODY,
        OPT_LOG_LEVEL,
        OPT_VERSION,
        OPT_PROM_URL,
        OPT_WEBHOOK,
        OPT_TICK,
        OPT_LEASE,
        OPT_QUERY_TIMEOUT,
    };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "store", required_argument, NULL, OPT_STORE },
        { "state-dir", required_argument, NULL, OPT_STATE },
        { "pg-listen", required_argument, NULL, OPT_PG_LISTEN },
        { "environments", required_argument, NULL, OPT_ENVS },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "max-body", required_argument, NULL, OPT_MAX_BODY },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { "prometheus-url", required_argument, NULL, OPT_PROM_URL },
        { "rollout-webhook", required_argument, NULL, OPT_WEBHOOK },
        { "rollout-tick-ms", required_argument, NULL, OPT_TICK },
        { "lease-ttl-ms", required_argument, NULL, OPT_LEASE },
        { "query-timeout-ms", required_argument, NULL, OPT_QUERY_TIMEOUT },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
        uint64_t v;
        enum log_level lvl;

        switch (c) {
        case OPT_LISTEN:
            arg_listen = optarg;
            break;
        case OPT_STORE:
            arg_store = optarg;
            break;
        case OPT_STATE:
            arg_state_dir = optarg;
            break;
        case OPT_PG_LISTEN:
            arg_pg_listen = optarg;
            break;
        case OPT_ENVS:
            arg_envs = optarg;
            break;
        case OPT_THREADS:
            if (parse_uint_range(optarg, 1, 64, &v) < 0) {
                log_error("invalid --threads '%s' (1-64)", optarg);
                return -EINVAL;
            }
            arg_threads = (unsigned)v;
            break;
        case OPT_MAX_BODY:
            if (parse_size(optarg, &v) < 0 || v < 1024 || v > 64 * 1024 * 1024) {
                log_error("invalid --max-body '%s' (1KiB-64MiB)", optarg);
                return -EINVAL;
            }
            arg_max_body = v;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_from_string(optarg, &lvl) < 0) {
                log_error("invalid --log-level '%s'", optarg);
                return -EINVAL;
            }
            log_set_max_level(lvl);
            break;
        case OPT_PROM_URL:
        case OPT_WEBHOOK:
            if (!str_startswith(optarg, "http://") && !str_startswith(optarg, "https://")) {
                log_error("invalid URL '%s' (http:// or https://)", optarg);
                return -EINVAL;
            }
            while (optarg[0] && optarg[strlen(optarg) - 1] == '/' && c == OPT_PROM_URL)
                optarg[strlen(optarg) - 1] = '\0';
            *(c == OPT_PROM_URL ? &arg_ctl.prometheus_url : &arg_ctl.webhook_url) = optarg;
            break;
        case OPT_TICK:
        case OPT_LEASE:
        case OPT_QUERY_TIMEOUT:
            if (parse_uint_range(optarg, c == OPT_TICK ? 50 : 100, c == OPT_TICK ? 60000 : 600000,
                                 &v) < 0) {
                log_error("invalid %s '%s'", argv[optind - 1], optarg);
                return -EINVAL;
            }
            if (c == OPT_TICK)
                arg_ctl.tick_ms = (unsigned)v;
            else if (c == OPT_LEASE)
                arg_ctl.lease_ttl_ms = (unsigned)v;
            else
                arg_ctl.query_timeout_ms = (long)v;
            break;
        case 'h':
            help(stdout);
            return 0;
        case OPT_VERSION:
            printf("rolloutd %s\n", UT_VERSION);
            return 0;
        default:
            fprintf(stderr, "Try 'rolloutd --help'.\n");
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!arg_state_dir) {
        log_error("--state-dir is required");
        return -EINVAL;
    }
    if (arg_ctl.lease_ttl_ms < 2 * arg_ctl.tick_ms) {
        log_error("--lease-ttl-ms must be at least twice --rollout-tick-ms (it is renewed every "
                  "tick)");
        return -EINVAL;
    }
    return 1;
}

static bool env_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ROLLOUT_ENV_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

static int parse_envs(struct rd *rd)
{
    char *copy = xstrdup(arg_envs), *p = copy;

    rd->env_names = xcalloc(ROLLOUT_MAX_ENVS + 1, sizeof *rd->env_names);
    while (p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!env_name_ok(p) || rd->n_envs == ROLLOUT_MAX_ENVS) {
            log_error("invalid --environments entry '%s' ([a-z0-9_-]{1,32}, at most %d)", p,
                      ROLLOUT_MAX_ENVS);
            free(copy);
            return -EINVAL;
        }
        for (size_t i = 0; i < rd->n_envs; i++)
            if (streq(rd->env_names[i], p)) {
                log_error("environment '%s' listed twice", p);
                free(copy);
                return -EINVAL;
            }
        rd->env_names[rd->n_envs++] = xstrdup(p);
        p = comma ? comma + 1 : NULL;
    }
    free(copy);
    return 0;
}

static void free_envs(struct rd *rd)
{
    for (size_t i = 0; rd->env_names && i < rd->n_envs; i++)
        free(rd->env_names[i]);
    free(rd->env_names);
}

static int setup_signals(int *ret_fd)
{
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigset_t mask;
    int fd;

    (void)sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any thread starts, so MHD's threads inherit the mask. */
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
        return -errno;
    fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    *ret_fd = fd;
    return 0;
}

/* Waits for a signal; in PostgreSQL mode also follows other replicas' changes. */
static int run_loop(struct rd *rd, int sfd)
{
    for (;;) {
        struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
        struct err e = ERR_INIT;
        int n, r;

        p[1].fd = store_notify_fd(rd->store);
        n = poll(p, 2, 2000);
        if (n < 0 && errno != EINTR)
            return log_error_errno(-errno, "poll() failed");
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    log_info("SIGHUP: reloading from the store");
                    if (rd_sync(rd, &e) < 0)
                        log_warning("cannot reload: %s", e.msg);
                    continue;
                }
                log_notice("signal %u: shutting down", si.ssi_signo);
                return 0;
            }
        }
        if (!streq(store_backend(rd->store), "postgres"))
            continue;
        /* Notifications (or a 2 s tick, in case some were lost while reconnecting). */
        r = store_notify_read(rd->store, &e);
        if (r < 0) {
            log_warning("store notifications: %s, retrying", e.msg);
            continue;
        }
        r = rd_sync(rd, &e);
        if (r < 0)
            log_warning("cannot sync with the store: %s, serving revision %" PRIu64, e.msg,
                        rd->revision);
    }
}

int main(int argc, char **argv)
{
    struct rd rd = { 0 };
    struct http_config cfg = HTTP_CONFIG_INIT;
    struct err e = ERR_INIT;
    char *store_spec = NULL, *addr_path = NULL, *addr = NULL;
    char msg[600];
    int sfd = -1, r, ret = EXIT_FAILURE;

    log_set_prog("rolloutd");
    r = parse_args(argc, argv);
    if (r <= 0)
        return r == 0 ? EXIT_SUCCESS : EXIT_USAGE;
    log_set_daemon_mode(1);
    r = parse_envs(&rd);
    if (r < 0) {
        free_envs(&rd);
        return EXIT_USAGE;
    }
    r = mkdir_p(arg_state_dir, 0700);
    if (r < 0) {
        log_error_errno(r, "cannot create state directory '%s'", arg_state_dir);
        goto out;
    }
    rd.state_dir = xstrdup(arg_state_dir);
    store_spec = arg_store ? xstrdup(arg_store) : xasprintf("sqlite:%s/rolloutd.db", arg_state_dir);
    r = setup_signals(&sfd);
    if (r < 0) {
        log_error_errno(r, "cannot set up signals");
        goto out;
    }
    /* libcurl's global state, before any thread exists (the controller's Prometheus client). */
    if (httpc_init() < 0) {
        log_error("cannot initialize libcurl");
        goto out;
    }
    r = rd_init(&rd, &e);
    if (r < 0) {
        log_error("%s", e.msg);
        goto out;
    }
    r = store_open(store_spec, arg_pg_listen, &rd.store, &e);
    if (r < 0) {
        log_error("cannot open the store: %s", err_format(&e, msg, sizeof msg));
        goto out;
    }
    (void)pthread_mutex_lock(&rd.lock);
    r = rd_reload(&rd, &e);
    if (r >= 0)
        r = rd_bootstrap_admin(&rd, &e);
    (void)pthread_mutex_unlock(&rd.lock);
    if (r < 0) {
        log_error("cannot load the store: %s", e.msg[0] ? e.msg : strerror(-r));
        goto out;
    }
    log_info("store %s at revision %" PRIu64 ": %zu flags, %zu segments, %zu tokens",
             store_backend(rd.store), rd.revision, rd.n_items[RD_FLAGS], rd.n_items[RD_SEGMENTS],
             rd.n_tokens);

    /* Before the listener: handlers wake the controller through rd.ctl, which is then set. */
    r = rd_ctl_start(&rd, &arg_ctl, &e);
    if (r < 0) {
        log_error("%s", e.msg);
        goto out;
    }

    cfg.listen = arg_listen;
    cfg.routes = rd_routes;
    cfg.n_routes = rd_n_routes;
    cfg.userdata = &rd;
    cfg.threads = arg_threads;
    cfg.max_body = arg_max_body;
    cfg.metrics = rd.metrics;
    /* Handlers publish through rd.http under rd.lock: hold it until rd.http is set. */
    (void)pthread_mutex_lock(&rd.lock);
    r = http_server_start(&cfg, &rd.http);
    (void)pthread_mutex_unlock(&rd.lock);
    if (r < 0) {
        log_error_errno(r, "cannot listen on '%s'", arg_listen);
        goto out;
    }
    /* Tests and tools find the port here (useful with port 0). */
    {
        const char *colon = strrchr(arg_listen, ':');
        addr = xasprintf("%.*s:%u\n", (int)(colon - arg_listen), arg_listen,
                         (unsigned)http_server_port(rd.http));
    }
    addr_path = xasprintf("%s/rolloutd.addr", arg_state_dir);
    r = file_write_atomic(addr_path, addr, strlen(addr), 0644);
    if (r < 0)
        log_warning_errno(r, "cannot write '%s', ignoring", addr_path);
    atomic_store(&rd.ready, true);
    addr[strlen(addr) - 1] = '\0';
    log_notice("listening on http://%s (store %s, %zu environments, %u threads)", addr,
               store_backend(rd.store), rd.n_envs, arg_threads);

    r = run_loop(&rd, sfd);
    ret = r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
out:
    atomic_store(&rd.ready, false);
    /* Stopping waits for the handlers, which may take rd.lock: not held here. */
    {
        struct http_server *h = rd.http;
        (void)pthread_mutex_lock(&rd.lock);
        rd.http = NULL; /* no more broadcasts */
        (void)pthread_mutex_unlock(&rd.lock);
        (void)http_server_stop(h);
    }
    rd_ctl_stop(&rd);
    rd.store = store_close(rd.store);
    rd_release(&rd);
    free_envs(&rd);
    httpc_cleanup();
    free(rd.state_dir);
    free(store_spec);
    free(addr_path);
    free(addr);
    (void)fd_close(sfd);
    return ret;
}
