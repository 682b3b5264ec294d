#!/usr/bin/env bash
# deploy_production.sh --canary with the REAL infractl and a REAL rolloutd (a throw-away one on
# 127.0.0.1:0 with its own state directory, not the local stack's), and a stand-in Alertmanager
# (fake_alertmanager.py: the Watchdog, plus a critical alert after N requests).  Shows that
# the commands the script builds are the ones infractl and rolloutd accept: the flag ends full
# after canary 5% -> partial 50% (rolloutd's history says so), ends off after an alert during
# the canary, and a canary above the flag's partial is refused before anything changes.
# --no-push: the push is tested with an ssh double in test_deploy_scripts.sh.
# Usage: test_deploy_rolloutd.sh SOURCE_DIR BINARY_DIR
# The bash -c checks below expand $0, $1... in the inner shell, on purpose.
# shellcheck disable=SC2016
set -uo pipefail
SRC=$1
BIN=$2
. "$SRC/tests/integration/lib.sh"
need_cmd jq jq
need_cmd python3 python3
[[ -x $BIN/rolloutd && -x $BIN/infractl ]] || skip "$BIN/rolloutd or $BIN/infractl is not built (make build)"
git -C "$SRC" rev-parse --verify --quiet HEAD >/dev/null || skip "$SRC is not a git checkout"

tmp=$(mktemp -d /tmp/ut-deploy-rolloutd-XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/rolloutd" "$tmp/am"
# Its Prometheus is a port where nothing listens (31044, in the rollout tests' private range):
# every analysis there has no data.
"$BIN/rolloutd" --state-dir "$tmp/rolloutd" --listen 127.0.0.1:0 --rollout-tick-ms 100 \
    --prometheus-url http://127.0.0.1:31044 >"$tmp/rolloutd.log" 2>&1 &
pids+=($!)
/usr/bin/python3 "$SRC/tests/deploy/fake_alertmanager.py" "$tmp/am" 2>"$tmp/am.log" &
pids+=($!)
retry 10 test -s "$tmp/rolloutd/rolloutd.addr" || { cat "$tmp/rolloutd.log"; echo "not ok 1 - rolloutd starts"; exit 1; }
retry 10 test -s "$tmp/am/port" || { cat "$tmp/am.log"; echo "not ok 1 - fake Alertmanager starts"; exit 1; }
ROLLOUTD_URL=http://$(cat "$tmp/rolloutd/rolloutd.addr")
INFRACTL_ALERTMANAGER_URL=http://127.0.0.1:$(cat "$tmp/am/port")
ROLLOUTD_TOKEN_FILE=$tmp/rolloutd/admin.token
INFRACTL=$BIN/infractl
export ROLLOUTD_URL INFRACTL_ALERTMANAGER_URL ROLLOUTD_TOKEN_FILE INFRACTL
unset ROLLOUTD_TOKEN DEPLOY_INVENTORY DEPLOY_RELEASE
retry 10 curl -fsS -o /dev/null "$ROLLOUTD_URL/readyz" 2>/dev/null || true
fx() { "$INFRACTL" flags --url "$ROLLOUTD_URL" --token-file "$ROLLOUTD_TOKEN_FILE" "$@"; }
get() { fx --json get "$1" | jq -r "$2"; }
deploy() { # deploy ARGS...: the production canary, fast; output in $tmp/out, exit code in $rc
    "$SRC/infrastructure/scripts/deploy_production.sh" --no-push --canary --checks alerts \
        --bake 0 --interval 0 "$@" >"$tmp/out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/out"
}
is() { [[ $1 == "$2" ]] || { diag "got '$1', want '$2'"; return 1; }; }

for f in model.good model.bad model.wide model.plan model.blind; do
    fx create "$f" --variants control,candidate >/dev/null || { echo "not ok 1 - create $f"; exit 1; }
done

# 1. healthy: canary 5 -> partial 50 -> full
deploy --flag model.good
ok "healthy canary: exit 0" is "$rc" 0
ok "... model.good is full in production" is "$(get model.good .environments.production.stage)" full
ok "... rolloutd's history: canary 5%, then partial 50%, then full" \
    is "$(fx --json history model.good | jq -c '[.history[] | select(.action != "create") | .after.environments.production | [.stage, (if .stage == "canary" then .canary elif .stage == "partial" then .partial else null end)]]')" \
    '[["canary",5],["partial",50],["full",null]]'

# 2. a critical alert from the 2nd request on (the pre-flight check passes, the canary's fails)
echo "$(($(cat "$tmp/am/served") + 1))" >"$tmp/am/fire_after"
deploy --flag model.bad
ok "alert during the canary: exit 4 (rolled back)" is "$rc" 4
ok "... model.bad is off in production" is "$(get model.bad .environments.production.stage)" off
ok "... its history: created, canary, off (never partial)" \
    is "$(fx --json history model.bad | jq -c '[.history[].after.environments.production.stage]')" '[null,"canary","off"]'
rm -f "$tmp/am/fire_after"

# 3. canary above the flag's partial (25 by default): refused before any change
v=$(get model.wide .version)
deploy --flag model.wide --canary-percent 30 --partial-percent 60
ok "canary 30% above the flag's partial 25%: exit 1, before any change" \
    bash -c '[[ $0 == 1 ]] && grep -q "exceeds its partial percentage 25" "$1"' "$rc" "$tmp/out"
ok "... model.wide's version unchanged" is "$(get model.wide .version)" "$v"

# 4. --plan: rolloutd's controller runs the rollout; the script waits for the outcome
cat >"$tmp/walk.yml" <<'EOF'
steps:
  - { stage: canary, percent: 5 }
  - { stage: partial, percent: 50 }
  - { stage: full }
EOF
deploy --flag model.plan --plan "$tmp/walk.yml"
ok "--plan: a plan that completes: exit 0" is "$rc" 0
ok "... model.plan is full, moved by the rollout controller" \
    is "$(fx --json history model.plan | jq -c '[.history[] | select(.actor == "rollout-controller") | .after.environments.production.stage]')" \
    '["canary","partial","full"]'
cat >"$tmp/blind.yml" <<'EOF'
no_data: fail
interval_s: 1
steps:
  - stage: canary
    percent: 5
    analysis:
      - { name: success_rate, query: 'max(model_success_ratio)', threshold: { min: 0.99 } }
  - { stage: full }
EOF
deploy --flag model.blind --plan "$tmp/blind.yml"
ok "--plan: rolloutd rolls back (no data counted as failure): exit 4" is "$rc" 4
ok "... the output says rolloutd rolled back and why" grep -q "ROLLED BACK by rolloutd (rolled_back).*no data" "$tmp/out"
ok "... model.blind is back off" is "$(get model.blind .environments.production.stage)" off
sed -i 's/no_data: fail/no_data: pause/' "$tmp/blind.yml"
fx stage model.blind off >/dev/null
deploy --flag model.blind --plan "$tmp/blind.yml"
ok "--plan: a plan that pauses (no data) is aborted: exit 4" is "$rc" 4
ok "... model.blind is back off" is "$(get model.blind .environments.production.stage)" off
deploy --flag model.blind --plan "$tmp/nothing.yml"
ok "--plan with a missing file: exit 2" is "$rc" 2

# 5. the Alertmanager gone: the pre-flight check cannot tell, so nothing starts
kill "${pids[1]}" 2>/dev/null
wait "${pids[1]}" 2>/dev/null
deploy --flag model.wide
ok "Alertmanager unreachable before the deploy: exit 1, nothing staged" \
    bash -c '[[ $0 == 1 && $1 == "$2" ]]' "$rc" "$(get model.wide .version)" "$v"
t_done
