/* SPDX-License-Identifier: MIT */
/* sv_status.c - the control protocol's messages as one fact: the status reply's fields are
 * listed once, in the tables below, and both the server (sv_control.c, encoding) and every
 * client (sv_status_fetch(): infractl, gpu_agent; decoding) go through them.  Requests are
 * built here too (sv_request()), so no caller writes the wire format by hand. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/signal.h"
#include "core/str.h"
#include "supervise.h"
#include "sv_int.h"

enum ftype {
    F_STR,      /* string, required */
    F_OPT_STR,  /* string or null (NULL) */
    F_PID,      /* integer or null (0) */
    F_OPT_TIME, /* seconds since the epoch, real, or null (0) */
    F_REAL,
    F_UINT,
    F_BOOL,
    F_CODE, /* int, -1 (none) as null */
};

struct field {
    const char *key;
    enum ftype type;
    size_t off;
};

#define SVC(f_) offsetof(struct sv_status_service, f_)
static const struct field service_fields[] = {
    { "name", F_STR, SVC(name) },
    { "state", F_STR, SVC(state) },
    { "pid", F_PID, SVC(pid) },
    { "started_at", F_OPT_TIME, SVC(started_at) },
    { "uptime_s", F_REAL, SVC(uptime_s) },
    { "restarts", F_UINT, SVC(restarts) },
    { "health", F_STR, SVC(health) },
    { "health_message", F_STR, SVC(health_message) },
    { "last_exit", F_OPT_STR, SVC(last_exit) },
    { "waiting_for", F_OPT_STR, SVC(waiting_for) },
};
#undef SVC

/* A scheduled service's "job" object (null for every other service). */
#define JOB(f_) offsetof(struct sv_status_job, f_)
static const struct field job_fields[] = {
    { "schedule", F_STR, JOB(schedule) },
    { "scheduled", F_BOOL, JOB(scheduled) },
    { "next_run", F_OPT_TIME, JOB(next_run) },
    { "last_run", F_OPT_TIME, JOB(last_run) },
    { "last_success", F_OPT_TIME, JOB(last_success) },
    { "last_result", F_OPT_STR, JOB(last_result) },
    { "last_duration_s", F_REAL, JOB(last_duration_s) },
    { "last_exit_code", F_CODE, JOB(last_exit_code) },
    { "runs_success", F_UINT, JOB(runs_success) },
    { "runs_failure", F_UINT, JOB(runs_failure) },
    { "runs_timeout", F_UINT, JOB(runs_timeout) },
    { "runs_skipped", F_UINT, JOB(runs_skipped) },
};
#undef JOB
#define K_JOB "job"

#define SUP(f_) offsetof(struct sv_status, f_)
static const struct field supervisor_fields[] = {
    { "pid", F_PID, SUP(pid) },
    { "started_at", F_OPT_TIME, SUP(started_at) },
    { "stack", F_STR, SUP(stack) },
    { "state_dir", F_STR, SUP(state_dir) },
    { "shutting_down", F_BOOL, SUP(shutting_down) },
};
#undef SUP

/* The reply's envelope and the requests. */
#define K_OK         "ok"
#define K_ERROR      "error"
#define K_SUPERVISOR "supervisor"
#define K_SERVICES   "services"
#define K_CMD        "cmd"
#define K_SERVICE    "service"
#define K_SIGNAL     "signal"
#define K_GRACE_MS   "grace_ms"
#define K_MAIN_ONLY  "main_only"

#define AT(base_, f_, type_)  ((type_ *)(void *)((char *)(base_) + (f_)->off))
#define CAT(base_, f_, type_) ((type_ const *)(const void *)((const char *)(base_) + (f_)->off))

