#!/usr/bin/env bash
# gpu_agent's cost: scrape latency (p50/p99 over keep-alive connections, one client and four at
# once), RSS, and CPU per second of background collection, against the fake NVML with 2 and 8
# GPUs; compared with what an nvidia-smi-based exporter pays per scrape on a real H200
# (../shared/fixtures/gpu/nvidia-smi-timing.txt).
# No GPU machine is needed (nor used): the fake answers in microseconds, so these numbers are
# the agent's own overhead.  On real hardware NVML reads take 7-30 us per GPU once warm
# (fixtures/gpu/probe.txt); the background collection absorbs them, scrapes never wait on NVML.
# Usage: tests/bench/gpu/bench.sh [BUILD_DIR] [REQUESTS]
# Targets on real hardware: scrape p99 <= 1 ms, RSS <= 10 MiB.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../.." && pwd)
BUILD=${1:-$SRC/build}
REQUESTS=${2:-5000}
AGENT=$BUILD/gpu_agent
FAKE=$BUILD/tests/fake_nvml/libnvidia-ml.so.1
PY=/usr/bin/python3
FIXTURES=${UT_SHARED_DIR:-$SRC/../shared}/fixtures/gpu # shared/ sits beside the checkout
[[ -x $AGENT && -f $FAKE ]] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }

tmp=$(mktemp -d /tmp/gpu-bench.XXXXXX)
agent_pid=
cleanup() {
    [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# A state with N GPUs: the seeded H200 repeated with distinct UUIDs, bus ids and minors.
make_state() {
    local n=$1 base=$SRC/tests/fake_nvml/h200x2.state i
    grep -v '^gpu[0-9]*\.' "$base" | sed "s/^gpu_count .*/gpu_count $n/"
    for ((i = 0; i < n; i++)); do
        grep '^gpu0\.' "$base" | sed -e "s/^gpu0\./gpu$i./" \
            -e "s/GPU-74c4c37d/GPU-$(printf '%08x' "$i")/" \
            -e "s/00000000:00:06.0/00000000:00:$(printf '%02x' $((i + 6))).0/" \
            -e "s/^gpu$i.minor .*/gpu$i.minor $i/"
    done
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "gpu_agent $("$AGENT" --version | awk '{ print $2 }') scrape benchmark (fake NVML, $(nproc) CPUs, $(date -u +%F))"
echo
fmt='%-5s %-8s %-8s %-8s %-8s %-8s %-7s %-10s %-8s %-8s %s\n'
printf "$fmt" GPUS CLIENTS P50_MS P99_MS P999_MS MAX_MS BYTES REQ_PER_S RSS_MIB HWM_MIB IDLE_CPU
for gpus in 2 8; do
    make_state "$gpus" >"$tmp/state"
    printf 'listen_address: 127.0.0.1:0\nstate_dir: %s/state.d\ncollect_interval: 1s\n' "$tmp" \
        >"$tmp/agent.yml"
    FAKE_NVML_STATE=$tmp/state "$AGENT" --config.file "$tmp/agent.yml" --nvml.library "$FAKE" \
        --log.level notice >"$tmp/agent.log" 2>&1 &
    agent_pid=$!
    for _ in $(seq 50); do grep -q "listening on" "$tmp/agent.log" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/agent.log" | head -1)
    sleep 2
    # Idle: 10 s of background collection (1 s interval) and no scrape.
    c0=$(cpu_ticks "$agent_pid")
    sleep 10
    c1=$(cpu_ticks "$agent_pid")
    idle=$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f ms/s", d / hz * 1000 / 10 }')
    for clients in 1 4; do
        read -r _ p50 p99 p999 max bytes rps < <($PY "$HERE/scrape_load.py" "$port" "$REQUESTS" "$clients")
        printf "$fmt" "$gpus" "$clients" "$p50" "$p99" "$p999" "$max" "$bytes" "$rps" \
            "$(mib "$(proc_kib "$agent_pid" VmRSS)")" "$(mib "$(proc_kib "$agent_pid" VmHWM)")" "$idle"
    done
    coll=$(curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^gpu_exporter_collect_duration_seconds/ { printf "%.3f ms", $2 * 1000 }')
    echo "      one collection of $gpus GPUs through the fake NVML: $coll"
    kill "$agent_pid"
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=
done
echo
echo "IDLE_CPU: agent CPU time per wall second with no scrapes (collection every 1 s)."
echo "Latencies include the Python client (http.client, keep-alive) on the same $(nproc) CPUs."
if [[ -f $FIXTURES/nvidia-smi-timing.txt ]]; then
    sort -n "$FIXTURES/nvidia-smi-timing.txt" | awk '{ v[NR] = $1 * 1000 } END {
        printf "nvidia-smi --query-gpu on a real H200 (fixtures, %d calls): p50 %.0f ms, max %.0f ms per call\n", NR, v[int((NR + 1) / 2)], v[NR] }'
    echo "(what an nvidia-smi-based exporter pays per scrape: process start + NVML init)"
fi
echo "Targets on real hardware: scrape p99 <= 1 ms, RSS <= 10 MiB.  No GPU machine was used."
