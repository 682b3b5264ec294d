#!/usr/bin/env bash
# Metric-gated rollout plans end to end: a real Prometheus (1 s scrapes) reads a target whose
# values this test writes (metrics_file_server.py), rolloutd's controller queries it and moves
# flags.  Healthy values walk a plan to full; a breach in canary rolls back within one analysis
# interval with a history entry and an Alertmanager-style webhook; no data pauses (or fails,
# per plan) and never promotes; kill -9 of rolloutd mid-plan resumes the same step, promoting
# nothing twice.  The plans run side by side, so the whole test takes about 40 s.
#
# Ports: this test's private servers use 31040-31043 (Prometheus, target, webhook receiver,
# rolloutd), inside the range assigned to the rollout tests.
set -uo pipefail
ROLLOUTD=$1
INFRACTL=$2
here=$(dirname "$0")
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"

need_cmd prometheus prometheus
need_cmd jq jq
need_cmd curl curl
[[ -x /usr/bin/python3 ]] || skip "/usr/bin/python3 is not installed (Debian package python3)"

PROM_PORT=31040
TARGET_PORT=31041
HOOK_PORT=31042
RD_PORT=31043
tmp=$(mktemp -d /tmp/ut-rollout-plan-XXXXXX)
pids=()
cleanup() {
    rd_stop_all
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

for p in $PROM_PORT $TARGET_PORT $HOOK_PORT $RD_PORT; do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
        skip "port $p is taken (this test's private range 31040-31043)"
    fi
done

# ===== The target, Prometheus, the webhook receiver =====
# set_metrics LINES...: what the target serves from now on (atomic rename: no torn reads).
set_metrics() {
    printf '%s\n' "$@" >"$tmp/metrics.new"
    mv "$tmp/metrics.new" "$tmp/metrics"
}
# Healthy values for every model; v3's and v6's are changed below.
common=('model_success_ratio{model="v2"} 0.999' 'model_p99_latency_seconds{model="v2"} 0.1'
    'model_success_ratio{model="v6"} 0.999')
healthy=("${common[@]}" 'model_success_ratio{model="v3"} 0.999')
breached=("${common[@]}" 'model_success_ratio{model="v3"} 0.5')
set_metrics "${healthy[@]}"
/usr/bin/python3 "$here/metrics_file_server.py" $TARGET_PORT "$tmp/metrics" &
pids+=($!)
/usr/bin/python3 "$here/alert_webhook.py" $HOOK_PORT "$tmp/webhook.jsonl" &
pids+=($!)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: model
    static_configs:
      - targets: ["127.0.0.1:$TARGET_PORT"]
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address=127.0.0.1:$PROM_PORT --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
PROM=http://127.0.0.1:$PROM_PORT

# promq QUERY: the value of an instant query, empty when there is none.
promq() {
    curl -s --max-time 2 "$PROM/api/v1/query" --data-urlencode "query=$1" |
        jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}
has_value() { [[ -n $(promq "$1") ]]; }
if ! retry 30 has_value 'max(model_success_ratio{model="v2"})'; then
    diag "Prometheus did not scrape the target:"
    sed 's/^/# /' "$tmp/prometheus.log"
    t_done
    exit 1
fi
ok "Prometheus scrapes the test's target" true

# ===== rolloutd =====
start_rd() {
    rd_start A "$tmp/rd" --listen 127.0.0.1:$RD_PORT --prometheus-url "$PROM" \
        --rollout-webhook "http://127.0.0.1:$HOOK_PORT/" --rollout-tick-ms 200 --lease-ttl-ms 2000
}
start_rd || { t_done; exit 1; }
A=$RD_ADDR_A
T=$(cat "$tmp/rd/admin.token")
export ROLLOUTD_URL=http://$A ROLLOUTD_TOKEN=$T

for m in v2 v3 v4 v5 v6 v7; do
    "$INFRACTL" flags create model.$m --variants off,on >/dev/null || diag "cannot create model.$m"
done

# plan NO_DATA FAILURE_LIMIT CONSECUTIVE INTERVAL QUERY STEPS_JSON: a plan document.
plan() {
    jq -cn --arg nd "$1" --argjson fl "$2" --argjson cs "$3" --argjson iv "$4" --arg q "$5" \
        --argjson steps "$6" '{environment: "production", interval_s: $iv, failure_limit: $fl,
        consecutive_successes: $cs, no_data: $nd, on_failure: "rollback",
        steps: [$steps[] | . + (if .stage == "full" then {} else {analysis: [
            {name: "success_rate", query: $q, threshold: {min: 0.99}}]} end)]}'
}
walk='[{"stage":"shadow","percent":100,"duration_s":1},{"stage":"canary","percent":5,"duration_s":1},
       {"stage":"partial","percent":25,"duration_s":1},{"stage":"full"}]'
