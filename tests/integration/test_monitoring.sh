#!/usr/bin/env bash
# Monitoring on the running local stack, end to end: Prometheus scrapes every target (none down
# in the steady stack) and loads every rule of infrastructure/prometheus/, infractl status and
# infractl alerts show it; the Watchdog reaches the webhook receiver through Alertmanager; a
# stopped Redis replica and a stopped PostgreSQL replica each raise their alert at the webhook
# within its `for` + one evaluation interval + group_wait (+ one scrape), and it resolves once
# the replica is back.  Uses the stack of INFRACTL_STATE_DIR (default: the repo's .infra);
# brings it up when it is not running and leaves it as it found it.
#
#   test_monitoring.sh INFRACTL
set -uo pipefail
INFRACTL=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_cmd curl curl
need_cmd /usr/bin/python3 python3
tmp=$(mktemp -d)
webhook_pid=
held=()
cleanup() {
    for s in "${held[@]}"; do "$INFRACTL" up --detach --wait --quiet "$s" >/dev/null 2>&1; done
    [[ -n $webhook_pid ]] && kill "$webhook_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

PROM=http://127.0.0.1:9490
WEBHOOK_PORT=9494
# From infrastructure/prometheus/prometheus.yml and alertmanager.yml: evaluation interval 15 s,
# scrape interval 15 s, group_wait 10 s.  Slack for a loaded 2-core machine: 30 s.
EVAL=15 SCRAPE=15 GROUP_WAIT=10 SLACK=30

stack_use "$INFRACTL"
status_json() { "$INFRACTL" status --json >"$tmp/status.json" 2>"$tmp/status.err"; }
jqs() { jq -r "$@" "$tmp/status.json"; }
svc() { jqs --arg n "$1" ".services[] | select(.name == \$n) | .$2"; }
prom_query() { curl -fsS --get "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null; }

# ---- 1. the monitoring services run, every target is up, every rule is loaded
for s in prometheus alertmanager node-exporter postgres-exporter1 postgres-exporter2 \
    postgres-exporter3 redis-exporter pgbouncer-exporter blackbox-exporter kafka-exporter; do
    ok "$s running and healthy" retry 60 \
        bash -c "[[ \$('$INFRACTL' status --json | jq -r '.services[] | select(.name == \"$s\") | .state + \"/\" + .health') == running/healthy ]]"
done
all_up() {
    status_json
    [[ $(jqs '.monitoring.targets_total // 0') -ge 20 ]] &&
        [[ $(jqs '.monitoring.targets_up') == "$(jqs '.monitoring.targets_total')" ]]
}
ok "every Prometheus target is up (status --json .monitoring)" retry 90 all_up
diag "targets: $(jqs '.monitoring.targets_up')/$(jqs '.monitoring.targets_total') up; down: $(jqs '.monitoring.targets_down')"
jobs_expected=$(/usr/bin/python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(" ".join(sorted(j["job_name"] for j in d["scrape_configs"] if j["job_name"] != "gpu_agent")))' \
    "$ROOT/infrastructure/prometheus/prometheus.yml")
jobs_seen=$(prom_query 'count by (job) (up)' | jq -r '[.data.result[].metric.job] | sort | join(" ")')
ok "every job of prometheus.yml but gpu_agent has targets here ($jobs_expected)" \
    test "$jobs_seen" = "$jobs_expected"
rules_in_files=$(/usr/bin/python3 -c '
import sys, yaml
print(sum(len(g["rules"]) for f in sys.argv[1:] for g in yaml.safe_load(open(f))["groups"]))' \
    "$ROOT/infrastructure/prometheus/alerts.yml" "$ROOT/infrastructure/prometheus/recording_rules.yml")
rules_loaded() { status_json && [[ $(jqs '.monitoring.rules') == "$rules_in_files" ]]; }
ok "Prometheus loaded all $rules_in_files rules of alerts.yml + recording_rules.yml" retry 40 rules_loaded
ok "status table: prometheus row shows targets and rules" \
    grep -qE "^prometheus +running .* targets [0-9]+/[0-9]+ up, $rules_in_files rules" <<<"$("$INFRACTL" status)"
ok "status table: alertmanager row shows its alerts" \
    grep -qE '^alertmanager +running .* alerts [0-9]+ active, [0-9]+ silenced' <<<"$("$INFRACTL" status)"
# Our own exporters' live expositions pass promtool's lint.
for ep in 127.0.0.1:8090/metrics 127.0.0.1:9308/metrics; do
    curl -fsS "http://$ep" >"$tmp/exp.txt" 2>/dev/null
    ok "promtool check metrics: http://$ep" bash -c 'promtool check metrics <"$1" >"$1.lint" 2>&1' _ "$tmp/exp.txt"
done
ok "no rule evaluation failed" \
    test "$(prom_query 'sum(prometheus_rule_evaluation_failures_total)' | jq -r '.data.result[0].value[1]')" = 0

# ---- 2. the alert path: the Watchdog reaches the webhook
/usr/bin/python3 "$(dirname "$0")/alert_webhook.py" "$WEBHOOK_PORT" "$tmp/hook.jsonl" &
webhook_pid=$!
touch "$tmp/hook.jsonl"
# (Counted with --slurp: `jq -e` exits 0 on an empty file.)
hook_has() { # STATUS ALERTNAME [SERVICE]: a notification received after $since
    local n
    n=$(jq -s --arg s "$1" --arg a "$2" --arg svc "${3:-}" --argjson t "${since:-0}" \
        '[.[] | select(.status == $s and .alertname == $a and .received >= $t and
                       ($svc == "" or .labels.service == $svc))] | length' "$tmp/hook.jsonl" 2>/dev/null)
    [[ ${n:-0} -gt 0 ]]
}
hook_first() { # STATUS ALERTNAME SERVICE: when the first such notification after $since arrived
    jq -s --arg s "$1" --arg a "$2" --arg svc "$3" --argjson t "$since" \
        '[.[] | select(.status == $s and .alertname == $a and .received >= $t and
                       .labels.service == $svc) | .received] | min' "$tmp/hook.jsonl"
}
# secs_since T0_NS UNIX_TIME: "12.3" seconds from T0 (date +%s%N) to UNIX_TIME (float)
secs_since() { awk -v t0="$1" -v t="$2" 'BEGIN { printf "%.1f", t - t0 / 1e9 }'; }
webhook_up() { kill -0 "$webhook_pid" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$WEBHOOK_PORT/"; }
ok "the webhook receiver listens on $WEBHOOK_PORT" retry 10 webhook_up
since=0
ok "the Watchdog reaches the webhook through Alertmanager" retry 90 hook_has firing Watchdog
"$INFRACTL" alerts >"$tmp/alerts.txt" 2>&1
rc=$?
"$INFRACTL" alerts --json >"$tmp/alerts.json" 2>/dev/null
diag "$(cat "$tmp/alerts.txt")"
ok "infractl alerts lists the Watchdog" grep -qE '^Watchdog +none +active' "$tmp/alerts.txt"
ok "infractl alerts --json names Watchdog" jq -e '.alerts[] | select(.name == "Watchdog")' "$tmp/alerts.json"
# This machine's own state may fire alerts (a disk over 70 % used, say): the exit code must
# say whether anything but severity none is active.
problems=$(jq '[.alerts[] | select(.state == "active" and .severity != "none")] | length' "$tmp/alerts.json")
ok "infractl alerts exits 4 exactly when an alert above severity none is active ($problems active, rc $rc)" \
    test "$rc" -eq "$( ((problems > 0)) && echo 4 || echo 0)"

# ---- 3. end to end: a stopped replica raises its alert at the webhook, then it resolves
# fault SERVICE ALERT FOR_S: stop SERVICE, time until ALERT (labels.service = SERVICE) arrives,
# start it again, time until the resolved notification arrives.
fault() {
    local service=$1 alert=$2 for_s=$3 t0 t1 fired resolved budget
    budget=$((for_s + EVAL + SCRAPE + GROUP_WAIT + SLACK))
    since=$(date +%s.%N)
    t0=$(date +%s%N)
    "$INFRACTL" stop "$service" >/dev/null 2>&1
    held+=("$service")
    ok "infractl stop $service: it is stopped" test "$(svc_state "$service")" = stopped
    if retry "$budget" hook_has firing "$alert" "$service"; then
        diag "$(jq -c --arg a "$alert" --arg svc "$service" 'select(.alertname == $a and .labels.service == $svc) | [.received, .status, .labels.job]' "$tmp/hook.jsonl" | tr '\n' ' ')"
        fired=$(secs_since "$t0" "$(hook_first firing "$alert" "$service")")
        ok "$alert for $service reached the webhook ${fired} s after the stop (for ${for_s} s; budget ${budget} s)" true
    else
        ok "$alert for $service reached the webhook within ${budget} s" false
    fi
    "$INFRACTL" alerts >"$tmp/alerts.txt" 2>&1
    rc=$?
    ok "infractl alerts lists $alert for $service and exits 4 (got $rc)" \
        bash -c "[[ $rc -eq 4 ]] && grep -qE '^$alert +[a-z]+ +active +$service ' '$tmp/alerts.txt'"
    # The resolution may arrive while `up --wait` still waits for the service's health.
    since=$(date +%s.%N)
    t1=$(date +%s%N)
    "$INFRACTL" up --detach --wait --quiet "$service" >"$tmp/up.out" 2>&1
    rc=$?
    held=()
    ok "infractl up --wait $service: up again, its cluster whole, in $(secs_since "$t1" "$(date +%s.%N)") s (rc $rc)" \
        test "$rc" -eq 0
    # Resolved: Prometheus stops sending it within an evaluation; Alertmanager notifies the
    # resolution at the group's next group_interval (1 m).
    if retry $((EVAL + SCRAPE + 60 + GROUP_WAIT + SLACK)) hook_has resolved "$alert" "$service"; then
        resolved=$(secs_since "$t1" "$(hook_first resolved "$alert" "$service")")
        ok "$alert for $service resolved at the webhook ${resolved} s after the restart was asked" true
    else
        ok "$alert for $service resolved at the webhook" false
    fi
}
svc_state() { status_json; svc "$1" state; } # status exits 4 while a service is down

fault redis2 "${REDIS_ALERT:-RedisDown}" "${REDIS_FOR:-60}"
replica=$(status_json && jqs '[.services[] | select(.role == "replica")][0].name')
[[ $replica == null || -z $replica ]] && replica=$(jqs '[.services[] | select(.role == "sync replica")][0].name')
diag "PostgreSQL replica to stop: $replica"
fault "$replica" "${PG_ALERT:-PostgresDown}" "${PG_FOR:-60}"
ok "cluster whole again after the faults" retry 60 bash -c "'$INFRACTL' status >/dev/null"
stack_leave "$INFRACTL"
t_done