static int encode_fields(json_t *o, const void *b, const struct field *f, size_t n)
{
    int r = 0;

    for (size_t i = 0; i < n && r == 0; i++) {
        const char *str = NULL;
        json_t *v = NULL;

        if (f[i].type == F_STR || f[i].type == F_OPT_STR)
            str = *CAT(b, &f[i], char *);
        switch (f[i].type) {
        case F_STR:
            v = json_string(str ? str : "");
            break;
        case F_OPT_STR:
            v = str ? json_string(str) : json_null();
            break;
        case F_PID:
            v = *CAT(b, &f[i], int) > 0 ? json_integer(*CAT(b, &f[i], int)) : json_null();
            break;
        case F_OPT_TIME:
            v = *CAT(b, &f[i], double) > 0 ? json_real(*CAT(b, &f[i], double)) : json_null();
            break;
        case F_REAL:
            v = json_real(*CAT(b, &f[i], double));
            break;
        case F_UINT:
            v = json_integer((json_int_t)*CAT(b, &f[i], unsigned));
            break;
        case F_BOOL:
            v = json_boolean(*CAT(b, &f[i], bool));
            break;
        case F_CODE:
            v = *CAT(b, &f[i], int) >= 0 ? json_integer(*CAT(b, &f[i], int)) : json_null();
            break;
        }
        r = v ? json_object_set_new(o, f[i].key, v) : -1;
    }
    return r < 0 ? -ENOMEM : 0;
}

json_t *sv_status_job_json(const struct sv_status_job *job)
{
    json_t *o = json_object();

    if (o && encode_fields(o, job, job_fields, ARRAY_SIZE(job_fields)) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* A service's fields, and its job object (null unless it is a job). */
static int encode_service(json_t *o, const struct sv_status_service *svc)
{
    json_t *job;

    if (encode_fields(o, svc, service_fields, ARRAY_SIZE(service_fields)) < 0)
        return -ENOMEM;
    job = svc->job ? sv_status_job_json(svc->job) : json_null();
    if (!job)
        return -ENOMEM;
    return json_object_set_new(o, K_JOB, job) < 0 ? -ENOMEM : 0;
}

json_t *sv_status_service_json(const struct sv_status_service *svc)
{
    json_t *o = json_object();

    if (o && encode_service(o, svc) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *sv__status_encode(const struct sv_status *st)
{
    json_t *root = json_object(), *sup = json_object(), *arr = json_array();

    if (!root || !sup || !arr ||
        encode_fields(sup, st, supervisor_fields, ARRAY_SIZE(supervisor_fields)) < 0)
        goto fail;
    for (size_t i = 0; i < st->n_services; i++) {
        json_t *o = json_object();

        if (!o || encode_service(o, &st->services[i]) < 0 || json_array_append_new(arr, o) < 0) {
            json_decref(o);
            goto fail;
        }
    }
    if (json_object_set_new(root, K_OK, json_true()) < 0 ||
        json_object_set_new(root, K_SUPERVISOR, sup) < 0)
        goto fail_sup;
    sup = NULL;
    if (json_object_set_new(root, K_SERVICES, arr) < 0)
        goto fail_arr;
    return root;
fail:
    json_decref(sup);
fail_sup:
    json_decref(arr);
fail_arr:
    json_decref(root);
    return NULL;
}

static int decode_fields(json_t *o, void *base, const struct field *f, size_t n)
{
    if (!json_is_object(o))
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(o, f[i].key);

        switch (f[i].type) {
        case F_STR:
            if (!json_is_string(v))
                return -EPROTO;
            *AT(base, &f[i], char *) = xstrdup(json_string_value(v));
            break;
        case F_OPT_STR:
            if (!json_is_string(v) && !json_is_null(v))
                return -EPROTO;
            *AT(base, &f[i], char *) = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
            break;
        case F_PID:
            if (json_is_integer(v) && json_integer_value(v) > 0 &&
                json_integer_value(v) <= INT32_MAX)
                *AT(base, &f[i], int) = (int)json_integer_value(v);
            else if (!json_is_null(v))
                return -EPROTO;
            break;
        case F_OPT_TIME:
        case F_REAL:
            if (json_is_number(v))
                *AT(base, &f[i], double) = json_number_value(v);
            else if (f[i].type == F_REAL || !json_is_null(v))
                return -EPROTO;
            break;
        case F_UINT:
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > UINT32_MAX)
                return -EPROTO;
            *AT(base, &f[i], unsigned) = (unsigned)json_integer_value(v);
            break;
        case F_BOOL:
            if (!json_is_boolean(v))
                return -EPROTO;
            *AT(base, &f[i], bool) = json_is_true(v);
            break;
        case F_CODE:
            if (json_is_integer(v) && json_integer_value(v) >= 0 &&
                json_integer_value(v) <= INT32_MAX)
                *AT(base, &f[i], int) = (int)json_integer_value(v);
            else if (json_is_null(v))
                *AT(base, &f[i], int) = -1;
            else
                return -EPROTO;
            break;
        }
    }
    return 0;
}

static void release_fields(void *base, const struct field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].type == F_STR || f[i].type == F_OPT_STR) {
            free(*AT(base, &f[i], char *));
            *AT(base, &f[i], char *) = NULL;
        }
}

