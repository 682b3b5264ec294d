/* SPDX-License-Identifier: MIT */
/* time.h - monotonic and wall clocks in microseconds. */
#pragma once

#include <stdint.h>

uint64_t now_usec(void);          /* CLOCK_MONOTONIC */
uint64_t now_realtime_usec(void); /* CLOCK_REALTIME */
/* Sleeps for usec (restarting on EINTR).  For tests and CLI waits only, never in event loops. */
void sleep_usec(uint64_t usec);
