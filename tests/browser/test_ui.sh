#!/usr/bin/env bash
# test_ui.sh - rolloutd's web page (/ui) against a real rolloutd (SQLite store, port 0, its own
# state dir): the embedded files' headers over HTTP (curl), then the page in headless Debian
# chromium driven by playwright-core (ui.test.mjs): token prompt, a wrong token, an eval token's
# read-only view and refused change (403), the kill switch flipped with an admin token and its
# history entry, a revoked token (401) and a change without a token (401), and the rollout
# section drawn from tests/browser/fixtures/rollouts.json (page.route).
#
# Usage: test_ui.sh ROLLOUTD [WORK_DIR [SCREENSHOT.png]]
#   WORK_DIR  where playwright-core is installed (`npm ci` of tests/browser/package-lock.json,
#             offline first from npm's cache; kept while the lockfile is unchanged); default
#             tests/browser/.work (ignored by git), ctest uses its build directory
#   SCREENSHOT  also save a full-page screenshot there (`make ui-screenshot` writes
#             docs/images/rolloutd-ui.png); the test run by ctest writes none
# Exit: 0 passed, 1 a check failed, 77 skipped (node, npm or chromium missing: the header checks
# still run and are reported).
# bash -c '...' "$1" below: the single quotes are meant.
# shellcheck disable=SC2016
set -uo pipefail
ROLLOUTD=$1 # rd_start's (test_rolloutd_lib.sh)
export ROLLOUTD
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${2:-$here/.work}
screenshot=${3-}
. "$root/tests/integration/lib.sh"
. "$root/tests/integration/test_rolloutd_lib.sh"
need_cmd curl curl
need_cmd jq jq

tmp=$(mktemp -d /tmp/ut-rolloutd-ui-XXXXXX)
cleanup() {
    rd_stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT

rd_start A "$tmp/rd" || { t_done; exit 1; }
A=$RD_ADDR_A
T=$(cat "$tmp/rd/admin.token")

# ===== The embedded files over HTTP (no token needed: they hold no data) =====
hdr() { curl -s -o /dev/null -D - "$@" | tr -d '\r'; }
h=$(hdr "http://$A/ui")
ok "GET /ui: 200 text/html" grep -qx 'Content-Type: text/html; charset=utf-8' <<<"$h"
ok "GET /ui: a strict CSP (script-src 'self', nothing else by default)" \
    grep -q "^Content-Security-Policy: default-src 'none'; script-src 'self';.*frame-ancestors 'none'" <<<"$h"
ok "GET /ui: Cache-Control: no-cache, nosniff" \
    bash -c "grep -qx 'Cache-Control: no-cache' <<<\"\$1\" && grep -qx 'X-Content-Type-Options: nosniff' <<<\"\$1\"" _ "$h"
etag=$(sed -n 's/^ETag: //p' <<<"$h")
ok "GET /ui: a strong ETag" test -n "$etag"
ok "GET /ui/ (trailing slash) is the same page" \
    test "$(curl -s "http://$A/ui/" | sha256sum)" = "$(sha256sum <"$root/src/rolloutd/ui/index.html")"
ok "GET /ui with If-None-Match: 304" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "http://$A/ui")" = 304
for f in app.js chart.js dom.js rollouts.js style.css favicon.svg; do
    case $f in
    *.js) type='text/javascript; charset=utf-8' ;;
    *.css) type='text/css; charset=utf-8' ;;
    *.svg) type='image/svg+xml' ;;
    esac
    ok "GET /ui/$f: its bytes as $type" bash -c \
        'curl -sf "$1" | cmp -s - "$2" && curl -s -o /dev/null -w "%{content_type}" "$1" | grep -qxF "$3"' \
        _ "http://$A/ui/$f" "$root/src/rolloutd/ui/$f" "$type"
