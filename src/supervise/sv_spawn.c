/* SPDX-License-Identifier: MIT */
/* Spawning a service: everything (path, argv, envp, ids) is prepared before fork(); the child
 * makes only async-signal-safe calls between fork() and execve() and reports a failure through
 * a CLOEXEC pipe (EOF on that pipe means exec succeeded). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fd.h"
#include "core/str.h"
#include "supervise.h"
#include "sv_int.h"

#define SV_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool is_exec_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* First PATH entry holding an executable regular file `name` (caller frees), or NULL. */
static char *search_path(const char *name, const char *path_var)
{
    const char *p = path_var;

    while (*p) {
        size_t len = strcspn(p, ":");
        char *cand = xasprintf("%.*s/%s", (int)len, len ? p : ".", name);

        if (is_exec_file(cand))
            return cand;
        free(cand);
        p += len;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* The value of KEY in a NULL-terminated "KEY=VALUE" list, or NULL. */
static const char *env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);

    for (; env && *env; env++)
        if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
            return *env + klen + 1;
    return NULL;
}

static bool env_has_key(char *const *env, const char *kv)
{
    size_t klen = strcspn(kv, "=");

    for (; env && *env; env++)
        if (strncmp(*env, kv, klen) == 0 && (*env)[klen] == '=')
            return true;
    return false;
}

/* Resolves command[0] the way execvp() would, but before fork(): names without '/' are looked
 * up on the service's PATH (its own PATH= when it sets one). */
static char *resolve_command(const struct sv_service *svc)
{
    const char *path_var;
    char *found;

    if (strchr(svc->argv[0], '/'))
        return xstrdup(svc->argv[0]);
    path_var = env_get(svc->env, "PATH");
    found = search_path(svc->argv[0], path_var ? path_var : SV_DEFAULT_PATH);
    /* Not found: keep the name, execve() fails with ENOENT and the failure is reported once. */
    return found ? found : xstrdup(svc->argv[0]);
}

int sv__spawn_plan(const struct sv_service *svc, const char *state_dir,
                   struct sv_spawn_plan *ret_plan, char *reterr_msg, size_t msg_size)
{
    struct sv_spawn_plan plan = { 0 };
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    char *base[4];
    size_t nbase = 0, nenv = 0, k = 0;
    int r;

    if (svc->user && geteuid() == 0) {
        r = getpwnam_r(svc->user, &pw, pwbuf, sizeof pwbuf, &pwp);
        if (r != 0 || !pwp) {
            (void)snprintf(reterr_msg, msg_size, "user '%s' does not exist", svc->user);
            return r != 0 ? -r : -ENOENT;
        }
        plan.drop = true;
        plan.uid = pw.pw_uid;
        plan.gid = pw.pw_gid;
        plan.n_groups = 16;
        for (;;) {
            int n = plan.n_groups;

            plan.groups = xrealloc(plan.groups, (size_t)n * sizeof(gid_t));
            if (getgrouplist(pw.pw_name, pw.pw_gid, plan.groups, &n) >= 0) {
                plan.n_groups = n;
                break;
            }
            if (n <= plan.n_groups || n > 65536) {
                (void)snprintf(reterr_msg, msg_size, "cannot list the groups of user '%s'",
                               svc->user);
                free(plan.groups);
                return -EINVAL;
            }
            plan.n_groups = n;
        }
    } else {
        r = getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp);
        if (r != 0)
            pwp = NULL;
    }

    base[nbase++] = xstrdup("PATH=" SV_DEFAULT_PATH);
    base[nbase++] = xstrdup("LANG=C.UTF-8");
    base[nbase++] = xasprintf("HOME=%s", pwp && pwp->pw_dir[0] ? pwp->pw_dir : "/");
    if (pwp)
        base[nbase++] = xasprintf("USER=%s", pwp->pw_name);
    for (char *const *e = svc->env; e && *e; e++)
        nenv++;
    plan.envp = xcalloc(nbase + nenv + 2, sizeof(char *));
    /* The service's own environment wins over the defaults. */
    for (size_t i = 0; i < nbase; i++) {
        if (env_has_key(svc->env, base[i]))
            free(base[i]);
        else
            plan.envp[k++] = base[i];
    }
    for (size_t i = 0; i < nenv; i++)
        if (!str_startswith(svc->env[i], SV_SERVICE_ENV "="))
            plan.envp[k++] = xstrdup(svc->env[i]);
    /* The mark by which the supervisor finds every process of the service (sv_tree.c). */
    plan.envp[k++] = xasprintf(SV_SERVICE_ENV "=%s", svc->name);
    plan.envp[k] = NULL;

    plan.path = resolve_command(svc);
    plan.argv = svc->argv;
    plan.dir = xstrdup(svc->working_dir ? svc->working_dir : state_dir);
    plan.netns = svc->netns ? xasprintf("/run/netns/%s", svc->netns) : NULL;
    *ret_plan = plan;
    return 0;
}

