#!/usr/bin/python3
"""query_dashboards.py - runs every query of every Grafana dashboard against a live Prometheus,
the way Grafana would, and fails naming the dashboard, panel and refId of each query that
Prometheus rejects or that returns no data.

  query_dashboards.py --prometheus URL [--require-data-except REGEX]... [--minutes N]
                      [--scrape-interval DURATION] [--report FILE] [DASHBOARD.json...]

Dashboards: infrastructure/grafana/dashboards/*.json unless named.
Each label_values(EXPR, LABEL) variable is run as the instant query count by (LABEL) (EXPR), and
each target that is not hidden is sent to Prometheus's HTTP API: a range target to
/api/v1/query_range over the last N minutes (default 10) with a step of the scrape interval, an
instant target (`"instant": true`) to /api/v1/query at the end of that window, as Grafana does.
Template variables are substituted first:
  $__rate_interval  max(4 x scrape interval, step + scrape interval) = 1m for 15 s
  $__interval       the step (the scrape interval, 15s)
  $__range          the window (10m); $__range_s / $__range_ms in seconds / milliseconds
  a query or custom variable: its allValue when it has All (multi or includeAll), else ".*";
                    without All its current value, else its first option, else ".*"
  constant, textbox: the value; interval: its current or first value
  datasource: not used in expressions (the queries go to --prometheus)
Empty results: every query must return at least one series, except those whose key
"<dashboard uid>/<panel title>/<refId>" (a variable's: "<uid>/$<name>/variable") matches a --require-data-except REGEX (Python re.search;
the option may be repeated).  Say why where you use it, e.g. the GPU dashboard locally, where no
gpu_agent runs:  --require-data-except '^ut-training/'
Output: one line per query (ok / EMPTY / ERROR, the number of series); --report FILE also writes
them as JSON (dashboard, uid, panel_id, panel, refId, expr as sent, status, series, error).
Exit: 0 every query ran and returned data (or is exempt); 1 some did not; 2 bad usage, or
Prometheus did not answer at all.
"""
import argparse
import glob
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15s, 1m)")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def duration(sec):
    sec = int(round(sec))
    for unit, n in (("h", 3600), ("m", 60)):
        if sec % n == 0 and sec >= n:
            return f"{sec // n}{unit}"
    return f"{sec}s"


def variable_values(dashboard):
    """{name: substitution} for the dashboard's template variables."""
    out = {}
    for v in (dashboard.get("templating") or {}).get("list") or []:
        name, kind = v.get("name"), v.get("type")
        if not name or kind == "datasource":
            continue
        current = (v.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else None
        options = [o.get("value") for o in v.get("options") or [] if o.get("value") not in (None, "$__all")]
        if kind in ("constant", "textbox"):
            out[name] = str(v.get("query") or current or "")
        elif kind in ("interval", "custom") and not (v.get("multi") or v.get("includeAll")):
            first = (str(v.get("query") or "").split(",") or [""])[0].strip()
            out[name] = current if current not in (None, "", "$__all") else (options[0] if options else first)
        elif v.get("multi") or v.get("includeAll"):
            out[name] = v.get("allValue") or ".*"
        elif current not in (None, "", "$__all"):
            out[name] = current
        else:
            out[name] = options[0] if options else ".*"
    return out


def substitute(expr, values):
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        return m.group(0)
    # ${name}, ${name:format}, [[name]] and $name (longest names first via the regex).
    return re.sub(r"\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)", one, expr)


def api(base, path, params, timeout):
    """POST (as Grafana's httpMethod POST) when there are parameters, else GET."""
    url = base.rstrip("/") + path
    if params:
        req = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        # Prometheus answers 400/422/503 with a JSON body naming the error.
        try:
            return json.loads(e.read())
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}


def panels_of(d):
    for p in d.get("panels") or []:
        if p.get("type") == "row":
            yield from p.get("panels") or []
        else:
            yield p


