#!/usr/bin/env bash
# run.sh - in-process flag evaluation: librollout (C) vs unleash-client and
# @growthbook/growthbook (node) on the same flag set, in one run.
#   tests/bench/rollout/run.sh [BUILD_DIR] [N]
# The npm packages go to $ROLLOUT_BENCH_NPM (default /tmp/rollout-bench-npm), outside the repo.
# Results are printed and saved to tests/bench/results/rollout-<timestamp>.txt (gitignored).
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${1:-build}
N=${2:-2000000}
NPM=${ROLLOUT_BENCH_NPM:-/tmp/rollout-bench-npm}

cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" --target bench_rollout -j2 >/dev/null
if [[ ! -d $NPM/node_modules/unleash-client || ! -d $NPM/node_modules/@growthbook/growthbook ]]; then
    mkdir -p "$NPM"
    (cd "$NPM" && [[ -f package.json ]] || npm init -y >/dev/null)
    npm install --prefix "$NPM" --no-audit --no-fund unleash-client@6.12.1 \
        @growthbook/growthbook@1.8.0 >/dev/null
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
{
    echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cpus; N=$N per run, best of 5"
    "$BUILD/tests/bench_rollout" "$N"
    NODE_PATH=$NPM/node_modules NODE_ENV=production node tests/bench/rollout/bench_peers.js \
        "$((N / 2))"
} | tee "$out"

mkdir -p tests/bench/results
cp "$out" "tests/bench/results/rollout-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo
awk '!/^#/ { printf "%-12s %-7s %-11s %9s ns/op   on=%s\n", $1, $2, $3, $4, $5 }' "$out"