void sv__spawn_plan_release(struct sv_spawn_plan *plan)
{
    if (!plan)
        return;
    for (char **e = plan->envp; e && *e; e++)
        free(*e);
    free(plan->envp);
    free(plan->path);
    free(plan->dir);
    free(plan->netns);
    free(plan->groups);
    *plan = (struct sv_spawn_plan){ 0 };
}

/* Moves fd to 3 or above so dup3() onto 0/1/2 in the child never clobbers it (and never gets
 * oldfd == newfd, which dup3() refuses). */
static int fd_above_stdio(int fd)
{
    int n;

    if (fd > 2)
        return fd;
    n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    (void)close(fd);
    return n;
}

static void NORETURN child_exec(const struct sv_spawn_plan *plan, int null_fd, int out_fd,
                                int report_fd, pid_t parent)
{
    struct sigaction sa;
    struct sv_exec_report rep = { .stage = SV_EXEC_STAGE_SETUP, .err = 0 };
    sigset_t none;

    if (setsid() < 0)
        goto fail;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, RT internals */
    (void)sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        goto fail;
    /* Flags 0: these three are meant to survive execve(). */
    if (dup3(null_fd, 0, 0) < 0 || dup3(out_fd, 1, 0) < 0 || dup3(out_fd, 2, 0) < 0)
        goto fail;
    /* Nothing else crosses execve(): libraries in the supervisor's other threads open fds
     * without O_CLOEXEC (librdkafka's broker wakeup pipes, during a kafka probe).  Kernels
     * before 5.11 refuse the flag; then only our own fds are known to be CLOEXEC. */
    (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    /* The network namespace needs CAP_SYS_ADMIN: before the credential change. */
    rep.stage = SV_EXEC_STAGE_NETNS;
    if (plan->netns) {
        int ns = open(plan->netns, O_RDONLY | O_CLOEXEC);

        if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
            goto fail;
        (void)close(ns);
    }

    rep.stage = SV_EXEC_STAGE_CREDS;
    if (plan->drop) {
        if (setgroups((size_t)plan->n_groups, plan->groups) < 0 || setgid(plan->gid) < 0 ||
            setuid(plan->uid) < 0)
            goto fail;
    }
    /* After the credential change, which clears the parent-death signal. */
    rep.stage = SV_EXEC_STAGE_SETUP;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        goto fail;
    if (getppid() != parent) {
        errno = ESRCH; /* the supervisor died before PR_SET_PDEATHSIG took effect */
        goto fail;
    }

    rep.stage = SV_EXEC_STAGE_CHDIR;
    if (chdir(plan->dir) < 0)
        goto fail;

    rep.stage = SV_EXEC_STAGE_EXEC;
    (void)execve(plan->path, plan->argv, plan->envp);
fail:
    rep.err = errno;
    (void)!write(report_fd, &rep, sizeof rep);
    _exit(127);
}

int sv__spawn(const struct sv_spawn_plan *plan, pid_t *ret_pid, int *ret_out_fd, int *ret_exec_fd)
{
    int out[2] = { -1, -1 }, rep[2] = { -1, -1 }, null_fd = -1;
    pid_t parent = getpid(), pid;
    int r;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        r = -errno;
        goto fail;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (null_fd < 0) {
        r = -errno;
        goto fail;
    }
    /* O_NONBLOCK lives in the open file description: setting it on the read ends leaves the
     * service's stdout blocking. */
    r = fd_set_nonblock(out[0], true);
    if (r >= 0)
        r = fd_set_nonblock(rep[0], true);
    if (r < 0)
        goto fail;
    out[1] = fd_above_stdio(out[1]);
    rep[1] = fd_above_stdio(rep[1]);
    null_fd = fd_above_stdio(null_fd);
    if (out[1] < 0 || rep[1] < 0 || null_fd < 0) {
        r = -EMFILE;
        goto fail;
    }

    pid = fork();
    if (pid < 0) {
        r = -errno;
        goto fail;
    }
    if (pid == 0)
        child_exec(plan, null_fd, out[1], rep[1], parent);

    out[1] = fd_close(out[1]);
    rep[1] = fd_close(rep[1]);
    null_fd = fd_close(null_fd);
    *ret_pid = pid;
    *ret_out_fd = out[0];
    *ret_exec_fd = rep[0];
    return 0;

fail:
    fd_close(out[0]);
    fd_close(out[1]);
    fd_close(rep[0]);
    fd_close(rep[1]);
    fd_close(null_fd);
    return r;
}
