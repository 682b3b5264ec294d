#!/usr/bin/env bash
# compose's Sentinel entrypoint (infrastructure/compose/redis/sentinel-entrypoint.sh), run for
# real without a Docker engine: in its own mount and network namespaces (unshare), chrooted
# into a root that has the container's paths (/data, /etc/redis with the mounted files,
# /run/secrets/redis, /etc/hosts naming redis1), as user redis, beside a redis-server "redis1"
# on 6380 that needs the secret.  Its first start must render /data/sentinel.conf and monitor
# redis1; a start over a sentinel.conf left by an older template (down-after 5000, as volumes
# made before the tuning have) must run with the template's timing again.
# (The file itself keeps the old lines until Sentinel next rewrites it, on its next event: the
# command line wins at every start.)
# Usage: test_sentinel_entrypoint.sh SOURCE_DIR
# shellcheck disable=SC2016  # the bash -c snippets read their arguments as $1, $2, ...
set -uo pipefail
SRC=$1
# shellcheck source=tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
need_cmd redis-server redis-server
need_cmd redis-sentinel redis-sentinel
need_cmd redis-cli redis-tools
need_cmd unshare util-linux
need_cmd shellcheck shellcheck
[[ $(id -u) == 0 ]] || skip "needs root (mount and network namespaces, chroot)"
id redis >/dev/null 2>&1 || skip "no user redis (Debian package redis-server)"

# Everything below runs in private mount and network namespaces: nothing it mounts or binds is
# seen outside, and 6380/26380 are free whatever runs on the machine.
if [[ -z ${UT_SENTINEL_NS:-} ]]; then
    exec env UT_SENTINEL_NS=1 unshare --mount --net --propagation private bash "$0" "$@"
fi

COMPOSE=$SRC/infrastructure/compose/redis
ok "shellcheck sentinel-entrypoint.sh (POSIX sh)" shellcheck -s sh "$COMPOSE/sentinel-entrypoint.sh"

# The test's files live on a tmpfs of this mount namespace: the binds of /usr and /etc below
# are never under a directory that something removes recursively, and all of it is gone with
# the namespace.
tmp=$(mktemp -d /tmp/ut-sentinel-entry-XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$tmp"
pids=()
cleanup() {
    ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    umount -R "$tmp" 2>/dev/null || umount -R -l "$tmp"
    rmdir "$tmp"
}
trap cleanup EXIT
ip link set lo up

# The container's file system: the machine's /usr and /etc, its own /data, /run and /tmp.
root=$tmp/root
mkdir -p "$root"/{usr,etc,dev,proc,data,run/secrets,tmp}
for d in usr etc dev; do mount --rbind "/$d" "$root/$d"; done
mount -t proc proc "$root/proc"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
chmod 1777 "$root/tmp"
chown redis:redis "$root/data"
secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$secret" >"$root/run/secrets/redis"
chmod 0444 "$root/run/secrets/redis"
# compose's volumes: ./compose/redis/sentinel.conf and sentinel-entrypoint.sh under /etc/redis
mkdir -p "$tmp/etc-redis"
cp "$COMPOSE/sentinel.conf" "$COMPOSE/sentinel-entrypoint.sh" "$tmp/etc-redis/"
mount --bind "$tmp/etc-redis" "$root/etc/redis"
printf '127.0.0.1 localhost redis1 %s\n' "$(hostname)" >"$tmp/hosts"
mount --bind "$tmp/hosts" "$root/etc/hosts"

redis-server --port 6380 --bind 127.0.0.1 --requirepass "$secret" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis1.log" &
pids+=($!)

# start_sentinel [COMMAND...]: the entrypoint (default) or COMMAND, chrooted, as redis.
start_sentinel() {
    (($#)) || set -- /bin/sh /etc/redis/sentinel-entrypoint.sh 26380
    chroot "$root" setpriv --reuid=redis --regid=redis --clear-groups "$@" >>"$tmp/sentinel.log" 2>&1 &
    SENTINEL_PID=$!
    pids+=("$SENTINEL_PID")
    retry 10 redis-cli -p 26380 PING >/dev/null 2>&1
}
stop_sentinel() {
    kill "$SENTINEL_PID" 2>/dev/null
    wait "$SENTINEL_PID" 2>/dev/null
}
# field NAME: one field of SENTINEL MASTER mymaster.
field() { redis-cli -p 26380 SENTINEL MASTER mymaster 2>/dev/null | sed -n "/^$1\$/{n;p}"; }
# want OPTION: the template's value of `sentinel OPTION mymaster VALUE`.
want() { sed -n "s/^sentinel $1 mymaster //p" "$COMPOSE/sentinel.conf"; }
timing_is() { # timing_is DOWN_AFTER FAILOVER_TIMEOUT PARALLEL_SYNCS
    [[ $(field down-after-milliseconds) == "$1" && $(field failover-timeout) == "$2" &&
        $(field parallel-syncs) == "$3" ]]
}
master_ok() { [[ $(field flags) == master && $(field num-slaves) != "" ]]; }
conf=$root/data/sentinel.conf
down=$(want down-after-milliseconds) fto=$(want failover-timeout) ps=$(want parallel-syncs)
diag "template timing: down-after $down, failover-timeout $fto, parallel-syncs $ps"
ok "the template sets all three" test -n "$down" -a -n "$fto" -a -n "$ps"

ok "first start: Sentinel answers on 26380" start_sentinel
ok "it rendered /data/sentinel.conf, mode 0600, owned by redis" \
    test "$(stat -c '%a %U' "$conf" 2>/dev/null)" = "600 redis"
ok "with the port and the secret as auth-pass" \
    bash -c 'grep -qx "port 26380" "$1" && grep -qx "sentinel auth-pass mymaster $2" "$1"' _ "$conf" "$secret"
ok "it monitors redis1:6380 and sees it as a healthy master (the secret works)" retry 10 master_ok
ok "with the template's timing" timing_is "$down" "$fto" "$ps"
stop_sentinel

# A volume made with an older template: Sentinel's own rewrite kept these.
sed -i -e "s/^sentinel down-after-milliseconds mymaster .*/sentinel down-after-milliseconds mymaster 5000/" \
    -e "s/^sentinel failover-timeout mymaster .*/sentinel failover-timeout mymaster 180000/" "$conf"
ok "the old values planted in /data/sentinel.conf" grep -qx "sentinel down-after-milliseconds mymaster 5000" "$conf"
control_old() { start_sentinel /usr/bin/redis-sentinel /data/sentinel.conf && timing_is 5000 180000 "$ps"; }
ok "control: redis-sentinel on that file alone runs with the old values" control_old
stop_sentinel

ok "restart through the entrypoint: Sentinel answers" start_sentinel
ok "it runs with the template's timing again ($down / $fto / $ps)" timing_is "$down" "$fto" "$ps"
ok "the master is still monitored" retry 10 master_ok
ok "the first start's settings were kept (no second render)" \
    test "$(grep -c '^sentinel auth-pass' "$conf")" = 1
stop_sentinel
((T_FAILED == 0)) || sed 's/^/# sentinel: /' "$tmp/sentinel.log" | tail -20
t_done
