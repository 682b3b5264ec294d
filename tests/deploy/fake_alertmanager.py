#!/usr/bin/python3
"""A stand-in for Alertmanager's GET /api/v2/alerts (tests/deploy/test_deploy_rolloutd.sh):
always the Watchdog (severity none), plus a critical alert once more than FIRE_AFTER requests
were answered (read from the file STATE_DIR/fire_after each time; absent: never).  Listens on
127.0.0.1:0 and writes the port to STATE_DIR/port.  Usage: fake_alertmanager.py STATE_DIR"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

STATE = sys.argv[1]
served = 0


def alert(name, severity):
    return {"labels": {"alertname": name, "severity": severity, "service": "pg2"},
            "annotations": {"summary": f"{name} (fake)"}, "startsAt": "2026-01-01T00:00:00Z",
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        if not self.path.startswith("/api/v2/alerts"):
            self.send_error(404)
            return
        served += 1
        alerts = [alert("Watchdog", "none")]
        try:
            with open(os.path.join(STATE, "fire_after")) as f:
                if served > int(f.read().strip()):
                    alerts.append(alert("PostgresReplicationLag", "critical"))
        except FileNotFoundError:
            pass
        with open(os.path.join(STATE, "served"), "w") as f:
            f.write(str(served))
        body = json.dumps(alerts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(STATE, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(STATE, "port.tmp"), os.path.join(STATE, "port"))
server.serve_forever()
