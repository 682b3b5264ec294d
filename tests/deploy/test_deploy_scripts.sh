#!/usr/bin/env bash
# The deploy scripts' logic without hosts, rolloutd or Alertmanager: test doubles for infractl
# and ssh (tests/deploy/fake/) come first on PATH, record every call and answer with scripted
# exit codes.  Checked: usage and inventory errors, --dry-run (prints the plan, runs nothing),
# the release archive each host receives, promote on healthy (canary -> partial -> full), and
# roll back on an alert / a degraded stack / a silent Alertmanager / a refused stage, with
# the exit codes (4 rolled back, 5 rollback failed, 1 nothing changed).
# Usage: test_deploy_scripts.sh SOURCE_DIR
# The bash -c checks below expand $0, $1... in the inner shell, on purpose.
# shellcheck disable=SC2016
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd jq jq
need_cmd git git
git -C "$SRC" rev-parse --verify --quiet HEAD >/dev/null || skip "$SRC is not a git checkout (the scripts push git archives)"

PROD=$SRC/infrastructure/scripts/deploy_production.sh
STAGING=$SRC/infrastructure/scripts/deploy_staging.sh
tmp=$(mktemp -d /tmp/ut-deploy-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export FAKE_DIR=$tmp/fake
export PATH=$SRC/tests/deploy/fake:$PATH
unset INFRACTL ROLLOUTD_URL ROLLOUTD_TOKEN ROLLOUTD_TOKEN_FILE INFRACTL_ALERTMANAGER_URL DEPLOY_INVENTORY DEPLOY_RELEASE

cat >"$tmp/inv" <<'EOF'
# test inventory
DEPLOY_DIR=/srv/ultrathink
ROLLOUTD_URL=http://rollout.test:8090
deploy@db1.test   --part timescale --part redis
gpu1.test         COMPOSE_PROJECT_NAME=ultrathink-gpu --part monitoring --gpu
mon1.test
EOF

# reset [KEY=CODES...]: a fresh fake: e.g. reset alerts=0,4 flags-stage=0,1
reset() {
    rm -rf "$FAKE_DIR"
    mkdir -p "$FAKE_DIR"
    : >"$FAKE_DIR/calls"
    echo '{"key":"model.v2","version":3,"environments":{"production":{"stage":"shadow","partial":25},"staging":{"stage":"off"}}}' >"$FAKE_DIR/flag.json"
    local kv
    for kv in "$@"; do tr , '\n' <<<"${kv#*=}" >"$FAKE_DIR/${kv%%=*}.codes"; done
}
# deploy SCRIPT ARGS...: runs it quickly (no bake), output in $tmp/out, exit code in $rc
deploy() {
    local s=$1
    shift
    "$s" --bake 0 --interval 0 "$@" >"$tmp/out" 2>&1
    rc=$?
}
stages() { sed -n 's/^infractl flags \(--url [^ ]* \)\{0,1\}\(stage .*\|kill .*\)$/\2/p' "$FAKE_DIR/calls" | paste -sd'|'; }
shows() { grep -qF -- "$1" "$tmp/out" || { diag "output lacks '$1':"; sed 's/^/#   /' "$tmp/out"; return 1; }; }
is() { [[ $1 == "$2" ]] || { diag "got '$1', want '$2'"; return 1; }; }

# ---- usage
for s in "$PROD" "$STAGING"; do
    n=$(basename "$s")
    "$s" --help >"$tmp/out" 2>&1
    ok "$n --help exits 0 and lists the options" bash -c '[[ $0 == 0 ]] && grep -q -- --canary-percent "$1" && grep -q -- --dry-run "$1"' $? "$tmp/out"
    deploy "$s" --bogus
    ok "$n --bogus: usage error, exit 2, named" bash -c '[[ $0 == 2 ]] && grep -q "unknown argument .--bogus" "$1"' "$rc" "$tmp/out"
done
deploy "$PROD" --inventory "$tmp/inv" --canary --canary-percent 60 --partial-percent 50 --dry-run
ok "canary % above partial %: exit 2 before anything runs" bash -c '[[ $0 == 2 ]] && grep -q "exceeds --partial-percent" "$1"' "$rc" "$tmp/out"
deploy "$PROD" --canary --flag model.v2 --dry-run
ok "no inventory and no --no-push: exit 2, says so" bash -c '[[ $0 == 2 ]] && grep -q "no inventory" "$1"' "$rc" "$tmp/out"
deploy "$PROD" --inventory "$tmp/inv" --bake soon
ok "--bake soon: exit 2" is "$rc" 2
deploy "$PROD" --inventory "$tmp/inv" --release no-such-ref --dry-run
ok "an unknown --release: exit 1, named" bash -c '[[ $0 == 1 ]] && grep -q "no-such-ref. is not a commit" "$1"' "$rc" "$tmp/out"

# ---- inventory errors name file:line
printf 'DEPLOY_DIR=/srv\nFOO=1\nh1\n' >"$tmp/bad1"
printf 'DEPLOY_DIR=/srv\nh1 -f ../../etc/passwd.yml\n' >"$tmp/bad2"
printf 'h1 --part "$(reboot)"\n' >"$tmp/bad4"
printf '# nothing\n' >"$tmp/bad3"
reset
deploy "$PROD" --inventory "$tmp/bad1" --dry-run
ok "inventory: unknown setting -> exit 1 naming file:2" bash -c '[[ $0 == 1 ]] && grep -q "bad1:2: unknown setting .FOO" "$1"' "$rc" "$tmp/out"
deploy "$PROD" --inventory "$tmp/bad2" --dry-run
ok "inventory: a compose file outside infrastructure/ -> exit 1" bash -c '[[ $0 == 1 ]] && grep -q "bad2:2:" "$1"' "$rc" "$tmp/out"
deploy "$PROD" --inventory "$tmp/bad4" --dry-run
ok "inventory: shell syntax in a host's arguments -> exit 1" bash -c '[[ $0 == 1 ]] && grep -q "bad4:1:" "$1"' "$rc" "$tmp/out"
deploy "$PROD" --inventory "$tmp/bad3" --dry-run
ok "inventory without hosts -> exit 1" bash -c '[[ $0 == 1 ]] && grep -q "no hosts" "$1"' "$rc" "$tmp/out"

# ---- dry-run: the plan, nothing run
reset
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2 --dry-run
ok "dry-run: exit 0" is "$rc" 0
ok "dry-run: no infractl or ssh call at all" test ! -s "$FAKE_DIR/calls"
ok "dry-run: shows the ssh push of each host with its part of the compose files" \
    bash -c 'grep -q "would run: ssh -o BatchMode=yes deploy@db1.test .*COMPOSE_PROJECT_NAME=ultrathink; compose/compose.sh --part timescale --part redis pull --ignore-pull-failures; compose/compose.sh --part timescale --part redis up -d --remove-orphans" "$0" && grep -q "would run: ssh -o BatchMode=yes gpu1.test .*export ULTRATHINK_VERSION=\"\$r\" COMPOSE_PROJECT_NAME=ultrathink-gpu; compose/compose.sh --part monitoring --gpu pull.* --gpu up -d" "$0" && grep -q "would run: ssh -o BatchMode=yes mon1.test .*compose/compose.sh up -d" "$0"' "$tmp/out"
reset
ULTRATHINK_REGISTRY=ghcr.io/acme/ultrathink deploy "$PROD" --inventory "$tmp/inv" --dry-run
ok "dry-run with \$ULTRATHINK_REGISTRY: the hosts' compose pulls REGISTRY/NAME:COMMIT" \
    bash -c '[[ $0 == 0 ]] && grep -q "would run: ssh -o BatchMode=yes deploy@db1.test .*export ULTRATHINK_VERSION=\"\$r\" COMPOSE_PROJECT_NAME=ultrathink ULTRATHINK_REGISTRY=ghcr.io/acme/ultrathink; compose/compose.sh --part timescale --part redis pull" "$1"' "$rc" "$tmp/out"
ULTRATHINK_REGISTRY='bad registry;rm' deploy "$PROD" --inventory "$tmp/inv" --dry-run
ok "a registry path that is not one -> exit 2, named" bash -c '[[ $0 == 2 ]] && grep -q "ULTRATHINK_REGISTRY" "$1"' "$rc" "$tmp/out"
reset
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2 --dry-run
ok "dry-run: shows canary 5 -> partial 50 -> full with --url from the inventory" \
    bash -c 'grep -q "flags --url http://rollout.test:8090 stage model.v2 canary --env production --percent 5" "$0" && grep -q "stage model.v2 partial --env production --percent 50" "$0" && grep -q "stage model.v2 full --env production" "$0"' "$tmp/out"

# ---- promote on healthy
reset
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "healthy canary: exit 0" is "$rc" 0
ok "healthy canary: stages canary 5 -> partial 50 -> full, in production" is "$(stages)" \
    "stage model.v2 canary --env production --percent 5|stage model.v2 partial --env production --percent 50|stage model.v2 full --env production"
ok "healthy canary: health checked before (pre-flight) and after each stage (alerts + status)" \
    is "$(grep -c '^infractl alerts$' "$FAKE_DIR/calls")/$(grep -c '^infractl status --json$' "$FAKE_DIR/calls")" 4/4
ok "healthy canary: the three hosts pushed before the first stage" \
    bash -c 'awk "/^ssh /{s++} /stage model.v2 canary/{exit !(s==3)}" "$0"' "$FAKE_DIR/calls"
head=$(git -C "$SRC" rev-parse HEAD)
ok "the host receives the release's tree (git archive of HEAD: compose files and build contexts)" \
    bash -c 'tar -tf "$0" | grep -qx infrastructure/scripts/deploy_lib.sh && tar -tf "$0" | grep -qx CMakeLists.txt' "$FAKE_DIR/stdin.deploy@db1.test"
ok "... unpacked into DEPLOY_DIR/releases/COMMIT, current switched, .env linked, ULTRATHINK_VERSION=COMMIT" \
    bash -c 'grep -q "d=/srv/ultrathink; r=$1;.*ln -sfn \"releases/\$r\" \"\$d/current\".*ln -sfn \"\$d/.env\" \"\$d/current/infrastructure/.env\".*export ULTRATHINK_VERSION=\"\$r\"" "$0"' "$FAKE_DIR/calls" "$head"
ok "progress lines name each stage's verdict" shows "partial 50%: healthy"

reset
deploy "$STAGING" --no-push --flag model.v2 --checks alerts
ok "staging without --canary: straight to full in staging, exit 0" \
    bash -c '[[ $0 == 0 && $1 == "stage model.v2 full --env staging" ]]' "$rc" \
    "$(grep -o 'stage model.v2 .*' "$FAKE_DIR/calls" | paste -sd'|')"
ok "--checks alerts: no status call; --no-push: no ssh" \
    bash -c '! grep -q "^infractl status" "$0" && ! grep -q "^ssh" "$0"' "$FAKE_DIR/calls"

reset
deploy "$STAGING" --no-push --flag model.v2 --checks alerts --bake 2 --interval 1
ok "--bake 2 --interval 1: the full stage is checked repeatedly (>= 2 checks after the pre-flight one)" \
    bash -c '[[ $0 == 0 ]] && (($(grep -c "^infractl alerts$" "$1") >= 3))' "$rc" "$FAKE_DIR/calls"

# ---- roll back
reset alerts=0,4
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "alert during canary: exit 4" is "$rc" 4
ok "alert during canary: canary, then off; never partial" is "$(stages)" \
    "stage model.v2 canary --env production --percent 5|stage model.v2 off --env production"
ok "alert during canary: the alert and ROLLBACK are printed" \
    bash -c 'grep -q PostgresReplicationLag "$0" && grep -q "ROLLBACK: canary 5% unhealthy" "$0"' "$tmp/out"

reset alerts=0,0,4
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "alert during partial: exit 4, off after partial, never full" \
    bash -c '[[ $0 == 4 && $1 == *"partial --env production --percent 50|stage model.v2 off --env production" ]]' "$rc" "$(stages)"

reset status=0,0,0,4
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "degraded cluster after full (status exit 4): exit 4, rolled back to off" \
    bash -c '[[ $0 == 4 && $1 == *"full --env production|stage model.v2 off --env production" ]] && grep -q "postgres: pg3 not streaming" "$2"' "$rc" "$(stages)" "$tmp/out"

reset alerts=0,3
deploy "$PROD" --no-push --canary --flag model.v2
ok "Alertmanager silent (exit 3) during canary counts as unhealthy: exit 4" \
    bash -c '[[ $0 == 4 ]] && grep -q "does not answer" "$1"' "$rc" "$tmp/out"

reset flags-stage=0,1,0
deploy "$PROD" --no-push --canary --flag model.v2
ok "rolloutd refuses partial (exit 1): rolled back, exit 4" \
    bash -c '[[ $0 == 4 && $1 == *"partial --env production --percent 50|stage model.v2 off --env production" ]]' "$rc" "$(stages)"

reset alerts=0,4 flags-stage=0,1 flags-kill=0
deploy "$PROD" --no-push --canary --flag model.v2
ok "stage off fails: kill switch pulled, exit 4" \
    bash -c '[[ $0 == 4 && $1 == *"stage model.v2 off --env production|kill model.v2 --env production" ]]' "$rc" "$(stages)"

reset alerts=0,4 flags-stage=0,1 flags-kill=3
deploy "$PROD" --no-push --canary --flag model.v2
ok "stage off and kill both fail: exit 5, ROLLBACK FAILED" \
    bash -c '[[ $0 == 5 ]] && grep -q "ROLLBACK FAILED" "$1"' "$rc" "$tmp/out"

# ---- refuse before changing anything (exit 1)
reset alerts=4
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "unhealthy before the deploy: exit 1, no push, no stage" \
    bash -c '[[ $0 == 1 ]] && ! grep -q "^ssh\|stage" "$1" && grep -q "before the deploy" "$2"' "$rc" "$FAKE_DIR/calls" "$tmp/out"

reset
deploy "$PROD" --inventory "$tmp/inv" --canary --canary-percent 30 --flag model.v2
ok "canary 30% above the flag's partial 25%: exit 1, names both, nothing staged or pushed" \
    bash -c '[[ $0 == 1 ]] && grep -q "exceeds its partial percentage 25" "$2" && ! grep -q "^ssh\|stage" "$1"' "$rc" "$FAKE_DIR/calls" "$tmp/out"

reset
echo '{"key":"model.v2","environments":{"production":{"stage":"canary","kill":true}}}' >"$FAKE_DIR/flag.json"
deploy "$PROD" --no-push --canary --flag model.v2
ok "killed flag: exit 1, says how to lift it" bash -c '[[ $0 == 1 ]] && grep -q "kill model.v2 --env production --off" "$1"' "$rc" "$tmp/out"

reset flags-get=1
deploy "$PROD" --no-push --canary --flag model.v2
ok "unknown flag: exit 1, says how to create it" bash -c '[[ $0 == 1 ]] && grep -q "infractl flags create model.v2" "$1"' "$rc" "$tmp/out"

reset
echo gpu1.test >"$FAKE_DIR/ssh.fail"  # the 2nd of 3
deploy "$PROD" --inventory "$tmp/inv" --canary --flag model.v2
ok "push to the 2nd host fails: exit 1, host named, the 3rd not tried, no stage" \
    bash -c '[[ $0 == 1 ]] && grep -q "push to gpu1.test failed" "$2" && ! grep -q "stage\|^ssh mon1" "$1"' "$rc" "$FAKE_DIR/calls" "$tmp/out"

t_done
