/* SPDX-License-Identifier: MIT */
/* arena.c - the per-request arena (h2o/nginx pools): a request and its first chunk in one
 * allocation, bump allocation in max_align_t steps, further chunks up to cfg.arena_max, all
 * freed together when the request completes.  Uses nothing else of the adapter, so every other
 * file of it can allocate request memory without depending on request.c. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http.h"
#include "http_int.h"

struct http_request *http__request_alloc(void)
{
    struct http_request *req;
    struct http__arena_chunk *c;
    size_t off = (sizeof *req + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);

    req = malloc(off + sizeof *c + HTTP_ARENA_CHUNK);
    if (!req)
        return NULL;
    memset(req, 0, sizeof *req);
    c = (struct http__arena_chunk *)(void *)((char *)req + off);
    c->next = NULL;
    c->used = 0;
    c->cap = HTTP_ARENA_CHUNK;
    req->arena = c;
    return req;
}

void http__arena_release(struct http_request *req)
{
    struct http__arena_chunk *c, *next;

    /* the last chunk in the list is the inline one */
    for (c = req->arena; c && c->next; c = next) {
        next = c->next;
        free(c);
    }
    req->arena = NULL;
}

void *http_alloc(struct http_request *req, size_t n)
{
    struct http__arena_chunk *c = req->arena;
    size_t align = _Alignof(max_align_t), need, cap;

    if (!size_add(n, align - 1, &need))
        return NULL;
    need &= ~(align - 1);
    if (need == 0)
        need = align;
    if (c->cap - c->used < need) {
        if (!size_add(need, HTTP_ARENA_CHUNK, &cap) || !size_add(req->arena_total, cap, &n) ||
            n > req->srv->cfg.arena_max)
            return NULL;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = req->arena;
        req->arena = c;
        req->arena_total += cap;
    }
    c->used += need;
    return (char *)c->data + c->used - need;
}

char *http_strdup(struct http_request *req, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = http_alloc(req, n);

    if (p)
        memcpy(p, s, n);
    return p;
}

char *http__strndup(struct http_request *req, const char *s, size_t n)
{
    char *p = http_alloc(req, n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}
