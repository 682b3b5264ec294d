#!/usr/bin/env bash
# librollout's client against a real rolloutd: a stage change made through the admin API is
# visible to in-process evaluation (over the SSE stream) within 1 s.
set -uo pipefail
ROLLOUTD=$1
WATCH=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"

tmp=$(mktemp -d)
watch_pid=
trap '[[ -n $watch_pid ]] && kill $watch_pid 2>/dev/null; rd_stop_all; rm -rf "$tmp"' EXIT

rd_start S "$tmp/rd" || { echo "not ok 1 - rolloutd starts"; exit 1; }
A=$RD_ADDR_S
T=$(cat "$tmp/rd/admin.token")
out=$(api "$A" "$T" POST /api/v1/flags \
    '{"key":"model.v2","type":"boolean","environments":{"production":{"stage":"off"}}}')
ok "flag created" test "$(status_of "$out")" = 201
out=$(api "$A" "$T" POST /api/v1/tokens '{"name":"svc","scope":"eval","env":"production"}')
E=$(body_of "$out" | jq -r .token)
ok "eval token created" test -n "$E"

"$WATCH" "http://$A" "$E" production model.v2 user-42 "$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
ready() { grep -q '^ready ' "$tmp/watch.out" 2>/dev/null; }
ok "client got the first snapshot over HTTP" retry 10 ready
ok "stage off: the subject gets control" grep -q '^ready control$' "$tmp/watch.out"

t0=$(($(date +%s%N) / 1000000))
out=$(api "$A" "$T" POST /api/v1/flags/model.v2/stage '{"env":"production","stage":"full"}')
ok "stage full accepted" test "$(status_of "$out")" = 200
changed() { grep -q '^changed ' "$tmp/watch.out"; }
ok "the client sees the change" retry 5 changed
read -r _ variant seen_ms < <(grep '^changed ' "$tmp/watch.out")
delay=$((seen_ms - t0))
diag "stage change -> in-process evaluation: ${delay} ms (admin call included)"
ok "full stage: the subject gets candidate" test "$variant" = candidate
ok "visible in-process within 1 s (${delay} ms)" test "$delay" -lt 1000
wait "$watch_pid"
ok "watcher exited cleanly" test $? -eq 0
watch_pid=
t_done
