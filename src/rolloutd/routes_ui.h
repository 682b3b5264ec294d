/* SPDX-License-Identifier: MIT */
/* routes_ui.h - rolloutd's web page at /ui: the files of src/rolloutd/ui, compiled into the
 * binary at build time (cmake/Embed.cmake), served with their Content-Type, an ETag,
 * Cache-Control: no-cache and a strict Content-Security-Policy.  The page itself talks to the
 * admin API with the token the user enters (docs/rolloutd.md, "Web page").
 *
 * Ownership: the assets are static data of the generated table, never freed; requests are
 * borrowed for the handler call. */
#pragma once

#include <stddef.h>

struct http_request;

/* One embedded file; everything is static data of the generated table. */
struct rd_ui_asset {
    const char *name;          /* base name, e.g. "app.js" */
    const unsigned char *data; /* len bytes, NUL-terminated */
    size_t len;
    const char *etag; /* "\"<16 hex of the SHA-256>\"" */
};

/* Generated from src/rolloutd/ui/ (sorted by name). */
extern const struct rd_ui_asset rd_ui_assets[];
extern const size_t rd_ui_assets_count;

/* The embedded file called name, or NULL. */
const struct rd_ui_asset *rd_ui_asset_find(const char *name);
/* The Content-Type for a file name, from its extension (application/octet-stream if unknown). */
const char *rd_ui_content_type(const char *name);

/* GET /ui (and /ui/): index.html.  GET /ui/{file}: one embedded file, 404 for any other name.
 * No token needed: the files hold no data; the page asks for a token before it calls the API. */
int rd_h_ui_index(struct http_request *req, void *userdata);
int rd_h_ui_asset(struct http_request *req, void *userdata);
