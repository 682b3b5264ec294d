#!/bin/sh
# healthcheck.sh PORT [auth]: PING answered with PONG (with the password for the data nodes).
set -eu
if [ "${2:-}" = auth ]; then
    REDISCLI_AUTH=$(tr -d '\n' </run/secrets/redis)
    export REDISCLI_AUTH
fi
[ "$(redis-cli -p "$1" ping)" = PONG ]
