#!/usr/bin/env bash
# gpu_agent end to end with the fake NVML (tests/fake_nvml): metrics match the state file, an
# injected XID 79 drains GPU 0 within 1 s (worker stopped, gpu_healthy 0, gpu_drained 1), XID 13
# only counts, a lost GPU drains, drain-later lets the running task finish, undrain restarts the
# worker, drains survive a restart, the API token is enforced, and no driver still means 200.
# Usage: test_gpu_agent.sh GPU_AGENT INFRACTL FAKE_LIBNVML SOURCE_DIR
set -uo pipefail
AGENT=$1 INFRACTL=$2 FAKE=$3 SRC=$4
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/gpu-agent-test.XXXXXX)
agent_pid=
cleanup() {
    [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [[ -n ${GPU_TEST_KEEP:-} ]] && { echo "# kept $tmp"; return; }
    for f in "$tmp"/worker*.info; do # workers a failed test may have left behind
        [[ -f $f ]] && kill -KILL "$(awk '{ print $1 }' "$f")" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

export FAKE_NVML_STATE=$tmp/nvml.state
base=$SRC/tests/fake_nvml/h200x2.state
# set_state EXTRA_LINES...: the base state plus extra lines, replaced atomically.
set_state() {
    { cat "$base"; printf '%s\n' "$@"; } >"$tmp/nvml.state.new" && mv "$tmp/nvml.state.new" "$tmp/nvml.state"
}
set_state

# The worker behaves like a Celery prefork worker: its "task" runs in a child.  SIGTERM to the
# whole group (fail-now) kills the task at once; SIGTERM to the main process only (drain later)
# lets the task finish first (Celery's warm shutdown).
cat >"$tmp/worker.sh" <<'EOF'
#!/bin/sh
dir=$1 idx=$2
echo "$$ $CUDA_VISIBLE_DEVICES $CUDA_DEVICE_ORDER" >"$dir/worker$idx.info"
trap 'term=1' TERM
while :; do
    sleep 2 &
    task=$!
    wait $task
    if [ -n "$term" ]; then
        wait $task
        echo "task ended rc=$?" >>"$dir/worker$idx.tasks"
        exit 0
    fi
done
EOF
chmod +x "$tmp/worker.sh"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"

write_config() { # write_config [extra top-level yaml]
    cat >"$tmp/agent.yml" <<EOF
listen_address: 127.0.0.1:0
state_dir: $tmp/state
hostname: server1
collect_interval: 200ms
${1:-}
worker:
  command: [$tmp/worker.sh, $tmp, "{index}"]
  stop_grace_period: 3s
  drain_later_grace_period: 20s
EOF
}

start_agent() {
    [[ -f $tmp/agent.log ]] && cat "$tmp/agent.log" >>"$tmp/all.log"
    : >"$tmp/agent.log"
    "$AGENT" --config.file "$tmp/agent.yml" --nvml.library "$FAKE" >>"$tmp/agent.log" 2>&1 &
    agent_pid=$!
    retry 5 grep -q "listening on" "$tmp/agent.log" || { cat "$tmp/agent.log"; return 1; }
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/agent.log" | head -1)
    url=http://127.0.0.1:$port
}

stop_agent() {
    kill "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
    agent_pid=
}

metrics() { curl -sf "$url/metrics"; }
# metric NAME GPU: the value of NAME's sample for that GPU (first match).
metric() { metrics | awk -v n="$1" -v g="gpu=\"$2\"" 'index($0, n "{") == 1 && index($0, g) { print $NF; exit }'; }
metric_is() { [[ $(metric "$1" "$2") == "$3" ]]; }
xid_count() { metrics | grep -F "gpu_xid_errors_total{gpu=\"$1\"" | grep -F "xid=\"$2\"" | awk '{ print $NF }'; }
xid_count_is() { [[ $(xid_count "$1" "$2") == "$3" ]]; }
state_val() { awk -v k="gpu$1.$2" '$1 == k { print $2 }' "$base"; }
worker_pid() { awk '{ print $1 }' "$tmp/worker$1.info" 2>/dev/null; }
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ===== 1. CLI =====
ok "--version prints the version" bash -c "'$AGENT' --version | grep -q '^gpu_agent [0-9]'"
ok "--help documents the listen address option" bash -c "'$AGENT' --help | grep -q -- --web.listen-address"
printf 'worker:\n  command: [x]\n  stop_signal: SIGNOPE\n' >"$tmp/bad.yml"
out=$("$AGENT" --config.file "$tmp/bad.yml" 2>&1)
rc=$?
ok "a bad config exits 1" test "$rc" -eq 1
ok "a bad config names file:line:col and the key" grep -q "bad.yml:3:16: worker.stop_signal" <<<"$out"
"$AGENT" --bogus >/dev/null 2>&1
ok "an unknown option exits 2" test $? -eq 2

# ===== 2. Metrics match the state file =====
write_config
start_agent
retry 5 test -s "$tmp/worker1.info"
retry 5 bash -c "curl -sf $url/metrics | grep -q '^gpu_exporter_collections_total [1-9]'"
ctype=$(curl -sf -o /dev/null -w '%{content_type}' "$url/metrics")
ok "Content-Type is the 0.0.4 text format" test "$ctype" = "text/plain; version=0.0.4; charset=utf-8"
for g in 0 1; do
    uuid=$(state_val $g uuid)
    ok "GPU $g: gpu_info carries uuid, name, bus id, driver" \
        bash -c "curl -sf $url/metrics | grep -qF 'gpu_info{gpu=\"$g\",uuid=\"$uuid\",name=\"NVIDIA H200\",pci_bus_id=\"$(state_val $g pci_bus_id)\",minor=\"$g\",driver_version=\"580.159.04\",cuda_version=\"13.0\"} 1'"
    ok "GPU $g: temperature" test "$(metric gpu_temperature_celsius $g)" = "$(state_val $g temperature)"
    ok "GPU $g: memory total" test "$(metric gpu_memory_total_bytes $g)" = "$(state_val $g memory_total)"
    ok "GPU $g: memory free" test "$(metric gpu_memory_free_bytes $g)" = "$(state_val $g memory_free)"
    ok "GPU $g: power in watts" test "$(metric gpu_power_usage_watts $g)" = "$(awk -v v="$(state_val $g power_usage_mw)" 'BEGIN { print v / 1000 }')"
    ok "GPU $g: power limit" test "$(metric gpu_power_limit_watts $g)" = "$(awk -v v="$(state_val $g power_limit_mw)" 'BEGIN { print v / 1000 }')"
    ok "GPU $g: energy in joules" test "$(metric gpu_energy_joules_total $g)" = "$(awk -v v="$(state_val $g energy_mj)" 'BEGIN { printf "%.3f", v / 1000 }')"
    ok "GPU $g: PCIe link" test "$(metric gpu_pcie_link_width $g)" = "$(state_val $g pcie_width)"
    ok "GPU $g: worker sees its GPU by UUID, PCI bus order" \
        test "$(cut -d' ' -f2- "$tmp/worker$g.info")" = "$uuid PCI_BUS_ID"
done
ok "unsupported values (fan, retired pages, NVLink) are omitted" \
    bash -c "! curl -sf $url/metrics | grep -qE '^gpu_(fan_speed_ratio|retired_pages_total|nvlink_up)'"
ok "gpu_healthy 1 and gpu_drained 0 at start" test "$(metric gpu_healthy 0)$(metric gpu_drained 0)" = "10"
set_state "gpu1.temperature 71"
ok "a changed state file shows in the next collection" retry 3 metric_is gpu_temperature_celsius 1 71
out=$("$INFRACTL" gpu status "127.0.0.1:$port")
rc=$?
diag "$out"
ok "infractl gpu status: exit 0 when every GPU is healthy" test "$rc" -eq 0
# The workers have exec'd (their .info files exist); the supervisor pushes RUNNING to the agent
# on its next turn, so the state is real within milliseconds, never after a poll period.
both_running() { [[ $("$INFRACTL" gpu status "127.0.0.1:$port" | grep -c 'healthy .* running') == 2 ]]; }
ok "infractl gpu status lists both GPUs running (within 1 s of their start)" retry 1 both_running
ok "infractl gpu status --json" bash -c "'$INFRACTL' gpu status --json 127.0.0.1:$port | jq -e '.agents[0].gpus | length == 2' >/dev/null"

# ===== 3. XID 79 on GPU 0 drains it within 1 s; XID 13 on GPU 1 only counts =====
w0=$(worker_pid 0)
w1=$(worker_pid 1)
t0=$(now_ms)
set_state "xid 1 0 79" "xid 2 1 13"
until ! alive "$w0" || (($(now_ms) - t0 > 3000)); do sleep 0.01; done
stopped_ms=$(($(now_ms) - t0))
metrics >"$tmp/m.txt"
elapsed=$(($(now_ms) - t0))
diag "XID 79 -> worker gone after ${stopped_ms} ms; gpu_healthy 0 + gpu_drained 1 read at ${elapsed} ms"
ok "... gpu_healthy 0 and gpu_drained 1 by then" \
    bash -c "grep -q '^gpu_healthy{gpu=\"0\".* 0\$' $tmp/m.txt && grep -q '^gpu_drained{gpu=\"0\".* 1\$' $tmp/m.txt"
ok "XID 79 drains GPU 0 within 1 s" test "$elapsed" -le 1000
ok "GPU 0's worker was stopped" bash -c "! kill -0 $w0 2>/dev/null"
ok "the interrupted task did not run to its end (group SIGTERM)" grep -q "rc=143" "$tmp/worker0.tasks"
ok "gpu_xid_errors_total counts XID 79" xid_count_is 0 79 1
ok "gpu_xid_last_timestamp_seconds is set" bash -c "curl -sf $url/metrics | grep -q '^gpu_xid_last_timestamp_seconds{gpu=\"0\".*xid=\"79\"} 1[0-9]*'"
ok "gpu_drain_info says why" bash -c "curl -sf $url/metrics | grep -qF 'reason=\"xid_79\",tier=\"fail_now\"} 1'"
ok "XID 13 is counted on GPU 1" retry 2 xid_count_is 1 13 1
ok "XID 13 leaves GPU 1 healthy and its worker running" \
    bash -c "[[ \$(curl -sf $url/metrics | grep '^gpu_healthy{gpu=\"1\"' | awk '{ print \$NF }') == 1 ]] && kill -0 $w1"
ok "the worker state reaches 'stopped'" retry 3 bash -c "curl -sf $url/metrics | grep -q '^gpu_worker_state{gpu=\"0\".*state=\"stopped\"} 1'"
sleep 1.5
ok "a drained GPU's worker is not restarted" bash -c "! kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info) 2>/dev/null"
out=$("$INFRACTL" gpu status "127.0.0.1:$port")
ok "infractl gpu status exits 4 with a drained GPU" test $? -eq 4
ok "infractl gpu status shows the drain" grep -q "failed .*fail_now (xid_79)" <<<"$out"

# ===== 4. Drains survive an agent restart; a lost GPU drains =====
stop_agent
ok "stopping the agent stops every worker" bash -c "! kill -0 $w1 2>/dev/null"
set_state "gpu1.lost 1"
start_agent
sleep 1
ok "after a restart GPU 0 is still drained (persisted)" retry 3 metric_is gpu_drained 0 1
ok "after a restart GPU 0's worker is held stopped" bash -c "! kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info) 2>/dev/null"
ok "a lost GPU drains" retry 3 bash -c "$(declare -f metrics metric metric_is); url=$url; metric_is gpu_drained 1 1 && metric_is gpu_healthy 1 0"
ok "... with reason gpu_is_lost" bash -c "curl -sf $url/metrics | grep -q '^gpu_drain_info{gpu=\"1\",.*reason=\"gpu_is_lost\",tier=\"fail_now\"} 1'"
ok "a lost GPU's values are withheld" bash -c "! curl -sf $url/metrics | grep -q '^gpu_temperature_celsius{gpu=\"1\"'"
ok "... and its worker is stopped" retry 3 bash -c "! kill -0 \$(awk '{ print \$1 }' $tmp/worker1.info) 2>/dev/null"
stop_agent

# ===== 5. Undrain restarts the worker; the token guards drain/undrain =====
write_config "api_token_file: $tmp/token"
set_state
start_agent
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/api/v1/gpus/0/undrain")
ok "undrain without the token is refused (401)" test "$code" = 401
ok "infractl gpu undrain with a wrong token fails" bash -c "echo wrong-token-0123456789 >$tmp/wrong; ! '$INFRACTL' gpu undrain --token-file $tmp/wrong 127.0.0.1:$port 0 2>/dev/null"
old0=$(worker_pid 0)
ok "infractl gpu undrain HOST GPU" "$INFRACTL" gpu undrain --token-file "$tmp/token" "127.0.0.1:$port" 0
ok "undrain restarts GPU 0's worker" retry 5 bash -c "[[ \$(awk '{ print \$1 }' $tmp/worker0.info) != $old0 ]] && kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info)"
ok "undrain: gpu_healthy 1, gpu_drained 0" retry 2 bash -c "$(declare -f metrics metric metric_is); url=$url; metric_is gpu_healthy 0 1 && metric_is gpu_drained 0 0"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$tmp/token")" "$url/api/v1/gpus/$(state_val 1 uuid)/undrain")
ok "undrain by UUID over HTTP" test "$code" = 200
ok "GPU 1's worker runs again" retry 5 bash -c "kill -0 \$(awk '{ print \$1 }' $tmp/worker1.info)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $(cat "$tmp/token")" "$url/api/v1/gpus/7/drain")
ok "an unknown GPU is 404" test "$code" = 404

