/* SPDX-License-Identifier: MIT */
#include "time.h"

#include <errno.h>
#include <time.h>

static uint64_t clock_usec(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

uint64_t now_usec(void)
{
    return clock_usec(CLOCK_MONOTONIC);
}

uint64_t now_realtime_usec(void)
{
    return clock_usec(CLOCK_REALTIME);
}

void sleep_usec(uint64_t usec)
{
    struct timespec ts = { .tv_sec = (time_t)(usec / 1000000ULL),
                           .tv_nsec = (long)(usec % 1000000ULL) * 1000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
