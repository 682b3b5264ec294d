/* SPDX-License-Identifier: MIT */
/* rolloutd_api.h - what `infractl flags` and `infractl rollout` share to talk to rolloutd's admin
 * API: the URL and token resolution (--url, $ROLLOUTD_URL, STATE/rolloutd/rolloutd.addr,
 * RDAPI_DEFAULT_URL; --token-file, $ROLLOUTD_TOKEN, STATE/rolloutd/admin.token), one request,
 * error and --json output.  Results are infractl exit codes (enum cli_exit).
 *
 * Ownership: struct rdapi owns its url and token (rdapi_close() frees them, the token wiped);
 * replies belong to the caller (httpc_response_release()). */
#pragma once

#include <stdbool.h>

#include <jansson.h>

struct cli_ctx;
struct httpc_response;

#define RDAPI_DEFAULT_URL "http://127.0.0.1:8090"
/* rolloutd answers a stage or kill that changed nothing with "Rolloutd-Unchanged: true"; every
 * call keeps that header in httpc_response.header. */
#define RDAPI_UNCHANGED_HDR "Rolloutd-Unchanged"

struct rdapi {
    char *url;   /* no trailing slash; owned */
    char *token; /* NULL = none; owned, wiped by rdapi_close() */
    bool json;   /* --json: print rolloutd's JSON unchanged */
};

/* Takes --url, --token-file and --json out of argv wherever they stand (argv[0], the command,
 * stays), resolves the URL and the token and initialises libcurl.  CLI_EXIT_OK, or an exit code
 * (usage error printed with usage; unreadable --token-file). */
int rdapi_open(struct rdapi *a, int *argc, char **argv, const struct cli_ctx *ctx,
               const char *usage);
void rdapi_close(struct rdapi *a);

/* One request (body: JSON or NULL); CLI_EXIT_OK with rep filled (any HTTP status),
 * CLI_EXIT_NOT_RUNNING when nothing listens at rolloutd's address, CLI_EXIT_FAILURE otherwise
 * (message logged).  rep is to be released with httpc_response_release() either way. */
int rdapi_call(const struct rdapi *a, const char *method, const char *path, const char *body,
               struct httpc_response *rep);
/* Prints rolloutd's JSON error ("rolloutd: HTTP 409 conflict: ... (field version)"), naming the
 * field only when the message does not; returns CLI_EXIT_FAILURE. */
int rdapi_report_error(const struct httpc_response *rep);
/* Prints a successful reply: raw with --json, else through show(). */
int rdapi_output(const struct rdapi *a, const struct httpc_response *rep, void (*show)(json_t *));
/* Runs method/path/body and prints the reply with show (NULL: nothing); 4xx/5xx are errors. */
int rdapi_simple(const struct rdapi *a, const char *method, const char *path, const char *body,
                 void (*show)(json_t *));
/* s percent-encoded as one path segment.  Caller frees. */
char *rdapi_path_escape(const char *s);
