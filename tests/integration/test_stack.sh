#!/usr/bin/env bash
# The local HA stack for real: roles, replication through PgBouncer and Redis, supervised
# restarts, down/up with data kept.  Uses the stack of INFRACTL_STATE_DIR (default: the
# repo's .infra); brings it up when it is not running and leaves it as it found it.
set -uo pipefail
INFRACTL=$1
SRC=$2
. "$(dirname "$0")/lib.sh"
export PGCONNECT_TIMEOUT=5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stack_use "$INFRACTL"

status_json() { "$INFRACTL" status --json >"$tmp/status.json" 2>"$tmp/status.err"; }
jqs() { jq -r "$@" "$tmp/status.json"; }
status_json
STATE=$(jqs .state_dir)
diag "state directory: $STATE"
secret() { cat "$STATE/secrets/$1"; }
port_of() { jqs --arg n "$1" '.services[] | select(.name == $n) | .endpoint' | cut -d: -f2; }

# ---- 1. roles: one leader, one sync replica, one async replica; Redis; Sentinels
all_up_and_roles() {
    status_json || return 1
    [[ $(jqs '.services_up == .services_total') == true ]] || return 1
    [[ $(jqs '[.services[] | select(.role == "leader")] | length') == 1 ]] || return 1
    [[ $(jqs '[.services[] | select(.role == "sync replica")] | length') == 1 ]] || return 1
    [[ $(jqs '[.services[] | select(.role == "replica" and .detail == "streaming")] | length') == 1 ]] || return 1
    [[ $(jqs '[.services[] | select(.role == "master")] | length') == 1 ]]
}
ok "every service up; 1 leader, 1 sync + 1 streaming replica, 1 Redis master" retry 60 all_up_and_roles
diag "$(jq -c '.services[] | [.name, .state, .health, .role, .detail, .lag_bytes]' "$tmp/status.json")"
ok "sync replica is streaming" test "$(jqs '.services[] | select(.role == "sync replica") | .detail')" = streaming
ok "Redis master has one connected replica" \
    test "$(jqs '.services[] | select(.role == "master") | .detail')" = "1 connected replica(s)"
ok "Redis replica link is up" \
    test "$(jqs '[.services[] | select(.role == "replica" and .detail == "link up")] | length')" = 1
master_port=$(jqs '.services[] | select(.role == "master") | .endpoint' | cut -d: -f2)
ok "three Sentinels agree on the master" bash -c '
    [[ $(jq -r "[.services[] | select(.role == \"sentinel\") | .detail] | unique | length" "$1") == 1 ]] &&
    [[ $(jq -r "[.services[] | select(.role == \"sentinel\")] | length" "$1") == 3 ]] &&
    jq -r ".services[] | select(.role == \"sentinel\") | .detail" "$1" | grep -q "master 127.0.0.1:$2, 3 sentinels"
' _ "$tmp/status.json" "$master_port"

# ---- 2. a row written through PgBouncer is on both replicas
token="it-$(date +%s%N)"
pgb_port=$(port_of pgbouncer)
app_psql() { PGPASSWORD=$(secret pg_app) psql -X -q -At -h 127.0.0.1 -p "$pgb_port" -U app -d ultrathink_experiments "$@"; }
ok "write through PgBouncer" app_psql -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS it_rows (id text PRIMARY KEY, at timestamptz DEFAULT now())" -c "INSERT INTO it_rows (id) VALUES ('$token')"
for rep in $(jqs '.services[] | select(.role == "sync replica" or .role == "replica") | select(.endpoint != null) | select(.detail == "streaming") | .name'); do
    port=$(port_of "$rep")
    on_replica() {
        [[ $(PGPASSWORD=$(secret pg_superuser) psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d ultrathink_experiments \
            -c "SELECT count(*) FROM it_rows WHERE id = '$token'" 2>/dev/null) == 1 ]]
    }
    ok "row is readable on replica $rep (port $port)" retry 10 on_replica
done

ok "PgBouncer refuses a wrong password (auth is not trust)" bash -c '
    ! PGPASSWORD=wrong-password psql -X -q -At -h 127.0.0.1 -p "$1" -U app -d ultrathink_experiments -c "SELECT 1" 2>/dev/null' _ "$pgb_port"
