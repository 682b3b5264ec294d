#!/usr/bin/env bash
# A test whose dependency is missing is reported by ctest as skipped, never as passed: a
# throw-away CMake project registers tests the way ours are registered (cmake/Tests.cmake) and
# written with our helpers (tests/lib/t.h T_SKIP, tests/integration/lib.sh need_cmd and
# skip_case), runs ctest, and reads its verdict for each.
# Usage: test_skip.sh SOURCE_DIR CMAKE CC
set -uo pipefail
SRC=$1 CMAKE=$2 CC=$3
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/ut-skip.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
missing=ut-no-such-tool-$$

cat >"$tmp/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(skipcheck C)
include($SRC/cmake/Tests.cmake)
enable_testing()
add_executable(c_cases c_cases.c)
target_include_directories(c_cases PRIVATE $SRC/tests/lib)
add_test(NAME c.one_case_skips COMMAND c_cases)
add_test(NAME c.all_pass COMMAND c_cases pass)
add_test(NAME sh.missing_command COMMAND bash $tmp/missing.sh)
add_test(NAME sh.one_case_skips COMMAND bash $tmp/partial.sh)
add_test(NAME sh.failure_beats_skip COMMAND bash $tmp/fail.sh)
add_test(NAME sh.all_pass COMMAND bash $tmp/pass.sh)
ut_tests_skippable()
EOF
cat >"$tmp/c_cases.c" <<'EOF'
#include "t.h"
static void pass(void) { ASSERT_EQ(1 + 1, 2); }
static void needs_tool(void) { T_SKIP("ut-no-such-tool is not installed"); }
T_MAIN(T_CASE(pass), T_CASE(needs_tool))
EOF
printf '. %q\nneed_cmd %q some-package\nok "never runs" true\nt_done\n' \
    "$SRC/tests/integration/lib.sh" "$missing" >"$tmp/missing.sh"
printf '. %q\nok "runs" true\nskip_case "needs a tool" "%s is not installed"\nt_done\n' \
    "$SRC/tests/integration/lib.sh" "$missing" >"$tmp/partial.sh"
printf '. %q\nok "fails" false\nskip_case "needs a tool" "not installed"\nt_done\n' \
    "$SRC/tests/integration/lib.sh" >"$tmp/fail.sh"
printf '. %q\nok "runs" true\nt_done\n' "$SRC/tests/integration/lib.sh" >"$tmp/pass.sh"

"$CMAKE" -S "$tmp" -B "$tmp/b" -DCMAKE_C_COMPILER="$CC" >"$tmp/cmake.log" 2>&1 &&
    "$CMAKE" --build "$tmp/b" >>"$tmp/cmake.log" 2>&1 || {
    cat "$tmp/cmake.log"
    echo "not ok 1 - the throw-away project builds"
    exit 1
}
(cd "$tmp/b" && ctest -V) >"$tmp/ctest.log" 2>&1
verdict() { # verdict TEST: Passed, Skipped or Failed as ctest reported it
    sed -n "s/^ *[0-9]*\/[0-9]* Test *#[0-9]*: $1 \.*[ *]*\([A-Za-z]*\).*/\1/p" "$tmp/ctest.log"
}
ok "a C case calling T_SKIP: the test is Skipped" test "$(verdict c.one_case_skips)" = Skipped
ok "... and its reason is in the output" grep -q "SKIP: ut-no-such-tool is not installed" "$tmp/ctest.log"
ok "the same executable with the skipping case filtered out: Passed" test "$(verdict c.all_pass)" = Passed
ok "need_cmd with a missing command: Skipped" test "$(verdict sh.missing_command)" = Skipped
ok "... naming the command and its package" grep -q "# SKIP $missing is not installed (Debian package some-package" "$tmp/ctest.log"
ok "one skip_case among passing cases: Skipped" test "$(verdict sh.one_case_skips)" = Skipped
ok "a failing case wins over a skipped one: Failed" test "$(verdict sh.failure_beats_skip)" = Failed
ok "a script whose cases all ran: Passed" test "$(verdict sh.all_pass)" = Passed
# ctest's percentage counts skipped tests with the passed ones; its list of tests that did not
# run is what names them (and what .ci/run looks for).
ok "ctest lists exactly the three skipped tests as not run" \
    test "$(sed -n '/did not run:/,/^$/p' "$tmp/ctest.log" | grep -c '(Skipped)')" = 3
[[ $T_FAILED == 0 ]] || cat "$tmp/ctest.log"
t_done
