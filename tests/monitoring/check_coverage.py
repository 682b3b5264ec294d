#!/usr/bin/python3
"""check_coverage.py RULES_DIR TESTS_DIR - every rule of RULES_DIR/alerts.yml and
RULES_DIR/recording_rules.yml has promtool unit tests in TESTS_DIR/*.test.yml:

- each alerting rule (its name and all its labels, severity included) is expected to fire in
  some alert_rule_test (an exp_alerts entry whose exp_labels hold the rule's labels);
- each alert name is expected NOT to fire somewhere (exp_alerts: []): before its `for` is over
  or just under its threshold; an always-firing rule (expr vector(1)) is exempt;
- each recording rule appears in a promql_expr_test expression that expects samples;
- a test file that loads both rule files sets group_eval_order listing every group (promtool
  otherwise evaluates groups in random order, and alerts reading recorded series flake).

Exit 0 when covered, 1 listing FILE:LINE: what is missing.
"""
import glob
import os
import re
import sys

import yaml


def rules_of(path):
    with open(path, encoding="utf-8") as f:
        root = yaml.compose(f)
    out, groups = [], []
    for g in (dict((k.value, v) for k, v in root.value).get("groups").value):
        gm = {k.value: v for k, v in g.value}
        groups.append(gm["name"].value)
        for r in gm.get("rules").value:
            d = yaml.safe_load(yaml.serialize(r))
            out.append((d, r.start_mark.line + 1))
    return out, groups


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    rdir, tdir = argv
    apath, rpath = os.path.join(rdir, "alerts.yml"), os.path.join(rdir, "recording_rules.yml")
    alerts, agroups = rules_of(apath)
    records, rgroups = rules_of(rpath)
    fired, silent, recorded, errs = [], set(), set(), []
    files = sorted(glob.glob(os.path.join(tdir, "*.test.yml")))
    if not files:
        errs.append(f"{tdir}: no *.test.yml")
    for tf in files:
        with open(tf, encoding="utf-8") as f:
            t = yaml.safe_load(f) or {}
        loaded = {os.path.basename(p) for p in t.get("rule_files", [])}
        if {"alerts.yml", "recording_rules.yml"} <= loaded:
            order = t.get("group_eval_order") or []
            if sorted(order) != sorted(agroups + rgroups):
                errs.append(f"{tf}:1: loads both rule files, so group_eval_order must list every group "
                            f"{sorted(agroups + rgroups)}, got {sorted(order)}")
        for case in t.get("tests", []) or []:
            for a in case.get("alert_rule_test", []) or []:
                exp = a.get("exp_alerts") or []
                if not exp:
                    silent.add(a.get("alertname"))
                for e in exp:
                    fired.append((a.get("alertname"), e.get("exp_labels") or {}))
            for p in case.get("promql_expr_test", []) or []:
                if p.get("exp_samples"):
                    for rec, _ in records:
                        name = rec.get("record")
                        if re.search(r"(?<![\w:])" + re.escape(name) + r"(?![\w:])", str(p.get("expr", ""))):
                            recorded.add(name)
    for r, ln in alerts:
        name, labels = r.get("alert"), {k: str(v) for k, v in (r.get("labels") or {}).items()}
        if not any(n == name and all(str(el.get(k)) == v for k, v in labels.items()) for n, el in fired):
            errs.append(f"{apath}:{ln}: {name} (severity {labels.get('severity')}"
                        + "".join(f", {k}={v}" for k, v in sorted(labels.items()) if k != "severity")
                        + "): no test expects it to fire")
        if name not in silent and str(r.get("expr", "")).strip() != "vector(1)":
            errs.append(f"{apath}:{ln}: {name}: no test expects it not to fire (exp_alerts: [])")
    seen = set()
    for r, ln in records:
        name = r.get("record")
        if name not in recorded and name not in seen:
            errs.append(f"{rpath}:{ln}: recording rule {name}: no promql_expr_test expects samples of it")
        seen.add(name)
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"check_coverage: {len(alerts)} alerting rules fire and {len(silent & {r.get('alert') for r, _ in alerts})} "
          f"alert names stay silent in tests; {len(seen)} recording rules tested ({len(files)} test files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
