#!/bin/bash
# pg-init in compose: the local stack's infrastructure/scripts/pg-init.sh with its pgpass and
# app password file written from compose secrets into a private temporary directory.
set -euo pipefail
umask 077
dir=$(mktemp -d)
su=$(tr -d '\n' </run/secrets/pg_superuser)
app=$(tr -d '\n' </run/secrets/pg_app)
printf '%s:%s:*:postgres:%s\n%s:%s:*:app:%s\n' "$PGINIT_HOST" "$PGINIT_PORT" "$su" \
    "$PGINIT_HOST" "$PGINIT_PORT" "$app" >"$dir/pgpass"
printf '%s\n' "$app" >"$dir/app_password"
unset su app
export PGPASSFILE=$dir/pgpass PGINIT_APP_PASSWORD_FILE=$dir/app_password
exec /bin/bash /etc/pg-init/pg-init.sh
