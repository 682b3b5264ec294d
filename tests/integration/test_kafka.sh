#!/usr/bin/env bash
# Kafka in the local stack, for real: three KRaft brokers supervised like every other service,
# the topics file applied, kcat with acks=all, the Kafka CLI tools through `infractl kafka`,
# consumer-group lag in status and in the stack's kafka-exporter, a SIGKILLed
# broker under an idempotent acks=all producer (no acknowledged message lost or duplicated,
# under-replicated partitions seen and healed), and down/up keeping topics and messages.
# Uses the stack of INFRACTL_STATE_DIR (default: the repo's .infra); brings it up when it is
# not running and leaves it as it found it.
#
#   test_kafka.sh INFRACTL KAFKA_HOLDOUT
set -uo pipefail
INFRACTL=$1
HOLDOUT=$2
. "$(dirname "$0")/lib.sh"
need_cmd kcat kcat
need_cmd jq jq
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stack_use "$INFRACTL"

status_json() { "$INFRACTL" status --json >"$tmp/status.json" 2>"$tmp/status.err"; }
jqs() { jq -r "$@" "$tmp/status.json"; }
svc() { jqs --arg n "$1" ".services[] | select(.name == \$n) | .$2"; }
BS=$("$INFRACTL" kafka bootstrap)
diag "bootstrap: $BS"
run=$$-$(date +%s)

# ---- 1. three brokers, one quorum leader, the cluster whole
kafka_whole() {
    status_json
    [[ $(jqs '[.services[] | select(.name | test("^kafka[0-9]$")) | select(.state == "running" and .health == "healthy")] | length') == 3 ]] &&
        [[ $(jqs '.clusters[] | select(.name == "kafka") | .degraded') == false ]] &&
        [[ $(jqs '.kafka.under_replicated') == 0 ]]
}
ok "three brokers running and healthy, kafka cluster whole, 0 under-replicated" retry 90 kafka_whole
diag "$(jq -c '.services[] | select(.name | test("^kafka[0-9]$")) | [.name, .role, .detail]' "$tmp/status.json")"
ok "exactly one broker is the controller quorum's leader" \
    test "$(jqs '[.services[] | select(.role == "controller (leader)")] | length')" = 1
ok "the other two are voters" \
    test "$(jqs '[.services[] | select(.role == "controller (voter)")] | length')" = 2
leader_svc=$(jqs '.services[] | select(.role == "controller (leader)") | .name')
quorum_leader=$("$INFRACTL" kafka metadata-quorum describe --status 2>/dev/null | awk '/^LeaderId:/ {print $2}')
ok "status's quorum leader is the one kafka-metadata-quorum names (node $quorum_leader)" \
    test "$leader_svc" = "kafka$quorum_leader"
ok "the brokers' led partitions add up to every partition with a leader" \
    test "$(jqs '[.services[] | select(.partitions != null) | .partitions.led] | add')" = \
    "$(jqs '.kafka.partitions - .kafka.offline')"

# ---- 2. the topics file is applied: RF 2, 7-day retention, compaction where asked
ok "kafka-topics (the one-shot apply) completed" test "$(svc kafka-topics last_exit)" = "exit status 0"
"$INFRACTL" kafka topics --describe --topic market.ticks >"$tmp/ticks.txt" 2>"$tmp/ticks.err"
diag "$(head -1 "$tmp/ticks.txt")"
ok "kafka-topics --describe: market.ticks has 12 partitions, RF 2" \
    grep -qE 'PartitionCount: 12[[:space:]]+ReplicationFactor: 2' "$tmp/ticks.txt"
for kv in retention.ms=604800000 min.insync.replicas=1 unclean.leader.election.enable=false; do
    ok "market.ticks has $kv" grep -q "$kv" "$tmp/ticks.txt"
done
ok "every partition of market.ticks has 2 replicas in sync" \
    test "$(grep -cE 'Replicas: [0-9]+,[0-9]+[[:space:]]+Isr: [0-9]+,[0-9]+' "$tmp/ticks.txt")" = 12
