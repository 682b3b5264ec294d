#!/usr/bin/python3
"""test_prometheus_load.py SRC - a real Prometheus runs infrastructure/prometheus/prometheus.yml
with the local target files (targets-local/ as targets/), and:

- every target group of every job becomes a target whose scrape URL and labels are the
  intended ones: single-target jobs scrape the address itself; the multi-target jobs scrape
  their `exporter` with the probed address as `target` (redis:// for redis_exporter) and keep
  it as `instance`, without an `exporter` label; blackbox jobs pass their module;
- the alerting section discovers the Alertmanager of targets/alertmanager.yml;
- every rule group is evaluated without an error (whatever data there is: scrapes of a
  running local stack, or none).

The copy's alertmanager target is moved to a port nothing listens on, so this Prometheus
never sends its alerts (the Watchdog fires at once) to a real Alertmanager.
"""
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promrun import Prometheus, Tap, free_port  # noqa: E402

MODULES = {"blackbox-tcp": "tcp_connect", "blackbox-http": "http_2xx"}


def expected_targets(tdir, job):
    with open(os.path.join(tdir, f"{job}.yml"), encoding="utf-8") as f:
        groups = yaml.safe_load(f) or []
    out = {}
    for g in groups:
        for t in g["targets"]:
            labels = dict(g.get("labels") or {})
            exporter = labels.pop("exporter", None)
            if exporter is None:
                url = f"http://{t}/metrics"
            elif job.startswith("redis"):
                url = f"http://{exporter}/scrape?" + urllib.parse.urlencode({"target": f"redis://{t}"})
            else:
                url = f"http://{exporter}/probe?" + urllib.parse.urlencode({"module": MODULES[job], "target": t})
            out[t] = (url, dict(labels, job=job, instance=t))
    return out


def main(argv):
    src = os.path.abspath(argv[0])
    prom_dir = os.path.join(src, "infrastructure/prometheus")
    tap = Tap()
    with open(os.path.join(prom_dir, "prometheus.yml"), encoding="utf-8") as f:
        jobs = [sc["job_name"] for sc in yaml.safe_load(f)["scrape_configs"]]
    with tempfile.TemporaryDirectory() as d:
        for name in ("prometheus.yml", "alerts.yml", "recording_rules.yml"):
            shutil.copy(os.path.join(prom_dir, name), d)
        shutil.copytree(os.path.join(prom_dir, "targets-local"), os.path.join(d, "targets"))
        with open(os.path.join(d, "targets/alertmanager.yml"), "w") as f:
            f.write(f"- targets: ['127.0.0.1:{free_port()}']\n  labels: {{service: alertmanager}}\n")
        expect_am = open(os.path.join(d, "targets/alertmanager.yml")).read().split("'")[1]
        try:
            with Prometheus(os.path.join(d, "prometheus.yml")) as prom:
                active = []
                deadline = time.time() + 20
                want_n = sum(len(expected_targets(os.path.join(d, "targets"), j)) for j in jobs)
                while time.time() < deadline:
                    active = prom.api("/api/v1/targets", state="active")["activeTargets"]
                    if len(active) >= want_n:
                        break
                    time.sleep(0.5)
                for job in jobs:
                    want = expected_targets(os.path.join(d, "targets"), job)
                    got = {t["labels"].get("instance"): (t["scrapeUrl"], t["labels"])
                           for t in active if t["labels"].get("job") == job}
                    diff = [f"{i}: got {got.get(i)}, expected {w}" for i, w in want.items() if got.get(i) != w]
                    diff += [f"{i}: unexpected target {g}" for i, g in got.items() if i not in want]
                    tap.ok(not diff, f"job {job}: {len(want)} targets with the intended scrape URL and labels",
                           "\n".join(diff))
                ams = prom.api("/api/v1/alertmanagers")["activeAlertmanagers"]
                tap.ok([a["url"] for a in ams] == [f"http://{expect_am}/api/v2/alerts"],
                       "alerting discovers the Alertmanager of targets/alertmanager.yml", ams)
                # Every group is evaluated every 15 s; wait for a first evaluation of each.
                groups = []
                deadline = time.time() + 40
                while time.time() < deadline:
                    groups = prom.api("/api/v1/rules")["groups"]
                    if groups and all(not g["lastEvaluation"].startswith("0001") for g in groups):
                        break
                    time.sleep(1)
                unevaluated = [g["name"] for g in groups if g["lastEvaluation"].startswith("0001")]
                tap.ok(groups and not unevaluated, f"all {len(groups)} rule groups evaluated",
                       f"not evaluated: {unevaluated}")
                errors = [f"{g['name']}/{r.get('name')}: {r.get('lastError')}" for g in groups
                          for r in g["rules"] if r.get("health") == "err"]
                n = sum(len(g["rules"]) for g in groups)
                tap.ok(n > 0 and not errors, f"all {n} rules evaluate without an error", "\n".join(errors))
                up = prom.api("/api/v1/query", query="sum(up) or vector(0)")["result"]
                tap.diag(f"targets up (a running local stack answers): {up[0]['value'][1] if up else 0}")
        except RuntimeError as e:
            tap.ok(False, "Prometheus runs the configuration", e)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
