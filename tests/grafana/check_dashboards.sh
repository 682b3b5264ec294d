#!/usr/bin/env bash
# check_dashboards.sh - type-checks Grafana dashboards against Grafana's own schema: npm
# @grafana/schema + typescript, pinned in tests/grafana/package.json and package-lock.json;
# gen-ts.mjs writes a .ts file per dashboard (`... satisfies Json<Dashboard>`, and each panel's
# options against its panel type) and `tsc --noEmit --strict` checks them.
#
# Usage: check_dashboards.sh [--work DIR] [DASHBOARD.json...]
#   default dashboards: infrastructure/grafana/dashboards/*.json
#   --work DIR  where node_modules and the generated files go (default tests/grafana/.work,
#               ignored by git; ctest uses its build directory).  node_modules is installed
#               with `npm ci` from the committed lockfile, offline first (npm's cache,
#               ~/.npm/_cacache), the registry only when the cache lacks a package, and kept
#               while the lockfile is unchanged.
# Exit: 0 all dashboards check; 1 a dashboard fails (each error names the file and panel);
#       77 node/npm are missing or the packages cannot be installed (the reason is printed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$here/.work
if [[ ${1:-} == --work ]]; then
    work=$2
    shift 2
fi
dashboards=("$@")
((${#dashboards[@]})) || dashboards=("$root"/infrastructure/grafana/dashboards/*.json)

skip() {
    echo "check_dashboards: SKIP: $*" >&2
    exit 77
}
command -v node >/dev/null || skip "node is not installed (Debian package nodejs: scripts/install-deps.sh tests)"
command -v npm >/dev/null || skip "npm is not installed (Debian package npm: scripts/install-deps.sh tests)"

mkdir -p "$work"
stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ $(cat "$work/node_modules/.ut-stamp" 2>/dev/null) != "$stamp" ]]; then
    cp "$here/package.json" "$here/package-lock.json" "$work/"
    log=$(mktemp)
    if ! (cd "$work" && timeout 300 npm ci --offline --no-audit --no-fund --loglevel=error) >"$log" 2>&1 &&
        ! (cd "$work" && timeout 300 npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        tail -5 "$log" >&2
        rm -f "$log"
        skip "npm ci of tests/grafana/package-lock.json failed (no cached packages and no registry?)"
    fi
    rm -f "$log"
    echo "$stamp" >"$work/node_modules/.ut-stamp"
fi

node "$here/gen-ts.mjs" "$work" "${dashboards[@]}" || exit 1
out=$(cd "$work/gen" && "$work/node_modules/.bin/tsc" -p tsconfig.json --pretty false 2>&1)
rc=$?
if ((rc != 0)); then
    # Each error names the dashboard file and panel: the nearest `// @where` line above it.
    while IFS= read -r line; do
        if [[ $line =~ ^([a-z0-9_]+\.ts)\(([0-9]+),[0-9]+\):\ (.*)$ ]]; then
            at=$(head -n "${BASH_REMATCH[2]}" "$work/gen/${BASH_REMATCH[1]}" | grep '// @where ' | tail -1 | sed 's|.*// @where ||')
            echo "$at: ${BASH_REMATCH[3]}"
        else
            echo "$line"
        fi
    done <<<"$out"
    exit 1
fi
echo "check_dashboards: ${#dashboards[@]} dashboard(s) match @grafana/schema $(node -p 'require(process.argv[1]).version' "$work/node_modules/@grafana/schema/package.json") (schemaVersion, panels, options)"
