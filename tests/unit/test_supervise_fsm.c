/* SPDX-License-Identifier: MIT */
/* The supervisor's transition table, driven directly with fake side effects: no fork, no
 * clock, no sleeping. */
#include <signal.h>
#include <sys/wait.h>

#include "core/str.h"
#include "supervise/supervise.h"
#include "supervise/sv_int.h"
#include "t.h"

#define SEC USEC_PER_SEC

struct fake {
    unsigned spawns, kills;
    int last_sig;
    int spawn_error; /* returned by the next spawns when < 0 */
    pid_t next_pid;
};

static int fake_spawn(struct sv_unit *u, void *userdata)
{
    struct fake *f = userdata;

    if (f->spawn_error < 0)
        return f->spawn_error;
    f->spawns++;
    u->pid = f->next_pid++;
    u->pgid = u->pid;
    return 0;
}

static void fake_kill(struct sv_unit *u, int sig, void *userdata)
{
    struct fake *f = userdata;

    (void)u;
    f->kills++;
    f->last_sig = sig;
}

static struct fake fake;
static const struct sv_ops ops = { .spawn = fake_spawn, .kill = fake_kill, .userdata = &fake };

static struct sv_service service(enum sv_restart restart)
{
    static char true_path[] = "/bin/true", name[] = "svc";
    static char *argv[] = { true_path, NULL };
    static char *env[] = { NULL };

    fake = (struct fake){ .next_pid = 1000 };
    return (struct sv_service){
        .name = name,
        .argv = argv,
        .env = env,
        .restart = restart,
        .backoff_initial_usec = 1 * SEC,
        .backoff_max_usec = 5 * SEC,
        .backoff_reset_usec = 60 * SEC,
        .stop_signal = SIGTERM,
        .stop_grace_usec = 10 * SEC,
    };
}

static void ev(struct sv_unit *u, enum sv_event e, int arg, uint64_t now)
{
    sv_fsm_dispatch(u, e, arg, now, &ops);
}

#define EXIT(code_)  ((code_) << 8) /* wait status of exit(code_) */
#define KILLED(sig_) (sig_)

/* Starts u at `now` through WAITING and STARTING into RUNNING. */
static void start_running(struct sv_unit *u, uint64_t now)
{
    ev(u, SV_EVENT_START, 0, now);
    ASSERT_EQ(u->state, SV_STATE_WAITING);
    ev(u, SV_EVENT_DEPS_MET, 0, now);
    ASSERT_EQ(u->state, SV_STATE_STARTING);
    ev(u, SV_EVENT_SPAWNED, 0, now);
    ASSERT_EQ(u->state, SV_STATE_RUNNING);
}

static void test_start_crash_backoff_doubles_and_caps(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;
    uint64_t t = 100 * SEC;
    const uint64_t expect[] = { 1, 2, 4, 5, 5 };

    sv_unit_init(&u, &svc, 0);
    start_running(&u, t);
    ASSERT_EQ(u.pid, 1000);
    ASSERT_EQ(u.spawns, 1);
    ASSERT_EQ(u.restarts, 0);
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
        t += 2 * SEC; /* ran 2s: not stable */
        ev(&u, SV_EVENT_EXITED, EXIT(1), t);
        ASSERT_EQ(u.state, SV_STATE_BACKOFF);
        ASSERT_EQ(u.pid, 0);
        ASSERT_EQ(fake.last_sig, SIGKILL); /* leftovers of the group are killed */
        ASSERT_EQ(u.timer_event, SV_EVENT_BACKOFF_DONE);
        ASSERT_EQ(u.timer_usec, t + expect[i] * SEC);
        ASSERT_EQ(u.failures, i + 1);
        t = u.timer_usec;
        ev(&u, SV_EVENT_BACKOFF_DONE, 0, t);
        ASSERT_EQ(u.state, SV_STATE_STARTING);
        ASSERT_EQ(u.restarts, i + 1);
        ev(&u, SV_EVENT_SPAWNED, 0, t);
    }
    ASSERT_TRUE(u.has_exited);
    ASSERT_EQ(u.exit_status, EXIT(1));
    /* A run longer than reset_after starts the backoff afresh. */
    t += 61 * SEC;
    ev(&u, SV_EVENT_EXITED, KILLED(SIGSEGV), t);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.failures, 1);
    ASSERT_EQ(u.timer_usec, t + 1 * SEC);
    ASSERT_EQ(u.bugs, 0);
}

/* A run the supervisor fenced (killed on purpose) is restarted like after a clean exit: no
 * failure counted, no growing backoff, however often it happens. */
