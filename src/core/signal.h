/* SPDX-License-Identifier: MIT */
/* signal.h - the signals a configuration may name to stop a process, by name and number. */
#pragma once

#include "macro.h"

/* The names signal_from_string() accepts, as a list for error messages. */
#define SIGNAL_STOP_NAMES "SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1 or SIGUSR2"

/* "SIGTERM" -> SIGTERM for the signals of SIGNAL_STOP_NAMES (exact, upper-case names); 0, or
 * -EINVAL for any other name (*ret untouched).  Thread-safe. */
int signal_from_string(const char *s, int *ret) WARN_UNUSED_RESULT;
/* SIGTERM -> "SIGTERM" for the same signals (a static string); NULL for any other number. */
const char *signal_to_string(int sig);
