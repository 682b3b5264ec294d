#!/usr/bin/env bash
# Backups and point-in-time recovery of the running stack's Patroni cluster (pgBackRest,
# docs/backups.md), proven by a restore drill:
#   marker rows written continuously (each with the wall-clock times around its commit) ->
#   full backup -> more writes -> Patroni switchover -> more writes -> a target time T after the
#   failover (taken in a pause of the writer, so no commit straddles it) -> more writes ->
#   `infractl restore --to T` into a scratch instance -> exactly the markers committed before T.
# Then the failure cases, each with its error and the live cluster healthy afterwards: targets
# before the oldest backup or in the future, --into not empty or a live data directory, an
# unwritable repository (backup fails, metrics and status say so) and failing WAL archiving
# (status says so, and recovers).
# Usage: test_backup.sh INFRACTL
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"
need_cmd jq jq
need_cmd curl curl
need_cmd psql postgresql-client-15
need_cmd pgbackrest pgbackrest

tmp=$(mktemp -d /tmp/ut-backup.XXXXXX)
chmod 755 "$tmp"
PORT=31310 # the scratch postgres (this test's private range)
writer_pid=
restore_modes=()
cleanup() {
    [[ -n $writer_pid ]] && kill "$writer_pid" 2>/dev/null
    for m in "${restore_modes[@]}"; do chmod "${m%% *}" "${m#* }"; done
    if [[ -f $tmp/restore/postmaster.pid ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- \
            /usr/lib/postgresql/15/bin/pg_ctl -D "$tmp/restore" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

stack_use "$INFRACTL"
state=$(jq -r .state_dir <("$INFRACTL" status --json || true))
conf=$state/pgbackrest/pgbackrest.conf
[[ -f $conf ]] || { echo "not ok 1 - $conf exists (stack without pgBackRest?)"; exit 1; }
export PGPASSWORD PGCONNECT_TIMEOUT=3
PGPASSWORD=$(cat "$state/secrets/pg_superuser")
api=$(cat "$state/secrets/patroni_api")
repo=$(sed -n 's/^repo1-path=//p' "$conf")
textfile=$state/node-exporter

psql_w() { psql -X -q -At -h 127.0.0.1 -p 5000 -U postgres -d postgres "$@"; }
psql_r() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
cluster() { curl -sf 127.0.0.1:8008/cluster || curl -sf 127.0.0.1:8009/cluster || curl -sf 127.0.0.1:8010/cluster; }
leader() { cluster | jq -r '.members[] | select(.role == "leader") | .name'; }
healthy() { # 3 members: a leader and two streaming replicas on its timeline
    cluster | jq -e '([.members[] | select(.role == "leader")] | length == 1) and
        ([.members[] | select(.state == "streaming")] | length == 2)' >/dev/null
}
# status exits 4 while some service of the stack is down (a partial local stack): only its JSON counts.
status_json() { "$INFRACTL" status --json || true; }
stanza_done() { status_json | jq -e '.services[] | select(.name == "pgbackrest-stanza") | .up' >/dev/null; }
ok "the cluster is whole (a leader, two streaming replicas)" retry 90 healthy
ok "the stanza was created (pgbackrest-stanza completed)" retry 60 stanza_done

# ---- the writer: one autocommit INSERT per marker through the write port; "ID T0 T1 STATUS"
# with the wall-clock times before sending and after the answer.  $tmp/pause pauses it (it
# answers with $tmp/paused) so that a target time can be taken between two commits.
psql_w -c "DROP TABLE IF EXISTS backup_markers" -c "CREATE TABLE backup_markers (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"
writer() {
    local i=0 t0 t1 st
    while [[ ! -e $tmp/stop ]]; do
        if [[ -e $tmp/pause ]]; then
            touch "$tmp/paused"
            sleep 0.05
            continue
        fi
        rm -f "$tmp/paused"
        i=$((i + 1))
        t0=$(date +%s.%N)
        if psql_w -c "INSERT INTO backup_markers (id) VALUES ($i)" >/dev/null 2>&1; then st=ok; else st=failed; fi
        t1=$(date +%s.%N)
        echo "$i $t0 $t1 $st" >>"$tmp/markers"
        sleep 0.02
    done
}
writer &
writer_pid=$!
sleep 2

# ---- a full backup while the writer runs
"$INFRACTL" backup --type full --json >"$tmp/full.json" 2>"$tmp/full.log"
ok "backup --type full succeeds while writes go on" jq -e '.success and .backup.type == "full"' "$tmp/full.json"
diag "full backup: $(jq -c '{label: .backup.label, duration_s, size: .backup.size_bytes, repo: .backup.repo_delta_bytes, from_primary}' "$tmp/full.json")"
ok "... taken from a standby (the primary only starts and stops it)" jq -e '.from_primary == false' "$tmp/full.json"
ok "... with progress lines (files, bytes, rate, ETA)" grep -qE '^backup: +[0-9.]+%  [0-9]+ files  .* ETA' "$tmp/full.log"
ok "metrics: ultrathink_backup_last_status{type=full} 1" grep -q '^ultrathink_backup_last_status{stanza="ultrathink",type="full"} 1$' "$textfile/backup-full.prom"
ok "metrics: last success timestamp of the full backup" grep -q '^ultrathink_backup_last_success_timestamp_seconds{stanza="ultrathink",type="full"} [0-9]' "$textfile/backup-repo.prom"
scraped() { curl -sf 127.0.0.1:9500/metrics | grep -q '^ultrathink_backup_last_status{stanza="ultrathink",type="full"} 1$'; }
ok "node-exporter serves them (textfile collector)" retry 10 scraped
"$INFRACTL" backup list --json >"$tmp/list.json"
ok "backup list --json: the set with sizes, duration and WAL range" \
    jq -e --arg l "$(jq -r .backup.label "$tmp/full.json")" '.backups[-1] | .label == $l and .size_bytes > 0 and .wal_start != "" and .duration_s >= 0' "$tmp/list.json"
ok "status shows the last successful backup and healthy WAL archiving" \
    bash -c '{ "$1" status --json || true; } | jq -e ".backup.last_success > 0 and .backup.archiving.healthy"' _ "$INFRACTL"
sleep 2

# ---- switchover: the primary moves, archiving follows it
old=$(leader)
# synchronous_mode: Patroni switches over to the synchronous standby only.
new=$(cluster | jq -r '[.members[] | select(.role == "sync_standby" and .state == "streaming")][0].name')
curl -sf -u "patroni:$api" -XPOST "127.0.0.1:$(cluster | jq -r ".members[] | select(.name == \"$old\") | .api_url" | sed 's|.*:\([0-9]*\)/.*|\1|')/switchover" \
    -d "{\"leader\":\"$old\",\"candidate\":\"$new\"}" >"$tmp/switchover.txt" 2>&1
diag "switchover $old -> $new: $(cat "$tmp/switchover.txt")"
is_leader() { [[ $(leader) == "$1" ]]; }
ok "switchover: $new leads" retry 30 is_leader "$new"
switched_at=$(date +%s.%N)
sleep 3

# ---- the target time: in a pause of the writer, after the failover
touch "$tmp/pause"
paused() { [[ -e $tmp/paused ]]; }
retry 10 paused
sleep 0.2
T_epoch=$(date +%s.%N)
T=$(date -u -d "@$T_epoch" '+%Y-%m-%d %H:%M:%S.%6N+00')
sleep 0.2
rm -f "$tmp/pause"
sleep 3
touch "$tmp/stop"
wait "$writer_pid"
writer_pid=
diag "target $T; $(wc -l <"$tmp/markers") markers written, $(grep -c failed "$tmp/markers") failed (the switchover)"

# ---- restore to T into a scratch instance
"$INFRACTL" restore --to "$T" --into "$tmp/restore" --port "$PORT" --json >"$tmp/restore.json" 2>"$tmp/restore.log"
rc=$?
ok "restore --to T (after the failover) succeeds" test "$rc" = 0
[[ $rc == 0 ]] || sed 's/^/# /' "$tmp/restore.log" | tail -20
diag "restore: $(jq -c '{backup_set, bytes, files, copy_s, recovery_s, total_s}' "$tmp/restore.json" 2>/dev/null)"
ok "... with progress lines" grep -qE '^restore: +[0-9.]+%  [0-9]+ files' "$tmp/restore.log"
psql_r -c "SELECT id FROM backup_markers ORDER BY id" >"$tmp/restored" 2>"$tmp/restored.err"
psql_w -c "SELECT id FROM backup_markers ORDER BY id" >"$tmp/live"
# Expected: every marker the live cluster holds whose INSERT was sent before T (the pause means
# none was in flight at T: each either answered before T or was sent after it).
awk -v t="$T_epoch" '$2 < t { print $1 }' "$tmp/markers" | sort -n >"$tmp/before"
comm -12 <(sort "$tmp/live") <(sort "$tmp/before") | sort -n >"$tmp/expected"
after_switch=$(awk -v t="$switched_at" '$2 > t && $4 == "ok" { print $1; exit }' "$tmp/markers")
ok "the restored markers are exactly those committed up to T ($(wc -l <"$tmp/expected") of $(wc -l <"$tmp/live"))" \
    cmp -s "$tmp/expected" <(sort -n "$tmp/restored")
ok "... including markers committed after the failover (id $after_switch on)" grep -qx "$after_switch" "$tmp/restored"
ok "... and none of the $(($(wc -l <"$tmp/live") - $(wc -l <"$tmp/expected"))) committed after T" \
    test "$(($(wc -l <"$tmp/live") - $(wc -l <"$tmp/expected")))" -gt 0
if ! cmp -s "$tmp/expected" <(sort -n "$tmp/restored"); then
    diag "missing: $(comm -23 <(sort "$tmp/expected") <(sort "$tmp/restored") | head -5 | tr '\n' ' ') extra: $(comm -13 <(sort "$tmp/expected") <(sort "$tmp/restored") | head -5 | tr '\n' ' ')"
fi
ok "the scratch instance does not archive (archive_mode off)" test "$(psql_r -c 'SHOW archive_mode')" = off
setpriv --reuid=postgres --regid=postgres --init-groups -- /usr/lib/postgresql/15/bin/pg_ctl -D "$tmp/restore" -m fast stop >/dev/null

# ---- refusals: clear errors, nothing started
refuse() { # refuse PATTERN ARGS...: exit 1 and PATTERN on stderr
    local pat=$1
    shift
    "$INFRACTL" restore "$@" >/dev/null 2>"$tmp/refuse.err"
    local rc=$?
    diag "$(head -1 "$tmp/refuse.err")"
    [[ $rc == 1 ]] && grep -q "$pat" "$tmp/refuse.err"
}
ok "a target before the oldest backup is refused" refuse "before the oldest backup" --to "2001-01-01 00:00:00+00" --into "$tmp/r2"
ok "a target in the future is refused" refuse "is in the future" --to "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" --into "$tmp/r2"
mkdir -p "$tmp/full-dir" && touch "$tmp/full-dir/file"
ok "--into a non-empty directory is refused" refuse "is not empty" --to "$T" --into "$tmp/full-dir"
ok "--into a live node's data directory is refused" refuse "live data directory of node" --to "$T" --into "$state/pg1/data"
ok "--into a directory holding a live postmaster is refused" refuse "live data directory" --to "$T" --into "$state/pg2"
ok "a target without a time zone is a usage error (exit 2)" \
    bash -c '"$1" restore --to "2026-01-01 00:00:00" --into "$2" 2>/dev/null; [[ $? == 2 ]]' _ "$INFRACTL" "$tmp/r2"
ok "nothing was created for the refused restores" test ! -e "$tmp/r2"

# ---- the repository unwritable: the backup fails clearly, metrics and status say so
bdir=$repo/backup/ultrathink
restore_modes+=("$(stat -c %a "$bdir") $bdir")
chmod 0500 "$bdir"
"$INFRACTL" backup --type incr --quiet >/dev/null 2>"$tmp/incr-fail.log"
rc=$?
diag "$(grep -m1 'backup failed' "$tmp/incr-fail.log")"
ok "backup into an unwritable repository fails (exit 1)" test "$rc" = 1
ok "... naming the cause (pgBackRest's error)" grep -qE 'backup failed .*(Permission denied|unable to)' "$tmp/incr-fail.log"
ok "... metrics: ultrathink_backup_last_status{type=incr} 0" grep -q '^ultrathink_backup_last_status{stanza="ultrathink",type="incr"} 0$' "$textfile/backup-incr.prom"
ok "... status: the last incr run FAILED" bash -c '"$1" status | grep -q "last run FAILED: incr"' _ "$INFRACTL"
chmod "${restore_modes[-1]%% *}" "$bdir"
unset 'restore_modes[-1]'
INFRACTL=$INFRACTL "$(dirname "$0")/../../scripts/backup_database.sh" --type incr --quiet --json >"$tmp/incr.json" 2>"$tmp/incr.log"
ok "writable again: an incremental backup succeeds (scripts/backup_database.sh)" jq -e '.success and .backup.type == "incr"' "$tmp/incr.json"
ok "... and the metrics say so" grep -q '^ultrathink_backup_last_status{stanza="ultrathink",type="incr"} 1$' "$textfile/backup-incr.prom"

# ---- WAL archiving failing: status says so (with pgBackRest's reason), then recovers
adir=$repo/archive/ultrathink
while read -r d; do
    restore_modes+=("$(stat -c %a "$d") $d")
    chmod 0500 "$d"
done < <(find "$adir" -type d)
switch_wal() { psql_w -c "INSERT INTO backup_markers (id) VALUES (-$RANDOM - 100000) ON CONFLICT DO NOTHING" -c "SELECT pg_switch_wal()" >/dev/null; }
archive_failing() { # one new segment a second (each waits in pg_wal: 16 MiB)
    for _ in $(seq 40); do
        switch_wal
        status_json | jq -e '.backup.archiving.healthy == false' >/dev/null && return 0
        sleep 1
    done
    return 1
}
ok "archive_command failing (archive unwritable): status says WAL archiving is failing" archive_failing
diag "status: $("$INFRACTL" status | grep '^backups:')"
failed_count() { psql_w -c "SELECT failed_count FROM pg_stat_archiver"; }
ok "... pg_stat_archiver counts the failures (PostgresWalArchiveFailing's input)" test "$(failed_count)" -gt 0
for m in "${restore_modes[@]}"; do chmod "${m%% *}" "${m#* }"; done
restore_modes=()
archive_healthy() {
    for _ in $(seq 60); do
        switch_wal
        status_json | jq -e '.backup.archiving.healthy' >/dev/null && return 0
        sleep 1
    done
    return 1
}
ok "archive writable again: WAL archiving is healthy again" archive_healthy

# ---- the live cluster is untouched
ok "the cluster is whole after all of it" retry 30 healthy
ok "status of the PostgreSQL nodes: exit 0" "$INFRACTL" status pg1 pg2 pg3
ok "the live markers are all still there" test "$(psql_w -c 'SELECT count(*) FROM backup_markers WHERE id > 0')" = "$(wc -l <"$tmp/live")"
psql_w -c "DROP TABLE backup_markers" >/dev/null
stack_leave "$INFRACTL"
t_done