def queries_of(d):
    """The dashboard's queries: each label_values() variable (as `count by (LABEL) (EXPR)`, an
    instant query: Grafana asks for the label's values over the dashboard's time range), then
    each panel target that is not hidden."""
    for v in (d.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q, re.S)
        if m:
            yield {"var": v.get("name"), "panel_id": None, "panel": f"${v.get('name')}", "refId": "variable",
                   "expr": f"count by ({m.group(2)}) ({m.group(1)})", "instant": True}
    for p in panels_of(d):
        for t in p.get("targets") or []:
            if not t.get("hide") and "expr" in t:
                yield {"var": None, "panel_id": p.get("id"), "panel": p.get("title", ""),
                       "refId": t.get("refId", ""), "expr": t["expr"], "instant": bool(t.get("instant"))}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9490")
    ap.add_argument("--require-data-except", action="append", default=[], metavar="REGEX",
                    help="queries whose '<uid>/<panel title>/<refId>' matches may return no data")
    ap.add_argument("--minutes", type=int, default=10, help="the window queried (default 10)")
    ap.add_argument("--scrape-interval", type=seconds, default=15, help="default 15s (also the step)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per query (default 30)")
    ap.add_argument("--report", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("dashboards", nargs="*")
    args = ap.parse_args(argv)
    try:
        exempt = [re.compile(r) for r in args.require_data_except]
    except re.error as e:
        print(f"query_dashboards: bad --require-data-except: {e}", file=sys.stderr)
        return 2
    files = args.dashboards or sorted(glob.glob(os.path.join(ROOT, "infrastructure", "grafana", "dashboards", "*.json")))
    if not files:
        print("query_dashboards: no dashboards", file=sys.stderr)
        return 2

    try:
        build = api(args.prometheus, "/api/v1/status/buildinfo", {}, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"query_dashboards: Prometheus at {args.prometheus} does not answer: {e}", file=sys.stderr)
        return 2
    end = time.time()
    start = end - 60 * args.minutes
    step = args.scrape_interval
    builtins = {"__rate_interval": duration(max(4 * args.scrape_interval, step + args.scrape_interval)),
                "__interval": duration(step), "__interval_ms": str(int(step * 1000)),
                "__range": duration(60 * args.minutes), "__range_s": str(60 * args.minutes),
                "__range_ms": str(60 * args.minutes * 1000)}
    print(f"query_dashboards: Prometheus {(build.get('data') or {}).get('version', '?')} at {args.prometheus}, "
          f"last {args.minutes} min, step {duration(step)}, $__rate_interval {builtins['__rate_interval']}")

    results = []
    failures = 0
    for f in files:
        name = os.path.basename(f)
        try:
            with open(f, encoding="utf-8") as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            print(f"ERROR {name}: not readable JSON: {e}")
            failures += 1
            continue
        values = dict(builtins)
        values.update(variable_values(d))
        uid = d.get("uid", "")
        for q in queries_of(d):
            key = f"{uid}/{q['panel']}/{q['refId']}"
            expr = substitute(q["expr"], values)
            rec = {"dashboard": name, "uid": uid, "panel_id": q["panel_id"], "panel": q["panel"],
                   "refId": q["refId"], "expr": expr, "series": 0, "error": None}
            try:
                if q["instant"]:
                    r = api(args.prometheus, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"}, args.timeout)
                else:
                    r = api(args.prometheus, "/api/v1/query_range",
                            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)},
                            args.timeout)
            except (urllib.error.URLError, OSError, ValueError) as e:
                r = {"status": "error", "error": str(e)}
            left = re.search(r"\$[A-Za-z_{\[]", expr)
            if r.get("status") != "success":
                rec["status"] = "ERROR"
                rec["error"] = f"{r.get('errorType', '')}: {r.get('error', '')}".strip(": ")
            elif left:
                rec["status"] = "ERROR"
                rec["error"] = f"variable left unsubstituted near '{expr[left.start():left.start() + 20]}'"
            else:
                data = r.get("data") or {}
                res = data.get("result")
                if data.get("resultType") in ("scalar", "string"):
                    rec["series"] = 1
                else:
                    rec["series"] = len(res) if isinstance(res, list) else 0
                if rec["series"]:
                    rec["status"] = "ok"
                elif any(x.search(key) for x in exempt):
                    rec["status"] = "EMPTY (allowed)"
                else:
                    rec["status"] = "EMPTY"
                    rec["error"] = "no data"
            if rec["status"] in ("ERROR", "EMPTY"):
                failures += 1
            what = (f"variable ${q['var']}" if q["var"] else
                    f"panel id={rec['panel_id']} \"{rec['panel']}\" refId {rec['refId']}")
            line = f"{rec['status']:<15} {name} {what}: {rec['series']} series"
            if rec["error"]:
                line += f": {rec['error']}\n{'':16}query: {expr}"
            print(line)
            results.append(rec)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    n_ok = sum(1 for r in results if r["status"] == "ok")
    print(f"query_dashboards: {len(results)} queries: {n_ok} with data, "
          f"{sum(1 for r in results if r['status'] == 'EMPTY (allowed)')} empty and allowed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
