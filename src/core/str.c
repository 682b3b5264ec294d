/* SPDX-License-Identifier: MIT */
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool str_startswith(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int parse_u64(const char *s, uint64_t *ret)
{
    char *end;
    unsigned long long v;

    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end)
        return -EINVAL;
    *ret = v;
    return 0;
}

int parse_i64(const char *s, int64_t *ret)
{
    char *end;
    long long v;

    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end)
        return -EINVAL;
    *ret = v;
    return 0;
}

int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    uint64_t v;
    int r = parse_u64(s, &v);
    if (r < 0)
        return r;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int parse_duration_usec(const char *s, uint64_t *ret)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        { "us", 1 },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
    };
    uint64_t total = 0;
    const char *p = s;

    if (!s || !*s)
        return -EINVAL;
    while (*p) {
        uint64_t v = 0, mult = 0;
        size_t ulen = 0;

        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (v > (UINT64_MAX - 9) / 10)
                return -ERANGE;
            v = v * 10 + (uint64_t)(*p++ - '0');
        }
        if (!*p) {
            if (p - s != (long)strlen(s) || total)
                return -EINVAL; /* "1m30" is ambiguous */
            mult = USEC_PER_SEC;
        } else {
            for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                size_t n = strlen(units[i].suffix);
                if (strncmp(p, units[i].suffix, n) == 0 && !isalpha((unsigned char)p[n]) &&
                    n > ulen) {
                    mult = units[i].mult;
                    ulen = n;
                }
            }
            if (!mult)
                return -EINVAL;
            p += ulen;
        }
        if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
            return -ERANGE;
        total += v * mult;
    }
    *ret = total;
    return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        { "", 1 },
        { "b", 1 },
        { "k", 1ULL << 10 },
        { "kb", 1ULL << 10 },
        { "kib", 1ULL << 10 },
        { "m", 1ULL << 20 },
        { "mb", 1ULL << 20 },
        { "mib", 1ULL << 20 },
        { "g", 1ULL << 30 },
        { "gb", 1ULL << 30 },
        { "gib", 1ULL << 30 },
    };
    char num[32];
    size_t i = 0;
    uint64_t v;
    int r;

    if (!s)
        return -EINVAL;
    while (isdigit((unsigned char)s[i]) && i < sizeof num - 1) {
        num[i] = s[i];
        i++;
    }
    num[i] = '\0';
    r = parse_u64(num, &v);
    if (r < 0)
        return r;
    for (size_t u = 0; u < ARRAY_SIZE(units); u++)
        if (strcasecmp(s + i, units[u].suffix) == 0) {
            if (v > UINT64_MAX / units[u].mult)
                return -ERANGE;
            *ret = v * units[u].mult;
            return 0;
        }
    return -EINVAL;
}

int parse_mode(const char *s, unsigned *ret)
{
    unsigned v = 0;

    if (!s || !*s || strlen(s) > 4)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -EINVAL;
        v = v * 8 + (unsigned)(*p - '0');
    }
    *ret = v;
    return 0;
}

int parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

const char *format_duration(char *buf, size_t n, uint64_t usec)
{
    uint64_t s = usec / USEC_PER_SEC;

    if (usec < USEC_PER_SEC)
        (void)snprintf(buf, n, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
    else if (s < 60)
        (void)snprintf(buf, n, "%" PRIu64 "s", s);
    else if (s < 3600)
        (void)snprintf(buf, n, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        (void)snprintf(buf, n, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
    else
        (void)snprintf(buf, n, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
    return buf;
}

unsigned str_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row0[64], row1[64], row2[64];
    unsigned *pp = row0, *p = row1, *c = row2;

    if (la >= 63 || lb >= 63)
        return 999;
    for (size_t j = 0; j <= lb; j++)
        p[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        unsigned *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}
