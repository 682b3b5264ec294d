#!/usr/bin/env bash
# infractl's handling of bad input: nothing may be started, errors name file:line/port/package.
set -uo pipefail
INFRACTL=$1
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
holder_pid=
agent_pid=
cleanup() {
    [[ -n $holder_pid ]] && kill "$holder_pid" 2>/dev/null
    [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null
    [[ -S $tmp/mini/control.sock ]] && "$INFRACTL" --state-dir "$tmp/mini" down --timeout 20 >/dev/null 2>&1
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

# 8. Every option a command's parser takes is in its help and in the top-level help.
ok "help lists up --quiet" grep -qE '^  up .*--quiet' <<<"$out"
ok "help lists status --interval" grep -qE '^  status .*--interval S' <<<"$out"
ok "help lists restart --timeout" grep -qE '^  restart .*--timeout S' <<<"$out"
ok "help up explains -q, --quiet" grep -qE '^  -q, --quiet +[^ ]' <<<"$("$INFRACTL" help up)"
ok "help status explains -i, --interval" grep -qE '^  -i, --interval S +[^ ]' <<<"$("$INFRACTL" help status)"
# The top-level line of each command carries every long option its own help explains.
top_has_all() {
    local top=$1 cmd opt
    for cmd in up down status logs restart; do
        for opt in $("$INFRACTL" help "$cmd" | sed -n '/^Options:/,/^$/p' | grep -oE -- '--[a-z-]+'); do
            grep -qE -- "^  $cmd .*(\[$opt[] ]|\[-[a-z]\])" <<<"$top" && continue
            # logs shows its short forms ([-f] [-n LINES]): accept the short one of the pair
            short=$("$INFRACTL" help "$cmd" | grep -oE -- "-[a-z], $opt" | cut -c1-2)
            [[ -n $short ]] && grep -qE -- "^  $cmd .*\[$short[] ]" <<<"$top" && continue
            diag "top-level help of '$cmd' lacks $opt"
            return 1
        done
    done
}
ok "the top-level help lists every option of up, down, status, logs, restart" top_has_all "$out"

# 9. help flags / help gpu: each subcommand's full syntax and a description.
fh=$("$INFRACTL" help flags)
ok "help flags: create with --description, --variants, --from" \
    grep -qE '^  create KEY \[--description TEXT\] \[--variants [^]]+\] \[--from FLAG.json\]$' <<<"$fh"
ok "help flags: stage with its stages, --env and --percent" \
    grep -qE '^  stage KEY off\|shadow\|canary\|partial\|full \[--env ENV\] \[--percent P\]$' <<<"$fh"
ok "help flags: kill with --env and --off" grep -qE '^  kill KEY \[--env ENV\] \[--off\]$' <<<"$fh"
ok "help flags: history with --limit" grep -qE '^  history KEY \[--limit N\]$' <<<"$fh"
ok "help flags: get, list, delete" bash -c 'for s in "get KEY" list "delete KEY"; do grep -qx "  $s" <<<"$1" || exit 1; done' _ "$fh"
ok "help flags: a description under each subcommand" \
    test "$(grep -A1 -E '^  (create|get|list|stage|kill|history|delete)( |$)' <<<"$fh" | grep -cE '^      [a-z]')" -eq 7
ok "help flags: --url, --token-file, --json explained" \
    bash -c 'for o in "--url URL" "--token-file PATH" "--json"; do grep -qE -- "^  $o +[a-z]" <<<"$1" || exit 1; done' _ "$fh"
ok "flags --help prints the same" test "$("$INFRACTL" flags --help)" = "$fh"
ok "flags stage --help prints the same" test "$("$INFRACTL" flags stage --help)" = "$fh"
gh=$("$INFRACTL" help gpu)
ok "help gpu: status, drain, undrain with their options" bash -c '
    grep -qxF "  status [--json] [--token-file F] [HOST[:PORT]...]" <<<"$1" &&
    grep -qxF "  drain [--now] [--token-file F] HOST[:PORT] GPU" <<<"$1" &&
    grep -qxF "  undrain [--token-file F] HOST[:PORT] GPU" <<<"$1"' _ "$gh"
ok "gpu --help prints the same" test "$("$INFRACTL" gpu --help)" = "$gh"
out=$("$INFRACTL" flags stage k canary --off 2>&1)
ok "a bad flags option shows that subcommand's usage" \
    grep -qF "usage: infractl flags [--url URL] [--token-file PATH] [--json] stage KEY" <<<"$out"

# 10. gpu status: an agent that does not answer is an error on stderr, not an empty table.
closed=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$INFRACTL" gpu status "127.0.0.1:$closed" >"$tmp/gpu.out" 2>"$tmp/gpu.err"
rc=$?
diag "$(cat "$tmp/gpu.out" "$tmp/gpu.err")"
ok "gpu status of a closed port exits 3" test "$rc" -eq 3
ok "gpu status of a closed port names the agent on stderr" grep -q "gpu_agent at 127.0.0.1:$closed" "$tmp/gpu.err"
ok "gpu status of a closed port prints no table" test ! -s "$tmp/gpu.out"
/usr/bin/python3 -c 'import http.server, json
body = json.dumps({"host": "fakehost", "nvml_up": True, "gpus": [{"index": 0, "uuid": "GPU-fake-0",
    "healthy": True, "drained": False}]}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()' >"$tmp/agent.port" &
agent_pid=$!
retry 5 test -s "$tmp/agent.port"
"$INFRACTL" gpu status "127.0.0.1:$closed" "127.0.0.1:$(cat "$tmp/agent.port")" >"$tmp/gpu.out" 2>"$tmp/gpu.err"
rc=$?
diag "$(cat "$tmp/gpu.out" "$tmp/gpu.err")"
ok "gpu status, one agent down: still exits 3" test "$rc" -eq 3
ok "gpu status, one agent down: the table has the agent that answered" \
    bash -c "head -n1 '$tmp/gpu.out' | grep -q '^HOST ' && grep -q '^fakehost .*GPU-fake-0' '$tmp/gpu.out'"
ok "gpu status, one agent down: its error on stderr" grep -q "gpu_agent at 127.0.0.1:$closed" "$tmp/gpu.err"

# 11. A stack of our own (one sleeper, in $tmp): status --json gives uptime to the millisecond,
# and `logs -f` follows (after `logs`, -f is --follow, not --file).
cat >"$tmp/mini.yml" <<'YML'
name: mini
services:
  sleeper:
    command: [/bin/sleep, "3600.5678"]
YML
if "$INFRACTL" -f "$tmp/mini.yml" --state-dir "$tmp/mini" up --detach --wait --timeout 30 --quiet \
    >/dev/null 2>"$tmp/mini.err"; then
    sleep 0.3
    "$INFRACTL" -f "$tmp/mini.yml" --state-dir "$tmp/mini" status --json >"$tmp/mini.json"
    diag "$(grep uptime_s "$tmp/mini.json")"
    ok "status --json: uptime_s to the millisecond at most" \
        grep -qE '^ +"uptime_s": [0-9]+(\.[0-9]{1,3})?,$' "$tmp/mini.json"
    timeout 2 "$INFRACTL" -f "$tmp/mini.yml" --state-dir "$tmp/mini" logs -f sleeper >/dev/null 2>"$tmp/logs.err"
    rc=$?
    ok "logs -f SERVICE follows (still running after 2 s)" test "$rc" -eq 124
    ok "logs -f SERVICE: no error" test ! -s "$tmp/logs.err"
    "$INFRACTL" --state-dir "$tmp/mini" down --timeout 20 >/dev/null 2>&1
else
    ok "a one-service stack in \$tmp comes up" false
    diag "$(cat "$tmp/mini.err")"
fi

# 12. up SERVICE...: the named services and their dependencies start, the rest stay stopped
# (a service whose binary is missing, Java say, does not keep the others down); a later up
# starts what was held back.
cat >"$tmp/part.yml" <<'YML'
name: part
services:
  base:
    command: [/bin/sleep, "3600.4321"]
  app:
    command: [/bin/sleep, "3600.4321"]
    depends_on: [base]
  other:
    command: [/bin/sleep, "3600.4321"]
  broken:
    package: ghost-jre
    command: [/usr/bin/ghost-java-not-installed]
YML
part() { "$INFRACTL" -f "$tmp/part.yml" --state-dir "$tmp/part" "$@"; }
part_state() { part status --json | jq -r --arg n "$1" '.services[] | select(.name == $n) | .state'; }
states_are() { # states_are SERVICE STATE...
    while (($#)); do
        [[ $(part_state "$1") == "$2" ]] || { diag "$1 is $(part_state "$1"), not $2"; return 1; }
        shift 2
    done
}
out=$(part up --detach nope 2>&1)
rc=$?
ok "up with an unknown service exits 2" test "$rc" -eq 2
ok "up with an unknown service names it" grep -q "no service 'nope'" <<<"$out"
ok "up with an unknown service starts nothing" test ! -S "$tmp/part/control.sock"
if part up --detach --wait --timeout 30 app >"$tmp/part.out" 2>&1; then
    ok "up app: app and its dependency base run" states_are app running base running
    ok "up app: the others stay stopped" states_are other stopped broken stopped
    out=$(part up --detach broken 2>&1)
    rc=$?
    diag "$out"
    ok "up of a service whose binary is missing exits 1" test "$rc" -eq 1
    ok "up of a service whose binary is missing names the package" grep -q "ghost-jre" <<<"$out"
    ok "the failed up left the running services alone" states_are app running broken stopped
    ok "a later up OTHER starts it on the running supervisor" \
        part up --detach --wait --timeout 30 --quiet other
    ok "other runs" states_are other running
    part down --timeout 20 >/dev/null 2>&1
else
    ok "up app on a stack with a broken service" false
    diag "$(cat "$tmp/part.out")"
fi

t_done
