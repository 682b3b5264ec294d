#!/usr/bin/env bash
# Partition and host death of the PostgreSQL leader (infractl drill on the drill-only cluster
# of scripts/drill-netns.sh: nodes in network namespaces, cut with nftables, no supervisor to
# fence the leader, so its lease must expire).  One run each: no acknowledged write lost, the
# cluster healed with the old leader streaming again, no write acknowledged by two primaries
# (the writer's history), and for the partition the old primary's own log shows it demoted
# before the new one promoted.  Gap bound 30 s: the lease (ttl 20 + loop_wait 1) and not a
# second one; the 23 s target (ttl + loop_wait + 2 s) is make drill-netns' series, since a
# loaded CI machine adds seconds to Patroni's loop (22.9 s measured here once).
# Usage: test_pg_partition.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_netns
root=$(cd "$(dirname "$0")/../.." && pwd)
net=$root/scripts/drill-netns.sh

tmp=$(mktemp -d /tmp/ut-pg-partition.XXXXXX)
cleanup() {
    INFRACTL=$INFRACTL "$net" down >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

ok "the drill cluster comes up in its namespaces (scripts/drill-netns.sh up)" \
    env INFRACTL="$INFRACTL" "$net" up
drill() { # drill FAULT: one run, its JSON in $tmp/FAULT.json
    INFRACTL=$INFRACTL "$net" infractl drill postgres --fault "$1" --max-gap 30s --json \
        >"$tmp/$1.json" 2>"$tmp/$1.log"
    echo $? >"$tmp/$1.rc"
}
field() { jq -r ".runs[0].$2" "$tmp/$1.json"; }

for f in host-death partition; do
    drill "$f"
    diag "$f: $(grep 'drill: run 1:' "$tmp/$f.log" | sed 's/^drill: //')"
    grep '^drill: logs:' "$tmp/$f.log" | sed 's/^/# /'
    ok "$f: the drill ran and passed (exit $(cat "$tmp/$f.rc"))" test "$(cat "$tmp/$f.rc")" = 0
    ok "$f: 0 acknowledged writes lost (checked on every node)" test "$(field "$f" lost)" = 0
    ok "$f: a failed write never committed" test "$(field "$f" phantom)" = 0
    ok "$f: another node became leader" \
        bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field "$f" new_leader)" "$(field "$f" old_leader)"
    ok "$f: healed, the old leader streams from the new one" \
        test "$(field "$f" healed)/$(field "$f" old_leader_rejoined)" = true/true
    ok "$f: write gap $(field "$f" gap_ms) ms: one lease wait, not two" jq -e '.runs[0].gap_ms <= 30000' "$tmp/$f.json"
    ok "$f: no write acknowledged by two primaries (old's last ack before new's first)" \
        jq -e '.runs[0].writer_history | .dual_primary_acks == 0 and .ack_servers == 2 and .old_last_ack_ms < .new_first_ack_ms' "$tmp/$f.json"
    ok "$f: the new leader's promotion is in its log" test -n "$(field "$f" partition_evidence.new_leader_promoted_at)"
done
ok "partition: the old primary demoted itself (its own log) before the new one promoted" \
    jq -e '.runs[0].partition_evidence | .old_leader_demoted_at != "" and .old_leader_demoted_at < .new_leader_promoted_at' \
    "$tmp/partition.json"
diag "partition: $(jq -c '.runs[0].partition_evidence | {old_leader_demoted_at, new_leader_promoted_at}' "$tmp/partition.json")"
t_done
