/* SPDX-License-Identifier: MIT */
/* infractl backup [--type full|diff|incr] | backup list | restore --to T --into DIR | drill
 * restore: pgBackRest (src/backup) on the stack's Patroni cluster.  Backups come from a standby
 * when one streams; restores go into a scratch directory and a scratch postgres, never the live
 * nodes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "backup/backup.h"
#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "stack/stack.h"

#define PG_BIN_DIR          "/usr/lib/postgresql/15/bin"
#define BACKUP_RUN_AS       "postgres"
#define BACKUP_TIMEOUT      (6ull * 3600 * USEC_PER_SEC)
#define RESTORE_START_TO    (600ull * USEC_PER_SEC)
#define BACKUP_LOCK_RETRIES 30 /* 2 s apart */

/* ===== help ===== */

static const char backup_usage[] = "backup [--type full|diff|incr] [--json] [--quiet] | backup "
                                   "list [--json]";
static const char restore_usage[] = "restore --to TIME --into DIR [--port P] [--json] [--quiet]";
static const char drill_usage[] = "drill restore [--json] [--keep]";

static const struct cli_help_item backup_subcommands[] = {
    { "list [--json]",
      "backup sets (type, start, duration, sizes, WAL range), the archive's WAL range, the last "
      "success of each type and its age" },
    { NULL, NULL },
};

static const struct cli_help_item backup_options[] = {
    { "-t, --type full|diff|incr",
      "full copies everything, diff what changed since the last full, incr since the last "
      "backup (default incr; pgBackRest makes a full when there is none)" },
    { "--json", "the result (or the list) as one JSON document on stdout" },
    { "-q, --quiet", "no progress lines" },
    { NULL, NULL },
};

const struct cli_help cmd_backup_help = {
    .usage = backup_usage,
    .summary = "Back up the PostgreSQL cluster with pgBackRest (from a standby when one streams)",
    .subcommands = backup_subcommands,
    .options = backup_options,
    .notes =
            "Runs unattended (no tty needed): exit 0 on success, 1 on failure, and either way\n"
            "writes ultrathink_backup_* metrics for node-exporter's textfile collector\n"
            "(STATE/node-exporter/backup-*.prom).  Configuration: STATE/pgbackrest/pgbackrest.conf\n"
            "(rendered by `infractl up`); docs/backups.md.\n",
};

static const struct cli_help_item restore_options[] = {
    { "--to TIME", "recovery target: '2026-12-03 14:03:00+00' (a zone is required); every "
                   "transaction committed up to TIME is restored, none after" },
    { "--into DIR", "an empty or missing directory: the restored data directory" },
    { "-p, --port P", "the scratch postgres listens on 127.0.0.1:P (default 5440)" },
    { "--json", "the result as one JSON document on stdout" },
    { "-q, --quiet", "no progress lines" },
    { NULL, NULL },
};

const struct cli_help cmd_restore_help = {
    .usage = restore_usage,
    .summary = "Point-in-time restore into a scratch directory and start a scratch postgres there",
    .options = restore_options,
    .notes = "Never touches the live cluster: refuses a DIR that is not empty, any node's data\n"
             "directory or the repository, and a TIME before the oldest backup or in the future.\n"
             "The scratch postgres runs as postgres with archiving off; stop it with\n"
             "  setpriv --reuid=postgres --regid=postgres --init-groups -- \\\n"
             "      " PG_BIN_DIR "/pg_ctl -D DIR stop\n"
             "Exit 0 restored and started, 1 failed or refused, 2 usage.\n",
};

/* ===== shared context ===== */

struct bk {
    struct stack *stack;
    struct backup_conf conf;
    char *textfile_dir;      /* node-exporter's --collector.textfile.directory; NULL if none */
    const char *pg_password; /* the superuser's (status_probe of the patroni nodes); borrowed */
    const char *pg_user;
    unsigned pg_ports[BACKUP_MAX_NODES];
    size_t n_pg_ports;
    bool quiet, json;
    bool tty;
};

static void bk_release(struct bk *b)
{
    backup_conf_release(&b->conf);
    free(b->textfile_dir);
    stack_free(b->stack);
    *b = (struct bk){ 0 };
}

/* The stack's pgBackRest configuration (the rendered file named pgbackrest.conf), node-exporter's
 * textfile directory and the Patroni nodes' superuser credentials. */
static int bk_open(const struct cli_ctx *ctx, struct bk *b)
{
    const char *conf = NULL;
    struct err e = ERR_INIT;
    char msg[600];
    int r;

    r = cli_load_stack(ctx, false, &b->stack, NULL);
    if (r < 0)
        return r;
    for (size_t i = 0; i < b->stack->n_services; i++) {
        const struct stack_service *svc = &b->stack->services[i];

        for (size_t k = 0; k < svc->n_files; k++)
            if (str_endswith(svc->files[k].path, "/pgbackrest.conf"))
                conf = svc->files[k].path;
        for (size_t k = 0; svc->argv[k]; k++)
            if (str_startswith(svc->argv[k], "--collector.textfile.directory="))
                b->textfile_dir = xstrdup(strchr(svc->argv[k], '=') + 1);
        if (svc->kind && streq(svc->kind, "patroni") && svc->has_status_probe &&
            b->n_pg_ports < BACKUP_MAX_NODES) {
            b->pg_ports[b->n_pg_ports++] = svc->status_probe.port;
            b->pg_user = svc->status_probe.user;
            b->pg_password = svc->status_probe.password;
        }
    }
    if (!conf) {
        log_error("the stack renders no pgbackrest.conf (stack file %s): backups are not "
                  "configured",
                  ctx->stack_path);
        return -ENOENT;
    }
    r = backup_conf_load(conf, &b->conf, &e);
    if (r < 0) {
        log_error("%s%s", err_format(&e, msg, sizeof msg),
                  r == -ENOENT ? " (has `infractl up` run?)" : "");
        return r;
    }
    b->tty = isatty(STDERR_FILENO);
    return 0;
}

