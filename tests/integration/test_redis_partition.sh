#!/usr/bin/env bash
# Partition of the Redis master (infractl drill redis --fault partition) on the Redis drill
# cluster of scripts/drill-netns.sh --cluster redis: three namespaces, each a Redis node and a
# Sentinel.  The master's namespace is cut from its replicas and the other Sentinels while it
# runs on and the client still reaches it: Sentinel promotes a replica, the old master goes on
# acknowledging plain writes (two masters), the heal makes it a replica of the new one.  One
# run: no WAIT-confirmed write lost, healed, two masters seen, every lost plain write one the
# old master took after the cut.  Also: the main stack is refused with a clear error, and the
# drill cluster's Sentinel timeouts are the main stack's.  The gap bound is loose (30 s); the
# targets are make drill-netns' series.
# Usage: test_redis_partition.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_cmd ip iproute2
need_cmd nft nftables
need_cmd redis-cli redis-tools
root=$(cd "$(dirname "$0")/../.." && pwd)
net=$root/scripts/drill-netns.sh

tmp=$(mktemp -d /tmp/ut-redis-partition.XXXXXX)
cleanup() {
    if [[ $(id -u) == 0 ]]; then
        INFRACTL=$INFRACTL "$net" --cluster redis down >/dev/null 2>&1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The main stack has no namespaces: refused from its stack file, running or not.
"$INFRACTL" -f "$root/infrastructure/local/stack.yml" --state-dir "$tmp/none" \
    drill redis --fault partition >"$tmp/main.out" 2>&1
echo $? >"$tmp/main.rc"
diag "main stack: $(cat "$tmp/main.out")"
ok "--fault partition on the main stack fails (exit 1) before anything runs" \
    test "$(cat "$tmp/main.rc")" = 1
ok "... saying why: its Redis nodes have no netns, use the drill cluster" \
    grep -q 'network namespaces.*has no netns.*drill-netns.sh --cluster redis' "$tmp/main.out"

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, nftables)"

ok "the Redis drill cluster comes up in its namespaces (drill-netns.sh --cluster redis up)" \
    env INFRACTL="$INFRACTL" "$net" --cluster redis up

# The drill cluster's Sentinels run with production's (and the main stack's) timeouts:
# check-topology.py holds the stack files' command lines to the same topology.yml values.
export REDISCLI_AUTH=
for key in down-after-milliseconds failover-timeout; do
    want=$(sed -n "s/^sentinel $key mymaster //p" "$root/infrastructure/compose/redis/sentinel.conf")
    got=$(redis-cli -h 10.232.0.12 -p 26379 SENTINEL master mymaster | sed -n "/^$key\$/{n;p}")
    ok "Sentinel $key is production's ($got = $want)" test -n "$want" -a "$got" = "$want"
done

INFRACTL=$INFRACTL "$net" --cluster redis infractl drill redis --fault partition \
    --max-gap 30s --json >"$tmp/p.json" 2>"$tmp/p.log"
rc=$?
grep -E '^drill: (fault|two masters|Sentinel names|cut of|whole|run 1:)' "$tmp/p.log" | sed 's/^/# /'
field() { jq -r ".runs[0].$1" "$tmp/p.json"; }
ok "the drill ran and passed (exit $rc)" test "$rc" = 0
ok "0 WAIT-confirmed writes lost (read on every node)" test "$(field wait.lost)" = 0
ok "plain and WAIT-confirmed writes acknowledged ($(field plain.acked)/$(field wait.acked))" \
    test "$(field plain.acked)" -gt 100 -a "$(field wait.acked)" -gt 100
ok "no id twice" test "$(field plain.duplicates)/$(field wait.duplicates)" = 0/0
ok "another node became master ($(field victim) -> $(field new_leader))" \
    bash -c '[[ -n $1 && $1 != null && $1 != "$2" ]]' _ "$(field new_leader)" "$(field victim)"
ok "healed: the old master a linked replica of the new one, the Sentinels agree" \
    test "$(field healed)" = true
ok "two masters at once: the cut-off one still answered role:master after the promotion" \
    jq -e '.runs[0].evidence.both_masters_ms | type == "array"' "$tmp/p.json"
ok "the cut-off master acknowledged plain writes after the cut ($(field evidence.old_master_acks_after_fault.plain))" \
    jq -e '.runs[0].evidence.old_master_acks_after_fault.plain > 0' "$tmp/p.json"
ok "every lost plain write is one the old master took after the cut (lost $(field plain.lost))" \
    jq -e '.runs[0] | .plain.lost <= .evidence.old_master_acks_after_fault.plain' "$tmp/p.json"
ok "durable write gap $(field gap_ms) ms within 30 s" jq -e '.runs[0].gap_ms <= 30000' "$tmp/p.json"
cut_left() {
    for i in 1 2 3; do ip netns exec "ut-drill-rd$i" nft list table inet ut_drill >/dev/null 2>&1 && return 0; done
    return 1
}
ok "no cut left in any namespace" bash -c "$(declare -f cut_left); ! cut_left"
t_done
