#!/usr/bin/env bash
# Scheduled services (jobs) under the real supervisor, on a private stack in a temp dir: a job
# every 2 s runs and its metrics reach a real node-exporter (textfile collector, port 31200);
# a failing job records its exit code; a run still going at the next due time makes it
# skipped; a run past its timeout is stopped; `persistent` catches up after downtime;
# `up --wait` does not wait for jobs; `infractl run` runs one now; `stop` holds a job.
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_cmd curl curl
need_cmd prometheus-node-exporter prometheus-node-exporter
need_cmd promtool prometheus
NE_PORT=31200
tmp=$(mktemp -d)
st=$tmp/state
cleanup() {
    [[ -S $st/control.sock ]] && "$INFRACTL" --state-dir "$st" down --timeout 20 >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/jobs.yml" <<YML
name: jobs-test
jobs:
  metrics_dir: "\${state_dir}/textfile"
services:
  node-exporter:
    command: [/usr/bin/prometheus-node-exporter, --web.listen-address=127.0.0.1:$NE_PORT,
              --collector.disable-defaults, --collector.textfile,
              "--collector.textfile.directory=\${state_dir}/textfile"]
    dirs: ["\${state_dir}/textfile"]
    ports: [$NE_PORT]
    healthcheck: {type: http, port: $NE_PORT, path: /metrics, interval: 200ms}
  tick:
    command: [/bin/sh, -c, "echo run >>'\${state_dir}/tick.runs'"]
    depends_on: {node-exporter: {condition: service_healthy}}
    schedule: {every: 2s, timeout: 10s}
  bad:
    command: [/bin/sh, -c, "exit 3"]
    schedule: {every: 2s}
  slow:
    command: [/bin/sleep, "3"]
    schedule: {every: 2s}
  hang:
    command: [/bin/sleep, "100"]
    schedule: {every: 1h, timeout: 1s}
    stop_grace_period: 300ms
  catchup:
    command: [/bin/true]
    schedule: {every: 1h, persistent: true}
  nocatch:
    command: [/bin/true]
    schedule: {every: 1h}
YML
ctl() { "$INFRACTL" -f "$tmp/jobs.yml" --state-dir "$st" "$@"; }
prom=$st/textfile/ultrathink_jobs.prom
# metric NAME JOB [RESULT]: the value in the textfile ("" when absent).
metric() {
    local sel="job=\"$2\""
    [[ $# -gt 2 ]] && sel+=",result=\"$3\""
    awk -v k="$1{$sel}" '$1 == k { print $2 }' "$prom" 2>/dev/null
}
status_json() { ctl status --json >"$tmp/status.json" 2>"$tmp/status.err"; }
job() { jq -r --arg n "$1" ".services[] | select(.name == \$n) | .job.$2" "$tmp/status.json"; }

# Both 1h jobs last ran two hours ago, as if the supervisor had been down since.
mkdir -p "$st/jobs"
two_h_ago=$((($(date +%s) - 7200) * 1000000))
for j in catchup nocatch; do
    printf 'last_end_usec=%s\nlast_result=success\nruns_success=1\n' "$two_h_ago" >"$st/jobs/$j.state"
done

start=$(date +%s%N)
ctl up --detach --wait --timeout 20 --quiet 2>"$tmp/up.err"
rc=$?
up_ms=$((($(date +%s%N) - start) / 1000000))
diag "up --wait took ${up_ms} ms"
ok "up --wait returns 0 (jobs are not daemons to wait for)" test "$rc" -eq 0
[[ $rc -eq 0 ]] || diag "$(cat "$tmp/up.err")"
ok "up --wait does not wait for the 1h jobs' due times" test "$up_ms" -lt 15000
status_json
ok "status --json counts jobs as up" test "$(jq '.services_up == .services_total' "$tmp/status.json")" = true
ok "a job waits for its due time: nocatch idle, never run since" test "$(job nocatch runs_success)" = 1

ticks() { [[ -f $st/tick.runs ]] && wc -l <"$st/tick.runs" || echo 0; }
two_ticks() { (($(ticks) >= 2)); }
ok "the 2 s job ran twice within 6 s" retry 6 two_ticks
tick_metrics() { [[ $(metric ultrathink_job_runs_total tick success) -ge 2 ]]; }
ok "its textfile counts the successful runs" retry 3 tick_metrics
now=$(date +%s)
last=$(metric ultrathink_job_last_success_timestamp_seconds tick)
diag "tick: last success $last, now $now"
ok "last success timestamp is within 5 s of now" \
    awk -v l="$last" -v n="$now" 'BEGIN { exit !(l > n - 5 && l <= n + 1) }'
ok "last run timestamp is set" test -n "$(metric ultrathink_job_last_run_timestamp_seconds tick)"
ok "last exit code 0" test "$(metric ultrathink_job_last_exit_code tick)" = 0
ok "duration is a small non-negative number" \
    awk -v d="$(metric ultrathink_job_last_duration_seconds tick)" 'BEGIN { exit !(d >= 0 && d < 2) }'

ok "the failing job records exit code 3" test "$(metric ultrathink_job_last_exit_code bad)" = 3
ok "its failures are counted" test "$(metric ultrathink_job_runs_total bad failure)" -ge 1
ok "it has no last success" test -z "$(metric ultrathink_job_last_success_timestamp_seconds bad)"

skipped() { [[ $(metric ultrathink_job_runs_total slow skipped) -ge 1 ]]; }
ok "a 3 s run of a 2 s job makes the next due time skipped" retry 6 skipped
ok "the overlapping job never ran twice at once (its runs succeed)" \
    test "$(metric ultrathink_job_runs_total slow failure)" = 0

ok "persistent: the missed 1h run ran at start" test "$(metric ultrathink_job_runs_total catchup success)" = 2
ok "not persistent: no catch-up" test "$(metric ultrathink_job_runs_total nocatch success)" = 1

ok "the textfile passes promtool check metrics" bash -c "promtool check metrics <'$prom'"
ok "written atomically: no temp file left beside it" \
    test "$(find "$st/textfile" -type f ! -name '*.prom' | wc -l)" = 0
ne_has() { curl -fsS "http://127.0.0.1:$NE_PORT/metrics" >"$tmp/ne.txt" 2>/dev/null &&
    grep -q '^ultrathink_job_last_exit_code{job="bad"} 3$' "$tmp/ne.txt" &&
    grep -q '^ultrathink_job_runs_total{job="tick",result="success"} [1-9]' "$tmp/ne.txt"; }
ok "node-exporter serves the jobs' metrics from its textfile directory" retry 5 ne_has
ok "node-exporter reports no textfile error" \
    grep -q '^node_textfile_scrape_error 0$' "$tmp/ne.txt"

status_json
ok "status --json: the job's last result and next run" \
    bash -c "[[ \$(jq -r '.services[] | select(.name == \"tick\") | .job.last_result' '$tmp/status.json') == success ]] &&
             jq -e '.services[] | select(.name == \"tick\") | .job.next_run > now' '$tmp/status.json' >/dev/null"
ok "status --json: a daemon has no job" test "$(jq -r '.services[0].job' "$tmp/status.json")" = null
ctl status >"$tmp/status.txt" 2>&1
ok "status: a JOB section with schedule and result" \
    grep -qE '^tick +every 2s +[a-z]+ +[0-9-]+ [0-9:]+ +success ' "$tmp/status.txt"
diag "$(sed -n '/^JOB/,$p' "$tmp/status.txt")"

ctl run hang >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
diag "$(cat "$tmp/run.err")"
ok "run JOB: a run past its timeout exits 1" test "$rc" -eq 1
ok "run JOB: says timeout" grep -q "hang: timeout after" "$tmp/run.err"
ok "a timed-out run is counted, killed by SIGTERM (143)" \
    bash -c "[[ \$(awk '\$1 == \"ultrathink_job_runs_total{job=\\\"hang\\\",result=\\\"timeout\\\"}\" {print \$2}' '$prom') == 1 ]] &&
             grep -q '^ultrathink_job_last_exit_code{job=\"hang\"} 143$' '$prom'"
ctl run --json nocatch >"$tmp/run.json" 2>"$tmp/run.err"
ok "run --json JOB: exits 0 with the record" \
    test "$(jq -r '.[0].name + " " + .[0].last_result' "$tmp/run.json")" = "nocatch success"
ctl run node-exporter 2>/dev/null
ok "run on a daemon is a usage error (2)" test $? -eq 2
ctl restart nocatch 2>"$tmp/restart.err"
rc=$?
ok "restart of a job is a usage error (2)" test "$rc" -eq 2
ok "restart of a job points to run" grep -q 'infractl run nocatch' "$tmp/restart.err"

ctl stop tick >/dev/null 2>&1
status_json
ok "stop JOB holds its schedule" test "$(job tick scheduled)" = false
held=$(ticks)
sleep 2.5
ok "a held job does not run" test "$(ticks)" = "$held"
ctl run tick >/dev/null 2>&1
status_json
ok "run JOB puts a held job back on its schedule" test "$(job tick scheduled)" = true

ctl down --timeout 20 >/dev/null 2>&1
ok "the job's record survives the supervisor" grep -q '^runs_timeout=1$' "$st/jobs/hang.state"

t_done
