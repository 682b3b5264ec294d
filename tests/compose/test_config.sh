#!/usr/bin/env bash
# shellcheck disable=SC2016  # the bash -c snippets read their arguments as $1, $2, ...
# The production compose files validate offline with docker-compose 1.29.2 (`config -q`: the
# compose schema, types, unknown keys, depends_on targets, interpolation, build paths), for
# every file combination users run, with the settings of .env.example; compose/compose.sh
# runs the same list; and the merged configuration keeps the rules of docs/deploy-compose.md
# (check_config.py: healthchecks, pinned images, limits, volumes, secrets, the platform's
# settings).  No engine is needed or contacted.
# Usage: test_config.sh SOURCE_DIR
set -uo pipefail
SRC=$1
# shellcheck source=tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
need_cmd docker-compose docker-compose
need_cmd python3 python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"
INFRA=$SRC/infrastructure
ENVF=$INFRA/.env.example
# shellcheck source=tests/compose/lib_compose.sh
. "$SRC/tests/compose/lib_compose.sh"
diag "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1)"

tmp=$(mktemp -d /tmp/ut-compose-config-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# quiet COMMAND...: its output only shows (as diagnostics) when it fails.
quiet() {
    local out
    out=$("$@" 2>&1) && return 0
    diag "$* failed:"
    while IFS= read -r l; do diag "  $l"; done <<<"$out"
    return 1
}

for c in "${COMBOS[@]}"; do
    IFS='|' read -r name files profile <<<"$c"
    ok "config -q: $name ($files${profile:+ --profile $profile})" \
        quiet dc "$INFRA" "$ENVF" "$files" "$profile" config -q
done

# The wrapper passes the same list (and --test / --gpu / --part).
wrap() {
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" bash "$INFRA/compose/compose.sh" "$@" \
        --env-file "$ENVF" config -q
}
ok "compose/compose.sh config -q (all parts)" quiet wrap
ok "compose/compose.sh --test --gpu config -q" quiet wrap --test --gpu
ok "compose/compose.sh --part kafka config -q" quiet wrap --part kafka
ok "compose/compose.sh --print names the base file first and every part" \
    bash -c 'out=$(bash "$1" --print config); [[ $out == *"-f $2/docker-compose.yml -f $2/docker-compose-timescale.yml -f $2/docker-compose-kafka.yml -f $2/docker-compose-redis.yml -f $2/docker-compose-monitoring.yml config"* ]]' _ "$INFRA/compose/compose.sh" "$INFRA"
# --role/--node: a host of a several-host deployment, as topology.yml places it (Terraform's
# bootstrap runs exactly this).
ok "compose/compose.sh --role db --node 2: the timescale part, etcd2 pg2 node-exporter" \
    bash -c 'out=$(bash "$1" --role db --node 2 --print up -d --no-deps); [[ $out == *"-f $2/docker-compose.yml -f $2/docker-compose-timescale.yml -f $2/docker-compose-monitoring.yml up -d --no-deps etcd2 pg2 node-exporter "* ]]' _ "$INFRA/compose/compose.sh" "$INFRA"
ok "compose/compose.sh --role monitoring --node 1 config -q (its parts validate)" quiet wrap --role monitoring --node 1
ok "compose/compose.sh --role kafka --node 3 up: --no-deps added (kafka-topics' brokers run elsewhere)" \
    bash -c 'out=$(bash "$1" --role kafka --node 3 --print up -d); [[ $out == *" up -d --no-deps kafka3 node-exporter "* ]]' _ "$INFRA/compose/compose.sh"
ok "compose/compose.sh refuses a host the role does not have" \
    bash -c '! bash "$1" --role kafka --node 4 --print up >/dev/null 2>&1' _ "$INFRA/compose/compose.sh"
ok "compose/compose.sh refuses an unknown part" \
    bash -c '! bash "$1" --part kafak config -q >/dev/null 2>&1' _ "$INFRA/compose/compose.sh"

# The merged configurations, checked against the rules of the deployment.
all="docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml"
if dc "$INFRA" "$ENVF" "$all" gpu config >"$tmp/all.yml" 2>"$tmp/err" &&
    dc "$INFRA" "$ENVF" "$all docker-compose-test.yml" gpu config >"$tmp/test.yml" 2>>"$tmp/err"; then
    out=$(/usr/bin/python3 "$SRC/tests/compose/check_config.py" "$SRC" "$tmp/all.yml" "$tmp/test.yml" 2>&1)
    rc=$?
    while IFS= read -r l; do [[ -n $l ]] && echo "$l"; done <<<"$out"
    ok "check_config.py: the merged production configuration keeps the deployment rules" test $rc -eq 0
    # ... and it can fail: the same checks on a merged file with planted faults.
    /usr/bin/python3 - "$tmp/all.yml" "$tmp/bad.yml" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
del s["kafka2"]["healthcheck"]                         # no healthcheck
s["redis1"]["image"] = "redis:latest"                  # unpinned image
del s["prometheus"]["mem_limit"]                        # no memory limit
s["prometheus"]["command"] = [a.replace("31d", "15d") for a in s["prometheus"]["command"]]
s["kafka1"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] = "2"
s["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] = "hunter2"
s["grafana"]["secrets"] = [{"source": "grafana_admin_pasword"}]  # undefined secret
s["pgbouncer"]["depends_on"]["pg-init"]["condition"] = "service_healthy"  # one-shot, no check
yaml.safe_dump(c, open(sys.argv[2], "w"))
PY
    out=$(/usr/bin/python3 "$SRC/tests/compose/check_config.py" "$SRC" "$tmp/bad.yml" "$tmp/test.yml" 2>&1)
    rc=$?
    for want in "kafka2: no healthcheck" "redis1: image" "prometheus: no mem_limit" "retention" \
        "KAFKA_MIN_INSYNC_REPLICAS" "GF_SECURITY_ADMIN_PASSWORD" \
        "grafana: secret grafana_admin_pasword is not declared" \
        "pgbouncer: depends on pg-init being healthy, but pg-init has no healthcheck"; do
        ok "check_config.py catches a planted fault: $want" \
            bash -c '[[ $1 -ne 0 && $2 == *"$3"* ]]' _ "$rc" "$out" "$want"
    done
else
    ok "docker-compose config (all + gpu, all + test) prints the merged configuration" false
    while IFS= read -r l; do diag "  $l"; done <"$tmp/err"
fi
t_done