# ===== 6. Drain later: the running task finishes first =====
w1=$(worker_pid 1)
: >"$tmp/worker1.tasks"
# The undrain above makes the agent rebuild its event set when its current wait ends (up to
# 500 ms).  A set records only XIDs that come after its creation, so the agent makes the new
# set before it empties and frees the old one: this one XID, written in that window, must
# still be delivered (before that fix, one written there was lost: a clean-clone CI run failed so).
set_state "xid 1 1 63"
ok "XID 63 drains GPU 1 at once" retry 2 metric_is gpu_drained 1 1
ok "... but its worker keeps running its task" bash -c "kill -0 $w1 && [[ ! -s $tmp/worker1.tasks ]]"
ok "... which finishes, then the worker exits" retry 5 bash -c "! kill -0 $w1 2>/dev/null"
ok "the task ran to its end (rc 0)" grep -q "rc=0" "$tmp/worker1.tasks"
ok "infractl gpu drain --now HOST GPU" "$INFRACTL" gpu drain --now --token-file "$tmp/token" "127.0.0.1:$port" 0
ok "an operator drain stops the worker" retry 3 bash -c "! kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info) 2>/dev/null"
ok "... with reason operator" bash -c "curl -sf $url/metrics | grep -q 'reason=\"operator\",tier=\"fail_now\"'"

