#!/usr/bin/env bash
# install-actionlint.sh - builds actionlint (the GitHub Actions workflow linter) from the Go
# module proxy into the tools dir, once: `go install github.com/rhysd/actionlint/cmd/actionlint`
# at a pinned version (~20 s), with its module cache kept in the tools dir too, so a second
# machine with that cache (CI restores it) builds offline.  Prints the binary's path.
#
#   scripts/install-actionlint.sh            install if missing, print the path
#   scripts/install-actionlint.sh --check    print the path if installed, else exit 1
#
# Needs Go >= 1.25 (actionlint 1.7.12's go.mod): `go` on PATH, else /usr/local/go/bin/go; an
# older Go (>= 1.21) fetches the right toolchain itself (GOTOOLCHAIN=auto).  Debian 12's
# golang-go is 1.19, too old: CI uses actions/setup-go.  Exit 1 with the reason when it cannot
# be built (no Go, no network and no cache); the tests turn that into a skip, never a pass.
set -euo pipefail
VERSION=1.7.12
MODULE=github.com/rhysd/actionlint/cmd/actionlint
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$("$root/scripts/install-deps.sh" --tools-dir)
dest=$tools/actionlint-$VERSION
bin=$dest/actionlint

if [[ -x $bin ]] && "$bin" -version 2>/dev/null | grep -qx "v$VERSION"; then
    echo "$bin"
    exit 0
fi
if [[ ${1:-} == --check ]]; then
    echo "install-actionlint: actionlint $VERSION is not installed in $dest" >&2
    exit 1
fi

go=$(type -P go || true) # optional: without it, the reason below
[[ -z $go && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
if [[ -z $go ]]; then
    echo "install-actionlint: no Go toolchain (go on PATH or /usr/local/go): cannot build actionlint $VERSION (it needs Go >= 1.25; Debian 12's golang-go 1.19 is too old)" >&2
    exit 1
fi
echo "install-actionlint: building actionlint $VERSION with $("$go" version) into $dest" >&2
mkdir -p "$dest" "$tools/cache/go-mod" "$tools/cache/go-build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Offline first (the module cache may hold everything), then the proxy.
for proxy in off "${GOPROXY:-https://proxy.golang.org,direct}"; do
    if GOBIN=$dest GOMODCACHE=$tools/cache/go-mod GOCACHE=$tools/cache/go-build GOFLAGS=-mod=mod \
        GOPROXY=$proxy GOTOOLCHAIN=${GOTOOLCHAIN:-auto} \
        "$go" install "$MODULE@v$VERSION" >"$log" 2>&1; then
        chmod -R a+rX "$dest"
        echo "$bin"
        exit 0
    fi
done
sed 's/^/install-actionlint:   /' "$log" >&2
echo "install-actionlint: go install $MODULE@v$VERSION failed: $(grep -m1 . "$log" | cut -c1-300)" >&2
exit 1
