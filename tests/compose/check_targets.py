#!/usr/bin/python3
"""Prometheus targets for compose (infrastructure/compose/prometheus/targets/):

  check_targets.py SOURCE_DIR SERVICES_FILE [TARGETS_DIR]

SERVICES_FILE: the compose service names, one a line (`docker-compose ... config --services`
of the whole set with profile gpu).  Checks: every file_sd file prometheus.yml reads (each job
and the Alertmanager discovery) exists in TARGETS_DIR and no other file does; every target's
host, and every `exporter` label's host, is a compose service; where that service is in the
local stack, the port is one of its ports there; and each file carries the same target labels
(service, cluster) as the local stack's targets-local/ file (monitoring contract), gpu_agent
(no local targets) aside, and the members of a cluster whose size differs between the local stack
and production (infrastructure/topology.yml: etcd, one member locally, three in production;
local names mapped to compose names by its `local:`).  Prints one line per violation, exits 1 when there is any."""
import os
import re
import sys

import yaml

src, services_file = sys.argv[1:3]
tdir = sys.argv[3] if len(sys.argv) > 3 else f"{src}/infrastructure/compose/prometheus/targets"
prom = yaml.safe_load(open(f"{src}/infrastructure/prometheus/prometheus.yml"))
stack = yaml.safe_load(open(f"{src}/infrastructure/local/stack.yml"))["services"]
services = {l.strip() for l in open(services_file) if l.strip()}
local_dir = f"{src}/infrastructure/prometheus/targets-local"
topo = yaml.safe_load(open(f"{src}/infrastructure/topology.yml"))
to_compose = {s.get("local", n): n for n, s in topo["services"].items()}
# Members of clusters sized per environment: their targets legitimately differ.
per_env = {m for c in topo["clusters"].values() if isinstance(c["members"], dict)
           for lst in c["members"].values() for m in lst}
errors = []

wanted = {}  # file name -> what reads it
for job in prom.get("scrape_configs", []):
    for sd in job.get("file_sd_configs", []):
        for f in sd["files"]:
            wanted[f] = f"job {job['job_name']}"
for am in prom.get("alerting", {}).get("alertmanagers", []):
    for sd in am.get("file_sd_configs", []):
        for f in sd["files"]:
            wanted.setdefault(f, "alerting")

present = {f"targets/{f}" for f in os.listdir(tdir) if f.endswith(".yml")}
for f in sorted(set(wanted) - present):
    errors.append(f"{f}: missing ({wanted[f]} reads it)")
for f in sorted(present - set(wanted)):
    errors.append(f"{f}: no job reads it")


def host_port(addr):
    m = re.match(r"^(?:[a-z]+://)?([^/:]+):(\d+)(?:/.*)?$", addr)
    return (m.group(1), int(m.group(2))) if m else (None, None)


def check_addr(where, addr):
    host, port = host_port(addr)
    if host is None:
        errors.append(f"{where}: {addr!r} is not HOST:PORT or a URL with a port")
        return
    if host not in services:
        errors.append(f"{where}: host {host!r} is not a compose service")
        return
    if host in stack and port not in stack[host].get("ports", []):
        errors.append(f"{where}: {host}:{port}, but {host}'s ports are {stack[host].get('ports')}")


def labelsets(groups):
    out = []
    for g in groups or []:
        labels = {k: v for k, v in (g.get("labels") or {}).items() if k != "exporter"}
        if "service" in labels:
            labels["service"] = to_compose.get(labels["service"], labels["service"])
            if labels["service"] in per_env:
                continue
        out += [tuple(sorted(labels.items()))] * len(g.get("targets", []))
    return sorted(out)


for f in sorted(set(wanted) & present):
    name = f.split("/", 1)[1]
    groups = yaml.safe_load(open(f"{tdir}/{name}")) or []
    for g in groups:
        for t in g.get("targets", []):
            check_addr(f, t)
        if "exporter" in (g.get("labels") or {}):
            check_addr(f"{f} (exporter label)", g["labels"]["exporter"])
    if name != "gpu_agent.yml" and os.path.exists(f"{local_dir}/{name}"):
        local = yaml.safe_load(open(f"{local_dir}/{name}")) or []
        if labelsets(groups) != labelsets(local):
            errors.append(f"{f}: target labels differ from targets-local/{name}")

for e in errors:
    print(f"# {e}")
sys.exit(1 if errors else 0)
