/* SPDX-License-Identifier: MIT */
/* fake_state.h - helpers for C tests driving the fake NVML: a state file in a temp dir made
 * from tests/fake_nvml/h200x2.state plus extra lines, replaced atomically (rename), and
 * $FAKE_NVML_STATE pointing at it.  Header-only, tests only. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fd.h"

#define FAKE_STATE_BASE UT_SOURCE_DIR "/tests/fake_nvml/h200x2.state"

struct fake_state {
    char dir[64];
    char path[96];
};

/* Creates the temp dir, writes the base state plus `extra` (may be NULL) and sets
 * $FAKE_NVML_STATE.  0 or -errno. */
static inline int fake_state_init(struct fake_state *fs, const char *extra)
{
    struct buf b = BUF_INIT(0);
    int r;

    (void)snprintf(fs->dir, sizeof fs->dir, "/tmp/fake-nvml-XXXXXX");
    if (!mkdtemp(fs->dir))
        return -errno;
    (void)snprintf(fs->path, sizeof fs->path, "%s/state", fs->dir);
    r = file_read_all(FAKE_STATE_BASE, &b);
    if (r >= 0 && extra)
        r = buf_puts(&b, extra);
    if (r >= 0)
        r = file_write_atomic(fs->path, b.data, b.len, 0644);
    buf_release(&b);
    if (r >= 0)
        r = setenv("FAKE_NVML_STATE", fs->path, 1) < 0 ? -errno : 0;
    return r;
}

/* Rewrites the state: base plus the formatted extra lines. */
static inline int fake_state_set(struct fake_state *fs, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static inline int fake_state_set(struct fake_state *fs, const char *fmt, ...)
{
    struct buf b = BUF_INIT(0);
    va_list ap;
    int r;

    r = file_read_all(FAKE_STATE_BASE, &b);
    if (r >= 0) {
        va_start(ap, fmt);
        r = buf_vappendf(&b, fmt, ap);
        va_end(ap);
    }
    if (r >= 0)
        r = file_write_atomic(fs->path, b.data, b.len, 0644);
    buf_release(&b);
    return r;
}

static inline void fake_state_cleanup(struct fake_state *fs)
{
    (void)unlink(fs->path);
    (void)rmdir(fs->dir);
}
