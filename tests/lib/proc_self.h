/* SPDX-License-Identifier: MIT */
/* proc_self.h - what this test process holds, read from /proc/self: its open file descriptors
 * and its threads, for tests that check a component leaks neither.  Header-only.
 *
 *   unsigned fds = t_count_fds(), threads = t_count_threads();
 *   ... start and free the component ...
 *   t_wait_threads(threads);              its threads may take a moment to end
 *   ASSERT_EQ(t_count_fds(), fds);
 */
#pragma once

#include <dirent.h>
#include <stdint.h>

#include "core/time.h"
#include "t.h"

/* The entries of a /proc directory, "." and ".." left out. */
static inline unsigned t_dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    unsigned n = 0;

    ASSERT_TRUE(d != NULL);
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    (void)closedir(d);
    return n;
}

/* Open file descriptors (the one opendir() holds while counting left out). */
static inline unsigned t_count_fds(void)
{
    return t_dir_entries("/proc/self/fd") - 1;
}

static inline unsigned t_count_threads(void)
{
    return t_dir_entries("/proc/self/task");
}

/* Waits up to 5 s until only n threads are left, then asserts it. */
static inline void t_wait_threads(unsigned n)
{
    uint64_t deadline = now_usec() + 5 * USEC_PER_SEC;

    while (t_count_threads() > n && now_usec() < deadline)
        sleep_usec(5 * USEC_PER_MSEC);
    ASSERT_EQ(t_count_threads(), n);
}
