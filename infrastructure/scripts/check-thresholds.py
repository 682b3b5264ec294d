#!/usr/bin/python3
"""check-thresholds.py - infrastructure/prometheus/thresholds.yml is the one source of truth for
every alert threshold (DESIGN.md principle 3).  This fails, naming file and line, when a file
that repeats a threshold disagrees with it:

  infrastructure/prometheus/alerts.yml   each alerting rule has exactly one entry (alert name,
      severity, identifying labels) and each entry one rule; the rule's `for` is the entry's;
      every comparison of the entry's `op` against a number in its expression uses the entry's
      value; its description shows the value humanized ({{ $value | humanize... }}) and the
      entry's display text, and no other number of that unit than its alert's thresholds; its
      runbook_url is docs/alerts.md#<alert name in lower case>.  GpuFailNowXid's xid regex and
      gpu_agent's default fail-now list (src/gpu_agent/config.c) are the entry's xids.
  infrastructure/prometheus/recording_rules.yml   the SLO target rule holds the entry's value.
  docs/alerts.md   a `## <Alert>` section per alert (its anchor is the runbook_url's), holding
      one line per entry, exactly "- **<severity>[, label=value...]**: <what> <op> <display>
      for <for>" (no " for" when it is 0s); "- **SLO target**: <what>: <display>" in the SLO
      section; no threshold line that no entry gives.
  infrastructure/grafana/dashboards/**/*.json (those that exist)   a panel whose query uses a
      metric an entry lists under `dashboard` shows only that metric's threshold values as
      threshold steps, in the panel's unit (percent/percentunit, s/ms, celsius, none/short; a
      count compared with `>` N steps at N + 1).

Usage: check-thresholds.py [--root DIR]     (DIR: a checkout; default: this script's)
Exit codes: 0 all agree, 1 disagreements (listed as FILE:LINE: ...), 2 usage or unreadable input.
"""
import glob
import json
import math
import os
import re
import sys

import yaml

SEVERITIES = ("critical", "warning", "info", "none")
OPS = (">", ">=", "<", "<=", "==", "!=")
UNITS = ("percent", "ratio", "seconds", "celsius", "count", "multiplier")
# Grafana units a threshold of each unit can be drawn in, with the factor applied to the value.
PANEL_UNITS = {
    "percent": {"percent": 1, "percentunit": 0.01},
    "ratio": {"percentunit": 1, "percent": 100},
    "seconds": {"s": 1, "ms": 1000, "µs": 1e6, "ns": 1e9},
    "celsius": {"celsius": 1},
    "count": {"none": 1, "short": 1, "": 1, None: 1},
    "multiplier": {"none": 1, "short": 1, "": 1, None: 1},
}
# A display is "<number><space?><unit word>"; numbers of the same unit word in an alert's
# description must be one of its thresholds' displays.
DISPLAY_RE = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\s?(%|ms|s|h|days|°C|x))?$")
NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
CMP_RE = re.compile(r"(==|!=|>=|<=|>|<)\s*(?:bool\s+)?(" + NUM + r")(?![\w.:])")
HUMANIZED_RE = re.compile(r"\{\{\s*\$value\s*\|\s*(humanize\w*|printf)")
DUR_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
DUR_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class Checker:
    def __init__(self, root):
        self.root = root
        self.errors = []

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def err(self, path, line, msg):
        self.errors.append(f"{self.rel(path)}:{line}: {msg}")


def duration_s(text):
    """Seconds of a Prometheus duration ("1h30m", "0s"); None when it is not one."""
    if not isinstance(text, str) or not text or DUR_RE.sub("", text):
        return None
    return sum(int(n) * DUR_S[u] for n, u in DUR_RE.findall(text))


