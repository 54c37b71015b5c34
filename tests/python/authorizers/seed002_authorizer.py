"""Serves seed 002's Lambda authorizer (seed002_handler.py, copied verbatim) as a Portcullis
REQUEST-authorizer webhook, using only the standard library.

Each POST body is the authorizer event; the handler's return value is answered as JSON with 200.
Like Lambda behind API Gateway, an exception whose message is exactly ``Unauthorized`` becomes
HTTP 401, any other exception HTTP 500 (``{"errorMessage", "errorType"}``).

The handler is not changed. Two things of its environment are provided instead:

* ``AWS_REGION`` (set by the Lambda runtime) defaults to ``us-east-1``;
* the handler fetches ``https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json``;
  when ``SEED002_COGNITO_BASE`` is set (e.g. ``http://127.0.0.1:9200``), those URLs are fetched
  from ``{SEED002_COGNITO_BASE}/{pool}/.well-known/jwks.json`` instead.

The handler reads ``event['authorizationToken']`` and ``event['methodArn']``: configure it as an
HTTP API authorizer with payload format 1.0 (or expect a 500 from the KeyError).

Needs PyJWT with ``cryptography`` (the handler imports ``jwt`` and ``jwt.algorithms``).

Usage: ``PORT=9100 python3 seed002_authorizer.py`` (``PORT=0`` picks a free port). The first
line on stdout is ``listening on http://127.0.0.1:PORT``; logs go to stderr.
"""

import contextlib
import json
import os
import re
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_EVENT_BYTES = 1024 * 1024
JWKS_TIMEOUT_S = 5

os.environ.setdefault("AWS_REGION", "us-east-1")

_COGNITO = re.compile(r"^https://cognito-idp\.[^/]*\.amazonaws\.com/")
_original_urlopen = urllib.request.urlopen


def _urlopen(url, *args, **kwargs):
    base = os.environ.get("SEED002_COGNITO_BASE")
    if base and isinstance(url, str) and _COGNITO.match(url):
        url = _COGNITO.sub(base.rstrip("/") + "/", url)
    kwargs.setdefault("timeout", JWKS_TIMEOUT_S)
    return _original_urlopen(url, *args, **kwargs)


# Patched before the handler runs: it looks up urllib.request.urlopen at call time.
urllib.request.urlopen = _urlopen

import seed002_handler  # noqa: E402  (after the patch, on purpose)


class LambdaContext:
    """The few attributes handlers commonly read from Lambda's context object."""

    function_name = "seed002-authorizer"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis():
        return 10_000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_EVENT_BYTES:
            self._answer(413, {"errorMessage": "event too large", "errorType": "RequestTooLarge"})
            return
        try:
            event = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._answer(400, {"errorMessage": "event is not JSON", "errorType": "BadRequest"})
            return
        try:
            # The handler prints; keep stdout for the "listening on" line.
            with contextlib.redirect_stdout(sys.stderr):
                result = seed002_handler.lambda_handler(event, LambdaContext())
        except Exception as e:  # Lambda's view of a failed invocation
            status = 401 if str(e) == "Unauthorized" else 500
            self._answer(status, {"errorMessage": str(e), "errorType": type(e).__name__})
            return
        self._answer(200, result)

    def _answer(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("seed002_authorizer: " + (fmt % args) + "\n")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "9100"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