done
ok "every file of src/rolloutd/ui is served" bash -c \
    'for f in "$2"/*; do curl -sf -o /dev/null "$1/ui/${f##*/}" || exit 1; done' _ "http://$A" "$root/src/rolloutd/ui"
out=$(api "$A" "" GET /ui/nope.js)
ok "an unknown file: 404 not_found" expect_error "$out" 404 not_found
ok "HEAD /ui: 200" test "$(curl -s -I -o /dev/null -w '%{http_code}' "http://$A/ui")" = 200
ok "POST /ui: 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$A/ui")" = 405
index=$(curl -s "http://$A/ui")
ok "the page has no inline script or style (the CSP would block them)" \
    bash -c '! grep -Eq "<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=" <<<"$1"' _ "$index"

# ===== The page in a browser =====
flag() {
    local out
    out=$(api "$A" "$T" POST /api/v1/flags "$1")
    [[ $(status_of "$out") == 201 ]] || { diag "cannot create a flag: $out"; return 1; }
}
flag '{"key":"model.v2","description":"ranking model v2","environments":{"production":{"stage":"canary","canary":5},"staging":{"stage":"full"}}}'
flag '{"key":"checkout","description":"one-page checkout","environments":{"production":{"stage":"partial","canary":5,"partial":25},"staging":{"stage":"partial","partial":50}}}'
out=$(api "$A" "$T" POST /api/v1/tokens '{"name":"ui-viewer","scope":"eval","env":"production"}')
E=$(body_of "$out" | jq -r .token)
out=$(api "$A" "$T" POST /api/v1/tokens '{"name":"ui-admin","scope":"admin"}')
U=$(body_of "$out" | jq -r .token)
U_ID=$(body_of "$out" | jq -r .id)

browser_skip=
if ! command -v node >/dev/null; then
    browser_skip="node is not installed (Debian package nodejs: scripts/install-deps.sh tests)"
elif ! command -v npm >/dev/null; then
    browser_skip="npm is not installed (Debian package npm: scripts/install-deps.sh tests)"
elif [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
    browser_skip="/usr/bin/chromium is not installed (Debian package chromium: scripts/install-deps.sh tests)"
else
    mkdir -p "$work" && work=$(cd "$work" && pwd)
    stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [[ $(cat "$work/node_modules/.ut-stamp" 2>/dev/null) != "$stamp" ]]; then
        cp "$here/package.json" "$here/package-lock.json" "$work/"
        if ! (cd "$work" && timeout 120 npm ci --offline --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1 &&
            ! (cd "$work" && timeout 120 npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
            sed 's/^/# /' "$tmp/npm.log" | tail -5
            browser_skip="npm ci of tests/browser/package-lock.json failed (no cached package and no registry?)"
        else
            echo "$stamp" >"$work/node_modules/.ut-stamp"
        fi
    fi
fi
if [[ -n $browser_skip ]]; then
    skip_case "the page in headless chromium" "$browser_skip"
else
    args=("$work" "http://$A" "$T" "$U" "$U_ID" "$E")
    [[ -n $screenshot ]] && args+=("$(realpath -m "$screenshot")")
    start=$(date +%s%N)
    timeout 60 node "$here/ui.test.mjs" "${args[@]}" >"$tmp/browser.tap" 2>&1
    rc=$?
    sed 's/^/# /' "$tmp/browser.tap"
    ok "the page in headless chromium: $(grep -c '^ok' "$tmp/browser.tap") checks pass ($(( ($(date +%s%N) - start) / 1000000 )) ms)" \
        test "$rc" = 0
    # What the page did, seen through the API.
    hist=$(api "$A" "$T" GET /api/v1/flags/model.v2/history | sed '$d')
    ok "rolloutd recorded one kill of model.v2, by ui-admin, and nothing else changed it" \
        test "$(jq -c '[.history[] | select(.action != "create") | [.action, .actor]]' <<<"$hist")" = '[["kill","ui-admin"]]'
fi
t_done
