#!/bin/sh
# Sentinel in compose: sentinel-entrypoint.sh PORT.  First start: /data/sentinel.conf from the
# mounted template + port, announce name and auth-pass (compose secret redis).
set -eu
conf=/data/sentinel.conf
if [ ! -f "$conf" ]; then
    umask 077
    {
        echo "port $1"
        echo "sentinel announce-ip $(hostname)"
        cat /etc/redis/sentinel.conf
        echo "sentinel auth-pass mymaster $(tr -d '\n' </run/secrets/redis)"
    } >"$conf.tmp"
    mv "$conf.tmp" "$conf"
fi
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec gosu redis redis-sentinel "$conf"
fi
exec redis-sentinel "$conf"
