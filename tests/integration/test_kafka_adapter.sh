#!/usr/bin/env bash
# The kafka adapter (src/kafka, through tests/integration/kafka_probe_cli) and the kafka probe
# against a real Kafka 4.4: three KRaft nodes (broker + controller each) started here from the
# jars of infrastructure/kafka/pom.xml, in a temp dir, on ports 29092-29094 (brokers) and
# 29192-29194 (controllers), never the local stack's, and below the ephemeral range
# (32768-60999), where an outbound connection's source port could take one first.  What
# librdkafka's mock cluster cannot show is checked here: CreateTopics / DescribeConfigs /
# AlterConfigs / CreatePartitions, ListConsumerGroups, replication factor 2, ISR shrink
# (under-replicated), offline partitions, and a probe of a SIGSTOPped broker returning within
# its timeout.
#
#   test_kafka_adapter.sh KAFKA_PROBE_CLI REPO_ROOT
#
# The jars: $UT_KAFKA_LIBS if set, else the tools dir's kafka-4.4.0/libs (where
# scripts/install-deps.sh puts them), resolved there with mvn from the pom when missing.
# Every JVM started here is stopped (and checked with pgrep) before the script ends.
set -uo pipefail
CLI=$1
ROOT=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

need_cmd java openjdk-17-jre-headless
need_cmd mvn maven
need_cmd kcat kcat
need_cmd pgrep procps

BROKER_PORTS=(29092 29093 29094)
CONTROLLER_PORTS=(29192 29193 29194)
BS=127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094
for port in "${BROKER_PORTS[@]}" "${CONTROLLER_PORTS[@]}"; do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        skip "port $port is in use (another Kafka?)"
    fi
done

# ---- the jars
if [[ -n ${UT_KAFKA_LIBS:-} ]]; then
    LIBS=$UT_KAFKA_LIBS
else
    tools=$("$ROOT/scripts/install-deps.sh" --tools-dir)
    LIBS=$tools/kafka-4.4.0/libs
    if ! compgen -G "$LIBS/kafka_2.13-4.4.0.jar" >/dev/null; then
        diag "resolving the Kafka jars into $LIBS (mvn, infrastructure/kafka/pom.xml)"
        mkdir -p "$LIBS" "$tools/cache/m2" || skip "cannot create $LIBS"
        mvn -q -f "$ROOT/infrastructure/kafka/pom.xml" -Dmaven.repo.local="$tools/cache/m2" \
            dependency:copy-dependencies -DoutputDirectory="$LIBS" >&2 ||
            skip "cannot resolve the Kafka jars from Maven Central (offline?)"
    fi
fi
compgen -G "$LIBS/kafka_2.13-4.4.0.jar" >/dev/null || skip "no Kafka 4.4.0 jars in $LIBS"

tmp=$(mktemp -d /tmp/test_kafka_adapter.XXXXXX)
pids=()