q() { printf 'max(model_success_ratio{model="%s"})' "$1"; }

# v2: healthy, walks to full, started with infractl from a YAML plan file.
cat >"$tmp/v2.yml" <<'EOF'
environment: staging        # --env production below wins
interval_s: 1
consecutive_successes: 2
steps:
  - stage: shadow
    percent: 100
    duration_s: 1
    analysis:
      - { name: success_rate, query: 'max(model_success_ratio{model="v2"})', threshold: { min: 0.99 } }
      - { name: p99_latency_seconds, query: 'max(model_p99_latency_seconds{model="v2"})', threshold: { max: 0.25 } }
  - stage: canary
    percent: 5
    duration_s: 1
    analysis:
      - { name: success_rate, query: 'max(model_success_ratio{model="v2"})', threshold: { min: 0.99 } }
  - stage: partial
    percent: 25
    duration_s: 1
    analysis:
      - { name: success_rate, query: 'max(model_success_ratio{model="v2"})', threshold: { min: 0.99 } }
  - stage: full
EOF
ok "infractl rollout start (YAML plan file)" \
    "$INFRACTL" rollout start model.v2 --plan "$tmp/v2.yml" --env production
# v3: canary lasts long; its metric is broken once it is there.
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v3 "$(plan pause 1 1 2 "$(q v3)" \
    '[{"stage":"shadow","percent":100,"duration_s":1},{"stage":"canary","percent":5,"duration_s":300},{"stage":"full"}]')")
ok "POST /api/v1/rollouts/model.v3 starts a rollout (201)" test "$(status_of "$out")" = 201
# v4: a query that has no data; no_data pause.  v5: the same with no_data fail.
nodata_steps='[{"stage":"shadow","percent":100,"duration_s":0},{"stage":"full"}]'
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v4 \
    "$(plan pause 1 1 1 'max(model_success_ratio{model="v4"})' "$nodata_steps")")
ok "start model.v4 (no data, pause)" test "$(status_of "$out")" = 201
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v5 \
    "$(plan fail 1 1 1 'max(model_success_ratio{model="nothing"})' "$nodata_steps")")
ok "start model.v5 (no data, fail)" test "$(status_of "$out")" = 201
# v6: canary for 15 s (long enough for the sections before its kill -9), killed in the middle.
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v6 "$(plan pause 1 1 1 "$(q v6)" \
    '[{"stage":"shadow","percent":100,"duration_s":1},{"stage":"canary","percent":5,"duration_s":15},{"stage":"full"}]')")
ok "start model.v6" test "$(status_of "$out")" = 201

# v7: a canary above the flag's partial (25 by default): the controller raises partial with it.
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v7 \
    '{"steps":[{"stage":"canary","percent":40},{"stage":"full"}]}')
ok "start model.v7 (canary 40 %, no analysis)" test "$(status_of "$out")" = 201

# ===== API contract and bad input =====
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v6 "$(plan pause 1 1 1 "$(q v6)" "$walk")")
ok "a second rollout of a running flag: 409" expect_error "$out" 409 conflict flag
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v2 \
    '{"steps":[{"stage":"canary","percent":5,"analysis":[{"name":"x","query":"up","threshold":{}}]}]}')
