/* SPDX-License-Identifier: MIT */
/* secrets.c - generate, store and load the stack's secrets (never logged). */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/str.h"
#include "stack.h"

#define SECRET_FILE_MAX 4096u

struct stack_secrets {
    size_t n;
    char **names;
    char **values;
};

struct stack_secrets *stack_secrets_free(struct stack_secrets *ss)
{
    if (!ss)
        return NULL;
    for (size_t i = 0; i < ss->n; i++) {
        free(ss->names[i]);
        if (ss->values[i]) {
            explicit_bzero(ss->values[i], strlen(ss->values[i]));
            free(ss->values[i]);
        }
    }
    free(ss->names);
    free(ss->values);
    free(ss);
    return NULL;
}

const char *stack_secrets_lookup(const char *name, void *userdata)
{
    const struct stack_secrets *ss = userdata;

    if (!ss || !name)
        return NULL;
    for (size_t i = 0; i < ss->n; i++)
        if (streq(ss->names[i], name))
            return ss->values[i];
    return NULL;
}

/* 32 uniformly distributed [A-Za-z0-9] characters (rejection sampling: bytes >= 248 are
 * dropped so that each of the 62 characters is equally likely). */
static int generate(char out[STACK_SECRET_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[64];
    size_t n = 0;

    while (n < STACK_SECRET_LEN) {
        ssize_t got = getrandom(rnd, sizeof rnd, 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (ssize_t i = 0; i < got && n < STACK_SECRET_LEN; i++)
            if (rnd[i] < 248)
                out[n++] = alphabet[rnd[i] % 62];
    }
    out[n] = '\0';
    explicit_bzero(rnd, sizeof rnd);
    return 0;
}

static int read_secret(const char *path, char **ret)
{
    struct buf b = BUF_INIT(SECRET_FILE_MAX);
    int r;

    r = file_read_all(path, &b);
    if (r < 0)
        goto out;
    if (b.len > 0 && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    if (b.len == 0 || memchr(b.data, '\0', b.len)) {
        r = -EINVAL;
        goto out;
    }
    *ret = buf_detach(&b, NULL);
out:
    if (b.data)
        explicit_bzero(b.data, b.cap);
    buf_release(&b);
    return r;
}

int stack_secrets_ensure_err(const struct stack *s, const char *state_dir, bool create,
                             struct stack_secrets **ret, struct err *reterr)
{
    struct stack_secrets *ss = xcalloc(1, sizeof *ss);
    char *dir = NULL, *path = NULL;
    size_t n = 0;
    int r;

    while (s->secrets && s->secrets[n])
        n++;
    ss->names = xcalloc(n ? n : 1, sizeof *ss->names);
    ss->values = xcalloc(n ? n : 1, sizeof *ss->values);
    dir = xasprintf("%s/secrets", state_dir);
    if (create) {
        r = mkdir_p(dir, 0700);
        if (r == 0)
            r = ret_nerrno(chmod(dir, 0700));
        if (r < 0) {
            err_set_file(reterr, dir);
            r = err_set(reterr, r, 0, 0, "cannot create the secrets directory: %s", strerror(-r));
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = s->secrets[i];

        ss->names[i] = xstrdup(name);
        ss->n = i + 1;
        free(path);
        path = xasprintf("%s/%s", dir, name);
        r = read_secret(path, &ss->values[i]);
        if (r == -ENOENT && create) {
            char value[STACK_SECRET_LEN + 1];

            r = generate(value);
            if (r == 0)
                r = file_write_atomic_opts(
                        path, value, strlen(value),
                        &(struct file_write_opts){ .mode = 0600, .no_replace = true });
            explicit_bzero(value, sizeof value);
            if (r == 0 || r == -EEXIST) /* ours, or another `up` won the race: read it back */
                r = read_secret(path, &ss->values[i]);
        }
        if (r < 0) {
            err_set_file(reterr, path);
            if (r == -ENOENT)
                err_set(reterr, r, 0, 0, "secret '%s' does not exist", name);
            else if (r == -EINVAL)
                err_set(reterr, r, 0, 0, "secret '%s' is empty or not text", name);
            else
                err_set(reterr, r, 0, 0, "cannot read or create secret '%s': %s", name,
                        strerror(-r));
            goto out;
        }
    }
    *ret = ss;
    ss = NULL;
    r = 0;
out:
    stack_secrets_free(ss);
    free(dir);
    free(path);
    return r;
}

int stack_secrets_ensure(const struct stack *s, const char *state_dir, bool create,
                         struct stack_secrets **ret)
{
    return stack_secrets_ensure_err(s, state_dir, create, ret, NULL);
}
