/* SPDX-License-Identifier: MIT */
/* rolloutd_api.c - infractl's side of rolloutd's admin API (flags, rollouts). */
#include "rolloutd_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/str.h"
#include "httpc/httpc.h"

#define MAX_REPLY (64u << 20)

static char *read_first_line(const char *path)
{
    struct buf b = BUF_INIT(4096);
    char *s;

    if (file_read_all(path, &b) < 0) {
        buf_release(&b);
        return NULL;
    }
    s = buf_detach(&b, NULL);
    s[strcspn(s, "\r\n")] = '\0';
    if (!s[0]) {
        free(s);
        return NULL;
    }
    return s;
}

int rdapi_open(struct rdapi *a, int *argc, char **argv, const struct cli_ctx *ctx,
               const char *usage)
{
    const char *url = getenv("ROLLOUTD_URL"), *token_file = NULL;
    int out = 1;

    *a = (struct rdapi){ 0 };
    /* --url, --token-file and --json may stand anywhere (as `flags list --json`); they are taken
     * out of argv here, and the verb parses the rest. */
    for (int i = 1; i < *argc; i++) {
        const char *o = argv[i], **dst = NULL;

        if (streq(o, "--json")) {
            a->json = true;
            continue;
        }
        if (streq(o, "--url") || streq(o, "--token-file")) {
            dst = streq(o, "--url") ? &url : &token_file;
            if (i + 1 >= *argc)
                return cli_usage_error(usage, "%s needs a value", o);
            *dst = argv[++i];
            continue;
        }
        if (str_startswith(o, "--url=")) {
            url = o + 6;
            continue;
        }
        if (str_startswith(o, "--token-file=")) {
            token_file = o + 13;
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    if (url) {
        a->url = xstrdup(url);
    } else {
        char *addr_file = xasprintf("%s/rolloutd/rolloutd.addr", ctx->state_dir);
        char *addr = read_first_line(addr_file);
        a->url = addr ? xasprintf("http://%s", addr) : xstrdup(RDAPI_DEFAULT_URL);
        free(addr);
        free(addr_file);
    }
    while (a->url[0] && a->url[strlen(a->url) - 1] == '/')
        a->url[strlen(a->url) - 1] = '\0';
    if (token_file) {
        a->token = read_first_line(token_file);
        if (!a->token) {
            log_error("cannot read a token from '%s'", token_file);
            rdapi_close(a);
            return CLI_EXIT_FAILURE;
        }
    } else if (getenv("ROLLOUTD_TOKEN")) {
        a->token = xstrdup(getenv("ROLLOUTD_TOKEN"));
    } else {
        char *path = xasprintf("%s/rolloutd/admin.token", ctx->state_dir);
        a->token = read_first_line(path);
        free(path);
    }
    if (httpc_init() < 0) {
        log_error("cannot initialize libcurl");
        rdapi_close(a);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

void rdapi_close(struct rdapi *a)
{
    if (a->url)
        httpc_cleanup();
    if (a->token)
        explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    free(a->url);
    *a = (struct rdapi){ 0 };
}

int rdapi_call(const struct rdapi *a, const char *method, const char *path, const char *body,
               struct httpc_response *rep)
{
    char *url = xasprintf("%s%s", a->url, path);
    int r;

    r = httpc_call(&(struct httpc_request){ .method = method,
                                            .url = url,
                                            .token = a->token,
                                            .body = body,
                                            .max_body = MAX_REPLY,
                                            .header = RDAPI_UNCHANGED_HDR },
                   rep);
    free(url);
    if (r < 0) {
        log_error("cannot reach rolloutd at %s: %s", a->url, rep->error);
        return r == -ECONNREFUSED ? CLI_EXIT_NOT_RUNNING : CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* True when rolloutd's message already names the field: "field 'stage': ..." (the engine's
 * and the admin API's form) or "If-Match must be ..." (the field first). */
static bool message_names_field(const char *msg, const char *field)
{
    size_t n = strlen(field);
    const char *p;

    if (strncmp(msg, field, n) == 0 && (msg[n] == ' ' || msg[n] == ':'))
        return true;
    for (p = strstr(msg, "field '"); p; p = strstr(p + 1, "field '"))
        if (strncmp(p + 7, field, n) == 0 && p[7 + n] == '\'')
            return true;
    return false;
}

int rdapi_report_error(const struct httpc_response *rep)
{
    json_t *j = json_loads(buf_str(&rep->body), 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));

    if (field && (!field[0] || (msg && message_names_field(msg, field))))
        field = NULL;
    if (msg)
        log_error("rolloutd: HTTP %ld %s: %s%s%s%s", rep->status, code ? code : "", msg,
                  field ? " (field " : "", field ? field : "", field ? ")" : "");
    else
        log_error("rolloutd: HTTP %ld", rep->status);
    json_decref(j);
    return CLI_EXIT_FAILURE;
}

char *rdapi_path_escape(const char *s)
{
    struct buf b = BUF_INIT(0);

    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.';
        if ((plain ? buf_append(&b, p, 1) : buf_appendf(&b, "%%%02X", c)) < 0)
            break;
    }
    return buf_detach(&b, NULL);
}

int rdapi_output(const struct rdapi *fc, const struct httpc_response *rep, void (*show)(json_t *))
{
    json_t *j;

    if (fc->json) {
        printf("%s\n", buf_str(&rep->body));
        return CLI_EXIT_OK;
    }
    j = json_loads(buf_str(&rep->body), 0, NULL);
    if (!j) {
        log_error("rolloutd sent invalid JSON");
        return CLI_EXIT_FAILURE;
    }
    show(j);
    json_decref(j);
    return CLI_EXIT_OK;
}

int rdapi_simple(const struct rdapi *fc, const char *method, const char *path, const char *body,
                 void (*show)(json_t *))
{
    struct httpc_response rep = { 0 };
    int r = rdapi_call(fc, method, path, body, &rep);

    if (r == 0) {
        if (rep.status >= 200 && rep.status < 300)
            r = show ? rdapi_output(fc, &rep, show) : CLI_EXIT_OK;
        else
            r = rdapi_report_error(&rep);
    }
    httpc_response_release(&rep);
    return r;
}
