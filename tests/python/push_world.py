"""A gateway for the push tests: WebSocket APIs `chat` (stage `prod`) and `ops` (stage `ops`),
both behind a request authorizer webhook that names each caller after its `user` query parameter
(`ws://…/chat?user=alice` connects as principal `alice`), the recording backend of conftest, and
the [management] credentials: one with the `connections` scope, one with only `admin`.

`chat` has tiny caps (`max_topics_per_connection`, `max_subscribers_per_topic`) and a small
`send_queue`, so that the limits can be reached with a handful of sockets.
"""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import websockets.sync.client

from conftest import ACCESS_KEY_ID, ARTIFACTS, REGION, TIMEOUT, USER_AGENT, Backend, Gateway, Stack
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ADMIN_KEY_ID = "AKIDADMINONLY"
ADMIN_SECRET = "admin-only-" + secrets.token_hex(8)
TOPICS_PER_CONNECTION = 3
SUBSCRIBERS_PER_TOPIC = 3
SEND_QUEUE = 4

TEMPLATE = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"

[management]
region = "{region}"
credentials = [
  {{ access_key_id = "{akid}", secret_access_key = "{secret}" }},
  {{ access_key_id = "{admin_akid}", secret_access_key = "{admin_secret}", scopes = ["admin"] }},
]

[websocket.chat]
stage = "{stage}"
authorizer = "who"
send_queue = {send_queue}
max_topics_per_connection = {topics_per_connection}
max_subscribers_per_topic = {subscribers_per_topic}

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend" }}

[websocket.ops]
path = "/ops"
stage = "ops"
authorizer = "who"

[websocket.ops.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend" }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"

[authorizers.who]
type = "request"
url = "{webhook_url}"
identity_source = ["route.request.querystring.user"]
cache_ttl = "0s"
"""


class PrincipalWebhook:
    """A request authorizer: allows every caller as the principal named by `?user=`."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/authorize"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "PrincipalWebhook":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                user = (event.get("queryStringParameters") or {}).get("user")
                if user:
                    status, answer = 200, {
                        "principalId": user,
                        "policyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
                            ],
                        },
                    }
                else:
                    status, answer = 401, {"message": "Unauthorized"}
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


class PushStack(Stack):
    """The stack, with connections opened as a principal and signed raw calls."""

    def connect_as(self, user: str, api: str = "chat", **kwargs):
        """Opens a WebSocket to `/{api}` as `user`; returns (socket, connection id)."""
        tag = secrets.token_hex(8)
        query = urllib.parse.urlencode({"user": user, "tag": tag})
        url = f"ws://127.0.0.1:{self.gateway.ws_port}/{api}?{query}"
        kwargs.setdefault("user_agent_header", USER_AGENT)
        kwargs.setdefault("open_timeout", TIMEOUT)
        kwargs.setdefault("close_timeout", 2)
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("compression", None)
        kwargs.setdefault("proxy", None)
        ws = self.sockets.enter_context(websockets.sync.client.connect(url, **kwargs))
        event = self.backend.wait_for(
            "CONNECT", pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag
        )
        assert event["requestContext"]["authorizer"]["principalId"] == user
        return ws, event["requestContext"]["connectionId"]

    def call(
        self,
        method: str,
        path: str,
        data: bytes = b"",
        *,
        key_id: str = ACCESS_KEY_ID,
        secret: str | None = None,
        signed: bool = True,
    ) -> requests.Response:
        """`method` on `http://ADMIN{path}` (path as sent, percent-encoded), signed by botocore."""
        url = f"{self.admin_url}{path}"
        headers = {}
        if signed:
            request = AWSRequest(method=method, url=url, data=data)
            SigV4Auth(Credentials(key_id, secret or self.secret), "execute-api", REGION).add_auth(request)
            headers = dict(request.headers.items())
        return requests.request(method, url, data=data, headers=headers, timeout=TIMEOUT)


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


@pytest.fixture
def push_stack(request, portcullis_bin, tmp_path):
    backend = Backend().start()
    webhook = PrincipalWebhook().start()
    gateway = Gateway(
        portcullis_bin,
        tmp_path,
        f"http://127.0.0.1:{backend.port}/events",
        template=TEMPLATE,
        webhook_url=webhook.url,
        admin_akid=ADMIN_KEY_ID,
        admin_secret=ADMIN_SECRET,
        send_queue=SEND_QUEUE,
        topics_per_connection=TOPICS_PER_CONNECTION,
        subscribers_per_topic=SUBSCRIBERS_PER_TOPIC,
    )
    failed_before = request.session.testsfailed
    gateway.start()
    stack = PushStack(gateway, backend)
    yield stack
    stack.close_all()
    if gateway.proc is not None and gateway.proc.poll() is None:
        try:
            gateway.terminate()
        except AssertionError as e:
            print(e)
    backend.stop()
    webhook.stop()
    if request.session.testsfailed > failed_before:
        dest = ARTIFACTS / request.node.name.replace("/", "_")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(gateway.log_path, dest / "portcullis.log")
        shutil.copy(gateway.config_path, dest / "portcullis.toml")
        print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")
