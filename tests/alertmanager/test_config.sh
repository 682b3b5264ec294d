#!/usr/bin/env bash
# Alertmanager's configuration without a server: both files pass `amtool check-config`; the
# local copy is what make-local.py generates from alertmanager.yml (one source for routing);
# and `amtool config routes test` sends each kind of alert to the expected receiver in BOTH
# files.  A wrong expectation must fail (the check can fail).  Inhibition is not something
# amtool can evaluate offline (`config routes test` walks the routing tree only):
# test_inhibit.sh checks it with a real Alertmanager.
# Usage: test_config.sh SOURCE_DIR
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd amtool prometheus-alertmanager
need_cmd python3 python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"

AM=$SRC/infrastructure/alertmanager
PROD=$AM/alertmanager.yml
LOCAL=$AM/alertmanager.local.yml

# quiet COMMAND...: runs it; its output only shows (as diagnostics) when it fails.
quiet() {
    local out
    out=$("$@" 2>&1) && return 0
    diag "$* failed:"
    while IFS= read -r l; do diag "  $l"; done <<<"$out"
    return 1
}

for f in "$PROD" "$LOCAL"; do
    ok "amtool check-config $(basename "$f")" quiet amtool check-config "$f"
done
out=$(/usr/bin/python3 "$AM/make-local.py" --check 2>&1)
ok "alertmanager.local.yml is what make-local.py generates from alertmanager.yml" test -z "$out"
[[ -z $out ]] || diag "$out"

tmp=$(mktemp -d /tmp/ut-am-config-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed 's/severity="warning"/severity="warnin"/' "$PROD" >"$tmp/changed.yml"
/usr/bin/python3 "$AM/make-local.py" "$PROD" "$tmp/local.yml"
ok "... and --check fails on a local file generated from a different routing tree" \
    bash -c '! /usr/bin/python3 "$1" --check "$2" "$3" 2>/dev/null' _ "$AM/make-local.py" \
    "$tmp/changed.yml" "$tmp/local.yml"
ok "the local file sends every receiver to the local test webhook (127.0.0.1:9494/alerts)" \
    /usr/bin/python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
urls = {w["url"] for r in c["receivers"] for w in r["webhook_configs"]}
others = [k for r in c["receivers"] for k in r if k not in ("name", "webhook_configs")]
sys.exit(0 if urls == {"http://127.0.0.1:9494/alerts"} and not others else 1)' "$LOCAL"
ok "the production file names no secret inline (secrets come from *_file settings)" \
    bash -c '! grep -nE "(password|api_url|credentials|token|routing_key|api_key):" "$1"' _ "$PROD"

# route CASE-NAME EXPECTED-RECEIVER LABEL=VALUE...: in both files.
route() {
    local name=$1 want=$2 f
    shift 2
    for f in "$PROD" "$LOCAL"; do
        ok "$(basename "$f"): $name -> $want" \
            quiet amtool config routes test --config.file="$f" --verify.receivers="$want" "$@"
    done
}
route "critical" pager alertname=HostDiskUsage severity=critical service=node instance=127.0.0.1:9500
route "critical, clustered service" pager alertname=PostgresReplicationLag severity=critical service=pg2 cluster=postgres
route "warning" ticket alertname=HostDiskUsage severity=warning service=node
route "Watchdog (severity none)" deadman alertname=Watchdog severity=none
route "Watchdog without a severity" deadman alertname=Watchdog
route "Watchdog labelled critical still only beats" deadman alertname=Watchdog severity=critical
route "another severity=none alert" deadman alertname=InfoInhibitor severity=none
route "unknown severity (info) is not dropped" ticket alertname=Odd severity=info service=x
route "no severity at all is not dropped" ticket alertname=Odd service=x

ok "a wrong expectation fails (critical is not a ticket)" \
    bash -c '! amtool config routes test --config.file="$1" --verify.receivers=ticket severity=critical alertname=X >/dev/null 2>&1' _ "$PROD"
t_done
