#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the local stack and the tests need, only those
# that are missing.  Idempotent; safe to run on every `make up`.
set -euo pipefail

# Build: compiler toolchain and the libraries we link.
build_pkgs=(build-essential cmake pkg-config libyaml-dev libjansson-dev libhiredis-dev libpq-dev
            libcurl4-openssl-dev)
# The local stack (infrastructure/local/stack.yml) runs these real engines.
stack_pkgs=(etcd-server etcd-client patroni postgresql-15 postgresql-client-15 python3-psycopg2
            haproxy pgbouncer redis-server redis-sentinel redis-tools)
# Tests: sanitizer runtimes, curl for HTTP checks.
test_pkgs=(clang libclang-rt-14-dev curl procps iproute2 jq python3-yaml)
build_pkgs+=(libmicrohttpd-dev libsqlite3-dev)  # rolloutd (src/http, store_sqlite.c)
test_pkgs+=(wrk sqlite3)  # rolloutd: benchmark, on-disk checks (node+npm for OFREP are separate)
# gpu_agent failover test: real Celery workers with a Redis broker (/usr/bin/python3 -m celery).
test_pkgs+=(python3-celery python3-redis)

want=("${build_pkgs[@]}" "${stack_pkgs[@]}")
[[ "${1:-}" == "--with-tests" ]] && want+=("${test_pkgs[@]}")
# The OpenFeature SDK test runs on node; Debian's nodejs + npm unless a node (e.g. an image's
# nodesource build, which bundles npm) is already there.
if [[ "${1:-}" == "--with-tests" ]] && ! command -v npm >/dev/null; then
    want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's packages try to start their services through invoke-rc.d; we supervise our own
# instances on other ports, so keep the packaged daemons from starting during install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod 755 $policy
    created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $SUDO rm -f $policy' EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
