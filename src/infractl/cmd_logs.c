/* SPDX-License-Identifier: MIT */
/* infractl logs [-f] [-n LINES] [SERVICE...]: the tail of each service's log, optionally
 * followed (inotify on the log directory, so rotation is noticed). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "stack/stack.h"
#include "supervise/supervise.h"

static const char usage[] = "logs [-f] [-n LINES] [SERVICE...]";

static const struct cli_help_item logs_options[] = {
    { "-f, --follow", "keep printing new lines, across rotations" },
    { "-n, --lines LINES", "lines of each log to show first (default 50)" },
    { "SERVICE...", "only these logs (default: every service; `supervisor`: its own)" },
    { NULL, NULL },
};

const struct cli_help cmd_logs_help = {
    .usage = usage,
    .summary = "Show service logs",
    .options = logs_options,
};

struct log_src {
    char *name; /* borrowed */
    char *path; /* owned */
    off_t offset;
    ino_t ino;
    struct buf partial; /* an incomplete last line, printed once complete */
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void print_lines(struct log_src *src, const char *data, size_t n, bool prefix, int width)
{
    const char *p = data, *end = data + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            if (buf_append(&src->partial, p, (size_t)(end - p)) < 0)
                buf_reset(&src->partial); /* a line over 1 MiB: drop its start */
            return;
        }
        if (prefix)
            printf("%-*s | ", width, src->name);
        if (src->partial.len) {
            fwrite(src->partial.data, 1, src->partial.len, stdout);
            buf_reset(&src->partial);
        }
        fwrite(p, 1, (size_t)(nl - p) + 1, stdout);
        p = nl + 1;
    }
}

/* Prints the last `lines` lines of a log and remembers where it ended. */
static void show_tail(struct log_src *src, unsigned lines, bool prefix, int width)
{
    struct buf b = BUF_INIT(0);
    struct stat st;
    size_t start;
    unsigned seen = 0;

    if (stat(src->path, &st) < 0)
        return;
    src->ino = st.st_ino;
    if (file_read_tail(src->path, (size_t)lines * 512 + 4096, &b) < 0)
        goto out;
    src->offset = st.st_size;
    start = b.len;
    while (start > 0) {
        if (b.data[start - 1] == '\n' && start != b.len && ++seen >= lines)
            break;
        start--;
    }
    if (lines > 0)
        print_lines(src, b.data + start, b.len - start, prefix, width);
out:
    buf_release(&b);
}

/* Prints what was appended since the last read; starts over after rotation/truncation. */
static void show_new(struct log_src *src, bool prefix, int width)
{
    char chunk[65536];
    struct stat st;
    int fd;

    if (stat(src->path, &st) < 0)
        return;
    if (st.st_ino != src->ino || st.st_size < src->offset) {
        src->ino = st.st_ino;
        src->offset = 0;
    }
    fd = open(src->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (;;) {
        ssize_t n = pread(fd, chunk, sizeof chunk, src->offset);
        if (n <= 0)
            break;
        src->offset += n;
        print_lines(src, chunk, (size_t)n, prefix, width);
    }
    fd_close(fd);
    fflush(stdout);
}

static int follow(struct log_src *srcs, size_t n, const char *dir, bool prefix, int width)
{
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    struct sigaction sa = { .sa_handler = on_sigint };

    if (ifd < 0)
        return log_error_errno(-errno, "inotify_init1() failed");
    if (inotify_add_watch(ifd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        int r = log_error_errno(-errno, "cannot watch '%s'", dir);
        fd_close(ifd);
        return r;
    }
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
    while (!interrupted) {
        struct pollfd p = { .fd = ifd, .events = POLLIN };
        char ev[4096];

        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        while (read(ifd, ev, sizeof ev) > 0)
            ;
        for (size_t i = 0; i < n; i++)
            show_new(&srcs[i], prefix, width);
    }
    fd_close(ifd);
    return 0;
}

int cmd_logs(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "follow", no_argument, NULL, 'f' },
        { "lines", required_argument, NULL, 'n' },
        { 0 },
    };
    struct stack *s = NULL;
    struct log_src *srcs = NULL;
    struct err e = ERR_INIT;
    bool fol = false;
    uint64_t lines = 50;
    size_t n = 0;
    int c, width = 0, ret = CLI_EXIT_OK;
    char dir[PATH_MAX], msg[600];

    while ((c = getopt_long(argc, argv, "fn:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fol = true;
            break;
        case 'n':
            if (parse_uint_range(optarg, 0, 100000, &lines) < 0)
                return cli_usage_error(usage, "invalid --lines '%s'", optarg);
            break;
        default:
            return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (stack_load(ctx->stack_path, &s, &e) < 0) {
        log_error("invalid stack file: %s", err_format(&e, msg, sizeof msg));
        return CLI_EXIT_FAILURE;
    }
    srcs = xcalloc(s->n_services + 1, sizeof *srcs);
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            if (!streq(argv[i], "supervisor") && !stack_find(s, argv[i])) {
                log_error("unknown service '%s'", argv[i]);
                ret = CLI_EXIT_USAGE;
                goto out;
            }
            if (n > s->n_services)
                break;
            srcs[n++].name = argv[i];
        }
    } else {
        for (size_t i = 0; i < s->n_services; i++)
            srcs[n++].name = s->services[i].name;
    }
    for (size_t i = 0; i < n; i++) {
        int w = (int)strlen(srcs[i].name);
        srcs[i].path = sv_log_path(ctx->state_dir, srcs[i].name);
        buf_init(&srcs[i].partial, 1 << 20);
        width = w > width ? w : width;
    }
    for (size_t i = 0; i < n; i++)
        show_tail(&srcs[i], (unsigned)lines, n > 1, width);
    fflush(stdout);
    (void)snprintf(dir, sizeof dir, "%s/logs", ctx->state_dir);
    if (fol && follow(srcs, n, dir, n > 1, width) < 0)
        ret = CLI_EXIT_FAILURE;
out:
    for (size_t i = 0; srcs && i < n; i++) {
        free(srcs[i].path);
        buf_release(&srcs[i].partial);
    }
    free(srcs);
    stack_free(s);
    return ret;
}
