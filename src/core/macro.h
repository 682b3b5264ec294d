/* SPDX-License-Identifier: MIT */
/* macro.h - attributes, ARRAY_SIZE, ASSERT/BUG and the -errno helper used everywhere. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define WARN_UNUSED_RESULT  __attribute__((warn_unused_result))
#define PRINTF(fmt_, args_) __attribute__((format(printf, fmt_, args_)))
#define NORETURN            __attribute__((noreturn))
#define UNUSED              __attribute__((unused))

#define ARRAY_SIZE(a_) (sizeof(a_) / sizeof((a_)[0]))

/* Cheap programmer-error checks, kept in release builds. */
#define ASSERT(expr_)                                                                        \
    do {                                                                                     \
        if (!(expr_)) {                                                                      \
            fprintf(stderr, "assertion '%s' failed at %s:%d\n", #expr_, __FILE__, __LINE__); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#define BUG(msg_)                                                          \
    do {                                                                   \
        fprintf(stderr, "BUG at %s:%d: %s\n", __FILE__, __LINE__, (msg_)); \
        abort();                                                           \
    } while (0)

/* r = ret_nerrno(unlink(p)): turns a libc -1/errno result into -errno. */
static inline int ret_nerrno(int r)
{
    return r < 0 ? -errno : r;
}