static void test_fenced_run_does_not_grow_backoff(void)
{
    struct sv_service svc = service(SV_RESTART_ALWAYS);
    struct sv_unit u;
    uint64_t t = 100 * SEC;

    sv_unit_init(&u, &svc, 0);
    start_running(&u, t);
    for (int i = 0; i < 4; i++) {
        t += 2 * SEC;
        u.fenced = true;
        ev(&u, SV_EVENT_EXITED, KILLED(SIGKILL), t);
        ASSERT_EQ(u.state, SV_STATE_BACKOFF);
        ASSERT_EQ(u.failures, 0);
        ASSERT_EQ(u.timer_usec, t); /* ran 2 s: the 1 s minimum gap is already over */
        u.fenced = false;           /* sv__fence_run_ended() clears it */
        ev(&u, SV_EVENT_BACKOFF_DONE, 0, t);
        ev(&u, SV_EVENT_SPAWNED, 0, t);
        ASSERT_EQ(u.state, SV_STATE_RUNNING);
    }
    /* The same SIGKILL from outside is a failure. */
    t += 2 * SEC;
    ev(&u, SV_EVENT_EXITED, KILLED(SIGKILL), t);
    ASSERT_EQ(u.failures, 1);
    ASSERT_EQ(u.timer_usec, t + 1 * SEC);
    ASSERT_EQ(u.bugs, 0);
}

static void test_min_one_second_between_starts(void)
{
    struct sv_service svc = service(SV_RESTART_ALWAYS);
    struct sv_unit u;
    uint64_t t = 100 * SEC;

    sv_unit_init(&u, &svc, 0);
    start_running(&u, t);
    /* always + clean exit: no backoff growth, but never two starts within 1s. */
    ev(&u, SV_EVENT_EXITED, EXIT(0), t + 200000);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.failures, 0);
    ASSERT_EQ(u.timer_usec, t + 1 * SEC);
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, t + 1 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STARTING);
    /* A user restart right after a start waits for the 1s gap too. */
    ev(&u, SV_EVENT_SPAWNED, 0, t + 1 * SEC);
    ev(&u, SV_EVENT_RESTART_REQUEST, 0, t + 1 * SEC + 100000);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGTERM), t + 1 * SEC + 200000);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.timer_usec, t + 2 * SEC);
    ASSERT_EQ(fake.spawns, 2);
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, t + 2 * SEC);
    ASSERT_EQ(fake.spawns, 3);
    ASSERT_EQ(u.restarts, 2);
}

/* A proxy's restart_backoff.initial of 100 ms is also its start spacing: a crash after a long
 * run restarts it 100 ms later, a crash loop doubles from there; an initial above 1 s still
 * spaces starts by 1 s only. */
static void test_short_initial_backoff_spaces_starts_by_it(void)
{
    struct sv_service svc = service(SV_RESTART_ALWAYS);
    struct sv_unit u;
    uint64_t t = 100 * SEC;

    svc.backoff_initial_usec = SEC / 10;
    sv_unit_init(&u, &svc, 0);
    start_running(&u, t);
    t += 30 * SEC;
    ev(&u, SV_EVENT_EXITED, KILLED(SIGKILL), t);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.timer_usec, t + SEC / 10);
    t = u.timer_usec;
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, t);
    ev(&u, SV_EVENT_SPAWNED, 0, t);
    /* dies at once again: 200 ms, and a clean exit right after a start waits 100 ms */
    ev(&u, SV_EVENT_EXITED, KILLED(SIGKILL), t + 10000);
    ASSERT_EQ(u.timer_usec, t + 10000 + SEC / 5);
    t = u.timer_usec;
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, t);
    ev(&u, SV_EVENT_SPAWNED, 0, t);
    ev(&u, SV_EVENT_RESTART_REQUEST, 0, t + 10000);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGTERM), t + 20000);
    ASSERT_EQ(u.timer_usec, t + SEC / 10);

    svc = service(SV_RESTART_ALWAYS);
    svc.backoff_initial_usec = 2 * SEC;
    sv_unit_init(&u, &svc, 0);
    t = 200 * SEC;
    start_running(&u, t);
    ev(&u, SV_EVENT_RESTART_REQUEST, 0, t + 10000);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGTERM), t + 20000);
    ASSERT_EQ(u.timer_usec, t + 1 * SEC);
    ASSERT_EQ(u.bugs, 0);
}

