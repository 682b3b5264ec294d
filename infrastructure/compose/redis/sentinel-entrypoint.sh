#!/bin/sh
# Sentinel in compose: sentinel-entrypoint.sh PORT.  First start: /data/sentinel.conf from the
# mounted template + port, announce name and auth-pass (compose secret redis).  Every start:
# the template's failover timing (down-after-milliseconds, failover-timeout, parallel-syncs)
# as --sentinel arguments, because Sentinel rewrites /data/sentinel.conf and a volume made
# before a change of the template would otherwise keep the old values (the file shows them until
# Sentinel's next rewrite; the command line wins at every start).
set -eu
conf=/data/sentinel.conf
tmpl=/etc/redis/sentinel.conf
if [ ! -f "$conf" ]; then
    umask 077
    {
        echo "port $1"
        echo "sentinel announce-ip $(hostname)"
        cat "$tmpl"
        echo "sentinel auth-pass mymaster $(tr -d '\n' </run/secrets/redis)"
    } >"$conf.tmp"
    mv "$conf.tmp" "$conf"
fi
set -- "$conf"
while read -r kw opt master value _; do
    case "$kw $opt" in
    "sentinel down-after-milliseconds" | "sentinel failover-timeout" | "sentinel parallel-syncs")
        set -- "$@" --sentinel "$opt" "$master" "$value"
        ;;
    esac
done <"$tmpl"
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec gosu redis redis-sentinel "$@"
fi
exec redis-sentinel "$@"
