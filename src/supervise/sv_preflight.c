/* SPDX-License-Identifier: MIT */
/* sv_preflight(): the checks `infractl up` runs before starting anything, so that a missing
 * package, a typo in a user name or a port taken by another program is reported at once
 * instead of as a service crash-looping in the background. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/str.h"
#include "supervise.h"
#include "sv_int.h"

#define SV_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool is_exec_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static const char *env_path(char *const *env)
{
    for (; env && *env; env++)
        if (strncmp(*env, "PATH=", 5) == 0)
            return *env + 5;
    return SV_DEFAULT_PATH;
}

/* Same lookup as the spawner: absolute/relative paths as given, bare names on the service's
 * PATH (its own PATH= or the supervisor's default). */
static bool command_found(const struct sv_service *svc)
{
    const char *p;

    if (strchr(svc->argv[0], '/'))
        return is_exec_file(svc->argv[0]);
    p = env_path(svc->env);
    while (*p) {
        size_t len = strcspn(p, ":");
        char *cand = xasprintf("%.*s/%s", (int)len, len ? p : ".", svc->argv[0]);
        bool ok = is_exec_file(cand);

        free(cand);
        if (ok)
            return true;
        p += len;
        if (*p == ':')
            p++;
    }
    return false;
}

static int check_command(const struct sv_service *svc, struct err *reterr)
{
    struct stat st;

    if (command_found(svc))
        return 0;
    if (strchr(svc->argv[0], '/') && stat(svc->argv[0], &st) == 0)
        return err_set(reterr, -ENOENT, svc->line, 0,
                       "service '%s': '%s' is not an executable file", svc->name, svc->argv[0]);
    if (svc->package && str_startswith(svc->package, "pypi:"))
        return err_set(reterr, -ENOENT, svc->line, 0,
                       "service '%s': '%s' not found (scripts/install-deps.sh installs '%s' from "
                       "PyPI there)",
                       svc->name, svc->argv[0], svc->package + 5);
    if (svc->package)
        return err_set(reterr, -ENOENT, svc->line, 0,
                       "service '%s': '%s' not found (install the Debian package '%s')", svc->name,
                       svc->argv[0], svc->package);
    return err_set(reterr, -ENOENT, svc->line, 0, "service '%s': '%s' not found", svc->name,
                   svc->argv[0]);
}

static int check_user(const struct sv_service *svc, struct err *reterr)
{
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    int r;

    if (!svc->user)
        return 0;
    r = getpwnam_r(svc->user, &pw, buf, sizeof buf, &pwp);
    if (r != 0)
        return err_set(reterr, -r, svc->line, 0, "service '%s': cannot look up user '%s': %s",
                       svc->name, svc->user, strerror(r));
    if (!pwp)
        return err_set(reterr, -EINVAL, svc->line, 0, "service '%s': user '%s' does not exist",
                       svc->name, svc->user);
    return 0;
}

/* bind() with SO_REUSEADDR like the services do: TIME_WAIT leftovers of a service that just
 * stopped do not count, listeners on 127.0.0.1 or the wildcard address do. */
int sv__port_free(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd, one = 1, r = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        r = -errno;
    (void)close(fd);
    return r;
}

static int check_ports(const struct sv_spec *spec, size_t si, struct err *reterr)
{
    const struct sv_service *svc = &spec->services[si];

    for (size_t p = 0; p < svc->n_ports; p++) {
        uint16_t port = svc->ports[p];
        int r;

        /* A port declared twice would pass the bind test and fail at start. */
        for (size_t sj = 0; sj <= si; sj++) {
            const struct sv_service *o = &spec->services[sj];
            size_t limit = sj == si ? p : o->n_ports;

            for (size_t q = 0; q < limit; q++)
                if (o->ports[q] == port)
                    return err_set(reterr, -EINVAL, svc->line, 0,
                                   "port %u is declared by both service '%s' and service '%s'",
                                   (unsigned)port, o->name, svc->name);
        }
        r = sv__port_free(port);
        if (r == -EADDRINUSE)
            return err_set(reterr, r, svc->line, 0, "port %u of service '%s' is already in use",
                           (unsigned)port, svc->name);
        if (r < 0)
            return err_set(reterr, r, svc->line, 0, "cannot check port %u of service '%s': %s",
                           (unsigned)port, svc->name, strerror(-r));
    }
    return 0;
}

int sv_preflight(const struct sv_spec *spec, struct err *reterr)
{
    int r;

    if (!spec)
        return err_set(reterr, -EINVAL, 0, 0, "no services");
    for (size_t i = 0; i < spec->n_services; i++) {
        const struct sv_service *svc = &spec->services[i];

        if (!svc->argv || !svc->argv[0])
            return err_set(reterr, -EINVAL, svc->line, 0, "service '%s' has no command", svc->name);
        r = check_command(svc, reterr);
        if (r < 0)
            return r;
        r = check_user(svc, reterr);
        if (r < 0)
            return r;
        r = check_ports(spec, i, reterr);
        if (r < 0)
            return r;
    }
    return 0;
}
