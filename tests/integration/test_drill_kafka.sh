#!/usr/bin/env bash
# Kafka drills on the running stack (infractl drill kafka): an idempotent acks=all producer
# whose delivery reports are the acknowledgements, the partition leader faulted, a consumer
# reading every message back.  One short run per fault, and a crash of the active KRaft
# controller on a partition it leads (--victim controller): no acknowledged message lost, none
# twice, the partition fully in sync again.  Gap targets are `make drill`'s (10 runs).
# Usage: test_drill_kafka.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq

tmp=$(mktemp -d /tmp/ut-drill-kafka.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

stack_whole 120

drill() { # NAME FAULT [ARGS...]
    local name=$1 fault=$2
    shift 2
    "$INFRACTL" drill kafka --fault "$fault" --max-gap 60s --json "$@" \
        >"$tmp/$name.json" 2>"$tmp/$name.log"
}
field() { jq -r ".runs[0].$2" "$tmp/$1.json"; }
check_run() {
    local f=$1
    diag "$f: $(grep 'drill: run 1:' "$tmp/$f.log" | sed 's/^drill: //')"
    ok "$f: the drill ran and passed (exit 0)" test "$2" = 0
    ok "$f: 0 acknowledged messages lost (read back by a consumer)" test "$(field "$f" messages.lost)" = 0
    ok "$f: 0 duplicates (idempotence)" test "$(field "$f" messages.duplicates)" = 0
    ok "$f: messages acknowledged ($(field "$f" messages.acked))" test "$(field "$f" messages.acked)" -gt 100
    ok "$f: another broker led the partition" \
        bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field "$f" new_leader)" "$(field "$f" victim)"
    ok "$f: healed (every broker registered, all replicas in sync)" test "$(field "$f" healed)" = true
}

drill crash crash
check_run crash $?
ok "the cluster is whole again" retry 120 whole
drill pause pause --pause 5s
check_run pause $?
ok "the cluster is whole again" retry 120 whole
drill controller crash --victim controller
check_run controller $?
ok "controller: the series says which victim" test "$(jq -r .victim "$tmp/controller.json")" = controller
ok "controller: the killed broker led the KRaft quorum" test "$(field controller victim_was_controller)" = true
ok "controller: another broker leads the quorum after the run" \
    bash -c '[[ -n $1 && $1 != null && $1 != "$2" ]]' _ "$(field controller controller_after)" "$(field controller victim)"
ok "controller: its own topic, a partition per ordered pair of brokers" \
    bash -c '"$1" kafka topics --describe --topic infractl.drill.controller | grep -c "Partition: " | grep -qx 6' _ "$INFRACTL"
ok "the stack is whole at the end" retry 120 whole
t_done
