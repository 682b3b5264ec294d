/* SPDX-License-Identifier: MIT */
/* drill_http.c - the drills' one HTTP call (libcurl): Patroni's /switchover with basic auth,
 * Alertmanager's and Prometheus' alert lists.  Small bodies only; no retries. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>

#include "core/buf.h"
#include "drill_int.h"

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
    struct buf *out = userdata;

    return buf_append(out, p, size * n) < 0 ? 0 : size * n;
}

int drill__http(const struct drill_http_req *req, struct buf *out, long *ret_status, char *msg,
                size_t msg_size)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    CURL *c = curl_easy_init();
    CURLcode cc;

    if (!c) {
        (void)snprintf(msg, msg_size, "cannot initialise libcurl");
        return -ENOMEM;
    }
    (void)curl_easy_setopt(c, CURLOPT_URL, req->url);
    (void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms ? req->timeout_ms : 5000));
    (void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (req->userpwd) {
        (void)curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        (void)curl_easy_setopt(c, CURLOPT_USERPWD, req->userpwd);
    }
    if (req->body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    }
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
    else
        (void)snprintf(msg, msg_size, "%s: %s", req->url,
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return cc == CURLE_OK                   ? 0
           : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
           : cc == CURLE_COULDNT_CONNECT    ? -ECONNREFUSED
           : cc == CURLE_WRITE_ERROR        ? -ENOBUFS
                                            : -EIO;
}
