#!/usr/bin/env bash
# The monitoring configuration's tests (tests/monitoring/CMakeLists.txt registers each case as
# its own ctest test, label unit: offline, seconds).  TAP output; exit 0 passed, 1 failed,
# 77 skipped (a tool is missing: the reason is printed, never a pass).
#
#   run.sh SRC config          promtool check config: prometheus.yml with targets-local/ as its
#                              targets, and the target files' shape
#   run.sh SRC rules           promtool check rules on alerts.yml and recording_rules.yml
#   run.sh SRC unit FILE       promtool test rules FILE (one *.test.yml)
#   run.sh SRC coverage        every alert and recording rule has unit tests (and the check
#                              fails when one has none)
#   run.sh SRC thresholds      check-thresholds.py agrees, and finds errors planted in a copy
#   run.sh SRC market-current  recording_rules.yml's market_hours group is what
#                              market_hours.yml gives (and a changed calendar is caught)
#   run.sh SRC market-dst      the generated market-hours rules in a real Prometheus, across
#                              DST changes and closed dates, against Python's zoneinfo
#   run.sh SRC prometheus      a real Prometheus loads the configuration: every contract job's
#                              targets relabelled as intended, every rule evaluates
#   run.sh SRC metrics-golden  promtool check metrics on our exporters' golden expositions
set -uo pipefail
SRC=$1 CASE=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh"
PROM=$SRC/infrastructure/prometheus
PY=/usr/bin/python3

need_py_yaml() {
    [[ -x $PY ]] || skip "$PY is not installed (Debian package python3: scripts/install-deps.sh tests)"
    $PY -c 'import yaml' 2>/dev/null || skip "Python module yaml is missing (Debian package python3-yaml: scripts/install-deps.sh tests)"
}

# diags TEXT: every line of TEXT as a TAP comment.
diags() {
    local l
    while IFS= read -r l; do echo "# $l"; done <<<"$1"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# copy_tree DEST: the files the checks read, as a scratch copy to plant errors in.
copy_tree() {
    mkdir -p "$1/infrastructure" "$1/docs" "$1/src/gpu_agent" "$1/infrastructure/scripts"
    cp -r "$PROM" "$1/infrastructure/"
    cp "$SRC/infrastructure/scripts/check-thresholds.py" "$SRC/infrastructure/scripts/gen-market-hours.py" \
        "$1/infrastructure/scripts/"
    cp "$SRC/docs/alerts.md" "$1/docs/"
    cp "$SRC/src/gpu_agent/config.c" "$1/src/gpu_agent/"
    if [[ -d $SRC/infrastructure/grafana/dashboards ]]; then
        mkdir -p "$1/infrastructure/grafana"
        cp -r "$SRC/infrastructure/grafana/dashboards" "$1/infrastructure/grafana/"
    fi
}

# expect_fail DESC PATTERN COMMAND...: COMMAND exits 1 and its output matches PATTERN.
expect_fail() {
    local desc=$1 pat=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    ok "$desc" bash -c '[[ $1 == 1 ]] && grep -qE -- "$2" <<<"$3"' _ "$rc" "$pat" "$out"
    [[ $rc == 1 ]] && grep -qE -- "$pat" <<<"$out" || {
        diag "rc=$rc, expected 1 and /$pat/:"
        diags "$out"
    }
}

case $CASE in
config)
    need_cmd promtool prometheus
    need_py_yaml
    mkdir -p "$TMP/p"
    cp "$PROM/prometheus.yml" "$PROM/alerts.yml" "$PROM/recording_rules.yml" "$TMP/p/"
    cp -r "$PROM/targets-local" "$TMP/p/targets"
    out=$(promtool check config "$TMP/p/prometheus.yml" 2>&1)
    rc=$?
    ok "promtool check config: prometheus.yml with the local target files" test "$rc" = 0
    ((rc == 0)) || diags "$out"
    out=$($PY "$HERE/check_targets.py" "$PROM/prometheus.yml" "$PROM/targets-local" 2>&1)
    rc=$?
    ok "every job has a target file of the contract's shape (service, cluster, exporter)" test "$rc" = 0
    diags "$out"
    # the shape check can fail: a multi-target job's group without its exporter label
    cp -r "$PROM/targets-local" "$TMP/bad"
    sed -i 's/, exporter: 127.0.0.1:9521}/}/' "$TMP/bad/redis.yml"
    expect_fail "... and names a redis target group without its exporter" \
        "redis.yml:[0-9]+: .*exporter" $PY "$HERE/check_targets.py" "$PROM/prometheus.yml" "$TMP/bad"
    ;;
