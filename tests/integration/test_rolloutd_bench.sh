#!/usr/bin/env bash
# OFREP throughput and latency of rolloutd on loopback with wrk (not part of ctest: run by hand
# or `make bench`-style).  usage: test_rolloutd_bench.sh ROLLOUTD [SECONDS]
# Prints one line per configuration: server threads, connections, req/s, p50, p99.
set -uo pipefail
ROLLOUTD=$1
secs=${2-10}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/ut-rolloutd-bench-XXXXXX)
trap 'rd_stop_all; rm -rf "$tmp"' EXIT
cat >"$tmp/ofrep.lua" <<'LUA'
local n = 0
local tok = os.getenv("TOKEN")
request = function() n = n + 1
  return wrk.format("POST", "/ofrep/v1/evaluate/flags/rollout-flag",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tok},
    '{"context":{"targetingKey":"user-' .. n .. '","plan":"pro","country":"DE"}}') end
LUA

run() { # run LABEL WRK-ARGS...
    local label=$1 out rps p50 p99
    shift
    out=$(wrk --latency "$@")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf '%-34s %10s req/s   p50 %-8s p99 %s\n' "$label" "$rps" "$p50" "$p99"
}

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), ${secs}s per run"
for threads in 1 2; do
    dir="$tmp/t$threads"
    rd_start "T$threads" "$dir" --threads "$threads" || exit 1
    addr_var="RD_ADDR_T$threads"
    A=${!addr_var}
    T=$(cat "$dir/admin.token")
    api "$A" "$T" POST /api/v1/flags '{"key":"rollout-flag","rules":[{"attribute":"country","op":"in","values":["US","CA"],"exclude":true}],"environments":{"production":{"stage":"canary","canary":25}}}' >/dev/null
    E=$(api "$A" "$T" POST /api/v1/tokens '{"name":"bench","scope":"eval","env":"production"}' |
        sed '$d' | jq -r .token)
    run "threads=$threads healthz c=50" -t1 -c50 -d"${secs}s" "http://$A/healthz"
    for c in 10 50; do
        TOKEN=$E run "threads=$threads OFREP c=$c" -t1 -c"$c" -d"${secs}s" -s "$tmp/ofrep.lua" "http://$A/"
    done
    rd_stop_all
done
