#!/usr/bin/env bash
# OpenTofu for the Terraform checks (tests/terraform): built once from the Go module proxy into
# the tools dir, then reused (CI caches that directory; a second run needs no network).
#
#   scripts/install-tofu.sh           build $TOOLS/tofu-1.12.6/tofu unless it is already there
#   scripts/install-tofu.sh --check   exit 1 (and say why) when it is not there; build nothing
#   scripts/install-tofu.sh --path    print where the binary is (or will be)
#
# Why from source: `go install github.com/opentofu/opentofu/cmd/tofu@v1.12.6` refuses (the module
# has replace directives), and no release binary is reachable here.  `go mod download` puts the
# module in the module cache, and `go build ./cmd/tofu` inside that directory works (its go.sum
# pins every dependency).  About 6 minutes on 2 cores, ~100 MB in the Go build cache.
# Needs: Go >= the module's go directive (1.26.6) — Debian's golang is older; the go on PATH is used.
set -euo pipefail

TOFU_VERSION=1.12.6
here=$(cd "$(dirname "$0")" && pwd)
tools=$("$here/install-deps.sh" --tools-dir)
dest=$tools/tofu-$TOFU_VERSION
bin=$dest/tofu

# (A TF_CLI_CONFIG_FILE naming a missing file only adds a warning: leave it out.)
tofu_version() { (unset TF_CLI_CONFIG_FILE; "$bin" version 2>&1 | head -1); }
have() { [[ -x $bin ]] && [[ $(tofu_version) == "OpenTofu v$TOFU_VERSION" ]]; }

case ${1:-} in
--path) echo "$bin"; exit 0 ;;
--check)
    have && exit 0
    echo "install-tofu: OpenTofu $TOFU_VERSION is not installed at $bin (run scripts/install-tofu.sh, ~6 min)" >&2
    exit 1 ;;
"") ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

have && exit 0
# Go comes with this machine kind (/usr/local/go, docs: the polyglot image), not from Debian
# (bookworm's golang is 1.19; the module needs >= 1.26.6).
go=$(type -P go || echo /usr/local/go/bin/go)
[[ -x $go ]] || { echo "install-tofu: no go on PATH nor /usr/local/go (Go >= 1.26.6 builds OpenTofu $TOFU_VERSION)" >&2; exit 1; }

echo "install-tofu: building OpenTofu $TOFU_VERSION into $bin (go build from the module cache, ~6 min)" >&2
# The module's source in the module cache (downloaded through GOPROXY unless already there).
src=$(cd / && GOFLAGS=-mod=mod "$go" mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $src && -f $src/go.mod ]] || { echo "install-tofu: go mod download github.com/opentofu/opentofu@v$TOFU_VERSION failed" >&2; exit 1; }

mkdir -p "$dest"
chmod 755 "$tools" "$dest"
rm -f "$bin.new"
# The module cache is read-only: build with the module's own go.mod/go.sum, write nothing there.
# version.dev=no: a release build (`tofu version` says v1.12.6, not v1.12.6-dev), as upstream's.
if ! (cd "$src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
      "$go" build -trimpath -ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$bin.new" ./cmd/tofu); then
    rm -f "$bin.new"
    echo "install-tofu: go build ./cmd/tofu in $src failed" >&2
    exit 1
fi
mv "$bin.new" "$bin"
chmod 755 "$bin"
have || { echo "install-tofu: $bin does not report OpenTofu v$TOFU_VERSION: $(tofu_version)" >&2; exit 1; }
echo "install-tofu: $(tofu_version) at $bin" >&2
