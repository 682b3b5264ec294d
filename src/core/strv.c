/* SPDX-License-Identifier: MIT */
#include "strv.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

char **strv_free(char **v)
{
    if (!v)
        return NULL;
    for (char **s = v; *s; s++)
        free(*s);
    free(v);
    return NULL;
}

size_t strv_length(char *const *v)
{
    size_t n = 0;

    while (v && v[n])
        n++;
    return n;
}

bool strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

char **strv_copy(char *const *v)
{
    size_t n = strv_length(v);
    char **c;

    if (!v)
        return NULL;
    c = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c[i] = xstrdup(v[i]);
    return c;
}
