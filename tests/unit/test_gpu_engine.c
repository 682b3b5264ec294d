/* SPDX-License-Identifier: MIT */
/* What gpu_agent needs from the supervision engine, at the transition-table level with fake
 * side effects: a stop with its own signal, grace and target (drain now / drain later), and
 * the escalation of a gentle stop in progress by a hard one. */
#include <signal.h>
#include <sys/wait.h>

#include "core/str.h"
#include "supervise/supervise.h"
#include "supervise/sv_int.h"
#include "t.h"

#define SEC USEC_PER_SEC

struct fake {
    unsigned kills, main_kills;
    int last_sig, last_main_sig;
    pid_t next_pid;
};

static struct fake fake;

static int fake_spawn(struct sv_unit *u, void *userdata)
{
    (void)userdata;
    u->pid = fake.next_pid++;
    u->pgid = u->pid;
    return 0;
}

static void fake_kill(struct sv_unit *u, int sig, void *userdata)
{
    (void)u;
    (void)userdata;
    fake.kills++;
    fake.last_sig = sig;
}

static void fake_kill_main(struct sv_unit *u, int sig, void *userdata)
{
    (void)u;
    (void)userdata;
    fake.main_kills++;
    fake.last_main_sig = sig;
}

static const struct sv_ops ops = {
    .spawn = fake_spawn, .kill = fake_kill, .kill_main = fake_kill_main, .userdata = NULL
};

static struct sv_service worker(void)
{
    static char path[] = "/bin/sleep", name[] = "gpu0";
    static char *argv[] = { path, NULL };
    static char *env[] = { NULL };

    fake = (struct fake){ .next_pid = 4000 };
    return (struct sv_service){
        .name = name,
        .argv = argv,
        .env = env,
        .restart = SV_RESTART_ALWAYS,
        .backoff_initial_usec = 1 * SEC,
        .backoff_max_usec = 30 * SEC,
        .backoff_reset_usec = 60 * SEC,
        .stop_signal = SIGTERM,
        .stop_grace_usec = 10 * SEC,
    };
}

static void ev(struct sv_unit *u, enum sv_event e, int arg, uint64_t now)
{
    sv_fsm_dispatch(u, e, arg, now, &ops);
}

static void run(struct sv_unit *u, uint64_t now)
{
    ev(u, SV_EVENT_START, 0, now);
    ev(u, SV_EVENT_DEPS_MET, 0, now);
    ev(u, SV_EVENT_SPAWNED, 0, now);
    ASSERT_EQ(u->state, SV_STATE_RUNNING);
}

static void stop(struct sv_unit *u, struct sv_stop_request q, uint64_t now)
{
    u->stop_req = q;
    ev(u, SV_EVENT_STOP_REQUEST, 0, now);
    u->stop_req = (struct sv_stop_request){ .set = false };
}

static void test_plain_stop_uses_the_service_settings(void)
{
    struct sv_service svc = worker();
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    run(&u, 100 * SEC);
    stop(&u, (struct sv_stop_request){ .set = false }, 101 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ASSERT_EQ(fake.kills, 1);
    ASSERT_EQ(fake.last_sig, SIGTERM);
    ASSERT_EQ(fake.main_kills, 0);
    ASSERT_EQ(u.timer_usec, 111 * SEC);
    ev(&u, SV_EVENT_EXITED, SIGTERM, 102 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPED); /* a requested stop never restarts */
    ASSERT_EQ(u.bugs, 0);
}

static void test_drain_later_then_fail_now_escalates(void)
{
    struct sv_service svc = worker();
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    run(&u, 100 * SEC);
    /* Drain later: SIGTERM to the main process only (a Celery warm shutdown lets the running
     * task finish), with a long grace. */
    stop(&u,
         (struct sv_stop_request){
                 .set = true, .sig = SIGTERM, .grace_usec = 3600 * SEC, .main_only = true },
         101 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ASSERT_EQ(fake.main_kills, 1);
    ASSERT_EQ(fake.last_main_sig, SIGTERM);
    ASSERT_EQ(fake.kills, 0);
    ASSERT_EQ(u.timer_usec, 3701 * SEC);
    /* A plain stop meanwhile changes nothing. */
    stop(&u, (struct sv_stop_request){ .set = false }, 102 * SEC);
    ASSERT_EQ(fake.kills + fake.main_kills, 1);
    ASSERT_EQ(u.timer_usec, 3701 * SEC);
    /* Fail now: the whole group gets the signal at once and the shorter grace wins. */
    stop(&u, (struct sv_stop_request){ .set = true, .sig = SIGQUIT, .grace_usec = 5 * SEC },
         200 * SEC);
    ASSERT_EQ(fake.kills, 1);
    ASSERT_EQ(fake.last_sig, SIGQUIT);
    ASSERT_EQ(u.timer_usec, 205 * SEC);
    ASSERT_EQ(u.stop_grace_usec, 5 * SEC);
    /* ... and a longer grace never extends a shorter one. */
    stop(&u, (struct sv_stop_request){ .set = true, .grace_usec = 60 * SEC }, 201 * SEC);
    ASSERT_EQ(fake.kills, 2);
    ASSERT_EQ(fake.last_sig, SIGTERM);
    ASSERT_EQ(u.timer_usec, 205 * SEC);
    ev(&u, SV_EVENT_STOP_TIMEOUT, 0, 205 * SEC);
    ASSERT_EQ(fake.last_sig, SIGKILL);
    ev(&u, SV_EVENT_EXITED, SIGKILL, 205 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(u.bugs, 0);
}

static void test_stop_in_backoff_and_start_again(void)
{
    struct sv_service svc = worker();
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    run(&u, 100 * SEC);
    ev(&u, SV_EVENT_EXITED, 1 << 8, 101 * SEC); /* crashed: restart pending */
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    stop(&u, (struct sv_stop_request){ .set = true, .sig = SIGTERM, .grace_usec = SEC }, 101 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(u.timer_usec, 0);
    /* Undrain: a start brings it back. */
    ev(&u, SV_EVENT_START, 0, 300 * SEC);
    ev(&u, SV_EVENT_DEPS_MET, 0, 300 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STARTING);
    ASSERT_EQ(u.restarts, 1);
    ASSERT_EQ(u.bugs, 0);
}

T_MAIN(T_CASE(test_plain_stop_uses_the_service_settings),
       T_CASE(test_drain_later_then_fail_now_escalates),
       T_CASE(test_stop_in_backoff_and_start_again))
