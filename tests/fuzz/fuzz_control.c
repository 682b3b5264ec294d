/* SPDX-License-Identifier: MIT */
/* fuzz_control.c - fuzz target: the supervisor's control protocol (one request line in, one
 * JSON response line out) against a supervisor whose services are driven by fake process
 * operations, so requests like start/stop/restart/down run their real state changes without
 * forking anything. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/strv.h"
#include "supervise/supervise.h"
#include "supervise/sv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* db, and app which depends on it and restarts always. */
static struct sv_spec *make_spec(void)
{
    struct sv_spec *spec = sv_spec_new("fuzz");
    struct sv_service *svc;

    svc = sv_spec_add(spec, "db");
    svc->argv = strv_copy((char *const[]){ (char *)"/bin/true", NULL });
    svc = sv_spec_add(spec, "app");
    svc->argv = strv_copy((char *const[]){ (char *)"/bin/true", NULL });
    svc->restart = SV_RESTART_ALWAYS;
    svc->deps = xcalloc(1, sizeof *svc->deps);
    svc->deps[0] = (struct sv_dep){ .service = xstrdup("db"), .cond = SV_DEP_STARTED };
    svc->n_deps = 1;
    return spec;
}

static int fake_spawn(struct sv_unit *u, void *userdata)
{
    (void)userdata;
    u->pid = u->pgid = 1 << 30; /* never signalled: fake_kill does nothing */
    return 0;
}

static void fake_kill(struct sv_unit *u, int sig, void *userdata)
{
    (void)u;
    (void)sig;
    (void)userdata;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sv_spec *spec;
    struct sv_sup sup = { .listen_fd = -1 };
    struct sv_unit units[2];
    struct buf out = BUF_INIT(1 << 20);
    const uint8_t *p = data, *end = data + size;

    if (!spec) {
        log_set_max_level(LOG_LVL_ERROR);
        spec = make_spec();
    }
    sup.spec = spec;
    sup.state_dir = "/nonexistent/fuzz";
    sup.units = units;
    sup.n_units = spec->n_services;
    sup.ops = (struct sv_ops){ .spawn = fake_spawn, .kill = fake_kill };
    for (size_t i = 0; i < sup.n_units; i++)
        sv_unit_init(&units[i], &spec->services[i], i);
    sv_fsm_dispatch(&units[0], SV_EVENT_START, 0, 1000000, &sup.ops);

    /* Each input line is one request; every request gets exactly one response line. */
    while (p <= end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t before = out.len;

        sv__control_handle(&sup, (const char *)p, len, &out);
        if (out.len == before || out.data[out.len - 1] != '\n')
            abort();
        /* A status reply decodes with the clients' decoder: one contract, both ends. */
        if (memmem(out.data + before, out.len - before, "\"supervisor\"", 12)) {
            struct sv_status st;

            if (sv_status_decode(out.data + before, out.len - before - 1, &st) < 0 ||
                st.n_services != sup.n_units)
                abort();
            sv_status_release(&st);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    buf_release(&out);
    return 0;
}
