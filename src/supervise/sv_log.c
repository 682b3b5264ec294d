/* SPDX-License-Identifier: MIT */
/* Service log files: STATE/logs/NAME.log, appended by the supervisor from the service's output
 * pipe and rotated by size to NAME.log.1 .. NAME.log.N. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fd.h"
#include "supervise.h"
#include "sv_int.h"

char *sv_log_path(const char *state_dir, const char *service)
{
    return xasprintf("%s/logs/%s.log", state_dir, service);
}

int sv__log_rotate(const char *path, unsigned keep)
{
    if (keep == 0)
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    for (unsigned i = keep; i >= 1; i--) {
        char *from = i == 1 ? xstrdup(path) : xasprintf("%s.%u", path, i - 1);
        char *to = xasprintf("%s.%u", path, i);
        int r = rename(from, to);

        if (r < 0 && errno != ENOENT)
            r = -errno;
        else
            r = 0;
        free(from);
        free(to);
        if (r < 0)
            return r;
    }
    return 0;
}

static int log_open(const char *path, int *fd, uint64_t *size)
{
    struct stat st;
    int f;

    f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (f < 0)
        return -errno;
    if (fstat(f, &st) < 0) {
        int r = -errno;
        (void)close(f);
        return r;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int sv__log_write(const char *path, int *fd, uint64_t *size, uint64_t max_bytes, unsigned keep,
                  const void *p, size_t n)
{
    const char *c = p;
    int r;

    if (*fd < 0) {
        r = log_open(path, fd, size);
        if (r < 0)
            return r;
    }
    while (n > 0) {
        size_t chunk = n;

        if (max_bytes > 0 && *size >= max_bytes) {
            *fd = fd_close(*fd);
            r = sv__log_rotate(path, keep);
            if (r < 0)
                return r;
            r = log_open(path, fd, size);
            if (r < 0)
                return r;
        }
        /* The size check after reopening guards against a file someone else refilled. */
        if (max_bytes > 0 && *size < max_bytes && max_bytes - *size < chunk)
            chunk = (size_t)(max_bytes - *size);
        r = fd_write_all(*fd, c, chunk);
        if (r < 0)
            return r;
        *size += chunk;
        c += chunk;
        n -= chunk;
    }
    return 0;
}
