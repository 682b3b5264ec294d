#!/usr/bin/env bash
# The faults around the PostgreSQL leader (infractl drill): a planned switchover, etcd killed
# and paused, HAProxy and PgBouncer killed.  One short run each on the running stack: no
# acknowledged write lost (checked on every node), the cluster healed (after a switchover the
# old leader streams again; after the others the leader is the same), and the alert lists of
# Prometheus and Alertmanager were read during the run.  Gap bounds tell "sub-second to a few
# seconds" from waiting out a lease (>= 20 s); they are not speed targets (make drill).
# Usage: test_pg_drill_faults.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq

tmp=$(mktemp -d /tmp/ut-pg-drill-faults.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

stack_whole 90

# drill NAME [args]: one run, its JSON in $tmp/NAME.json
drill() {
    local name=$1
    shift
    "$INFRACTL" drill postgres --max-gap 3s --json "$@" >"$tmp/$name.json" 2>"$tmp/$name.log"
    echo $? >"$tmp/$name.rc"
}
field() { jq -r ".runs[0].$2" "$tmp/$1.json"; }
check_run() { # check_run NAME: ran, lost 0, writes on both sides, no phantom, alerts read
    local n=$1
    diag "$n: $(grep 'drill: run 1:' "$tmp/$n.log" | sed 's/^drill: //')"
    grep '^drill: alert:' "$tmp/$n.log" | sed 's/^/# /'
    ok "$n: the drill ran and passed (exit $(cat "$tmp/$n.rc"))" test "$(cat "$tmp/$n.rc")" = 0
    ok "$n: 0 acknowledged writes lost (checked on every node)" test "$(field "$n" lost)" = 0
    ok "$n: writes were acknowledged before and after ($(field "$n" acked))" test "$(field "$n" acked)" -gt 150
    ok "$n: a failed write never committed" test "$(field "$n" phantom)" = 0
    ok "$n: write gap $(field "$n" gap_ms) ms, far below a lease wait" jq -e '.runs[0].gap_ms < 3000' "$tmp/$n.json"
    ok "$n: the alert lists were read during the run" jq -e '.runs[0].alert_polls.ok > 0 and (.runs[0].alerts | type == "array")' "$tmp/$n.json"
}
kept() { # kept NAME: healed with the same leader
    ok "$1: healed, and $(field "$1" old_leader) is still the leader" \
        test "$(field "$1" healed)/$(field "$1" leader_kept)/$(field "$1" new_leader)" = true/true/
}

# ---- 1. planned switchover through Patroni's REST API (basic auth: the patroni_api secret)
drill switchover --fault switchover --html "$tmp/switchover.html"
check_run switchover
ok "switchover: --html drew the run as a timeline" \
    grep -q '<svg' "$tmp/switchover.html"
ok "switchover: another node became leader" \
    bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field switchover new_leader)" "$(field switchover old_leader)"
ok "switchover: healed, the old leader is a streaming replica again" \
    test "$(field switchover healed)/$(field switchover old_leader_rejoined)" = true/true

# ---- 2. etcd SIGKILLed (restart: always) and SIGSTOPped 8 s: the leader stays (Patroni's
# failsafe mode; the 20 s series is make drill's: docs/drills.md)
ok "the cluster is whole again" retry 60 whole
drill dcs-crash --fault dcs --mode crash
check_run dcs-crash
kept dcs-crash
ok "the cluster is whole again" retry 60 whole
# ... with `infractl status` asked about five times a second meanwhile.  It must not read
# etcd through Patroni (/cluster): those reads hold Patroni's REST threads and etcd client while
# etcd hangs, and the leader's failsafe mode needs every node's REST API.  When status asked
# /cluster, this loop stopped the leader's writes for 1.7 s (the gap check below; a 20 s pause:
# 11.7 s, and the supervisor fenced a node whose /liveness queued); with /patroni the gap
# stays in the tens of ms.
drill dcs-pause --fault dcs --mode pause --pause 12s &
drill_pid=$!
retry 30 grep -q '^drill: fault: SIGSTOP' "$tmp/dcs-pause.log"
: >"$tmp/status-times"
end=$(($(date +%s) + 12))
i=0
while (($(date +%s) < end)); do
    i=$((i + 1))
    t0=$(date +%s%N)
    "$INFRACTL" status --json >"$tmp/status-$i.json" 2>/dev/null
    echo $((($(date +%s%N) - t0) / 1000000)) >>"$tmp/status-times"
    sleep 0.1
done
wait $drill_pid
check_run dcs-pause
kept dcs-pause
ok "dcs-pause: writes went on while etcd was stopped (gap < 1 s)" jq -e '.runs[0].gap_ms < 1000' "$tmp/dcs-pause.json"
diag "$i status calls during the pause took $(sort -n "$tmp/status-times" | tr '\n' ' ')ms"
ok "dcs-pause: every status answered within 2 s" test "$(sort -n "$tmp/status-times" | tail -1)" -lt 2000
ok "dcs-pause: status said no Patroni node reached etcd, and still named a leader" \
    bash -c 'for f in "$@"; do jq -e ".warnings | test(\"no Patroni node reached etcd\")" "$f" >/dev/null &&
        jq -e "[.services[] | select(.role == \"leader\")] | length == 1" "$f" >/dev/null && exit 0; done; exit 1' \
    _ "$tmp"/status-*.json

# ---- 3. the proxies SIGKILLed: the supervisor restarts them, the writer reconnects
for p in haproxy pgbouncer; do
    ok "the cluster is whole again" retry 60 whole
    drill "proxy-$p" --fault proxy --target "$p"
    check_run "proxy-$p"
    kept "proxy-$p"
done

ok "usage: --target applies to the proxy fault only (exit 2)" \
    bash -c '"$1" drill postgres --fault dcs --target haproxy >/dev/null 2>&1; [[ $? == 2 ]]' _ "$INFRACTL"
ok "usage: an unknown proxy is refused (exit 2)" \
    bash -c '"$1" drill postgres --fault proxy --target nginx >/dev/null 2>&1; [[ $? == 2 ]]' _ "$INFRACTL"
t_done
