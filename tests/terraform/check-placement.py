#!/usr/bin/python3
"""Terraform's placement and security groups against the compose files and the local stack.

    check-placement.py LOCALS.json SRCDIR

LOCALS.json: main.tf's local values as OpenTofu evaluated them (test_terraform.sh runs main.tf's
`locals` block in a scratch module and writes `tofu output -json`: ports, role_ports,
node_services, service_ips, host_ips).  It fails when:
  - a long-running service of the compose files (infrastructure/docker-compose*.yml) is placed on
    no node, or on two; or a placed name is no compose service;
  - a port a role's services listen on (their ports in infrastructure/local/stack.yml, which the
    compose files keep, and the host ports the compose files publish) is not open in the role's
    security group, unless infrastructure/topology.yml marks it `published: false` (reached only
    from the same host);
  - the role's group opens a port that none of its services listens on ("only the ports used");
  - a service name does not resolve to the host it is placed on (service_ips).
Exit 0 clean, 1 with findings.
"""
import glob
import json
import os
import sys

import yaml

# Started by hand or elsewhere, not by a node's bootstrap (docs/deploy-terraform.md).
NOT_PLACED = {
    "pg-init": "one-shot, run once on the first database host after all members are up",
    "kafka-topics": "one-shot, run once after the three brokers are up",
    "node-exporter": "runs on every compose host (bootstrap adds it); GPU servers: Ubuntu's package",
    "gpu-agent": "GPU servers run gpu_agent.service (infrastructure/systemd), not compose",
    "rolloutd": "the first GPU server runs rolloutd.service (infrastructure/systemd)",
}
COMMON = {"ssh", "node-exporter-http"}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    raw = json.load(open(sys.argv[1]))
    loc = {k: v["value"] for k, v in raw.items()}
    src = sys.argv[2]
    errs = []

    compose = {}
    for f in sorted(glob.glob(os.path.join(src, "infrastructure", "docker-compose*.yml"))):
        if f.endswith("docker-compose-test.yml"):
            continue  # an overlay of sizes
        for name, svc in (yaml.safe_load(open(f)).get("services") or {}).items():
            ports = set()
            for p in svc.get("ports") or []:
                ports.add(int(str(p).split(":")[-2] if str(p).count(":") >= 1 else p))
            compose.setdefault(name, set()).update(ports)
    stack = yaml.safe_load(open(os.path.join(src, "infrastructure", "local", "stack.yml")))
    topo = yaml.safe_load(open(os.path.join(src, "infrastructure", "topology.yml")))
    # Ports that only the same host connects to (topology.yml `published: false`): no inbound rule.
    local_only = {p for s in topo["services"].values() if s.get("published") is False
                  for p in s["ports"].values()}
    # stack.yml's names -> compose names (topology.yml `local:`)
    to_compose = {s.get("local", n): n for n, s in topo["services"].items()}
    stack_ports = {to_compose.get(n, n): set(s.get("ports") or []) for n, s in stack["services"].items()}

    placed = {}
    for role, nodes in loc["node_services"].items():
        for i, names in enumerate(nodes):
            for n in names:
                if n in placed:
                    errs.append(f"{n} is placed twice: {placed[n]} and {role}[{i}]")
                placed[n] = (role, i)
                if n not in compose:
                    errs.append(f"{role}[{i}] runs {n}, which no compose file defines")
    for n in sorted(set(compose) - set(placed) - set(NOT_PLACED)):
        errs.append(f"compose service {n} runs on no node (topology.yml hosts.ROLE.services)")

    def open_ports(role):
        out = set()
        for key in loc["role_ports"][role]:
            lo, hi = loc["ports"][key]
            out.update(range(lo, hi + 1))
        return out

    for role in loc["role_ports"]:
        listen = set()
        for n, (r, _) in placed.items():
            if r == role:
                listen |= stack_ports.get(n, set()) | compose.get(n, set())
        if role == "gpu":  # the systemd units: gpu_agent and rolloutd
            listen |= compose.get("gpu-agent", set()) | stack_ports.get("rolloutd", set())
        opened = open_ports(role)
        for p in sorted(listen - opened - local_only):
            errs.append(f"role {role}: a service listens on {p}, which its security group does not open")
        for p in sorted(opened - listen):
            errs.append(f"role {role}: the security group opens {p}, which none of its services uses")
    for key in COMMON:
        if key not in loc["ports"]:
            errs.append(f"ports has no {key}")

    for n, (role, i) in sorted(placed.items()):
        want = loc["host_ips"][role][i]
        if loc["service_ips"].get(n) != want:
            errs.append(f"{n} resolves to {loc['service_ips'].get(n)}, runs on {want}")

    for e in errs:
        print(f"check-placement: {e}")
    print(f"check-placement: {len(placed)} services on {sum(len(v) for v in loc['node_services'].values())} "
          f"nodes, {len(compose)} compose services: {'clean' if not errs else f'{len(errs)} finding(s)'}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
