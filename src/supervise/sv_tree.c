/* SPDX-License-Identifier: MIT */
/* sv_tree.c - every process of a service, wherever it went.  Each service is spawned with
 * UT_SERVICE=<name> in its environment (sv_spawn.c), which everything it starts inherits, and
 * the supervisor is the child subreaper of them all.  A process belongs to the service when it
 * descends from the supervisor and
 *   - its /proc/PID/environ carries the mark (Patroni; the postmaster, in a session of its own);
 *   - or an ancestor's does (PostgreSQL's backends overwrite their environment block with their
 *     process title, so the mark only shows on the postmaster above them);
 *   - or an earlier scan found it and it still runs with the same start time (a backend left
 *     to us after its postmaster died: nothing above it carries the mark any more).
 * The unit remembers each scan for the next one; services that must be fenced refresh it
 * regularly (sv_fence.c), so orphans are known before they become orphans. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/str.h"
#include "supervise.h"
#include "sv_int.h"

struct proc_row {
    pid_t pid, ppid;
    uint64_t start; /* clock ticks after boot: tells a process from a later one with its pid */
    char state;
    signed char ours;   /* descends from the supervisor: -1 unknown, 0, 1 */
    signed char marked; /* environment carries the mark: -1 unread, 0, 1 */
    signed char member; /* belongs to the service: -1 unknown, 0, 1 */
};

/* Field n (1-based, as in proc(5)) of /proc/PID/stat after the "(comm)", into *ret. */
static int stat_field(const char *after_comm, unsigned n, const char **ret, size_t *ret_len)
{
    const char *p = after_comm;

    /* after_comm points at field 3 (state) */
    for (unsigned f = 3; f < n && *p; f++) {
        p += strcspn(p, " ");
        p += strspn(p, " ");
    }
    if (!*p)
        return -EPROTO;
    *ret = p;
    *ret_len = strcspn(p, " \n");
    return 0;
}

static int parse_num(const char *s, size_t len, int64_t *ret)
{
    char num[24];

    if (len == 0 || len >= sizeof num)
        return -EPROTO;
    memcpy(num, s, len);
    num[len] = '\0';
    return parse_i64(num, ret);
}

/* State, parent and start time of pid from /proc/PID/stat. */
static int read_stat(pid_t pid, struct proc_row *row)
{
    char path[64], buf[1024];
    const char *p, *f;
    size_t len;
    int64_t v;
    ssize_t n;
    int fd;

    (void)snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    fd_close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (!p || p[1] != ' ' || !p[2])
        return -EPROTO;
    p += 2;
    row->pid = pid;
    row->state = p[0];
    if (stat_field(p, 4, &f, &len) < 0 || parse_num(f, len, &v) < 0)
        return -EPROTO;
    row->ppid = (pid_t)v;
    if (stat_field(p, 22, &f, &len) < 0 || parse_num(f, len, &v) < 0 || v < 0)
        return -EPROTO;
    row->start = (uint64_t)v;
    return 0;
}

char sv__proc_state(pid_t pid)
{
    struct proc_row row;

    return pid > 0 && read_stat(pid, &row) == 0 ? row.state : '?';
}

/* True when the environment block of pid holds exactly "UT_SERVICE=<name>". */
static bool env_marked(pid_t pid, const char *name)
{
    char path[64], want[128];
    struct buf env = BUF_INIT(1u << 20);
    bool found = false;
    size_t wlen;

    wlen = (size_t)snprintf(want, sizeof want, SV_SERVICE_ENV "=%s", name) + 1; /* with NUL */
    if (wlen > sizeof want)
        return false;
    (void)snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    if (file_read_all(path, &env) >= 0 && env.len > 0) {
        for (size_t off = 0; off < env.len && !found;) {
            size_t l = strnlen(env.data + off, env.len - off);

            found = l + 1 == wlen && memcmp(env.data + off, want, wlen - 1) == 0;
            off += l + 1;
        }
    }
    buf_release(&env);
    return found;
}

