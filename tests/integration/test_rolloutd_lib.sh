# shellcheck shell=bash
# Helpers for the rolloutd integration tests (sourced after lib.sh): start/stop a real rolloutd
# on 127.0.0.1 port 0 and talk to it with curl.

RD_PIDS=()

# rd_start NAME STATE_DIR [ARGS...]: starts rolloutd, waits for its rolloutd.addr and /readyz;
# sets RD_ADDR_<NAME>, RD_PID_<NAME>.  Log in STATE_DIR/log.
rd_start() {
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    rm -f "$dir/rolloutd.addr"
    "$ROLLOUTD" --state-dir "$dir" --listen 127.0.0.1:0 "$@" >>"$dir/log" 2>&1 &
    local pid=$!
    RD_PIDS+=("$pid")
    printf -v "RD_PID_$name" '%s' "$pid"
    if ! retry 10 test -s "$dir/rolloutd.addr"; then
        diag "rolloutd $name did not start:"
        sed 's/^/# /' "$dir/log"
        return 1
    fi
    local addr
    addr=$(cat "$dir/rolloutd.addr")
    printf -v "RD_ADDR_$name" '%s' "$addr"
    retry 10 curl -sf -o /dev/null "http://$addr/readyz"
}

rd_stop_all() {
    local p
    for p in "${RD_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${RD_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    RD_PIDS=()
}

# api ADDR TOKEN METHOD PATH [BODY] [EXTRA CURL ARGS...]: prints the body, then a last line
# with the status code.
api() {
    local addr=$1 tok=$2 method=$3 path=$4 body=${5-}
    shift 4
    (($# > 0)) && shift
    local args=(-s -X "$method" -w '\n%{http_code}' -H 'Content-Type: application/json')
    [[ -n $tok ]] && args+=(-H "Authorization: Bearer $tok")
    [[ -n $body ]] && args+=(--data-binary "$body")
    curl "${args[@]}" "$@" "http://$addr$path"
}

# status_of OUTPUT: the status line api() printed last; body_of OUTPUT: everything before it.
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

# expect_error OUTPUT STATUS CODE [FIELD]: status and the JSON error's code (and field).
expect_error() {
    local out=$1 st=$2 code=$3 field=${4-}
    local b
    b=$(body_of "$out")
    [[ $(status_of "$out") == "$st" ]] || { diag "want $st, got: $out"; return 1; }
    [[ $(jq -r .error.code <<<"$b") == "$code" ]] || { diag "want code $code: $b"; return 1; }
    if [[ -n $field ]]; then
        [[ $(jq -r .error.field <<<"$b") == "$field" ]] || { diag "want field $field: $b"; return 1; }
    fi
    return 0
}
