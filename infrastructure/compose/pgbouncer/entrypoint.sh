#!/bin/sh
# PgBouncer in compose: its auth_file written from compose secrets (plain passwords, so that
# PgBouncer can do SCRAM towards PostgreSQL too), then PgBouncer in the foreground.
set -eu
umask 077
s() { tr -d '\n' <"/run/secrets/$1"; }
printf '"app" "%s"\n"postgres" "%s"\n"stats" "%s"\n' "$(s pg_app)" "$(s pg_superuser)" \
    "$(s pgbouncer_stats)" >/tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
