/* SPDX-License-Identifier: MIT */
/* probe_redis.c - redis probe over our own non-blocking socket: requests are encoded with
 * hiredis' redisFormatCommandArgv(), replies decoded with a redisReader (hiredis 0.14 API).
 * AUTH (when a password is set) and the command are pipelined in one write; the first error
 * reply ends the probe with -EPROTO and the server's message ("NOAUTH Authentication
 * required.", "WRONGPASS invalid username-password pair ..."). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "probe_int.h"

static int redis_append_command(struct probe *p, int argc, const char **argv)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    int r;

    if (n < 0 || !cmd)
        return -ENOMEM;
    r = buf_append(&p->net.out, cmd, (size_t)n);
    redisFreeCommand(cmd);
    return r;
}

static void redis_start(struct probe *p)
{
    const struct probe_spec *s = p->spec;
    const char **cmd;
    size_t argc = 0;
    int r = 0;

    if (s->command && s->command[0]) {
        while (s->command[argc])
            argc++;
        /* hiredis wants const char **; a char ** does not convert without a copy. */
        cmd = xcalloc(argc + 1, sizeof *cmd);
        for (size_t i = 0; i < argc; i++)
            cmd[i] = s->command[i];
    } else {
        cmd = xcalloc(2, sizeof *cmd);
        cmd[argc++] = "PING";
    }
    if (s->password) {
        const char *auth[3] = { "AUTH" };
        int n = 1;
        if (s->user && s->user[0])
            auth[n++] = s->user;
        auth[n++] = s->password;
        r = redis_append_command(p, n, auth);
        p->rds_skip = 1;
    }
    if (r == 0)
        r = redis_append_command(p, (int)argc, cmd);
    free(cmd);
    p->rds_reader = redisReaderCreate();
    if (r < 0 || !p->rds_reader) {
        probe__finish(p, -ENOMEM, "out of memory");
        return;
    }
    probe__net_start(p, s->port ? s->port : 6379);
}

/* Appends a reply as text: scalars as is, nil as an empty line, arrays one element per line
 * (nested arrays flattened). */
static void redis_format(struct probe *p, const redisReply *rep, bool *first)
{
    char num[32];

    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++)
            redis_format(p, rep->element[i], first);
        return;
    }
    if (!*first)
        probe__detail_append(p, "\n", 1);
    *first = false;
    switch (rep->type) {
    case REDIS_REPLY_INTEGER:
        (void)snprintf(num, sizeof num, "%lld", rep->integer);
        probe__detail_append(p, num, strlen(num));
        break;
    case REDIS_REPLY_NIL:
        break;
    default: /* string, status, error */
        if (rep->str)
            probe__detail_append(p, rep->str, rep->len);
        break;
    }
}

/* Consumes complete replies; finishes the probe when the command's reply arrived. */
static void redis_consume(struct probe *p)
{
    for (;;) {
        void *v = NULL;
        redisReply *rep;
        bool first = true;

        if (redisReaderGetReply(p->rds_reader, &v) != REDIS_OK) {
            probe__finish(p, -EPROTO, "bad reply from %s: %s", p->net.addr, p->rds_reader->errstr);
            return;
        }
        if (!v)
            return;
        rep = v;
        if (rep->type == REDIS_REPLY_ERROR) {
            char msg[PROBE_MSG_MAX];
            probe__one_line(msg, sizeof msg, rep->str);
            freeReplyObject(rep);
            probe__finish(p, -EPROTO, "%s", msg);
            return;
        }
        if (p->rds_skip > 0) {
            p->rds_skip--;
            freeReplyObject(rep);
            continue;
        }
        redis_format(p, rep, &first);
        if (rep->type == REDIS_REPLY_STATUS)
            probe__finish(p, 0, "%s", rep->str ? rep->str : "");
        else
            probe__finish(p, 0, "reply from %s", p->net.addr);
        freeReplyObject(rep);
        return;
    }
}

static void redis_step(struct probe *p, short revents)
{
    struct buf in = BUF_INIT(64 * 1024);
    int r;

    if (!p->net.connected && probe__net_connect_step(p, revents) <= 0)
        return;
    if (p->net.out_off < p->net.out.len) {
        (void)probe__net_flush(p); /* then waits for POLLIN, or finished on error */
        return;
    }
    r = probe__net_read(p, &in);
    if (r != -1 && in.len > 0) {
        p->rds_read += in.len;
        if (redisReaderFeed(p->rds_reader, in.data, in.len) != REDIS_OK)
            probe__finish(p, -EPROTO, "bad reply from %s: %s", p->net.addr, p->rds_reader->errstr);
        else
            redis_consume(p);
    }
    buf_release(&in);
    if (p->done)
        return;
    if (r == 1)
        probe__finish(p, -ECONNRESET, "%s closed the connection before replying", p->net.addr);
    else if (p->rds_read > PROBE_REDIS_MAX)
        probe__finish(p, -ENOBUFS, "reply from %s exceeds %zu bytes", p->net.addr, PROBE_REDIS_MAX);
}

static void redis_release(struct probe *p)
{
    probe__net_release(p);
    if (p->rds_reader)
        redisReaderFree(p->rds_reader);
    p->rds_reader = NULL;
}

const struct probe_ops probe__redis_ops = {
    .start = redis_start,
    .step = redis_step,
    .release = redis_release,
};