ok "a threshold without min/max: 400 naming the field" \
    expect_error "$out" 400 invalid_argument "steps[0].analysis[0].threshold"
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v2 '{"steps":[{"stage":"partial","percent":25},{"stage":"canary","percent":5}]}')
ok "steps going backwards: 400 naming the step" expect_error "$out" 400 invalid_argument "steps[1]"
out=$(api "$A" "$T" POST /api/v1/rollouts/nope "$(plan pause 1 1 1 up "$walk")")
ok "a rollout of an unknown flag: 404" expect_error "$out" 404 not_found flag
out=$(api "$A" "" GET /api/v1/rollouts)
ok "GET /api/v1/rollouts needs a token: 401" expect_error "$out" 401 unauthorized
out=$(api "$A" "$T" GET /api/v1/rollouts)
ok "GET /api/v1/rollouts lists the six rollouts" \
    test "$(body_of "$out" | jq '.rollouts | length')" = 6

# state FLAG / field FLAG JQ: from GET /api/v1/rollouts/FLAG.
field() { api "$A" "$T" GET "/api/v1/rollouts/$1" | sed '$d' | jq -r "$2"; }
state_is() { [[ $(field "$1" .state) == "$2" ]]; }
step_is() { [[ $(field "$1" .step) == "$2" ]]; }
flag_stage() { "$INFRACTL" flags get "$1" --json | jq -r ".environments.production.stage // \"off\""; }
stage_is() { [[ $(flag_stage "$1") == "$2" ]]; }

# ===== Breach in canary: rollback within one analysis interval =====
if retry 20 step_is model.v3 1; then
    ok "model.v3 reached canary" true
    set_metrics "${breached[@]}"
    breach_seen() { [[ $(promq "$(q v3)") == 0.5 ]]; }
    retry 10 breach_seen
    t0=$(date +%s%N)
    retry 10 state_is model.v3 rolled_back
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    diag "rollback came ${ms} ms after Prometheus had the breach (analysis interval 2000 ms)"
    ok "breach in canary: rolled back within one analysis interval (${ms} ms <= 2000 + 300)" \
        test "$ms" -le 2300
    ok "model.v3 is back at the last safe stage (shadow)" retry 5 stage_is model.v3 shadow
    ok "the rollout says why (success_rate below min)" \
        bash -c "[[ \$(cat <<<'$(field model.v3 .reason)') == *'success_rate = 0.5, below min 0.99'* ]]"
    ok "the analysis history has the failing check" \
        test "$(field model.v3 '[.history[] | select(.result == "fail")] | length')" -ge 1
    hist=$("$INFRACTL" flags history model.v3 --json)
    ok "the flag's history records the rollback and why" \
        test "$(jq -r '[.history[] | select(.action == "rollout.rollback")][0].reason' <<<"$hist" |
            grep -c 'success_rate = 0.5')" = 1
    hook_has() { grep -q '"flag": "model.v3"' "$tmp/webhook.jsonl" 2>/dev/null; }
    ok "the webhook received RolloutRolledBack for model.v3" retry 5 hook_has
    ok "the webhook is Alertmanager's shape (firing, labels)" \
        test "$(grep '"model.v3"' "$tmp/webhook.jsonl" | head -1 | jq -r '[.status, .alertname, .labels.env] | join(" ")')" = "firing RolloutRolledBack production"
else
    ok "model.v3 reached canary" false
fi

# ===== No data =====
ok "no data with no_data: pause pauses model.v4" retry 10 state_is model.v4 paused
paused_hook() {
    [[ $(jq -c 'select(.alertname == "RolloutPaused" and .labels.flag == "model.v4" and .labels.severity == "warning")' "$tmp/webhook.jsonl" 2>/dev/null | wc -l) -ge 1 ]]
}
ok "the webhook received RolloutPaused (warning) for model.v4" retry 5 paused_hook
ok "model.v4's history says nodata" \
    test "$(field model.v4 '.history[-1].result')" = nodata
ok "no data with no_data: fail rolls model.v5 back" retry 10 state_is model.v5 rolled_back
ok "model.v5 is back to its stage before the plan (off)" retry 5 stage_is model.v5 off

