/* SPDX-License-Identifier: MIT */
/* prom.c - instant queries against Prometheus's HTTP API (vector or scalar results). */
#include "prom.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "httpc/httpc.h"

/* A sample value as Prometheus writes it: a JSON string ("0.99", "NaN", "+Inf"). */
static int sample_value(json_t *pair, double *ret, struct err *e)
{
    const char *s = json_string_value(json_array_get(pair, 1));
    char *end;
    double v;

    if (!json_is_array(pair) || json_array_size(pair) != 2 || !s)
        return err_set(e, -EPROTO, 0, 0, "prometheus: a sample is not [time, \"value\"]");
    v = strtod(s, &end);
    if (end == s || *end)
        return err_set(e, -EPROTO, 0, 0, "prometheus: sample value '%s' is not a number", s);
    if (isnan(v))
        return 0;
    *ret = v;
    return 1;
}

int prom_parse(const char *body, size_t len, double *ret, struct err *e)
{
    json_t *j = json_loadb(body, len, 0, NULL), *data, *result;
    const char *status, *type;
    int r;

    if (!j)
        return err_set(e, -EPROTO, 0, 0, "prometheus: the answer is not JSON");
    status = json_string_value(json_object_get(j, "status"));
    data = json_object_get(j, "data");
    type = json_string_value(json_object_get(data, "resultType"));
    result = json_object_get(data, "result");
    if (!status || !streq(status, "success")) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        r = err_set(e, -EIO, 0, 0, "prometheus: %s", msg ? msg : "query failed");
    } else if (type && streq(type, "scalar")) {
        r = sample_value(result, ret, e);
    } else if (type && streq(type, "vector") && json_is_array(result)) {
        size_t n = json_array_size(result);
        if (n == 0)
            r = 0;
        else if (n > 1)
            r = err_set(e, -EPROTO, 0, 0,
                        "prometheus: the query gave %zu series; aggregate it to one (sum, max...)",
                        n);
        else
            r = sample_value(json_object_get(json_array_get(result, 0), "value"), ret, e);
    } else {
        r = err_set(e, -EPROTO, 0, 0, "prometheus: result type '%s' is not a vector or scalar",
                    type ? type : "?");
    }
    json_decref(j);
    return r;
}

int prom_query(const char *base_url, const char *query, long timeout_ms, double *ret, struct err *e)
{
    char *q = httpc_escape(query), *url;
    struct httpc_response rep;
    int r;

    if (!q)
        return -ENOMEM;
    url = xasprintf("%s/api/v1/query?query=%s", base_url, q);
    free(q);
    r = httpc_call(&(struct httpc_request){ .url = url,
                                            .timeout_ms = timeout_ms,
                                            .connect_timeout_ms = timeout_ms,
                                            .max_body = 1u << 20 },
                   &rep);
    free(url);
    if (r < 0)
        r = err_set(e, r, 0, 0, "prometheus at %s: %s", base_url, rep.error);
    else if (rep.status != 200 && rep.status != 400 && rep.status != 422)
        r = err_set(e, -EIO, 0, 0, "prometheus at %s: HTTP %ld", base_url, rep.status);
    else
        r = prom_parse(buf_str(&rep.body), rep.body.len, ret, e);
    httpc_response_release(&rep);
    return r;
}
