#!/usr/bin/python3
"""check-topology.py - infrastructure/topology.yml is the one source of truth for the
deployment's ports, cluster sizes, retention, memory limits and host sizes (and names
prometheus/thresholds.yml for the alert thresholds).  This compares every file that repeats one
of them and prints, for each disagreement, the file, the field and both values:

  local stack   local/stack.yml: each service's ports, the number of Patroni/Kafka/Redis/Sentinel/
                etcd services, Prometheus' retention flags, the Kafka heap; templates/: the Kafka
                nodes' voters, listeners, replication factor, min.insync.replicas, log retention,
                failure detection (session timeout, heartbeat, quorum fetch and election timeouts);
                Redis' maxmemory and port; each Sentinel's port, monitored primary and quorum;
                the Patroni nodes' etcd hosts
  compose       docker-compose*.yml: the services, every published port (all of a service's
                ports, published as themselves, or none where `published: false`), every
                HOST:PORT / listen address / port argument in a service's definition,
                mem_limit (production; docker-compose-test.yml: test), Prometheus' retention,
                the Kafka heap; compose/**: HOST:PORT, host=H port=P and `monitor NAME H P Q`
                in the configuration files and .env.example, the etcd members in Patroni's
                configuration,
                kafka.env's voters / RF / min.insync / retention / failure detection,
                redis.conf's maxmemory;
                .env.example's KAFKA_HEAP_OPTS
  Terraform     terraform/main.tf reads topology.yml (no port, count or placement of its own);
                variables.tf's instance types and volume sizes are the hosts'; every service
                placed once; the services of a host fit its memory
  Kafka topics  kafka/topics.yml: brokers per profile, replication factor, min.insync,
                retention.ms, production broker_storage within the Kafka hosts' volume
  Prometheus    targets-local/ and compose/prometheus/targets/: every target and exporter
                address is a port of the service its `service` label names; each cluster's
                target files list exactly its members; production retention covers the longest
                range in recording_rules.yml + 1 day; the thresholds (check-thresholds.py)
  Alertmanager  alertmanager.local.yml is generated from alertmanager.yml (make-local.py) and
                sends to the alert webhook's port

Usage: check-topology.py [--root DIR]   (DIR: a checkout; default: this script's)
Exit: 0 all agree, 1 disagreements (one per line), 2 usage error or unreadable topology.yml.
Needs Debian's python3-yaml (/usr/bin/python3).
"""
import glob
import importlib.util
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout

import yaml

from stackfacts import properties, strings

ENVS = ("local", "test", "production")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 3x faster
TOPO = "infrastructure/topology.yml"
UNITS = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30,
         "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}


