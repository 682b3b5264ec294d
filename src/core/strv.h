/* SPDX-License-Identifier: MIT */
/* strv.h - NULL-terminated string vectors (argv, env lists).  A strv owns its strings. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Frees every string and the vector.  NULL-safe; returns NULL. */
char **strv_free(char **v);
/* Deep copy (NULL for NULL); caller frees with strv_free().  Aborts on OOM. */
char **strv_copy(char *const *v);
/* Number of strings (0 for NULL). */
size_t strv_length(char *const *v);
/* True when one of v's strings equals s (false for NULL v). */
bool strv_contains(char *const *v, const char *s);
