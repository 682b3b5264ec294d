/* SPDX-License-Identifier: MIT */
/* fd.h - file-descriptor and file helpers.  Every fd we open is O_CLOEXEC. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

struct buf;

/* close() if fd >= 0, preserving errno; returns -1 for `fd = fd_close(fd);`. */
int fd_close(int fd);
int fd_set_nonblock(int fd, bool on) WARN_UNUSED_RESULT;
/* Writes all of p, retrying on EINTR/partial writes.  0 or -errno. */
int fd_write_all(int fd, const void *p, size_t n) WARN_UNUSED_RESULT;
/* Appends the whole file to out (bounded by out->max: -ENOBUFS).  0 or -errno. */
int file_read_all(const char *path, struct buf *out) WARN_UNUSED_RESULT;
/* How file_write_atomic_opts() writes. */
struct file_write_opts {
    mode_t mode; /* of the final file */
    bool chown;  /* give the file to uid:gid before it appears at path */
    uid_t uid;
    gid_t gid;
    bool no_replace; /* link() instead of rename(): -EEXIST when path already exists */
};

/* Writes data atomically: a temp file next to path created with O_EXCL|O_NOFOLLOW (the
 * directory may be writable by a less trusted user), fchown/fchmod, fsync, then rename (or
 * link for no_replace).  Readers see the old file or the whole new one, never a part.
 * 0 or -errno. */
int file_write_atomic_opts(const char *path, const void *data, size_t n,
                           const struct file_write_opts *o) WARN_UNUSED_RESULT;
/* file_write_atomic_opts() with just a mode. */
int file_write_atomic(const char *path, const void *data, size_t n, mode_t mode) WARN_UNUSED_RESULT;
/* mkdir -p with mode for created components. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode) WARN_UNUSED_RESULT;
/* Reads up to max bytes from the end of a file, starting at a line boundary. */
int file_read_tail(const char *path, size_t max, struct buf *out) WARN_UNUSED_RESULT;
/* true when path exists and is an executable regular file (or resolves on $PATH when it has no
 * '/'). */
bool file_is_executable(const char *path);
