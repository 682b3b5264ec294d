/* SPDX-License-Identifier: MIT */
/* str.h - checked number/duration parsing and small string helpers.  The only place that may
 * call strtol()/strtoull(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macro.h"

#define USEC_PER_MSEC ((uint64_t)1000)
#define USEC_PER_SEC  ((uint64_t)1000000)

static inline bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}
bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);

/* Whole-string decimal parsing; -EINVAL on junk or empty, -ERANGE on overflow. */
int parse_u64(const char *s, uint64_t *ret) WARN_UNUSED_RESULT;
int parse_i64(const char *s, int64_t *ret) WARN_UNUSED_RESULT;
/* parse_u64 bounded to [min, max]; -ERANGE outside. */
int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) WARN_UNUSED_RESULT;
/* "250ms", "5s", "2m", "1h", "1m30s", "100us"; a bare number means seconds.  -EINVAL otherwise. */
int parse_duration_usec(const char *s, uint64_t *ret) WARN_UNUSED_RESULT;
/* "64MiB", "10M", "512k", "1G", bare bytes.  Binary multiples. */
int parse_size(const char *s, uint64_t *ret) WARN_UNUSED_RESULT;
/* Octal mode "0600" / "600". */
int parse_mode(const char *s, unsigned *ret) WARN_UNUSED_RESULT;
/* "true/false/yes/no/on/off/1/0" */
int parse_bool(const char *s, bool *ret) WARN_UNUSED_RESULT;

/* Formats a duration like "3h12m", "45s", "850ms" into buf (always NUL-terminated). */
const char *format_duration(char *buf, size_t n, uint64_t usec);

/* Optimal string alignment distance (for "did you mean" suggestions). */
unsigned str_edit_distance(const char *a, const char *b);