/* ===== progress ===== */

struct progress_ui {
    const struct bk *b;
    const char *what;
    uint64_t last_print;
    bool done_printed; /* pgBackRest ends with many empty files at 100% */
};

static const char *human_bytes(double v, char *buf, size_t n)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t u = 0;

    while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    (void)snprintf(buf, n, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

static void on_progress(const struct backup_progress *p, void *userdata)
{
    struct progress_ui *ui = userdata;
    uint64_t now = now_usec();
    double secs = (double)p->elapsed_us / USEC_PER_SEC, rate, eta;
    char done[32], rate_s[32];

    if (ui->b->quiet)
        return;
    /* Once a second on a terminal, every 5 s into a log; always the last file. */
    if (p->percent < 100.0 && now - ui->last_print < (ui->b->tty ? 1 : 5) * (uint64_t)USEC_PER_SEC)
        return;
    ui->last_print = now;
    rate = secs > 0 ? (double)p->bytes / secs : 0;
    eta = p->percent > 0 ? secs * (100.0 - p->percent) / p->percent : 0;
    fprintf(stderr, "%s: %5.1f%%  %llu files  %s  %s/s  ETA %.0fs%s", ui->what, p->percent,
            (unsigned long long)p->files, human_bytes((double)p->bytes, done, sizeof done),
            human_bytes(rate, rate_s, sizeof rate_s), eta, ui->b->tty ? "   \r" : "\n");
    if (ui->b->tty && p->percent >= 100.0)
        fputc('\n', stderr);
}

/* ===== pgbackrest calls ===== */

static int pgbr(const struct bk *b, const char *const *args, struct progress_ui *ui,
                uint64_t timeout, struct backup_result *res)
{
    struct backup_cmd cmd = {
        .conf_path = b->conf.path,
        .stanza = b->conf.stanza,
        .run_as = BACKUP_RUN_AS,
        .args = args,
        .on_progress = ui ? on_progress : NULL,
        .userdata = ui,
        .timeout_us = timeout,
    };
    int r = backup_run(&cmd, res);

    if (r == -ENOENT)
        log_error("/usr/bin/pgbackrest is not installed (Debian package pgbackrest: "
                  "scripts/install-deps.sh)");
    else if (r == -ESRCH)
        log_error("user '%s' does not exist", BACKUP_RUN_AS);
    else if (r < 0)
        log_error_errno(r, "cannot run pgbackrest: %s", strerror(-r));
    return r;
}

/* `pgbackrest info --output=json` into *ret. */
static int bk_info(const struct bk *b, struct backup_info *ret)
{
    static const char *const args[] = { "--output=json", "info", NULL };
    struct backup_result res;
    struct err e = ERR_INIT;
    int r;

    r = pgbr(b, args, NULL, 60 * USEC_PER_SEC, &res);
    if (r < 0)
        goto out;
    if (res.exit_code != 0) {
        log_error("pgbackrest info failed (exit %d): %s", res.exit_code,
                  res.error ? res.error : "no error message");
        r = -EIO;
        goto out;
    }
    r = backup_info_parse(res.out, b->conf.stanza, ret, &e);
    if (r < 0)
        log_error("%s", e.msg);
out:
    backup_result_release(&res);
    return r;
}

/* ===== metrics ===== */

static void write_prom(const struct bk *b, const char *name, const struct buf *text)
{
    char path[PATH_MAX];
    int r;

    (void)snprintf(path, sizeof path, "%s/%s", b->textfile_dir, name);
    /* 0644: node-exporter (user prometheus) reads what root writes. */
    r = file_write_atomic(path, text->data ? text->data : "", text->len, 0644);
    if (r < 0)
        log_warning("cannot write metrics '%s': %s", path, strerror(-r));
}

static void write_metrics(const struct bk *b, const struct backup_outcome *o,
                          const struct backup_info *info)
{
    struct buf text = BUF_INIT(64 * 1024);
    char name[64];

    if (!b->textfile_dir) {
        log_warning("no node-exporter textfile directory in the stack: backup metrics not "
                    "written");
        return;
    }
    if (backup_metrics_format_run(o, &text) == 0) {
        (void)snprintf(name, sizeof name, "backup-%s.prom", backup_type_name(o->type));
        write_prom(b, name, &text);
    }
    buf_reset(&text);
    if (info && backup_metrics_format_repo(info, &text) == 0)
        write_prom(b, "backup-repo.prom", &text);
    buf_release(&text);
}

/* ===== infractl backup ===== */

static json_t *set_json(const struct backup_set *s)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s?, s:b}", "label",
                     s->label, "type", backup_type_name(s->type), "start", (json_int_t)s->start,
                     "stop", (json_int_t)s->stop, "duration_s", (json_int_t)(s->stop - s->start),
                     "size_bytes", (json_int_t)s->size, "delta_bytes", (json_int_t)s->delta,
                     "repo_size_bytes", (json_int_t)s->repo_size, "repo_delta_bytes",
                     (json_int_t)s->repo_delta, "wal_start", s->wal_start, "wal_stop", s->wal_stop,
                     "prior", s->prior[0] ? s->prior : NULL, "error", s->error);
}

