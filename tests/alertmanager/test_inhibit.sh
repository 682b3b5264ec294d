#!/usr/bin/env bash
# The routing and inhibition of infrastructure/alertmanager/alertmanager.yml in a real
# Alertmanager (Debian's 0.25, cluster disabled, a free port, a temporary data dir): the local
# copy (make-local.py, pointed at a throw-away webhook sink) gets a set of alerts through its
# API, and the sink must see each at the expected receiver within group_wait (10 s) — except the
# warnings a critical alert of the same name and target inhibits.  amtool cannot test
# inhibition offline; this does.  About 15 s.
# Usage: test_inhibit.sh SOURCE_DIR
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd prometheus-alertmanager prometheus-alertmanager
need_cmd curl curl
need_cmd python3 python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ut-am-inhibit-XXXXXX)
sink_pid='' am_pids=()
cleanup() {
    local p
    for p in "${am_pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [[ -n $sink_pid ]] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

/usr/bin/python3 "$here/webhook_sink.py" "$tmp/sink.port" "$tmp/got.jsonl" &
sink_pid=$!
retry 5 test -s "$tmp/sink.port" || { echo "not ok 1 - webhook sink starts"; exit 1; }
# Two Alertmanagers side by side: the configuration under test, and the same without its
# inhibit rules (the control: there the inhibited warnings must arrive, so the test can fail).
sink=http://127.0.0.1:$(cat "$tmp/sink.port")
/usr/bin/python3 "$SRC/infrastructure/alertmanager/make-local.py" --webhook-url "$sink/alerts" \
    "$SRC/infrastructure/alertmanager/alertmanager.yml" "$tmp/am.yml"
/usr/bin/python3 - "$tmp/am.yml" "$tmp/control.yml" "$sink/control" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
del c["inhibit_rules"]
for r in c["receivers"]:
    r["webhook_configs"][0]["url"] = sys.argv[3]
yaml.safe_dump(c, open(sys.argv[2], "w"))
PY

# free_port: a port the kernel picks (never one of the stack's or the monitoring contract's).
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_am() { # start_am CONFIG NAME -> sets URL_<NAME>, appends to am_pids
    local port
    port=$(free_port)
    prometheus-alertmanager --config.file="$1" --storage.path="$tmp/data-$2" \
        --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$tmp/$2.log" 2>&1 &
    am_pids+=("$!")
    printf -v "URL_$2" '%s' "http://127.0.0.1:$port"
}
start_am "$tmp/am.yml" am
start_am "$tmp/control.yml" control
for n in am control; do
    u=URL_$n
    if ! retry 10 curl -sf "${!u}/-/ready" -o /dev/null; then
        ok "alertmanager ($n) starts" false
        sed 's/^/# /' "$tmp/$n.log"
        t_done
        exit 1
    fi
    ok "alertmanager ($n) starts" true
done

alert() { # alert LABEL=VALUE... -> one JSON alert
    local IFS=, kv=()
    for l in "$@"; do kv+=("\"${l%%=*}\":\"${l#*=}\""); done
    echo "{\"labels\":{${kv[*]}},\"annotations\":{\"summary\":\"test\"}}"
}
alerts=(
    "$(alert alertname=HostDiskUsage severity=critical service=node instance=n1 mountpoint=/)"
    "$(alert alertname=HostDiskUsage severity=warning service=node instance=n1 mountpoint=/)"
    "$(alert alertname=HostDiskUsage severity=warning service=node instance=n1 mountpoint=/data)"
    "$(alert alertname=HostMemoryUsage severity=warning service=node instance=n1)"
    "$(alert alertname=PgReplicationLag severity=critical service=pg1 cluster=postgres)"
    "$(alert alertname=PgReplicationLag severity=warning service=pg1 cluster=postgres)"
    "$(alert alertname=PgReplicationLag severity=warning service=pg2 cluster=postgres)"
    "$(alert alertname=Watchdog severity=none)"
    "$(alert alertname=OddSeverity severity=info service=x)"
)
body="[$(IFS=,; echo "${alerts[*]}")]"
t0=$(date +%s.%N)
for n in am control; do
    u=URL_$n
    ok "the API ($n) takes the alerts" curl -sf -H 'Content-Type: application/json' -d "$body" "${!u}/api/v2/alerts" -o /dev/null
done
sleep 14

# seen PATH RECEIVER ALERTNAME LABEL=VALUE...: the sink got that alert (firing) at that
# receiver through that webhook path (/alerts: under test, /control: without inhibit rules);
# RECEIVER '*' = at any receiver.
seen() {
    /usr/bin/python3 - "$tmp/got.jsonl" "$@" <<'PY'
import json, sys
log, path, receiver, name, *want = sys.argv[1:]
want = dict(w.split("=", 1) for w in want)
want["alertname"] = name
for line in open(log):
    m = json.loads(line)
    if m["path"] != path or receiver not in ("*", m["receiver"]):
        continue
    for a in m.get("alerts", []):
        if a["status"] == "firing" and all(a["labels"].get(k) == v for k, v in want.items()):
            sys.exit(0)
sys.exit(1)
PY
}
got() { seen /alerts "$@"; }
never() { ! seen /alerts '*' "$@"; }
touch "$tmp/got.jsonl"
ok "critical disk alert -> pager" got pager HostDiskUsage severity=critical mountpoint=/
ok "its warning on the same mount point is inhibited (at no receiver)" never HostDiskUsage severity=warning mountpoint=/
ok "... which without the inhibit rule is sent (control)" seen /control ticket HostDiskUsage severity=warning mountpoint=/
ok "a warning on another mount point is not inhibited -> ticket" got ticket HostDiskUsage severity=warning mountpoint=/data
ok "a warning of another alert name on the same target is not inhibited -> ticket" got ticket HostMemoryUsage severity=warning
ok "critical replication lag on pg1 -> pager" got pager PgReplicationLag severity=critical service=pg1
ok "its warning on pg1 is inhibited" never PgReplicationLag severity=warning service=pg1
ok "... which without the inhibit rule is sent (control)" seen /control ticket PgReplicationLag severity=warning service=pg1
ok "the same warning on pg2 is not inhibited (another service) -> ticket" got ticket PgReplicationLag severity=warning service=pg2
ok "Watchdog -> deadman" got deadman Watchdog
ok "an unknown severity -> ticket" got ticket OddSeverity severity=info
first=$(/usr/bin/python3 -c '
import json, sys
ts = [m["t"] for m in map(json.loads, open(sys.argv[1])) if m["receiver"] == "pager" and m["path"] == "/alerts"]
print(min(ts) - float(sys.argv[2]) if ts else -1)' "$tmp/got.jsonl" "$t0")
diag "first pager notification $(printf '%.1f' "$first") s after the alerts were posted (group_wait 10 s)"
ok "... it came after group_wait and within 13 s" /usr/bin/python3 -c 'import sys; t = float(sys.argv[1]); sys.exit(0 if 9.5 <= t <= 13 else 1)' "$first"
t_done
