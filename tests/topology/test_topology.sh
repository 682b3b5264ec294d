#!/usr/bin/env bash
# infrastructure/topology.yml is the one source of truth for ports, cluster sizes, retention,
# memory limits and host sizes; infrastructure/scripts/check-topology.py compares the local
# stack, the compose files, Terraform, the Kafka topics, the Prometheus targets and rules
# (thresholds.yml through check-thresholds.py) and Alertmanager with it.
# 1. The checkout agrees.  2. A copy of the files it reads, with one disagreement planted at a
# time (a port, a retention, a cluster size, a memory limit, a threshold, a number written in
# Terraform), must fail (exit 1) with a message naming the file, the field and both values;
# the copy is put back after each.  No tool but Debian's python3 with python3-yaml.
# Usage: test_topology.sh SOURCE_DIR
set -uo pipefail
SRC=$(cd "${1:?usage: test_topology.sh SOURCE_DIR}" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
PY=/usr/bin/python3
[[ -x $PY ]] || skip "/usr/bin/python3 is not installed (Debian package python3)"
$PY -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"
CHECK=$SRC/infrastructure/scripts/check-topology.py

tmp=$(mktemp -d /tmp/ut-topology-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$($PY "$CHECK" --root "$SRC" 2>&1)
rc=$?
diag "${out##*$'\n'}"
ok "the checkout agrees with infrastructure/topology.yml" test $rc -eq 0
((rc == 0)) || while IFS= read -r l; do diag "  $l"; done <<<"$out"

# The copy: what the checker reads (check-thresholds.py also reads docs/alerts.md and
# gpu_agent's default XIDs).
copy=$tmp/tree
mkdir -p "$copy/docs" "$copy/src/gpu_agent"
cp -r "$SRC/infrastructure" "$copy/"
cp "$SRC/docs/alerts.md" "$copy/docs/"
cp "$SRC/src/gpu_agent/config.c" "$copy/src/gpu_agent/"
rm -f "$copy/infrastructure/.env" # a developer's own settings are not the repository's
out=$($PY "$CHECK" --root "$copy" 2>&1)
ok "the copy agrees too (it holds every file the checker reads)" test $? -eq 0

# plant DESCRIPTION FILE OLD NEW EXPECTED...: FILE (in the copy) with the first OLD replaced by
# NEW must fail (exit 1; WANT_RC=2: topology.yml itself unusable), and the output hold every
# EXPECTED text (file, field, both values).
plant() {
    local desc=$1 file=$2 old=$3 new=$4 w all=1 rc
    shift 4
    cp "$copy/$file" "$tmp/orig"
    if ! $PY - "$copy/$file" "$old" "$new" <<'PY'; then
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
if old not in text:
    sys.exit(1)
open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))
PY
        ok "planted $desc: '$old' is in $file (update the test)" false
        return
    fi
    out=$($PY "$CHECK" --root "$copy" 2>&1)
    rc=$?
    cp "$tmp/orig" "$copy/$file"
    for w in "$@"; do [[ $out == *"$w"* ]] || all=0; done
    ok "planted $desc: caught ($1)" test $rc -eq "${WANT_RC:-1}" -a $all -eq 1
    if ((rc != ${WANT_RC:-1} || all == 0)); then
        diag "exit $rc, expected ${WANT_RC:-1} and: $*"
        while IFS= read -r l; do diag "  $l"; done <<<"$out"
    fi
}
I=infrastructure
# ---- ports
plant "a compose port" $I/docker-compose-kafka.yml ':9093:9093"' ':9095:9095"' \
    "$I/docker-compose-kafka.yml: services.kafka2.ports (published)" 9095 "services.kafka2.ports is {7072, 9093, 19093}"
plant "a local stack port" $I/local/stack.yml "ports: [5434, 8009]" "ports: [5436, 8009]" \
    "$I/local/stack.yml: services.pg2.ports: is {5436, 8009}" "services.pg2.ports is {5434, 8009}"
plant "a Prometheus target's port" $I/compose/prometheus/targets/patroni.yml "pg2:8009" "pg2:8011" \
    "$I/compose/prometheus/targets/patroni.yml: target pg2:8011" "port 8011" "postgres 5434, patroni 8009"
plant "a port in HAProxy's compose config" $I/compose/haproxy/haproxy.cfg "pg3:5435" "pg3:5436" \
    "$I/compose/haproxy/haproxy.cfg" "pg3:5436" "postgres 5435"