# ===== kill -9 mid-plan, restart: the same step =====
if retry 20 step_is model.v6 1; then
    before=$(field model.v6 '[.step, .step_started_at] | join(" ")')
    kill -9 "$RD_PID_A"
    wait "$RD_PID_A" 2>/dev/null
    RD_PIDS=()
    start_rd || { t_done; exit 1; }
    after=$(field model.v6 '[.step, .step_started_at] | join(" ")')
    ok "after kill -9 and restart model.v6 is at the same step, same start ($after)" \
        test "$before" = "$after"
    ok "model.v6 then completes" \
        retry 25 state_is model.v6 succeeded
    promos=$("$INFRACTL" flags history model.v6 --json |
        jq '[.history[] | select(.action == "rollout.promote" and .after.environments.production.stage == "canary")] | length')
    ok "model.v6 was promoted to canary exactly once" test "$promos" = 1
else
    ok "model.v6 reached canary" false
fi

# ===== Healthy: to full =====
ok "model.v2 walks to full (succeeded)" retry 30 state_is model.v2 succeeded
ok "model.v2's flag is at full" test "$(flag_stage model.v2)" = full
ok "model.v2: every step passed its checks, none failed" \
    test "$(field model.v2 '[.history[] | select(.result != "pass")] | length')" = 0
ok "model.v2: its flag history has start and 3 promotions" \
    test "$("$INFRACTL" flags history model.v2 --json | jq '[.history[] | select(.action | startswith("rollout."))] | length')" = 4
"$INFRACTL" rollout status model.v2 --watch --interval 0.2 --timeout 5 >"$tmp/watch.out"
ok "infractl rollout status --watch exits 0 for a succeeded rollout" test $? -eq 0
"$INFRACTL" rollout status model.v3 --watch --interval 0.2 --timeout 5 >/dev/null
ok "... and 1 for a rolled back one" test $? -eq 1
"$INFRACTL" rollout status model.v4 --watch --interval 0.2 --timeout 5 >/dev/null
ok "... and 4 for a paused one" test $? -eq 4

ok "model.v7 (canary above the flag's partial) succeeds" retry 10 state_is model.v7 succeeded
ok "... its canary step raised partial to 40 (canary stays inside partial)" \
    test "$("$INFRACTL" flags history model.v7 --json | jq -c '[.history[] | select(.action == "rollout.start")][0].after.environments.production | [.stage, .canary, .partial]')" = '["canary",40,40]'

# ===== Operator actions =====
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v4/resume)
ok "resume a paused rollout: 200 running" test "$(body_of "$out" | jq -r .state)" = running
ok "model.v4 pauses again (still no data), never promotes" retry 10 state_is model.v4 paused
ok "model.v4 stays at shadow" test "$(flag_stage model.v4)" = shadow
ok "infractl rollout abort model.v4" "$INFRACTL" rollout abort model.v4
ok "aborted model.v4 is back to off" retry 5 stage_is model.v4 off
out=$(api "$A" "$T" POST /api/v1/rollouts/model.v4/resume)
ok "resuming an aborted rollout: 409" expect_error "$out" 409 conflict state

# ===== /metrics =====
metrics=$(curl -s "http://$A/metrics")
ok "/metrics: rolloutd_rollout_state for model.v2 succeeded" \
    grep -q 'rolloutd_rollout_state{flag="model.v2",env="production",state="succeeded"} 1' <<<"$metrics"
ok "/metrics: rolloutd_rollout_step" grep -q 'rolloutd_rollout_step{flag="model.v3",env="production"} 1' <<<"$metrics"
ok "/metrics: rolloutd_flag_stage one-hot" \
    grep -q 'rolloutd_flag_stage{env="production",flag="model.v2",stage="full"} 1' <<<"$metrics"
ok "/metrics: this replica leads" grep -q '^rolloutd_rollout_leader 1' <<<"$metrics"
ok "/metrics: analysis results counted (model.v4's no-data checks since the restart)" \
    grep -q 'rolloutd_rollout_checks_total{flag="model.v4",env="production",metric="success_rate",result="nodata"} [1-9]' <<<"$metrics"

t_done
