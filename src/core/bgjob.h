/* SPDX-License-Identifier: MIT */
/* bgjob.h - one blocking call in a detached thread, which its starter may stop waiting for.
 *
 * For calls that cannot be cancelled and may outlive any deadline (librdkafka's): the starter
 * waits as long as it chooses (bgjob_wait(), or poll() on the job's fd), then releases its end.
 * A job still running then is abandoned: its thread frees the argument when the call returns.
 * The thread is detached, never joined, so releasing never blocks behind a hung peer.
 *
 * Ownership: arg belongs to the job from bgjob_start() on, and free_arg frees it with the
 * job's last reference (at once when starting fails).  The thread runs run(arg) and touches
 * arg no more once run returns.  The starter keeps its own pointer to arg but reads it only
 * after bgjob_done() or bgjob_wait() said true, and not after bgjob_release(); it may move
 * results out of arg then (free_arg frees what is left).  One starter per job: the functions
 * below are not for several threads on the same job at once. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

struct bgjob;

typedef void (*bgjob_run_fn)(void *arg);
typedef void (*bgjob_free_fn)(void *arg);

/* Starts run(arg) in a detached thread that has every signal blocked from its first
 * instruction on (a process that reads signals through a signalfd gets every one, and threads
 * the call creates inherit the mask).  With ret_fd, *ret_fd is the read end (O_CLOEXEC,
 * O_NONBLOCK) of a pipe that becomes readable when run returns; the job owns it and
 * bgjob_release() closes it.  0, or -errno with arg freed, *ret NULL and *ret_fd -1. */
int bgjob_start(bgjob_run_fn run, void *arg, bgjob_free_fn free_arg, struct bgjob **ret,
                int *ret_fd) WARN_UNUSED_RESULT;
/* true once run(arg) has returned; never blocks. */
bool bgjob_done(struct bgjob *j);
/* Waits until run(arg) has returned (true) or CLOCK_MONOTONIC reaches deadline_usec (false). */
bool bgjob_wait(struct bgjob *j, uint64_t deadline_usec);
/* The starter's end: closes the fd, drops its reference; a job still running frees arg when
 * run returns.  NULL is fine.  Returns NULL, for `j = bgjob_release(j);`. */
struct bgjob *bgjob_release(struct bgjob *j);
