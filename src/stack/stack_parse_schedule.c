/* SPDX-License-Identifier: MIT */
/* stack_parse_schedule.c - scheduled services (jobs) in the stack file (docs/stack-file.md):
 * a service's `schedule:` map, the keys a job refuses, and the top-level `jobs:` section. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "stack.h"
#include "stack_int.h"

#define DAY_USEC (24 * 3600 * USEC_PER_SEC)

/* Two decimal digits in [0, max]. */
static bool two_digits(const char *p, unsigned max, unsigned *ret)
{
    unsigned v;

    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    v = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
    *ret = v;
    return v <= max;
}

/* daily: "HH:MM" or "HH:MM:SS", UTC: the period is a day, the time of day its offset. */
static int parse_daily(const struct cfg_ctx *c, const struct cfg_node *key,
                       const struct cfg_node *v, const char *path, void *field)
{
    struct stack_schedule *s = field;
    unsigned h = 0, m = 0, sec = 0;
    int r;

    (void)key;
    r = cfg_expect(c, v, path, CFG_NODE_SCALAR);
    if (r < 0)
        return r;
    if (!((v->len == 5 ||
           (v->len == 8 && v->value[5] == ':' && two_digits(v->value + 6, 59, &sec))) &&
          v->value[2] == ':' && two_digits(v->value, 23, &h) && two_digits(v->value + 3, 59, &m)))
        return cfg_error(c, v, "%s: invalid time of day '%.32s' (HH:MM or HH:MM:SS, UTC)", path,
                         v->value);
    s->every_usec = DAY_USEC;
    s->offset_usec = ((uint64_t)h * 3600 + (uint64_t)m * 60 + sec) * USEC_PER_SEC;
    return 0;
}

#define SCHEDULE_OPT(key_, type_, field_) CFG_OPT(struct stack_schedule, key_, type_, field_)
/* `every` and `daily` exclude each other (checked below); `offset` only goes with `every`. */
static const struct cfg_option schedule_opts[] = {
    { SCHEDULE_OPT("every", CFG_DURATION, every_usec), .min = USEC_PER_SEC },
    { .key = "daily", .type = CFG_CUSTOM, .parse = parse_daily },
    { SCHEDULE_OPT("offset", CFG_DURATION, offset_usec) },
    { SCHEDULE_OPT("random_delay", CFG_DURATION, random_delay_usec), .default_value = "0" },
    { SCHEDULE_OPT("timeout", CFG_DURATION, timeout_usec), .default_value = "1h" },
    { SCHEDULE_OPT("persistent", CFG_BOOL, persistent), .default_value = "false" },
    { .key = NULL },
};

int stack__parse_schedule(const struct cfg_ctx *c, const struct cfg_node *key,
                          const struct cfg_node *m, const char *path, void *field)
{
    struct stack_schedule s = { .present = true };
    const struct cfg_node *every, *daily, *offset, *delay;
    char sub[CFG_PATH_MAX];
    int r;

    r = cfg_parse_section(c, m, path, key, schedule_opts, &s);
    if (r < 0)
        return r;
    every = cfg_map_key(m, "every");
    daily = cfg_map_key(m, "daily");
    offset = cfg_map_get(m, "offset");
    delay = cfg_map_get(m, "random_delay");
    if (every && daily)
        return cfg_error(c, daily, "%s: set either 'every' or 'daily', not both", path);
    if (!every && !daily)
        return cfg_error(c, key, "%s: missing 'every' (a period) or 'daily' (a time of day)", path);
    if (daily && offset)
        return cfg_error(c, cfg_map_key(m, "offset"),
                         "%s: 'offset' goes with 'every' ('daily' names the time itself)",
                         cfg_path_join(sub, path, "offset"));
    if (s.offset_usec >= s.every_usec)
        return cfg_error(c, offset, "%s: must be below the period (every)",
                         cfg_path_join(sub, path, "offset"));
    if (s.random_delay_usec >= s.every_usec)
        return cfg_error(c, delay, "%s: must be below the period (%s)",
                         cfg_path_join(sub, path, "random_delay"), daily ? "a day" : "every");
    *(struct stack_schedule *)field = s;
    return 0;
}

int stack__check_job(const struct cfg_ctx *c, const struct cfg_node *m, struct stack_service *svc)
{
    /* What makes a daemon: restarts, health, fencing.  A job runs once per due time. */
    static const char *const refused[] = { "restart",  "restart_backoff", "healthcheck",
                                           "liveness", "freeze_after",    "lock" };

    for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
        const struct cfg_node *k = cfg_map_key(m, refused[i]);

        if (k)
            return cfg_error(c, k,
                             "services.%s.%s: not for a scheduled service (it runs once at each "
                             "due time; a failed run waits for the next)",
                             svc->name, refused[i]);
    }
    svc->restart = STACK_RESTART_NO;
    return 0;
}

#define STACK_OPT(key_, type_, field_) CFG_OPT(struct stack, key_, type_, field_)
static const struct cfg_option jobs_opts[] = {
    { STACK_OPT("metrics_dir", CFG_STR, job_metrics_dir), .default_value = "${state_dir}/jobs",
      .validate = stack__valid_abs_path },
    { .key = NULL },
};

int stack__parse_jobs(const struct cfg_ctx *c, const struct cfg_node *key, const struct cfg_node *m,
                      const char *path, void *field)
{
    return cfg_parse_section(c, m, path, key, jobs_opts, field);
}

void stack__jobs_defaults(struct stack *s)
{
    cfg_set_defaults(jobs_opts, s);
}
