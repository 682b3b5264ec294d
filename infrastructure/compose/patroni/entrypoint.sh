#!/bin/bash
# Patroni in the timescaledb-ha image: passwords from compose secrets (/run/secrets) into the
# environment variables Patroni reads, then Patroni in the foreground as PID 1's child-less exec.
set -euo pipefail
secret() { tr -d '\n' <"/run/secrets/$1"; }
export PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD PATRONI_REWIND_PASSWORD \
    PATRONI_RESTAPI_PASSWORD
PATRONI_SUPERUSER_PASSWORD=$(secret pg_superuser)
PATRONI_REPLICATION_PASSWORD=$(secret pg_replicator)
PATRONI_REWIND_PASSWORD=$(secret pg_rewinder)
PATRONI_RESTAPI_PASSWORD=$(secret patroni_api)
mkdir -p /home/postgres/pgdata
exec patroni /etc/patroni/patroni.yml
