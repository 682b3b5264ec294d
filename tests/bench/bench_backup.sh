#!/usr/bin/env bash
# make bench: pgBackRest on the running stack's Patroni cluster with a pgbench database of at
# least 1 GB (scale BENCH_BACKUP_SCALE, default 70: ~1.05 GB).  Reports
#   - full backup time and throughput with each compression (lz4 1, zst 1, zst 3, zst 6: the
#     figures behind compress-type/compress-level in pgbackrest.conf) and its repository size;
#   - `infractl backup --type full` (the configured compression, from a standby) and an
#     incremental after a pgbench run;
#   - `infractl restore` of the whole cluster to now into a scratch instance: copy and WAL
#     replay times, throughput.
# Brings the stack's PostgreSQL part up when nothing runs (and takes it down again); drops its
# database afterwards.  Private port: 31320 (the scratch postgres).
# Usage: bench_backup.sh INFRACTL
set -euo pipefail
INFRACTL=$(realpath "$1")
SCALE=${BENCH_BACKUP_SCALE:-70}
COMPRESSIONS=${BENCH_BACKUP_COMPRESSIONS:-"lz4:1 zst:1 zst:3 zst:6"}
PORT=31320
tmp=$(mktemp -d /tmp/ut-bench-backup.XXXXXX)
chmod 755 "$tmp"
started=0

"$INFRACTL" status >/dev/null 2>&1 || rc=$?
if [[ ${rc:-0} == 3 ]]; then
    echo "bench: bringing the PostgreSQL part of the stack up" >&2
    "$INFRACTL" up --detach --wait --quiet pgbackrest-stanza node-exporter
    started=1
fi
state=$(jq -r .state_dir <("$INFRACTL" status --json || true))
conf=$state/pgbackrest/pgbackrest.conf
export PGPASSWORD PGCONNECT_TIMEOUT=5
PGPASSWORD=$(cat "$state/secrets/pg_superuser")
psql_w() { psql -X -q -At -h 127.0.0.1 -p 5000 -U postgres "$@"; }
pgbr() { setpriv --reuid=postgres --regid=postgres --init-groups -- pgbackrest --config="$conf" --stanza=ultrathink "$@"; }
cleanup() {
    if [[ -f $tmp/restore/postmaster.pid ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- \
            /usr/lib/postgresql/15/bin/pg_ctl -D "$tmp/restore" -m immediate stop >/dev/null 2>&1 || true
    fi
    psql_w -d postgres -c "DROP DATABASE IF EXISTS bench_backup" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    if ((started)); then "$INFRACTL" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
rate() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", (ms > 0 ? b / 1048576 / (ms / 1000) : 0) }'; }

# status exits 4 while services outside the PostgreSQL part are down: only its JSON counts.
status_json() { "$INFRACTL" status --json || true; }
until status_json | jq -e '.services[] | select(.name == "pgbackrest-stanza") | .up' >/dev/null; do sleep 1; done
psql_w -d postgres -c "DROP DATABASE IF EXISTS bench_backup" -c "CREATE DATABASE bench_backup"
t=$(now_ms)
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p 5000 -U postgres bench_backup >/dev/null 2>&1
gen_ms=$(($(now_ms) - t))
db=$(psql_w -d postgres -c "SELECT pg_database_size('bench_backup')")
cluster=$(psql_w -d postgres -c "SELECT sum(pg_database_size(datname)) FROM pg_database")
echo "bench backup: pgbench scale $SCALE: database $(mib "$db") MiB (cluster $(mib "$cluster") MiB), generated in $((gen_ms / 1000)) s"
(($(mib "$db") >= 1000)) || echo "bench backup: WARNING: the database is under 1 GB (BENCH_BACKUP_SCALE=$SCALE)"

# Compression: the same full backup with each, from a standby (process-max 2, as configured).
for c in $COMPRESSIONS; do
    type=${c%%:*} level=${c#*:}
    t=$(now_ms)
    pgbr --type=full --compress-type="$type" --compress-level="$level" backup
    ms=$(($(now_ms) - t))
    repo=$(pgbr --output=json info | jq '.[0].backup[-1].info.repository.delta')
    echo "bench backup: full, compress $type level $level: $((ms / 1000)).$((ms % 1000 / 100)) s, $(rate "$cluster" "$ms") MiB/s, repository $(mib "$repo") MiB ($(awk -v a="$cluster" -v b="$repo" 'BEGIN { printf "%.1f", a / b }')x)"
done

"$INFRACTL" backup --type full --json --quiet >"$tmp/full.json"
jq -r '"bench backup: infractl backup --type full (configured compression, from_primary \(.from_primary)): \(.duration_s * 10 | floor / 10) s, \(.throughput_bytes_per_s / 1048576 * 10 | floor / 10) MiB/s, database \(.backup.size_bytes / 1048576 | floor) MiB, repository +\(.backup.repo_delta_bytes / 1048576 | floor) MiB"' "$tmp/full.json"
pgbench -n -T 20 -c 2 -h 127.0.0.1 -p 5000 -U postgres bench_backup >/dev/null 2>&1
"$INFRACTL" backup --type incr --json --quiet >"$tmp/incr.json"
jq -r '"bench backup: infractl backup --type incr after 20 s of pgbench: \(.duration_s * 10 | floor / 10) s, copied \(.backup.delta_bytes / 1048576 | floor) MiB, repository +\(.backup.repo_delta_bytes / 1048576 | floor) MiB"' "$tmp/incr.json"

sleep 1
to=$(date -u '+%Y-%m-%d %H:%M:%S.%6N+00')
"$INFRACTL" restore --to "$to" --into "$tmp/restore" --port "$PORT" --json --quiet >"$tmp/restore.json"
jq -r '"bench backup: infractl restore to now (\(.backup_set)): \(.total_s * 10 | floor / 10) s in all: copy \(.copy_s * 10 | floor / 10) s (\(.files) files, \(.bytes / 1048576 | floor) MiB, \(.bytes / 1048576 / .copy_s | floor) MiB/s), WAL replay and promotion \(.recovery_s * 10 | floor / 10) s"' "$tmp/restore.json"
rows=$(psql -X -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench_backup -c "SELECT count(*) FROM pgbench_accounts")
echo "bench backup: the restored pgbench_accounts holds $rows rows (scale $SCALE: $((SCALE * 100000)))"
