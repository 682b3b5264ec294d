#!/usr/bin/python3
"""lint_dashboards.py - structural checks of the Grafana dashboards and their provisioning that
the schema check (check_dashboards.sh) cannot make:

  provisioning  datasources.yml parses, every datasource has a unique uid; dashboards.yml has a
                file provider
  dashboards    uid: 1-40 of [A-Za-z0-9_-], unique across dashboards; titles unique
  panels        ids unique in a dashboard (rows' panels included); gridPos present with
                1 <= w <= 24, x + w <= 24, h >= 1, no two panels overlapping; a title and a
                description; a unit on every panel that shows numbers
  queries       every panel (but rows and text) has targets; every target a refId unique in its
                panel and a non-empty expr; every $variable used is defined (or Grafana's own
                $__rate_interval, $__interval, $__range ...)
  datasources   every datasource reference is the `datasource` template variable (type
                datasource, querying a provisioned type) or a provisioned uid
  thresholds    the first step is the base (value null), the others strictly ascending

Usage: lint_dashboards.py [--provisioning DIR] [DASHBOARD.json...]
  defaults: infrastructure/grafana/provisioning and infrastructure/grafana/dashboards/*.json
Exit: 0 clean, 1 problems (one line each: FILE: [panel id=N "TITLE":] PROBLEM).
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GRAFANA_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                "__range_ms", "__dashboard", "__from", "__to", "__org", "__user", "__name"}
NO_QUERY = {"row", "text"}
NUMERIC = {"timeseries", "stat", "gauge", "bargauge", "table", "statetimeline", "statushistory"}
VAR_RE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))")


def load_provisioning(pdir, problems):
    """{uid: type} of the provisioned datasources."""
    ds = {}
    for f in sorted(glob.glob(os.path.join(pdir, "datasources", "*.y*ml"))):
        try:
            doc = yaml.safe_load(open(f, encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            problems.append(f"{os.path.relpath(f, ROOT)}: cannot read: {e}")
            continue
        for d in doc.get("datasources") or []:
            uid = d.get("uid")
            if not uid:
                problems.append(f"{os.path.relpath(f, ROOT)}: datasource '{d.get('name')}' has no uid")
            elif uid in ds:
                problems.append(f"{os.path.relpath(f, ROOT)}: datasource uid '{uid}' twice")
            else:
                ds[uid] = d.get("type")
    if not ds:
        problems.append(f"{pdir}: no provisioned datasource")
    providers = []
    for f in sorted(glob.glob(os.path.join(pdir, "dashboards", "*.y*ml"))):
        doc = yaml.safe_load(open(f, encoding="utf-8")) or {}
        providers += [p for p in doc.get("providers") or []
                      if p.get("type") == "file" and (p.get("options") or {}).get("path")]
    if not providers:
        problems.append(f"{pdir}: no file dashboard provider (provisioning/dashboards/*.yml)")
    return ds


def all_panels(d):
    for p in d.get("panels") or []:
        yield p
        if p.get("type") == "row":
            yield from p.get("panels") or []


def lint(path, d, ds, seen_uids, seen_titles, problems):
    name = os.path.basename(path)

    def bad(msg, p=None):
        where = f' panel id={p.get("id")} "{p.get("title", "")}"' if p is not None else ""
        problems.append(f"{name}:{where} {msg}")

    uid = d.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        bad(f"uid {uid!r} is not 1-40 of [A-Za-z0-9_-]")
    elif uid in seen_uids:
        bad(f"uid '{uid}' is also the uid of {seen_uids[uid]}")
    else:
        seen_uids[uid] = name
    title = d.get("title")
    if not title:
        bad("no title")
    elif title in seen_titles:
        bad(f"title '{title}' is also the title of {seen_titles[title]}")
    else:
        seen_titles[title] = name

    variables = {}
    for v in (d.get("templating") or {}).get("list") or []:
        variables[v.get("name")] = v
    dsvar = variables.get("datasource")

    def check_ref(ref, p, what):
        if not isinstance(ref, dict):
            bad(f"{what}: datasource is not a reference {{type, uid}}", p)
            return
        u = ref.get("uid")
        if u in ("${datasource}", "$datasource"):
            if not dsvar or dsvar.get("type") != "datasource":
                bad(f"{what}: uses ${{datasource}}, but there is no datasource variable", p)
            elif dsvar.get("query") not in ds.values():
                bad(f"{what}: the datasource variable queries type '{dsvar.get('query')}', which no provisioned datasource has", p)
        elif u not in ds:
            bad(f"{what}: datasource uid '{u}' is not provisioned ({', '.join(sorted(ds))})", p)

    for v in variables.values():
        if v.get("type") == "query":
            check_ref(v.get("datasource"), None, f"variable '{v.get('name')}'")

    ids = {}
    boxes = []
    for p in all_panels(d):
        pid = p.get("id")
        if not isinstance(pid, int):
            bad("no numeric id", p)
        elif pid in ids:
            bad(f"id {pid} is also the id of \"{ids[pid]}\"", p)
        else:
            ids[pid] = p.get("title", "")
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            bad("no gridPos {x, y, w, h}", p)
        else:
            if not 1 <= g["w"] <= 24 or g["x"] < 0 or g["x"] + g["w"] > 24 or g["h"] < 1 or g["y"] < 0:
                bad(f"gridPos {g} is outside the 24-column grid", p)
            for q, h in boxes:
                if (g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and
                        g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]):
                    bad(f"overlaps panel id={q.get('id')} \"{q.get('title', '')}\"", p)
            boxes.append((p, g))
        t = p.get("type")
        if t == "row":
            continue
        if not p.get("title"):
            bad("no title", p)
        if not p.get("description"):
            bad("no description", p)
        if t in NUMERIC and not ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit"):
            bad("no unit (fieldConfig.defaults.unit)", p)
        steps = (((p.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps")
        if steps is not None:
            vals = [s.get("value") for s in steps]
            if not vals or vals[0] is not None:
                bad("the first threshold step is not the base (value null)", p)
            rest = vals[1:]
            if any(not isinstance(x, (int, float)) for x in rest) or any(
                    b <= a for a, b in zip(rest, rest[1:])):
                bad(f"threshold steps {rest} are not ascending numbers", p)
        if t in NO_QUERY:
            continue
        if "datasource" in p:
            check_ref(p["datasource"], p, "panel")
        tg = p.get("targets") or []
        if not tg:
            bad("no targets", p)
        refs = set()
        for i, q in enumerate(tg):
            ref = q.get("refId")
            label = f"target {ref or i}"
            if not ref:
                bad(f"target {i} has no refId", p)
            elif ref in refs:
                bad(f"refId {ref} twice", p)
            refs.add(ref)
            expr = q.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                bad(f"{label}: no expr", p)
                continue
            if "datasource" in q:
                check_ref(q["datasource"], p, label)
            for m in VAR_RE.finditer(expr):
                var = m.group(1) or m.group(2)
                if var not in variables and var not in GRAFANA_VARS:
                    bad(f"{label}: ${var} is not a template variable of this dashboard", p)


def main(argv):
    pdir = os.path.join(ROOT, "infrastructure", "grafana", "provisioning")
    if len(argv) >= 2 and argv[0] == "--provisioning":
        pdir, argv = argv[1], argv[2:]
    files = argv or sorted(glob.glob(os.path.join(ROOT, "infrastructure", "grafana", "dashboards", "*.json")))
    problems = []
    ds = load_provisioning(pdir, problems)
    uids, titles = {}, {}
    panels = 0
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            problems.append(f"{os.path.basename(f)}: not readable JSON: {e}")
            continue
        lint(f, d, ds, uids, titles, problems)
        panels += sum(1 for p in all_panels(d) if p.get("type") != "row")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"lint_dashboards: {len(files)} dashboard(s), {panels} panels: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
