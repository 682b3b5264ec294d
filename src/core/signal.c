/* SPDX-License-Identifier: MIT */
#include "signal.h"

#include <errno.h>
#include <signal.h>

#include "str.h"

static const struct {
    int sig;
    const char *name;
} stop_signals[] = {
    { SIGTERM, "SIGTERM" }, { SIGINT, "SIGINT" },   { SIGQUIT, "SIGQUIT" }, { SIGHUP, "SIGHUP" },
    { SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" },
};

int signal_from_string(const char *s, int *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
        if (streq(s, stop_signals[i].name)) {
            *ret = stop_signals[i].sig;
            return 0;
        }
    return -EINVAL;
}

const char *signal_to_string(int sig)
{
    for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
        if (stop_signals[i].sig == sig)
            return stop_signals[i].name;
    return NULL;
}
