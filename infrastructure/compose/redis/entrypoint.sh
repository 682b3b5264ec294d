#!/bin/sh
# Redis node in compose: entrypoint.sh PORT [PRIMARY_HOST PRIMARY_PORT]
# First start: /data/redis.conf from the mounted template + port, announce name, password
# (compose secret redis) and, for a replica, replicaof.  Later starts keep /data/redis.conf as
# Sentinel left it (CONFIG REWRITE after a failover).
set -eu
port=$1
conf=/data/redis.conf
if [ ! -f "$conf" ]; then
    umask 077
    pw=$(tr -d '\n' </run/secrets/redis)
    {
        cat /etc/redis/redis.conf
        echo "port $port"
        echo "replica-announce-ip $(hostname)"
        echo "requirepass $pw"
        echo "masterauth $pw"
        # docker-compose-test.yml: a test machine's cap instead of production's 128gb.
        if [ -n "${REDIS_MAXMEMORY:-}" ]; then echo "maxmemory $REDIS_MAXMEMORY"; fi
        if [ $# -ge 3 ]; then echo "replicaof $2 $3"; fi
    } >"$conf.tmp"
    mv "$conf.tmp" "$conf"
fi
# As the unprivileged redis user (the image starts a custom command as root): a Redis talked
# into CONFIG SET dir + CONFIG REWRITE can only write where redis may.
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec gosu redis redis-server "$conf"
fi
exec redis-server "$conf"