/* The job object of a service entry: absent or null for a daemon. */
static int decode_job(json_t *o, struct sv_status_service *svc)
{
    json_t *v = json_object_get(o, K_JOB);

    if (!v || json_is_null(v))
        return 0;
    svc->job = xcalloc(1, sizeof *svc->job);
    return decode_fields(v, svc->job, job_fields, ARRAY_SIZE(job_fields));
}

void sv_status_job_free(struct sv_status_job *job)
{
    if (!job)
        return;
    release_fields(job, job_fields, ARRAY_SIZE(job_fields));
    free(job);
}

void sv_status_release(struct sv_status *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_services; i++) {
        release_fields(&st->services[i], service_fields, ARRAY_SIZE(service_fields));
        sv_status_job_free(st->services[i].job);
        st->services[i].job = NULL;
    }
    free(st->services);
    release_fields(st, supervisor_fields, ARRAY_SIZE(supervisor_fields));
    *st = (struct sv_status){ .pid = 0 };
}

int sv_status_decode(const char *text, size_t len, struct sv_status *ret)
{
    struct sv_status st = { .pid = 0 };
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *services, *o;
    size_t i;
    int r = -EPROTO;

    if (!json_is_object(root) || !json_is_true(json_object_get(root, K_OK)))
        goto out;
    services = json_object_get(root, K_SERVICES);
    if (!json_is_array(services))
        goto out;
    r = decode_fields(json_object_get(root, K_SUPERVISOR), &st, supervisor_fields,
                      ARRAY_SIZE(supervisor_fields));
    if (r < 0)
        goto out;
    st.services = xcalloc(json_array_size(services) + 1, sizeof *st.services);
    json_array_foreach(services, i, o)
    {
        st.n_services = i + 1; /* a partly decoded entry is released too */
        r = decode_fields(o, &st.services[i], service_fields, ARRAY_SIZE(service_fields));
        if (r >= 0)
            r = decode_job(o, &st.services[i]);
        if (r < 0)
            goto out;
    }
    *ret = st;
    st = (struct sv_status){ .pid = 0 };
    r = 0;
out:
    sv_status_release(&st);
    json_decref(root);
    return r;
}

int sv_status_fetch(const char *state_dir, uint64_t timeout_usec, struct sv_status *ret)
{
    char *resp = NULL;
    int r;

    r = sv_control_call(state_dir, "{\"" K_CMD "\":\"status\"}", timeout_usec, &resp);
    if (r < 0)
        return r;
    r = sv_status_decode(resp, strlen(resp), ret);
    free(resp);
    return r;
}

const struct sv_status_service *sv_status_find(const struct sv_status *st, const char *name)
{
    for (size_t i = 0; name && i < st->n_services; i++)
        if (streq(st->services[i].name, name))
            return &st->services[i];
    return NULL;
}

/* ===== Requests ===== */

static const char *const request_names[_SV_REQUEST_MAX] = {
    [SV_REQUEST_START] = "start",
    [SV_REQUEST_STOP] = "stop",
    [SV_REQUEST_RESTART] = "restart",
    [SV_REQUEST_DOWN] = "down",
};

const char *sv__request_name(enum sv_request req)
{
    return (unsigned)req < _SV_REQUEST_MAX ? request_names[req] : NULL;
}

