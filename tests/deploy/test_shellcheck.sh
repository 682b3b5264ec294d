#!/usr/bin/env bash
# Runs shellcheck on the deploy scripts and every shell file of infrastructure/scripts/, on the
# scripts of scripts/ this part owns (install-actionlint.sh, coverage.sh) and on these tests
# and their fakes, at shellcheck's default severity (style included), following `source`s.
# Then a copy of deploy_production.sh with a planted error must fail with that error's code.
# Usage: test_shellcheck.sh SOURCE_DIR
# The bash -c checks below expand $0, $1... in the inner shell, on purpose.
# shellcheck disable=SC2016
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd shellcheck shellcheck

cd "$SRC" || exit 1
files=(infrastructure/scripts/*.sh scripts/install-actionlint.sh scripts/coverage.sh
       tests/deploy/*.sh tests/deploy/fake/*)
diag "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#files[@]} files"
for f in "${files[@]}"; do
    ok "shellcheck $f" bash -c 'out=$(shellcheck -x "$0" 2>&1) || { printf "%s\n" "$out" | sed "s/^/# /"; exit 1; }' "$f"
done

# Planted errors: an unquoted expansion in a command (SC2086) and a `cd` whose failure is
# ignored (SC2164), each in a copy beside the original (so its `source` still resolves).
tmp=$(mktemp -d /tmp/ut-shellcheck-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/infrastructure/scripts"
cp infrastructure/scripts/deploy_lib.sh "$tmp/infrastructure/scripts/"
sed 's|^deploy_main "\$@"$|rm -rf $1/releases/old\ndeploy_main "$@"|' \
    infrastructure/scripts/deploy_production.sh >"$tmp/infrastructure/scripts/sc2086.sh"
sed 's|^deploy_main "\$@"$|cd "$DEPLOY_DIR"\ndeploy_main "$@"|' \
    infrastructure/scripts/deploy_production.sh >"$tmp/infrastructure/scripts/sc2164.sh"
cd "$tmp" || exit 1
for code in 2086 2164; do
    ok "a planted SC$code in a copy of deploy_production.sh fails shellcheck with SC$code" \
        bash -c '! shellcheck -x "$0" >"$0.out" 2>&1 && grep -q "SC$1" "$0.out"' \
        "infrastructure/scripts/sc$code.sh" "$code"
done
t_done
