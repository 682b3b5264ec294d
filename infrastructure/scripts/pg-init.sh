#!/bin/bash
# SPDX-License-Identifier: MIT
# pg-init.sh - one-shot setup of the application database behind the HAProxy write port:
# role app, database ultrathink_experiments (owned by app) and the schema in
# infrastructure/timescale_schema.sql.  Idempotent: a second run changes nothing.
#
# Started by the supervisor (service pg-init in infrastructure/local/stack.yml) as postgres.
# Environment:
#   PGINIT_HOST, PGINIT_PORT     write endpoint (default 127.0.0.1:5000)
#   PGINIT_TIMEOUT               seconds to wait for a writable primary (default 90)
#   PGINIT_SCHEMA                the schema file (default: ../timescale_schema.sql next to this script)
#   PGINIT_APP_PASSWORD_FILE     file holding the password of role app (one line)
#   PGPASSFILE                   libpq password file with the postgres and app entries
# Passwords never appear on a command line or in the output: libpq reads them from PGPASSFILE,
# psql reads the app password from its file itself, and the statement that sets it runs with
# log_min_error_statement = panic so the server never logs it either.
# Exit status: 0 done, 1 failed (the supervisor may retry), 2 bad configuration.
set -euo pipefail

host=${PGINIT_HOST:-127.0.0.1}
port=${PGINIT_PORT:-5000}
timeout=${PGINIT_TIMEOUT:-90}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
schema=${PGINIT_SCHEMA:-$here/../timescale_schema.sql}
app_pw_file=${PGINIT_APP_PASSWORD_FILE:-}
db=ultrathink_experiments

log() { printf '%s pg-init: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" >&2; }
die() { log "error: $*"; exit "${2:-1}"; }

[[ $timeout =~ ^[0-9]+$ ]] || die "PGINIT_TIMEOUT must be a number of seconds" 2
[[ -n ${PGPASSFILE:-} && -r $PGPASSFILE ]] || die "PGPASSFILE is not set or not readable" 2
[[ -n $app_pw_file && -r $app_pw_file ]] || die "PGINIT_APP_PASSWORD_FILE is not set or not readable" 2
[[ -s $app_pw_file ]] || die "the app password file is empty" 2
[[ -r $schema ]] || die "schema file $schema is not readable" 2
export PGINIT_APP_PASSWORD_FILE=$app_pw_file PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-3}
export PGAPPNAME=pg-init PGSSLMODE=disable

# psql as superuser against the write port: no psqlrc, stop at the first error, quiet.
su_psql() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres "$@"; }

# 1. wait (bounded) until the write port reaches a primary that accepts writes
log "waiting up to ${timeout}s for a writable primary on $host:$port"
start=$SECONDS
while :; do
    if out=$(su_psql -d postgres -At -c 'SELECT pg_is_in_recovery()' 2>&1) && [[ $out == f ]]; then
        break
    fi
    if ((SECONDS - start >= timeout)); then
        die "no writable primary on $host:$port after ${timeout}s (last answer: ${out//$'\n'/ })"
    fi
    sleep 1
done
log "primary is writable after $((SECONDS - start))s"

# 2. role app: create it, or fix its password only when logging in with it fails
su_psql -d postgres <<'SQL'
SET log_min_error_statement = panic;
SET log_statement = 'none';
\set app_password `cat "$PGINIT_APP_PASSWORD_FILE"`
SELECT format('CREATE ROLE app LOGIN PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app')
\gexec
\unset app_password
SQL
if ! psql -X -q -h "$host" -p "$port" -U app -d postgres -At -c 'SELECT 1' >/dev/null 2>&1; then
    log "role app cannot log in with the configured password: setting it"
    su_psql -d postgres <<'SQL'
SET log_min_error_statement = panic;
SET log_statement = 'none';
\set app_password `cat "$PGINIT_APP_PASSWORD_FILE"`
SELECT format('ALTER ROLE app LOGIN PASSWORD %L', :'app_password')
\gexec
\unset app_password
SQL
    psql -X -q -h "$host" -p "$port" -U app -d postgres -At -c 'SELECT 1' >/dev/null ||
        die "role app still cannot log in"
fi
log "role app ok"

# 3. database owned by app (CREATE DATABASE cannot run inside a DO block or transaction)
su_psql -d postgres <<SQL
SELECT 'CREATE DATABASE $db OWNER app ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db')
\gexec
SELECT 'ALTER DATABASE $db OWNER TO app'
WHERE (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$db') <> 'app'
\gexec
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO app;
SQL
log "database $db ok"

# 4. schema, in one transaction
su_psql -d "$db" -1 -f "$schema" -P footer=off
backend=$(su_psql -d "$db" -At -c "SELECT string_agg(table_name || '=' || backend, ' ' ORDER BY table_name) FROM ut.timeseries")
log "schema applied: $backend"
log "done"
