/* SPDX-License-Identifier: MIT */
/* semver.c - semantic version parsing and SemVer 2.0.0 precedence, without allocating. */
#include <stdint.h>

#include "rollout_int.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool parse_num(const char **p, const char *end, uint64_t *ret)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s == end || !is_digit(*s))
        return false;
    if (*s == '0' && s + 1 < end && is_digit(s[1]))
        return false; /* no leading zeros */
    for (; s < end && is_digit(*s); s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *ret = v;
    return true;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-]. */
static bool idents_valid(const char *s, size_t len)
{
    size_t run = 0;

    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (!run)
                return false;
            run = 0;
        } else if (is_ident_char(s[i])) {
            run++;
        } else {
            return false;
        }
    }
    return run > 0;
}

bool rollout__semver_parse(const char *s, size_t len, struct semver *ret)
{
    const char *p = s, *end = s + len, *pre = NULL, *build;
    struct semver v = { 0 };

    if (p < end && (*p == 'v' || *p == 'V'))
        p++;
    if (!parse_num(&p, end, &v.major) || p == end || *p++ != '.' || !parse_num(&p, end, &v.minor) ||
        p == end || *p++ != '.' || !parse_num(&p, end, &v.patch))
        return false;
    build = end;
    for (const char *q = p; q < end; q++)
        if (*q == '+') {
            build = q;
            break;
        }
    if (p < build) {
        if (*p != '-')
            return false;
        pre = p + 1;
        if (!idents_valid(pre, (size_t)(build - pre)))
            return false;
        v.pre = pre;
        v.pre_len = (size_t)(build - pre);
    }
    if (build < end && !idents_valid(build + 1, (size_t)(end - build - 1)))
        return false;
    *ret = v;
    return true;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return n > 0;
}

/* One pre-release identifier against another (SemVer 11.4.1-11.4.3). */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool na = all_digits(a, an), nb = all_digits(b, bn);

    if (na && nb) {
        /* No leading zeros in valid numeric identifiers, so longer means larger. */
        if (an != bn)
            return an < bn ? -1 : 1;
    } else if (na != nb) {
        return na ? -1 : 1;
    }
    for (size_t i = 0; i < an && i < bn; i++)
        if (a[i] != b[i])
            return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
    return cmp_u64(an, bn);
}

int rollout__semver_cmp(const struct semver *a, const struct semver *b)
{
    const char *pa, *pb, *ea, *eb;
    int c;

    c = cmp_u64(a->major, b->major);
    if (!c)
        c = cmp_u64(a->minor, b->minor);
    if (!c)
        c = cmp_u64(a->patch, b->patch);
    if (c)
        return c;
    if (!a->pre_len || !b->pre_len) /* a version without pre-release ranks higher */
        return a->pre_len ? -1 : b->pre_len ? 1 : 0;
    pa = a->pre;
    pb = b->pre;
    ea = pa + a->pre_len;
    eb = pb + b->pre_len;
    while (pa < ea && pb < eb) {
        const char *da = pa, *db = pb;

        while (da < ea && *da != '.')
            da++;
        while (db < eb && *db != '.')
            db++;
        c = cmp_ident(pa, (size_t)(da - pa), pb, (size_t)(db - pb));
        if (c)
            return c;
        pa = da < ea ? da + 1 : ea;
        pb = db < eb ? db + 1 : eb;
    }
    /* More identifiers rank higher when all before are equal. */
    return pa < ea ? 1 : pb < eb ? -1 : 0;
}