def size_bytes(text):
    """Bytes of a docker / Redis / JVM size ("512m", "128gb", "2g"); None if not one."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?b?)", str(text).strip().lower())
    return int(float(m.group(1)) * UNITS.get(m.group(2) or "b", 1)) if m else None


def dur_s(text):
    m = re.fullmatch(r"(\d+)([smhdwy])", str(text))
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                              "y": 31536000}[m.group(2)] if m else None


class Check:
    def __init__(self, root):
        self.root = root
        self.errors = []
        self.checked = 0

    def path(self, rel):
        return os.path.join(self.root, rel)

    def err(self, rel, field, msg):
        self.errors.append(f"{rel}: {field}: {msg}")

    def same(self, rel, field, got, want, src):
        """One comparison: FILE: FIELD: is GOT, but topology.yml SRC is WANT."""
        self.checked += 1
        if got != want:
            self.err(rel, field, f"is {fmt(got)}, but {TOPO.split('/')[-1]} {src} is {fmt(want)}")

    def read(self, rel):
        try:
            with open(self.path(rel), encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            self.err(rel, "(file)", f"cannot read: {e.strerror}")
            return ""

    def yaml(self, rel):
        text = self.read(rel)
        try:
            return yaml.load(text, Loader=SAFE_LOADER) if text else None
        except yaml.YAMLError as e:
            self.err(rel, "(file)", f"not YAML: {e}")
            return None


def fmt(v):
    if isinstance(v, (set, frozenset)):
        return "{" + ", ".join(str(x) for x in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} {x}" for k, x in v.items()) + "}"
    return str(v)


# ================================================================= topology.yml

class Topology:
    def __init__(self, c, doc):
        self.c = c
        self.doc = doc
        self.services = doc.get("services") or {}
        self.clusters = doc.get("clusters") or {}
        self.hosts = doc.get("hosts") or {}

    def per_env(self, value, env):
        """A scalar is the same everywhere; a mapping is per environment (test: local's unless
        given)."""
        if isinstance(value, dict) and set(value) <= set(ENVS):
            if env in value:
                return value[env]
            if env == "test":
                return value.get("local")
            return None
        return value

    def in_env(self, name, env):
        return env in (self.services[name].get("environments") or ENVS)

    def local_name(self, name):
        return self.services[name].get("local", name)

    def by_local_name(self):
        return {self.local_name(n): n for n in self.services if self.in_env(n, "local")}

    def ports(self, name):
        return dict(self.services.get(name, {}).get("ports") or {})

    def port_set(self, name):
        return set(self.ports(name).values())

    def published(self, name):
        return self.services[name].get("published", True)

    def members(self, cluster, env):
        return list(self.per_env(self.clusters[cluster]["members"], env) or [])

    def member_port(self, member, key):
        return self.ports(member)[key]


def validate(c, doc):
    """Shape of topology.yml; returns False when checking the rest makes no sense."""
    ok = True

    def bad(field, msg):
        nonlocal ok
        ok = False
        c.err(TOPO, field, msg)

    if not isinstance(doc, dict):
        bad("(file)", "expected a mapping")
        return False
    for key in ("services", "clusters", "retention", "memory", "hosts"):
        if not isinstance(doc.get(key), dict):
            bad(key, "missing or not a mapping")
    if not ok:
        return False
    seen = {}
    for name, s in doc["services"].items():
        if not isinstance(s, dict) or not isinstance(s.get("ports"), dict):
            bad(f"services.{name}", "expected a mapping with ports")
            continue
        for env in s.get("environments") or ENVS:
            if env not in ENVS:
                bad(f"services.{name}.environments", f"unknown environment {env!r} ({', '.join(ENVS)})")
        for k, p in s["ports"].items():
            if not isinstance(p, int) or not 1 <= p <= 65535:
                bad(f"services.{name}.ports.{k}", f"not a port: {p!r}")
            elif p in seen:
                bad(f"services.{name}.ports.{k}", f"port {p} is also {seen[p]}")
            else:
                seen[p] = f"services.{name}.ports.{k}"
        mem = s.get("memory")
        vals = mem.values() if isinstance(mem, dict) else [mem]
        if any(v is not None and size_bytes(v) is None for v in vals):
            bad(f"services.{name}.memory", f"not a size: {mem!r}")
    for cl, d in doc["clusters"].items():
        if not isinstance(d, dict) or "members" not in d:
            bad(f"clusters.{cl}", "expected a mapping with members")
            continue
        mem = d["members"]
        for env, lst in (mem.items() if isinstance(mem, dict) else [(e, mem) for e in ENVS]):
            for m in lst or []:
                if m not in doc["services"]:
                    bad(f"clusters.{cl}.members", f"{m} is not a service")
    for role, h in doc["hosts"].items():
        for f in ("count", "instance_type", "memory_gib", "volume_gb", "services"):
            if f not in (h or {}):
                bad(f"hosts.{role}.{f}", "missing")
        if isinstance(h, dict) and isinstance(h.get("services"), list) and len(h["services"]) != h.get("count"):
            bad(f"hosts.{role}.services", f"{len(h['services'])} hosts' lists, but count is {h.get('count')}")
        for lst in (h or {}).get("services") or []:
            for n in lst:
                if n not in doc["services"]:
                    bad(f"hosts.{role}.services", f"{n} is not a service")
    return ok


# ================================================================= address scanning

ADDR_RE = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*[a-z0-9]):(\d{2,5})(?!\d)")


def scan_host_ports(c, t, rel, field, text, names, self_name=None):
    """Every NAME:PORT, host=NAME port=PORT and `monitor M NAME PORT` in text, where NAME is a
    service: PORT must be one of its ports."""
    hits = [(m.group(1), int(m.group(2))) for m in ADDR_RE.finditer(text)]
    hits += [(h, int(p)) for h, p in re.findall(r"host=([\w-]+)\s+port=(\d+)", text)]
    hits += [(h, int(p)) for h, p in re.findall(r"monitor\s+\S+\s+([\w-]+)\s+(\d+)", text)]
    for host, port in hits:
        if host in ("localhost",) and self_name:
            host = self_name
        if host not in names:
            continue
        c.checked += 1
        if port not in t.port_set(host):
            c.err(rel, field, f"{host}:{port}, but topology.yml services.{host}.ports are "
                              f"{fmt(t.ports(host))}")


# Listen addresses and port arguments in a compose service's own definition.
LISTEN_RES = [
    re.compile(r"(?:^|[=\s,/])(?:0\.0\.0\.0|127\.0\.0\.1|localhost)?:(\d{2,5})(?![\d.])"),
    re.compile(r"\.jar=(\d{2,5}):"),
    re.compile(r"/dev/tcp/127\.0\.0\.1/(\d{2,5})\b"),
    re.compile(r"(?:PLAINTEXT|CONTROLLER)://:(\d{2,5})"),
]


# ================================================================= local stack

def check_local(c, t):
    rel = "infrastructure/local/stack.yml"
    stack = c.yaml(rel) or {}
    svcs = stack.get("services") or {}
    by_local = t.by_local_name()
    for lname, s in svcs.items():
        ports = set(s.get("ports") or [])
        name = by_local.get(lname)
        if name is None:
            if ports:
                c.err(rel, f"services.{lname}.ports", f"{fmt(ports)}, but topology.yml has no service "
                                                     f"{lname} in environment local")
            continue
        c.same(rel, f"services.{lname}.ports", ports, t.port_set(name), f"services.{name}.ports")
    for lname, name in by_local.items():
        if lname not in svcs and t.ports(name) and name != "alert-webhook":
            c.err(rel, "services", f"has no {lname}, but topology.yml services.{name} runs locally")
    # cluster sizes by kind
    kinds = {"postgres": "patroni", "kafka": "kafka", "redis": "redis", "sentinel": "sentinel",
             "etcd": "etcd"}
    for cl, kind in kinds.items():
        got = sorted(n for n, s in svcs.items() if s.get("kind") == kind)
        want = sorted(t.local_name(m) for m in t.members(cl, "local"))
        c.same(rel, f"services of kind {kind}", got, want, f"clusters.{cl}.members (local)")
    # Prometheus retention
    cmd = " ".join(str(a) for a in (svcs.get("prometheus") or {}).get("command") or [])
    ret = t.per_env(t.doc["retention"]["prometheus"], "local") or {}
    for k in ("time", "size"):
        m = re.search(rf"--storage\.tsdb\.retention\.{k}=(\S+)", cmd)
        c.same(rel, f"services.prometheus.command --storage.tsdb.retention.{k}",
               m.group(1) if m else None, ret.get(k), f"retention.prometheus.local.{k}")
    # Kafka heap
    heap = t.per_env(t.doc["memory"]["kafka_heap"], "local")
    for n in t.members("kafka", "local"):
        cmd = [str(a) for a in (svcs.get(t.local_name(n)) or {}).get("command") or []]
        for flag in ("-Xms", "-Xmx"):
            got = next((a[4:] for a in cmd if a.startswith(flag)), None)
            c.same(rel, f"services.{n}.command {flag}", size_bytes(got) if got else None,
                   size_bytes(heap), f"memory.kafka_heap.local ({heap})")
    check_local_templates(c, t, svcs)


def stack_template(svcs, lname, suffix):
    for f in (svcs.get(lname) or {}).get("files") or []:
        if str(f.get("template", "")).endswith(suffix):
            return "infrastructure/local/" + os.path.normpath(f["template"])
    return None


# Kafka's failure detection: broker property, clusters.kafka key (local templates and kafka.env).
KAFKA_DETECTION = (("broker.session.timeout.ms", "broker_session_timeout_ms"),
                   ("broker.heartbeat.interval.ms", "broker_heartbeat_interval_ms"),
                   ("controller.quorum.fetch.timeout.ms", "controller_quorum_fetch_timeout_ms"),
                   ("controller.quorum.election.timeout.ms", "controller_quorum_election_timeout_ms"))


# Sentinel's failover timing: option of `sentinel <option> <master> <value>`, clusters.sentinel key.
SENTINEL_TUNING = (("down-after-milliseconds", "down_after_milliseconds"),
                   ("failover-timeout", "failover_timeout"),
                   ("parallel-syncs", "parallel_syncs"))


def sentinel_args(cmd):
    """{option: value} of the `--sentinel OPTION MASTER VALUE` arguments of a command line."""
    cmd = [str(a) for a in cmd or []]
    return {cmd[i + 1]: cmd[i + 3] for i in range(len(cmd) - 3) if cmd[i] == "--sentinel"}


def check_sentinel_commands(c, t, rel, svcs):
    """Every Sentinel of a local stack file applies the tuning on its command line: Sentinel
    rewrites sentinel.conf, so a template's lines would reach only a first start."""
    for lname, s in sorted(svcs.items()):
        if s.get("kind") != "sentinel":
            continue
        got = sentinel_args(s.get("command"))
        for opt, key in SENTINEL_TUNING:
            v = got.get(opt)
            c.same(rel, f"services.{lname}.command --sentinel {opt}", int(v) if v and v.isdigit() else v,
                   t.clusters["sentinel"][key], f"clusters.sentinel.{key}")
        tmpl = stack_template(svcs, lname, ".conf")
        text = c.read(tmpl) if tmpl else ""
        for opt, _ in SENTINEL_TUNING:
            c.checked += 1
            if re.search(rf"^sentinel {opt} ", text, re.M):
                c.err(tmpl, f"sentinel {opt}", "is set in the template, which reaches only a first start; "
                                               "the command line sets it (--sentinel)")


