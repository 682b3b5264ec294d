"""promrun.py - a throw-away Prometheus server for the monitoring tests, and TAP helpers.

Prometheus runs from Debian's /usr/bin/prometheus on 127.0.0.1 and a free port (asked of the
kernel, then handed to Prometheus: nothing else binds it in between in practice), with its data
in a temporary directory that is removed afterwards.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def ok(self, cond, desc, detail=None):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {desc}")
        if not cond:
            self.failed += 1
            if detail:
                for line in str(detail).splitlines()[:40]:
                    print(f"# {line}")
        return cond

    def diag(self, msg):
        for line in str(msg).splitlines():
            print(f"# {line}")

    def done(self):
        print(f"1..{self.n}")
        print(f"{self.n - self.failed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.n > 0 else 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prometheus:
    """Prometheus on a config file (its directory holds what it references); a context manager."""

    def __init__(self, config_path, tsdb=None, retention="1h"):
        self.config = config_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="prom-data-")
        self.tsdb = tsdb or os.path.join(self.data, "tsdb")
        self.retention = retention
        self.log = open(os.path.join(self.data, "prometheus.log"), "w+")
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.config}", f"--storage.tsdb.path={self.tsdb}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             f"--storage.tsdb.retention.time={self.retention}"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.data)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after 30 s: {self.log_text()}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def api(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        if len(url) > 6000:
            data = urllib.parse.urlencode(params).encode()
            req = urllib.request.Request(self.url + path, data=data,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            req = urllib.request.Request(url)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path}: HTTP {e.code}: {e.read().decode()[:500]}")
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]
