# shellcheck shell=bash
# Tiny TAP helpers for the integration tests (sourced).
#
# A test that cannot run says why and exits with ctest's skip code (T_SKIP_CODE; every test is
# registered with SKIP_RETURN_CODE 77, cmake/Tests.cmake), so it counts as skipped, never as
# passed:  need_cmd redis-server redis-server || skip "..."  /  skip_rest "reason" (later cases).
T_N=0
T_FAILED=0
T_PASSED=0
T_SKIPPED=0
T_SKIP_CODE=77

# skip REASON: the whole test cannot run.
skip() {
    echo "1..0 # SKIP $*"
    exit $T_SKIP_CODE
}

# need_cmd COMMAND PACKAGE: skips the test unless COMMAND is installed.
need_cmd() {
    command -v "$1" >/dev/null || skip "$1 is not installed (Debian package $2: scripts/install-deps.sh tests)"
}

# skip_case DESCRIPTION REASON: one case cannot run; the test ends as skipped unless a case failed.
skip_case() {
    T_N=$((T_N + 1))
    T_SKIPPED=$((T_SKIPPED + 1))
    echo "ok $T_N - $1 # SKIP $2"
}

ok() { # ok DESCRIPTION COMMAND...
    local desc=$1
    shift
    T_N=$((T_N + 1))
    if "$@"; then
        T_PASSED=$((T_PASSED + 1))
        echo "ok $T_N - $desc"
    else
        T_FAILED=$((T_FAILED + 1))
        echo "not ok $T_N - $desc"
    fi
}

diag() { echo "# $*"; }

# retry SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds or time is up.
retry() {
    local deadline=$(($(date +%s%N) + $1 * 1000000000))
    shift
    until "$@"; do
        (($(date +%s%N) > deadline)) && return 1
        sleep 0.2
    done
}

# t_done: the plan and the verdict as the exit status (0 passed, 1 failed, 77 skipped).
t_done() {
    echo "1..$T_N"
    echo "$T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
    ((T_FAILED == 0 && T_N > 0)) || return 1
    ((T_SKIPPED == 0)) || return $T_SKIP_CODE
}

# stack_use INFRACTL: the tests that run against the local stack use the one of
# INFRACTL_STATE_DIR (default: the repo's .infra), bringing it up when it is not running;
# stack_leave puts it back as it was found.  Exits (not ok) when it does not come up.
stack_use() {
    STACK_WAS_RUNNING=1
    "$1" status >/dev/null 2>&1
    [[ $? -eq 3 ]] && STACK_WAS_RUNNING=0
    if ((STACK_WAS_RUNNING == 0)); then
        diag "stack not running: bringing it up"
        "$1" up --detach --wait --timeout 240 || { echo "not ok 1 - stack comes up"; exit 1; }
    fi
}
stack_leave() {
    if ((STACK_WAS_RUNNING == 0)); then
        diag "leaving the stack down, as found"
        "$1" down >/dev/null 2>&1
    fi
}

# whole: every cluster of $INFRACTL's stack whole (status exit 0).
whole() { "$INFRACTL" status >/dev/null 2>&1; }

# stack_whole SECS: the drill tests' start: the stack of $INFRACTL up (brought up when it is not
# running) and whole within SECS, as one assertion.
stack_whole() {
    "$INFRACTL" status >/dev/null 2>&1
    if [[ $? == 3 ]]; then
        "$INFRACTL" up --detach --wait --timeout 240 --quiet || { echo "not ok 1 - stack comes up"; exit 1; }
    fi
    ok "the stack is up and its clusters whole (status exit 0)" retry "$1" whole
}

# need_netns: the namespace drill tests need root, iproute2 and nftables (skip otherwise).
need_netns() {
    need_cmd ip iproute2
    need_cmd nft nftables
    [[ $(id -u) == 0 ]] || skip "needs root (network namespaces, nftables)"
}
