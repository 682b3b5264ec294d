#!/usr/bin/env bash
# ctest.sh BUILD_DIR [CTEST_ARGS...]: runs ctest in BUILD_DIR with the output of failed tests
# shown.  A test that cannot run is reported by ctest as skipped (cmake/Tests.cmake); with
# NO_SKIP set (CI, where every dependency is installed) any skipped test fails the run.
set -uo pipefail
dir=$1
shift
log=$dir/ctest.log
(cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
skipped=$(sed -n '/did not run:/,/^$/p' "$log" | grep '(Skipped)')
if [[ -n $skipped ]]; then
    echo "ctest.sh: skipped tests (their output says why; scripts/install-deps.sh installs what they need):"
    echo "$skipped"
    if [[ -n ${NO_SKIP:-} ]]; then
        echo "ctest.sh: NO_SKIP is set: a skipped test is a failure here"
        exit 1
    fi
fi
exit "$rc"
