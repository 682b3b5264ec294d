#!/usr/bin/env bash
# shellcheck disable=SC2016  # the bash -c snippets read their arguments as $1, $2, ...
# docker-compose `config -q` is a real validator here: on a copy of infrastructure/, the intact
# files pass, and each planted fault fails WITH an error naming it (not for another reason):
# an unknown key, a depends_on on an undefined service, two wrong types, a missing build path
# and a missing KAFKA_CLUSTER_ID.  (1.29 accepts a reference to an undefined secret:
# check_config.py checks those, test_config.sh shows it.)
# Usage: test_negative.sh SOURCE_DIR
set -uo pipefail
SRC=$1
# shellcheck source=tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
need_cmd docker-compose docker-compose
tmp=$(mktemp -d /tmp/ut-compose-negative-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The copy keeps the layout: build contexts are the repository root (..) and compose/kafka.
mkdir -p "$tmp/repo"
cp -r "$SRC/infrastructure" "$tmp/repo/infrastructure"
INFRA=$tmp/repo/infrastructure
ENVF=$INFRA/.env.example
# shellcheck source=tests/compose/lib_compose.sh
. "$SRC/tests/compose/lib_compose.sh"
ALL="docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml"

ok "the intact copy passes config -q" dc "$INFRA" "$ENVF" "$ALL" gpu config -q

# planted NAME FILE SED-EXPRESSION EXPECTED-ERROR-PART [ENVFILE]: FILE changed by the sed
# expression (which must change it), then config -q must fail saying EXPECTED-ERROR-PART.
planted() {
    local name=$1 file=$2 expr=$3 want=$4 envf=${5:-$ENVF} out rc
    cp "$INFRA/$file" "$tmp/orig"
    sed -i -e "$expr" "$INFRA/$file"
    if cmp -s "$INFRA/$file" "$tmp/orig"; then
        ok "$name: the fault is planted ($file changed)" false
        return
    fi
    out=$(dc "$INFRA" "$envf" "$ALL" gpu config -q 2>&1)
    rc=$?
    cp "$tmp/orig" "$INFRA/$file"
    ok "$name: config -q fails (exit $rc) naming '$want'" \
        bash -c '[[ $1 -ne 0 && $2 == *"$3"* ]]' _ "$rc" "$out" "$want"
    [[ $rc -ne 0 && $out == *"$want"* ]] || diag "output: $out"
}

planted "unknown key" docker-compose-monitoring.yml \
    '/^  prometheus:$/a\    colour: blue' "Unsupported config option for services.prometheus: 'colour'"
planted "undefined depends_on service" docker-compose-timescale.yml \
    's/^      pg-init:$/      pg-inti:/' "depends on service 'pg-inti' which is undefined"
planted "wrong type (healthcheck retries as text)" docker-compose-redis.yml \
    '0,/^      retries: 3$/s//      retries: three/' "retries to appropriate type: \"three\" is not a valid integer"
planted "wrong type (mem_limit as a list)" docker-compose-kafka.yml \
    's/^    mem_limit: 16g$/    mem_limit: [16g]/' "mem_limit contains an invalid type"
planted "missing build path" docker-compose-kafka.yml \
    's#context: ./compose/kafka$#context: ./compose/kafak#' "compose/kafak"
grep -v '^KAFKA_CLUSTER_ID=' "$ENVF" >"$tmp/env-no-cluster-id"
planted "KAFKA_CLUSTER_ID missing from the settings" docker-compose-kafka.yml \
    's/^  kafka1: &kafka$/  kafka1: \&kafka\n    # planted: the env file lacks KAFKA_CLUSTER_ID/' "set KAFKA_CLUSTER_ID" \
    "$tmp/env-no-cluster-id"
ok "the restored copy passes again" dc "$INFRA" "$ENVF" "$ALL" gpu config -q
t_done
