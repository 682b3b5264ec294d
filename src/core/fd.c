/* SPDX-License-Identifier: MIT */
#include "fd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

int fd_close(int fd)
{
    if (fd >= 0) {
        int saved = errno;
        (void)close(fd);
        errno = saved;
    }
    return -1;
}

int fd_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return ret_nerrno(fcntl(fd, F_SETFL, fl));
}

int fd_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int file_read_all(const char *path, struct buf *out)
{
    char chunk[16384];
    int fd, r = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        r = buf_append(out, chunk, (size_t)n);
        if (r < 0)
            break;
    }
    fd_close(fd);
    return r;
}

int file_write_atomic_opts(const char *path, const void *data, size_t n,
                           const struct file_write_opts *o)
{
    char tmp[PATH_MAX];
    int fd, r;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp)
        return -ENAMETOOLONG;
    /* O_EXCL|O_NOFOLLOW: never write through a file or symlink planted at the temp name. */
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    r = fd_write_all(fd, data, n);
    if (r == 0 && o->chown)
        r = ret_nerrno(fchown(fd, o->uid, o->gid));
    if (r == 0)
        r = ret_nerrno(fchmod(fd, o->mode));
    if (r == 0)
        r = ret_nerrno(fsync(fd));
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0)
        r = ret_nerrno(o->no_replace ? link(tmp, path) : rename(tmp, path));
    if (r < 0 || o->no_replace)
        (void)unlink(tmp);
    return r;
}

int file_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    return file_write_atomic_opts(path, data, n, &(struct file_write_opts){ .mode = mode });
}

int mkdir_p(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof p)
        return -EINVAL;
    memcpy(p, path, n + 1);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int file_read_tail(const char *path, size_t max, struct buf *out)
{
    struct stat st;
    char *chunk = NULL;
    off_t start;
    ssize_t n;
    int fd, r = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    start = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
    chunk = malloc(max + 1);
    if (!chunk) {
        r = -ENOMEM;
        goto out;
    }
    n = pread(fd, chunk, max, start);
    if (n < 0) {
        r = -errno;
        goto out;
    }
    {
        size_t off = 0;
        if (start > 0) { /* skip the partial first line */
            while (off < (size_t)n && chunk[off] != '\n')
                off++;
            if (off < (size_t)n)
                off++;
        }
        r = buf_append(out, chunk + off, (size_t)n - off);
    }
out:
    free(chunk);
    fd_close(fd);
    return r;
}

bool file_is_executable(const char *path)
{
    const char *env;
    char cand[PATH_MAX];

    if (strchr(path, '/'))
        return access(path, X_OK) == 0;
    env = getenv("PATH");
    if (!env)
        env = "/usr/local/bin:/usr/bin:/bin";
    while (*env) {
        size_t len = strcspn(env, ":");
        if ((size_t)snprintf(cand, sizeof cand, "%.*s/%s", (int)len, env, path) < sizeof cand &&
            access(cand, X_OK) == 0)
            return true;
        env += len;
        if (*env == ':')
            env++;
    }
    return false;
}
