#!/usr/bin/env bash
# rolloutd against a real OpenFeature client: @openfeature/server-sdk + @openfeature/ofrep-provider
# from npm, installed into tests/integration/ofrep/node_modules (gitignored) on first use.
# Skips (ctest's skip code, lib.sh) when node/npm or the registry are not available.
set -uo pipefail
ROLLOUTD=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"

need_cmd node nodejs
need_cmd npm npm
if [[ ! -d $here/ofrep/node_modules/@openfeature/ofrep-provider ]]; then
    (cd "$here/ofrep" && timeout 120 npm install --no-audit --no-fund --loglevel=error) >&2 ||
        skip "npm install of the OpenFeature SDK failed (no registry?)"
fi

tmp=$(mktemp -d /tmp/ut-rolloutd-ofrep-XXXXXX)
cleanup() {
    rd_stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT

rd_start A "$tmp/a" || { t_done; exit 1; }
A=$RD_ADDR_A
T=$(cat "$tmp/a/admin.token")
for f in '{"key":"bool-full","environments":{"production":{"stage":"full"}}}' \
    '{"key":"bool-canary","environments":{"production":{"stage":"canary","canary":50,"partial":50}}}' \
    '{"key":"color","type":"string","variants":{"control":"blue","candidate":"green"},"environments":{"production":{"stage":"full"}}}' \
    '{"key":"killed","environments":{"production":{"stage":"full","kill":true}}}'; do
    out=$(api "$A" "$T" POST /api/v1/flags "$f")
    [[ $(status_of "$out") == 201 ]] || { diag "cannot create flag: $out"; exit 1; }
done
E=$(api "$A" "$T" POST /api/v1/tokens '{"name":"node-app","scope":"eval","env":"production"}' |
    sed '$d' | jq -r .token)

timeout 60 node "$here/ofrep/test.js" "http://$A" "$E"
