#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# check-local-stack.py - offline consistency checks for infrastructure/local/*.yml and the
# templates they render: the facts that are repeated across files must agree.
#
#   every template exists; every ${...} in the stack file and the templates is state_dir,
#   stack_dir or a declared secret; every declared secret is used; depends_on names exist and
#   have no cycle; no port is claimed by two services; every port a service claims appears in
#   its command or its rendered files, and every healthcheck/status_probe port is one the
#   stack claims; the Patroni templates agree with each other except for name, ports and paths;
#   HAProxy's backends and PgBouncer's target match the Patroni/HAProxy ports; each Patroni
#   node's lock (leader key, member name, etcd port), liveness port and Patroni version agree
#   with its template, scripts/install-deps.sh and infrastructure/patroni/requirements.txt;
#   the Kafka nodes agree with each other, their ports, kafka-init, kafka-topics and the
#   versions scripts/install-deps.sh and infrastructure/kafka/pom.xml install.
#
#   A service in its own network namespace (`netns:`, the drill clusters) has no host ports:
#   its probes are not matched against claimed ports, and a Patroni node there has no lock or
#   liveness (its supervisor dies with its host) and listens on its namespace address.
#
# Usage: check-local-stack.py [STACK.yml...]   (default: every stack file in infrastructure/local;
#        exit 0 = all consistent, 1 = problems listed)
# Needs Debian's python3-yaml (run with /usr/bin/python3, not a pyenv python).
import os
import re
import sys

import yaml

from stackfacts import properties, strings

REF = re.compile(r"\$(\$|\{([^}]*)\})")
problems = []


def problem(msg):
    problems.append(msg)


def refs(text, where, secrets, used):
    for m in REF.finditer(text):
        if m.group(1) == "$":
            continue
        name = m.group(2)
        if name in ("state_dir", "stack_dir", "tools_dir"):
            continue
        if name.startswith("secret.") and name[7:] in secrets:
            used.add(name[7:])
            continue
        problem(f"{where}: unknown reference ${{{name}}}")


def check_kafka(services, rendered, stack_dir):
    """Kafka nodes: one node id, client/controller/JMX ports as claimed, the same voters, the
    same settings otherwise; kafka-init formats each node's config; kafka-topics bootstraps from
    every broker; the versions in the commands are the ones scripts/install-deps.sh and
    infrastructure/kafka/pom.xml install."""
    nodes = {n: s for n, s in services.items() if s.get("kind") == "kafka"}
    if not nodes:
        return
    deps = open(os.path.join(stack_dir, "../../scripts/install-deps.sh")).read()
    pom = open(os.path.join(stack_dir, "../kafka/pom.xml")).read()
    ver = re.search(r"^KAFKA_VERSION=(\S+)$", deps, re.M).group(1)
    if f"<kafka.version>{ver}</kafka.version>" not in pom:
        problem(f"infrastructure/kafka/pom.xml does not pin Kafka {ver} (install-deps.sh)")
    jmx = re.search(r"<jmx\.exporter\.version>([^<]+)<", pom)
    voters, norm, brokers, configs = set(), {}, [], []
    for n, s in nodes.items():
        cmd = " ".join(s["command"])
        if f"/kafka-{ver}/libs/" not in cmd:
            problem(f"{n}: command does not run the jars of Kafka {ver} (install-deps.sh)")
        if jmx and not s.get("netns") and f"jmx_prometheus_javaagent-{jmx.group(1)}.jar" not in cmd:
            problem(f"{n}: command does not load jmx_prometheus_javaagent {jmx.group(1)} (pom.xml)")
        conf_path = s["command"][s["command"].index("kafka.Kafka") + 1]
        f = next((f for f in s["files"] if f["path"] == conf_path), None)
        if not f:
            problem(f"{n}: {conf_path} (kafka.Kafka's argument) is not one of its files")
            continue
        configs.append(conf_path)
        text = rendered.get(f["template"], "")
        props = properties(text)
        if s.get("netns"):  # the main stack's template, its addresses overridden in the command
            args = [str(a) for a in s["command"]]
            props.update(properties("\n".join(args[i + 1] for i, a in enumerate(args[:-1])
                                               if a == "--override")))
            host, client = (s.get("status_probe") or {}).get("host"), (s.get("status_probe") or {}).get("port")
            if not str(props.get("listeners", "")).startswith(f"PLAINTEXT://{host}:{client},"):
                problem(f"{n}: --override listeners does not serve its probe's {host}:{client}")
            if f"{props.get('node.id')}@{host}:" not in props.get("controller.quorum.voters", ""):
                problem(f"{n}: node {props.get('node.id')} at {host} is not a voter")
            voters.add(props.get("controller.quorum.voters"))
            brokers.append(f"{host}:{client}")
            continue
        client, controller, jmx_port = s["ports"]
        want = f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"
        if props.get("listeners") != want:
            problem(f"{n}: {f['template']} listeners is not {want}")
        node_id = props.get("node.id", "")
        if f"{node_id}@127.0.0.1:{controller}" not in props.get("controller.quorum.voters", ""):
            problem(f"{n}: node {node_id} with controller port {controller} is not a voter")
        voters.add(props.get("controller.quorum.voters"))
        if f"=127.0.0.1:{jmx_port}:" not in cmd:
            problem(f"{n}: the JMX exporter does not listen on its port {jmx_port}")
        for key in ("healthcheck", "status_probe"):
            if (s.get(key) or {}).get("port") != client or (s.get(key) or {}).get("type") != "kafka":
                problem(f"{n}: {key} is not a kafka probe of its client port {client}")
        brokers.append(f"127.0.0.1:{client}")
        t = "".join(l for l in text.splitlines(True) if not l.lstrip().startswith("#"))
        t = re.sub(rf"\b{re.escape(n)}\b", "NODE", t)
        t = re.sub(rf"\b({client}|{controller})\b", "PORT", t)
        t = re.sub(r"^controller\.quorum\.voters=.*$", "", t, flags=re.M)  # checked above
        norm[n] = re.sub(r"^node\.id=\d+$", "node.id=ID", t, flags=re.M)
    if len(voters) > 1:
        problem("Kafka nodes disagree on controller.quorum.voters")
    if len(set(norm.values())) > 1:
        problem("Kafka templates differ in more than node id, name, ports and paths: " + ", ".join(norm))
    init = next((s for s in services.values() if "KAFKA_CONFIGS" in (s.get("environment") or {})), None)
    if init and sorted(init["environment"]["KAFKA_CONFIGS"].split()) != sorted(configs):
        problem("kafka-init: KAFKA_CONFIGS is not the nodes' server.properties")
    for n, s in services.items():
        for a in s.get("command", []):
            if str(a).startswith("--bootstrap=") and sorted(a[12:].split(",")) != sorted(brokers):
                problem(f"{n}: --bootstrap is not every broker ({','.join(brokers)})")


