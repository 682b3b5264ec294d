#!/usr/bin/python3
"""The rules of the production compose deployment (docs/deploy-compose.md), checked on the
configuration docker-compose merged (`config` output: every file, profile gpu):

  check_config.py SOURCE_DIR ALL.yml TEST.yml

ALL.yml is the production set, TEST.yml the same with docker-compose-test.yml.  Prints one
line per violation and exits 1 when there is any."""
import os
import re
import sys

import yaml

src, all_path, test_path = sys.argv[1:4]
cfg = yaml.safe_load(open(all_path))
test = yaml.safe_load(open(test_path))
stack = yaml.safe_load(open(f"{src}/infrastructure/local/stack.yml"))
services = cfg["services"]
errors = []


def err(msg):
    errors.append(msg)


ONE_SHOTS = {"pg-init", "kafka-topics"}
STATEFUL = {"etcd1", "etcd2", "etcd3", "pg1", "pg2", "pg3", "kafka1", "kafka2", "kafka3", "redis1", "redis2",
            "sentinel1", "sentinel2", "sentinel3", "prometheus", "alertmanager", "grafana",
            "rolloutd"}
EXPECTED = STATEFUL | ONE_SHOTS | {
    "haproxy", "pgbouncer", "node-exporter", "postgres-exporter1", "postgres-exporter2",
    "postgres-exporter3", "redis-exporter", "pgbouncer-exporter", "blackbox-exporter",
    "kafka-exporter", "gpu-agent"}

for name in sorted(EXPECTED - set(services)):
    err(f"{name}: service missing")

