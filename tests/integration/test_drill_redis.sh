#!/usr/bin/env bash
# Redis + Sentinel drills on the running stack (infractl drill redis): a writer that finds the
# master through Sentinel and follows +switch-master, every acknowledged id read back on both
# nodes.  One short run per fault: no WAIT-confirmed write lost, the cluster whole again, the
# record consistent (a timeline, JSON a person and jq can read).  Gap targets are asserted by
# `make drill` over 10 runs, not here (one run on a shared 2-core machine is not a figure).
# Usage: test_drill_redis.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq

tmp=$(mktemp -d /tmp/ut-drill-redis.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

stack_whole 90

ok "a bad fault is a usage error (exit 2)" bash -c '"$1" drill redis --fault nope 2>/dev/null; test $? = 2' _ "$INFRACTL"

# drill FAULT [args]: one run, JSON in $tmp/FAULT.json, progress in $tmp/FAULT.log
drill() {
    local fault=$1
    shift
    "$INFRACTL" drill redis --fault "$fault" --max-gap 30s --json "$@" \
        >"$tmp/$fault.json" 2>"$tmp/$fault.log"
}
field() { jq -r ".runs[0].$2" "$tmp/$1.json"; }
check_run() {
    local f=$1
    diag "$f: $(grep 'drill: run 1:' "$tmp/$f.log" | sed 's/^drill: //')"
    ok "$f: the drill ran and passed (exit 0)" test "$2" = 0
    ok "$f: 0 WAIT-confirmed writes lost (read on both nodes)" test "$(field "$f" wait.lost)" = 0
    ok "$f: plain and WAIT-confirmed writes acknowledged ($(field "$f" plain.acked)/$(field "$f" wait.acked))" \
        test "$(field "$f" plain.acked)" -gt 100 -a "$(field "$f" wait.acked)" -gt 100
    ok "$f: no id twice" test "$(field "$f" plain.duplicates)/$(field "$f" wait.duplicates)" = 0/0
    ok "$f: whole again (Sentinels agree, the replica linked)" test "$(field "$f" healed)" = true
    ok "$f: a timeline with the fault mark and acknowledgements after it" \
        jq -e '.runs[0].timeline | .fault_ms > 0 and .heal_ms > .fault_ms and
               ([.acks_per_100ms[((.fault_ms / 100) | floor + 1):][]] | add) > 0' "$tmp/$f.json"
}

drill crash --html "$tmp/crash.html"
check_run crash $?
ok "crash: the HTML timeline is one self-contained page with an SVG" \
    bash -c 'grep -q "<svg" "$1" && ! grep -q "<script\|src=" "$1"' _ "$tmp/crash.html"

ok "the cluster is whole again" retry 60 whole
drill pause --pause 8s
check_run pause $?
ok "pause: Sentinel named a new master and the writer followed it" \
    bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field pause new_leader)" "$(field pause victim)"

ok "the cluster is whole again" retry 60 whole
drill switchover
check_run switchover $?
ok "switchover: the other node is master" \
    bash -c '[[ -n $1 && $1 != "$2" ]]' _ "$(field switchover new_leader)" "$(field switchover victim)"
ok "the stack is whole at the end" retry 60 whole
t_done
