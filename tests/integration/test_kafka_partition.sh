#!/usr/bin/env bash
# Partition of the Kafka partition leader (infractl drill kafka --fault partition) on the
# drill-only cluster of scripts/drill-netns.sh --cluster kafka: three KRaft nodes in network
# namespaces, the leader's namespace cut from the other brokers and controllers with nftables
# while the host's producer and consumer still reach it, then healed.  One short run (an 8 s
# cut): no acknowledged message lost, none twice, another broker led, every broker reporting
# the partition whole again; the cut leader's own log shows it lost the controller and another
# node's log the controller fencing it.  The cut outlasts the fencing even when the cut broker
# led the KRaft quorum (4.2-4.7 s).  The gap bound is loose (25 s: the cut, the rejoin, a
# loaded CI machine); the target is make drill-netns' series.  Also: --fault partition on the main stack
# (brokers on 127.0.0.1, no namespaces) is refused with a clear error before anything runs.
# Usage: test_kafka_partition.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_cmd java openjdk-17-jre-headless
need_netns
root=$(cd "$(dirname "$0")/../.." && pwd)
net=$root/scripts/drill-netns.sh

tmp=$(mktemp -d /tmp/ut-kafka-partition.XXXXXX)
cleanup() {
    INFRACTL=$INFRACTL "$net" --cluster kafka down >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

# The error case first: the main stack file, a state directory of its own (secrets made up
# here: the file's references need them; no stack runs).
mkdir -p "$tmp/state/secrets"
for s in $(sed -n '/^secrets:/,/^[a-z]/s/^  - \([a-z_]*\).*/\1/p' "$root/infrastructure/local/stack.yml"); do
    head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$tmp/state/secrets/$s"
done
chmod 600 "$tmp"/state/secrets/*
"$INFRACTL" -f "$root/infrastructure/local/stack.yml" --state-dir "$tmp/state" \
    drill kafka --fault partition >"$tmp/main.out" 2>"$tmp/main.err"
rc=$?
diag "main stack: exit $rc: $(head -c 300 "$tmp/main.err")"
ok "--fault partition on the main stack: refused (exit 1)" test "$rc" = 1
ok "... saying it needs the brokers in network namespaces and where it runs" \
    grep -q "needs the brokers in network namespaces.*drill-netns.sh --cluster kafka" "$tmp/main.err"
ok "... before asking for a running stack" bash -c '! grep -q "not running" "$1"' _ "$tmp/main.err"

ok "the Kafka drill cluster comes up in its namespaces (drill-netns.sh --cluster kafka up)" \
    env INFRACTL="$INFRACTL" "$net" --cluster kafka up
INFRACTL=$INFRACTL "$net" --cluster kafka infractl drill kafka --fault partition --pause 8s \
    --max-gap 25s --json >"$tmp/p.json" 2>"$tmp/p.log"
rc=$?
field() { jq -r ".runs[0].$1" "$tmp/p.json"; }
diag "$(grep 'drill: run 1:' "$tmp/p.log" | sed 's/^drill: //')"
grep -E '^drill: (fault|new leader|cut|healed|kafka)' "$tmp/p.log" | sed 's/^/# /'
ok "the drill ran and passed (exit $rc)" test "$rc" = 0
ok "messages were acknowledged ($(field messages.acked))" test "$(field messages.acked)" -gt 0
ok "0 acknowledged messages lost" test "$(field messages.lost)" = 0
ok "0 duplicates (idempotent producer)" test "$(field messages.duplicates)" = 0
ok "another broker led the partition" \
    bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field new_leader)" "$(field victim)"
ok "healed: every broker reports the partition led by one broker, every replica in sync" \
    test "$(field healed)" = true
ok "the cut was removed after the 8 s cut (timeline)" \
    jq -e '.runs[0].timeline | .resume_ms - .fault_ms >= 8000 and .heal_ms >= .resume_ms' "$tmp/p.json" >/dev/null
ok "the cut leader's own log: its heartbeats to the controller failed" \
    jq -e '.runs[0].partition.summary.heartbeats_failed >= 1' "$tmp/p.json" >/dev/null
ok "another node's log: a controller fenced the cut broker" \
    jq -e '.runs[0].partition.summary.fenced_by_controller' "$tmp/p.json" >/dev/null
diag "$(jq -c '.runs[0].partition | {controller_before, controller_after, victim_was_controller, summary}' "$tmp/p.json")"
t_done
