/* SPDX-License-Identifier: MIT */
/* routes_ui.c - GET /ui and /ui/{file}: the embedded web page (routes_ui.h). */
#include "routes_ui.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/str.h"
#include "http/http.h"

/* Everything the page needs comes from rolloutd itself: its scripts and styles are files (no
 * inline code), its data the same-origin API.  Nothing may frame it. */
#define UI_CSP                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const struct rd_ui_asset *rd_ui_asset_find(const char *name)
{
    size_t lo = 0, hi = rd_ui_assets_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, rd_ui_assets[mid].name);

        if (c == 0)
            return &rd_ui_assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rd_ui_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".json", "application/json" },
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (streq(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* true when an If-None-Match list ("a", W/"b", *) names etag. */
static bool etag_listed(const char *inm, const char *etag)
{
    size_t n = strlen(etag);

    while (*inm) {
        inm += strspn(inm, " \t,");
        if (inm[0] == '*')
            return true;
        if (strncmp(inm, "W/", 2) == 0)
            inm += 2;
        if (strncmp(inm, etag, n) == 0 && (inm[n] == '\0' || strchr(" \t,", inm[n])))
            return true;
        inm += strcspn(inm, ",");
    }
    return false;
}

static int ui_serve(struct http_request *req, const struct rd_ui_asset *a)
{
    static const char *const headers[][2] = {
        { "Content-Security-Policy", UI_CSP },
        { "Cache-Control", "no-cache" }, /* revalidate: the ETag changes with the binary */
        { "X-Content-Type-Options", "nosniff" },
        { "Referrer-Policy", "no-referrer" },
    };
    const char *inm;

    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        if (http_set_header(req, headers[i][0], headers[i][1]) < 0)
            return -ENOMEM;
    if (http_set_header(req, "ETag", a->etag) < 0)
        return -ENOMEM;
    inm = http_request_header(req, "If-None-Match");
    if (inm && etag_listed(inm, a->etag))
        return http_reply_empty(req, 304);
    return http_reply(req, 200, rd_ui_content_type(a->name), a->data, a->len);
}

int rd_h_ui_index(struct http_request *req, void *userdata)
{
    const struct rd_ui_asset *a = rd_ui_asset_find("index.html");

    (void)userdata;
    if (!a)
        return http_error(req, -ENOENT, NULL, NULL, "rolloutd was built without its web page");
    return ui_serve(req, a);
}

int rd_h_ui_asset(struct http_request *req, void *userdata)
{
    const char *name = http_request_param(req, "file");
    const struct rd_ui_asset *a = name ? rd_ui_asset_find(name) : NULL;

    (void)userdata;
    if (!a)
        return http_error(req, -ENOENT, NULL, NULL, "no such file '/ui/%s'", name ? name : "");
    return ui_serve(req, a);
}
