#!/usr/bin/env bash
# The PostgreSQL cluster of the running stack loses no acknowledged write and heals on its own
# when its leader freezes, crashes or is stopped (infractl drill: a writer through PgBouncer ->
# HAProxy, every acknowledged id checked on all three nodes afterwards), and `infractl status`
# says so: degraded (exit 4) while a member is down, an answer within its budget while a
# service is frozen, a warning for a Patroni older than 3.0.3.
# Write gaps are asserted against a bound that tells the supervisor's fencing (sub-second here,
# measured by `make bench`) from waiting out Patroni's lease (>= 20 s); not as a speed target.
# Usage: test_pg_failover.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq

tmp=$(mktemp -d /tmp/ut-pg-failover.XXXXXX)
stopped=()
cleanup() {
    for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

stack_whole 90

# drill FAULT MAX_GAP [args]: one run, its JSON in $tmp/FAULT.json
drill() {
    local fault=$1 gap=$2
    shift 2
    "$INFRACTL" drill postgres --fault "$fault" --max-gap "$gap" --json "$@" \
        >"$tmp/$fault.json" 2>"$tmp/$fault.log"
}
field() { jq -r ".runs[0].$2" "$tmp/$1.json"; }
check_run() { # check_run FAULT: lost 0, healed, a new leader, the old one back as a replica
    local f=$1
    diag "$f: $(grep 'drill: run 1:' "$tmp/$f.log" | sed 's/^drill: //')"
    ok "$f: the drill ran" test -s "$tmp/$f.json"
    ok "$f: 0 acknowledged writes lost (checked on every node)" test "$(field "$f" lost)" = 0
    ok "$f: writes were acknowledged before and after ($(field "$f" acked))" test "$(field "$f" acked)" -gt 200
    ok "$f: a failed write never committed" test "$(field "$f" phantom)" = 0
    ok "$f: another node became leader" bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field "$f" new_leader)" "$(field "$f" old_leader)"
    ok "$f: the cluster healed, the old leader is a streaming replica again" \
        test "$(field "$f" healed)/$(field "$f" old_leader_rejoined)" = true/true
}

# ---- 1. the leader's Patroni and postmaster frozen 20 s (backends run on)
drill pause 3s --pause 20s
check_run pause
ok "pause: write gap $(field pause gap_ms) ms, far below a lease wait (20 s)" \
    jq -e '.runs[0].gap_ms < 3000' "$tmp/pause.json"
ok "pause: the supervisor fenced the frozen leader" \
    grep -q "fencing service '$(field pause old_leader)': its main process .* is stopped" \
    "$(jq -r .state_dir <("$INFRACTL" status --json))/logs/supervisor.log"
ok "pause: ... and released its leader key after verifying its processes gone" \
    grep -q "service '$(field pause old_leader)': released its lock /service/ultrathink/leader" \
    "$(jq -r .state_dir <("$INFRACTL" status --json))/logs/supervisor.log"

# ---- 2. the leader's whole process tree SIGKILLed
ok "the cluster is whole again" retry 60 whole
drill crash 3s
check_run crash
ok "crash: write gap $(field crash gap_ms) ms, far below a lease wait" jq -e '.runs[0].gap_ms < 3000' "$tmp/crash.json"

# ---- 3. the leader's postmaster SIGKILLed (Patroni lives): the supervisor sees the process it
# inherited die while the node holds the key, and fails over instead of a restart in place
ok "the cluster is whole again" retry 60 whole
drill pg-crash 3s
check_run pg-crash
ok "pg-crash: write gap $(field pg-crash gap_ms) ms, far below a lease wait" jq -e '.runs[0].gap_ms < 3000' "$tmp/pg-crash.json"

# ---- 4. the leader's Patroni SIGTERMed: it comes back (restart: always) and streams
ok "the cluster is whole again" retry 60 whole
drill stop 3s
check_run stop
ok "stop: write gap $(field stop gap_ms) ms (Patroni alone: 2.4-3.4 s, its shutdown sleeps 1 s before releasing the key)" \
    jq -e '.runs[0].gap_ms < 3000' "$tmp/stop.json"
ok "stop: the node is back and streaming within 10 s" jq -e '.runs[0].heal_ms < 10000' "$tmp/stop.json"

# ---- 5. status: degraded while a member is down, bounded while a service is frozen
ok "the cluster is whole again" retry 60 whole
st=$("$INFRACTL" status --json)
replica=$(jq -r '[.services[] | select(.role == "replica" or .role == "sync replica")][0].name' <<<"$st")
sup=$(jq -r .supervisor_pid <<<"$st")
rpid=$(jq -r ".services[] | select(.name == \"$replica\") | .pid" <<<"$st")
kill -KILL "$rpid"
degraded() {
    "$INFRACTL" status >"$tmp/status.txt" 2>&1
    [[ $? == 4 ]] && grep -q "postgres cluster: DEGRADED" "$tmp/status.txt"
}
ok "a member down ($replica killed): status exits 4 and says the cluster is degraded" retry 5 degraded
diag "$(grep 'postgres cluster' "$tmp/status.txt")"
ok "... and it comes back on its own (status exit 0 again)" retry 60 whole
ok "the supervisor knew the killed node's processes (it is their subreaper: pid $sup)" \
    grep -q "service '$replica': every process of its last run is gone" \
    "$(jq -r .state_dir <<<"$st")/logs/supervisor.log"

r2=$(jq -r '.services[] | select(.role == "replica" and (.name | startswith("redis"))) | .pid' <<<"$st")
kill -STOP "$r2"
stopped+=("$r2")
t0=$(date +%s%N)
"$INFRACTL" status >"$tmp/frozen.txt" 2>&1
rc=$?
t1=$(date +%s%N)
kill -CONT "$r2"
diag "status with a frozen Redis replica: $(((t1 - t0) / 1000000)) ms, exit $rc"
ok "status answers while a Redis replica is frozen, naming it" grep -q "does not answer (no answer within" "$tmp/frozen.txt"
ok "... exit 4 (degraded)" test "$rc" = 4
ok "... within its role budget plus the supervisor round trip (< 1 s even under load)" \
    test $(((t1 - t0) / 1000000)) -lt 1000
ok "the Redis cluster is whole again after SIGCONT" retry 30 whole

ok "status warns of no Patroni older than 3.0.3 (4.1.5 runs)" bash -c '! "$1" status | grep -q "older than 3.0.3"' _ "$INFRACTL"
ok "every node runs Patroni 4.1.5" bash -c 'for p in 8008 8009 8010; do curl -sf 127.0.0.1:$p/patroni | jq -e ".patroni.version == \"4.1.5\"" >/dev/null || exit 1; done'
t_done