static void print_json(json_t *doc)
{
    if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) < 0)
        log_error("cannot write the JSON document");
    fputc('\n', stdout);
    json_decref(doc);
}

static const char *fmt_time(int64_t unix_s, char *buf, size_t n)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
        (void)snprintf(buf, n, "?");
    return buf;
}

static const char *fmt_age(int64_t secs, char *buf, size_t n)
{
    return format_duration(buf, n, (uint64_t)(secs < 0 ? 0 : secs) * USEC_PER_SEC);
}

static int backup_list(struct bk *b)
{
    struct backup_info info = { 0 };
    int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
    char t1[40], t2[40], s1[32], s2[32], age[32];
    int r;

    r = bk_info(b, &info);
    if (r < 0)
        return CLI_EXIT_FAILURE;
    if (b->json) {
        json_t *doc = json_object(), *sets = json_array(), *last = json_object();

        for (size_t i = 0; i < info.n_sets; i++)
            json_array_append_new(sets, set_json(&info.sets[i]));
        for (int t = 0; t < _BACKUP_TYPE_MAX; t++) {
            const struct backup_set *s = backup_info_latest(&info, (enum backup_type)t);

            if (s)
                json_object_set_new(last, backup_type_name((enum backup_type)t),
                                    json_pack("{s:s, s:I, s:I}", "label", s->label, "stop",
                                              (json_int_t)s->stop, "age_s",
                                              (json_int_t)(now - s->stop)));
        }
        json_object_set_new(doc, "stanza", json_string(info.stanza));
        json_object_set_new(doc, "status", json_string(info.status));
        json_object_set_new(doc, "status_code", json_integer(info.status_code));
        json_object_set_new(doc, "backup_running", json_boolean(info.backup_running));
        json_object_set_new(doc, "wal_min",
                            info.wal_min[0] ? json_string(info.wal_min) : json_null());
        json_object_set_new(doc, "wal_max",
                            info.wal_max[0] ? json_string(info.wal_max) : json_null());
        json_object_set_new(doc, "backups", sets);
        json_object_set_new(doc, "last_success", last);
        json_object_set_new(doc, "repo_path",
                            b->conf.repo_path ? json_string(b->conf.repo_path) : json_null());
        print_json(doc);
        goto out;
    }
    printf("stanza %s: %s%s\n", info.stanza, info.status,
           info.backup_running ? " (a backup is running)" : "");
    printf("WAL archive: %s .. %s\n", info.wal_min[0] ? info.wal_min : "-",
           info.wal_max[0] ? info.wal_max : "-");
    if (info.n_sets == 0) {
        printf("no backups\n");
        goto out;
    }
    printf("\n%-22s %-4s %-22s %8s %10s %10s  %-24s %-24s\n", "LABEL", "TYPE", "STARTED (UTC)",
           "DURATION", "DB SIZE", "REPO", "WAL START", "WAL STOP");
    for (size_t i = 0; i < info.n_sets; i++) {
        const struct backup_set *s = &info.sets[i];
        char dur[32];

        printf("%-22s %-4s %-22s %8s %10s %10s  %-24s %-24s%s\n", s->label,
               backup_type_name(s->type), fmt_time(s->start, t1, sizeof t1),
               format_duration(dur, sizeof dur, (uint64_t)(s->stop - s->start) * USEC_PER_SEC),
               human_bytes((double)s->size, s1, sizeof s1),
               human_bytes((double)s->repo_delta, s2, sizeof s2), s->wal_start, s->wal_stop,
               s->error ? "  CHECKSUM ERRORS" : "");
    }
    printf("\nlast success:");
    for (int t = 0; t < _BACKUP_TYPE_MAX; t++) {
        const struct backup_set *s = backup_info_latest(&info, (enum backup_type)t);

        if (s)
            printf("  %s %s (%s ago)", backup_type_name((enum backup_type)t),
                   fmt_time(s->stop, t2, sizeof t2), fmt_age(now - s->stop, age, sizeof age));
    }
    printf("\n");
out:
    backup_info_release(&info);
    return CLI_EXIT_OK;
}

/* A standby-side failure that the primary does not have: no standby streams, or the standby
 * has not replayed up to a new timeline yet. */
static bool standby_problem(const char *error)
{
    return error && (strstr(error, "standby") || strstr(error, "timeline"));
}

