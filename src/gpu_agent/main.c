/* SPDX-License-Identifier: MIT */
/* gpu_agent - one per GPU server: NVML metrics on /metrics, XID/health watching, and one
 * supervised training worker per healthy GPU; a failing GPU is drained so its work fails over
 * (docs/gpu_agent.md). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "http/http.h"
#include "supervise/supervise.h"

#define PROGNAME "gpu_agent"

static const char *arg_config;
static const char *arg_listen;
static const char *arg_nvml;
static bool arg_check;

static void help(FILE *f)
{
    fprintf(f,
            "usage: gpu_agent [--config.file PATH] [--web.listen-address [HOST]:PORT]\n"
            "                 [--nvml.library PATH] [--log.level LEVEL] [--config.check]\n\n"
            "Exports every GPU's state to Prometheus (NVML, no nvidia-smi), watches XID\n"
            "errors, and runs one worker per healthy GPU; a failing GPU is drained.\n\n"
            "Options:\n"
            "  --config.file PATH          YAML configuration (default: built-in defaults,\n"
            "                              metrics only, no workers)\n"
            "  --web.listen-address ADDR   where to serve /metrics and the API (default %s;\n"
            "                              overrides listen_address in the file)\n"
            "  --nvml.library PATH         NVML library to dlopen (default libnvidia-ml.so.1,\n"
            "                              or $GPU_AGENT_NVML_LIBRARY)\n"
            "  --log.level LEVEL           error, warning, notice, info (default), debug\n"
            "  --config.check              validate the configuration and exit\n"
            "  -h, --help                  this help\n"
            "  --version                   print the version\n\n"
            "Endpoints: GET /metrics, GET /api/v1/gpus, POST /api/v1/gpus/GPU/drain[?mode=now],\n"
            "POST /api/v1/gpus/GPU/undrain, GET /-/healthy.\n\n"
            "Exit codes: 0 stopped by SIGTERM/SIGINT (or --config.check passed), 1 runtime\n"
            "failure (bad configuration, port in use, state directory locked), 2 usage error.\n",
            AGENT_DEFAULT_LISTEN);
}

static int parse_args(int argc, char **argv)
{
    enum { OPT_CONFIG = 256, OPT_LISTEN, OPT_NVML, OPT_LOG, OPT_CHECK, OPT_VERSION };
    static const struct option opts[] = {
        { "config.file", required_argument, NULL, OPT_CONFIG },
        { "web.listen-address", required_argument, NULL, OPT_LISTEN },
        { "nvml.library", required_argument, NULL, OPT_NVML },
        { "log.level", required_argument, NULL, OPT_LOG },
        { "config.check", no_argument, NULL, OPT_CHECK },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { 0 },
    };
    enum log_level lvl;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            arg_config = optarg;
            break;
        case OPT_LISTEN:
            arg_listen = optarg;
            break;
        case OPT_NVML:
            arg_nvml = optarg;
            break;
        case OPT_LOG:
            if (log_level_from_string(optarg, &lvl) < 0) {
                fprintf(stderr, "%s: invalid --log.level '%s'\n", PROGNAME, optarg);
                return 2;
            }
            log_set_max_level(lvl);
            break;
        case OPT_CHECK:
            arg_check = true;
            break;
        case 'h':
            help(stdout);
            return 0;
        case OPT_VERSION:
            printf("gpu_agent %s\n", UT_VERSION);
            return 0;
        default:
            fprintf(stderr, "%s: unknown or incomplete option '%s' (see --help)\n", PROGNAME,
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", PROGNAME, argv[optind]);
        return 2;
    }
    return -1;
}

static int load_config(struct agent_config **ret)
{
    struct err e = ERR_INIT;
    char msg[700];
    const char *env = getenv("GPU_AGENT_NVML_LIBRARY");
    int r;

    if (arg_config)
        r = agent_config_load(arg_config, ret, &e);
    else
        r = agent_config_parse("(defaults)", "", 0, ret, &e);
    if (r < 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", PROGNAME,
                err_format(&e, msg, sizeof msg));
        return r;
    }
    if (arg_listen) {
        free((*ret)->listen_address);
        (*ret)->listen_address = xstrdup(arg_listen);
    }
    if (arg_nvml || (env && env[0])) {
        free((*ret)->nvml_library);
        (*ret)->nvml_library = xstrdup(arg_nvml ? arg_nvml : env);
    }
    return 0;
}

/* Waits for SIGTERM/SIGINT (0) or, when want_discovery, for NVML discovery (1). */
static int wait_signal_or_discovery(const struct agent *a, const sigset_t *mask,
                                    bool want_discovery)
{
    int sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int r = 0;

    if (sfd < 0)
        return log_error_errno(-errno, "signalfd() failed");
    for (;;) {
        struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
                               { .fd = a->discovered_fd, .events = POLLIN } };
        struct signalfd_siginfo si;

        if (poll(p, want_discovery ? 2 : 1, -1) < 0 && errno != EINTR) {
            r = log_error_errno(-errno, "poll() failed");
            break;
        }
        if (want_discovery && (p[1].revents & POLLIN)) {
            r = 1;
            break;
        }
        if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                log_notice("received %s, stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (si.ssi_signo == SIGHUP)
                log_notice("received SIGHUP: reloading is not supported, ignoring");
        }
    }
    fd_close(sfd);
    return r;
}

