/* SPDX-License-Identifier: MIT */
/* buf.h - bounded growable byte buffer.  Always NUL-terminated once anything was appended. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "macro.h"

struct buf {
    char *data; /* owned; NULL until first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len; appends past it fail with -ENOBUFS (0 = SIZE_MAX) */
};
#define BUF_INIT(max_)                                  \
    {                                                   \
        .data = NULL, .len = 0, .cap = 0, .max = (max_) \
    }

void buf_init(struct buf *b, size_t max);
/* Frees the contents; b is reusable after buf_init().  NULL-safe. */
void buf_release(struct buf *b);
/* Empties b but keeps its allocation. */
void buf_reset(struct buf *b);
/* 0, -ENOBUFS when max would be exceeded (b unchanged), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n) WARN_UNUSED_RESULT;
int buf_puts(struct buf *b, const char *s) WARN_UNUSED_RESULT;
int buf_appendf(struct buf *b, const char *fmt, ...) PRINTF(2, 3) WARN_UNUSED_RESULT;
int buf_vappendf(struct buf *b, const char *fmt, va_list ap) PRINTF(2, 0) WARN_UNUSED_RESULT;
/* Appends p[0..n) in standard base64 with padding (RFC 4648), as etcd's JSON API wants keys. */
int buf_append_base64(struct buf *b, const void *p, size_t n) WARN_UNUSED_RESULT;
/* Appends the bytes the standard base64 text s stands for (padding optional, as etcd's JSON API
 * answers values); -EINVAL when s holds anything else (b keeps what it had), or -ENOBUFS. */
int buf_append_unbase64(struct buf *b, const char *s) WARN_UNUSED_RESULT;
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* The contents as a C string ("" when empty); borrowed. */
const char *buf_str(const struct buf *b);
/* Transfers ownership of the data to the caller (free() it; never NULL); b is reset to empty. */
char *buf_detach(struct buf *b, size_t *ret_len);
