/* SPDX-License-Identifier: MIT */
/* target.c - recovery target times: parsed strictly (a zone is required), formatted for
 * pgBackRest's --target. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "core/err.h"

/* n digits at *s into *ret; advances *s. */
static bool digits(const char **s, int n, int *ret)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*s)[i];

        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *ret = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

int backup_time_parse(const char *str, int64_t *ret_us, struct err *reterr)
{
    const char *s = str;
    int y, mo, d, h, mi, sec = 0, zh = 0, zm = 0, sign = 1;
    int64_t frac = 0, us;

    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return err_set(reterr, -EINVAL, 0, 0,
                       "'%s': expected a date YYYY-MM-DD first (e.g. '2026-12-03 14:03:00+00')",
                       str);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return err_set(reterr, -EINVAL, 0, 0, "'%s': no such date", str);
    if ((*s != ' ' && *s != 'T') || (s++, !digits(&s, 2, &h)) || *s++ != ':' || !digits(&s, 2, &mi))
        return err_set(reterr, -EINVAL, 0, 0, "'%s': expected a time HH:MM[:SS] after the date",
                       str);
    if (*s == ':') {
        s++;
        if (!digits(&s, 2, &sec))
            return err_set(reterr, -EINVAL, 0, 0, "'%s': bad seconds", str);
        if (*s == '.') {
            int n = 0;

            s++;
            for (; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 6)
                    frac = frac * 10 + (*s - '0');
            if (n == 0)
                return err_set(reterr, -EINVAL, 0, 0, "'%s': bad fraction of a second", str);
            for (; n < 6; n++)
                frac *= 10;
        }
    }
    if (h > 23 || mi > 59 || sec > 59)
        return err_set(reterr, -EINVAL, 0, 0, "'%s': no such time of day", str);
    if (*s == ' ')
        s++;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!digits(&s, 2, &zh))
            return err_set(reterr, -EINVAL, 0, 0, "'%s': bad time zone offset", str);
        if (*s == ':')
            s++;
        if (*s && !digits(&s, 2, &zm))
            return err_set(reterr, -EINVAL, 0, 0, "'%s': bad time zone offset", str);
        if (zh > 15 || zm > 59)
            return err_set(reterr, -EINVAL, 0, 0, "'%s': bad time zone offset", str);
    } else {
        return err_set(reterr, -EINVAL, 0, 0,
                       "'%s': a time zone is required (+00, Z, +01:00): the target must not "
                       "depend on whose clock reads it",
                       str);
    }
    if (*s)
        return err_set(reterr, -EINVAL, 0, 0, "'%s': unexpected '%s' at the end", str, s);
    us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
          sign * (zh * 3600 + zm * 60)) *
                 1000000 +
         frac;
    *ret_us = us;
    return 0;
}

const char *backup_time_format(int64_t us, char *buf, size_t n)
{
    time_t t = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    long frac = (long)(us - (int64_t)t * 1000000);
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        (void)snprintf(buf, n, "?");
        return buf;
    }
    (void)snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}