static void test_clean_exit_on_failure_is_exited(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_EXITED, EXIT(0), 11 * SEC);
    ASSERT_EQ(u.state, SV_STATE_EXITED);
    ASSERT_EQ(u.timer_usec, 0);
    ASSERT_STREQ(sv_state_to_string(u.state), "exited");

    /* restart: no and a failure: failed, not restarted. */
    svc = service(SV_RESTART_NO);
    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_EXITED, EXIT(3), 11 * SEC);
    ASSERT_EQ(u.state, SV_STATE_FAILED);
    ASSERT_EQ(fake.spawns, 1);
}

static void test_max_restarts_gives_up(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;
    uint64_t t = 10 * SEC;

    svc.max_restarts = 3;
    sv_unit_init(&u, &svc, 0);
    start_running(&u, t);
    for (unsigned i = 1; i <= 3; i++) {
        t += SEC / 2;
        ev(&u, SV_EVENT_EXITED, EXIT(1), t);
        if (i == 3)
            break;
        ASSERT_EQ(u.state, SV_STATE_BACKOFF);
        t = u.timer_usec;
        ev(&u, SV_EVENT_BACKOFF_DONE, 0, t);
        ev(&u, SV_EVENT_SPAWNED, 0, t);
    }
    ASSERT_EQ(u.state, SV_STATE_FAILED);
    ASSERT_EQ(u.failures, 3);
    ASSERT_EQ(fake.spawns, 3);
    ASSERT_EQ(u.timer_usec, 0);
    /* A user start forgets the failures. */
    ev(&u, SV_EVENT_START, 0, t + SEC);
    ASSERT_EQ(u.state, SV_STATE_WAITING);
    ASSERT_EQ(u.failures, 0);
    ev(&u, SV_EVENT_DEPS_MET, 0, t + 2 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STARTING);
}

static void test_failed_exec_and_failed_spawn_count_as_failures(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    ev(&u, SV_EVENT_START, 0, 10 * SEC);
    ev(&u, SV_EVENT_DEPS_MET, 0, 10 * SEC);
    u.exec_errno = 2; /* the loop read an exec report */
    ev(&u, SV_EVENT_EXITED, EXIT(127), 10 * SEC);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.failures, 1);
    fake.spawn_error = -ENOENT; /* e.g. the user vanished */
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, u.timer_usec);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ASSERT_EQ(u.failures, 2);
    ASSERT_EQ(u.pid, 0);
}

static void test_stop_running_grace_then_kill(void)
{
    struct sv_service svc = service(SV_RESTART_ALWAYS);
    struct sv_unit u;

    svc.stop_signal = SIGINT;
    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_STOP_REQUEST, 0, 20 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ASSERT_EQ(fake.last_sig, SIGINT);
    ASSERT_EQ(u.timer_event, SV_EVENT_STOP_TIMEOUT);
    ASSERT_EQ(u.timer_usec, 30 * SEC);
    ev(&u, SV_EVENT_STOP_TIMEOUT, 0, 30 * SEC);
    ASSERT_EQ(fake.last_sig, SIGKILL);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGKILL), 30 * SEC + 1000);
    /* A requested stop never restarts, even with restart: always. */
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(u.timer_usec, 0);
    ASSERT_EQ(fake.spawns, 1);
}

static void test_stop_during_backoff_and_waiting(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_EXITED, EXIT(1), 11 * SEC);
    ASSERT_EQ(u.state, SV_STATE_BACKOFF);
    ev(&u, SV_EVENT_STOP_REQUEST, 0, 11 * SEC + 1);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(u.timer_usec, 0); /* the restart timer is gone */
    ASSERT_EQ(fake.spawns, 1);

    sv_unit_init(&u, &svc, 0);
    ev(&u, SV_EVENT_START, 0, 10 * SEC);
    ev(&u, SV_EVENT_STOP_REQUEST, 0, 10 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(u.bugs, 0);
}

static void test_restart_request_while_running(void)
{
    struct sv_service svc = service(SV_RESTART_NO);
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_RESTART_REQUEST, 0, 20 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPING);
    ASSERT_EQ(fake.last_sig, SIGTERM);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGTERM), 20 * SEC + 5000);
    ASSERT_EQ(u.state, SV_STATE_STARTING);
    ASSERT_EQ(u.restarts, 1);
    ASSERT_EQ(u.pid, 1001);
    /* A stop request during the restart's stop cancels the restart. */
    ev(&u, SV_EVENT_SPAWNED, 0, 21 * SEC);
    ev(&u, SV_EVENT_RESTART_REQUEST, 0, 30 * SEC);
    ev(&u, SV_EVENT_STOP_REQUEST, 0, 30 * SEC);
    ev(&u, SV_EVENT_EXITED, KILLED(SIGTERM), 31 * SEC);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
}

