/* SPDX-License-Identifier: MIT */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(struct err *reterr, int code, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;

    if (!reterr)
        return code;
    reterr->code = code;
    reterr->line = line;
    reterr->col = col;
    reterr->field[0] = '\0';
    va_start(ap, fmt);
    (void)vsnprintf(reterr->msg, sizeof reterr->msg, fmt, ap);
    va_end(ap);
    return code;
}

void err_set_file(struct err *e, const char *file)
{
    if (e)
        (void)snprintf(e->file, sizeof e->file, "%s", file);
}

void err_set_field(struct err *e, const char *field)
{
    if (e)
        (void)snprintf(e->field, sizeof e->field, "%s", field ? field : "");
}

const char *err_format(const struct err *e, char *buf, unsigned long n)
{
    if (e->file[0] && e->line && e->col)
        (void)snprintf(buf, n, "%s:%u:%u: %s", e->file, e->line, e->col, e->msg);
    else if (e->file[0] && e->line)
        (void)snprintf(buf, n, "%s:%u: %s", e->file, e->line, e->msg);
    else if (e->file[0])
        (void)snprintf(buf, n, "%s: %s", e->file, e->msg);
    else
        (void)snprintf(buf, n, "%s", e->msg);
    return buf;
}
