#!/usr/bin/env bash
# make bench: time from `up` to all-healthy (cold: empty state dir; warm: after down, data
# kept), `down` time, and `infractl status` latency with the stack up.
# Uses its own state directory; a running default stack is stopped first and restarted after.
set -euo pipefail
INFRACTL=$(realpath "$1")
RUNS=${STATUS_RUNS:-50}
state=$(mktemp -d /tmp/ut-bench.XXXXXX)
chmod 755 "$state" # services run as postgres, redis, etcd, haproxy
restore=0
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

if "$INFRACTL" status >/dev/null 2>&1 || [[ $? -eq 4 ]]; then
    echo "bench: stopping the running default stack (restarted afterwards)" >&2
    "$INFRACTL" down >/dev/null
    restore=1
fi
cleanup() {
    "$INFRACTL" --state-dir "$state" down >/dev/null 2>&1 || true
    rm -rf "$state"
    ((restore)) && "$INFRACTL" up --detach --wait --quiet || true
}
trap cleanup EXIT

t=$(date +%s%N)
"$INFRACTL" --state-dir "$state" up --detach --wait --quiet
cold=$(ms "$t")

lat=()
for ((i = 0; i < RUNS; i++)); do
    t=$(date +%s%N)
    "$INFRACTL" --state-dir "$state" status --json >/dev/null
    lat+=($((($(date +%s%N) - t) / 1000)))
done
mapfile -t sorted < <(printf '%s\n' "${lat[@]}" | sort -n)
p50=${sorted[$((RUNS / 2))]}
p99=${sorted[$((RUNS * 99 / 100))]}
max=${sorted[$((RUNS - 1))]}

t=$(date +%s%N)
"$INFRACTL" --state-dir "$state" down >/dev/null 2>&1
down=$(ms "$t")

t=$(date +%s%N)
"$INFRACTL" --state-dir "$state" up --detach --wait --quiet
warm=$(ms "$t")

printf '\n| measure | value |\n|---|---|\n'
printf '| up → all healthy, cold (empty state dir) | %d.%03d s |\n' $((cold / 1000)) $((cold % 1000))
printf '| up → all healthy, warm (after down) | %d.%03d s |\n' $((warm / 1000)) $((warm % 1000))
printf '| down (all services stopped) | %d.%03d s |\n' $((down / 1000)) $((down % 1000))
printf '| status --json, %d runs: p50 / p99 / max | %d.%03d / %d.%03d / %d.%03d ms |\n' "$RUNS" \
    $((p50 / 1000)) $((p50 % 1000)) $((p99 / 1000)) $((p99 % 1000)) $((max / 1000)) $((max % 1000))