static int backup_take(struct bk *b, enum backup_type type)
{
    char type_arg[32];
    const char *args[8] = { type_arg, "--log-level-console=detail", "backup", NULL };
    const char *args_primary[8] = { type_arg, "--log-level-console=detail", "--no-backup-standby",
                                    "backup", NULL };
    struct progress_ui ui = { .b = b, .what = "backup" };
    struct backup_result res = { .exit_code = -1 };
    struct backup_info info = { 0 };
    const struct backup_set *made = NULL;
    uint64_t t0 = now_usec();
    bool ok = false, from_primary = false, have_info;
    double secs;
    char s1[32], s2[32], s3[32];
    int r;

    (void)snprintf(type_arg, sizeof type_arg, "--type=%s", backup_type_name(type));
    if (!b->quiet)
        fprintf(stderr, "backup: %s backup of stanza %s (repository %s)\n", backup_type_name(type),
                b->conf.stanza, b->conf.repo_path ? b->conf.repo_path : "pgBackRest's default");
    r = pgbr(b, args, &ui, BACKUP_TIMEOUT, &res);
    /* Another pgBackRest command holds the stanza's backup lock (a backup still running, the
     * stanza being created at `up`): wait for it a while rather than fail a scheduled run. */
    for (int i = 0; r == 0 && res.exit_code == 50 && i < BACKUP_LOCK_RETRIES; i++) {
        if (i == 0)
            log_warning("another pgBackRest command holds the backup lock: waiting up to %d s",
                        BACKUP_LOCK_RETRIES * 2);
        backup_result_release(&res);
        sleep_usec(2 * USEC_PER_SEC);
        r = pgbr(b, args, &ui, BACKUP_TIMEOUT, &res);
    }
    if (r == 0 && res.exit_code != 0 && standby_problem(res.error)) {
        log_warning("backup from a standby failed (%s): taking it from the primary", res.error);
        backup_result_release(&res);
        ui.last_print = 0;
        ui.done_printed = false;
        from_primary = true;
        r = pgbr(b, args_primary, &ui, BACKUP_TIMEOUT, &res);
    }
    if (r == 0 && res.timed_out)
        log_error("backup: pgbackrest did not finish within %llu h: stopped",
                  (unsigned long long)(BACKUP_TIMEOUT / USEC_PER_SEC / 3600));
    else if (r == 0 && res.exit_code != 0)
        log_error("backup failed (pgbackrest exit %d): %s", res.exit_code,
                  res.error ? res.error : "no error message (see STATE/pgbackrest/log)");
    ok = r == 0 && res.exit_code == 0 && !res.timed_out;
    secs = (double)(now_usec() - t0) / USEC_PER_SEC;
    have_info = bk_info(b, &info) == 0;
    {
        struct backup_outcome o = {
            .stanza = b->conf.stanza,
            .type = type,
            .success = ok,
            .attempt_end = (int64_t)(now_realtime_usec() / USEC_PER_SEC),
            .duration_s = secs,
        };

        write_metrics(b, &o, have_info ? &info : NULL);
    }
    if (ok && have_info)
        made = backup_info_latest(&info, _BACKUP_TYPE_MAX);
    if (b->json) {
        json_t *doc = json_pack("{s:b, s:s, s:s, s:f, s:b, s:s?}", "success", ok, "stanza",
                                b->conf.stanza, "requested_type", backup_type_name(type),
                                "duration_s", secs, "from_primary", from_primary, "error",
                                ok ? NULL : (res.error ? res.error : "pgbackrest failed"));

        if (made)
            json_object_set_new(doc, "backup", set_json(made));
        if (made && secs > 0)
            json_object_set_new(doc, "throughput_bytes_per_s",
                                json_real((double)made->delta / secs));
        print_json(doc);
    } else if (made) {
        printf("backup %s (%s%s): %.1f s, database %s, copied %s, repository +%s, %s/s\n",
               made->label, backup_type_name(made->type),
               made->type != type ? ", no earlier full backup" : "", secs,
               human_bytes((double)made->size, s1, sizeof s1),
               human_bytes((double)made->delta, s2, sizeof s2),
               human_bytes((double)made->repo_delta, s3, sizeof s3),
               human_bytes(secs > 0 ? (double)made->delta / secs : 0, s1, sizeof s1));
    }
    backup_info_release(&info);
    backup_result_release(&res);
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_backup(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { NULL, 0, NULL, 0 },
    };
    enum backup_type type = BACKUP_TYPE_INCR;
    struct bk b = { 0 };
    bool json = false, quiet = false, list = false;
    int c, ret;

    while ((c = getopt_long(argc, argv, "t:q", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (backup_type_parse(optarg, &type) < 0)
                return cli_usage_error(backup_usage,
                                       "--type: expected full, diff or incr, got '%s'", optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            return cli_usage_error(backup_usage, "unknown option");
        }
    }
    if (optind < argc) {
        if (!streq(argv[optind], "list") || optind + 1 < argc)
            return cli_usage_error(backup_usage, "unexpected argument '%s'",
                                   argv[streq(argv[optind], "list") ? optind + 1 : optind]);
        list = true;
    }
    if (bk_open(ctx, &b) < 0) {
        bk_release(&b);
        return CLI_EXIT_FAILURE;
    }
    b.json = json;
    b.quiet = quiet;
    ret = list ? backup_list(&b) : backup_take(&b, type);
    bk_release(&b);
    return ret;
}

/* ===== infractl restore ===== */

struct restore_report {
    char set[64];          /* the backup set pgBackRest chose */
    uint64_t bytes, files; /* restored */
    double copy_s, recovery_s, total_s;
    unsigned port;
};

static bool path_within(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* The absolute, symlink-free form of path, which may not exist yet (its parent must). */
static int canonical(const char *path, char *out, size_t n)
{
    char parent[PATH_MAX], *slash;
    char real[PATH_MAX];

    if (realpath(path, real)) {
        (void)snprintf(out, n, "%s", real);
        return 0;
    }
    if (errno != ENOENT)
        return -errno;
    (void)snprintf(parent, sizeof parent, "%s", path);
    slash = strrchr(parent, '/');
    if (slash == parent) {
        parent[1] = '\0';
    } else if (slash) {
        *slash = '\0';
    } else {
        (void)snprintf(parent, sizeof parent, ".");
    }
    if (!realpath(parent, real))
        return -errno;
    if (snprintf(out, n, "%s/%s", streq(real, "/") ? "" : real,
                 strrchr(path, '/') ? strrchr(path, '/') + 1 : path) >= (int)n)
        return -ENAMETOOLONG;
    return 0;
}

/* Refuses a directory that belongs to the live cluster, the repository, or holds anything. */
static int check_into(const struct bk *b, const char *dir, char *canon, size_t n)
{
    struct stat st;
    char node[PATH_MAX];
    int r;

    r = canonical(dir, canon, n);
    if (r < 0)
        return log_error_errno(r, "--into '%s': %s", dir, strerror(-r));
    for (size_t i = 0; i < b->conf.n_nodes; i++) {
        const char *np = b->conf.nodes[i].path;

        if (canonical(np, node, sizeof node) < 0)
            (void)snprintf(node, sizeof node, "%s", np);
        if (path_within(canon, node) || path_within(node, canon)) {
            log_error("--into '%s' is (or holds, or lies inside) the live data directory of node "
                      "pg%zu (%s, %s): a restore never touches the live cluster",
                      dir, i + 1, np, b->conf.path);
            return -EBUSY;
        }
    }
    if (b->conf.repo_path &&
        (path_within(canon, b->conf.repo_path) || path_within(b->conf.repo_path, canon))) {
        log_error("--into '%s' overlaps the backup repository %s", dir, b->conf.repo_path);
        return -EBUSY;
    }
    if (stat(canon, &st) == 0) {
        char pid_path[PATH_MAX + 32], ver_path[PATH_MAX + 32];
        struct buf pid = BUF_INIT(256);
        DIR *d;
        struct dirent *de;
        bool empty = true;

        if (!S_ISDIR(st.st_mode)) {
            log_error("--into '%s' exists and is not a directory", dir);
            return -ENOTDIR;
        }
        (void)snprintf(pid_path, sizeof pid_path, "%s/postmaster.pid", canon);
        (void)snprintf(ver_path, sizeof ver_path, "%s/PG_VERSION", canon);
        if (file_read_all(pid_path, &pid) == 0) {
            log_error("--into '%s' is a live PostgreSQL data directory (postmaster.pid: pid "
                      "%.*s): refusing to touch it",
                      dir, (int)strcspn(buf_str(&pid), "\n"), buf_str(&pid));
            buf_release(&pid);
            return -EBUSY;
        }
        buf_release(&pid);
        if (access(ver_path, F_OK) == 0) {
            log_error("--into '%s' is a PostgreSQL data directory (PG_VERSION): refusing to "
                      "overwrite it; choose an empty directory",
                      dir);
            return -EEXIST;
        }
        d = opendir(canon);
        if (!d)
            return log_error_errno(-errno, "--into '%s': %s", dir, strerror(errno));
        while ((de = readdir(d)))
            if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                empty = false;
        closedir(d);
        if (!empty) {
            log_error("--into '%s' is not empty: restore into an empty or missing directory", dir);
            return -ENOTEMPTY;
        }
    }
    return 0;
}

static int port_free(unsigned port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        r = -errno;
    fd_close(fd);
    return r;
}

/* The scratch postgres must not archive into the live repository, wait for a synchronous
 * standby, follow a primary, or use the live node's sockets and files: postgresql.auto.conf
 * (read last) overrides what Patroni wrote into the restored postgresql.conf. */
static int write_overrides(const char *dir, unsigned port)
{
    char path[PATH_MAX];
    struct buf text = BUF_INIT(8192);
    int fd, r;

    r = buf_appendf(&text,
                    "\n# infractl restore: a scratch instance (never the live cluster)\n"
                    "port = %u\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = '%s'\n"
                    "hba_file = '%s/pg_hba.conf'\n"
                    "ident_file = '%s/pg_ident.conf'\n"
                    "archive_mode = 'off'\n"
                    "archive_command = ''\n"
                    "synchronous_standby_names = ''\n"
                    "primary_conninfo = ''\n"
                    "primary_slot_name = ''\n"
                    "hot_standby = 'on'\n"
                    "cluster_name = 'ultrathink-restore'\n",
                    port, dir, dir, dir);
    if (r < 0)
        goto out;
    (void)snprintf(path, sizeof path, "%s/postgresql.auto.conf", dir);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    r = fd_write_all(fd, text.data, text.len);
    fd_close(fd);
    (void)snprintf(path, sizeof path, "%s/standby.signal", dir);
    (void)unlink(path);
out:
    buf_release(&text);
    return r;
}

static int prepare_dir(const char *dir)
{
    struct passwd pwbuf, *pw = NULL;
    char buf[4096];
    int r;

    if (getpwnam_r(BACKUP_RUN_AS, &pwbuf, buf, sizeof buf, &pw) != 0)
        pw = NULL;
    r = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
    if (r < 0)
        return r;
    if (chmod(dir, 0700) < 0)
        return -errno;
    if (geteuid() == 0 && pw && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
        return -errno;
    return 0;
}

static bool file_exists(const char *dir, const char *name)
{
    char p[PATH_MAX];

    (void)snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void log_tail(const char *path)
{
    struct buf tail = BUF_INIT(4096);

    if (file_read_tail(path, 2000, &tail) == 0)
        fprintf(stderr, "--- last lines of %s ---\n%s\n", path, buf_str(&tail));
    buf_release(&tail);
}

/* The scratch postgres stopped during recovery: say why in one line, then its log's tail. */
static void explain_recovery_end(const char *log_path, const char *target)
{
    static const char marker[] = "last completed transaction was at log time ";
    struct buf tail = BUF_INIT(8192);
    const char *last = NULL;

    if (file_read_tail(log_path, 8000, &tail) == 0)
        last = strstr(buf_str(&tail), marker);
    if (last && strstr(buf_str(&tail), "recovery ended before configured recovery target"))
        log_error("the archived WAL ends before %s (its last transaction: %.*s): WAL after it "
                  "was not archived (yet)",
                  target, (int)strcspn(last + sizeof marker - 1, "\n"), last + sizeof marker - 1);
    else
        log_error("recovery stopped before reaching %s", target);
    buf_release(&tail);
    log_tail(log_path);
}

/* Restores the set pgBackRest picks for target_us into dir and starts postgres there on port,
 * waiting until recovery reached the target and the instance was promoted. */
static int restore_run(const struct bk *b, int64_t target_us, const char *dir, unsigned port,
                       struct restore_report *ret)
{
    char target[64], target_arg[96], pg1[PATH_MAX + 16], log_path[PATH_MAX];
    const char *args[] = { pg1,
                           "--type=time",
                           target_arg,
                           "--target-action=promote",
                           "--archive-mode=off",
                           "--log-level-console=detail",
                           "restore",
                           NULL };
    struct progress_ui ui = { .b = b, .what = "restore" };
    struct backup_result res = { .exit_code = -1 };
    uint64_t t0 = now_usec(), t1;
    const char *set;
    int r;

    *ret = (struct restore_report){ .port = port };
    (void)snprintf(target_arg, sizeof target_arg, "--target=%s",
                   backup_time_format(target_us, target, sizeof target));
    (void)snprintf(pg1, sizeof pg1, "--pg1-path=%s", dir);
    r = prepare_dir(dir);
    if (r < 0)
        return log_error_errno(r, "cannot create '%s': %s", dir, strerror(-r));
    if (!b->quiet)
        fprintf(stderr, "restore: stanza %s to %s into %s\n", b->conf.stanza, target, dir);
    r = pgbr(b, args, &ui, BACKUP_TIMEOUT, &res);
    if (r < 0)
        goto out;
    if (res.exit_code != 0) {
        log_error("pgbackrest restore failed (exit %d): %s", res.exit_code,
                  res.error ? res.error : "no error message");
        r = -EIO;
        goto out;
    }
    set = strstr(res.out, "restore backup set ");
    if (set)
        (void)snprintf(ret->set, sizeof ret->set, "%.*s", (int)strcspn(set + 19, " ,\n"), set + 19);
    ret->bytes = res.last.bytes;
    ret->files = res.last.files;
    t1 = now_usec();
    ret->copy_s = (double)(t1 - t0) / USEC_PER_SEC;
    r = write_overrides(dir, port);
    if (r < 0) {
        log_error_errno(r, "cannot write '%s/postgresql.auto.conf': %s", dir, strerror(-r));
        goto out;
    }
    backup_result_release(&res);
    (void)snprintf(log_path, sizeof log_path, "%s/restore.log", dir);
    if (!b->quiet)
        fprintf(stderr,
                "restore: %s restored (%llu files, %.1f s); starting postgres on "
                "127.0.0.1:%u to replay WAL up to the target\n",
                ret->set[0] ? ret->set : "backup", (unsigned long long)ret->files, ret->copy_s,
                port);
    {
        const char *argv[] = {
            PG_BIN_DIR "/pg_ctl", "-D", dir, "-l", log_path, "-w", "-t", "600", "start", NULL
        };

        r = backup_spawn(argv, BACKUP_RUN_AS, RESTORE_START_TO, &res);
    }
    if (r < 0 || res.exit_code != 0) {
        log_error("the scratch postgres did not start (pg_ctl exit %d)%s", res.exit_code,
                  r < 0 ? ": pg_ctl not found" : "");
        log_tail(log_path);
        r = r < 0 ? r : -EIO;
        goto out;
    }
    /* Promotion (recovery_target_action) removes recovery.signal; a recovery that cannot reach
     * the target stops the postmaster instead. */
    while (file_exists(dir, "recovery.signal")) {
        if (!file_exists(dir, "postmaster.pid")) {
            explain_recovery_end(log_path, target);
            r = -EIO;
            goto out;
        }
        if (now_usec() - t1 > RESTORE_START_TO) {
            log_error("recovery did not finish within %llu s", RESTORE_START_TO / USEC_PER_SEC);
            r = -ETIMEDOUT;
            goto out;
        }
        sleep_usec(100 * 1000);
    }
    ret->recovery_s = (double)(now_usec() - t1) / USEC_PER_SEC;
    ret->total_s = (double)(now_usec() - t0) / USEC_PER_SEC;
    r = 0;
out:
    backup_result_release(&res);
    return r;
}

static PGconn *pg_primary(const struct bk *b);
static int pg_exec(PGconn *c, const char *sql, int n, const char *const *params, char *out,
                   size_t out_n);

/* Recovery to a time stops at the first commit after it; with none in the archive (an idle
 * cluster, a target just before now) PostgreSQL ends recovery with "recovery ended before
 * configured recovery target was reached".  One transaction on the primary now, archived by
 * flush_wal() next, is that commit. */
static void commit_marker(const struct bk *b)
{
    PGconn *c = pg_primary(b);

    if (!c || pg_exec(c, "SELECT txid_current()", 0, NULL, NULL, 0) < 0)
        log_warning("no primary answered: a target after the last commit in the archive is "
                    "not restorable");
    PQfinish(c);
}

/* Forces the current WAL segment into the archive (`pgbackrest check`: pg_switch_wal() on the
 * primary, then waits for the segment), so a target just before now is restorable. */
static void flush_wal(const struct bk *b)
{
    static const char *const args[] = { "check", NULL };
    struct backup_result res;

    if (pgbr(b, args, NULL, 90 * USEC_PER_SEC, &res) == 0 && res.exit_code != 0)
        log_warning("could not push the current WAL to the archive (%s): the restore ends at "
                    "the last archived segment",
                    res.error ? res.error : "pgbackrest check failed");
    backup_result_release(&res);
}

/* Checks the target against the repository: not in the future, not before the oldest backup. */
static int check_target(const struct bk *b, int64_t target_us, const char *to)
{
    struct backup_info info = { 0 };
    int64_t now = (int64_t)now_realtime_usec();
    char when[40];
    int r;

    if (target_us > now) {
        log_error("--to '%s' is in the future (now is %s): nothing is recorded after now", to,
                  backup_time_format(now, when, sizeof when));
        return -ERANGE;
    }
    r = bk_info(b, &info);
    if (r < 0)
        return r;
    if (info.n_sets == 0) {
        log_error("the repository holds no backup of stanza %s: take one with `infractl backup "
                  "--type full`",
                  b->conf.stanza);
        r = -ENOENT;
    } else if (target_us < info.sets[0].stop * (int64_t)USEC_PER_SEC) {
        log_error("--to '%s' is before the oldest backup (%s, consistent from %s): the earliest "
                  "restorable time is %s",
                  to, info.sets[0].label, fmt_time(info.sets[0].stop, when, sizeof when), when);
        r = -ERANGE;
    }
    backup_info_release(&info);
    return r;
}

static json_t *report_json(const struct restore_report *rep, const char *dir, const char *to)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:f}", "target", to, "into", dir,
                     "backup_set", rep->set, "port", (int)rep->port, "bytes",
                     (json_int_t)rep->bytes, "files", (json_int_t)rep->files, "copy_s", rep->copy_s,
                     "recovery_s", rep->recovery_s, "total_s", rep->total_s);
}

int cmd_restore(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "to", required_argument, NULL, 'T' },   { "into", required_argument, NULL, 'i' },
        { "port", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },      { NULL, 0, NULL, 0 },
    };
    const char *to = NULL, *into = NULL;
    struct restore_report rep;
    struct err e = ERR_INIT;
    struct bk b = { 0 };
    char canon[PATH_MAX], when[40];
    uint64_t port = 5440;
    int64_t target_us;
    bool json = false, quiet = false;
    int c, r, ret = CLI_EXIT_FAILURE;

    while ((c = getopt_long(argc, argv, "p:q", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            to = optarg;
            break;
        case 'i':
            into = optarg;
            break;
        case 'p':
            if (parse_uint_range(optarg, 1024, 65535, &port) < 0)
                return cli_usage_error(restore_usage, "--port: expected 1024..65535, got '%s'",
                                       optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            return cli_usage_error(restore_usage, "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error(restore_usage, "unexpected argument '%s'", argv[optind]);
    if (!to || !into)
        return cli_usage_error(restore_usage, "--to and --into are required");
    if (backup_time_parse(to, &target_us, &e) < 0)
        return cli_usage_error(restore_usage, "--to: %s", e.msg);
    if (bk_open(ctx, &b) < 0)
        goto out;
    b.json = json;
    b.quiet = quiet;
    if (check_into(&b, into, canon, sizeof canon) < 0 || check_target(&b, target_us, to) < 0)
        goto out;
    r = port_free((unsigned)port);
    if (r < 0) {
        log_error("--port %llu: 127.0.0.1:%llu is taken (%s)", (unsigned long long)port,
                  (unsigned long long)port, strerror(-r));
        goto out;
    }
    commit_marker(&b);
    flush_wal(&b);
    if (restore_run(&b, target_us, canon, (unsigned)port, &rep) < 0)
        goto out;
    if (json) {
        print_json(report_json(&rep, canon, backup_time_format(target_us, when, sizeof when)));
    } else {
        printf("restored %s to %s into %s in %.1f s (copy %.1f s, WAL replay %.1f s); postgres "
               "runs on 127.0.0.1:%u\n"
               "stop it: setpriv --reuid=postgres --regid=postgres --init-groups -- "
               "%s/pg_ctl -D %s stop\n",
               rep.set[0] ? rep.set : "the backup", to, canon, rep.total_s, rep.copy_s,
               rep.recovery_s, rep.port, PG_BIN_DIR, canon);
    }
    ret = CLI_EXIT_OK;
out:
    bk_release(&b);
    return ret;
}

/* ===== infractl drill restore ===== */

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *pg_connect(const struct bk *b, unsigned port)
{
    char p[8];
    const char *keys[] = {
        "host", "port", "user", "password", "dbname", "connect_timeout", "application_name", NULL
    };
    const char *vals[] = {
        "127.0.0.1", p, b->pg_user, b->pg_password, "postgres", "3", "infractl-drill-restore", NULL
    };
    PGconn *c;

    (void)snprintf(p, sizeof p, "%u", port);
    c = PQconnectdbParams(keys, vals, 0);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    (void)PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

/* Runs sql with params; the first value of the first row into out (may be NULL).  0 or -EIO
 * (the server's message logged). */
static int pg_exec(PGconn *c, const char *sql, int n, const char *const *params, char *out,
                   size_t out_n)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int r = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        log_error("query failed: %s", PQresultErrorMessage(res));
        r = -EIO;
    } else if (out) {
        (void)snprintf(out, out_n, "%s",
                       PQntuples(res) > 0 && PQnfields(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    }
    PQclear(res);
    return r;
}

static PGconn *pg_primary(const struct bk *b)
{
    for (size_t i = 0; i < b->n_pg_ports; i++) {
        PGconn *c = pg_connect(b, b->pg_ports[i]);
        char v[8];

        if (c && pg_exec(c, "SELECT pg_is_in_recovery()", 0, NULL, v, sizeof v) == 0 &&
            streq(v, "f"))
            return c;
        PQfinish(c);
    }
    return NULL;
}

static int free_port(unsigned *ret)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        r = -errno;
    else
        *ret = ntohs(a.sin_port);
    fd_close(fd);
    return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static void scratch_stop(const char *dir)
{
    const char *argv[] = { PG_BIN_DIR "/pg_ctl", "-D", dir, "-m", "fast", "-w", "stop", NULL };
    struct backup_result res;

    if (!file_exists(dir, "postmaster.pid"))
        return; /* never started, or recovery stopped it */
    if (backup_spawn(argv, BACKUP_RUN_AS, 60 * USEC_PER_SEC, &res) < 0 || res.exit_code != 0)
        log_warning("could not stop the scratch postgres in %s", dir);
    backup_result_release(&res);
}

int cli_drill_restore(int argc, char **argv, struct cli_ctx *ctx)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "keep", no_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    struct restore_report rep = { 0 };
    struct backup_info info = { 0 };
    struct bk b = { 0 };
    PGconn *live = NULL, *scratch = NULL;
    char token[40], dir[PATH_MAX], when[40], seqs[64] = "", before_at[64] = "";
    const char *params[1] = { token };
    bool json = false, keep = false, took_backup = false, started = false, passed = false;
    unsigned port = 0;
    int64_t target_us;
    int c, r, ret = CLI_EXIT_FAILURE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = true;
        else if (c == 'k')
            keep = true;
        else
            return cli_usage_error(drill_usage, "unknown option");
    }
    if (optind < argc)
        return cli_usage_error(drill_usage, "unexpected argument '%s'", argv[optind]);
    dir[0] = '\0';
    if (bk_open(ctx, &b) < 0)
        goto out;
    b.json = json;
    b.quiet = json;
    live = pg_primary(&b);
    if (!live) {
        log_error("no PostgreSQL primary answers (ports of the patroni services): is the stack "
                  "up?");
        goto out;
    }
    /* A backup to restore from: the newest, or a full one taken now. */
    r = bk_info(&b, &info);
    if (r < 0)
        goto out;
    if (info.n_sets == 0) {
        fprintf(stderr, "drill: no backup yet: taking a full one\n");
        if (backup_take(&b, BACKUP_TYPE_FULL) != CLI_EXIT_OK)
            goto out;
        took_backup = true;
    }
    /* Marker 1 committed, then T, then marker 2: the restore must hold 1 and not 2. */
    (void)snprintf(token, sizeof token, "drill-%llu", (unsigned long long)now_realtime_usec());
    if (pg_exec(live,
                "CREATE TABLE IF NOT EXISTS infractl_restore_drill (token text, seq int, "
                "at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (token, seq))",
                0, NULL, NULL, 0) < 0 ||
        pg_exec(live, "INSERT INTO infractl_restore_drill (token, seq) VALUES ($1, 1) RETURNING at",
                1, params, before_at, sizeof before_at) < 0)
        goto out;
    sleep_usec(300 * 1000);
    target_us = (int64_t)now_realtime_usec();
    sleep_usec(300 * 1000);
    if (pg_exec(live, "INSERT INTO infractl_restore_drill (token, seq) VALUES ($1, 2)", 1, params,
                NULL, 0) < 0)
        goto out;
    fprintf(stderr, "drill: marker 1 committed at %s, target %s, marker 2 after it\n", before_at,
            backup_time_format(target_us, when, sizeof when));
    (void)snprintf(dir, sizeof dir, "%s/restore-drill.XXXXXX", ctx->state_dir);
    if (!mkdtemp(dir)) {
        log_error("cannot create a scratch directory under %s: %s", ctx->state_dir,
                  strerror(errno));
        dir[0] = '\0';
        goto out;
    }
    r = free_port(&port);
    if (r < 0) {
        log_error_errno(r, "no free port: %s", strerror(-r));
        goto out;
    }
    flush_wal(&b);
    started = true;
    if (restore_run(&b, target_us, dir, port, &rep) < 0)
        goto report;
    scratch = pg_connect(&b, port);
    if (!scratch) {
        log_error("cannot connect to the scratch postgres on 127.0.0.1:%u", port);
        goto report;
    }
    if (pg_exec(scratch,
                "SELECT coalesce(string_agg(seq::text, ',' ORDER BY seq), '') FROM "
                "infractl_restore_drill WHERE token = $1",
                1, params, seqs, sizeof seqs) < 0)
        goto report;
    passed = streq(seqs, "1");
    if (!passed)
        log_error("the restore holds markers '%s' of this drill, expected exactly '1' (committed "
                  "before the target; 2 after it)",
                  seqs);
report:
    if (json) {
        json_t *doc = report_json(&rep, dir, when);

        json_object_set_new(doc, "backup_taken", json_boolean(took_backup));
        json_object_set_new(doc, "markers_restored", json_string(seqs));
        json_object_set_new(doc, "passed", json_boolean(passed));
        print_json(doc);
    } else {
        printf("drill restore: %s  set %s  %llu files %.1f MiB  copy %.1f s  WAL replay %.1f s  "
               "total %.1f s  markers restored '%s' (expected '1')\n",
               passed ? "PASSED" : "FAILED", rep.set[0] ? rep.set : "-",
               (unsigned long long)rep.files, (double)rep.bytes / 1048576.0, rep.copy_s,
               rep.recovery_s, rep.total_s, seqs);
    }
    ret = passed ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    PQfinish(scratch);
    PQfinish(live);
    if (started && dir[0])
        scratch_stop(dir);
    if (dir[0] && !keep && nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        log_warning("cannot remove %s", dir);
    else if (dir[0] && keep)
        fprintf(stderr, "drill: kept %s\n", dir);
    backup_info_release(&info);
    bk_release(&b);
    return ret;
}
