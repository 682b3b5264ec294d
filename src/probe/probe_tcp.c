/* SPDX-License-Identifier: MIT */
/* probe_tcp.c - tcp probe: healthy once a non-blocking connect() completes. */
#include "probe_int.h"

static void tcp_start(struct probe *p)
{
    probe__net_start(p, p->spec->port);
}

static void tcp_step(struct probe *p, short revents)
{
    if (probe__net_connect_step(p, revents) == 1)
        probe__finish(p, 0, "connected to %s", p->net.addr);
}

static void tcp_release(struct probe *p)
{
    probe__net_release(p);
}

const struct probe_ops probe__tcp_ops = {
    .start = tcp_start,
    .step = tcp_step,
    .release = tcp_release,
};