# ===== 7. A crashing worker is restarted =====
"$INFRACTL" gpu undrain --token-file "$tmp/token" "127.0.0.1:$port" 0 >/dev/null
retry 5 bash -c "kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info) 2>/dev/null"
kill -KILL "$(worker_pid 0)"
ok "a crashed worker is restarted (gpu_worker_restarts_total)" retry 5 bash -c "[[ \$(curl -sf $url/metrics | grep '^gpu_worker_restarts_total{gpu=\"0\"' | awk '{ print \$NF }') -ge 2 ]]"
stop_agent

# ===== 8. No driver: still 200, nvml_up 0, gpu_devices 0 =====
write_config
"$AGENT" --config.file "$tmp/agent.yml" --nvml.library /nonexistent/libnvidia-ml.so.1 >"$tmp/agent.log" 2>&1 &
agent_pid=$!
retry 5 grep -q "listening on" "$tmp/agent.log"
port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/agent.log" | head -1)
url=http://127.0.0.1:$port
ok "without a driver /metrics is 200" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/metrics")" = 200
ok "without a driver: gpu_exporter_nvml_up 0, gpu_devices 0" \
    bash -c "curl -sf $url/metrics | grep -q '^gpu_exporter_nvml_up 0' && curl -sf $url/metrics | grep -q '^gpu_devices 0'"