def check_local_templates(c, t, svcs):
    k = t.clusters["kafka"]
    members = t.members("kafka", "local")
    voters = ",".join(f"{i}@127.0.0.1:{t.member_port(m, 'controller')}" for i, m in enumerate(members, 1))
    for i, m in enumerate(members, 1):
        rel = stack_template(svcs, t.local_name(m), ".properties")
        if rel is None:
            c.err("infrastructure/local/stack.yml", f"services.{m}.files", "no server.properties template")
            continue
        p = properties(c.read(rel))
        c.same(rel, "controller.quorum.voters", p.get("controller.quorum.voters"), voters,
               "clusters.kafka.members and their controller ports")
        c.same(rel, "listeners", p.get("listeners"),
               f"PLAINTEXT://127.0.0.1:{t.member_port(m, 'client')},CONTROLLER://127.0.0.1:{t.member_port(m, 'controller')}",
               f"services.{m}.ports")
        for key, want, src in (("default.replication.factor", k["replication_factor"], "clusters.kafka.replication_factor"),
                               ("offsets.topic.replication.factor", k["replication_factor"], "clusters.kafka.replication_factor"),
                               ("transaction.state.log.replication.factor", k["replication_factor"], "clusters.kafka.replication_factor"),
                               ("min.insync.replicas", k["min_insync_replicas"], "clusters.kafka.min_insync_replicas"),
                               ("log.retention.ms", t.doc["retention"]["kafka_ms"], "retention.kafka_ms"),
                               *((prop, k[name], f"clusters.kafka.{name}") for prop, name in KAFKA_DETECTION)):
            got = p.get(key)
            c.same(rel, key, int(got) if got and got.isdigit() else got, want, src)
    maxmem = t.per_env(t.doc["memory"]["redis_maxmemory"], "local")
    for m in t.members("redis", "local"):
        rel = stack_template(svcs, t.local_name(m), ".conf")
        text = c.read(rel) if rel else ""
        got = re.search(r"^maxmemory\s+(\S+)", text, re.M)
        c.same(rel, "maxmemory", got.group(1) if got else None, maxmem, "memory.redis_maxmemory.local")
        got = re.search(r"^port\s+(\d+)", text, re.M)
        c.same(rel, "port", int(got.group(1)) if got else None, t.member_port(m, "redis"), f"services.{m}.ports.redis")
    primary = t.members("redis", "local")[0]
    for m in t.members("sentinel", "local"):
        rel = stack_template(svcs, t.local_name(m), ".conf")
        text = c.read(rel) if rel else ""
        got = re.search(r"^port\s+(\d+)", text, re.M)
        c.same(rel, "port", int(got.group(1)) if got else None, t.member_port(m, "sentinel"), f"services.{m}.ports.sentinel")
        mon = re.search(r"^sentinel monitor \S+ \S+ (\d+) (\d+)", text, re.M)
        c.same(rel, "sentinel monitor (port)", int(mon.group(1)) if mon else None,
               t.member_port(primary, "redis"), f"services.{primary}.ports.redis")
        c.same(rel, "sentinel monitor (quorum)", int(mon.group(2)) if mon else None,
               t.clusters["sentinel"]["quorum"], "clusters.sentinel.quorum")
    check_sentinel_commands(c, t, "infrastructure/local/stack.yml", svcs)
    rel = "infrastructure/local/drill-netns-redis.yml"
    check_sentinel_commands(c, t, rel, (c.yaml(rel) or {}).get("services") or {})
    etcd = ",".join(f"127.0.0.1:{t.member_port(m, 'client')}" for m in t.members("etcd", "local"))
    for m in t.members("postgres", "local"):
        rel = stack_template(svcs, t.local_name(m), f"{m}.yml")
        doc = c.yaml(rel) if rel else None
        got = ((doc or {}).get("etcd3") or {}).get("hosts")
        c.same(rel, "etcd3.hosts", ",".join(got) if isinstance(got, list) else got, etcd,
               "clusters.etcd.members (local) and their client ports")


