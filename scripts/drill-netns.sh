#!/usr/bin/env bash
# drill-netns.sh - the network and the cluster of the partition / host-death drills
# (infrastructure/local/drill-netns.yml, docs/drills.md).  As root:
#   drill-netns.sh up [INFRACTL]     bridge ut-drill0 10.231.0.1/24, namespaces ut-drill-pg1..3
#                                    (10.231.0.11..13, veth pairs ut-drill-v1..3 on the bridge),
#                                    then the cluster under its own supervisor (state .infra-netns)
#   drill-netns.sh down [INFRACTL]   the cluster down, the namespaces, veths and bridge removed
#   drill-netns.sh infractl ARGS...  infractl with the drill cluster's stack file and state dir
# Addresses exist only on this machine.  Idempotent: `up` twice or `down` twice is harmless.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
infractl=${2:-${INFRACTL:-$root/build/infractl}}
stack=$root/infrastructure/local/drill-netns.yml
state=${UT_DRILL_NETNS_STATE:-$root/.infra-netns}
bridge=ut-drill0
nodes=(1 2 3)

die() { echo "drill-netns: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (ip netns, veth, bridge)"
command -v ip >/dev/null || die "ip not found (Debian package iproute2)"

net_up() {
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    ip addr replace 10.231.0.1/24 dev "$bridge"
    ip link set "$bridge" up
    for i in "${nodes[@]}"; do
        local ns=ut-drill-pg$i veth=ut-drill-v$i
        [[ -e /run/netns/$ns ]] || ip netns add "$ns"
        if ! ip link show "$veth" >/dev/null 2>&1; then
            ip link add "$veth" type veth peer name eth0 netns "$ns"
        fi
        ip link set "$veth" master "$bridge" up
        ip -n "$ns" addr replace "10.231.0.1$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # a cut left by an interrupted drill
        ip netns exec "$ns" nft delete table inet ut_drill 2>/dev/null || true
    done
}

net_down() {
    for i in "${nodes[@]}"; do
        ip link del "ut-drill-v$i" 2>/dev/null || true
        [[ -e /run/netns/ut-drill-pg$i ]] && ip netns del "ut-drill-pg$i"
    done
    ip link del "$bridge" 2>/dev/null || true
}

case $cmd in
up)
    net_up
    "$infractl" -f "$stack" --state-dir "$state" up --detach --wait --timeout 240 --quiet
    ;;
down)
    if [[ -d $state ]]; then
        "$infractl" -f "$stack" --state-dir "$state" down >/dev/null || true
    fi
    net_down
    ;;
infractl)
    shift
    exec "${INFRACTL:-$root/build/infractl}" -f "$stack" --state-dir "$state" "$@"
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