"$INFRACTL" kafka topics --describe --topic features.online >"$tmp/features.txt" 2>&1
ok "features.online is compacted" grep -q "cleanup.policy=compact" "$tmp/features.txt"
"$INFRACTL" kafka apply --json >"$tmp/apply.json" 2>"$tmp/apply.err"
ok "a second apply changes nothing" \
    test "$(jq '[.[] | select(.status != "unchanged")] | length' "$tmp/apply.json")" = 0
echo x | timeout 20 kcat -P -b "$BS" -t "it.nosuchtopic.$run" -X message.timeout.ms=3000 >/dev/null 2>&1
ok "auto-creation is off: producing to an unknown topic does not create it" \
    bash -c '! "$1" kafka topics --list 2>/dev/null | grep -qx "$2"' _ "$INFRACTL" "it.nosuchtopic.$run"

# ---- 3. kcat with acks=all to an RF 2 topic, everything consumed back
topic=it.kcat.$run
ok "create $topic (3 partitions, RF 2) with kafka-topics" \
    "$INFRACTL" kafka topics --create --topic "$topic" --partitions 3 --replication-factor 2
seq 1 1000 | sed "s/^/m-$run-/" >"$tmp/sent"
kcat -P -b "$BS" -t "$topic" -X acks=all -X enable.idempotence=true <"$tmp/sent" 2>"$tmp/kcat.err"
ok "kcat produced 1000 messages with acks=all" test "$?" -eq 0
timeout 60 kcat -C -b "$BS" -t "$topic" -o beginning -e -q >"$tmp/got" 2>"$tmp/kcat-c.err"
ok "kcat consumed all 1000 back" diff <(sort "$tmp/sent") <(sort "$tmp/got")

# ---- 4. a consumer group's lag in status and in the exporter's metrics.  One partition, so
# the group commits an offset for every partition it lags on (lag counts committed partitions,
# as kafka_exporter's does).
group=it-group-$run
ltopic=it.lag.$run
"$INFRACTL" kafka topics --create --topic "$ltopic" --partitions 1 --replication-factor 2 >/dev/null 2>&1
seq 1 1000 | kcat -P -b "$BS" -t "$ltopic" -X acks=all 2>/dev/null
timeout 60 kcat -b "$BS" -G "$group" -X auto.offset.reset=earliest -c 400 -q "$ltopic" \
    >"$tmp/g1" 2>"$tmp/g1.err"
ok "kcat -G consumed 400 of 1000 and committed" test "$(wc -l <"$tmp/g1")" -eq 400
group_lag() {
    status_json
    [[ $(jqs --arg g "$group" '.kafka.consumer_groups[] | select(.name == $g) | .lag') == 600 ]]
}
ok "status --json: group $group has lag 600" retry 20 group_lag
ok "status table lists the group with its lag" \
    grep -qE "kafka consumer groups:.* $group lag 600 " <<<"$("$INFRACTL" status)"
# The stack's kafka-exporter (kafka_lag_exporter on 9308) serves the same lag to Prometheus.
ok "kafka-exporter running and healthy" test "$(svc kafka-exporter state)/$(svc kafka-exporter health)" = running/healthy
scrape() { curl -fsS "http://127.0.0.1:9308/metrics" >"$tmp/metrics" 2>/dev/null; }
exporter_lag() {
    scrape && grep -qE "^kafka_consumergroup_lag_sum\{consumergroup=\"$group\",topic=\"$ltopic\"\} 600$" "$tmp/metrics"
}
ok "kafka-exporter: kafka_consumergroup_lag_sum of $group on $ltopic is 600" retry 10 exporter_lag
ok "kafka-exporter: kafka_brokers 3" grep -qx 'kafka_brokers 3' "$tmp/metrics"
ok "kafka-exporter: market.ticks has 12 partitions" \
    grep -qx 'kafka_topic_partitions{topic="market.ticks"} 12' "$tmp/metrics"

