/* SPDX-License-Identifier: MIT */
/* bgjob.c - the job is shared by its thread and its starter, two references under one lock.
 * The thread stores "done" and writes the pipe's byte under the lock; the starter closes the
 * read end under the same lock, so the thread never writes to a closed pipe (no EPIPE, no
 * SIGPIPE) and the last reference, whichever side drops it, frees arg and the job. */
#include "bgjob.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fd.h"
#include "str.h"

struct bgjob {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled (under lock) when done is set */
    unsigned refs;       /* under lock: the starter's and the thread's */
    bool done;           /* under lock */
    bgjob_run_fn run;
    bgjob_free_fn free_arg;
    void *arg;
    int rfd; /* the starter's read end; closed under lock */
    int wfd; /* the thread's write end; used and closed by the thread only */
};

static void job_free(struct bgjob *j)
{
    if (j->free_arg)
        j->free_arg(j->arg);
    (void)fd_close(j->rfd);
    (void)fd_close(j->wfd);
    (void)pthread_cond_destroy(&j->cond);
    (void)pthread_mutex_destroy(&j->lock);
    free(j);
}

/* Drops one reference (lock held, released here); the last frees the job. */
static void unref_unlock(struct bgjob *j)
{
    bool last = --j->refs == 0;

    (void)pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

static void *job_thread(void *p)
{
    struct bgjob *j = p;

    j->run(j->arg);
    (void)pthread_mutex_lock(&j->lock);
    j->done = true;
    (void)pthread_cond_signal(&j->cond);
    /* One byte into an empty pipe never blocks; while the lock is held the starter cannot
     * close the read end. */
    if (j->rfd >= 0 && write(j->wfd, "", 1) < 0) {
    }
    j->wfd = fd_close(j->wfd);
    unref_unlock(j);
    return NULL;
}

static int job_init(struct bgjob *j)
{
    pthread_condattr_t ca;
    int r;

    r = -pthread_mutex_init(&j->lock, NULL);
    if (r < 0)
        return r;
    r = -pthread_condattr_init(&ca);
    if (r == 0) {
        r = -pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (r == 0)
            r = -pthread_cond_init(&j->cond, &ca);
        (void)pthread_condattr_destroy(&ca);
    }
    if (r < 0)
        (void)pthread_mutex_destroy(&j->lock);
    return r;
}

static int job_spawn(struct bgjob *j)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int r;

    r = -pthread_attr_init(&attr);
    if (r < 0)
        return r;
    r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (r == 0) {
        (void)sigfillset(&all);
        r = -pthread_sigmask(SIG_SETMASK, &all, &old);
        if (r == 0) {
            r = -pthread_create(&tid, &attr, job_thread, j);
            (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
    }
    (void)pthread_attr_destroy(&attr);
    return r;
}

int bgjob_start(bgjob_run_fn run, void *arg, bgjob_free_fn free_arg, struct bgjob **ret,
                int *ret_fd)
{
    struct bgjob *j = calloc(1, sizeof *j);
    int fds[2], r;

    *ret = NULL;
    if (ret_fd)
        *ret_fd = -1;
    r = j ? job_init(j) : -ENOMEM;
    if (r < 0) {
        if (free_arg)
            free_arg(arg);
        free(j);
        return r;
    }
    j->refs = 1;
    j->run = run;
    j->free_arg = free_arg;
    j->arg = arg;
    j->rfd = j->wfd = -1;
    if (ret_fd) {
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
            r = -errno;
            (void)pthread_mutex_lock(&j->lock);
            unref_unlock(j);
            return r;
        }
        j->rfd = fds[0];
        j->wfd = fds[1];
    }
    j->refs = 2;
    r = job_spawn(j);
    if (r < 0) {
        j->refs = 1;
        (void)pthread_mutex_lock(&j->lock);
        unref_unlock(j);
        return r;
    }
    *ret = j;
    if (ret_fd)
        *ret_fd = j->rfd;
    return 0;
}

bool bgjob_done(struct bgjob *j)
{
    bool done;

    (void)pthread_mutex_lock(&j->lock);
    done = j->done;
    (void)pthread_mutex_unlock(&j->lock);
    return done;
}

bool bgjob_wait(struct bgjob *j, uint64_t deadline_usec)
{
    struct timespec until = { .tv_sec = (time_t)(deadline_usec / USEC_PER_SEC),
                              .tv_nsec = (long)(deadline_usec % USEC_PER_SEC) * 1000 };
    bool done;

    (void)pthread_mutex_lock(&j->lock);
    while (!j->done && pthread_cond_timedwait(&j->cond, &j->lock, &until) != ETIMEDOUT)
        ;
    done = j->done;
    (void)pthread_mutex_unlock(&j->lock);
    return done;
}

struct bgjob *bgjob_release(struct bgjob *j)
{
    if (!j)
        return NULL;
    (void)pthread_mutex_lock(&j->lock);
    j->rfd = fd_close(j->rfd);
    unref_unlock(j);
    return NULL;
}
