#!/bin/bash
# kafka-init: formats the KRaft storage of the local Kafka nodes before their first start, with
# one cluster id kept in the state directory; refuses a data directory of another cluster.
# Runs as the kafka user (the stack's one-shot `kafka-init`); idempotent.
#
# Environment (set by stack.yml):
#   KAFKA_LIBS             Kafka's jars (scripts/install-deps.sh, the tools dir)
#   KAFKA_CONFIGS          the nodes' server.properties, space separated
#   KAFKA_CLUSTER_ID_FILE  where the cluster id lives (created on the first run)
set -euo pipefail

: "${KAFKA_LIBS:?}" "${KAFKA_CONFIGS:?}" "${KAFKA_CLUSTER_ID_FILE:?}"
storage_tool() {
    # StorageTool logs through log4j: to stderr at WARN, so stdout carries only its answer.
    java -Xmx256m \
        -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool "$@"
}
valid_id() { [[ $1 =~ ^[A-Za-z0-9_-]{22}$ ]]; }

if [[ ! -d $KAFKA_LIBS ]]; then
    echo "kafka-init: no Kafka jars in $KAFKA_LIBS (run scripts/install-deps.sh)" >&2
    exit 1
fi
if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
    id=$(tr -d '[:space:]' <"$KAFKA_CLUSTER_ID_FILE")
    valid_id "$id" || {
        echo "kafka-init: $KAFKA_CLUSTER_ID_FILE does not hold a Kafka cluster id ('$id'): fix or remove it" >&2
        exit 1
    }
else
    # The tool's last line is the id (anything logged before it is not).
    id=$(storage_tool random-uuid 2>/dev/null | tail -1 | tr -d '[:space:]')
    valid_id "$id" || { echo "kafka-init: StorageTool random-uuid gave '$id'" >&2; exit 1; }
    printf '%s\n' "$id" >"$KAFKA_CLUSTER_ID_FILE.new"
    mv "$KAFKA_CLUSTER_ID_FILE.new" "$KAFKA_CLUSTER_ID_FILE"
    echo "kafka-init: new cluster id $id"
fi

for conf in $KAFKA_CONFIGS; do
    dir=$(sed -n 's/^log\.dirs=//p' "$conf" | head -1)
    [[ -n $dir ]] || { echo "kafka-init: no log.dirs in $conf" >&2; exit 1; }
    meta=$dir/meta.properties
    if [[ -f $meta ]]; then
        have=$(sed -n 's/^cluster\.id=//p' "$meta")
        if ! valid_id "$have"; then
            echo "kafka-init: $meta is corrupt (no valid cluster.id): restore it from a backup, or move $dir away to start that node empty (it re-replicates from the others)" >&2
            exit 1
        fi
        if [[ $have != "$id" ]]; then
            echo "kafka-init: $dir belongs to Kafka cluster '$have', not this stack's '$id' ($KAFKA_CLUSTER_ID_FILE): move $dir away (its data is another cluster's) or put '$have' into $KAFKA_CLUSTER_ID_FILE" >&2
            exit 1
        fi
        echo "kafka-init: $dir is formatted (cluster $id)"
        continue
    fi
    if [[ -d $dir ]] && [[ -n $(ls -A "$dir" 2>/dev/null) ]]; then
        echo "kafka-init: $dir has data but no meta.properties (not a Kafka log directory, or a broken one): move it away" >&2
        exit 1
    fi
    storage_tool format --ignore-formatted -t "$id" -c "$conf" >&2
    echo "kafka-init: formatted $dir (cluster $id)"
done