# ================================================================= compose

COMPOSE_PARTS = ("docker-compose.yml", "docker-compose-timescale.yml", "docker-compose-kafka.yml",
                 "docker-compose-redis.yml", "docker-compose-monitoring.yml")
TEST_OVERLAY = "docker-compose-test.yml"


def check_compose(c, t):
    svc_file = {}
    services = {}
    for f in COMPOSE_PARTS:
        rel = f"infrastructure/{f}"
        for n, s in ((c.yaml(rel) or {}).get("services") or {}).items():
            svc_file[n] = rel
            services[n] = s
    names = {n for n in t.services if t.in_env(n, "production")}
    for n in sorted(set(services) - names):
        c.err(svc_file[n], f"services.{n}", "is no service of topology.yml (environment production)")
    for n in sorted(names - set(services) - {"alert-webhook"}):
        c.err("infrastructure/docker-compose*.yml", "services", f"no {n}, but topology.yml services.{n} runs in production")
    for n, s in sorted(services.items()):
        if n not in t.services:
            continue
        rel = svc_file[n]
        # published ports: all of them, as themselves; or none
        pub = set()
        for p in s.get("ports") or []:
            parts = str(p).split("/")[0].split(":")
            published, target = int(parts[-2] if len(parts) > 1 else parts[-1]), int(parts[-1])
            if published != target:
                c.err(rel, f"services.{n}.ports", f"publishes {target} as {published}; topology.yml "
                                                  f"ports are published as themselves")
            pub.add(target)
        want = t.port_set(n) if t.published(n) else set()
        c.same(rel, f"services.{n}.ports (published)", pub, want,
               f"services.{n}.ports" + ("" if t.published(n) else " (published: false)"))
        # listen addresses / port arguments in the service's own definition
        own = t.port_set(n)
        for field in ("command", "entrypoint", "environment", "healthcheck"):
            for text in strings(s.get(field)):
                scan_host_ports(c, t, rel, f"services.{n}.{field}", text, names, n)
                for rx in LISTEN_RES:
                    for p in rx.findall(text):
                        p = int(p)
                        if p < 1024 or p == 53:
                            continue
                        c.checked += 1
                        if p not in own:
                            c.err(rel, f"services.{n}.{field}", f"listens on or checks {p} ({text.strip()[:80]!r}), "
                                                                f"but topology.yml services.{n}.ports are {fmt(t.ports(n))}")
            # bare port arguments: ["sh", "entrypoint.sh", "6381", "redis1", "6380"]
            if isinstance(s.get(field), list) or (field == "healthcheck" and isinstance((s.get(field) or {}).get("test"), list)):
                args = s[field] if field != "healthcheck" else s[field]["test"]
                allowed = own | {p for a in args if isinstance(a, str) and a in t.services for p in t.port_set(a)}
                for a in args:
                    if isinstance(a, (str, int)) and re.fullmatch(r"\d{4,5}", str(a)):
                        c.checked += 1
                        if int(a) not in allowed:
                            c.err(rel, f"services.{n}.{field}", f"port argument {a}, but topology.yml "
                                                                f"services.{n}.ports are {fmt(t.ports(n))}")
        # memory
        c.same(rel, f"services.{n}.mem_limit", size_bytes(s.get("mem_limit")) if s.get("mem_limit") else None,
               size_bytes(t.per_env(t.services[n].get("memory"), "production")),
               f"services.{n}.memory (production: {t.per_env(t.services[n].get('memory'), 'production')})")
    # the test overlay: test memory, retention, heap, maxmemory
    rel = f"infrastructure/{TEST_OVERLAY}"
    test = (c.yaml(rel) or {}).get("services") or {}
    for n, s in services.items():
        if n not in t.services:
            continue
        mem = t.per_env(t.services[n].get("memory"), "test")
        got = (test.get(n) or {}).get("mem_limit") or s.get("mem_limit")
        c.same(rel, f"services.{n}.mem_limit", size_bytes(got) if got else None, size_bytes(mem),
               f"services.{n}.memory (test: {mem})")
    check_compose_settings(c, t, services, svc_file, test)
    check_compose_configs(c, t, names)
    return services


