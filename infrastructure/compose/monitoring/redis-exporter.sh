#!/bin/sh
# redis_exporter in compose (multi-target, as in the local stack): the nodes' password file,
# keyed by address, written from the compose secret redis; the Sentinels have no password.
set -eu
umask 077
pw=$(tr -d '\n' </run/secrets/redis | sed 's/["\\]/\\&/g')
printf '{\n  "redis://redis1:6380": "%s",\n  "redis://redis2:6381": "%s"\n}\n' "$pw" "$pw" >/tmp/passwords.json
exec /redis_exporter -web.listen-address=:9521 -redis.addr= -redis.password-file=/tmp/passwords.json
