#!/usr/bin/env bash
# infractl's handling of bad input: nothing may be started, errors name file:line/port/package.
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
holder_pid=
cleanup() {
    [[ -n $holder_pid ]] && kill "$holder_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

nothing_started() { [[ ! -e $tmp/state/supervisor.pid && ! -S $tmp/state/control.sock ]]; }

# 1. Malformed YAML: file:line in the error, exit 1, nothing started.
cat >"$tmp/bad.yml" <<'YML'
name: t
services:
  a:
    command: [/bin/sleep, "60"
YML
out=$("$INFRACTL" -f "$tmp/bad.yml" --state-dir "$tmp/state" up --detach 2>&1)
rc=$?
diag "$out"
ok "malformed stack file exits 1" test "$rc" -eq 1
ok "malformed stack file error names file and line" grep -qE "bad.yml:[0-9]+" <<<"$out"
ok "malformed stack file starts nothing" nothing_started

# 2. Unknown field: the field is named with its position.
cat >"$tmp/unknown.yml" <<'YML'
name: t
services:
  a:
    command: [/bin/sleep, "60"]
    helthcheck:
      type: tcp
      port: 1
YML
out=$("$INFRACTL" -f "$tmp/unknown.yml" --state-dir "$tmp/state" up --detach 2>&1)
rc=$?
diag "$out"
ok "unknown field exits 1" test "$rc" -eq 1
ok "unknown field is named with file:line" grep -qE "unknown.yml:5.*helthcheck" <<<"$out"
ok "unknown field starts nothing" nothing_started

# 3. A port already in use: names port and service; nothing half-started.
/usr/bin/python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$tmp/port" &
holder_pid=$!
retry 5 test -s "$tmp/port"
port=$(cat "$tmp/port")
cat >"$tmp/port.yml" <<YML
name: t
services:
  first:
    command: [/bin/sleep, "3600.1234"]
  second:
    command: [/bin/sleep, "3600.1234"]
    ports: [$port]
YML
out=$("$INFRACTL" -f "$tmp/port.yml" --state-dir "$tmp/state" up --detach 2>&1)
rc=$?
diag "$out"
ok "port in use exits 1" test "$rc" -eq 1
ok "port in use names port and service" grep -q "port $port of service 'second'" <<<"$out"
ok "port in use starts nothing" nothing_started
ok "port in use leaves no process behind" bash -c "! pgrep -f '^/bin/sleep 3600.1234$' >/dev/null"

# 4. A missing binary names its Debian package.
cat >"$tmp/missing.yml" <<'YML'
name: t
services:
  ghost:
    package: ghost-server
    command: [/usr/bin/ghost-server-not-installed]
YML
out=$("$INFRACTL" -f "$tmp/missing.yml" --state-dir "$tmp/state" up --detach 2>&1)
rc=$?
diag "$out"
ok "missing binary exits 1" test "$rc" -eq 1
ok "missing binary names the package" grep -q "ghost-server'" <<<"$out"
ok "missing binary starts nothing" nothing_started

# 4b. As root, a service user must be able to reach the state directory and read its command.
if [[ $(id -u) -eq 0 ]] && id nobody >/dev/null 2>&1; then
    open_state=$(mktemp -d)
    chmod 755 "$open_state"
    printf 'exec sleep 3600.1234\n' >"$tmp/job.sh" # $tmp is 0700: nobody cannot read it
    cat >"$tmp/user.yml" <<YML
name: t
services:
  job:
    user: nobody
    command: [/bin/sh, "$tmp/job.sh"]
YML
    out=$("$INFRACTL" -f "$tmp/user.yml" --state-dir "$open_state/s" up --detach 2>&1)
    rc=$?
    diag "$out"
    ok "unreadable command file exits 1" test "$rc" -eq 1
    ok "unreadable command file names user and file" grep -q "runs as 'nobody', who cannot read '$tmp/job.sh'" <<<"$out"
    ok "unreadable command file starts nothing" test ! -e "$open_state/s/supervisor.pid"
    out=$("$INFRACTL" -f "$tmp/user.yml" --state-dir "$tmp/state2" up --detach 2>&1)
    ok "unreachable state directory names user and directory" grep -q "runs as 'nobody', who cannot reach the state directory '$tmp/state2'" <<<"$out"
    rm -rf "$open_state"
fi

# 5. Unknown subcommand: suggestion and usage exit code.
out=$("$INFRACTL" stauts 2>&1)
rc=$?
ok "unknown command exits 2" test "$rc" -eq 2
ok "unknown command suggests 'status'" grep -q "did you mean 'status'" <<<"$out"

# 6. Status of a stack that is not running: exit 3, JSON says so.
out=$("$INFRACTL" -f "$tmp/port.yml" --state-dir "$tmp/state" status --json 2>/dev/null)
rc=$?
ok "status of a stopped stack exits 3" test "$rc" -eq 3
ok "status --json of a stopped stack says running=false" grep -q '"running": false' <<<"$out"

# 7. help lists the commands and documents exit codes.
out=$("$INFRACTL" help)
ok "help lists every command" bash -c 'for c in up down status logs restart; do grep -q "^  $c " <<<"$1" || exit 1; done' _ "$out"
ok "help documents exit codes" grep -q "Exit codes" <<<"$out"

t_done
