/* SPDX-License-Identifier: MIT */
/* t.h - tiny in-tree test harness: TAP output, each case in its own forked process with a
 * timeout, assertions that print both values and file:line.
 *
 *   static void test_parse(void) { ASSERT_EQ(parse(), 3); }
 *   T_MAIN(T_CASE(test_parse), T_CASE(test_other))
 *
 * A case that cannot run calls T_SKIP("PostgreSQL 15 is not installed"); the executable then
 * exits with ctest's skip code (T_SKIP_CODE, registered as SKIP_RETURN_CODE for every test by
 * cmake/Tests.cmake) unless another case failed, so a case that never ran is never a pass.
 */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct t_case {
    const char *name;
    void (*fn)(void);
};

#define T_CASE(fn_) \
    {               \
#fn_, fn_   \
    }

#define T_FAIL(...)                                       \
    do {                                                  \
        fprintf(stderr, "# %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                     \
        fprintf(stderr, "\n");                            \
        exit(1);                                          \
    } while (0)

#define T_SKIP_CODE 77

#define T_SKIP(...)                   \
    do {                              \
        fprintf(stdout, "# SKIP: ");  \
        fprintf(stdout, __VA_ARGS__); \
        fprintf(stdout, "\n");        \
        fflush(stdout);               \
        _exit(T_SKIP_CODE);           \
    } while (0)

#define ASSERT_TRUE(c_)                       \
    do {                                      \
        if (!(c_))                            \
            T_FAIL("expected true: %s", #c_); \
    } while (0)

#define ASSERT_FALSE(c_) ASSERT_TRUE(!(c_))

#define ASSERT_EQ(a_, b_)                                       \
    do {                                                        \
        intmax_t a__ = (intmax_t)(a_), b__ = (intmax_t)(b_);    \
        if (a__ != b__)                                         \
            T_FAIL("%s == %s: %jd != %jd", #a_, #b_, a__, b__); \
    } while (0)

#define ASSERT_NE(a_, b_)                                    \
    do {                                                     \
        intmax_t a__ = (intmax_t)(a_), b__ = (intmax_t)(b_); \
        if (a__ == b__)                                      \
            T_FAIL("%s != %s: both %jd", #a_, #b_, a__);     \
    } while (0)

#define ASSERT_GE(a_, b_)                                      \
    do {                                                       \
        intmax_t a__ = (intmax_t)(a_), b__ = (intmax_t)(b_);   \
        if (!(a__ >= b__))                                     \
            T_FAIL("%s >= %s: %jd < %jd", #a_, #b_, a__, b__); \
    } while (0)

#define ASSERT_LE(a_, b_) ASSERT_GE(b_, a_)

#define ASSERT_OK(r_)                                                     \
    do {                                                                  \
        intmax_t r__ = (intmax_t)(r_);                                    \
        if (r__ < 0)                                                      \
            T_FAIL("%s failed: %jd (%s)", #r_, r__, strerror((int)-r__)); \
    } while (0)

#define ASSERT_ERRNO(r_, e_)                                                                  \
    do {                                                                                      \
        intmax_t r__ = (intmax_t)(r_), e__ = (intmax_t)(e_);                                  \
        if (r__ != e__)                                                                       \
            T_FAIL("%s: expected %jd (%s), got %jd (%s)", #r_, e__, strerror((int)-e__), r__, \
                   r__ < 0 ? strerror((int)-r__) : "success");                                \
    } while (0)

#define ASSERT_STREQ(a_, b_)                                                     \
    do {                                                                         \
        const char *a__ = (a_), *b__ = (b_);                                     \
        if (!a__ || !b__ || strcmp(a__, b__) != 0)                               \
            T_FAIL("%s == %s: \"%s\" != \"%s\"", #a_, #b_, a__ ? a__ : "(null)", \
                   b__ ? b__ : "(null)");                                        \
    } while (0)

#define ASSERT_CONTAINS(hay_, needle_)                                           \
    do {                                                                         \
        const char *h__ = (hay_), *n__ = (needle_);                              \
        if (!h__ || !strstr(h__, n__))                                           \
            T_FAIL("\"%s\" does not contain \"%s\"", h__ ? h__ : "(null)", n__); \
    } while (0)

static int t__run(const struct t_case *cases, size_t n, int argc, char **argv)
{
    unsigned timeout = 30, passed = 0, failed = 0, skipped = 0, ran = 0;
    const char *env = getenv("T_TIMEOUT");

    if (env && atoi(env) > 0) /* NOLINT: test-only */
        timeout = (unsigned)atoi(env);
    (void)signal(SIGPIPE, SIG_IGN);
    printf("TAP version 13\n1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        int status = 0;
        pid_t pid;

        if (argc > 1 && !strstr(cases[i].name, argv[1])) {
            printf("ok %zu - %s # SKIP filtered\n", i + 1, cases[i].name);
            continue;
        }
        fflush(stdout);
        ran++;
        pid = fork();
        if (pid == 0) {
            (void)setpgid(0, 0);
            alarm(timeout);
            cases[i].fn();
            fflush(NULL);
            _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        (void)kill(-pid, SIGKILL); /* helpers a failed case left behind */
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok %zu - %s\n", i + 1, cases[i].name);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == T_SKIP_CODE) {
            skipped++;
            printf("ok %zu - %s # SKIP\n", i + 1, cases[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("not ok %zu - %s # signal %d%s\n", i + 1, cases[i].name, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
            else
                printf("not ok %zu - %s\n", i + 1, cases[i].name);
        }
    }
    printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
    if (failed || !ran)
        return 1;
    return skipped ? T_SKIP_CODE : 0;
}

#define T_MAIN(...)                                                       \
    int main(int argc, char **argv)                                       \
    {                                                                     \
        static const struct t_case cases[] = { __VA_ARGS__ };             \
        return t__run(cases, sizeof cases / sizeof cases[0], argc, argv); \
    }