def prom_retention(c, t, rel, cmd, env):
    want = t.per_env(t.doc["retention"]["prometheus"], env) or {}
    text = " ".join(str(a) for a in cmd or [])
    for k in ("time", "size"):
        m = re.search(rf"--storage\.tsdb\.retention\.{k}=(\S+)", text)
        c.same(rel, f"services.prometheus.command --storage.tsdb.retention.{k}",
               m.group(1) if m else None, want.get(k), f"retention.prometheus.{env}" + ("" if env != "test" or "test" in t.doc["retention"]["prometheus"] else " (test: local's)") + f".{k}")


def heap_of(opts):
    m = re.search(r"-Xmx(\S+)", str(opts or ""))
    return size_bytes(m.group(1)) if m else None


def check_compose_settings(c, t, services, svc_file, test):
    prom = services.get("prometheus") or {}
    prom_retention(c, t, svc_file.get("prometheus", "?"), prom.get("command"), "production")
    tprom = (test.get("prometheus") or {}).get("command") or prom.get("command")
    prom_retention(c, t, f"infrastructure/{TEST_OVERLAY}", tprom, "test")
    # Kafka heap: the compose default, .env.example, the test overlay
    prod_heap = t.per_env(t.doc["memory"]["kafka_heap"], "production")
    test_heap = t.per_env(t.doc["memory"]["kafka_heap"], "test")
    for m in t.members("kafka", "production"):
        env = (services.get(m) or {}).get("environment") or {}
        opts = re.sub(r"^\$\{KAFKA_HEAP_OPTS:-(.*)\}$", r"\1", str(env.get("KAFKA_HEAP_OPTS", "")))
        c.same(svc_file.get(m, "?"), f"services.{m}.environment.KAFKA_HEAP_OPTS (-Xmx)", heap_of(opts),
               size_bytes(prod_heap), f"memory.kafka_heap.production ({prod_heap})")
        topts = ((test.get(m) or {}).get("environment") or {}).get("KAFKA_HEAP_OPTS")
        c.same(f"infrastructure/{TEST_OVERLAY}", f"services.{m}.environment.KAFKA_HEAP_OPTS (-Xmx)",
               heap_of(topts), size_bytes(test_heap), f"memory.kafka_heap.test ({test_heap})")
    envx = "infrastructure/.env.example"
    m = re.search(r"^KAFKA_HEAP_OPTS=(.*)$", c.read(envx), re.M)
    c.same(envx, "KAFKA_HEAP_OPTS (-Xmx)", heap_of(m.group(1)) if m else None, size_bytes(prod_heap),
           f"memory.kafka_heap.production ({prod_heap})")
    # Redis maxmemory: production in redis.conf, test through REDIS_MAXMEMORY
    rel = "infrastructure/compose/redis/redis.conf"
    m = re.search(r"^maxmemory\s+(\S+)", c.read(rel), re.M)
    want = t.per_env(t.doc["memory"]["redis_maxmemory"], "production")
    c.same(rel, "maxmemory", m.group(1) if m else None, want, "memory.redis_maxmemory.production")
    want = t.per_env(t.doc["memory"]["redis_maxmemory"], "test")
    for r in t.members("redis", "test"):
        got = ((test.get(r) or {}).get("environment") or {}).get("REDIS_MAXMEMORY")
        c.same(f"infrastructure/{TEST_OVERLAY}", f"services.{r}.environment.REDIS_MAXMEMORY", got, want,
               "memory.redis_maxmemory.test (local's)")
    # cluster sizes in compose: the services exist
    for cl in t.clusters:
        for m in t.members(cl, "production"):
            if m not in services:
                c.err("infrastructure/docker-compose*.yml", "services", f"no {m}, a member of topology.yml clusters.{cl}")


