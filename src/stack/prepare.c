/* SPDX-License-Identifier: MIT */
/* prepare.c - stack_prepare_service(): a service's directories and rendered files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg/cfg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "stack.h"
#include "stack_int.h"

struct owner {
    bool chown;
    uid_t uid;
    gid_t gid;
};

static int lookup_owner(const struct stack *s, const struct stack_service *svc, struct owner *ret,
                        struct err *reterr)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int r;

    *ret = (struct owner){ .chown = false };
    if (!svc->user || geteuid() != 0)
        return 0;
    r = getpwnam_r(svc->user, &pw, buf, sizeof buf, &res);
    if (r != 0 || !res) {
        err_set_file(reterr, s->path);
        if (r != 0)
            return err_set(reterr, -r, svc->line, 0, "services.%s.user: cannot look up '%s': %s",
                           svc->name, svc->user, strerror(r));
        return err_set(reterr, -EINVAL, svc->line, 0, "services.%s.user: user '%s' does not exist",
                       svc->name, svc->user);
    }
    *ret = (struct owner){ .chown = true, .uid = pw.pw_uid, .gid = pw.pw_gid };
    return 0;
}

/* mkdir -p with mode 0700; the components it creates are chowned to the owner.  With leaf,
 * an existing last component is chmod'ed to 0700 and chowned too (it is the service's). */
static int ensure_dir(const char *path, const struct owner *o, bool leaf)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    struct stat st;

    if (n == 0 || n >= sizeof p || path[0] != '/')
        return -EINVAL;
    memcpy(p, path, n + 1);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *c = p + 1;; c++) {
        bool last = *c == '\0';

        if (!last && *c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0700) == 0) {
            if (o->chown && lchown(p, o->uid, o->gid) < 0)
                return -errno;
        } else if (errno != EEXIST) {
            return -errno;
        } else if (last) {
            bool link;

            if (lstat(p, &st) < 0)
                return -errno;
            link = S_ISLNK(st.st_mode);
            if (link && stat(p, &st) < 0)
                return -errno;
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
            /* a symlinked dir is the admin's choice: never chmod/chown through it (the
             * service user could have planted it) */
            if (leaf && !link && chmod(p, 0700) < 0)
                return -errno;
            if (leaf && !link && o->chown && lchown(p, o->uid, o->gid) < 0)
                return -errno;
        }
        if (last)
            return 0;
        *c = '/';
    }
}

static int render(const struct stack *s, const struct stack_service *svc,
                  const struct stack_file *f, const struct stack_vars *vars, const struct owner *o,
                  struct err *reterr)
{
    struct buf tmpl = BUF_INIT(CFG_MAX_BYTES), out = BUF_INIT(STACK_EXPAND_MAX);
    struct err e = ERR_INIT;
    struct stat st;
    char *parent = NULL, *slash;
    int r;

    if (!f->overwrite && lstat(f->path, &st) == 0)
        return 0; /* kept: the service may have rewritten it (sentinel.conf) */
    r = file_read_all(f->template_path, &tmpl);
    if (r < 0) {
        err_set_file(reterr, f->template_path);
        r = err_set(reterr, r, 0, 0, "services.%s: cannot read template: %s", svc->name,
                    r == -ENOBUFS ? "larger than 1 MiB" : strerror(-r));
        goto out;
    }
    if (tmpl.len && memchr(tmpl.data, '\0', tmpl.len)) {
        err_set_file(reterr, f->template_path);
        r = err_set(reterr, -EINVAL, 0, 0, "services.%s: template contains a NUL byte", svc->name);
        goto out;
    }
    /* Files copied as they are (scripts, SQL) keep their own ${...} syntax. */
    r = f->expand ? stack_expand(s, vars, buf_str(&tmpl), &out, &e)
                  : buf_append(&out, tmpl.data ? tmpl.data : "", tmpl.len);
    if (r < 0) {
        err_set_file(reterr, f->template_path);
        r = err_set(reterr, r, e.line, e.col, "services.%s: %s", svc->name, e.msg);
        goto out;
    }
    parent = xstrdup(f->path);
    slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        r = ensure_dir(parent, o, false);
        if (r < 0) {
            err_set_file(reterr, parent);
            r = err_set(reterr, r, 0, 0, "services.%s: cannot create directory: %s", svc->name,
                        strerror(-r));
            goto out;
        }
    }
    r = file_write_atomic_opts(
            f->path, buf_str(&out), out.len,
            &(struct file_write_opts){
                    .mode = (mode_t)f->mode, .chown = o->chown, .uid = o->uid, .gid = o->gid });
    if (r < 0) {
        err_set_file(reterr, f->path);
        r = err_set(reterr, r, 0, 0, "services.%s: cannot write rendered file: %s", svc->name,
                    strerror(-r));
        goto out;
    }
out:
    if (out.data)
        explicit_bzero(out.data, out.len); /* may hold secrets */
    buf_release(&out);
    buf_release(&tmpl);
    free(parent);
    return r;
}

int stack_prepare_service(const struct stack *s, const struct stack_service *svc,
                          const struct stack_vars *vars, struct err *reterr)
{
    struct owner o;
    int r;

    if (!s->resolved) {
        err_set_file(reterr, s->path);
        return err_set(reterr, -EINVAL, 0, 0, "services.%s: the stack is not resolved", svc->name);
    }
    r = lookup_owner(s, svc, &o, reterr);
    if (r < 0)
        return r;
    for (size_t i = 0; svc->dirs && svc->dirs[i]; i++) {
        r = ensure_dir(svc->dirs[i], &o, true);
        if (r < 0) {
            err_set_file(reterr, svc->dirs[i]);
            return err_set(reterr, r, 0, 0, "services.%s.dirs[%zu]: cannot create directory: %s",
                           svc->name, i, strerror(-r));
        }
    }
    for (size_t i = 0; i < svc->n_files; i++) {
        r = render(s, svc, &svc->files[i], vars, &o, reterr);
        if (r < 0)
            return r;
    }
    return 0;
}
