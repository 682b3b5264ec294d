/* SPDX-License-Identifier: MIT */
/* pg_cluster.c - the PostgreSQL cluster as Patroni sees it: GET /cluster from every node at
 * once (a frozen node's REST API never answers, so no single node is asked alone). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "drill_int.h"
#include "httpc/httpc.h"
#include "probe/probe.h"

static void copy_str(char *dst, size_t n, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    (void)snprintf(dst, n, "%s", s ? s : "");
}

static int parse_cluster(const char *body, struct drill_cluster *ret)
{
    json_t *root = json_loads(body, 0, NULL), *m;
    struct drill_cluster c = { .n = 0 };
    size_t i;

    if (!root || !json_is_array(json_object_get(root, "members"))) {
        json_decref(root);
        return -EPROTO;
    }
    json_array_foreach(json_object_get(root, "members"), i, m)
    {
        struct drill_member *dm;

        if (c.n == ARRAY_SIZE(c.members))
            break;
        dm = &c.members[c.n++];
        copy_str(dm->name, sizeof dm->name, m, "name");
        copy_str(dm->role, sizeof dm->role, m, "role");
        copy_str(dm->state, sizeof dm->state, m, "state");
        dm->timeline = json_integer_value(json_object_get(m, "timeline"));
    }
    json_decref(root);
    *ret = c;
    return 0;
}

int drill__cluster_read(const struct drill_pg_target *t, uint64_t timeout_usec,
                        struct drill_cluster *ret)
{
    static char path[] = "/cluster"; /* probe_spec strings are not const; never freed here */
    struct probe_spec specs[16];
    struct probe *probes[16];
    size_t n = t->n_nodes < ARRAY_SIZE(specs) ? t->n_nodes : ARRAY_SIZE(specs);
    int r = -ETIMEDOUT;

    for (size_t i = 0; i < n; i++) {
        specs[i] = (struct probe_spec){ .type = PROBE_HTTP,
                                        .host = t->nodes[i].host ? xstrdup(t->nodes[i].host) : NULL,
                                        .port = t->nodes[i].rest_port,
                                        .path = path,
                                        .expect_status = 200 };
        probes[i] = probe_start(&specs[i], timeout_usec);
    }
    probe_run_all(probes, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        if (r < 0 && probes[i] && probe_result(probes[i]) == 0)
            r = parse_cluster(probe_detail(probes[i]), ret);
        probes[i] = probe_free(probes[i]);
        free(specs[i].host);
    }
    return r;
}

const char *drill__cluster_leader(const struct drill_cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (streq(c->members[i].role, "leader") && streq(c->members[i].state, "running"))
            return c->members[i].name;
    return NULL;
}

const struct drill_member *drill__cluster_member(const struct drill_cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (streq(c->members[i].name, name))
            return &c->members[i];
    return NULL;
}

bool drill__cluster_whole(const struct drill_pg_target *t, const struct drill_cluster *c)
{
    const char *leader = drill__cluster_leader(c);
    const struct drill_member *l;
    bool sync = false;

    if (!leader)
        return false;
    l = drill__cluster_member(c, leader);
    for (size_t i = 0; i < t->n_nodes; i++) {
        const struct drill_member *m = drill__cluster_member(c, t->nodes[i].name);

        if (!m)
            return false;
        if (m == l)
            continue;
        if (!streq(m->state, "streaming") || m->timeline != l->timeline)
            return false;
        sync = sync || streq(m->role, "sync_standby");
    }
    return sync;
}

int drill__cluster_switchover(const struct drill_pg_target *t, const char *leader, char *msg,
                              size_t msg_size)
{
    const struct drill_pg_node *node = NULL;
    char url[96], *userpwd = NULL, *body;
    struct httpc_response resp;
    int r;

    for (size_t i = 0; i < t->n_nodes && !node; i++)
        if (streq(t->nodes[i].name, leader))
            node = &t->nodes[i];
    if (!node) {
        (void)snprintf(msg, msg_size, "%s is not a node of the target", leader);
        return -ENOENT;
    }
    (void)snprintf(url, sizeof url, "http://%s:%u/switchover",
                   node->host ? node->host : "127.0.0.1", (unsigned)node->rest_port);
    if (t->api_user && t->api_password)
        userpwd = xasprintf("%s:%s", t->api_user, t->api_password);
    body = xasprintf("{\"leader\": \"%s\"}", leader);
    r = httpc_call(&(struct httpc_request){ .method = "POST",
                                            .url = url,
                                            .userpwd = userpwd,
                                            .body = body,
                                            .timeout_ms = 60 * 1000L,
                                            .connect_timeout_ms = 1000L,
                                            .max_body = 64 * 1024 },
                   &resp);
    if (r < 0) {
        (void)snprintf(msg, msg_size, "%s: %s", url, resp.error);
    } else if (resp.status != 200) {
        (void)snprintf(msg, msg_size, "Patroni refused the switchover (HTTP %ld): %.160s",
                       resp.status, resp.body.data ? resp.body.data : "");
        r = resp.status == 401 ? -EACCES : -EPROTO;
    }
    httpc_response_release(&resp);
    free(userpwd);
    free(body);
    return r;
}