plant "Alertmanager's local webhook port" $I/alertmanager/alertmanager.local.yml "127.0.0.1:9494" "127.0.0.1:9495" \
    "$I/alertmanager/alertmanager.local.yml: receivers[].webhook_configs[].url (port): is 9495" "services.alert-webhook.ports.http is 9494"
plant "a port in .env.example" $I/.env.example "PROMETHEUS_URL=http://prometheus:9490" "PROMETHEUS_URL=http://prometheus:9090" \
    "$I/.env.example: (addresses): prometheus:9090" "services.prometheus.ports are {http 9490}"
plant "a port written in Terraform" $I/terraform/main.tf "from = local.ports[n][0]" "from = 5433" \
    "$I/terraform/main.tf: locals" "number 5433 written in Terraform"
# ---- retention
plant "compose's Prometheus retention" $I/docker-compose-monitoring.yml "retention.time=31d" "retention.time=15d" \
    "$I/docker-compose-monitoring.yml: services.prometheus.command --storage.tsdb.retention.time: is 15d" "retention.prometheus.production.time is 31d"
plant "the local Prometheus retention" $I/local/stack.yml "retention.time=2d" "retention.time=3d" \
    "$I/local/stack.yml: services.prometheus.command --storage.tsdb.retention.time: is 3d" "retention.prometheus.local.time is 2d"
plant "compose's Kafka log retention" $I/compose/kafka/kafka.env "KAFKA_LOG_RETENTION_MS=604800000" "KAFKA_LOG_RETENTION_MS=86400000" \
    "$I/compose/kafka/kafka.env: KAFKA_LOG_RETENTION_MS: is 86400000" "retention.kafka_ms is 604800000"
plant "a production retention shorter than the SLO window" $I/topology.yml "production: {time: 31d}" "production: {time: 30d}" \
    "$I/topology.yml: retention.prometheus.production.time: is 30d" "at least 31d"
# ---- cluster sizes
plant "a Kafka voter missing in compose" $I/compose/kafka/kafka.env ",3@kafka3:19094" "" \
    "$I/compose/kafka/kafka.env: KAFKA_CONTROLLER_QUORUM_VOTERS: is 1@kafka1:19092,2@kafka2:19093" "is 1@kafka1:19092,2@kafka2:19093,3@kafka3:19094"
plant "the production broker count of the topics" $I/kafka/topics.yml "    brokers: 3
    broker_storage: 465GiB" "    brokers: 4
    broker_storage: 465GiB" \
    "$I/kafka/topics.yml: profiles.production.brokers: is 4" "clusters.kafka.members (production) is 3"
plant "the Sentinel quorum in compose" $I/compose/redis/sentinel.conf "redis1 6380 2" "redis1 6380 3" \
    "$I/compose/redis/sentinel.conf: sentinel monitor (quorum): is 3" "clusters.sentinel.quorum is 2"
plant "a production Sentinel down-after of its own" $I/compose/redis/sentinel.conf "down-after-milliseconds mymaster 2000" "down-after-milliseconds mymaster 5000" \
    "$I/compose/redis/sentinel.conf: sentinel down-after-milliseconds: is 5000" "clusters.sentinel.down_after_milliseconds is 2000"
plant "a local Sentinel failover-timeout of its own" $I/local/stack.yml "failover-timeout, mymaster, \"10000\"" "failover-timeout, mymaster, \"180000\"" \
    "$I/local/stack.yml: services.sentinel1.command --sentinel failover-timeout: is 180000" "clusters.sentinel.failover_timeout is 10000"
plant "a drill Sentinel without the timing on its command line" $I/local/drill-netns-redis.yml "          --sentinel, down-after-milliseconds, mymaster, \"2000\",
" "" \
    "$I/local/drill-netns-redis.yml: services.sentinel1.command --sentinel down-after-milliseconds: is None" "clusters.sentinel.down_after_milliseconds is 2000"
plant "the timing back in a local Sentinel template (it reaches a first start only)" $I/local/templates/sentinel/sentinel2.conf "sentinel auth-pass mymaster \${secret.redis}
" "sentinel auth-pass mymaster \${secret.redis}
sentinel parallel-syncs mymaster 1
" \
    "$I/local/templates/sentinel/sentinel2.conf: sentinel parallel-syncs: is set in the template" "the command line sets it"
plant "a local Kafka replication factor" $I/local/templates/kafka/kafka2.properties "default.replication.factor=2" "default.replication.factor=3" \
    "$I/local/templates/kafka/kafka2.properties: default.replication.factor: is 3" "clusters.kafka.replication_factor is 2"
