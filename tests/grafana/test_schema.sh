#!/usr/bin/env bash
# The dashboards against Grafana's own schema (check_dashboards.sh: @grafana/schema + tsc
# --strict), and that the check fails, naming file and panel, on planted errors: a threshold mode
# that does not exist, an unknown panel key, an option typo, a field-config typo, a wrong type, a
# wrong schemaVersion, a panel type without a schema.
# Usage: test_schema.sh SOURCE_DIR WORK_DIR
set -uo pipefail
SRC=$1 WORK=$2
. "$SRC/tests/integration/lib.sh"
need_cmd node nodejs
need_cmd npm npm
need_cmd python3 python3
check=$SRC/tests/grafana/check_dashboards.sh

out=$(bash "$check" --work "$WORK" 2>&1)
rc=$?
((rc == 77)) && skip "$(tail -1 <<<"$out")"
ok "every dashboard matches @grafana/schema" test "$rc" = 0
diag "$(tail -1 <<<"$out")"
((rc == 0)) || while IFS= read -r l; do diag "$l"; done <<<"$out"

tmp=$(mktemp -d /tmp/ut-grafana-schema-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
plant() { # plant NAME CODE: $tmp/NAME.json, system_health.json changed by CODE (plant.py)
    /usr/bin/python3 "$SRC/tests/grafana/plant.py" "$SRC/infrastructure/grafana/dashboards/system_health.json" "$tmp/$1.json" "$2"
}
fails_naming() { # fails_naming FILE PATTERN: the check fails and its output matches PATTERN
    local out rc
    out=$(bash "$check" --work "$WORK" "$tmp/$1.json" 2>&1)
    rc=$?
    [[ $rc == 1 ]] && grep -qE "$2" <<<"$out" && return 0
    diag "rc $rc, output:"
    while IFS= read -r l; do diag "  $l"; done <<<"$out"
    return 1
}
plant mode 'panel(0)["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"'
ok "a threshold mode that does not exist fails" fails_naming mode '^mode\.json panel id=[0-9]+ "Targets down": .*"absolut"'
plant key 'panel(1)["gridpos"] = panel(1)["gridPos"]'
ok "an unknown panel key (gridpos) fails" fails_naming key '^key\.json panel id=[0-9]+ "Critical alerts firing": .*gridpos'
plant opt 'panel(2)["options"]["colorMod"] = "value"'
ok "a stat option typo (colorMod) fails" fails_naming opt '^opt\.json panel id=[0-9]+ "Warnings firing": .*colorMod'
plant custom 'panel(6)["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 2'
ok "a time-series field-config typo (lineWidht) fails" fails_naming custom '^custom\.json panel id=[0-9]+ "[^"]+": .*lineWidht'
plant type 'panel(0)["gridPos"]["w"] = "12"'
ok "a string where the schema wants a number fails" fails_naming type '^type\.json panel id=[0-9]+ "Targets down": .*not assignable to type .number'
plant missing 'del panel(0)["type"]'
ok "a panel without its required type fails" fails_naming missing '^missing\.json panel id=[0-9]+ "Targets down"'
plant version 'd["schemaVersion"] = 39'
ok "a schemaVersion other than the package's fails" fails_naming version '^version\.json: schemaVersion 39, but @grafana/schema writes [0-9]+'
plant ptype 'panel(0)["type"] = "piechart-typo"'
ok "a panel type without a schema fails" fails_naming ptype 'piechart-typo" has no schema'
t_done
