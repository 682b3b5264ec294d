#!/usr/bin/env bash
# drill-netns.sh - the networks and the clusters of the partition / host-death drills
# (infrastructure/local/drill-netns*.yml, docs/drills.md).  As root:
#   drill-netns.sh [--cluster C] up [INFRACTL]     bridge, three namespaces joined to it by veth
#                                                  pairs, then the cluster under its own
#                                                  supervisor (its own state directory)
#   drill-netns.sh [--cluster C] down [INFRACTL]   the cluster down, namespaces, veths, bridge gone
#   drill-netns.sh [--cluster C] infractl ARGS...  infractl with that cluster's stack file and state
# C is one of (default pg):
#   pg     drill-netns.yml        bridge ut-drill0 10.231.0.1/24, ut-drill-pg1..3  .11..13, .infra-netns
#   redis  drill-netns-redis.yml  bridge ut-drill1 10.232.0.1/24, ut-drill-rd1..3  .11..13, .infra-netns-redis
#   kafka  drill-netns-kafka.yml  bridge ut-drill2 10.233.0.1/24, ut-drill-kf1..3  .11..13, .infra-netns-kafka
# Addresses exist only on this machine.  Idempotent: `up` twice or `down` twice is harmless.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "drill-netns: $*" >&2; exit 1; }

cluster=pg
if [[ ${1:-} == --cluster ]]; then
    [[ $# -ge 2 ]] || usage
    cluster=$2
    shift 2
fi
case $cluster in
pg) net=231 ns_prefix=ut-drill-pg veth_prefix=ut-drill-v suffix= ;;
redis) net=232 ns_prefix=ut-drill-rd veth_prefix=ut-drill-r suffix=-redis ;;
kafka) net=233 ns_prefix=ut-drill-kf veth_prefix=ut-drill-k suffix=-kafka ;;
*) die "unknown cluster '$cluster' (pg, redis or kafka)" ;;
esac
bridge=ut-drill$((net - 231))
stack=$root/infrastructure/local/drill-netns$suffix.yml
if [[ $cluster == pg ]]; then
    state=${UT_DRILL_NETNS_STATE:-$root/.infra-netns}
else
    state=$root/.infra-netns$suffix
fi
cmd=${1:-}
infractl=${2:-${INFRACTL:-$root/build/infractl}}
nodes=(1 2 3)

[[ $cmd == up || $cmd == down || $cmd == infractl ]] || usage
[[ $(id -u) == 0 ]] || die "needs root (ip netns, veth, bridge)"
command -v ip >/dev/null || die "ip not found (Debian package iproute2)"
[[ -f $stack ]] || die "$stack: no such stack file for cluster '$cluster'"

net_up() {
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    ip addr replace "10.$net.0.1/24" dev "$bridge"
    ip link set "$bridge" up
    for i in "${nodes[@]}"; do
        local ns=$ns_prefix$i veth=$veth_prefix$i
        [[ -e /run/netns/$ns ]] || ip netns add "$ns"
        if ! ip link show "$veth" >/dev/null 2>&1; then
            ip link add "$veth" type veth peer name eth0 netns "$ns"
        fi
        ip link set "$veth" master "$bridge" up
        ip -n "$ns" addr replace "10.$net.0.1$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # a cut left by an interrupted drill
        ip netns exec "$ns" nft delete table inet ut_drill 2>/dev/null || true
    done
}

net_down() {
    for i in "${nodes[@]}"; do
        ip link del "$veth_prefix$i" 2>/dev/null || true
        [[ -e /run/netns/$ns_prefix$i ]] && ip netns del "$ns_prefix$i"
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
esac
