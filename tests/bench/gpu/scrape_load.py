#!/usr/bin/python3
# Scrape load for tests/bench/gpu/bench.sh: CLIENTS keep-alive connections issue REQUESTS
# GET /metrics in total; prints "count p50_ms p99_ms p999_ms max_ms bytes req_per_s".
import http.client
import sys
import threading
import time

port, total, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lat = []
size = [0]
lock = threading.Lock()


def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    mine = []
    for _ in range(k):
        t = time.perf_counter()
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        mine.append(time.perf_counter() - t)
        assert r.status == 200
        assert r.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        size[0] = len(body)
    with lock:
        lat.extend(mine)


run(200)  # warm up
lat.clear()
threads = [threading.Thread(target=run, args=(total // clients,)) for _ in range(clients)]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - t0
lat.sort()


def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000


print("%d %.3f %.3f %.3f %.3f %d %.0f" % (len(lat), q(0.5), q(0.99), q(0.999), lat[-1] * 1000,
                                          size[0], len(lat) / wall))