def check_monitoring(services, claimed, stack_dir):
    """Prometheus: every job of prometheus.yml reads targets/<job>.yml, and the stack renders
    exactly those files from infrastructure/prometheus/targets-local/; every address in them
    (target, or the `exporter` of a multi-target job) is a port some service claims, and the
    service named by a target's `service` label exists."""
    prom = next((s for s in services.values() if s.get("kind") == "prometheus"), None)
    if not prom:
        return
    conf_file = next((f for f in prom.get("files") or [] if f["path"].endswith("/prometheus.yml")
                      and "/targets/" not in f["path"]), None)
    if not conf_file:
        problem("prometheus: no prometheus.yml among its files")
        return
    with open(os.path.join(stack_dir, conf_file["template"]), encoding="utf-8") as fh:
        conf = yaml.safe_load(fh)
    wanted = set()
    for job in conf.get("scrape_configs") or []:
        for sd in job.get("file_sd_configs") or []:
            wanted.update(sd.get("files") or [])
    for am in (conf.get("alerting") or {}).get("alertmanagers") or []:
        for sd in am.get("file_sd_configs") or []:
            wanted.update(sd.get("files") or [])
    conf_dir = os.path.dirname(conf_file["path"])
    rendered = {os.path.relpath(f["path"], conf_dir): f for f in prom["files"]
                if "/targets/" in f["path"]}
    for w in sorted(wanted - set(rendered)):
        problem(f"prometheus: prometheus.yml reads {w}, which the stack does not render")
    for r in sorted(set(rendered) - wanted):
        problem(f"prometheus: renders {r}, which no job of prometheus.yml reads")
    for rel, f in sorted(rendered.items()):
        with open(os.path.join(stack_dir, f["template"]), encoding="utf-8") as fh:
            groups = yaml.safe_load(fh) or []
        for g in groups:
            labels = g.get("labels") or {}
            addrs = list(g.get("targets") or [])
            if "exporter" in labels:
                addrs.append(labels["exporter"])
            for a in addrs:
                hostport = re.sub(r"^[a-z]+://", "", str(a)).split("/", 1)[0]
                port = int(hostport.rsplit(":", 1)[1])
                if port not in claimed:
                    problem(f"{f['template']}: {a} is no port of the stack")
            if labels.get("service") and labels["service"] not in services:
                problem(f"{f['template']}: service label {labels['service']} is no service")