ok "PgBouncer allows 500 clients" test "$(PGPASSWORD=$(secret pg_superuser) psql -X -At -h 127.0.0.1 -p "$pgb_port" -U postgres -d pgbouncer -c "SHOW CONFIG" | awk -F'|' '$1 == "max_client_conn" {print $2}')" = 500
ok "secrets are mode 0600 and not in any service log" bash -c '
    for f in "$1"/secrets/*; do [[ $(stat -c %a "$f") == 600 ]] || exit 1; done
    for f in "$1"/secrets/*; do ! grep -rqF -- "$(cat "$f")" "$1"/logs/ || exit 1; done' _ "$STATE"

# ---- 3. a Redis key written to the master is on the replica
rpw=$(secret redis)
rcli() { REDISCLI_AUTH=$rpw redis-cli -h 127.0.0.1 "$@"; }
replica_port=$(jqs '.services[] | select(.role == "replica" and .detail == "link up") | .endpoint' | cut -d: -f2)
ok "SET on the Redis master" test "$(rcli -p "$master_port" SET "it:$token" v1)" = OK
on_redis_replica() { [[ $(rcli -p "$replica_port" GET "it:$token") == v1 ]]; }
ok "key is on the Redis replica" retry 5 on_redis_replica

# ---- 4. killing a supervised service makes the supervisor restart it
svc_field() { jqs --arg n "$1" ".services[] | select(.name == \$n) | .$2"; }
status_json
victim=$(jqs '[.services[] | select(.role == "sentinel")][-1].name')
old_pid=$(svc_field "$victim" pid)
old_restarts=$(svc_field "$victim" restarts)
kill -9 "$old_pid"
restarted() {
    status_json
    [[ $(svc_field "$victim" state) == running && $(svc_field "$victim" pid) != "$old_pid" &&
        $(svc_field "$victim" restarts) -gt $old_restarts ]]
}
ok "killed $victim (pid $old_pid) is restarted and its restart count increments" retry 15 restarted

# ---- 4b. logs: the tail, and -f sees what a restarted service writes
ok "logs shows the tail of a service log" bash -c '[[ $("$1" logs -n 3 etcd | wc -l) -eq 3 ]]' _ "$INFRACTL"
"$INFRACTL" logs -f -n 0 "$victim" >"$tmp/follow.log" 2>&1 &
follow_pid=$!
sleep 0.5
"$INFRACTL" restart "$victim" >/dev/null 2>&1
follow_has_output() { [[ -s $tmp/follow.log ]]; }
ok "logs -f follows new output of a restarted service" retry 10 follow_has_output
kill "$follow_pid" 2>/dev/null
wait "$follow_pid" 2>/dev/null
timeout 2.5 "$INFRACTL" status --watch --interval 1s >"$tmp/watch.out" 2>&1
ok "status --watch redraws the table" test "$(grep -c 'SERVICE .*STATE' "$tmp/watch.out")" -ge 2

# ---- 5. infractl restart
status_json
r2=$(jqs '[.services[] | select(.role == "sentinel")][0].name')
before=$(svc_field "$r2" restarts)
ok "infractl restart $r2" "$INFRACTL" restart "$r2"
status_json
ok "restart count of $r2 incremented" test "$(svc_field "$r2" restarts)" -gt "$before"

# ---- 6. down leaves no process of the stack alive; up reuses the data
ok "stack healthy again before down" retry 30 all_up_and_roles
pids=$(jqs '.services[] | select(.pid != null) | .pid')
# Patroni runs the postmaster in a session of its own: check those pids as well.
for pm in "$STATE"/*/data/postmaster.pid; do
    [[ -f $pm ]] && pids="$pids $(head -1 "$pm")"
done
sup_pid=$(cat "$STATE/supervisor.pid")
pgids=$(for p in $pids; do ps -o pgid= -p "$p"; done | sort -u)
ok "infractl down" "$INFRACTL" down
none_alive() {
    for p in $pids $sup_pid; do kill -0 "$p" 2>/dev/null && { diag "pid $p alive"; return 1; }; done
    for g in $pgids; do pgrep -g "$g" >/dev/null && { diag "process group $g alive"; return 1; }; done
    return 0
}
ok "no process of the stack is alive after down (checked by pid and group)" none_alive
ok "status after down exits 3" bash -c '"$1" status >/dev/null 2>&1; [[ $? == 3 ]]' _ "$INFRACTL"
ok "up after down" "$INFRACTL" up --detach --wait --timeout 240 --quiet
ok "PostgreSQL data survived down/up" test "$(app_psql -c "SELECT count(*) FROM it_rows WHERE id = '$token'")" = 1
status_json
master_port=$(jqs '.services[] | select(.role == "master") | .endpoint' | cut -d: -f2)
ok "Redis data survived down/up (AOF)" test "$(rcli -p "$master_port" GET "it:$token")" = v1
app_psql -c "DELETE FROM it_rows WHERE id = '$token'" >/dev/null
rcli -p "$master_port" DEL "it:$token" >/dev/null

stack_leave "$INFRACTL"
t_done
