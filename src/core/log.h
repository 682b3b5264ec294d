/* SPDX-License-Identifier: MIT */
/* log.h - leveled logging to stderr (logfmt, or sd-daemon "<N>" prefixes under journald).
 * Library modules (core, cfg, probe, adapters) log at debug at most and return errors. */
#pragma once

#include "macro.h"

enum log_level {
    LOG_LVL_ERROR = 3,
    LOG_LVL_WARNING = 4,
    LOG_LVL_NOTICE = 5,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7,
};

extern int log__max_level;

/* Program name printed as "PROG: " in CLI mode; borrowed, must outlive the program. */
void log_set_prog(const char *prog);
void log_set_max_level(enum log_level lvl);
/* Parses "error|warning|notice|info|debug"; -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret);
/* Daemon mode prints "ts=... level=... msg=..." lines; CLI mode prints "PROG: msg". */
void log_set_daemon_mode(int on);

/* Returns r (so `return log_error_errno(r, ...)` works); r may be 0 for "no errno". */
int log__internal(int lvl, int r, const char *file, int line, const char *fmt, ...) PRINTF(5, 6);

#define log_full_errno(lvl_, r_, ...) \
    ((lvl_) <= log__max_level ? log__internal((lvl_), (r_), __FILE__, __LINE__, __VA_ARGS__) : (r_))

#define log_debug(...)   (void)log_full_errno(LOG_LVL_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    (void)log_full_errno(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_notice(...)  (void)log_full_errno(LOG_LVL_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) (void)log_full_errno(LOG_LVL_WARNING, 0, __VA_ARGS__)
#define log_error(...)   (void)log_full_errno(LOG_LVL_ERROR, 0, __VA_ARGS__)

#define log_debug_errno(r_, ...)   log_full_errno(LOG_LVL_DEBUG, (r_), __VA_ARGS__)
#define log_info_errno(r_, ...)    log_full_errno(LOG_LVL_INFO, (r_), __VA_ARGS__)
#define log_warning_errno(r_, ...) log_full_errno(LOG_LVL_WARNING, (r_), __VA_ARGS__)
#define log_error_errno(r_, ...)   log_full_errno(LOG_LVL_ERROR, (r_), __VA_ARGS__)
