#!/usr/bin/env bash
# OFREP throughput and latency of rolloutd on loopback with wrk (not part of ctest: run by hand
# or `make bench`-style).  usage: test_rolloutd_bench.sh ROLLOUTD [SECONDS]
# Prints one line per configuration: server threads, connections, req/s, p50, p99, and the
# server's CPU time per request.
set -uo pipefail
ROLLOUTD=$1
secs=${2-10}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/ut-rolloutd-bench-XXXXXX)
trap 'rd_stop_all; rm -rf "$tmp"' EXIT
# 4096 distinct targeting keys, requests built once: wrk shares the 2 cores with rolloutd, and
# wrk.format() per request cost it more CPU than rolloutd spends answering.
cat >"$tmp/ofrep.lua" <<'LUA'
local reqs, n = {}, 0
init = function()
  local tok = os.getenv("TOKEN")
  for i = 1, 4096 do
    reqs[i] = wrk.format("POST", "/ofrep/v1/evaluate/flags/rollout-flag",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tok},
      '{"context":{"targetingKey":"user-' .. i .. '","plan":"pro","country":"DE"}}')
  end
end
request = function() n = n % 4096 + 1; return reqs[n] end
LUA

# Server CPU time (user+system, from /proc) per answered request: the figure that does not
# depend on how much CPU wrk and the rest of the machine take.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # run LABEL PID WRK-ARGS...
    local label=$1 pid=$2 out rps p50 p99 n c0 c1
    shift 2
    c0=$(cpu_ticks "$pid")
    out=$(wrk --latency "$@")
    c1=$(cpu_ticks "$pid")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '%-34s %10s req/s   p50 %-8s p99 %-8s server CPU %s us/req\n' "$label" "$rps" "$p50" \
        "$p99" "$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / hz / n : 0 }')"
}

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), ${secs}s per run"
for threads in 1 2; do
    dir="$tmp/t$threads"
    rd_start "T$threads" "$dir" --threads "$threads" || exit 1
    addr_var="RD_ADDR_T$threads" pid_var="RD_PID_T$threads"
    A=${!addr_var} P=${!pid_var}
    T=$(cat "$dir/admin.token")
    api "$A" "$T" POST /api/v1/flags '{"key":"rollout-flag","rules":[{"attribute":"country","op":"in","values":["US","CA"],"exclude":true}],"environments":{"production":{"stage":"canary","canary":25}}}' >/dev/null
    E=$(api "$A" "$T" POST /api/v1/tokens '{"name":"bench","scope":"eval","env":"production"}' |
        sed '$d' | jq -r .token)
    run "threads=$threads healthz c=50" "$P" -t1 -c50 -d"${secs}s" "http://$A/healthz"
    for c in 10 50; do
        TOKEN=$E run "threads=$threads OFREP c=$c" "$P" -t1 -c"$c" -d"${secs}s" -s "$tmp/ofrep.lua" "http://$A/"
    done
    rd_stop_all
done
