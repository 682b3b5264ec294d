#!/usr/bin/env bash
# Failover with real Celery (Debian python3-celery) and a real Redis broker: two gpu_agents
# ("server1", "server2") with two fake GPUs each run four Celery workers on one shared queue
# (task_acks_late + task_reject_on_worker_lost).  While server1's GPU 0 runs a task, a fail-now
# XID (79) is injected there: its worker is stopped, the task is redelivered to a healthy
# worker, and every submitted task completes exactly once, none lost.
# Usage: test_gpu_failover.sh GPU_AGENT FAKE_LIBNVML SOURCE_DIR
set -uo pipefail
AGENT=$1 FAKE=$2 SRC=$3
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's python3 has celery and redis; a pyenv one first on PATH may not

$PY -c 'import celery, redis' 2>/dev/null ||
    skip "$PY cannot import celery and redis (Debian packages python3-celery, python3-redis: scripts/install-deps.sh tests)"
need_cmd redis-server redis-server

tmp=$(mktemp -d /tmp/gpu-failover.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    [[ -n ${GPU_TEST_KEEP:-} ]] && echo "# kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

N=8           # tasks
TASK_SECS=4   # each "training step" takes this long
redis_port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
broker=redis://127.0.0.1:$redis_port/0
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
retry 10 redis-cli -p "$redis_port" ping >/dev/null || { echo "redis did not start"; exit 1; }
rcli() { redis-cli -p "$redis_port" "$@"; }

cat >"$tmp/tasks.py" <<'EOF'
import os
import time

import redis
from celery import Celery
from celery.signals import worker_ready

BROKER = os.environ["GPU_TEST_BROKER"]
app = Celery("gputest", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="training",
    # An hour: redelivery must come from the rejected task, not from an expired reservation.
    broker_transport_options={"visibility_timeout": 3600},
)
log = redis.Redis.from_url(BROKER)


@worker_ready.connect
def ready(sender=None, **kwargs):
    log.rpush("test:ready", sender.hostname)


@app.task(bind=True)
def train(self, n, seconds):
    who = "%s %s" % (self.request.hostname, os.environ.get("CUDA_VISIBLE_DEVICES"))
    log.rpush("test:started", "%d %s" % (n, who))
    time.sleep(seconds)
    log.rpush("test:done", "%d %s" % (n, who))
    return n
EOF

# One fake NVML state per server (server2's GPUs get other UUIDs).
base=$SRC/tests/fake_nvml/h200x2.state
cp "$base" "$tmp/server1.state"
sed 's/GPU-74c4c37d/GPU-22222222/; s/GPU-0b5a4f3e/GPU-33333333/' "$base" >"$tmp/server2.state"

ports=()
for s in server1 server2; do
    mkdir -p "$tmp/$s"
    cat >"$tmp/$s.yml" <<EOF
listen_address: 127.0.0.1:0
state_dir: $tmp/$s
hostname: $s
collect_interval: 250ms
worker:
  command: [$PY, -m, celery, -A, tasks, worker, -Q, training, -c, "1",
            --prefetch-multiplier, "1", -n, "gpu{index}@{host}", --without-gossip,
            --without-mingle, --without-heartbeat, -l, INFO]
  environment:
    GPU_TEST_BROKER: $broker
    PYTHONPATH: $tmp
  working_dir: $tmp
  stop_grace_period: 10s
EOF
    FAKE_NVML_STATE=$tmp/$s.state "$AGENT" --config.file "$tmp/$s.yml" --nvml.library "$FAKE" \
        >"$tmp/$s.log" 2>&1 &
    pids+=($!)
    retry 5 grep -q "listening on" "$tmp/$s.log" || { cat "$tmp/$s.log"; exit 1; }
    ports+=("$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/$s.log" | head -1)")
done
url1=http://127.0.0.1:${ports[0]}
url2=http://127.0.0.1:${ports[1]}

ok "four Celery workers (2 servers x 2 GPUs) come up" \
    retry 90 bash -c "[[ \$(redis-cli -p $redis_port llen test:ready) -eq 4 ]]"
diag "workers: $(rcli lrange test:ready 0 -1 | tr '\n' ' ')"

# Submit the tasks.
GPU_TEST_BROKER=$broker PYTHONPATH=$tmp $PY -c "
from tasks import train
for n in range($N):
    train.apply_async((n, $TASK_SECS), task_id='t%d' % n)
" || { echo "cannot submit"; exit 1; }

# Wait until server1's GPU 0 runs a task, then fail that GPU.
ok "server1's GPU 0 picks up a task" retry 30 bash -c "redis-cli -p $redis_port lrange test:started 0 -1 | grep -q 'gpu0@server1'"
victim=$(rcli lrange test:started 0 -1 | awk '/gpu0@server1/ { print $1; exit }')
diag "task $victim runs on gpu0@server1; injecting XID 79 there"
{ cat "$base"; echo "xid 1 0 79"; } >"$tmp/server1.state.new" && mv "$tmp/server1.state.new" "$tmp/server1.state"
t0=$(date +%s%N)
ok "server1 GPU 0 is drained" retry 5 bash -c "curl -sf $url1/metrics | grep -q '^gpu_drained{gpu=\"0\".* 1$'"
ok "... and its worker is stopped" retry 15 bash -c "curl -sf $url1/metrics | grep -q '^gpu_worker_state{gpu=\"0\".*state=\"stopped\"} 1$'"
diag "worker stopped $((($(date +%s%N) - t0) / 1000000)) ms after the XID"

ok "every task completes" retry 90 bash -c "[[ \$(redis-cli -p $redis_port lrange test:done 0 -1 | awk '{ print \$1 }' | sort -u | wc -l) -eq $N ]]"
sleep 2 # a duplicate delivery would show up here
done_list=$(rcli lrange test:done 0 -1)
started_list=$(rcli lrange test:started 0 -1)
diag "started:"
while read -r l; do diag "  $l"; done <<<"$started_list"
diag "done:"
while read -r l; do diag "  $l"; done <<<"$done_list"
ok "every task completed exactly once (none lost, none twice)" \
    test "$(awk '{ print $1 }' <<<"$done_list" | sort | uniq -c | awk '$1 == 1' | wc -l)" -eq "$N"
ok "the interrupted task was re-run to completion elsewhere" \
    bash -c "grep -q '^$victim ' <<<'$done_list' && ! grep -q '^$victim gpu0@server1' <<<'$done_list'"
ok "the interrupted task was started twice (on server1 GPU 0, then on a healthy GPU)" \
    test "$(grep -c "^$victim " <<<"$started_list")" -eq 2
ok "the failed GPU took no task after the drain" test "$(grep -c 'gpu0@server1' <<<"$started_list")" -eq 1
ok "each worker ran on its own GPU (CUDA_VISIBLE_DEVICES = that GPU's UUID)" \
    test "$(awk '{ print $2, $3 }' <<<"$started_list" | sort -u | tr '\n' ' ')" = \
    "$(awk '{ print $2, $3 }' <<<"$started_list" | sort -u | awk '
        /gpu0@server1 GPU-74c4c37d-/ || /gpu1@server1 GPU-0b5a4f3e-/ ||
        /gpu0@server2 GPU-22222222-/ || /gpu1@server2 GPU-33333333-/' | tr '\n' ' ')"
ok "server2 ran tasks too" grep -q "@server2" <<<"$done_list"
ok "server1 GPU 1 and server2's GPUs stay healthy" \
    bash -c "curl -sf $url1/metrics | grep -q '^gpu_healthy{gpu=\"1\".* 1$' && [[ \$(curl -sf $url2/metrics | grep -c '^gpu_healthy{.* 1$') -eq 2 ]]"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
ok "no sanitizer report in the agents' logs" bash -c "! grep -E 'Sanitizer|runtime error' $tmp/server1.log $tmp/server2.log"

t_done
