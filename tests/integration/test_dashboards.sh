#!/usr/bin/env bash
# Every panel of every Grafana dashboard (infrastructure/grafana/dashboards/) against the live
# local Prometheus: no query error, and data for every panel whose source runs locally (the
# GPU dashboard's do not: no gpu_agent in the local stack).  Traffic first, so the rate panels
# have something to show: a Kafka producer and a consumer group that lags, and flag
# evaluations in rolloutd, for two minutes (two 1-minute rate windows of 15 s scrapes), and a
# rollout plan that walks the flag to full on those evaluations (the rollout panels).
# Uses the stack of INFRACTL_STATE_DIR (default: the repo's .infra); brings it up when it is not
# running and leaves it as it found it.
#
#   test_dashboards.sh INFRACTL
set -uo pipefail
INFRACTL=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
need_cmd kcat kcat
need_cmd curl curl
need_cmd jq jq
need_cmd /usr/bin/python3 python3
tmp=$(mktemp -d)
pids=()
flag=it-dash-$$
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    "$INFRACTL" flags delete "$flag" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

stack_use "$INFRACTL"
BS=$("$INFRACTL" kafka bootstrap)
topic=it.dash.$$
group=it-dash-$$
"$INFRACTL" kafka topics --create --topic "$topic" --partitions 3 --replication-factor 2 >/dev/null 2>&1
ok "topic $topic created" "$INFRACTL" kafka topics --describe --topic "$topic"

# Kafka: ~20 messages/s for the whole test; a group that consumes a little, then stops (lag).
(while :; do seq 1 20 | kcat -P -b "$BS" -t "$topic" -X acks=all 2>/dev/null; sleep 1; done) &
pids+=($!)
sleep 3
timeout 30 kcat -b "$BS" -G "$group" -X auto.offset.reset=earliest -c 20 -q "$topic" >/dev/null 2>&1
ok "consumer group $group committed offsets" \
    bash -c "'$INFRACTL' kafka consumer-groups --describe --group '$group' 2>/dev/null | grep -q '$topic'"

# rolloutd: a flag at partial 50 %, evaluated ~10 times a second with varying keys, and a
# missing flag asked for once every 2 s.
url=$(cat "$("$INFRACTL" status --json | jq -r .state_dir)/rolloutd/rolloutd.addr" 2>/dev/null)
url=${url:-http://127.0.0.1:8090}
[[ $url == http* ]] || url=http://$url
token=$(cat "$("$INFRACTL" status --json | jq -r .state_dir)/rolloutd/admin.token")
ok "flag $flag created" "$INFRACTL" flags create "$flag" --variants off,on
ok "flag $flag at partial 50 %" "$INFRACTL" flags stage "$flag" partial --percent 50
(i=0; while :; do
    i=$((i + 1))
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"context\":{\"targetingKey\":\"user-$i\"}}" "$url/ofrep/v1/evaluate/flags/$flag"
    # and now and then a flag that does not exist (the evaluation-errors panel)
    ((i % 20)) || curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"context":{}}' "$url/ofrep/v1/evaluate/flags/$flag-missing"
    sleep 0.1
done) &
pids+=($!)

# A rollout plan on the flag, gated by the stack's own Prometheus (the rollout panels'
# data): partial 75 % for 40 s while the flag is evaluated at least once a second, then full.
cat >"$tmp/plan.yml" <<PLAN
interval_s: 10
failure_limit: 20
no_data: fail
steps:
  - stage: partial
    percent: 75
    duration_s: 40
    analysis:
      - name: evaluations_per_second
        query: sum(rate(rolloutd_evaluations_total{job="rolloutd",flag="$flag"}[1m]))
        threshold: { min: 1 }
  - stage: full
PLAN
ok "a rollout plan started on $flag" "$INFRACTL" rollout start "$flag" --plan "$tmp/plan.yml"

diag "traffic for 130 s (two 1-minute rate windows at a 15 s scrape interval)"
sleep 130
"$INFRACTL" rollout status "$flag" --json >"$tmp/rollout.json" 2>&1
ok "the plan walked to full, gated by the stack's Prometheus (state $(jq -r .state "$tmp/rollout.json"))" \
    test "$(jq -r .state "$tmp/rollout.json")" = succeeded
ok "its analyses passed on real data" \
    test "$(jq '[.history[] | select(.result == "pass")] | length' "$tmp/rollout.json")" -ge 1
/usr/bin/python3 "$ROOT/tests/grafana/query_dashboards.py" --prometheus http://127.0.0.1:9490 \
    --minutes 3 --require-data-except '^ut-training/' --report "$tmp/report.json" \
    >"$tmp/out.txt" 2>&1
rc=$?
grep -v '^EMPTY (allowed)\|^ok ' "$tmp/out.txt" | sed 's/^/# /'
ok "every dashboard query runs and every local panel has data (query_dashboards.py exit $rc)" \
    test "$rc" -eq 0
ok "the report lists queries of all four dashboards" \
    test "$(jq '[.[].dashboard] | unique | length' "$tmp/report.json")" -ge 4
"$INFRACTL" kafka topics --delete --topic "$topic" >/dev/null 2>&1
"$INFRACTL" kafka consumer-groups --delete --group "$group" >/dev/null 2>&1
stack_leave "$INFRACTL"
t_done
