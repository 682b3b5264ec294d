/* SPDX-License-Identifier: MIT */
/* probe_net.c - the non-blocking TCP client shared by the tcp, http and redis probes. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fd.h"
#include "probe_int.h"

static void net_fail(struct probe *p, int r, const char *what)
{
    probe__finish(p, r, "%s %s: %s", what, p->net.addr, strerror(-r));
}

/* Starts connecting to the next address; finishes the probe when none is left. */
static void net_try_next(struct probe *p, int last_err)
{
    struct probe_net *n = &p->net;

    n->fd = fd_close(n->fd);
    while (n->ai_next) {
        struct addrinfo *ai = n->ai_next;
        int fd;

        n->ai_next = ai->ai_next;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_err = -errno;
            continue;
        }
        /* A connect that completes at once is still reported by the first step (the socket is
         * writable), so every probe type sees the same sequence. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            n->fd = fd;
            probe__wait(p, fd, POLLOUT);
            return;
        }
        last_err = -errno;
        (void)fd_close(fd);
    }
    net_fail(p, last_err, "connect to");
}

void probe__net_start(struct probe *p, uint16_t port)
{
    struct probe_net *n = &p->net;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    const char *host = probe__host(p);
    char service[8];
    int r;

    (void)snprintf(n->addr, sizeof n->addr, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                   (unsigned)port);
    if (port == 0) {
        probe__finish(p, -EINVAL, "no port given for %s", host);
        return;
    }
    (void)snprintf(service, sizeof service, "%u", (unsigned)port);
    r = getaddrinfo(host, service, &hints, &n->ai_list);
    if (r == EAI_NONAME) {
        /* Not a literal address: names resolve synchronously (use addresses in stack files;
         * "localhost" comes straight from /etc/hosts). */
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
        r = getaddrinfo(host, service, &hints, &n->ai_list);
    }
    if (r != 0) {
        n->ai_list = NULL;
        probe__finish(p, -EHOSTUNREACH, "resolve '%s': %s", host,
                      r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return;
    }
    n->ai_next = n->ai_list;
    net_try_next(p, -EHOSTUNREACH);
}

int probe__net_connect_step(struct probe *p, short revents)
{
    struct probe_net *n = &p->net;
    int err = 0;
    socklen_t len = sizeof err;

    if (n->connected)
        return 0;
    if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
        return 0;
    if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && (revents & (POLLERR | POLLHUP)) && !(revents & POLLOUT))
        err = ECONNRESET;
    if (err != 0) {
        net_try_next(p, -err);
        return p->done ? -1 : 0;
    }
    n->connected = true;
    freeaddrinfo(n->ai_list);
    n->ai_list = n->ai_next = NULL;
    return 1;
}

int probe__net_flush(struct probe *p)
{
    struct probe_net *n = &p->net;

    while (n->out_off < n->out.len) {
        ssize_t k = send(n->fd, n->out.data + n->out_off, n->out.len - n->out_off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                probe__wait(p, n->fd, POLLOUT);
                return 0;
            }
            net_fail(p, -errno, "send to");
            return -1;
        }
        n->out_off += (size_t)k;
    }
    probe__wait(p, n->fd, POLLIN);
    return 1;
}

int probe__net_read(struct probe *p, struct buf *in)
{
    struct probe_net *n = &p->net;
    char chunk[4096];

    for (;;) {
        size_t want = sizeof chunk;
        ssize_t k;

        if (in->max && in->len >= in->max)
            return -ENOBUFS;
        if (in->max && in->max - in->len < want)
            want = in->max - in->len;
        k = recv(n->fd, chunk, want, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            net_fail(p, -errno, "read from");
            return -1;
        }
        if (k == 0)
            return 1;
        if (buf_append(in, chunk, (size_t)k) < 0) {
            probe__finish(p, -ENOMEM, "out of memory reading from %s", n->addr);
            return -1;
        }
    }
}

void probe__net_release(struct probe *p)
{
    struct probe_net *n = &p->net;

    n->fd = fd_close(n->fd);
    if (n->ai_list)
        freeaddrinfo(n->ai_list);
    n->ai_list = n->ai_next = NULL;
    buf_release(&n->out);
}
