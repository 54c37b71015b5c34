"""A gateway for the push tests: WebSocket APIs `chat` (stage `prod`) and `ops` (stage `ops`),
both behind a request authorizer webhook that names each caller after its `user` query parameter
(`ws://…/chat?user=alice` connects as principal `alice`), the recording backend of conftest, and
the [management] credentials: one with the `connections` scope, one with only `admin`.

`chat` has tiny caps (`max_topics_per_connection`, `max_subscribers_per_topic`) and a small
`send_queue`, so that the limits can be reached with a handful of sockets.
"""

from __future__ import annotations

import secrets
import urllib.parse

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY_ID, REGION, TIMEOUT, Backend, Gateway, Stack, _finish_stack

ADMIN_KEY_ID = "AKIDADMINONLY"
ADMIN_SECRET = "admin-only-" + secrets.token_hex(8)
TOPICS_PER_CONNECTION = 3
SUBSCRIBERS_PER_TOPIC = 3
SEND_QUEUE = 4

TEMPLATE = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
connect_rate_per_ip = 0  # the tests connect from 127.0.0.1, dozens a second; test_abuse_limits tests the limit

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


class PrincipalWebhook(Backend):
    """A request authorizer webhook: allows every caller as the principal named by `?user=`
    (a caller without one is refused with the answer API Gateway reads as 401)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/authorize"

    def handle(self, event: dict) -> dict:
        user = (event.get("queryStringParameters") or {}).get("user")
        if not user:
            return {"message": "Unauthorized"}
        return {
            "principalId": user,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
            },
        }


class PushStack(Stack):
    """The stack, with connections opened as a principal and signed raw calls."""

    def connect_as(self, user: str, api: str = "chat", **kwargs):
        """Opens a WebSocket to `/{api}` as `user`; returns (socket, connection id)."""
        ws, connection_id = self.connect({"user": user}, path=f"/{api}", **kwargs)
        event = self.backend.wait_for("CONNECT", connection_id)
        assert event["requestContext"]["authorizer"]["principalId"] == user
        return ws, connection_id

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
def push_stack(request, portcullis_bin, tmp_path, backend):
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
    gateway.start()
    stack = PushStack(gateway, backend)
    yield stack
    _finish_stack(request, stack)
    webhook.stop()
