#!/usr/bin/env bash
# Mutated JSON bodies against every mutating and evaluating endpoint of a real rolloutd (rollout
# plans included) for a
# few seconds (Debian's python3 as the client): every reply must be a well-formed HTTP status
# below 500, and the daemon must stay up and exit 0 on SIGTERM (under ASan: no error, no leak).
# usage: test_rolloutd_fuzz.sh ROLLOUTD [SECONDS]
set -uo pipefail
ROLLOUTD=$1
secs=${2-8}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/test_rolloutd_lib.sh"

tmp=$(mktemp -d /tmp/ut-rolloutd-fuzz-XXXXXX)
trap 'rd_stop_all; rm -rf "$tmp"' EXIT
rd_start A "$tmp/a" || { t_done; exit 1; }
T=$(cat "$tmp/a/admin.token")
out=$(/usr/bin/python3 - "$RD_ADDR_A" "$T" "$secs" <<'PY'
import random, socket, sys, time
host, port = sys.argv[1].split(':'); tok = sys.argv[2]; secs = float(sys.argv[3])
random.seed(7)
seed = [b'{"key":"f1","type":"string","variants":{"control":"a","candidate":"b"},"rules":[{"attribute":"email","op":"regex","value":"@x\\\\.com$","variant":"candidate"},{"attribute":"v","op":"semver_gte","value":"1.2.3","exclude":true},{"op":"in_segment","segment":"s1","variant":"control"}],"environments":{"production":{"stage":"canary","canary":5,"partial":10}}}',
        b'{"key":"f1"}',
        b'{"env":"production","stage":"partial","percent":12.5}', b'{"env":"production","kill":true}',
        b'{"context":{"targetingKey":"u1","email":"a@x.com","v":"1.3.0","beta":true}}',
        b'{"key":"s1","conditions":[{"attribute":"beta","op":"eq","value":true}]}',
        b'{"name":"n","scope":"eval","env":"production"}',
        b'{"environment":"production","interval_s":1,"failure_limit":2,"no_data":"fail","steps":[{"stage":"shadow","percent":100,"duration_s":1,"analysis":[{"name":"sr","query":"max(up)","threshold":{"min":0.99,"max":1}}]},{"stage":"canary","percent":5},{"stage":"full"}]}']
paths = [('POST', '/api/v1/flags'), ('PUT', '/api/v1/flags/f1'), ('POST', '/api/v1/flags/f1/stage'),
         ('POST', '/api/v1/flags/f1/kill'), ('POST', '/ofrep/v1/evaluate/flags/f1'),
         ('POST', '/ofrep/v1/evaluate/flags'), ('POST', '/api/v1/segments'), ('PUT', '/api/v1/segments/s1'),
         ('POST', '/api/v1/tokens'), ('GET', '/api/v1/flags/f1/history?limit=5'),
         ('GET', '/v1/snapshot?env=production'), ('DELETE', '/api/v1/segments/s1'), ('DELETE', '/api/v1/flags/f1'),
         ('POST', '/api/v1/rollouts/f1'), ('POST', '/api/v1/rollouts/f1/pause'),
         ('POST', '/api/v1/rollouts/f1/resume'), ('POST', '/api/v1/rollouts/f1/abort'),
         ('GET', '/api/v1/rollouts'), ('GET', '/api/v1/rollouts/f1')]
def mutate(b):
    b = bytearray(b)
    for _ in range(random.randint(1, 6)):
        op = random.randint(0, 5); i = random.randint(0, max(0, len(b) - 1))
        if op == 0 and b: b[i] = random.randint(0, 255)
        elif op == 1: b[i:i] = bytes([random.choice(b'{}[]",:0123456789-.eE\\u\x00\xff')])
        elif op == 2 and b: del b[i:i + random.randint(1, 8)]
        elif op == 3 and b: b[i:i] = b[random.randint(0, len(b) - 1):][:20]
        elif op == 4: b[i:i] = b'[' * random.randint(1, 50)
        else: b[i:i] = random.choice([b'1e999', b'-0', b'0.0001', b'100.0005', b'"\\ud800"', b'null', b'true', b'"off"', b'"full"'])
    return bytes(b)
n, bad, codes = 0, 0, {}
end = time.time() + secs
while time.time() < end:
    m, p = random.choice(paths)
    body = mutate(random.choice(seed)) if random.random() < 0.9 else random.choice(seed)
    hdr = (f"{m} {p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\n"
           f"If-Match: \"{random.randint(1, 30)}\"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection((host, int(port)), timeout=10); s.sendall(hdr + body)
    resp = b''
    while True:
        d = s.recv(65536)
        if not d: break
        resp += d
    s.close(); n += 1
    c = resp[9:12].decode() if resp.startswith(b'HTTP/1.1 ') else 'none'
    codes[c] = codes.get(c, 0) + 1
    if c == 'none' or c >= '500': bad += 1
print(n, bad, ' '.join(f'{k}:{v}' for k, v in sorted(codes.items())))
PY
)
read -r n bad summary <<<"$out"
diag "$n requests: $summary"
ok "mutated requests were answered" test "${n:-0}" -gt 100
ok "no reply was a 5xx or malformed" test "${bad:-1}" -eq 0
ok "daemon still healthy" curl -sf -o /dev/null "http://$RD_ADDR_A/healthz"
kill -TERM "$RD_PID_A"
wait "$RD_PID_A"
ok "SIGTERM: exit 0 (clean under sanitizers)" test $? -eq 0
RD_PIDS=()
t_done
