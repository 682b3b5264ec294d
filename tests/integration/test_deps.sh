#!/usr/bin/env bash
# scripts/install-deps.sh lists every package the project's scripts, tests, CI and stack need:
# scripts/check-deps.py finds no command or Python module outside its lists, and does find one
# when a package the tests use is dropped from them (the check can fail).
# Usage: test_deps.sh SOURCE_DIR INFRACTL
set -uo pipefail
SRC=$1 INFRACTL=$2
. "$(dirname "$0")/lib.sh"
need_cmd shfmt shfmt

out=$(/usr/bin/python3 "$SRC/scripts/check-deps.py" "$SRC" 2>&1)
rc=$?
diag "$(tail -1 <<<"$out")"
ok "every command and Python module comes from a listed package" test "$rc" = 0
[[ $rc == 0 ]] || echo "$out"
out=$(/usr/bin/python3 "$SRC/scripts/check-deps.py" --without jq --without python3-celery "$SRC" 2>&1)
rc=$?
ok "without jq listed: the check fails" test "$rc" = 1
ok "... naming a file and line that calls jq" grep -qE "^[a-zA-Z0-9_./-]+\.sh:[0-9]+: command 'jq' comes from Debian package 'jq'" <<<"$out"
ok "without python3-celery listed: the Celery test's import is named" grep -q "Python module 'celery'" <<<"$out"
out=$(/usr/bin/python3 "$SRC/scripts/check-deps.py" --without chromium "$SRC" 2>&1)
ok "without chromium listed: the browser test's executablePath is named" \
    grep -qE "^tests/browser/[a-z_.]+\.mjs:[0-9]+: command '/usr/bin/chromium' comes from Debian package 'chromium'" <<<"$out"
ok "--list tests includes the runtime set (one list, sets that build on each other)" \
    bash -c '"$1/scripts/install-deps.sh" --list tests | grep -qx postgresql-15' _ "$SRC"
infractl_tools=$(UT_TOOLS_DIR='' "$INFRACTL" help | grep -A1 'default now:' | tail -1 | tr -d ' )')
ok "--tools-dir agrees with infractl's default for \${tools_dir} ($infractl_tools)" \
    test "$(UT_TOOLS_DIR='' "$SRC/scripts/install-deps.sh" --tools-dir)" = "$infractl_tools"
t_done
