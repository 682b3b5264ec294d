/* SPDX-License-Identifier: MIT */
/* progress.c - pgBackRest's per-file detail lines as bytes and files done. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"

/* "8KB", "1.5MB", "0B": pgBackRest's sizes (powers of 1024, one decimal at most). */
static bool parse_size_token(const char *s, size_t n, uint64_t *ret)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = { { "KB", 1024.0 },
                  { "MB", 1048576.0 },
                  { "GB", 1073741824.0 },
                  { "TB", 1099511627776.0 },
                  { "B", 1.0 } };
    char tmp[32], *end;
    double v;

    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v = strtod(tmp, &end);
    if (end == tmp || v < 0)
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            *ret = (uint64_t)llround(v * units[i].mult);
            return true;
        }
    }
    return false;
}

bool backup_progress_parse_line(const char *line, struct backup_progress *p)
{
    const char *f = strstr(line, "DETAIL: backup file ");
    const char *open, *close, *comma, *pct_start;
    uint64_t size;
    double pct;
    char *end;

    if (!f)
        f = strstr(line, "DETAIL: restore file ");
    if (!f)
        return false;
    /* The path may itself hold " (": take the parentheses that end in "%)". */
    close = strstr(f, "%)");
    if (!close)
        return false;
    open = close;
    while (open > f && *open != '(')
        open--;
    if (*open != '(')
        return false;
    /* "(SIZE, PCT%)" or, with bundling, "(bundle N/M, SIZE, PCT%)": the last two fields. */
    comma = NULL;
    for (const char *c = close; c > open; c--) {
        if (*c == ',') {
            comma = c;
            break;
        }
    }
    if (!comma)
        return false;
    pct_start = comma + 1;
    while (*pct_start == ' ')
        pct_start++;
    pct = strtod(pct_start, &end);
    if (end != close || pct < 0 || pct > 100)
        return false;
    {
        const char *s = comma;

        while (s > open && s[-1] != ',' && s[-1] != '(')
            s--;
        while (*s == ' ')
            s++;
        if (!parse_size_token(s, (size_t)(comma - s), &size))
            return false;
    }
    p->files++;
    p->bytes += size;
    p->percent = pct;
    return true;
}
