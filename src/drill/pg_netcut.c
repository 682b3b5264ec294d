/* SPDX-License-Identifier: MIT */
/* pg_netcut.c - partitions for the drills: nftables rules in a node's network namespace (a
 * child process enters it with setns() and runs nft), one table `inet ut_drill` that drops
 * everything but loopback (host death), or everything but the client path from the host
 * (partition: the node's peers and the DCS are cut, HAProxy still reaches it).  Removing the
 * table heals.  Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and nft (Debian package nftables). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "drill_int.h"

#define NFT_TABLE "inet ut_drill"

/* Runs `nft rules` inside netns; 0, or -errno with nft's own words in msg. */
static int nft_in(const char *netns, const char *rules, char *msg, size_t msg_size)
{
    char *path = xasprintf("/run/netns/%s", netns), out[512];
    int p[2], status = 0, ns;
    ssize_t n, len = 0;
    pid_t pid;

    ns = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (ns < 0) {
        (void)snprintf(msg, msg_size, "network namespace %s: %s", netns, strerror(errno));
        return -errno;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        (void)close(ns);
        return -errno;
    }
    pid = fork();
    if (pid < 0) {
        (void)close(ns);
        (void)close(p[0]);
        (void)close(p[1]);
        return -errno;
    }
    if (pid == 0) {
        (void)dup2(p[1], 1);
        (void)dup2(p[1], 2);
        if (setns(ns, CLONE_NEWNET) < 0) {
            dprintf(2, "setns into %s: %s", netns, strerror(errno));
            _exit(126);
        }
        (void)execl("/usr/sbin/nft", "nft", rules, (char *)NULL);
        (void)execlp("nft", "nft", rules, (char *)NULL);
        dprintf(2, "nft not found (Debian package nftables)");
        _exit(127);
    }
    (void)close(ns);
    (void)close(p[1]);
    while (len < (ssize_t)sizeof out - 1 && (n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += n;
    out[len] = '\0';
    (void)close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    out[strcspn(out, "\n")] = '\0';
    (void)snprintf(msg, msg_size, "nft in %s: %s", netns, out[0] ? out : "failed");
    return -EIO;
}

int drill__netcut(const char *netns, const char *host_addr, uint16_t dcs_port, char *msg,
                  size_t msg_size)
{
    char rules[1024];
    int k;

    k = snprintf(
            rules, sizeof rules,
            "add table " NFT_TABLE "; "
            "add chain " NFT_TABLE " in { type filter hook input priority -10; policy drop; }; "
            "add chain " NFT_TABLE " out { type filter hook output priority -10; policy drop; }; "
            "add rule " NFT_TABLE " in iif lo accept; "
            "add rule " NFT_TABLE " out oif lo accept");
    if (host_addr) /* partition: the client path from the host stays, its DCS does not */
        (void)snprintf(rules + k, sizeof rules - (size_t)k,
                       "; add rule " NFT_TABLE " in ip saddr %s tcp sport != %u accept"
                       "; add rule " NFT_TABLE " out ip daddr %s tcp dport != %u accept",
                       host_addr, (unsigned)dcs_port, host_addr, (unsigned)dcs_port);
    (void)nft_in(netns, "delete table " NFT_TABLE, msg, msg_size); /* a cut left behind */
    return nft_in(netns, rules, msg, msg_size);
}

int drill__netheal(const char *netns, char *msg, size_t msg_size)
{
    return nft_in(netns, "delete table " NFT_TABLE, msg, msg_size);
}
