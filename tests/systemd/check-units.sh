#!/usr/bin/env bash
# tests/systemd: our systemd units (infrastructure/systemd/*.service) checked by systemd itself.
#
#   check-units.sh SRCDIR
#
# What it checks, per unit:
#   - `systemd-analyze verify` in a throw-away root (--root: the host's unit library copied, a stub
#     executable at every absolute Exec* path of our units) exits 0 AND prints nothing: verify
#     exits 0 on an unknown directive or an unparsable value (it only warns "ignoring"), so any
#     line it prints is a failure here.  It checks the syntax and value of every directive, the
#     dependencies, and that each Exec* command exists and is executable (in the temp root).
#   - `systemd-analyze security --offline=yes` stays at or under the unit's exposure threshold.
#   - the hardening this project requires is present (NoNewPrivileges, ProtectSystem=strict,
#     PrivateTmp, ProtectHome, a CapabilityBoundingSet, RestrictAddressFamilies, a Restart policy
#     with RestartSec, an optional env file under /etc/ultrathink/).
# What it cannot check: that the services start and work under the sandbox (no systemd runs
# here as PID 1, and starting services is out of bounds for tests).
# Then the negative tests: an unknown directive, a bad value, a missing ExecStart binary and a
# missing hardening option must each fail.
# Exit 77 (ctest: skipped) when systemd-analyze is missing.
set -uo pipefail

src=$(cd "${1:?usage: check-units.sh SRCDIR}" && pwd)
units_dir=$src/infrastructure/systemd
sa=$(command -v systemd-analyze) || { echo "SKIP: systemd-analyze not found (Debian package systemd)"; exit 77; }
unitlib=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
    [[ -f $d/sysinit.target ]] && { unitlib=$d; break; }
done
[[ -n $unitlib ]] || { echo "SKIP: no systemd unit library (sysinit.target) on this machine"; exit 77; }

# Exposure ceilings for `systemd-analyze security --threshold` (its scale is the exposure x 10:
# 0 = locked down, 100 = unprotected; 20 means "at most 2.0" as it prints them).
# rolloutd runs with no privileges at all; gpu_agent and the infractl supervisor run as root
# (they start services as other users) with a minimal capability set.
declare -A threshold=([rolloutd]=20 [gpu_agent]=55 [infractl-stack]=55)
# The capability bounding set each unit may have, exactly (the units say why each is needed).
declare -A caps=(
    [rolloutd]=""
    [gpu_agent]="CAP_SETUID CAP_SETGID CAP_KILL CAP_SYS_PTRACE CAP_CHOWN CAP_FOWNER"
    [infractl-stack]="CAP_SETUID CAP_SETGID CAP_KILL CAP_SYS_PTRACE CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE"
)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
cp -a "$unitlib" "$root/usr/lib/systemd/system"
# A stub at every absolute Exec* path our units name (stripped of the -@:+! prefixes).
sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$units_dir"/*.service | sort -u |
    while read -r exe; do
        mkdir -p "$root$(dirname "$exe")"
        printf '#!/bin/sh\nexit 0\n' >"$root$exe"
        chmod 755 "$root$exe"
    done

# check UNITFILE: 0 when every check passes; prints why not.
check() {
    local file=$1 name unit thr out rc=0 d have
    name=$(basename "$file")
    unit=${name%.service}
    thr=${threshold[$unit]:-}
    [[ -n $thr ]] || { echo "  no exposure threshold for $unit in this test"; return 1; }
    cp "$file" "$root/etc/systemd/system/$name"
    out=$("$sa" verify --root="$root" --man=no "$root/etc/systemd/system/$name" 2>&1)
    if [[ $? -ne 0 || -n $out ]]; then
        echo "  verify: ${out:-exit status non-zero}" | head -5
        rc=1
    fi
    if ! out=$("$sa" security --offline=yes --root="$root" --threshold="$thr" \
        "$root/etc/systemd/system/$name" 2>&1); then
        echo "  security: $(tail -1 <<<"$out") (threshold $thr)"
        rc=1
    fi
    for d in '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^PrivateTmp=yes$' \
        '^ProtectHome=yes$' '^CapabilityBoundingSet=' '^RestrictAddressFamilies=' \
        '^Restart=(on-failure|always)$' '^RestartSec=[1-9]' '^EnvironmentFile=-/etc/ultrathink/' \
        '^(DynamicUser=yes|User=[a-z_]+|CapabilityBoundingSet=CAP_SETUID .*)$'; do
        grep -Eq "$d" "$file" || { echo "  hardening: no line matching $d"; rc=1; }
    done
    have=$(sed -n 's/^CapabilityBoundingSet=//p' "$file" | tr ' ' '\n' | sort | xargs)
    if [[ $have != "$(tr ' ' '\n' <<<"${caps[$unit]}" | sort | xargs)" ]]; then
        echo "  capabilities: CapabilityBoundingSet is '$have', this test allows '${caps[$unit]}'"
        rc=1
    fi
    rm -f "$root/etc/systemd/system/$name"
    return $rc
}

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

units=("$units_dir"/*.service)
((${#units[@]} == 3)) || bad "expected 3 units in $units_dir, found ${#units[@]}"
for f in "${units[@]}"; do
    n=$(basename "$f" .service)
    if check "$f"; then ok "$n.service: verify clean, exposure <= ${threshold[$n]}/10, hardened, capabilities '${caps[$n]}'"; else bad "$n.service"; fi
done

# Negative tests: each planted error must make check fail.
tmp=$root/planted
mkdir -p "$tmp"
plant() { # NAME SED-EXPRESSION [UNIT]: check must fail on the edited copy
    local what=$1 expr=$2 unit=${3:-rolloutd}
    sed "$expr" "$units_dir/$unit.service" >"$tmp/$unit.service"
    if cmp -s "$tmp/$unit.service" "$units_dir/$unit.service"; then
        bad "planted $what: the edit changed nothing"
    elif check "$tmp/$unit.service" >"$tmp/out" 2>&1; then
        bad "planted $what: accepted"
    else
        ok "planted $what: rejected ($(head -1 "$tmp/out" | sed 's/^ *//'))"
    fi
}
plant "unknown directive" 's/^NoNewPrivileges=yes/NoNewPrivileges=yes\nProtectEverything=yes/'
plant "bad value" 's/^RestartSec=.*/RestartSec=fast/'
plant "bad ExecStart binary" 's|^ExecStart=/usr/local/bin/rolloutd|ExecStart=/usr/local/bin/rolloutd-missing|'
plant "ProtectSystem=full" 's/^ProtectSystem=strict/ProtectSystem=full/' gpu_agent
plant "capabilities widened" 's/^CapabilityBoundingSet=$/CapabilityBoundingSet=CAP_NET_BIND_SERVICE/'
plant "sandbox removed" '/^\(Protect\|Private\|Restrict\)/d' rolloutd

echo "$passed passed, $failed failed"
((failed == 0))