def check_compose_configs(c, t, names):
    base = c.path("infrastructure/compose")
    extra = [c.path("infrastructure/.env.example")]  # Grafana's datasource URLs, ...
    for path in sorted(glob.glob(os.path.join(base, "**", "*"), recursive=True)) + extra:
        if os.path.isdir(path) or "/prometheus/targets/" in path:
            continue
        rel = os.path.relpath(path, c.root)
        text = c.read(rel)
        body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith(("#", ";")))
        scan_host_ports(c, t, rel, "(addresses)", body, names)
    k = t.clusters["kafka"]
    rel = "infrastructure/compose/kafka/kafka.env"
    p = properties(c.read(rel))
    members = t.members("kafka", "production")
    voters = ",".join(f"{i}@{m}:{t.member_port(m, 'controller')}" for i, m in enumerate(members, 1))
    c.same(rel, "KAFKA_CONTROLLER_QUORUM_VOTERS", p.get("KAFKA_CONTROLLER_QUORUM_VOTERS"), voters,
           "clusters.kafka.members and their controller ports")
    for key, want, src in (("KAFKA_DEFAULT_REPLICATION_FACTOR", k["replication_factor"], "clusters.kafka.replication_factor"),
                           ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", k["replication_factor"], "clusters.kafka.replication_factor"),
                           ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", k["replication_factor"], "clusters.kafka.replication_factor"),
                           ("KAFKA_MIN_INSYNC_REPLICAS", k["min_insync_replicas"], "clusters.kafka.min_insync_replicas"),
                           ("KAFKA_LOG_RETENTION_MS", t.doc["retention"]["kafka_ms"], "retention.kafka_ms"),
                           *(("KAFKA_" + prop.upper().replace(".", "_"), k[name], f"clusters.kafka.{name}")
                             for prop, name in KAFKA_DETECTION)):
        got = p.get(key)
        c.same(rel, key, int(got) if got and got.isdigit() else got, want, src)
    rel = "infrastructure/compose/redis/sentinel.conf"
    mon = re.search(r"^sentinel monitor \S+ (\S+) (\d+) (\d+)", c.read(rel), re.M)
    primary = t.members("redis", "production")[0]
    c.same(rel, "sentinel monitor (primary)", f"{mon.group(1)}:{mon.group(2)}" if mon else None,
           f"{primary}:{t.member_port(primary, 'redis')}", "clusters.redis.members[0] and its port")
    c.same(rel, "sentinel monitor (quorum)", int(mon.group(3)) if mon else None,
           t.clusters["sentinel"]["quorum"], "clusters.sentinel.quorum")
    for opt, key in SENTINEL_TUNING:
        got = re.search(rf"^sentinel {opt} \S+ (\S+)", c.read(rel), re.M)
        c.same(rel, f"sentinel {opt}", int(got.group(1)) if got and got.group(1).isdigit() else None,
               t.clusters["sentinel"][key], f"clusters.sentinel.{key}")
    rel = "infrastructure/compose/patroni/patroni.yml"
    got = ((c.yaml(rel) or {}).get("etcd3") or {}).get("hosts")
    want = ",".join(f"{m}:{t.member_port(m, 'client')}" for m in t.members("etcd", "production"))
    c.same(rel, "etcd3.hosts", ",".join(got) if isinstance(got, list) else got, want,
           "clusters.etcd.members (production) and their client ports")


# ================================================================= Terraform

def tf_defaults(text):
    out = {}
    for m in re.finditer(r'^variable "(\w+)" \{\n(.*?)^\}', text, re.S | re.M):
        d = re.search(r"^\s+default\s+=\s+(.+)$", m.group(2), re.M)
        if d:
            v = d.group(1).strip().strip('"')
            out[m.group(1)] = int(v) if v.isdigit() else v
    return out


