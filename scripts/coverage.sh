#!/usr/bin/env bash
# coverage.sh [BUILD_DIR] - line and branch coverage of the unit tests (gcov + lcov): a
# separate gcc build with --coverage (default build-cov/), `ctest -L unit` in it, then
# `lcov --capture` of our sources (src/, include/; not tests/ nor /usr), `genhtml`.
# Writes BUILD_DIR/coverage/lcov.info and BUILD_DIR/coverage/html/index.html and prints the
# summary.  CI uploads BUILD_DIR/coverage as the `coverage` artifact (.github/workflows/ci.yml).
# Needs lcov (Debian package lcov; genhtml is in it) and gcc's gcov.
# Extra arguments after BUILD_DIR go to ctest (e.g. -R rollout).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-cov}
shift || true
for c in lcov genhtml gcov; do
    command -v "$c" >/dev/null || {
        echo "coverage: $c is not installed (Debian package ${c/genhtml/lcov}; gcov comes with gcc)" >&2
        exit 1
    }
done
out=$dir/coverage
echo "coverage: build with --coverage in $dir/" >&2
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc \
    -DCMAKE_C_FLAGS="--coverage -O0" -DCMAKE_EXE_LINKER_FLAGS=--coverage \
    -DCMAKE_SHARED_LINKER_FLAGS=--coverage >/dev/null
cmake --build "$dir" -j"$(nproc)" >"$dir/build.log" 2>&1 || {
    tail -50 "$dir/build.log" >&2
    echo "coverage: the build failed (log $dir/build.log)" >&2
    exit 1
}
# Counters from an earlier run would add up: start from zero.
lcov --quiet --zerocounters --directory "$dir"
echo "coverage: unit tests (ctest -L unit)" >&2
rc=0
scripts/ctest.sh "$dir" -L unit "$@" >"$dir/ctest-coverage.log" 2>&1 || rc=$?
tail -3 "$dir/ctest-coverage.log" >&2
rm -rf "$out"
mkdir -p "$out"
# A zero baseline of every compiled file (--initial) added to the run's counts, so a source
# file no test touched counts as 0 % instead of being left out of the total.
# (lcov 1.16's geninfo warns about its own redefined subroutines: noise, dropped.)
noise() { grep -vE "^Subroutine .* redefined at|CMakeCCompilerId.c|some exclusion markers may be ignored" >&2; }
lcov --quiet --capture --initial --rc lcov_branch_coverage=1 --directory "$dir" \
    --base-directory "$PWD" --output-file "$out/base.info" 2> >(noise)
lcov --quiet --capture --rc lcov_branch_coverage=1 --directory "$dir" --base-directory "$PWD" \
    --output-file "$out/run.info" 2> >(noise)
lcov --quiet --rc lcov_branch_coverage=1 --add-tracefile "$out/base.info" \
    --add-tracefile "$out/run.info" --output-file "$out/all.info"
lcov --quiet --rc lcov_branch_coverage=1 --extract "$out/all.info" "$PWD/src/*" "$PWD/include/*" \
    --output-file "$out/lcov.info"
rm -f "$out/base.info" "$out/run.info" "$out/all.info"
genhtml --quiet --branch-coverage --legend --title "ultrathink infrastructure: unit tests" \
    --prefix "$PWD" --output-directory "$out/html" "$out/lcov.info"
lcov --rc lcov_branch_coverage=1 --summary "$out/lcov.info" 2>&1 | sed 's/^/coverage: /' >&2
echo "coverage: report $out/html/index.html, data $out/lcov.info" >&2
# The report is written either way; failed tests still fail the run.
((rc == 0)) || echo "coverage: some unit tests failed (log $dir/ctest-coverage.log)" >&2
exit "$rc"