# ---- 5. SIGKILL of a broker under an idempotent acks=all producer
htopic=it.holdout.$run
"$INFRACTL" kafka topics --create --topic "$htopic" --partitions 6 --replication-factor 2 >/dev/null 2>&1
ok "holdout topic created" "$INFRACTL" kafka topics --describe --topic "$htopic" >/dev/null
"$HOLDOUT" "$BS" "$htopic" 200 40 "$tmp/acked" >"$tmp/holdout.out" 2>"$tmp/holdout.err" &
holdout_pid=$!
sleep 8
status_json
victim=$(jqs '[.services[] | select(.name | test("^kafka[0-9]$"))] | max_by(.partitions.led) | .name')
vpid=$(svc "$victim" pid)
vrestarts=$(svc "$victim" restarts)
diag "SIGKILL $victim (pid $vpid, leads $(svc "$victim" partitions.led) partitions)"
kill -9 "$vpid"
seen_under=0
under_seen() {
    status_json
    local u
    u=$(jqs '.kafka.under_replicated // 0')
    ((u > 0)) && { seen_under=$u; return 0; }
    return 1
}
ok "status shows under-replicated partitions during the fault" retry 40 under_seen
diag "under-replicated partitions seen: $seen_under"
ok "the degraded kafka cluster makes status exit 4" \
    bash -c '"$1" status >/dev/null 2>&1; rc=$?; [[ $rc == 4 ]] || [[ $2 == 0 ]]' _ "$INFRACTL" "$seen_under"
restarted() {
    status_json
    [[ $(svc "$victim" state) == running && $(svc "$victim" pid) != "$vpid" &&
        $(svc "$victim" restarts) -gt $vrestarts && $(svc "$victim" health) == healthy ]]
}
ok "the supervisor restarted $victim" retry 60 restarted
ok "it rejoined the ISR: 0 under-replicated partitions, kafka cluster whole" retry 90 kafka_whole
wait "$holdout_pid"
hrc=$?
diag "holdout: $(cat "$tmp/holdout.out") $(head -c 300 "$tmp/holdout.err")"
ok "the producer kept producing: every message acknowledged" test "$hrc" -eq 0
timeout 90 kcat -C -b "$BS" -t "$htopic" -o beginning -e -q >"$tmp/hgot" 2>"$tmp/hgot.err"
sort -n "$tmp/acked" >"$tmp/acked.sorted"
sort -n "$tmp/hgot" >"$tmp/hgot.sorted"
lost=$(comm -23 "$tmp/acked.sorted" <(sort -nu "$tmp/hgot") | wc -l)
dups=$(uniq -d "$tmp/hgot.sorted" | wc -l)
diag "acked $(wc -l <"$tmp/acked"), consumed $(wc -l <"$tmp/hgot"), lost $lost, duplicated $dups"
ok "no acknowledged message lost" test "$lost" -eq 0
ok "no message duplicated" test "$dups" -eq 0
ok "at least 90% of the planned 8000 messages acknowledged" test "$(wc -l <"$tmp/acked")" -ge 7200

# ---- 6. down stops every JVM; up keeps topics and messages
jvms() { pgrep -u kafka -f 'kafka\.Kafka' | tr '\n' ' '; }
diag "JVMs before down: $(jvms)"
ok "infractl down" "$INFRACTL" down
ok "no Kafka JVM left after down (checked by pid)" test -z "$(jvms)"
ok "up after down" "$INFRACTL" up --detach --wait --timeout 240 --quiet
ok "the topics survived down/up" bash -c '"$1" kafka topics --list 2>/dev/null | grep -qx "$2"' _ "$INFRACTL" "$topic"
timeout 60 kcat -C -b "$BS" -t "$topic" -o beginning -e -q >"$tmp/got2" 2>/dev/null
ok "the messages survived down/up (1000 read back)" diff <(sort "$tmp/sent") <(sort "$tmp/got2")

"$INFRACTL" kafka topics --delete --topic "$topic" >/dev/null 2>&1
"$INFRACTL" kafka topics --delete --topic "$htopic" >/dev/null 2>&1
"$INFRACTL" kafka topics --delete --topic "$ltopic" >/dev/null 2>&1
"$INFRACTL" kafka consumer-groups --delete --group "$group" >/dev/null 2>&1
stack_leave "$INFRACTL"
t_done