def check_terraform(c, t, services):
    rel = "infrastructure/terraform/main.tf"
    main = c.read(rel)
    if not re.search(r'yamldecode\(file\("\$\{path\.module\}/\.\./topology\.yml"\)\)', main):
        c.err(rel, "locals.topology", 'does not read topology.yml (yamldecode(file("${path.module}/../topology.yml")))')
    m = re.search(r"^locals \{\n(.*?)^\}", main, re.S | re.M)
    block = m.group(1) if m else ""
    # No port, count or placement of its own: numbers in the locals are CIDR arithmetic, host
    # offsets, the SSH port and the gp3 baseline IOPS only.
    for ln, line in enumerate(block.splitlines(), 2):
        code = line.split("#", 1)[0]
        for num in re.findall(r"(?<![\w.\"/-])(\d{3,5})(?![\w.\"])", code):
            if int(num) not in (3000,):
                c.err(rel, f"locals (line {ln + main[:m.start()].count(chr(10))})",
                      f"number {num} written in Terraform; ports, counts and placement come from topology.yml")
    rel = "infrastructure/terraform/variables.tf"
    d = tf_defaults(c.read(rel))
    for role, h in t.hosts.items():
        c.same(rel, f"variable {role}_instance_type default", d.get(f"{role}_instance_type"),
               h["instance_type"], f"hosts.{role}.instance_type")
        if f"{role}_volume_size_gb" in d or h["volume_gb"] and role != "redis":
            c.same(rel, f"variable {role}_volume_size_gb default", d.get(f"{role}_volume_size_gb"),
                   h["volume_gb"], f"hosts.{role}.volume_gb")
    # placement: every production service with ports once (node-exporter: every host)
    placed = {}
    for role, h in t.hosts.items():
        for i, lst in enumerate(h["services"]):
            total = 0
            for n in list(lst) + ["node-exporter"] * bool(h["compose_parts"]):
                if n != "node-exporter":
                    if n in placed:
                        c.err(TOPO, f"hosts.{role}.services", f"{n} is placed twice ({placed[n]} and {role} host {i + 1})")
                    placed[n] = f"{role} host {i + 1}"
                total += size_bytes(t.per_env(t.services[n].get("memory"), "production") or "0")
            gib = total / (1 << 30)
            c.checked += 1
            if gib > h["memory_gib"]:
                c.err(TOPO, f"hosts.{role}.memory_gib",
                      f"{role} host {i + 1}'s services need {gib:g} GiB (services.*.memory, production), "
                      f"but hosts.{role}.memory_gib is {h['memory_gib']}")
        for n in h.get("systemd") or []:
            placed[n] = f"{role} (systemd)"
    one_shots = {n for n in t.services if not t.ports(n)}
    for n in sorted(t.services):
        if t.in_env(n, "production") and n not in placed and n not in one_shots and n != "node-exporter":
            c.err(TOPO, "hosts", f"{n} runs on no production host")
    # Kafka topics: brokers per profile, RF, min.insync, retention, storage
    rel = "infrastructure/kafka/topics.yml"
    topics = c.yaml(rel) or {}
    k = t.clusters["kafka"]
    for prof, env in (("local", "local"), ("production", "production")):
        got = ((topics.get("profiles") or {}).get(prof) or {}).get("brokers")
        c.same(rel, f"profiles.{prof}.brokers", got, len(t.members("kafka", env)), f"clusters.kafka.members ({env})")
    dflt = topics.get("defaults") or {}
    c.same(rel, "defaults.replication_factor", dflt.get("replication_factor"), k["replication_factor"],
           "clusters.kafka.replication_factor")
    cfg = dflt.get("configs") or {}
    c.same(rel, "defaults.configs.min.insync.replicas", int(cfg.get("min.insync.replicas", -1)),
           k["min_insync_replicas"], "clusters.kafka.min_insync_replicas")
    c.same(rel, "defaults.configs.retention.ms", int(cfg.get("retention.ms", -1)), t.doc["retention"]["kafka_ms"],
           "retention.kafka_ms")
    storage = size_bytes(((topics.get("profiles") or {}).get("production") or {}).get("broker_storage", "0").replace("iB", ""))
    vol = t.hosts["kafka"]["volume_gb"] * 10**9
    c.checked += 1
    if storage is None or storage > vol:
        c.err(rel, "profiles.production.broker_storage", f"is more than a Kafka host's volume: "
                                                         f"topology.yml hosts.kafka.volume_gb is {t.hosts['kafka']['volume_gb']} GB")


# ================================================================= Prometheus, Alertmanager

