/* SPDX-License-Identifier: MIT */
/* kafka_lag_exporter - one Kafka cluster's brokers, partition state and consumer-group lag on
 * /metrics under kafka_exporter's metric names, so its dashboards and alert rules work
 * unchanged (docs/kafka_lag_exporter.md).  main.c: options, signals; server.c serves. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "server.h"

#define PROGNAME        "kafka_lag_exporter"
#define EXIT_USAGE      2
#define DEFAULT_LISTEN  "127.0.0.1:9308" /* kafka_exporter's port */
#define DEFAULT_TIMEOUT (5 * USEC_PER_SEC)
#define MAX_TIMEOUT     (10 * 60 * USEC_PER_SEC)

static const char *arg_listen = DEFAULT_LISTEN;
static const char *arg_bootstrap;
static uint64_t arg_timeout_usec = DEFAULT_TIMEOUT;

static void help(FILE *f)
{
    fprintf(f,
            "usage: kafka_lag_exporter --bootstrap HOST:PORT[,HOST:PORT...] [--listen HOST:PORT]\n"
            "                          [--timeout DURATION]\n\n"
            "Serves a Kafka cluster's brokers, partition state and consumer-group lag to\n"
            "Prometheus under kafka_exporter's metric names.  Every scrape asks the cluster.\n\n"
            "Options:\n"
            "  --bootstrap LIST     the cluster's brokers, host:port[,host:port...] (required)\n"
            "  --listen HOST:PORT   where to serve HTTP (default %s; port 0 = any)\n"
            "  --timeout DURATION   budget of one scrape's Kafka requests, e.g. 5s, 500ms\n"
            "                       (default 5s, at most 10m)\n"
            "  -h, --help           this help\n"
            "  --version            print the version\n\n"
            "Endpoints: GET /metrics, GET /healthz.\n\n"
            "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 cannot listen (or another runtime\n"
            "failure), 2 usage error.\n",
            DEFAULT_LISTEN);
}

static int usage_error(const char *fmt, ...) PRINTF(1, 2);

/* Reports a bad command line (one line, not the whole help) and returns the usage exit code. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", PROGNAME);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see --help)\n");
    return EXIT_USAGE;
}

/* HOST:PORT, [V6]:PORT or :PORT with a port 0-65535.  Only the syntax: whether HOST resolves
 * is found out when binding (exit code 1). */
static bool listen_valid(const char *s)
{
    const char *colon;
    uint64_t port;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return false;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return false;
    }
    return parse_uint_range(colon + 1, 0, 65535, &port) == 0;
}

/* Non-empty comma-separated entries, no white space (librdkafka checks the rest). */
static bool bootstrap_valid(const char *s)
{
    if (!s[0] || strpbrk(s, " \t\r\n"))
        return false;
    for (;;) {
        size_t n = strcspn(s, ",");
        if (n == 0)
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

/* -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv)
{
    enum { OPT_LISTEN = 0x100, OPT_BOOTSTRAP, OPT_TIMEOUT, OPT_VERSION };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "bootstrap", required_argument, NULL, OPT_BOOTSTRAP },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    int c;

    opterr = 0; /* our messages, not getopt's */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            if (!listen_valid(optarg))
                return usage_error("invalid --listen '%s': expected HOST:PORT, [V6]:PORT or "
                                   ":PORT with a port from 0 to 65535",
                                   optarg);
            arg_listen = optarg;
            break;
        case OPT_BOOTSTRAP:
            if (!bootstrap_valid(optarg))
                return usage_error("invalid --bootstrap '%s': expected HOST:PORT[,HOST:PORT...]",
                                   optarg);
            arg_bootstrap = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_duration_usec(optarg, &arg_timeout_usec) < 0 || arg_timeout_usec == 0 ||
                arg_timeout_usec > MAX_TIMEOUT)
                return usage_error("invalid --timeout '%s': expected a duration from 1ms to 10m "
                                   "such as 5s or 500ms",
                                   optarg);
            break;
        case 'h':
            help(stdout);
            return EXIT_SUCCESS;
        case OPT_VERSION:
            printf("%s %s\n", PROGNAME, UT_VERSION);
            return EXIT_SUCCESS;
        case ':':
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!arg_bootstrap)
        return usage_error("--bootstrap is required: the cluster's brokers, "
                           "HOST:PORT[,HOST:PORT...]");
    return -1;
}

/* Blocks the signals we wait for before any thread starts (libmicrohttpd's and librdkafka's
 * threads inherit the mask) and returns a signalfd for them in *ret_fd. */
static int setup_signals(int *ret_fd)
{
    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigset_t mask;
    int fd;

    (void)sigaction(SIGPIPE, &sa, NULL);
    (void)sigemptyset(&mask);
    (void)sigaddset(&mask, SIGTERM);
    (void)sigaddset(&mask, SIGINT);
    (void)sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    *ret_fd = fd;
    return 0;
}

/* Waits for SIGTERM or SIGINT (0); SIGHUP is ignored, there is nothing to reload. */
static int wait_for_stop(int sfd)
{
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof si);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return log_error_errno(-errno, "read() from the signalfd failed");
        if (n != (ssize_t)sizeof si)
            continue;
        if (si.ssi_signo == SIGHUP) {
            log_notice("received SIGHUP: there is nothing to reload, ignoring");
            continue;
        }
        log_notice("received %s, stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return 0;
    }
}

int main(int argc, char **argv)
{
    struct klag_server *srv = NULL;
    char timeout[32];
    int sfd = -1, r, ret = EXIT_FAILURE;

    log_set_prog(PROGNAME);
    r = parse_args(argc, argv);
    if (r >= 0)
        return r;
    log_set_daemon_mode(1);
    r = setup_signals(&sfd);
    if (r < 0) {
        log_error_errno(r, "cannot set up signal handling");
        goto out;
    }
    r = klag_server_start(&(struct klag_server_config){ .listen = arg_listen,
                                                        .bootstrap = arg_bootstrap,
                                                        .timeout_usec = arg_timeout_usec },
                          &srv);
    if (r < 0) {
        const char *name = strerrorname_np(-r);

        log_error_errno(r, "cannot listen on '%s' (%s)", arg_listen, name ? name : "?");
        goto out;
    }
    log_notice("%s %s listening on %s (port %u), cluster '%s', scrape timeout %s", PROGNAME,
               UT_VERSION, arg_listen, (unsigned)klag_server_port(srv), arg_bootstrap,
               format_duration(timeout, sizeof timeout, arg_timeout_usec));
    if (wait_for_stop(sfd) == 0)
        ret = EXIT_SUCCESS;
out:
    srv = klag_server_stop(srv);
    (void)fd_close(sfd);
    return ret;
}
