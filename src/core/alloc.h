/* SPDX-License-Identifier: MIT */
/* alloc.h - allocators that abort on OOM (x*) and overflow-checked size arithmetic. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* Abort with size, file and line on OOM.  Use only for sizes we control; sizes that come
 * from users or the network go through bounded buffers (struct buf) instead. */
#define xmalloc(n_)      alloc__xmalloc((n_), __FILE__, __LINE__)
#define xcalloc(n_, s_)  alloc__xcalloc((n_), (s_), __FILE__, __LINE__)
#define xrealloc(p_, n_) alloc__xrealloc((p_), (n_), __FILE__, __LINE__)
#define xstrdup(s_)      alloc__xstrdup((s_), __FILE__, __LINE__)

void *alloc__xmalloc(size_t n, const char *file, int line);
void *alloc__xcalloc(size_t n, size_t size, const char *file, int line);
void *alloc__xrealloc(void *p, size_t n, const char *file, int line);
char *alloc__xstrdup(const char *s, const char *file, int line);
/* printf into a fresh string; caller frees.  Aborts on OOM. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* true and *ret = a*b (a+b) when it does not overflow; false otherwise. */
static inline bool size_mul(size_t a, size_t b, size_t *ret)
{
    return !__builtin_mul_overflow(a, b, ret);
}
static inline bool size_add(size_t a, size_t b, size_t *ret)
{
    return !__builtin_add_overflow(a, b, ret);
}

/* free(*p) and set *p = NULL. */
static inline void freep(void *p)
{
    void **pp = p;
    free(*pp);
    *pp = NULL;
}