for name, s in sorted(services.items()):
    image = s.get("image", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
    if not tag or tag == "latest":
        err(f"{name}: image {image!r} is not pinned to a tag")
    if name not in ONE_SHOTS and "healthcheck" not in s:
        err(f"{name}: no healthcheck")
    if "mem_limit" not in s:
        err(f"{name}: no mem_limit")
    if "cpus" not in s:
        err(f"{name}: no cpus limit")
    want_restart = "on-failure" if name in ONE_SHOTS else "unless-stopped"
    if s.get("restart") != want_restart:
        err(f"{name}: restart is {s.get('restart')!r}, expected {want_restart}")
    # depends_on: conditions only, and they make sense for the target
    for dep, cond in (s.get("depends_on") or {}).items():
        c = (cond or {}).get("condition")
        target = services.get(dep, {})
        if c == "service_healthy" and "healthcheck" not in target:
            err(f"{name}: depends on {dep} being healthy, but {dep} has no healthcheck")
        if c == "service_completed_successfully" and dep not in ONE_SHOTS:
            err(f"{name}: waits for {dep} to complete, but {dep} is not a one-shot")
    # volumes: bind sources exist (the host's / for node-exporter aside); state on named volumes
    # (docker-compose 1.29 prints the short syntax, SOURCE:TARGET:MODE, bind sources absolute)
    named = False
    for v in s.get("volumes") or []:
        source = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
        if not source.startswith("/"):
            named = True
            if source not in (cfg.get("volumes") or {}):
                err(f"{name}: volume {source} is not declared")
        elif source != "/" and not os.path.exists(source):
            err(f"{name}: bind mount source {source} does not exist")
    if name in STATEFUL and not named:
        err(f"{name}: keeps state but mounts no named volume")
    # secrets: declared at the top level (docker-compose 1.29 does not check references)
    for sec in s.get("secrets") or []:
        ref = sec if isinstance(sec, str) else sec.get("source")
        if ref not in (cfg.get("secrets") or {}):
            err(f"{name}: secret {ref} is not declared")
    # no secret values in the environment (secrets are files: *_FILE variables, /run/secrets)
    for k, v in (s.get("environment") or {}).items():
        if re.search(r"PASSWORD|SECRET|TOKEN|PASSWD", k) and not k.endswith("_FILE") and v:
            err(f"{name}: environment {k} carries a secret value (use a compose secret)")
    # published ports are the local stack's ports of the same service (one list of ports)
    st = stack["services"].get(name)
    for p in s.get("ports") or []:
        if isinstance(p, str):  # [ADDRESS:]PUBLISHED:TARGET[/PROTO]
            parts = p.split("/")[0].split(":")
            published, target = int(parts[-2]), int(parts[-1])
        else:
            published, target = int(p["published"]), int(p["target"])
        if st is not None and target not in st.get("ports", []):
            err(f"{name}: publishes {target}, not one of the local stack's ports {st.get('ports')}")
        if published != target:
            err(f"{name}: publishes {target} as {published} (keep the ports equal)")


def env(name):
    return services.get(name, {}).get("environment") or {}


# Prometheus: retention of at least 31 days (the 30-day SLO windows, docs/alerts.md)
cmd = " ".join(services.get("prometheus", {}).get("command") or [])
m = re.search(r"--storage\.tsdb\.retention\.time=(\d+)([dwy])", cmd)
days = int(m.group(1)) * {"d": 1, "w": 7, "y": 365}[m.group(2)] if m else 0
if days < 31:
    err(f"prometheus: retention {m.group(0) if m else 'unset'}: the 30-day SLO needs >= 31d")

# Kafka: KRaft combined, 3 voters, RF 2, min.insync 1, unclean off, 7 days (docs/kafka.md)
KAFKA = {"KAFKA_PROCESS_ROLES": "broker,controller",
         "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka1:19092,2@kafka2:19093,3@kafka3:19094",
         "KAFKA_DEFAULT_REPLICATION_FACTOR": "2", "KAFKA_MIN_INSYNC_REPLICAS": "1",
         "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE": "false", "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
         "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "2", "KAFKA_LOG_RETENTION_MS": "604800000"}
for i in (1, 2, 3):
    e = env(f"kafka{i}")
    for k, want in KAFKA.items():
        if str(e.get(k)) != want:
            err(f"kafka{i}: {k}={e.get(k)!r}, expected {want}")
    if str(e.get("KAFKA_NODE_ID")) != str(i):
        err(f"kafka{i}: KAFKA_NODE_ID={e.get('KAFKA_NODE_ID')!r}")
    if f"=70{70 + i}:" not in e.get("KAFKA_OPTS", ""):
        err(f"kafka{i}: the JMX agent is not on port {7070 + i}")
kt = " ".join(services.get("kafka-topics", {}).get("command") or [])
if "--profile=production" not in kt or "--topics=/etc/ultrathink/topics.yml" not in kt:
    err("kafka-topics: does not apply topics.yml with profile production")

# Redis: 128gb allkeys-lru, AOF + RDB (compose/redis/redis.conf)
rconf = open(f"{src}/infrastructure/compose/redis/redis.conf").read()
for line in ("maxmemory 128gb", "maxmemory-policy allkeys-lru", "appendonly yes", "save 3600 1"):
    if not re.search(rf"^{re.escape(line)}", rconf, re.M):
        err(f"compose/redis/redis.conf: missing '{line}'")
sconf = open(f"{src}/infrastructure/compose/redis/sentinel.conf").read()
if "sentinel monitor mymaster redis1 6380 2" not in sconf:
    err("compose/redis/sentinel.conf: not monitoring redis1:6380 with quorum 2")

# PgBouncer: max 500 clients, through HAProxy
pconf = open(f"{src}/infrastructure/compose/pgbouncer/pgbouncer.ini").read()
if not re.search(r"^max_client_conn = 500$", pconf, re.M):
    err("compose/pgbouncer/pgbouncer.ini: max_client_conn is not 500")

# gpu_agent: GPU hosts only, NVIDIA runtime, port 9842
g = services.get("gpu-agent", {})
if g.get("profiles") != ["gpu"] or g.get("runtime") != "nvidia":
    err("gpu-agent: must be in profile gpu only and use the nvidia runtime")
if "--web.listen-address=:9842" not in (g.get("command") or []):
    err("gpu-agent: not listening on 9842")

# Grafana: provisioning and dashboards of infrastructure/grafana, datasource URLs set
ge = env("grafana")
for k in ("PROMETHEUS_URL", "ALERTMANAGER_URL"):
    if not ge.get(k):
        err(f"grafana: {k} unset (provisioning/datasources/datasources.yml expands it)")

# docker-compose-test.yml changes sizes only
SIZE_KEYS = {"mem_limit", "cpus", "shm_size"}
SIZE_ENV = {"KAFKA_HEAP_OPTS", "REDIS_MAXMEMORY"}
if set(test["services"]) != set(services):
    err("docker-compose-test.yml adds or removes services")
for name, s in services.items():
    t = test["services"].get(name, {})
    for k in set(s) | set(t):
        if k in SIZE_KEYS or s.get(k) == t.get(k):
            continue
        if k == "environment":
            a, b = s.get(k) or {}, t.get(k) or {}
            diff = {x for x in set(a) | set(b) if a.get(x) != b.get(x)}
            if diff - SIZE_ENV:
                err(f"docker-compose-test.yml: {name} environment changes {sorted(diff - SIZE_ENV)}")
        elif k == "command" and name == "prometheus":
            strip = lambda c: [a for a in c if not a.startswith("--storage.tsdb.retention")]
            if strip(s[k]) != strip(t[k]):
                err("docker-compose-test.yml: prometheus command changes more than retention")
        else:
            err(f"docker-compose-test.yml: {name}.{k} changes (sizes only)")

for e in errors:
    print(f"# {e}")
sys.exit(1 if errors else 0)
