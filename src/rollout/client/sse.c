/* SPDX-License-Identifier: MIT */
/* sse.c - incremental text/event-stream parser (the parts of the WHATWG SSE grammar that
 * rolloutd uses: event, data, id; comments; "\n" or "\r\n" line ends). */
#include <errno.h>
#include <string.h>

#include "client_int.h"

void rollout__sse_init(struct rollout_sse *p)
{
    buf_init(&p->line, ROLLOUT_SSE_LINE_MAX);
    buf_init(&p->data, ROLLOUT_SSE_LINE_MAX);
    p->event[0] = '\0';
    p->id[0] = '\0';
    p->has_data = false;
}

void rollout__sse_release(struct rollout_sse *p)
{
    buf_release(&p->line);
    buf_release(&p->data);
}

static void copy_field(char *dst, size_t n, const char *v, size_t len)
{
    if (len >= n)
        len = n - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int dispatch(struct rollout_sse *p, rollout_sse_event_fn fn, void *userdata)
{
    int r = 0;

    if (p->has_data)
        r = fn(p->event[0] ? p->event : "message", p->id, buf_str(&p->data), p->data.len, userdata);
    buf_reset(&p->data);
    p->event[0] = '\0';
    p->has_data = false;
    return r;
}

static int process_line(struct rollout_sse *p, const char *s, size_t len, rollout_sse_event_fn fn,
                        void *userdata)
{
    const char *colon, *value;
    size_t name_len, vlen;
    int r;

    if (len && s[len - 1] == '\r')
        len--;
    if (!len)
        return dispatch(p, fn, userdata);
    if (s[0] == ':')
        return 0; /* comment (keep-alive) */
    colon = memchr(s, ':', len);
    name_len = colon ? (size_t)(colon - s) : len;
    value = colon ? colon + 1 : s + len;
    vlen = (size_t)(s + len - value);
    if (vlen && *value == ' ') {
        value++;
        vlen--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        if (p->has_data) {
            r = buf_append(&p->data, "\n", 1);
            if (r < 0)
                return r;
        }
        p->has_data = true;
        return buf_append(&p->data, value, vlen);
    }
    if (name_len == 5 && memcmp(s, "event", 5) == 0)
        copy_field(p->event, sizeof p->event, value, vlen);
    else if (name_len == 2 && memcmp(s, "id", 2) == 0)
        copy_field(p->id, sizeof p->id, value, vlen);
    return 0; /* "retry" and unknown fields are ignored */
}

int rollout__sse_feed(struct rollout_sse *p, const char *data, size_t len, rollout_sse_event_fn fn,
                      void *userdata)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        int r;

        if (!nl)
            return buf_append(&p->line, data, n);
        if (p->line.len) {
            r = buf_append(&p->line, data, n);
            if (r >= 0)
                r = process_line(p, p->line.data, p->line.len, fn, userdata);
            buf_reset(&p->line);
        } else {
            r = process_line(p, data, n, fn, userdata);
        }
        if (r < 0)
            return r;
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}