int sv_request(const char *state_dir, enum sv_request req, const char *service,
               const struct sv_stop_options *stop, uint64_t timeout_usec, char *reterr_msg,
               size_t msg_size)
{
    json_t *o = json_object(), *resp = NULL;
    char *line = NULL, *answer = NULL;
    int r = -ENOMEM;

    if (reterr_msg && msg_size)
        reterr_msg[0] = '\0';
    if ((unsigned)req >= _SV_REQUEST_MAX || (req != SV_REQUEST_DOWN && !service)) {
        r = -EINVAL;
        goto out;
    }
    if (!o || json_object_set_new(o, K_CMD, json_string(request_names[req])) < 0 ||
        (service && json_object_set_new(o, K_SERVICE, json_string(service)) < 0))
        goto out;
    if (req == SV_REQUEST_STOP && stop) {
        const char *sig = stop->signal > 0 ? signal_to_string(stop->signal) : NULL;

        if ((sig && json_object_set_new(o, K_SIGNAL, json_string(sig)) < 0) ||
            (stop->grace_usec > 0 &&
             json_object_set_new(
                     o, K_GRACE_MS,
                     json_integer((json_int_t)(stop->grace_usec / 1000 > 0 ? stop->grace_usec / 1000
                                                                           : 1))) < 0) ||
            (stop->main_only && json_object_set_new(o, K_MAIN_ONLY, json_true()) < 0))
            goto out;
    }
    line = json_dumps(o, JSON_COMPACT);
    if (!line)
        goto out;
    r = sv_control_call(state_dir, line, timeout_usec, &answer);
    if (r < 0)
        goto out;
    resp = json_loads(answer, 0, NULL);
    if (!json_is_true(json_object_get(resp, K_OK))) {
        const char *e = json_string_value(json_object_get(resp, K_ERROR));

        if (reterr_msg && msg_size)
            (void)snprintf(reterr_msg, msg_size, "%s", e ? e : "invalid response");
        r = e ? -EINVAL : -EPROTO;
    }
out:
    json_decref(resp);
    json_decref(o);
    free(line);
    free(answer);
    return r;
}

int sv__stop_options_decode(json_t *req, struct sv_stop_options *ret, const char **reterr)
{
    json_t *sig = json_object_get(req, K_SIGNAL), *grace = json_object_get(req, K_GRACE_MS),
           *main_only = json_object_get(req, K_MAIN_ONLY);
    struct sv_stop_options q = { .signal = 0 };
    int r = sig || grace || main_only;

    if (sig &&
        (!json_is_string(sig) || signal_from_string(json_string_value(sig), &q.signal) < 0)) {
        *reterr = "\"" K_SIGNAL "\" must be a signal name such as \"SIGTERM\"";
        return -EINVAL;
    }
    if (grace) {
        if (!json_is_integer(grace) || json_integer_value(grace) <= 0 ||
            json_integer_value(grace) > (json_int_t)(UINT64_MAX / 1000)) {
            *reterr = "\"" K_GRACE_MS "\" must be a positive integer";
            return -EINVAL;
        }
        q.grace_usec = (uint64_t)json_integer_value(grace) * 1000;
    }
    if (main_only) {
        if (!json_is_boolean(main_only)) {
            *reterr = "\"" K_MAIN_ONLY "\" must be true or false";
            return -EINVAL;
        }
        q.main_only = json_is_true(main_only);
    }
    *ret = q;
    return r;
}

const char *sv__request_service(json_t *req)
{
    return json_string_value(json_object_get(req, K_SERVICE));
}

const char *sv__request_cmd(json_t *req)
{
    return json_string_value(json_object_get(req, K_CMD));
}

json_t *sv__reply_error(const char *msg)
{
    return json_pack("{s:b, s:s}", K_OK, 0, K_ERROR, msg);
}

json_t *sv__reply_ok(const char *state)
{
    return state ? json_pack("{s:b, s:s}", K_OK, 1, "state", state) : json_pack("{s:b}", K_OK, 1);
}