def feq(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def fmt(v):
    return f"{v:g}"


def slug(heading):
    """GitHub's anchor of a markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def compose(c, path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.compose(f)
    except OSError as e:
        c.err(path, 1, f"cannot read: {e.strerror}")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        c.err(path, mark.line + 1 if mark else 1, f"not YAML: {e}")
    return None


def mapping(node):
    if not isinstance(node, yaml.MappingNode):
        return None
    return {k.value: v for k, v in node.value}


def line(node):
    return node.start_mark.line + 1


def plain(node):
    """The Python value of a YAML node (scalars resolved as YAML does)."""
    return yaml.safe_load(yaml.serialize(node)) if node is not None else None


# ===== thresholds.yml =====

ENTRY_FIELDS = {"alert", "record", "severity", "labels", "what", "op", "value", "unit", "display",
                "for", "source", "dashboard", "xids"}


def load_thresholds(c, path):
    root = compose(c, path)
    if root is None:
        return []
    top = mapping(root)
    if top is None or "thresholds" not in top or mapping(top["thresholds"]) is None:
        c.err(path, line(root), "thresholds: expected a mapping of threshold name -> entry")
        return []
    entries = []
    for kn, vn in top["thresholds"].value:
        name, ln = kn.value, line(kn)
        m = mapping(vn)
        if m is None:
            c.err(path, ln, f"{name}: expected a mapping")
            continue
        e = {"name": name, "line": ln, "lines": {k: line(v) for k, v in m.items()}}
        for k, v in m.items():
            if k not in ENTRY_FIELDS:
                c.err(path, line(v), f"{name}.{k}: unknown field (known: {', '.join(sorted(ENTRY_FIELDS))})")
            e[k] = plain(v)
        ok = True

        def bad(field, msg):
            nonlocal ok
            ok = False
            c.err(path, e["lines"].get(field, ln), f"{name}.{field}: {msg}")

        if ("alert" in e) == ("record" in e):
            bad("alert", "exactly one of alert (an alerting rule) or record (a recording rule) is required")
        for f in ("what", "unit", "display", "source"):
            if not isinstance(e.get(f), str) or not e.get(f):
                bad(f, "missing or not a string")
        if "alert" in e:
            if e.get("severity") not in SEVERITIES:
                bad("severity", f"expected one of {', '.join(SEVERITIES)}, got {e.get('severity')!r}")
            if duration_s(e.get("for")) is None:
                bad("for", f"expected a duration such as 5m or 0s, got {e.get('for')!r}")
        if e.get("unit") not in UNITS:
            bad("unit", f"expected one of {', '.join(UNITS)}, got {e.get('unit')!r}")
        if e.get("source") not in ("contract", "rules"):
            bad("source", f"expected contract or rules, got {e.get('source')!r}")
        if e.get("op") is not None and e.get("op") not in OPS:
            bad("op", f"expected one of {', '.join(OPS)} or null, got {e.get('op')!r}")
        v = e.get("value")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            bad("value", f"expected a number or null, got {v!r}")
        if (e.get("op") is None) != (v is None) and "alert" in e:
            bad("op", "op and value are both given or both null")
        if isinstance(e.get("display"), str) and not DISPLAY_RE.match(e["display"]) and v is not None:
            bad("display", f"expected '<number> <unit>' (units %, ms, s, h, days, °C, x), got {e['display']!r}")
        if "labels" in e and (not isinstance(e["labels"], dict)
                              or not all(isinstance(x, str) for x in e["labels"].values())):
            bad("labels", "expected a mapping of label name -> string")
        if "dashboard" in e and (not isinstance(e["dashboard"], list)
                                 or not all(isinstance(x, str) for x in e["dashboard"])):
            bad("dashboard", "expected a list of metric names")
        if "xids" in e and (not isinstance(e["xids"], list) or not e["xids"]
                            or not all(isinstance(x, int) and 0 <= x <= 1023 for x in e["xids"])):
            bad("xids", "expected a non-empty list of XIDs 0..1023")
        if ok:
            entries.append(e)
    keys = {}
    for e in entries:
        if "alert" in e:
            k = (e["alert"], e["severity"], tuple(sorted((e.get("labels") or {}).items())))
            if k in keys:
                c.err(path, e["line"], f"{e['name']}: same alert, severity and labels as {keys[k]}")
            keys[k] = e["name"]
    return entries


# ===== rule files =====

def load_rules(c, path):
    """[(rule dict, {field: line}, rule line)] of every rule in a rule file."""
    root = compose(c, path)
    out = []
    if root is None:
        return out
    groups = (mapping(root) or {}).get("groups")
    if not isinstance(groups, yaml.SequenceNode):
        c.err(path, line(root), "groups: expected a list")
        return out
    for g in groups.value:
        rules = (mapping(g) or {}).get("rules")
        if not isinstance(rules, yaml.SequenceNode):
            continue
        for r in rules.value:
            m = mapping(r) or {}
            lines = {k: line(v) for k, v in m.items()}
            for sect in ("labels", "annotations"):
                sm = mapping(m.get(sect))
                for k, v in (sm or {}).items():
                    lines[f"{sect}.{k}"] = line(v)
            out.append(({k: plain(v) for k, v in m.items()}, lines, line(r)))
    return out


def matches(rule, e):
    labels = rule.get("labels") or {}
    if rule.get("alert") != e["alert"] or labels.get("severity") != e["severity"]:
        return False
    return all(labels.get(k) == v for k, v in (e.get("labels") or {}).items())


def display_unit(display):
    m = DISPLAY_RE.match(display or "")
    return m.group(2) if m else None


def check_alerts(c, path, rules, entries):
    alert_entries = [e for e in entries if "alert" in e]
    families = {}
    for e in alert_entries:
        families.setdefault(e["alert"], []).append(e)
    used = {}
    for rule, lines, rline in rules:
        name = rule.get("alert")
        if name is None:
            c.err(path, rline, "not an alerting rule (no `alert`)")
            continue
        labels = rule.get("labels") or {}
        sev = labels.get("severity")
        if sev not in SEVERITIES:
            c.err(path, lines.get("labels.severity", rline),
                  f"{name}: label severity must be one of {', '.join(SEVERITIES)}, got {sev!r}")
        found = [e for e in alert_entries if matches(rule, e)]
        if len(found) != 1:
            c.err(path, rline, f"{name} (severity {sev}): {'no' if not found else 'more than one'} "
                               f"entry of thresholds.yml matches it"
                               + ("" if not found else f" ({', '.join(e['name'] for e in found)})"))
            continue
        e = found[0]
        if e["name"] in used:
            c.err(path, rline, f"{name}: threshold {e['name']} is already used by the rule at line {used[e['name']]}")
        used[e["name"]] = rline
        rule_for = duration_s(rule.get("for", "0s"))
        if rule_for is None or not feq(rule_for, duration_s(e["for"])):
            c.err(path, lines.get("for", rline),
                  f"{name}: for {rule.get('for', '0s (none)')} but thresholds.yml {e['name']}.for is {e['for']}")
        expr = str(rule.get("expr", ""))
        if e["op"] is not None:
            nums = [float(n) for op, n in CMP_RE.findall(expr) if op == e["op"]]
            if not nums:
                c.err(path, lines.get("expr", rline),
                      f"{name}: expression has no comparison '{e['op']} {fmt(e['value'])}' "
                      f"(thresholds.yml {e['name']}.value)")
            for n in nums:
                if not feq(n, e["value"]):
                    c.err(path, lines.get("expr", rline),
                          f"{name}: expression compares '{e['op']} {fmt(n)}' but thresholds.yml "
                          f"{e['name']}.value is {fmt(e['value'])}")
        ann = rule.get("annotations") or {}
        for a in ("summary", "description", "runbook_url"):
            if not ann.get(a):
                c.err(path, rline, f"{name}: annotation {a} is missing")
        desc = str(ann.get("description", ""))
        dl = lines.get("annotations.description", rline)
        if desc and not HUMANIZED_RE.search(desc):
            c.err(path, dl, f"{name}: description must show the value humanized ({{{{ $value | humanize }}}})")
        if desc and e["value"] is not None and not re.search(
                r"(?<![\w.])" + re.escape(e["display"]) + r"(?![\w.])", desc):
            c.err(path, dl, f"{name}: description does not say the threshold '{e['display']}' (thresholds.yml {e['name']}.display)")
        unit = display_unit(e["display"])
        if desc and unit:
            allowed = {f.get("display") for f in families[name]}
            for m in re.finditer(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s?" + re.escape(unit) + r"(?![\w])", desc):
                text = m.group(0)
                if not any(DISPLAY_RE.match(a or "") and display_unit(a) == unit
                           and feq(float(DISPLAY_RE.match(a).group(1)), float(m.group(1))) for a in allowed):
                    c.err(path, dl, f"{name}: description says '{text}', which is no threshold of "
                                    f"{name} in thresholds.yml ({', '.join(sorted(x for x in allowed if x))})")
        want = f"docs/alerts.md#{slug(name)}"
        if ann.get("runbook_url") and ann.get("runbook_url") != want:
            c.err(path, lines.get("annotations.runbook_url", rline),
                  f"{name}: runbook_url is {ann.get('runbook_url')!r}, expected {want!r}")
        if "xids" in e:
            m = re.search(r'xid=~"([^"]*)"', expr)
            got = sorted(int(x) for x in m.group(1).split("|")) if m and re.fullmatch(r"\d+(\|\d+)*", m.group(1)) else None
            if got != sorted(e["xids"]):
                c.err(path, lines.get("expr", rline),
                      f"{name}: xid regex {m.group(1) if m else '(none)'!r} is not thresholds.yml "
                      f"{e['name']}.xids {'|'.join(map(str, e['xids']))}")
    for e in alert_entries:
        if e["name"] not in used:
            c.err(c.thresholds_path, e["line"],
                  f"{e['name']}: no rule in {c.rel(path)} is alert {e['alert']} with severity {e['severity']}"
                  + (f" and labels {e['labels']}" if e.get("labels") else ""))


def check_records(c, path, rules, entries):
    for e in (x for x in entries if "record" in x):
        found = [(r, l, rl) for r, l, rl in rules if r.get("record") == e["record"]]
        if len(found) != 1:
            c.err(c.thresholds_path, e["line"], f"{e['name']}: expected one recording rule {e['record']} "
                                                f"in {c.rel(path)}, found {len(found)}")
            continue
        r, lines, rl = found[0]
        nums = [float(n) for n in re.findall(r"(?<![\w.:])" + NUM + r"(?![\w.:])", str(r.get("expr", "")))]
        if not any(feq(n, e["value"]) for n in nums) or any(not feq(n, e["value"]) for n in nums):
            c.err(path, lines.get("expr", rl), f"{e['record']}: expression {r.get('expr')!r} does not hold "
                                               f"thresholds.yml {e['name']}.value {fmt(e['value'])}")


def check_gpu_agent_xids(c, entries):
    path = os.path.join(c.root, "src/gpu_agent/config.c")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"fail_now\[\]\s*=\s*\{([^}]*)\}", text)
    for e in (x for x in entries if "xids" in x):
        if not m:
            c.err(path, 1, "no `fail_now[] = { ... }` default list found")
            return
        got = sorted(int(x) for x in re.findall(r"\d+", m.group(1)))
        if got != sorted(e["xids"]):
            c.err(path, text[:m.start()].count("\n") + 1,
                  f"gpu_agent's default fail-now XIDs {got} are not thresholds.yml {e['name']}.xids {sorted(e['xids'])}")


# ===== docs/alerts.md =====

def doc_line(e):
    if "record" in e:
        return f"- **SLO target**: {e['what']}: {e['display']}"
    qual = "".join(f", {k}={v}" for k, v in sorted((e.get("labels") or {}).items()))
    if e["op"] is None:
        return f"- **{e['severity']}{qual}**: {e['what']}"
    s = f"- **{e['severity']}{qual}**: {e['what']} {e['op']} {e['display']}"
    return s if duration_s(e["for"]) == 0 else s + f" for {e['for']}"


THRESHOLD_LINE = re.compile(r"^- \*\*(?:critical|warning|info|none|SLO target)\b[^*]*\*\*: ")


def check_docs(c, path, entries, alert_names):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().splitlines()
    except OSError as e:
        c.err(path, 1, f"cannot read: {e.strerror}")
        return
    sections = {}  # heading -> (line, [(line no, text)])
    cur = None
    for i, l in enumerate(text, 1):
        if l.startswith("## "):
            cur = l[3:].strip()
            if cur in sections:
                c.err(path, i, f"section '{cur}' appears twice")
            sections[cur] = (i, [])
        elif cur is not None:
            sections[cur][1].append((i, l))
        elif THRESHOLD_LINE.match(l):
            c.err(path, i, "threshold line outside any ## section")
    slo = [h for h in sections if slug(h) == "slo-and-burn-rates"]
    for name in sorted(alert_names):
        if name not in sections:
            c.err(path, len(text), f"no section '## {name}' (anchor #{slug(name)}, the alert's runbook_url)")
    for h, (hl, _) in sections.items():
        if re.fullmatch(r"[A-Z][A-Za-z0-9]+", h) and h not in alert_names:
            c.err(path, hl, f"section '## {h}' looks like an alert's, but alerts.yml has no alert {h}")
    for h, (hl, body) in sections.items():
        if h in alert_names:
            want = {doc_line(e): e for e in entries if e.get("alert") == h}
        elif h in slo:
            want = {doc_line(e): e for e in entries if "record" in e}
        else:
            want = {}
        have = {}
        for i, l in body:
            if THRESHOLD_LINE.match(l):
                have.setdefault(l.rstrip(), i)
                if l.rstrip() not in want:
                    close = [w for w in want if w.split("**: ")[0] == l.split("**: ")[0]]
                    c.err(path, i, f"threshold line {l.strip()!r} disagrees with thresholds.yml"
                                   + (f": expected {close[0]!r}" if close else f" (no entry of section '{h}' has it)"))
        for w, e in want.items():
            if w not in have and not any(x.split("**: ")[0] == w.split("**: ")[0] for x in have):
                c.err(path, hl, f"section '{h}' lacks the threshold line {w!r} (thresholds.yml {e['name']})")
    if any("record" in e for e in entries) and not slo:
        c.err(path, len(text), "no section '## SLO and burn rates' (anchor #slo-and-burn-rates) with the SLO target")


# ===== Grafana dashboards =====

def panels_of(d):
    for p in d.get("panels", []) or []:
        yield p
        yield from panels_of(p)


def step_values(panel):
    """(unit, [values]) of the panel's threshold steps, overrides included."""
    fc = panel.get("fieldConfig") or {}
    d = fc.get("defaults") or {}
    out = []
    th = d.get("thresholds") or {}
    out += [s.get("value") for s in th.get("steps", []) or []]
    for o in fc.get("overrides", []) or []:
        for prop in o.get("properties", []) or []:
            if prop.get("id") == "thresholds" and isinstance(prop.get("value"), dict):
                out += [s.get("value") for s in prop["value"].get("steps", []) or []]
    vals = [v for v in out if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    return d.get("unit"), vals


def uses_metric(expr, metric):
    return re.search(r"(?<![\w:])" + re.escape(metric) + r"(?![\w:])", expr) is not None


def check_dashboards(c, entries):
    base = os.path.join(c.root, "infrastructure/grafana/dashboards")
    files = sorted(glob.glob(os.path.join(base, "**", "*.json"), recursive=True))
    by_metric = {}
    for e in entries:
        for m in e.get("dashboard") or []:
            by_metric.setdefault(m, []).append(e)
    count = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                raw = f.read()
            d = json.loads(raw)
        except (OSError, ValueError) as ex:
            c.err(path, getattr(ex, "lineno", 1), f"not readable JSON: {ex}")
            continue
        lines = raw.splitlines()
        pos = 0
        for p in panels_of(d):
            title = p.get("title", "")
            tl = next((i for i in range(pos, len(lines)) if f'"title": {json.dumps(title)}' in lines[i]
                       or f'"title":{json.dumps(title)}' in lines[i]), None)
            if tl is not None:
                pos = tl + 1
            exprs = [str(t.get("expr", "")) for t in p.get("targets", []) or [] if isinstance(t, dict)]
            es = {e["name"]: e for m, lst in by_metric.items() if any(uses_metric(x, m) for x in exprs) for e in lst}
            unit, vals = step_values(p)
            if not es or not vals:
                continue
            count += 1
            expected = []
            for e in es.values():
                f = PANEL_UNITS[e["unit"]].get(unit, PANEL_UNITS[e["unit"]].get(None) if unit is None else None)
                if f is None:
                    c.err(path, (tl or 0) + 1, f"panel {title!r}: unit {unit!r} cannot show the "
                                               f"{e['unit']} threshold {e['name']} ({e['display']})")
                    continue
                v = e["value"] + (1 if e["op"] == ">" and e["unit"] == "count" else 0)
                expected.append(v * f)
            for v in vals:
                if expected and not any(feq(v, x) for x in expected):
                    vl = next((i for i in range(tl or 0, len(lines)) if re.search(
                        r'"value":\s*' + re.escape(json.dumps(v)) + r"\b", lines[i])), tl or 0)
                    c.err(path, vl + 1, f"panel {title!r}: threshold step {fmt(v)} is no threshold of "
                                        f"{', '.join(sorted({m for e in es.values() for m in e['dashboard']}))} "
                                        f"in thresholds.yml (expected {', '.join(fmt(x) for x in sorted(expected))} "
                                        f"{unit or 'none'}; {', '.join(sorted(es))})")
    return len(files), count


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--root" and args:
            root = os.path.abspath(args.pop(0))
        else:
            print("usage: check-thresholds.py [--root DIR]", file=sys.stderr)
            return 2
    c = Checker(root)
    prom = os.path.join(root, "infrastructure/prometheus")
    c.thresholds_path = os.path.join(prom, "thresholds.yml")
    for p in (c.thresholds_path, os.path.join(prom, "alerts.yml"), os.path.join(prom, "recording_rules.yml"),
              os.path.join(root, "docs/alerts.md")):
        if not os.path.exists(p):
            print(f"check-thresholds.py: {p}: missing", file=sys.stderr)
            return 2
    entries = load_thresholds(c, c.thresholds_path)
    alerts = load_rules(c, os.path.join(prom, "alerts.yml"))
    records = load_rules(c, os.path.join(prom, "recording_rules.yml"))
    check_alerts(c, os.path.join(prom, "alerts.yml"), alerts, entries)
    check_records(c, os.path.join(prom, "recording_rules.yml"), records, entries)
    check_gpu_agent_xids(c, entries)
    check_docs(c, os.path.join(root, "docs/alerts.md"), entries, {r.get("alert") for r, _, _ in alerts if r.get("alert")})
    nfiles, npanels = check_dashboards(c, entries)
    for e in c.errors:
        print(e)
    if c.errors:
        print(f"check-thresholds: {len(c.errors)} disagreement(s) with infrastructure/prometheus/thresholds.yml")
        return 1
    print(f"check-thresholds: {len(entries)} thresholds agree with {len(alerts)} alerting rules, "
          f"the SLO target rule, docs/alerts.md and {npanels} threshold panels in {nfiles} dashboards")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
