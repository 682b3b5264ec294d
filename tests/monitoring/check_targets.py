#!/usr/bin/python3
"""check_targets.py PROMETHEUS_YML TARGETS_DIR - the target files (file_sd) have the shape the
monitoring contract (issue 12) and prometheus.yml expect:

- prometheus.yml has exactly the contract's jobs, each reading targets/<job>.yml, and the
  alerting section reads targets/alertmanager.yml;
- TARGETS_DIR has <job>.yml for every job: a list of {targets: [...], labels: {...}} groups
  (an empty list is allowed for gpu_agent only);
- every group has a `service` label; clustered jobs a `cluster` label (postgres | redis | kafka |
  etcd); the multi-target jobs' groups an `exporter` label (HOST:PORT), the others none.

Exit 0 when all agree, 1 listing FILE:LINE: problem.
"""
import os
import re
import sys

import yaml

# The monitoring contract's jobs, and which of them are multi-target or describe a cluster.
JOBS = ["prometheus", "alertmanager", "node", "postgres", "patroni", "pgbouncer", "redis",
        "redis-sentinel", "blackbox-tcp", "blackbox-http", "kafka", "kafka-jmx", "etcd",
        "haproxy", "rolloutd", "gpu_agent"]
MULTI = {"redis", "redis-sentinel", "blackbox-tcp", "blackbox-http"}
CLUSTERED = {"postgres": "postgres", "patroni": "postgres", "redis": "redis",
             "redis-sentinel": "redis", "kafka": "kafka", "kafka-jmx": "kafka", "etcd": "etcd"}
MAY_BE_EMPTY = {"gpu_agent"}
HOSTPORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")
URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    prom_path, tdir = argv
    errs = []
    with open(prom_path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    jobs = [sc.get("job_name") for sc in cfg.get("scrape_configs", [])]
    if sorted(jobs) != sorted(JOBS):
        errs.append(f"{prom_path}:1: jobs {sorted(jobs)} are not the contract's {sorted(JOBS)}")
    for sc in cfg.get("scrape_configs", []):
        job = sc.get("job_name")
        files = [x for fsd in sc.get("file_sd_configs", []) for x in fsd.get("files", [])]
        if files != [f"targets/{job}.yml"]:
            errs.append(f"{prom_path}:1: job {job} reads {files}, expected ['targets/{job}.yml']")
        uses_exporter = any(r.get("source_labels") == ["exporter"] for r in sc.get("relabel_configs", []) or [])
        if uses_exporter != (job in MULTI):
            errs.append(f"{prom_path}:1: job {job}: {'relabels' if uses_exporter else 'does not relabel'} "
                        f"from an exporter label, but it is {'' if job in MULTI else 'not '}a multi-target job")
    am = [x for a in (cfg.get("alerting") or {}).get("alertmanagers", [])
          for fsd in a.get("file_sd_configs", []) for x in fsd.get("files", [])]
    if am != ["targets/alertmanager.yml"]:
        errs.append(f"{prom_path}:1: alerting reads {am}, expected ['targets/alertmanager.yml']")

    groups_seen = 0
    for job in JOBS:
        path = os.path.join(tdir, f"{job}.yml")
        if not os.path.exists(path):
            errs.append(f"{path}:1: missing: job {job} has no target file")
            continue
        with open(path, encoding="utf-8") as f:
            root = yaml.compose(f)
        if not isinstance(root, yaml.SequenceNode):
            errs.append(f"{path}:1: expected a list of target groups")
            continue
        if not root.value and job not in MAY_BE_EMPTY:
            errs.append(f"{path}:1: no target group")
        for g in root.value:
            ln = g.start_mark.line + 1
            groups_seen += 1
            m = {k.value: v for k, v in g.value} if isinstance(g, yaml.MappingNode) else None
            if m is None or set(m) != {"targets", "labels"}:
                errs.append(f"{path}:{ln}: a group has exactly targets and labels")
                continue
            targets = yaml.safe_load(yaml.serialize(m["targets"]))
            labels = yaml.safe_load(yaml.serialize(m["labels"])) or {}
            if not isinstance(targets, list) or not targets:
                errs.append(f"{path}:{ln}: targets: expected a non-empty list")
                targets = []
            for t in targets:
                pat = URL if job == "blackbox-http" else HOSTPORT
                if not isinstance(t, str) or not pat.match(t):
                    errs.append(f"{path}:{ln}: target {t!r} is not {'a URL' if job == 'blackbox-http' else 'HOST:PORT'}")
            if not labels.get("service"):
                errs.append(f"{path}:{ln}: label service is missing")
            if job in CLUSTERED and labels.get("cluster") != CLUSTERED[job]:
                errs.append(f"{path}:{ln}: label cluster must be {CLUSTERED[job]!r} in job {job}, got {labels.get('cluster')!r}")
            if "cluster" in labels and labels["cluster"] not in ("postgres", "redis", "kafka", "etcd"):
                errs.append(f"{path}:{ln}: label cluster {labels['cluster']!r} is not postgres, redis, kafka or etcd")
            if job in MULTI:
                if not isinstance(labels.get("exporter"), str) or not HOSTPORT.match(labels["exporter"]):
                    errs.append(f"{path}:{ln}: label exporter (HOST:PORT of the exporter that probes these targets) is missing")
            elif "exporter" in labels:
                errs.append(f"{path}:{ln}: label exporter is only for multi-target jobs ({', '.join(sorted(MULTI))})")
    for e in errs:
        print(e)
    if errs:
        return 1
    print(f"check_targets: {len(JOBS)} jobs, {groups_seen} target groups of the contract's shape")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
