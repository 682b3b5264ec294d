/* SPDX-License-Identifier: MIT */
/* fuzz_status.c - fuzz target: the clients' decoder of the supervisor's status reply
 * (sv_status_decode(), used by infractl and gpu_agent) on arbitrary input; what it accepts
 * must encode (sv__status_encode(), the server's encoder) and decode again to the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/str.h"
#include "supervise/supervise.h"
#include "supervise/sv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && streq(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sv_status a, b;
    json_t *o;
    char *text;

    if (sv_status_decode((const char *)data, size, &a) < 0)
        return 0;
    o = sv__status_encode(&a);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!text || sv_status_decode(text, strlen(text), &b) < 0)
        abort();
    if (a.n_services != b.n_services || a.pid != b.pid || !same_str(a.stack, b.stack) ||
        a.shutting_down != b.shutting_down)
        abort();
    for (size_t i = 0; i < a.n_services; i++)
        if (!same_str(a.services[i].name, b.services[i].name) ||
            !same_str(a.services[i].state, b.services[i].state) ||
            !same_str(a.services[i].last_exit, b.services[i].last_exit) ||
            a.services[i].pid != b.services[i].pid ||
            a.services[i].restarts != b.services[i].restarts)
            abort();
    free(text);
    json_decref(o);
    sv_status_release(&a);
    sv_status_release(&b);
    return 0;
}
