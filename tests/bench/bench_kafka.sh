#!/usr/bin/env bash
# make bench: Kafka in the local stack.  Time until the three brokers are healthy (cold: empty
# state dir, storage formatted first; warm: after down, data kept) through `infractl up --wait
# kafka1 kafka2 kafka3` (their dependency kafka-init included), then produce and consume
# throughput on loopback for 1 KiB records with acks=all to a topic of RF 2, 6 partitions:
# Kafka's own kafka-producer-perf-test / kafka-consumer-perf-test (Java client) and kcat
# (librdkafka) as the peer, in the same run.
# Uses its own state directory; a running default stack is stopped first and restarted after.
set -euo pipefail
INFRACTL=$(realpath "$1")
RECORDS=${KAFKA_BENCH_RECORDS:-100000}
state=$(mktemp -d /tmp/ut-bench-kafka.XXXXXX)
chmod 755 "$state"
restore=0
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }
ik() { "$INFRACTL" --state-dir "$state" "$@"; }

if "$INFRACTL" status >/dev/null 2>&1 || [[ $? -eq 4 ]]; then
    echo "bench: stopping the running default stack (restarted afterwards)" >&2
    "$INFRACTL" down >/dev/null
    restore=1
fi
cleanup() {
    ik down >/dev/null 2>&1 || true
    rm -rf "$state"
    ((restore)) && "$INFRACTL" up --detach --wait --quiet || true
}
trap cleanup EXIT

t=$(date +%s%N)
ik up --detach --wait --quiet kafka1 kafka2 kafka3
cold=$(ms "$t")
ik down >/dev/null 2>&1
t=$(date +%s%N)
ik up --detach --wait --quiet kafka1 kafka2 kafka3
warm=$(ms "$t")

BS=$(ik kafka bootstrap)
ik kafka topics --create --topic bench.perf --partitions 6 --replication-factor 2 >/dev/null
ik kafka topics --create --topic bench.kcat --partitions 6 --replication-factor 2 >/dev/null

# Java producer: the last line is the summary ("N records sent, X records/sec (Y MB/sec),
# A ms avg latency, M ms max latency, p50, p95, p99, p99.9").
perf=$(ik kafka producer-perf-test --topic bench.perf --num-records "$RECORDS" --record-size 1024 \
    --throughput -1 --producer-props acks=all linger.ms=5 2>/dev/null | tail -1)
java_rps=$(sed -E 's/.* ([0-9.]+) records\/sec.*/\1/' <<<"$perf")
java_lat=$(sed -E 's/.*records\/sec \([0-9.]+ MB\/sec\), ([0-9.]+) ms avg latency.* ([0-9]+) ms 50th, ([0-9]+) ms 95th, ([0-9]+) ms 99th.*/\1 avg, \2 p50, \3 p95, \4 p99/' <<<"$perf")

cperf=$(ik kafka consumer-perf-test --topic bench.perf --messages "$RECORDS" --timeout 60000 \
    2>/dev/null | tail -1)
# start, end, MB consumed, MB/s, records consumed, records/s, ...
java_crps=$(awk -F', *' '{print $6}' <<<"$cperf")

# kcat (librdkafka): the same records (1 KiB lines: base64 of 768 random bytes), acks=all, from
# stdin (one message per line), then read back to the end.
record=$(head -c 768 /dev/urandom | base64 -w0)
awk -v r="$record" -v n="$RECORDS" 'BEGIN { for (i = 0; i < n; i++) print r }' >"$state/records"
t=$(date +%s%N)
kcat -P -b "$BS" -t bench.kcat -X acks=all -X linger.ms=5 -X enable.idempotence=true <"$state/records"
kcat_ms=$(ms "$t")
t=$(date +%s%N)
got=$(kcat -C -b "$BS" -t bench.kcat -o beginning -e -q | wc -l)
kcat_cms=$(ms "$t")

printf '\n| Kafka (3 KRaft nodes, 2 cores) | value |\n|---|---|\n'
printf '| up → 3 brokers healthy, cold (format + first start) | %s |\n' "$(secs "$cold")"
printf '| up → 3 brokers healthy, warm (after down) | %s |\n' "$(secs "$warm")"
printf '| produce 1 KiB, acks=all, RF 2: kafka-producer-perf-test (Java), %d records | %s records/s; latency ms %s |\n' \
    "$RECORDS" "$java_rps" "$java_lat"
printf '| produce 1 KiB, acks=all + idempotence, RF 2: kcat (librdkafka), %d records | %d records/s |\n' \
    "$RECORDS" $((RECORDS * 1000 / (kcat_ms > 0 ? kcat_ms : 1)))
printf '| consume 1 KiB: kafka-consumer-perf-test (Java) | %s records/s |\n' "$java_crps"
printf '| consume 1 KiB: kcat (librdkafka), %d records read | %d records/s |\n' \
    "$got" $((got * 1000 / (kcat_cms > 0 ? kcat_cms : 1)))
