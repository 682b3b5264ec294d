#!/bin/sh
# Debian's pgbouncer exporter (run.py, as in the local stack) as user stats on PgBouncer's
# console; its libpq password file written from the compose secret pgbouncer_stats.
set -eu
umask 077
printf 'pgbouncer:6432:pgbouncer:stats:%s\n' "$(tr -d '\n' </run/secrets/pgbouncer_stats)" >/tmp/pgpass
export PGPASSFILE=/tmp/pgpass PGCONNECT_TIMEOUT=3
exec /usr/bin/python3 /usr/local/lib/pgbouncer-exporter/run.py --host=0.0.0.0 --port=9527 \
    --pgbouncer-host=pgbouncer --pgbouncer-port=6432 --pgbouncer-user=stats
