# shellcheck shell=bash
# Tiny TAP helpers for the integration tests (sourced).
T_N=0
T_FAILED=0
T_PASSED=0

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

t_done() {
    echo "1..$T_N"
    echo "$T_PASSED passed, $T_FAILED failed"
    ((T_FAILED == 0 && T_N > 0))
}
