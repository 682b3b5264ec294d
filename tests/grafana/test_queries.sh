#!/usr/bin/env bash
# query_dashboards.py against a throw-away Prometheus (Debian's 2.42 on a free port, scraping
# itself every second, a temporary data dir): a planted dashboard shows that it reports a query
# Prometheus rejects (ERROR), a query without data (EMPTY), an exempt one (--require-data-except),
# a variable left unsubstituted, and substitutes $job/$__rate_interval; then every query of the
# real dashboards must be accepted by Prometheus (no data is required here: the local stack's
# exporters are not part of this test; the lead's integration test runs it against the stack).
# Usage: test_queries.sh SOURCE_DIR
set -uo pipefail
SRC=$1
. "$SRC/tests/integration/lib.sh"
need_cmd prometheus prometheus
need_cmd curl curl
need_cmd python3 python3
tool=$SRC/tests/grafana/query_dashboards.py

tmp=$(mktemp -d /tmp/ut-grafana-queries-XXXXXX)
prom_pid=''
cleanup() {
    [[ -n $prom_pid ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$port'], labels: {service: prometheus}}]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$port" >"$tmp/prom.log" 2>&1 &
prom_pid=$!
P=http://127.0.0.1:$port
# Three scrapes at least, so that rate() over the last minute has two samples to work with.
scraped() { curl -sf "$P/api/v1/query?query=count_over_time(up%5B1m%5D)%20%3E%3D%203" | grep -q '"value"'; }
if ! retry 20 scraped; then
    ok "prometheus starts and scrapes itself" false
    sed 's/^/# /' "$tmp/prom.log"
    t_done
    exit 1
fi
ok "prometheus starts and scrapes itself" true

/usr/bin/python3 - "$tmp/planted.json" <<'PY'
import json, sys
ds = {"type": "prometheus", "uid": "${datasource}"}
def panel(i, title, expr, **t):
    return {"id": i, "type": "timeseries", "title": title, "datasource": ds,
            "targets": [dict({"refId": "A", "expr": expr, "datasource": ds}, **t)]}
json.dump({"uid": "t-q", "title": "planted", "schemaVersion": 42,
           "templating": {"list": [
               {"name": "datasource", "type": "datasource", "query": "prometheus"},
               {"name": "job", "type": "query", "multi": True, "includeAll": True, "allValue": ".+",
                "query": {"query": "label_values(up, job)"}}]},
           "panels": [panel(1, "Good", 'up{job=~"$job"}'),
                      panel(2, "Syntax", 'sum(up{job="prometheus"}'),
                      panel(3, "Empty", "ut_no_such_metric"),
                      panel(4, "Exempt", "ut_no_such_metric_either"),
                      panel(5, "Rate", "rate(prometheus_http_requests_total[$__rate_interval])"),
                      panel(6, "Unknown variable", 'up{job="$nope"}'),
                      panel(7, "Instant", "up", instant=True)]},
          open(sys.argv[1], "w"))
PY
out=$(/usr/bin/python3 "$tool" --prometheus "$P" --require-data-except '^t-q/Exempt/' --report "$tmp/report.json" "$tmp/planted.json" 2>&1)
rc=$?
while IFS= read -r l; do diag "$l"; done <<<"$out"
ok "a dashboard with bad queries fails (exit 1)" test "$rc" = 1
has() { grep -qE "$1" <<<"$out"; }
ok "... a query Prometheus rejects: ERROR naming dashboard, panel and refId, and the parse error" \
    has '^ERROR +planted\.json panel id=2 "Syntax" refId A: 0 series: bad_data: .*parse error'
ok "... a query without data: EMPTY naming dashboard, panel and refId" has '^EMPTY +planted\.json panel id=3 "Empty" refId A: 0 series: no data'
ok "... an exempt query without data is allowed" has '^EMPTY \(allowed\) +planted\.json panel id=4 "Exempt" refId A'
ok "... a multi-value variable becomes its allValue (\$job -> .+)" has '^ok +planted\.json panel id=1 "Good" refId A: 1 series'
ok "... \$__rate_interval becomes 1m (4 x 15 s)" \
    /usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if any(x["expr"] == "rate(prometheus_http_requests_total[1m])" and x["status"] == "ok" for x in r) else 1)' "$tmp/report.json"
ok "... an undefined variable is an ERROR, not a silent empty query" has '^ERROR +planted\.json panel id=6 "Unknown variable" refId A: .*unsubstituted near .\$nope'
ok "... an instant target goes to /api/v1/query and has data" has '^ok +planted\.json panel id=7 "Instant" refId A: 1 series'
ok "... a label_values() variable is queried too (count by (job) (up))" has '^ok +planted\.json variable \$job: 1 series'
ok "... the summary counts them" has '8 queries: 4 with data, 1 empty and allowed, 3 failed'
out=$(/usr/bin/python3 "$tool" --prometheus "$P" --require-data-except 'Empty|Exempt' "$tmp/planted.json" 2>&1)
ok "the exemption is what makes an empty query pass (Empty exempt too: still failing on Syntax)" \
    bash -c '[[ $(grep -c "^EMPTY (allowed)" <<<"$1") == 2 ]]' _ "$out"
/usr/bin/python3 "$tool" --prometheus "http://127.0.0.1:1" "$tmp/planted.json" >/dev/null 2>&1
ok "Prometheus not answering: exit 2" test "$?" = 2

out=$(/usr/bin/python3 "$tool" --prometheus "$P" --require-data-except '.*' 2>&1)
rc=$?
diag "$(tail -1 <<<"$out")"
ok "every query of every dashboard is accepted by Prometheus 2.42 (variables substituted)" test "$rc" = 0
((rc == 0)) || grep -A1 '^ERROR' <<<"$out" | sed 's/^/# /'
t_done
