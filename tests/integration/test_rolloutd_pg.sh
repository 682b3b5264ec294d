#!/usr/bin/env bash
# rolloutd replicas sharing one PostgreSQL 15 (started here on 127.0.0.1, as `postgres` when
# root): changes made on one replica reach the other's OFREP and SSE within 1 s (LISTEN/NOTIFY),
# concurrent stale updates get 409, kill -9 loses no acknowledged change, and a replica whose
# queries go through PgBouncer (transaction pooling) with a direct --pg-listen connection works.
set -uo pipefail
ROLLOUTD=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"

PGBIN=/usr/lib/postgresql/15/bin
[[ -x $PGBIN/postgres ]] || skip "PostgreSQL 15 is not installed (Debian package postgresql-15: scripts/install-deps.sh)"

tmp=$(mktemp -d /tmp/ut-rolloutd-pg-XXXXXX)
chmod 755 "$tmp"
pg_pid=
bouncer_pid=
stream_pid=
writer_pid=
as_pg=()
[[ $(id -u) == 0 ]] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
cleanup() {
    [[ -n $stream_pid ]] && kill "$stream_pid" 2>/dev/null
    [[ -n $writer_pid ]] && kill "$writer_pid" 2>/dev/null
    rd_stop_all
    [[ -n $bouncer_pid ]] && kill "$bouncer_pid" 2>/dev/null && wait "$bouncer_pid" 2>/dev/null
    [[ -n $pg_pid ]] && kill -QUIT "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$tmp/pg"
[[ ${#as_pg[@]} -gt 0 ]] && chown postgres:postgres "$tmp/pg"
"${as_pg[@]}" "$PGBIN/initdb" -D "$tmp/pg/data" -U postgres --auth=trust -N --no-locale -E UTF8 \
    >"$tmp/pg/initdb.log" 2>&1 || { diag "initdb failed"; cat "$tmp/pg/initdb.log"; exit 1; }
PGPORT=$(free_port)
"${as_pg[@]}" "$PGBIN/postgres" -D "$tmp/pg/data" -p "$PGPORT" -k "$tmp/pg" -h 127.0.0.1 \
    -c fsync=off -c max_connections=40 -c logging_collector=off >"$tmp/pg/log" 2>&1 &
pg_pid=$!
pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; }
retry 20 pg_ready || { diag "postgres did not start"; cat "$tmp/pg/log"; exit 1; }
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE rolloutd" || exit 1
CONN="host=127.0.0.1 port=$PGPORT dbname=rolloutd user=postgres"

# A short controller lease, so that the rollout section below need not wait 10 s for the lease of
# A (killed with SIGKILL) to expire.
LEASE=(--lease-ttl-ms 2000 --rollout-tick-ms 200)
rd_start A "$tmp/a" --store "postgres:$CONN" "${LEASE[@]}" || { t_done; exit 1; }
rd_start B "$tmp/b" --store "postgres:$CONN" "${LEASE[@]}" || { t_done; exit 1; }
A=$RD_ADDR_A B=$RD_ADDR_B
T=$(cat "$tmp/a/admin.token")
ok "replica B did not mint a second admin token" test ! -e "$tmp/b/admin.token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" "http://$B/api/v1/flags")
ok "A's admin token works on B" test "$code" = 200

# ===== A change on A reaches B (OFREP and SSE) within 1 s =====
curl -sN -H "Authorization: Bearer $T" "http://$B/v1/stream?env=production" >"$tmp/stream" &
stream_pid=$!
retry 3 grep -q '^event: snapshot' "$tmp/stream"
t0=$(date +%s%N)
out=$(api "$A" "$T" POST /api/v1/flags '{"key":"shared","environments":{"production":{"stage":"full"}}}')
ok "create on A: 201" test "$(status_of "$out")" = 201
b_serves() {
    [[ $(curl -s -X POST -H "Authorization: Bearer $T" -d '{"context":{}}' \
        "http://$B/ofrep/v1/evaluate/flags/shared" | jq -r .variant 2>/dev/null) == candidate ]]
}
retry 2 b_serves
t1=$(date +%s%N)
diag "B evaluates A's new flag after $(((t1 - t0) / 1000000)) ms"
ok "B's OFREP serves A's change within 1 s" test $(((t1 - t0) / 1000000)) -lt 1000
ok "B's SSE stream carries A's change" retry 1 grep -q '"key":"shared"' "$tmp/stream"
kill "$stream_pid"
stream_pid=

# ===== Optimistic concurrency across replicas =====
v=$(curl -s -H "Authorization: Bearer $T" "http://$A/api/v1/flags/shared" | jq .version)
upd='{"key":"shared","description":"x"}'
o1=$(api "$A" "$T" PUT /api/v1/flags/shared "$upd" -H "If-Match: \"$v\"")
o2=$(api "$B" "$T" PUT /api/v1/flags/shared "$upd" -H "If-Match: \"$v\"")
ok "same version on A then B: 200 then 409" \
    test "$(status_of "$o1"):$(status_of "$o2")" = "200:409"
out=$(api "$B" "$T" GET /api/v1/flags/shared/history)
ok "B's history shows A's changes" \
    test "$(body_of "$out" | jq -r '[.history[].action] | join(",")')" = "create,update"

# ===== kill -9 under writes loses nothing acknowledged =====
api "$A" "$T" POST /api/v1/flags '{"key":"dur"}' >/dev/null
(
    i=0
    while :; do
        i=$((i + 1))
        out=$(api "$A" "$T" POST /api/v1/flags/dur/stage \
            "{\"env\":\"production\",\"stage\":\"canary\",\"percent\":$((i % 25))}" 2>/dev/null) || break
        st=$(status_of "$out")
        [[ $st == 200 && $out =~ \"version\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}" >>"$tmp/acked"
        [[ $st == 000 || -z $st ]] && break
    done
) &
writer_pid=$!
acked_enough() { (($(wc -l <"$tmp/acked" 2>/dev/null || echo 0) >= 15)); }
retry 30 acked_enough
kill -9 "$RD_PID_A"
wait "$writer_pid" 2>/dev/null
writer_pid=
last=$(tail -n1 "$tmp/acked")
now=$(curl -s -H "Authorization: Bearer $T" "http://$B/api/v1/flags/dur" | jq .version)
hist=$(curl -s -H "Authorization: Bearer $T" "http://$B/api/v1/flags/dur/history?limit=1000" |
    jq -r '.history[].after.version')
missing=$(comm -23 <(sort -u "$tmp/acked") <(sort -u <<<"$hist") | wc -l)
diag "$(wc -l <"$tmp/acked") acknowledged on A before kill -9; B serves version $now (last acked $last)"
ok "B serves at least the last version A acknowledged" test "$now" -ge "$last"
ok "every acknowledged change is in the history" test "$missing" -eq 0

# ===== Through PgBouncer (transaction pooling) with a direct LISTEN connection =====
if command -v pgbouncer >/dev/null; then
    BPORT=$(free_port)
    mkdir -p "$tmp/bouncer"
    cat >"$tmp/bouncer/pgbouncer.ini" <<INI
[databases]
rolloutd = host=127.0.0.1 port=$PGPORT dbname=rolloutd user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir =
auth_type = trust
auth_file = $tmp/bouncer/users.txt
pool_mode = transaction
max_client_conn = 50
default_pool_size = 5
INI
    echo '"postgres" ""' >"$tmp/bouncer/users.txt"
    [[ ${#as_pg[@]} -gt 0 ]] && chown -R postgres:postgres "$tmp/bouncer"
    "${as_pg[@]}" pgbouncer "$tmp/bouncer/pgbouncer.ini" >"$tmp/bouncer/log" 2>&1 &
    bouncer_pid=$!
    retry 10 bash -c "echo >/dev/tcp/127.0.0.1/$BPORT" 2>/dev/null
    rd_start C "$tmp/c" --store "postgres:host=127.0.0.1 port=$BPORT dbname=rolloutd user=postgres" \
        --pg-listen "$CONN" "${LEASE[@]}" || { t_done; exit 1; }
    C=$RD_ADDR_C
    out=$(api "$C" "$T" POST /api/v1/flags '{"key":"via-bouncer"}')
    ok "a replica behind PgBouncer commits (201)" test "$(status_of "$out")" = 201
    out=$(api "$B" "$T" POST /api/v1/flags/via-bouncer/stage '{"env":"production","stage":"full"}')
    c_serves() {
        [[ $(curl -s -X POST -H "Authorization: Bearer $T" -d '{"context":{}}' \
            "http://$C/ofrep/v1/evaluate/flags/via-bouncer" | jq -r .reason 2>/dev/null) == STATIC ]]
    }
    ok "it learns of B's change through its direct LISTEN connection" retry 2 c_serves
else
    skip_case "a replica behind PgBouncer" "pgbouncer is not installed (Debian package pgbouncer: scripts/install-deps.sh)"
fi

# ===== Rollout plans: one active controller across replicas (the store's lease) =====
live=("$B")
[[ -n ${C:-} ]] && live+=("$C")
leaders() {
    local n=0 a
    for a in "${live[@]}"; do
        [[ $(curl -s "http://$a/metrics" | awk '$1 == "rolloutd_rollout_leader" {print $2}') == 1 ]] && n=$((n + 1))
    done
    echo "$n"
}
one_leader() { [[ $(leaders) == 1 ]]; }
ok "exactly one live replica leads the rollout controller (A's lease expired)" retry 10 one_leader
api "$B" "$T" POST /api/v1/flags '{"key":"planned"}' >/dev/null
out=$(api "$B" "$T" POST /api/v1/rollouts/planned \
    '{"steps":[{"stage":"canary","percent":5},{"stage":"partial","percent":50},{"stage":"full"}]}')
ok "a rollout started on B: 201" test "$(status_of "$out")" = 201
planned_done() { [[ $(api "${live[-1]}" "$T" GET /api/v1/rollouts/planned | sed '$d' | jq -r .state) == succeeded ]]; }
ok "... completes, as the last replica sees it" retry 10 planned_done
steps=$(api "$B" "$T" GET /api/v1/flags/planned/history | sed '$d' |
    jq -c '[.history[] | select(.actor == "rollout-controller") | .after.environments.production.stage]')
ok "... each step applied exactly once ($steps)" test "$steps" = '["canary","partial","full"]'

t_done