static int cmp_pid(const void *a, const void *b)
{
    const struct proc_row *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

static struct proc_row *find_row(struct proc_row *rows, size_t n, pid_t pid)
{
    struct proc_row key = { .pid = pid };

    return n > 0 ? bsearch(&key, rows, n, sizeof *rows, cmp_pid) : NULL;
}

/* Whether row descends from self (memoized in row->ours along the chain). */
static bool ours(struct proc_row *rows, size_t n, struct proc_row *row, pid_t self)
{
    struct proc_row *chain[64];
    size_t depth = 0;
    bool mine = false;

    while (row && row->ours < 0 && depth < ARRAY_SIZE(chain)) {
        chain[depth++] = row;
        if (row->ppid == self) {
            mine = true;
            row = NULL;
            break;
        }
        row = row->ppid > 1 ? find_row(rows, n, row->ppid) : NULL;
    }
    if (row && row->ours >= 0)
        mine = row->ours == 1;
    for (size_t i = 0; i < depth; i++)
        chain[i]->ours = mine ? 1 : 0;
    return mine;
}

/* Whether row (one of ours) or an ancestor below the supervisor carries the mark. */
static bool member(struct proc_row *rows, size_t n, struct proc_row *row, pid_t self,
                   const char *name)
{
    if (row->member >= 0)
        return row->member == 1;
    if (row->marked < 0)
        row->marked = env_marked(row->pid, name) ? 1 : 0;
    if (row->marked) {
        row->member = 1;
    } else {
        struct proc_row *parent = row->ppid != self ? find_row(rows, n, row->ppid) : NULL;

        row->member = parent && parent->ours == 1 && member(rows, n, parent, self, name) ? 1 : 0;
    }
    return row->member == 1;
}

static bool was_known(const struct sv_proc *known, size_t n_known, const struct proc_row *row)
{
    for (size_t i = 0; i < n_known; i++)
        if (known[i].pid == row->pid && known[i].start == row->start)
            return true;
    return false;
}

/* The processes of service `name` below `self` (the supervisor), plus those of `known` that
 * still run with the same start time.  *ret (caller frees); returns the count or -errno. */
static int tree_scan(pid_t self, const char *name, const struct sv_proc *known, size_t n_known,
                     struct sv_proc **ret)
{
    struct proc_row *rows = NULL;
    struct sv_proc *out = NULL;
    size_t n = 0, cap = 0, k = 0;
    struct dirent *de;
    DIR *d;

    d = opendir("/proc");
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        struct proc_row row = { .ours = -1, .marked = -1, .member = -1 };
        int64_t pid;

        if (parse_i64(de->d_name, &pid) < 0 || pid <= 1 || pid == self)
            continue;
        if (read_stat((pid_t)pid, &row) < 0)
            continue; /* gone meanwhile */
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rows[n++] = row;
    }
    (void)closedir(d);
    if (n > 0)
        qsort(rows, n, sizeof *rows, cmp_pid);
    for (size_t i = 0; i < n; i++) {
        struct proc_row *row = &rows[i];

        /* Zombies are dead (only a parent's wait is missing) and have no environment left. */
        if (row->state == 'Z' || !ours(rows, n, row, self))
            continue;
        if (!member(rows, n, row, self, name) && !was_known(known, n_known, row))
            continue;
        out = xrealloc(out, (k + 1) * sizeof *out);
        out[k++] = (struct sv_proc){
            .pid = row->pid, .ppid = row->ppid, .state = row->state, .start = row->start
        };
    }
    free(rows);
    *ret = out;
    return (int)k;
}

int sv__tree_refresh(struct sv_unit *u)
{
    struct sv_proc *procs = NULL;
    int r = tree_scan(getpid(), u->svc->name, u->tree, u->n_tree, &procs);

    if (r < 0)
        return r;
    free(u->tree);
    u->tree = procs;
    u->n_tree = (size_t)r;
    return r;
}

int sv_service_processes(pid_t supervisor, const char *service, struct sv_process **ret)
{
    struct sv_proc *procs = NULL;
    struct sv_process *out;
    int r;

    if (supervisor <= 1 || !service)
        return -EINVAL;
    r = tree_scan(supervisor, service, NULL, 0, &procs);
    if (r < 0)
        return r;
    out = xcalloc((size_t)r + 1, sizeof *out);
    for (int i = 0; i < r; i++)
        out[i] = (struct sv_process){ .pid = procs[i].pid,
                                      .ppid = procs[i].ppid,
                                      .state = procs[i].state,
                                      .start = procs[i].start };
    free(procs);
    *ret = out;
    return r;
}

int sv__tree_kill(struct sv_unit *u, int sig)
{
    int r, signalled = 0;

    r = sv__tree_refresh(u);
    if (r < 0)
        return r;
    for (size_t i = 0; i < u->n_tree; i++)
        if (kill(u->tree[i].pid, sig) == 0)
            signalled++;
    return signalled;
}
