/* SPDX-License-Identifier: MIT */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void buf_init(struct buf *b, size_t max)
{
    *b = (struct buf)BUF_INIT(max);
}

void buf_release(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t extra)
{
    size_t max = b->max ? b->max : SIZE_MAX - 1;
    size_t need, cap;
    char *p;

    if (!size_add(b->len, extra, &need) || need > max)
        return -ENOBUFS;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int r = buf_reserve(b, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    int n, r;

    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return -EINVAL;
    r = buf_reserve(b, (size_t)n);
    if (r < 0)
        return r;
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return r;
}

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int buf_append_base64(struct buf *b, const void *p, size_t n)
{
    const char *alphabet = base64_alphabet;
    const unsigned char *s = p;
    char quad[4];
    int r;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        quad[0] = alphabet[(v >> 18) & 63];
        quad[1] = alphabet[(v >> 12) & 63];
        quad[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < n ? alphabet[v & 63] : '=';
        r = buf_append(b, quad, sizeof quad);
        if (r < 0)
            return r;
    }
    return n == 0 ? buf_append(b, "", 0) : 0;
}

int buf_append_unbase64(struct buf *b, const char *s)
{
    size_t start = b->len, n = strcspn(s, "=");
    uint32_t acc = 0;
    unsigned bits = 0;
    int r = buf_append(b, "", 0);

    if (s[n + strspn(s + n, "=")] != '\0' || strspn(s + n, "=") > 2)
        return -EINVAL; /* '=' only at the end, at most two */
    for (size_t i = 0; i < n && r >= 0; i++) {
        const char *d = strchr(base64_alphabet, s[i]);

        if (!d) {
            r = -EINVAL;
            break;
        }
        acc = (acc << 6) | (uint32_t)(d - base64_alphabet);
        bits += 6;
        if (bits >= 8) {
            char c;

            bits -= 8;
            c = (char)((acc >> bits) & 0xff);
            r = buf_append(b, &c, 1);
        }
    }
    if (r < 0 && b->data) { /* keep what it had */
        b->len = start;
        b->data[start] = '\0';
    }
    return r < 0 ? r : 0;
}

void buf_consume(struct buf *b, size_t n)
{
    ASSERT(n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

const char *buf_str(const struct buf *b)
{
    return b->data ? b->data : "";
}

char *buf_detach(struct buf *b, size_t *ret_len)
{
    char *p = b->data ? b->data : xstrdup("");
    if (ret_len)
        *ret_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