rules)
    need_cmd promtool prometheus
    out=$(promtool check rules "$PROM/alerts.yml" "$PROM/recording_rules.yml" 2>&1)
    rc=$?
    ok "promtool check rules: alerts.yml and recording_rules.yml" test "$rc" = 0
    diags "$out"
    ;;
unit)
    need_cmd promtool prometheus
    FILE=$1
    out=$(cd "$(dirname "$FILE")" && promtool test rules "$(basename "$FILE")" 2>&1)
    rc=$?
    ok "promtool test rules $(basename "$FILE")" test "$rc" = 0
    ((rc == 0)) || diags "$out"
    ;;
coverage)
    need_py_yaml
    out=$($PY "$HERE/check_coverage.py" "$PROM" "$HERE" 2>&1)
    rc=$?
    ok "every alerting rule fires in a test and stays silent in one; every recording rule is tested" test "$rc" = 0
    diags "$out"
    mkdir -p "$TMP/t"
    cp "$HERE"/*.test.yml "$TMP/t/"
    rm "$TMP/t/gpu.test.yml"
    expect_fail "... and a test file fewer (gpu) names the untested alert with its line" \
        "alerts.yml:[0-9]+: GpuFailNowXid \(severity critical\): no test expects it to fire" \
        $PY "$HERE/check_coverage.py" "$PROM" "$TMP/t"
    ;;
thresholds)
    need_py_yaml
    out=$($PY "$SRC/infrastructure/scripts/check-thresholds.py" --root "$SRC" 2>&1)
    rc=$?
    ok "alerts.yml, docs/alerts.md and the dashboards agree with thresholds.yml" test "$rc" = 0
    diags "$out"
    # Planted errors, one per file the checker reads; each must be named with its file and line.
    copy_tree "$TMP/c"
    C=$TMP/c
    sed -i '0,/          >= 70$/s//          >= 75/' "$C/infrastructure/prometheus/alerts.yml"
    line=$(grep -n '^- \*\*critical\*\*: GPU temperature >= 90 °C for 2m$' "$C/docs/alerts.md" | cut -d: -f1)
    sed -i 's/^- \*\*critical\*\*: GPU temperature >= 90 °C for 2m$/- **critical**: GPU temperature >= 95 °C for 2m/' "$C/docs/alerts.md"
    sed -i 's/ 64,  74,  79,/ 64,  74,  78,/' "$C/src/gpu_agent/config.c"
    mkdir -p "$C/infrastructure/grafana/dashboards/planted"
    cat >"$C/infrastructure/grafana/dashboards/planted/disk.json" <<'EOF'
{
  "title": "planted",
  "panels": [
    {
      "title": "Disk used",
      "type": "timeseries",
      "targets": [{"refId": "A", "expr": "100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)"}],
      "fieldConfig": {"defaults": {"unit": "percent", "thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": null},
        {"color": "orange", "value": 70},
        {"color": "red", "value": 80}
      ]}}}
    }
  ]
}
EOF
    out=$($PY "$C/infrastructure/scripts/check-thresholds.py" --root "$C" 2>&1)
    rc=$?
    ok "planted errors: the checker fails" test "$rc" = 1
    ok "... names alerts.yml's changed comparison" grep -qE \
        "^infrastructure/prometheus/alerts.yml:[0-9]+: HostDiskUsage: expression compares '>= 75' but thresholds.yml disk_used_warning.value is 70" <<<"$out"
    ok "... names docs/alerts.md:$line, the changed threshold line" grep -qF \
        "docs/alerts.md:$line: threshold line '- **critical**: GPU temperature >= 95 °C for 2m' disagrees" <<<"$out"
    ok "... names the dashboard's step 80 with its line" grep -qE \
        "^infrastructure/grafana/dashboards/planted/disk.json:11: panel 'Disk used': threshold step 80 is no threshold" <<<"$out"
    ok "... names gpu_agent's default fail-now list" grep -qE \
        "^src/gpu_agent/config.c:[0-9]+: gpu_agent's default fail-now XIDs" <<<"$out"
    ok "... and nothing else (4 disagreements)" grep -q "^check-thresholds: 4 disagreement" <<<"$out"
    diags "$out"
    # A threshold changed at the source is found in every file that repeats it.
    copy_tree "$TMP/d"
    sed -i '0,/    value: 85$/s//    value: 86/; 0,/    display: "85 %"$/s//    display: "86 %"/' \
        "$TMP/d/infrastructure/prometheus/thresholds.yml"
    out=$($PY "$TMP/d/infrastructure/scripts/check-thresholds.py" --root "$TMP/d" 2>&1)
    ok "thresholds.yml changed alone (disk critical 86 %): the rule, the docs line and the annotations are named" \
        bash -c 'grep -q "alerts.yml:[0-9]*: HostDiskUsage: expression compares .>= 85. but thresholds.yml disk_used_critical.value is 86" <<<"$1" &&
                 grep -q "docs/alerts.md:[0-9]*: threshold line .- \*\*critical\*\*: disk used >= 85 % for 5m. disagrees" <<<"$1" &&
                 grep -q "HostDiskUsage: description says .85 %." <<<"$1"' _ "$out"
    # A bad thresholds.yml is reported with its line and field.
    copy_tree "$TMP/e"
    sed -i '0,/    severity: warning$/s//    severity: urgent/' "$TMP/e/infrastructure/prometheus/thresholds.yml"
    expect_fail "an unknown severity in thresholds.yml is named with its line and field" \
        "^infrastructure/prometheus/thresholds.yml:[0-9]+: disk_used_warning.severity: expected one of critical, warning, info, none, got 'urgent'" \
        $PY "$TMP/e/infrastructure/scripts/check-thresholds.py" --root "$TMP/e"
    ;;
market-current)
    need_py_yaml
    out=$($PY "$SRC/infrastructure/scripts/gen-market-hours.py" --root "$SRC" --check 2>&1)
    rc=$?
    ok "recording_rules.yml's market_hours group is what market_hours.yml gives" test "$rc" = 0
    ((rc == 0)) || diags "$out"
    copy_tree "$TMP/m"
    sed -i 's/    close: "16:00"/    close: "16:30"/' "$TMP/m/infrastructure/prometheus/market_hours.yml"
    expect_fail "a calendar changed without regenerating: --check names recording_rules.yml and the line" \
        "recording_rules.yml:[0-9]+: group market_hours is not what .* gives \(run infrastructure/scripts/gen-market-hours.py --write\)" \
        $PY "$TMP/m/infrastructure/scripts/gen-market-hours.py" --root "$TMP/m" --check
    out=$($PY "$TMP/m/infrastructure/scripts/gen-market-hours.py" --root "$TMP/m" --write 2>&1 &&
        $PY "$TMP/m/infrastructure/scripts/gen-market-hours.py" --root "$TMP/m" --check 2>&1)
    rc=$?
    ok "... --write brings it up to date (990 = 16:30 in the rule)" bash -c \
        '[[ $1 == 0 ]] && grep -q "< bool 990)" "$2"' _ "$rc" "$TMP/m/infrastructure/prometheus/recording_rules.yml"
    sed -i 's/^time_zone: America\/New_York/time_zone: America\/Nowhere/' "$TMP/m/infrastructure/prometheus/market_hours.yml"
    out=$($PY "$TMP/m/infrastructure/scripts/gen-market-hours.py" --root "$TMP/m" --check 2>&1)
    rc=$?
    ok "an unknown time zone: exit 2 naming market_hours.yml, line and field" bash -c \
        '[[ $1 == 2 ]] && grep -qE "market_hours.yml:[0-9]+: time_zone: .America/Nowhere. is not a time zone" <<<"$2"' _ "$rc" "$out"
    ;;
market-dst)
    need_cmd prometheus prometheus
    need_cmd promtool prometheus
    need_py_yaml
    $PY "$HERE/test_market_hours.py" "$SRC"
    exit $?
    ;;
prometheus)
    need_cmd prometheus prometheus
    need_py_yaml
    $PY "$HERE/test_prometheus_load.py" "$SRC"
    exit $?
    ;;
metrics-golden)
    # Our exporters' exposition, as their golden files pin it, passes promtool's lint (names,
    # suffixes, HELP/TYPE); the live endpoints are checked in integration.monitoring.
    need_cmd promtool prometheus
    for f in "$SRC"/tests/golden/*metrics*.txt; do
        out=$(promtool check metrics <"$f" 2>&1)
        rc=$?
        [[ $rc -eq 0 ]] || diags "$out"
        ok "promtool check metrics: ${f#"$SRC"/}" test "$rc" -eq 0
    done
    printf '# HELP bad_count a gauge named like a summary\n# TYPE bad_count gauge\nbad_count 1\n' >"$TMP/bad.txt"
    ok "... and it catches a planted lint error (a gauge named *_count)" \
        bash -c '! promtool check metrics <"$1" >/dev/null 2>&1' _ "$TMP/bad.txt"
    ;;
*)
    echo "run.sh: unknown case '$CASE'" >&2
    exit 2
    ;;
esac
t_done