# Stops every node at once (one by one, the last would wait minutes for a controller
# majority), waits for them, then SIGKILLs what is left.
stop_nodes() {
    local pid deadline
    ((${#pids[@]} == 0)) && return 0
    kill -CONT "${pids[@]}" 2>/dev/null
    kill -TERM "${pids[@]}" 2>/dev/null
    deadline=$((SECONDS + 30))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    pids=()
}
cleanup() {
    stop_nodes
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- three KRaft nodes
java_opts=(-Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true)
cat >"$tmp/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
voters=1@127.0.0.1:${CONTROLLER_PORTS[0]},2@127.0.0.1:${CONTROLLER_PORTS[1]},3@127.0.0.1:${CONTROLLER_PORTS[2]}
for i in 1 2 3; do
    d=$tmp/node$i
    mkdir -p "$d/data"
    cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${BROKER_PORTS[i - 1]},CONTROLLER://127.0.0.1:${CONTROLLER_PORTS[i - 1]}
advertised.listeners=PLAINTEXT://127.0.0.1:${BROKER_PORTS[i - 1]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
replica.lag.time.max.ms=5000
EOF
    cat >"$d/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $d/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
EOF
done
tool() { java -Xmx256m -Dlog4j2.configurationFile="$tmp/tools-log4j2.properties" -cp "$LIBS/*" "$@"; }
# The tool may still print something before the id: take the last line, and check it.
cluster_id=$(tool kafka.tools.StorageTool random-uuid | tail -n 1)
[[ $cluster_id =~ ^[A-Za-z0-9_-]{22}$ ]] || {
    echo "not ok 1 - cluster id ('$cluster_id')"
    exit 1
}
for i in 1 2 3; do
    tool kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
        -c "$tmp/node$i/server.properties" >"$tmp/node$i/format.out" 2>&1 &
done
wait || true
t0=$SECONDS
for i in 1 2 3; do
    java "${java_opts[@]}" -Dlog4j2.configurationFile="$tmp/node$i/log4j2.properties" \
        -cp "$LIBS/*" kafka.Kafka "$tmp/node$i/server.properties" >"$tmp/node$i/stdout" 2>&1 &
    pids+=($!)
done

# probe_ok PORT: the kafka probe (through the probe module) says healthy.
probe_ok() { "$CLI" probe 127.0.0.1 "$1" 2000 >/dev/null 2>&1; }
all_up() {
    local p
    for p in "${BROKER_PORTS[@]}"; do probe_ok "$p" || return 1; done
    "$CLI" metadata "$BS" 3000 2>/dev/null | grep -q '^brokers=3 '
}
if ! retry 120 all_up; then
    for i in 1 2 3; do diag "node$i: $(tail -n 3 "$tmp/node$i/server.log" 2>/dev/null)"; done
    echo "not ok 1 - three Kafka nodes answer"
    exit 1
fi
ok "three Kafka 4.4 KRaft nodes answer the probe ($((SECONDS - t0)) s after launch)" true

# ---- probe
out=$("$CLI" probe 127.0.0.1 29093 3000)
diag "probe: $(head -n 1 <<<"$out")"
ok "probe healthy: 3 brokers and a controller" grep -Eq '^result=0 .*message=3 brokers, controller [1-3]$' <<<"$out"
ok "probe detail: broker 2 is itself" grep -q '^broker=2 host=127.0.0.1 port=29093 self=1 ' <<<"$out"
ok "probe detail: one line per broker and one for the cluster" test "$(grep -c '^broker=' <<<"$out")" -eq 3

# ---- topics as code
apply() { "$CLI" apply "$BS" 15000 "$@"; }
field() { # field TOPIC KEY OUTPUT
    grep "^topic=$1 " <<<"$3" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
out=$(apply orders:6:2:retention.ms=604800000,cleanup.policy=delete audit:3:3 solo:3:1)
rc=$?
diag "$out"
ok "apply: exit 0" test "$rc" -eq 0
ok "apply: orders created" test "$(field orders status "$out")" = created
ok "apply: audit created" test "$(field audit status "$out")" = created
ok "apply: solo (RF 1) created" test "$(field solo status "$out")" = created
md=$("$CLI" metadata "$BS" 5000)
ok "metadata: orders has 6 partitions of RF 2" grep -q '^topic=orders partitions=6 rf=2 internal=0 leaderless=0$' <<<"$md"
ok "metadata: audit has 3 partitions of RF 3" grep -q '^topic=audit partitions=3 rf=3 ' <<<"$md"

out=$(apply orders:6:2:retention.ms=604800000,cleanup.policy=delete audit:3:3 solo:3:1)
diag "$out"
ok "apply again: orders unchanged" test "$(field orders status "$out")" = unchanged
ok "apply again: audit unchanged" test "$(field audit status "$out")" = unchanged
ok "apply again: solo unchanged" test "$(field solo status "$out")" = unchanged

out=$(apply orders:6:2:retention.ms=86400000,cleanup.policy=delete audit:3:3)
diag "$out"
ok "retention changed: orders updated" test "$(field orders status "$out")" = updated
ok "retention changed: configs replaced" test "$(field orders configs_replaced "$out")" = 1
ok "retention changed: the message names the change" \
    grep -q 'retention.ms 604800000 -> 86400000' <<<"$(grep '^topic=orders ' <<<"$out")"
ok "retention changed: audit unchanged" test "$(field audit status "$out")" = unchanged
out=$(apply orders:6:2:retention.ms=86400000,cleanup.policy=delete)
ok "the new retention is stored: unchanged on the next apply" test "$(field orders status "$out")" = unchanged

# A key left out of the spec reverts to the broker's default (AlterConfigs replaces).
out=$(apply orders:6:2:retention.ms=86400000)
diag "$out"
ok "config dropped from the spec: updated" test "$(field orders status "$out")" = updated
ok "config dropped from the spec: reverted to default" \
    grep -q 'cleanup.policy delete -> default' <<<"$(grep '^topic=orders ' <<<"$out")"

out=$(apply orders:8:3:retention.ms=86400000 audit:2:3)
diag "$out"
ok "more partitions: orders updated" test "$(field orders status "$out")" = updated
ok "more partitions: 2 added" test "$(field orders added "$out")" = 2
ok "replication factor 3 asked, 2 there: reported, not changed" test "$(field orders rf_differs "$out")" = 1
ok "fewer partitions asked: audit unchanged (Kafka cannot remove partitions)" \
    test "$(field audit status "$out")" = unchanged
ok "fewer partitions asked: reported" grep -q 'partitions cannot be removed' <<<"$(grep '^topic=audit ' <<<"$out")"
ok "metadata: orders has 8 partitions now" \
    grep -q '^topic=orders partitions=8 rf=2 ' <<<"$("$CLI" metadata "$BS" 5000)"
out=$(apply bad:1:5)
ok "replication factor above the broker count: error" test "$(field bad status "$out")" = error
diag "$(grep '^topic=bad ' <<<"$out")"

# ---- consumer-group lag: 100 messages into orders-0, a group reads 40 and commits
seq 1 100 | kcat -P -b "$BS" -t orders -p 0 2>"$tmp/kcat-produce.err"
ok "kcat produced 100 messages" test "$?" -eq 0
timeout 60 kcat -b "$BS" -G lag-group -X auto.offset.reset=earliest -c 40 -q orders \
    >"$tmp/consumed" 2>"$tmp/kcat-consume.err"
ok "kcat -G consumed 40 messages" test "$(wc -l <"$tmp/consumed")" -eq 40
lag_ok() {
    out=$("$CLI" lag "$BS" 10000) &&
        grep -q '^lag group=lag-group topic=orders partition=0 committed=40 high=100 lag=60$' <<<"$out"
}
retry 20 lag_ok
diag "$out"
ok "lag: orders-0 committed 40, high watermark 100, lag 60" \
    grep -q '^lag group=lag-group topic=orders partition=0 committed=40 high=100 lag=60$' <<<"$out"
ok "lag: group total 60, state Empty (the consumer left)" \
    grep -q '^group=lag-group state=Empty partitions=1 total_lag=60 unknown=0 error=0$' <<<"$out"

md=$("$CLI" metadata "$BS" 5000)
diag "$(grep -E '^(brokers|total)' <<<"$md")"
ok "metadata: nothing under-replicated or offline" \
    grep -q '^total .* under_replicated=0 offline=0 ' <<<"$md"
ok "metadata: __consumer_offsets counted and flagged internal" \
    grep -q '^topic=__consumer_offsets partitions=6 rf=3 internal=1 ' <<<"$md"
ok "metadata: internal partitions counted in led" \
    grep -Eq '^total replicas=[0-9]+ led=[0-9]+ .* led_internal=6 ' <<<"$md"

# ---- a frozen broker: the probe returns within its timeout; the cluster fences it
kill -STOP "${pids[2]}"
start=$(date +%s%N)
out=$("$CLI" probe 127.0.0.1 29094 2000)
rc=$?
took=$((($(date +%s%N) - start) / 1000000))
diag "probe of the SIGSTOPped broker: $(head -n 1 <<<"$out") (process ran ${took} ms)"
ok "probe of a SIGSTOPped broker fails" test "$rc" -eq 1
ok "... with -ETIMEDOUT" grep -q '^result=-110 ' <<<"$out"
ok "... within its timeout (probe elapsed <= 2050 ms)" \
    test "$(sed -n 's/^result=[-0-9]* elapsed_ms=\([0-9]*\) .*/\1/p' <<<"$out")" -le 2050
ok "... and the process (librdkafka teardown included) ends within 3 s (${took} ms)" test "$took" -lt 3000

fenced() {
    md=$("$CLI" metadata 127.0.0.1:29092 3000) &&
        grep -q '^brokers=2 ' <<<"$md" && ! grep -q '^total .* under_replicated=0 ' <<<"$md"
}
ok "broker 3 fenced: 2 brokers listed, partitions under-replicated" retry 40 fenced
diag "$(grep -E '^(brokers|broker=|total)' <<<"$md")"
ok "under-replicated internal partitions flagged" \
    grep -Eq '^total .* under_replicated_internal=[1-9]' <<<"$md"
ok "solo's partition on broker 3 is offline (RF 1)" grep -q '^topic=solo partitions=3 rf=1 internal=0 leaderless=1$' <<<"$md"
ok "offline counted" grep -Eq '^total .* offline=[1-9][0-9]* ' <<<"$md"
ok "broker 3 is no longer listed" test "$(grep -c '^broker=3 ' <<<"$md")" -eq 0
out=$("$CLI" probe 127.0.0.1 29092 3000)
ok "probe of a live broker: healthy, 2 brokers" grep -Eq '^result=0 .*message=2 brokers, controller [12]$' <<<"$out"
# The frozen broker is fenced; a partition it led gets its new leader moments later (on a loaded
# machine, after this check's first try), so the high watermark may be unknown for a while.
lag_answers() {
    out=$("$CLI" lag "$BS" 10000)
    grep -q '^lag group=lag-group topic=orders partition=0 committed=40 high=100 lag=60$' <<<"$out"
}
ok "lag still answers with a broker frozen" retry 20 lag_answers
grep -q '^lag group=lag-group topic=orders partition=0 committed=40 high=100 lag=60$' <<<"$out" ||
    diag "$out"

kill -CONT "${pids[2]}"
healed() {
    md=$("$CLI" metadata "$BS" 3000) && grep -q '^brokers=3 ' <<<"$md" &&
        grep -q '^total .* under_replicated=0 offline=0 ' <<<"$md"
}
ok "broker 3 resumed: 3 brokers, nothing under-replicated or offline" retry 90 healed
ok "probe of broker 3 healthy again" retry 30 probe_ok 29094

# ---- every broker down: refused at once, not at the deadline
stop_nodes
out=$("$CLI" probe 127.0.0.1 29092 3000)
diag "probe with the cluster stopped: $(head -n 1 <<<"$out")"
ok "cluster stopped: probe says connection refused (-ECONNREFUSED)" grep -q '^result=-111 ' <<<"$out"
ok "... at once (elapsed < 1000 ms)" \
    test "$(sed -n 's/^result=[-0-9]* elapsed_ms=\([0-9]*\) .*/\1/p' <<<"$out")" -lt 1000
no_jvm_left() { ! pgrep -f -- "kafka.Kafka $tmp/node" >/dev/null; }
ok "no JVM of this test is left" no_jvm_left
t_done
