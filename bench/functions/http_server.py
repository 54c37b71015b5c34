"""Baseline of the functions benchmarks: the same no-op handler (python/app.py) served by the
standard library's ThreadingHTTPServer, as a team would wrap a Lambda handler to put it behind
an `http` integration. Each POST body is the event; the handler's result is the JSON answer.

    python3 bench/functions/http_server.py 127.0.0.1:9300
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
import app  # noqa: E402

MAX_EVENT_BYTES = 6 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in two writes; with Nagle on, a keep-alive client's delayed ACK
    # holds the body back ~40 ms per request.
    disable_nagle_algorithm = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_EVENT_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            self.send_error(400)
            return
        answer = json.dumps(app.handler(event, None)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, fmt, *args):
        pass


def main():
    host, _, port = sys.argv[1].rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
