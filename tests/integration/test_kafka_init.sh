#!/usr/bin/env bash
# kafka-init (infrastructure/scripts/kafka-init.sh) on bad state, without a cluster: a corrupt
# cluster id file, a data directory of another cluster, a corrupt meta.properties and a
# non-empty directory that is not a Kafka log directory are refused, each naming the path and
# the fix, and nothing is formatted or changed; a directory of this cluster is left as it is.
#
#   test_kafka_init.sh SRC_DIR
set -uo pipefail
SRC=$1
. "$(dirname "$0")/lib.sh"
INIT=$SRC/infrastructure/scripts/kafka-init.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

id=AbCdEfGhIjKlMnOpQrStUv # 22 characters, as Kafka's ids
other=ZyXwVuTsRqPoNmLkJiHgFe
mkdir -p "$tmp/libs" "$tmp/n1/data"
printf 'node.id=1\nlog.dirs=%s/n1/data\n' "$tmp" >"$tmp/n1.properties"
run_init() {
    KAFKA_LIBS=$tmp/libs KAFKA_CONFIGS=$tmp/n1.properties KAFKA_CLUSTER_ID_FILE=$tmp/cluster.id \
        bash "$INIT" >"$tmp/out" 2>&1
}
snapshot() { (cd "$tmp" && find . -type f ! -name out -exec sha256sum {} + | sort); }

echo "not-an-id" >"$tmp/cluster.id"
before=$(snapshot)
run_init
rc=$?
ok "a corrupt cluster id file: exit 1" test "$rc" -eq 1
ok "a corrupt cluster id file: names the file" grep -q "$tmp/cluster.id does not hold a Kafka cluster id" "$tmp/out"
ok "a corrupt cluster id file: nothing changed" test "$before" = "$(snapshot)"

echo "$id" >"$tmp/cluster.id"
printf 'version=1\ncluster.id=%s\nnode.id=1\n' "$other" >"$tmp/n1/data/meta.properties"
before=$(snapshot)
run_init
rc=$?
diag "$(cat "$tmp/out")"
ok "another cluster's data directory: exit 1" test "$rc" -eq 1
ok "another cluster's data directory: names it, both ids and the fix" \
    grep -q "$tmp/n1/data belongs to Kafka cluster '$other', not this stack's '$id'.*move" "$tmp/out"
ok "another cluster's data directory: nothing changed" test "$before" = "$(snapshot)"

printf 'version=1\nnode.id=1\n' >"$tmp/n1/data/meta.properties"
run_init
rc=$?
ok "a corrupt meta.properties: exit 1 naming it" \
    bash -c '[[ $1 == 1 ]] && grep -q "meta.properties is corrupt" "$2"' _ "$rc" "$tmp/out"

rm "$tmp/n1/data/meta.properties"
echo "precious" >"$tmp/n1/data/notes.txt"
before=$(snapshot)
run_init
rc=$?
ok "a non-Kafka directory with data: exit 1 naming it" \
    bash -c '[[ $1 == 1 ]] && grep -q "$3 has data but no meta.properties" "$2"' _ "$rc" "$tmp/out" "$tmp/n1/data"
ok "a non-Kafka directory with data: its files untouched" test "$before" = "$(snapshot)"

rm "$tmp/n1/data/notes.txt"
printf 'version=1\ncluster.id=%s\nnode.id=1\n' "$id" >"$tmp/n1/data/meta.properties"
before=$(snapshot)
run_init
rc=$?
ok "this cluster's directory: exit 0, left as it is" \
    bash -c '[[ $1 == 0 ]] && grep -q "is formatted (cluster $3)" "$2"' _ "$rc" "$tmp/out" "$id"
ok "this cluster's directory: nothing changed" test "$before" = "$(snapshot)"

rm -rf "$tmp/libs"
run_init
rc=$?
ok "no Kafka jars: exit 1 naming install-deps.sh" \
    bash -c '[[ $1 == 1 ]] && grep -q "scripts/install-deps.sh" "$2"' _ "$rc" "$tmp/out"
t_done