/* Runs the workers under the supervision engine until SIGTERM/SIGINT. */
static int run_workers(struct agent *a)
{
    struct sv_spec *s = NULL;
    const char **held;
    int r;

    pthread_mutex_lock(&a->lock);
    r = workers_build_spec(a, &s);
    held = workers_held(a);
    pthread_mutex_unlock(&a->lock);
    if (r < 0) {
        free(held);
        return r;
    }
    log_notice("supervising %zu GPU workers in '%s'", s->n_services, a->cfg->state_dir);
    r = sv_run(s, &(struct sv_options){ .state_dir = a->cfg->state_dir,
                                        .ready_fd = -1,
                                        .held = held,
                                        .on_change = workers_on_change,
                                        .userdata = a });
    free(held);
    sv_spec_free(s);
    return r;
}

int main(int argc, char **argv)
{
    struct agent_config *cfg = NULL;
    struct http_server *http = NULL;
    static struct agent a; /* static: what a stuck thread still uses stays reachable at exit */
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigset_t mask;
    int r, ret = EXIT_FAILURE;

    log_set_prog(PROGNAME);
    r = parse_args(argc, argv);
    if (r >= 0)
        return r;
    if (load_config(&cfg) < 0)
        return EXIT_FAILURE;
    if (arg_check) {
        printf("%s: configuration OK\n", cfg->path);
        agent_config_free(cfg);
        return EXIT_SUCCESS;
    }
    log_set_daemon_mode(1);

    /* Every thread inherits this mask: the supervision engine's signalfd (or ours) sees the
     * signals, and no NVML or HTTP thread is ever interrupted by them. */
    (void)sigaction(SIGPIPE, &sa, NULL);
    (void)sigemptyset(&mask);
    (void)sigaddset(&mask, SIGCHLD);
    (void)sigaddset(&mask, SIGTERM);
    (void)sigaddset(&mask, SIGINT);
    (void)sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        log_error_errno(-errno, "sigprocmask() failed");
        goto out;
    }
    if (agent_init(&a, cfg) < 0)
        goto out;
    r = api_start(&a, cfg->listen_address, &http);
    if (r < 0) {
        log_error_errno(r, "cannot listen on '%s'", cfg->listen_address);
        goto out;
    }
    log_notice("gpu_agent %s listening on %s (port %u), host '%s'", UT_VERSION, cfg->listen_address,
               (unsigned)http_server_port(http), a.hostname);
    r = agent_start_threads(&a);
    if (r < 0) {
        log_error_errno(r, "cannot start threads");
        goto out;
    }
    r = wait_signal_or_discovery(&a, &mask, cfg->worker.present);
    if (r == 1) {
        bool any = false;

        pthread_mutex_lock(&a.lock); /* discovery published the GPUs under it */
        for (size_t i = 0; i < a.n_gpus; i++)
            any = any || a.gpus[i].has_worker;
        pthread_mutex_unlock(&a.lock);
        if (any)
            r = run_workers(&a);
        else
            r = wait_signal_or_discovery(&a, &mask, false);
    }
    if (r < 0) {
        log_error_errno(r, "stopping after a fatal error");
        goto out;
    }
    ret = EXIT_SUCCESS;
out:
    http = http_server_stop(http);
    agent_release(&a);
    agent_config_free(cfg);
    return ret;
}