ok "without a driver the agent says why in its log" grep -q "NVML is not available" "$tmp/agent.log"
stop_agent

# ===== 9. A hung NVML call neither blocks scrapes nor the shutdown =====
write_config
set_state
start_agent
retry 5 test -s "$tmp/worker1.info"
set_state "gpu1.hang_ms 60000"
sleep 1
worst=$(for _ in $(seq 20); do curl -sf -o /dev/null -w '%{time_total}\n' "$url/metrics"; done | sort -n | tail -1)
diag "slowest of 20 scrapes during a hung NVML call: ${worst}s"
ok "scrapes during a hung NVML call stay fast (< 100 ms each)" awk -v w="$worst" 'BEGIN { exit !(w != "" && w < 0.1) }'

t0=$(now_ms)
kill "$agent_pid"
wait "$agent_pid"
rc=$?
agent_pid=
ok "SIGTERM during a hung NVML call: the agent exits 0 within 6 s" \
    test "$rc" -eq 0 -a $(($(now_ms) - t0)) -lt 6000
ok "... and says which thread it left behind" grep -q "thread is stuck" "$tmp/agent.log"
ok "... after stopping the workers" bash -c "! kill -0 \$(awk '{ print \$1 }' $tmp/worker0.info) 2>/dev/null"
cat "$tmp/agent.log" >>"$tmp/all.log"
ok "no sanitizer report in any agent log" bash -c "! grep -E 'Sanitizer|runtime error' $tmp/all.log"

t_done
