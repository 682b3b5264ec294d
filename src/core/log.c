/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int log__max_level = LOG_LVL_INFO;
static const char *log_prog;
static int log_daemon;

static const char *const level_names[] = {
    [LOG_LVL_ERROR] = "error", [LOG_LVL_WARNING] = "warning", [LOG_LVL_NOTICE] = "notice",
    [LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

void log_set_prog(const char *prog)
{
    log_prog = prog;
}

void log_set_max_level(enum log_level lvl)
{
    log__max_level = (int)lvl;
}

void log_set_daemon_mode(int on)
{
    log_daemon = on;
}

int log_level_from_string(const char *s, enum log_level *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
        if (level_names[i] && strcmp(level_names[i], s) == 0) {
            *ret = (enum log_level)i;
            return 0;
        }
    return -EINVAL;
}

int log__internal(int lvl, int r, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    int saved = errno;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    if (log_daemon) {
        struct timespec ts;
        struct tm tm;
        char when[32];

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        (void)strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        if (getenv("JOURNAL_STREAM"))
            fprintf(stderr, "<%d>%s%s%s\n", lvl, msg, r ? ": " : "", r ? strerror(-r) : "");
        else
            fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s%s%s\"%s%s\n", when,
                    ts.tv_nsec / 1000000, level_names[lvl], msg, r ? ": " : "",
                    r ? strerror(r < 0 ? -r : r) : "", lvl == LOG_LVL_DEBUG ? " src=" : "",
                    lvl == LOG_LVL_DEBUG ? file : "");
    } else {
        fprintf(stderr, "%s%s%s%s%s\n", log_prog ? log_prog : "", log_prog ? ": " : "", msg,
                r ? ": " : "", r ? strerror(r < 0 ? -r : r) : "");
    }
    (void)line;
    errno = saved;
    return r;
}