def check_targets(c, t, env, rel_dir, names):
    for path in sorted(glob.glob(c.path(f"{rel_dir}/*.yml"))):
        rel = os.path.relpath(path, c.root)
        fname = os.path.basename(path)
        groups = c.yaml(rel) or []
        seen = []
        for g in groups:
            labels = g.get("labels") or {}
            svc = labels.get("service")
            for tgt in g.get("targets") or []:
                addr = re.sub(r"^[a-z]+://", "", str(tgt)).split("/")[0]
                host, _, port = addr.rpartition(":")
                if svc in names:
                    seen.append(names[svc])
                # compose: the host is the service scraped (the program, or its exporter);
                # local: 127.0.0.1, the port the labelled service's or an exporter's
                owner = names.get(host) if env != "local" else names.get(svc)
                if owner is None:
                    continue
                ok_ports = t.port_set(owner)
                if env == "local":
                    ok_ports |= {p for n in t.services if "-exporter" in n and t.in_env(n, env)
                                 for p in t.port_set(n)}
                c.checked += 1
                if not port.isdigit() or int(port) not in ok_ports:
                    c.err(rel, f"target {tgt} (service {svc})", f"port {port}, but topology.yml "
                                                                f"services.{owner}.ports are {fmt(t.ports(owner))}")
            exp = labels.get("exporter")
            if exp:
                host, _, port = str(exp).rpartition(":")
                ename = names.get(host) or next((n for n in t.services if t.in_env(n, env) and host in ("127.0.0.1",)
                                                 and port.isdigit() and int(port) in t.port_set(n)), None)
                c.checked += 1
                if ename is None or int(port) not in t.port_set(ename):
                    c.err(rel, f"exporter label {exp}", "is no port of an exporter in topology.yml")
        for cl, d in t.clusters.items():
            if fname in (d.get("targets") or []):
                want = sorted(t.members(cl, env))
                got = sorted(seen)
                c.same(rel, "targets (by service label)", got, want, f"clusters.{cl}.members ({env})")


def check_prometheus(c, t):
    local_names = t.by_local_name()
    check_targets(c, t, "local", "infrastructure/prometheus/targets-local", local_names)
    prod = {n: n for n in t.services if t.in_env(n, "production")}
    check_targets(c, t, "production", "infrastructure/compose/prometheus/targets", prod)
    # production retention covers the longest rule range + 1 day
    rules = c.read("infrastructure/prometheus/recording_rules.yml") + c.read("infrastructure/prometheus/alerts.yml")
    longest = max([dur_s(r) or 0 for r in re.findall(r"\[(\d+[smhdwy])(?::[^\]]*)?\]", rules)] + [0])
    ret = (t.per_env(t.doc["retention"]["prometheus"], "production") or {}).get("time")
    c.checked += 1
    if dur_s(ret) is None or dur_s(ret) < longest + 86400:
        c.err(TOPO, "retention.prometheus.production.time", f"is {ret}, but the rules use a {longest // 86400}-day "
                                                            f"range: at least {longest // 86400 + 1}d is needed")
    # thresholds: check-thresholds.py on the same tree
    spec = importlib.util.spec_from_file_location("check_thresholds", c.path("infrastructure/scripts/check-thresholds.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = io.StringIO()
    with redirect_stdout(out):
        rc = mod.main(["--root", c.root])
    c.checked += 1
    if rc != 0:
        for line in out.getvalue().splitlines():
            if not line.startswith("check-thresholds:"):
                c.errors.append(f"{line} (thresholds: infrastructure/{t.doc.get('thresholds')})")


def check_alertmanager(c, t):
    rel = "infrastructure/alertmanager/alertmanager.local.yml"
    text = c.read(rel)
    for port in re.findall(r"url:\s*http://127\.0\.0\.1:(\d+)/", text):
        c.same(rel, "receivers[].webhook_configs[].url (port)", int(port), t.member_port("alert-webhook", "http"),
               "services.alert-webhook.ports.http")
    r = subprocess.run([sys.executable, c.path("infrastructure/alertmanager/make-local.py"), "--check",
                        "--webhook-url", f"http://127.0.0.1:{t.member_port('alert-webhook', 'http')}/alerts",
                        c.path("infrastructure/alertmanager/alertmanager.yml"), c.path(rel)],
                       capture_output=True, text=True)
    c.checked += 1
    if r.returncode != 0:
        c.err(rel, "(whole file)", "is not what make-local.py writes from alertmanager.yml: "
                                   + (r.stdout + r.stderr).strip().splitlines()[-1:][0] if (r.stdout + r.stderr).strip() else "differs")


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--root" and args:
            root = os.path.abspath(args.pop(0))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print("usage: check-topology.py [--root DIR]", file=sys.stderr)
            return 2
    c = Check(root)
    doc = c.yaml(TOPO)
    if doc is None or not validate(c, doc):
        for e in c.errors:
            print(e)
        return 2
    t = Topology(c, doc)
    check_local(c, t)
    services = check_compose(c, t)
    check_terraform(c, t, services)
    check_prometheus(c, t)
    check_alertmanager(c, t)
    for e in c.errors:
        print(e)
    if c.errors:
        print(f"check-topology: {len(c.errors)} disagreement(s) with {TOPO}")
        return 1
    print(f"check-topology: {c.checked} values in the local stack, compose, Terraform, Kafka topics, "
          f"Prometheus and Alertmanager agree with {TOPO}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
