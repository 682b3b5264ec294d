/* SPDX-License-Identifier: MIT */
/* agent.c - the agent's lifetime: state, threads, shutdown. */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"

/* The API token: the file's first line. */
static int load_token(const char *path, char **ret)
{
    struct buf b = BUF_INIT(4096);
    size_t n;
    int r;

    r = file_read_all(path, &b);
    if (r < 0) {
        buf_release(&b);
        return log_error_errno(r, "cannot read api_token_file '%s'", path);
    }
    n = strcspn(buf_str(&b), "\r\n");
    if (n < 16) {
        buf_release(&b);
        log_error("api_token_file '%s': the token must be at least 16 characters", path);
        return -EINVAL;
    }
    *ret = xasprintf("%.*s", (int)n, buf_str(&b));
    buf_release(&b);
    return 0;
}

int agent_init(struct agent *a, const struct agent_config *cfg)
{
    pthread_condattr_t ca;
    int r;

    a->cfg = cfg;
    a->discovered_fd = -1;
    if (cfg->hostname)
        (void)snprintf(a->hostname, sizeof a->hostname, "%s", cfg->hostname);
    else if (gethostname(a->hostname, sizeof a->hostname - 1) < 0)
        (void)snprintf(a->hostname, sizeof a->hostname, "localhost");
    if (cfg->api_token_file) {
        r = load_token(cfg->api_token_file, &a->api_token);
        if (r < 0)
            return r;
    }
    a->discovered_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->discovered_fd < 0)
        return log_error_errno(-errno, "eventfd() failed");
    if (pthread_mutex_init(&a->lock, NULL) != 0 || pthread_mutex_init(&a->action_lock, NULL) != 0)
        return -ENOMEM;
    /* Deadlines are CLOCK_MONOTONIC (now_usec()). */
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&a->cond, &ca) != 0)
        return -ENOMEM;
    (void)pthread_condattr_destroy(&ca);
    return 0;
}

int agent_start_threads(struct agent *a)
{
    int r;

    r = -pthread_create(&a->collect_thread, NULL, collect_thread_main, a);
    if (r < 0)
        return r;
    a->collect_started = true;
    r = -pthread_create(&a->health_thread, NULL, health_thread_main, a);
    if (r < 0)
        return r;
    a->health_started = true;
    if (a->cfg->worker.present) {
        r = -pthread_create(&a->workers_thread, NULL, workers_thread_main, a);
        if (r < 0)
            return r;
        a->workers_started = true;
    }
    return 0;
}

/* Joins t, giving up after the deadline (CLOCK_REALTIME, as pthread_timedjoin_np wants). */
static bool join_by(pthread_t t, const struct timespec *deadline, const char *what)
{
    int r = pthread_timedjoin_np(t, NULL, deadline);

    if (r == 0)
        return true;
    log_warning("the %s thread is stuck (in NVML?), exiting without it", what);
    return false;
}

void agent_stop_threads(struct agent *a)
{
    struct timespec deadline;
    bool ok = true;

    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    /* A thread inside a hung NVML call never returns: wait a while, then leave it (and what it
     * uses) alone rather than hang the shutdown until systemd's SIGKILL. */
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 3;
    if (a->workers_started)
        ok = join_by(a->workers_thread, &deadline, "workers") && ok;
    if (a->health_started)
        ok = join_by(a->health_thread, &deadline, "health") && ok;
    if (a->collect_started)
        ok = join_by(a->collect_thread, &deadline, "collect") && ok;
    a->workers_started = a->health_started = a->collect_started = false;
    a->threads_stuck = a->threads_stuck || !ok;
}

void agent_release(struct agent *a)
{
    if (!a->cfg)
        return;
    agent_stop_threads(a);
    if (a->threads_stuck)
        return; /* a stuck thread may still use all of it; the process is about to exit */
    a->snap = gpu_snapshot_free(a->snap);
    a->nvml = nvml_close(a->nvml);
    free(a->gpus);
    a->gpus = NULL;
    a->n_gpus = 0;
    free(a->api_token);
    a->api_token = NULL;
    a->discovered_fd = fd_close(a->discovered_fd);
    if (a->metrics_cache) {
        buf_release(a->metrics_cache);
        free(a->metrics_cache);
        a->metrics_cache = NULL;
    }
    (void)pthread_cond_destroy(&a->cond);
    (void)pthread_mutex_destroy(&a->action_lock);
    (void)pthread_mutex_destroy(&a->lock);
    a->cfg = NULL;
}