def node_address(svc):
    """(address, pg port, REST port) of a Patroni node: loopback and its claimed ports, or, for a
    node in its own network namespace, the address and ports its probes use."""
    if svc.get("netns"):
        hc, sp = svc.get("healthcheck") or {}, svc.get("status_probe") or {}
        return hc.get("host", "?"), sp.get("port"), hc.get("port")
    pg_port, rest_port = svc["ports"]
    return "127.0.0.1", pg_port, rest_port


def check(path):
    del problems[:]
    stack_dir = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    secrets = set(doc.get("secrets") or [])
    services = doc["services"]
    used = set()
    claimed = {}
    rendered = {}

    for name, svc in services.items():
        for s in strings({k: v for k, v in svc.items() if k != "files"}):
            refs(s, f"{name}", secrets, used)
        texts = [" ".join(map(str, svc.get("command", [])))]
        for f in svc.get("files") or []:
            tpl = os.path.join(stack_dir, f["template"])
            if not os.path.isfile(tpl):
                problem(f"{name}: template {f['template']} is missing")
                continue
            with open(tpl, encoding="utf-8") as fh:
                text = fh.read()
            if f.get("expand", True):
                refs(text, f"{name}: {f['template']}", secrets, used)
            rendered[f["template"]] = text
            texts.append(text)
            dirs = svc.get("dirs") or []
            if not any(f["path"].startswith(d.rstrip("/") + "/") for d in dirs):
                problem(f"{name}: {f['path']} is not inside one of its dirs (owner would be wrong)")
        for port in svc.get("ports") or []:
            if port in claimed:
                problem(f"port {port} claimed by both {claimed[port]} and {name}")
            claimed[port] = name
            if not any(re.search(rf"(?<![0-9]){port}(?![0-9])", t) for t in texts):
                problem(f"{name}: claims port {port} but neither its command nor its files use it")
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep not in services:
                problem(f"{name}: depends_on unknown service {dep}")

    for name, svc in services.items():
        if svc.get("netns"):  # its probes reach ports inside its own namespace
            continue
        for key in ("healthcheck", "status_probe"):
            probe = svc.get(key)
            if probe and "port" in probe and probe["port"] not in claimed:
                problem(f"{name}: {key} port {probe['port']} is not claimed by any service")

    # dependency cycles
    state = {}

    def visit(n, chain):
        if state.get(n) == 1:
            problem("dependency cycle: " + " -> ".join(chain + [n]))
            return
        if state.get(n) == 2:
            return
        state[n] = 1
        deps = services[n].get("depends_on") or {}
        for d in deps if isinstance(deps, list) else deps.keys():
            if d in services:
                visit(d, chain + [n])
        state[n] = 2

    for n in services:
        visit(n, [])

    for s in secrets - used:
        problem(f"secret {s} is declared but never used")

    # Patroni nodes: identical apart from name, ports and paths
    nodes = {n: s for n, s in services.items() if s.get("kind") == "patroni"}
    norm = {}
    for n, s in nodes.items():
        addr, pg_port, rest_port = node_address(s)
        tpl = s["files"][0]["template"]
        text = rendered.get(tpl, "")
        if f"listen: {addr}:{pg_port}" not in text or f"listen: {addr}:{rest_port}" not in text:
            problem(f"{n}: {tpl} does not listen on {addr}:{pg_port}/{rest_port}")
        if not re.search(rf"^name: {re.escape(n)}$", text, re.M):
            problem(f"{n}: {tpl} member name is not {n}")
        # The supervisor's view of the node must match Patroni's: the leader key it releases
        # (namespace + scope + /leader, value = member name), the REST port of its liveness,
        # the etcd port, and the Patroni version installed by scripts/install-deps.sh.
        # A node in its own network namespace models a host whose supervisor dies with it:
        # no lock, no liveness (infrastructure/local/drill-netns.yml).
        scope = re.search(r"^scope: (\S+)$", text, re.M)
        ns = re.search(r"^namespace: (\S+)$", text, re.M)
        lock = s.get("lock") or {}
        if not (scope and ns):
            problem(f"{n}: {tpl} has no scope or namespace")
        elif s.get("netns"):
            if lock or s.get("liveness"):
                problem(f"{n}: a node in netns {s['netns']} has a lock or liveness check")
        elif lock.get("key") != ns.group(1).rstrip("/") + "/" + scope.group(1) + "/leader":
            problem(f"{n}: lock.key {lock.get('key')} is not Patroni's leader key "
                    f"{ns.group(1).rstrip('/')}/{scope.group(1)}/leader")
        if scope and ns and not s.get("netns"):
            failover = ns.group(1).rstrip("/") + "/" + scope.group(1) + "/failover"
            if lock.get("handover_key") != failover:
                problem(f"{n}: lock.handover_key {lock.get('handover_key')} is not Patroni's "
                        f"failover key {failover}")
        if not s.get("netns"):
            if lock.get("value") != n:
                problem(f"{n}: lock.value {lock.get('value')} is not the member name {n}")
            data_dir = re.search(r"^  data_dir: (\S+)$", text, re.M)
            if not data_dir or lock.get("pidfile") != data_dir.group(1) + "/postmaster.pid":
                problem(f"{n}: lock.pidfile {lock.get('pidfile')} is not the postmaster.pid in "
                        f"the data_dir of {tpl}")
            etcd = re.search(r"^etcd3:\n  hosts: 127\.0\.0\.1:(\d+)$", text, re.M)
            if not etcd or int(etcd.group(1)) != lock.get("port"):
                problem(f"{n}: lock.port {lock.get('port')} is not the etcd port of {tpl}")
            if (s.get("liveness") or {}).get("port") != rest_port:
                problem(f"{n}: liveness port is not the REST port {rest_port}")
        deps = open(os.path.join(os.path.dirname(path), "../../scripts/install-deps.sh")).read()
        ver = re.search(r"^PATRONI_VERSION=(\S+)$", deps, re.M).group(1)
        if f"/patroni-{ver}/bin/patroni" not in s["command"][0] or s.get("package") != f"pypi:patroni=={ver}":
            problem(f"{n}: command/package do not name Patroni {ver} (scripts/install-deps.sh)")
        req = open(os.path.join(os.path.dirname(path), "../patroni/requirements.txt")).read()
        if f"\npatroni=={ver} " not in req:
            problem(f"infrastructure/patroni/requirements.txt does not pin patroni=={ver}")
        t = "".join(l for l in text.splitlines(True) if not l.lstrip().startswith("#"))
        t = re.sub(rf"\b{re.escape(n)}\b", "NODE", t)
        t = re.sub(rf"\b({pg_port}|{rest_port})\b", "PORT", t)
        t = t.replace(addr, "ADDR") if addr != "127.0.0.1" else t
        norm[n] = t
    if len(set(norm.values())) > 1:
        problem("Patroni templates differ in more than name, ports and paths: " + ", ".join(norm))

    # HAProxy backends = Patroni nodes; PgBouncer -> HAProxy ports
    hap = next((s for s in services.values() if s.get("kind") == "haproxy"), None)
    if hap and nodes:
        text = rendered.get(hap["files"][0]["template"], "")
        backends = [b for b in re.split(r"^(?:backend|listen) ", text, flags=re.M)[1:]
                    if any(re.search(rf"^\s*server {re.escape(n)} ", b, re.M) for n in nodes)]
        for n, s in nodes.items():
            addr, pg_port, rest_port = node_address(s)
            want = rf"^\s*server {re.escape(n)} {re.escape(addr)}:{pg_port} maxconn \d+ check port {rest_port}$"
            for b in backends:
                if not re.search(want, b, re.M):
                    problem(f"haproxy: section {b.split()[0]} has no 'server {n} {addr}:{pg_port} "
                            f"... check port {rest_port}'")
        bouncer = next((s for s in services.values() if s.get("kind") == "pgbouncer"), None)
        if bouncer:
            btext = rendered.get(bouncer["files"][0]["template"], "")
            btext = "".join(l for l in btext.splitlines(True) if not l.lstrip().startswith(";"))
            for port in re.findall(r"host=127\.0\.0\.1 port=(\d+)", btext):
                if int(port) not in hap["ports"]:
                    problem(f"pgbouncer: database target port {port} is not an HAProxy port")

    check_kafka(services, rendered, os.path.dirname(os.path.abspath(path)))
    check_monitoring(services, claimed, os.path.dirname(os.path.abspath(path)))

    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if not problems:
        print(f"{path}: {len(services)} services, {len(claimed)} ports, "
              f"{len(secrets)} secrets: consistent")
    return 1 if problems else 0


def main():
    local = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "local")
    paths = sys.argv[1:] or sorted(os.path.normpath(os.path.join(local, f)) for f in os.listdir(local)
                                   if f.endswith(".yml"))
    return max(check(p) for p in paths)


if __name__ == "__main__":
    sys.exit(main())
