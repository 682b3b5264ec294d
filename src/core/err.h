/* SPDX-License-Identifier: MIT */
/* err.h - user-facing error detail for parsers: code, file:line:col, the field and a message. */
#pragma once

#include "macro.h"

struct err {
    int code;           /* -errno, 0 when unset */
    unsigned line, col; /* 1-based; 0 when not applicable */
    char file[256];     /* may be empty */
    char msg[256];
    char field[256]; /* path of the offending field ("rules[2].op"); empty when none */
};
#define ERR_INIT                                                           \
    {                                                                      \
        .code = 0, .line = 0, .col = 0, .file = "", .msg = "", .field = "" \
    }

/* Fills *reterr (NULL-safe) and returns code, so `return err_set(e, -EINVAL, ...)` works.
 * Clears the field: it belongs to the message, so set it after this with err_set_field(). */
int err_set(struct err *reterr, int code, unsigned line, unsigned col, const char *fmt, ...)
        PRINTF(5, 6);
void err_set_file(struct err *e, const char *file);
/* Records the path of the field the error is about (NULL-safe; field NULL or "" clears it;
 * truncated to fit).  Callers that report to users take the field from here, never from the
 * message's wording. */
void err_set_field(struct err *e, const char *field);
/* "file:line:col: msg" (parts omitted when unset) into buf; returns buf. */
const char *err_format(const struct err *e, char *buf, unsigned long n);
