/* SPDX-License-Identifier: MIT */
/* conf.c - the parts of pgbackrest.conf infractl needs: stanza, repository, nodes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"

#define CONF_MAX_BYTES (1024 * 1024)

void backup_conf_release(struct backup_conf *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->stanza);
    free(c->repo_path);
    free(c->log_path);
    free(c->compress_type);
    free(c->compress_level);
    for (size_t i = 0; i < BACKUP_MAX_NODES; i++) {
        free(c->nodes[i].path);
        free(c->nodes[i].socket_path);
    }
    *c = (struct backup_conf){ 0 };
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

/* pgN-path, pgN-port, pgN-socket-path: N is 1..BACKUP_MAX_NODES. */
static int node_key(struct backup_conf *c, const char *key, const char *val, const char *path,
                    unsigned line, struct err *reterr)
{
    uint64_t n, port;
    char num[8];
    const char *dash = strchr(key + 2, '-');
    size_t len = dash ? (size_t)(dash - key - 2) : 0;
    struct backup_node *node;

    if (!dash || len == 0 || len >= sizeof num)
        return 0;
    memcpy(num, key + 2, len);
    num[len] = '\0';
    if (parse_u64(num, &n) < 0)
        return 0;
    if (n < 1 || n > BACKUP_MAX_NODES) {
        err_set(reterr, -EINVAL, line, 0, "%s: pg%s is past the %d nodes infractl handles", key,
                num, BACKUP_MAX_NODES);
        err_set_file(reterr, path);
        return -EINVAL;
    }
    node = &c->nodes[n - 1];
    if (streq(dash, "-path")) {
        set_str(&node->path, val);
    } else if (streq(dash, "-socket-path")) {
        set_str(&node->socket_path, val);
    } else if (streq(dash, "-port")) {
        if (parse_uint_range(val, 1, 65535, &port) < 0) {
            err_set(reterr, -EINVAL, line, 0, "%s: '%s' is not a port", key, val);
            err_set_file(reterr, path);
            return -EINVAL;
        }
        node->port = (unsigned)port;
    }
    return 0;
}

int backup_conf_parse(const char *path, const char *text, struct backup_conf *ret,
                      struct err *reterr)
{
    struct backup_conf c = { 0 };
    char *copy = xstrdup(text), *save = copy, *next;
    bool in_stanza = false, in_global = false;
    unsigned line = 0;
    int r = 0;

    for (char *l = copy; l; l = next) {
        char *eq, *key, *val;

        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        line++;
        l = trim(l);
        if (*l == '\0' || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');

            if (!end) {
                r = err_set(reterr, -EINVAL, line, 0, "section header without ']'");
                err_set_file(reterr, path);
                goto out;
            }
            *end = '\0';
            l = trim(l + 1);
            in_global = streq(l, "global") || str_startswith(l, "global:");
            in_stanza = false;
            if (!in_global && !strchr(l, ':') && !c.stanza) {
                c.stanza = xstrdup(l);
                in_stanza = true;
            }
            continue;
        }
        eq = strchr(l, '=');
        if (!eq)
            continue; /* pgBackRest itself reports such lines */
        *eq = '\0';
        key = trim(l);
        val = trim(eq + 1);
        if (in_global && streq(key, "repo1-path"))
            set_str(&c.repo_path, val);
        else if (in_global && streq(key, "log-path"))
            set_str(&c.log_path, val);
        else if ((in_global || in_stanza) && streq(key, "compress-type"))
            set_str(&c.compress_type, val);
        else if ((in_global || in_stanza) && streq(key, "compress-level"))
            set_str(&c.compress_level, val);
        else if (in_stanza && str_startswith(key, "pg")) {
            r = node_key(&c, key, val, path, line, reterr);
            if (r < 0)
                goto out;
        }
    }
    if (!c.stanza) {
        r = err_set(reterr, -EINVAL, 0, 0, "no stanza section (only [global])");
        err_set_file(reterr, path);
        goto out;
    }
    /* Nodes are pg1..pgN without holes; a hole ends the list (pgBackRest requires pg1). */
    for (c.n_nodes = 0; c.n_nodes < BACKUP_MAX_NODES && c.nodes[c.n_nodes].path; c.n_nodes++)
        if (c.nodes[c.n_nodes].port == 0)
            c.nodes[c.n_nodes].port = 5432;
    c.path = xstrdup(path);
    *ret = c;
    c = (struct backup_conf){ 0 };
out:
    backup_conf_release(&c);
    free(save);
    return r;
}

int backup_conf_load(const char *path, struct backup_conf *ret, struct err *reterr)
{
    struct buf text = BUF_INIT(CONF_MAX_BYTES);
    int r;

    r = file_read_all(path, &text);
    if (r < 0) {
        err_set(reterr, r, 0, 0, "cannot read: %s", strerror(-r));
        err_set_file(reterr, path);
        goto out;
    }
    r = backup_conf_parse(path, buf_str(&text), ret, reterr);
out:
    buf_release(&text);
    return r;
}