static void test_health(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;

    svc.health.present = true;
    svc.health.retries = 2;
    svc.health.start_period_usec = 5 * SEC;
    sv_unit_init(&u, &svc, 0);
    start_running(&u, 10 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_STARTING);
    /* Failures inside the start period do not count. */
    ev(&u, SV_EVENT_HEALTH_FAIL, 0, 11 * SEC);
    ev(&u, SV_EVENT_HEALTH_FAIL, 0, 12 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_STARTING);
    ASSERT_EQ(u.health_fails, 0);
    ev(&u, SV_EVENT_HEALTH_FAIL, 0, 16 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_STARTING);
    ev(&u, SV_EVENT_HEALTH_FAIL, 0, 17 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_UNHEALTHY);
    ev(&u, SV_EVENT_HEALTH_OK, 0, 18 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_HEALTHY);
    ASSERT_EQ(u.health_fails, 0);
    ev(&u, SV_EVENT_HEALTH_FAIL, 0, 19 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_HEALTHY); /* one failure < retries */
    /* Health is reported only: it never stops or restarts the service. */
    ASSERT_EQ(u.state, SV_STATE_RUNNING);
    ASSERT_EQ(fake.kills, 0);
    ev(&u, SV_EVENT_EXITED, EXIT(1), 20 * SEC);
    ASSERT_EQ(u.health, SV_HEALTH_NONE);
}

static void test_unexpected_pairs_are_ignored(void)
{
    struct sv_service svc = service(SV_RESTART_ON_FAILURE);
    struct sv_unit u;

    sv_unit_init(&u, &svc, 0);
    /* An exit without a process, a timer that was never set, health of a stopped service. */
    ev(&u, SV_EVENT_EXITED, EXIT(1), 10 * SEC);
    ev(&u, SV_EVENT_STOP_TIMEOUT, 0, 10 * SEC);
    ev(&u, SV_EVENT_HEALTH_OK, 0, 10 * SEC);
    ev(&u, SV_EVENT_DEPS_MET, 0, 10 * SEC);
    ASSERT_EQ(u.bugs, 4);
    ASSERT_EQ(u.state, SV_STATE_STOPPED);
    ASSERT_EQ(fake.spawns, 0);
    ASSERT_EQ(fake.kills, 0);
    ASSERT_FALSE(u.has_exited);
    start_running(&u, 10 * SEC);
    ev(&u, SV_EVENT_BACKOFF_DONE, 0, 11 * SEC);
    ASSERT_EQ(u.bugs, 5);
    ASSERT_EQ(u.state, SV_STATE_RUNNING);
    ASSERT_EQ(fake.spawns, 1);
}

static void test_table_is_total_over_states(void)
{
    /* Every state accepts a stop request and a start (no stop or start ever hits the bug
     * path), and names exist for every state, event and health value. */
    for (int s = 0; s < _SV_STATE_MAX; s++) {
        ASSERT_TRUE(sv__transitions[s][SV_EVENT_STOP_REQUEST] != NULL);
        ASSERT_TRUE(sv__transitions[s][SV_EVENT_START] != NULL);
        ASSERT_TRUE(strcmp(sv_state_to_string((enum sv_state)s), "invalid") != 0);
    }
    for (int e = 0; e < _SV_EVENT_MAX; e++)
        ASSERT_TRUE(strcmp(sv_event_to_string((enum sv_event)e), "invalid") != 0);
    ASSERT_STREQ(sv_health_to_string(SV_HEALTH_UNHEALTHY), "unhealthy");
}

static void test_format_exit(void)
{
    char buf[64];

    ASSERT_STREQ(sv_format_exit(buf, sizeof buf, EXIT(1)), "exit status 1");
    ASSERT_STREQ(sv_format_exit(buf, sizeof buf, KILLED(9)), "killed by signal 9");
}

T_MAIN(T_CASE(test_start_crash_backoff_doubles_and_caps),
       T_CASE(test_fenced_run_does_not_grow_backoff), T_CASE(test_min_one_second_between_starts),
       T_CASE(test_short_initial_backoff_spaces_starts_by_it),
       T_CASE(test_clean_exit_on_failure_is_exited), T_CASE(test_max_restarts_gives_up),
       T_CASE(test_failed_exec_and_failed_spawn_count_as_failures),
       T_CASE(test_stop_running_grace_then_kill), T_CASE(test_stop_during_backoff_and_waiting),
       T_CASE(test_restart_request_while_running), T_CASE(test_health),
       T_CASE(test_unexpected_pairs_are_ignored), T_CASE(test_table_is_total_over_states),
       T_CASE(test_format_exit))
