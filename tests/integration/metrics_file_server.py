#!/usr/bin/python3
"""A Prometheus target whose values a test controls: serves the current contents of FILE.

    metrics_file_server.py PORT FILE

GET /metrics answers FILE as it is at that moment (the test rewrites it atomically with mv);
a missing FILE is an empty exposition.  Listens on 127.0.0.1 only.  Stdlib only (Debian's
/usr/bin/python3)."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    path_file = None

    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        try:
            with open(self.path_file, "rb") as f:
                body = f.read()
        except FileNotFoundError:
            body = b""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: metrics_file_server.py PORT FILE")
    Handler.path_file = sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    main()
