/* SPDX-License-Identifier: MIT */
/* status_monitoring.c - Prometheus and Alertmanager in `infractl status`.
 *
 * Prometheus (kind prometheus): its status probe asks the query API for `up` (one series per
 * scrape target: how many are up, which are down); two more queries on the same port ask how
 * many rules are loaded (its own prometheus_rule_group_rules, from scraping itself) and which
 * alerts fire (ALERTS).  Query answers stay small however many rules and targets there are,
 * unlike /api/v1/targets and /api/v1/rules, which carry every label and expression.
 * Alertmanager (kind alertmanager): its status probe is GET /api/v2/alerts, counted by state
 * (active, suppressed: silenced or inhibited, unprocessed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/str.h"
#include "stack/stack.h"
#include "status_int.h"

#define EXTRA_RULES  0
#define EXTRA_ALERTS 1

/* Paths of the extra queries, URL-encoded: sum(prometheus_rule_group_rules) and
 * ALERTS{alertstate="firing"}. */
static const char *const extra_paths[] = {
    [EXTRA_RULES] = "/api/v1/query?query=sum%28prometheus_rule_group_rules%29",
    [EXTRA_ALERTS] = "/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D",
};

void status__monitoring_start(struct role_job *j, uint64_t timeout_usec, struct probe **probes,
                              unsigned *np)
{
    if (!j->svc->kind || !streq(j->svc->kind, "prometheus"))
        return;
    for (size_t k = 0; k < ARRAY_SIZE(extra_paths); k++) {
        probe_spec_copy(&j->extra_spec[k], &j->svc->status_probe);
        free(j->extra_spec[k].path);
        j->extra_spec[k].path = xstrdup(extra_paths[k]);
        j->extra[k] = probe_start(&j->extra_spec[k], timeout_usec);
        if (j->extra[k])
            probes[(*np)++] = j->extra[k];
    }
}

/* The result vector of a successful query answer (borrowed from root), or NULL. */
static json_t *query_result(json_t *root)
{
    json_t *data = json_object_get(root, "data");

    if (!json_is_string(json_object_get(root, "status")) ||
        !streq(json_string_value(json_object_get(root, "status")), "success"))
        return NULL;
    return json_is_array(json_object_get(data, "result")) ? json_object_get(data, "result") : NULL;
}

/* The sample value of a vector element ("value": [ts, "1"]); -1 when absent. */
static double sample_value(json_t *elem)
{
    const char *v = json_string_value(json_array_get(json_object_get(elem, "value"), 1));

    return v ? strtod(v, NULL) : -1;
}

static const char *label(json_t *elem, const char *name)
{
    const char *v = json_string_value(json_object_get(json_object_get(elem, "metric"), name));

    return v ? v : "?";
}

/* Appends item to a ", "-separated list in out unless it is there already; "..." once full. */
static void list_add(char *out, size_t n, const char *item)
{
    size_t len = strlen(out), ilen = strlen(item);

    for (const char *p = out; (p = strstr(p, item)) != NULL; p += ilen)
        if ((p == out || p[-1] == ' ') && (p[ilen] == ',' || p[ilen] == '\0'))
            return;
    if (len + ilen + 6 >= n) {
        if (len + 4 < n && !strstr(out, "..."))
            (void)snprintf(out + len, n - len, "%s...", len ? ", " : "");
        return;
    }
    (void)snprintf(out + len, n - len, "%s%s", len ? ", " : "", item);
}

static json_t *answer(const struct probe *p)
{
    return p && probe_result(p) == 0 ? json_loads(probe_detail(p), 0, NULL) : NULL;
}

static void read_targets(struct status_monitoring *m, const struct probe *p)
{
    json_t *root = answer(p), *result = query_result(root), *elem;
    size_t i;

    m->prometheus_known = result != NULL;
    json_array_foreach(result, i, elem)
    {
        m->targets_total++;
        if (sample_value(elem) == 1) {
            m->targets_up++;
        } else {
            char item[128];

            (void)snprintf(item, sizeof item, "%s/%s", label(elem, "job"), label(elem, "instance"));
            list_add(m->targets_down, sizeof m->targets_down, item);
        }
    }
    json_decref(root);
}

static void read_rules(struct status_monitoring *m, const struct probe *p)
{
    json_t *root = answer(p), *result = query_result(root);

    if (result)
        m->rules = json_array_size(result) ? (long)sample_value(json_array_get(result, 0)) : 0;
    json_decref(root);
}

static void read_alerts(struct status_monitoring *m, const struct probe *p)
{
    json_t *root = answer(p), *result = query_result(root), *elem;
    size_t i;

    if (!result) {
        json_decref(root);
        return;
    }
    m->firing = (long)json_array_size(result);
    json_array_foreach(result, i, elem)
            list_add(m->firing_alerts, sizeof m->firing_alerts, label(elem, "alertname"));
    json_decref(root);
}

void status__interpret_prometheus(struct role_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct status_monitoring *m = &jobs[i].snap->monitoring;
        struct status_service *sv = jobs[i].sv;

        if (!status__job_ok(&jobs[i], "prometheus"))
            continue;
        read_targets(m, jobs[i].probe);
        read_rules(m, jobs[i].extra[EXTRA_RULES]);
        read_alerts(m, jobs[i].extra[EXTRA_ALERTS]);
        (void)snprintf(sv->role, sizeof sv->role, "monitoring");
        if (!m->prometheus_known) {
            (void)snprintf(sv->role_error, sizeof sv->role_error, "query API: not a query answer");
            continue;
        }
        (void)snprintf(sv->detail, sizeof sv->detail, "targets %u/%u up, %ld rules, %ld firing",
                       m->targets_up, m->targets_total, m->rules, m->firing);
    }
}

void status__interpret_alertmanager(struct role_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct status_monitoring *m = &jobs[i].snap->monitoring;
        struct status_service *sv = jobs[i].sv;
        json_t *root, *alert;
        size_t k;

        if (!status__job_ok(&jobs[i], "alertmanager"))
            continue;
        (void)snprintf(sv->role, sizeof sv->role, "alerting");
        root = answer(jobs[i].probe);
        if (!json_is_array(root)) {
            (void)snprintf(sv->role_error, sizeof sv->role_error,
                           "/api/v2/alerts: not a list of alerts (%zu bytes)",
                           strlen(probe_detail(jobs[i].probe)));
            json_decref(root);
            continue;
        }
        m->alertmanager_known = true;
        json_array_foreach(root, k, alert)
        {
            json_t *st = json_object_get(alert, "status");
            const char *state = json_string_value(json_object_get(st, "state"));

            if (json_array_size(json_object_get(st, "silencedBy")) > 0)
                m->am_silenced++;
            else if (json_array_size(json_object_get(st, "inhibitedBy")) > 0)
                m->am_inhibited++;
            else if (state && streq(state, "active"))
                m->am_active++;
            else
                m->am_unprocessed++;
        }
        json_decref(root);
        (void)snprintf(sv->detail, sizeof sv->detail, "alerts %u active, %u silenced, %u inhibited",
                       m->am_active, m->am_silenced, m->am_inhibited);
    }
}
