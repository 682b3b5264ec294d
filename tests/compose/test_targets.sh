#!/usr/bin/env bash
# shellcheck disable=SC2016  # the bash -c snippets read their arguments as $1, $2, ...
# Every Prometheus job of infrastructure/prometheus/prometheus.yml has a compose targets file
# whose hosts are compose services on their local-stack ports, with the monitoring contract's
# labels (check_targets.py); and the check fails on planted faults (a host that is no service,
# a wrong port, a missing file, changed labels).
# Usage: test_targets.sh SOURCE_DIR
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
tmp=$(mktemp -d /tmp/ut-compose-targets-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ALL="docker-compose.yml docker-compose-timescale.yml docker-compose-kafka.yml docker-compose-redis.yml docker-compose-monitoring.yml"
CHECK=$SRC/tests/compose/check_targets.py
TARGETS=$INFRA/compose/prometheus/targets

if ! dc "$INFRA" "$ENVF" "$ALL" gpu config --services >"$tmp/services" 2>"$tmp/err"; then
    ok "docker-compose config --services" false
    while IFS= read -r l; do diag "  $l"; done <"$tmp/err"
    t_done
    exit
fi
diag "$(wc -l <"$tmp/services") compose services"
out=$(/usr/bin/python3 "$CHECK" "$SRC" "$tmp/services" 2>&1)
rc=$?
[[ -n $out ]] && echo "$out"
ok "every job's compose targets file exists and names compose services on their ports" test $rc -eq 0

# plant TEXT-EXPECTED CMD...: a copy of the targets dir changed by CMD (run inside it) fails.
plant() {
    local want=$1 out rc
    shift
    rm -rf "$tmp/t" && cp -r "$TARGETS" "$tmp/t"
    (cd "$tmp/t" && "$@")
    out=$(/usr/bin/python3 "$CHECK" "$SRC" "$tmp/services" "$tmp/t" 2>&1)
    rc=$?
    ok "a planted fault fails: $want" bash -c '[[ $1 -ne 0 && $2 == *"$3"* ]]' _ "$rc" "$out" "$want"
}
plant "host 'kafka4' is not a compose service" sed -i 's/kafka3:9094/kafka4:9094/' kafka-jmx.yml blackbox-tcp.yml
plant "kafka3:9095, but kafka3's ports are" sed -i 's/kafka3:7073/kafka3:9095/' kafka-jmx.yml
plant "targets/etcd.yml: missing (job etcd reads it)" rm etcd.yml
plant "exporter label): host 'redis_exporter'" sed -i 's/exporter: redis-exporter:9521/exporter: redis_exporter:9521/' redis.yml
plant "targets/postgres.yml: target labels differ" sed -i 's/service: pg3/service: pg4/' postgres.yml
plant "targets/old.yml: no job reads it" cp etcd.yml old.yml
t_done
