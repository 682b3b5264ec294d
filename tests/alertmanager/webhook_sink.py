#!/usr/bin/python3
"""webhook_sink.py PORT_FILE OUT_FILE - a throw-away Alertmanager webhook receiver for the tests.

Listens on 127.0.0.1 on a free port (written to PORT_FILE once listening) and appends one JSON
line per POST to OUT_FILE: {"t": unix time received, "receiver": ..., "status": ...,
"alerts": [{"labels": {...}, "status": ...}, ...]}.  Ends on SIGTERM.
"""
import http.server
import json
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            msg = json.loads(body)
            rec = {"t": time.time(), "path": self.path, "receiver": msg.get("receiver"),
                   "status": msg.get("status"),
                   "alerts": [{"labels": a.get("labels"), "status": a.get("status")}
                              for a in msg.get("alerts", [])]}
        except ValueError:
            rec = {"t": time.time(), "path": self.path, "error": "not JSON"}
        with open(sys.argv[2], "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