plant "a production broker session timeout of its own" $I/compose/kafka/kafka.env "KAFKA_BROKER_SESSION_TIMEOUT_MS=1250" "KAFKA_BROKER_SESSION_TIMEOUT_MS=9000" \
    "$I/compose/kafka/kafka.env: KAFKA_BROKER_SESSION_TIMEOUT_MS: is 9000" "clusters.kafka.broker_session_timeout_ms is 1250"
plant "a local quorum fetch timeout of its own" $I/local/templates/kafka/kafka3.properties "controller.quorum.fetch.timeout.ms=1000" "controller.quorum.fetch.timeout.ms=2000" \
    "$I/local/templates/kafka/kafka3.properties: controller.quorum.fetch.timeout.ms: is 2000" "clusters.kafka.controller_quorum_fetch_timeout_ms is 1000"
plant "a production election timeout of its own" $I/compose/kafka/kafka.env "KAFKA_CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS=300" "KAFKA_CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS=1000" \
    "$I/compose/kafka/kafka.env: KAFKA_CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS: is 1000" "clusters.kafka.controller_quorum_election_timeout_ms is 300"
plant "an etcd member missing from Patroni's compose config" $I/compose/patroni/patroni.yml ",etcd3:2483" "" \
    "$I/compose/patroni/patroni.yml: etcd3.hosts: is etcd1:2479,etcd2:2481" "is etcd1:2479,etcd2:2481,etcd3:2483"
# ---- memory
plant "compose's Redis maxmemory" $I/compose/redis/redis.conf "maxmemory 128gb" "maxmemory 64gb" \
    "$I/compose/redis/redis.conf: maxmemory: is 64gb" "memory.redis_maxmemory.production is 128gb"
plant "the local Redis maxmemory" $I/local/templates/redis/redis2.conf "maxmemory 256mb" "maxmemory 512mb" \
    "$I/local/templates/redis/redis2.conf: maxmemory: is 512mb" "memory.redis_maxmemory.local is 256mb"
plant "a compose memory limit" $I/docker-compose-kafka.yml "mem_limit: 16g" "mem_limit: 24g" \
    "$I/docker-compose-kafka.yml: services.kafka1.mem_limit: is 25769803776" "services.kafka1.memory (production: 16g) is 17179869184"
plant "a test-overlay memory limit" $I/docker-compose-test.yml "redis1: &redis-test
    mem_limit: 512m" "redis1: &redis-test
    mem_limit: 1g" \
    "$I/docker-compose-test.yml: services.redis1.mem_limit: is 1073741824" "services.redis1.memory (test: 512m) is 536870912"
plant "the Kafka heap in .env.example" $I/.env.example "KAFKA_HEAP_OPTS=-Xms6g -Xmx6g" "KAFKA_HEAP_OPTS=-Xms8g -Xmx8g" \
    "$I/.env.example: KAFKA_HEAP_OPTS (-Xmx): is 8589934592" "memory.kafka_heap.production (6g)"
plant "a Redis host too small (Terraform default)" $I/terraform/variables.tf '"r6i.8xlarge"' '"r6i.4xlarge"' \
    "$I/terraform/variables.tf: variable redis_instance_type default: is r6i.4xlarge" "hosts.redis.instance_type is r6i.8xlarge"
plant "services that do not fit their host" $I/topology.yml "memory: {production: 160g, test: 512m}" "memory: {production: 300g, test: 512m}" \
    "$I/topology.yml: hosts.redis.memory_gib: redis host 1's services need" "hosts.redis.memory_gib is 256"
# ---- thresholds (thresholds.yml, through check-thresholds.py)
plant "an alert threshold" $I/prometheus/alerts.yml 'redis_memory_max_bytes{job="redis"} >= 90' 'redis_memory_max_bytes{job="redis"} >= 95' \
    "$I/prometheus/alerts.yml" "RedisMemoryNearMax: expression compares '>= 95' but thresholds.yml redis_memory_near_max.value is 90"
# ---- topology.yml itself
WANT_RC=2 plant "a port given twice in topology.yml" $I/topology.yml "ports: {sentinel: 26382}" "ports: {sentinel: 26381}" \
    "$I/topology.yml: services.sentinel3.ports.sentinel: port 26381 is also services.sentinel2.ports.sentinel"

out=$($PY "$CHECK" --root "$tmp/nowhere" 2>&1)
ok "a tree without topology.yml: exit 2, named" test $? -eq 2 -a "${out/topology.yml: (file): cannot read/}" != "$out"
t_done
