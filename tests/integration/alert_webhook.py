#!/usr/bin/python3
"""A webhook receiver for the end-to-end alert tests: Alertmanager's webhook_config posts here.

    alert_webhook.py PORT OUTFILE

Appends one JSON line per alert in each notification to OUTFILE:
{"received": <unix time>, "status": "firing"|"resolved", "alertname": ..., "labels": {...},
 "startsAt": ..., "endsAt": ..., "receiver": ...}.  Listens on 127.0.0.1 only; answers 200.
Stdlib only (Debian's /usr/bin/python3)."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    out = None

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        now = time.time()
        try:
            doc = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        with open(self.out, "a", encoding="utf-8") as f:
            for a in doc.get("alerts", []):
                labels = a.get("labels", {})
                f.write(json.dumps({
                    "received": now,
                    "status": a.get("status"),
                    "alertname": labels.get("alertname"),
                    "labels": labels,
                    "startsAt": a.get("startsAt"),
                    "endsAt": a.get("endsAt"),
                    "receiver": doc.get("receiver"),
                }) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: alert_webhook.py PORT OUTFILE")
    Handler.out = sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    main()
