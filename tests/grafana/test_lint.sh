#!/usr/bin/env bash
# The structural checks of lint_dashboards.py on the real dashboards and provisioning, and that
# each check fails, naming file and panel, on a planted error.
# Usage: test_lint.sh SOURCE_DIR
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd python3 python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/install-deps.sh tests)"
lint=$SRC/tests/grafana/lint_dashboards.py
dash=$SRC/infrastructure/grafana/dashboards

out=$(/usr/bin/python3 "$lint" 2>&1)
rc=$?
ok "the dashboards and provisioning are clean" test "$rc" = 0
diag "$(tail -1 <<<"$out")"
((rc == 0)) || while IFS= read -r l; do diag "$l"; done <<<"$out"

tmp=$(mktemp -d /tmp/ut-grafana-lint-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
plant() { # plant NAME CODE: $tmp/NAME.json, system_health.json changed by CODE (plant.py)
    /usr/bin/python3 "$SRC/tests/grafana/plant.py" "$SRC/infrastructure/grafana/dashboards/system_health.json" "$tmp/$1.json" "$2"
}
fails_naming() { # fails_naming PATTERN FILE...: lint fails and prints a line matching PATTERN
    local pat=$1 out rc
    shift
    out=$(/usr/bin/python3 "$lint" "$@" 2>&1)
    rc=$?
    [[ $rc == 1 ]] && grep -qE "$pat" <<<"$out" && return 0
    diag "rc $rc, output:"
    while IFS= read -r l; do diag "  $l"; done <<<"$out"
    return 1
}
plant same 'd["title"] = "Another"'
ok "a uid used by two dashboards fails" fails_naming "^same\.json: uid 'ut-system-health' is also the uid of system_health\.json" "$dash/system_health.json" "$tmp/same.json"
plant id 'panel(1)["id"] = panel(0)["id"]'
ok "a panel id used twice fails" fails_naming '^id\.json: panel id=[0-9]+ "Critical alerts firing" id [0-9]+ is also the id of "Targets down"' "$tmp/id.json"
plant wide 'panel(0)["gridPos"]["w"] = 25'
ok "a panel wider than 24 columns fails" fails_naming '^wide\.json: panel id=[0-9]+ "Targets down" gridPos .* outside the 24-column grid' "$tmp/wide.json"
plant overlap 'panel(1)["gridPos"] = dict(panel(0)["gridPos"])'
ok "overlapping panels fail" fails_naming '^overlap\.json: panel id=[0-9]+ "Critical alerts firing" overlaps panel id=[0-9]+ "Targets down"' "$tmp/overlap.json"
plant noexpr 'panel(0)["targets"][0]["expr"] = ""'
ok "a target without expr fails" fails_naming '^noexpr\.json: panel id=[0-9]+ "Targets down" target A: no expr' "$tmp/noexpr.json"
plant refid 'panel(9)["targets"][1]["refId"] = "A"'
ok "a refId used twice in a panel fails" fails_naming '^refid\.json: panel id=[0-9]+ "[^"]+" refId A twice' "$tmp/refid.json"
plant var 'panel(0)["targets"][0]["expr"] = "up{job=~\"$nojob\"}"'
ok "an undefined template variable fails" fails_naming '^var\.json: panel id=[0-9]+ "Targets down" target A: \$nojob is not a template variable' "$tmp/var.json"
plant ds 'panel(0)["datasource"] = {"type": "prometheus", "uid": "prom-typo"}'
ok "a datasource uid that is not provisioned fails" fails_naming "^ds\.json: panel id=[0-9]+ \"Targets down\" panel: datasource uid 'prom-typo' is not provisioned" "$tmp/ds.json"
plant unit 'del panel(0)["fieldConfig"]["defaults"]["unit"]'
ok "a panel without a unit fails" fails_naming '^unit\.json: panel id=[0-9]+ "Targets down" no unit' "$tmp/unit.json"
plant steps 'panel(6)["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] = 95'
ok "threshold steps out of order fail" fails_naming '^steps\.json: panel id=[0-9]+ "Memory used" threshold steps \[95, 90\] are not ascending' "$tmp/steps.json"
mkdir -p "$tmp/prov/datasources" "$tmp/prov/dashboards"
sed 's/uid: alertmanager$/uid: prometheus/' "$SRC/infrastructure/grafana/provisioning/datasources/datasources.yml" >"$tmp/prov/datasources/ds.yml"
cp "$SRC/infrastructure/grafana/provisioning/dashboards/dashboards.yml" "$tmp/prov/dashboards/"
ok "two provisioned datasources with one uid fail" fails_naming "datasource uid 'prometheus' twice" --provisioning "$tmp/prov" "$dash/system_health.json"
t_done
