"""Server-sent events of a WebSocket API against the real binary, read with a real SSE client
(sseclient-py over a streaming `requests` response): admission with the API's authorizer
(header, query string, cookie + CSRF echo), JSON refusals, `$connect`/`$disconnect` with
`connectionType = "sse"` at a real HTTP backend, `@connections` pushes sent by boto3, `@users`
pushes signed with botocore's SigV4Auth, heartbeats, revocation, `Last-Event-ID` replay and the
`reset` a gap yields. Tokens come from the built-in pool, signed in with boto3's cognito-idp.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass

import boto3
import botocore.config
import pytest
import requests
import sseclient

from conftest import (
    ARTIFACTS,
    CONFIG_TEMPLATE,
    STAGE,
    TIMEOUT,
    Backend,
    Gateway,
    management_client,
    sigv4_headers,
)

PASSWORD = "Correct-Horse-9"
ORIGIN = "https://app.example"

CONFIG = (
    CONFIG_TEMPLATE.replace('[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1)
    .replace('secret_access_key = "{secret}" }}]', 'secret_access_key = "{secret}", scopes = ["connections", "admin"] }}]', 1)
    .replace(
        '[websocket.chat]\n',
        '[websocket.chat]\nauthorizer = "users"\nallowed_origins = ["' + ORIGIN + '"]\n'
        'sse = {{ heartbeat = "1s", replay = 3 }}\n',
        1,
    )
    + """
[authorizers.users]
type = "jwt"
identity_source = ["route.request.header.Authorization", "route.request.querystring.access_token", "route.request.cookie.access_token"]
issuers = [{{ issuer = "http://127.0.0.1:{ws_port}/pools/main" }}]
principal_claim = "username"
csrf = {{ cookie = "CSRF-TOKEN", query = "csrf" }}

[pools.main]
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.clients.web]
public = true
"""
)


@dataclass
class World:
    gateway: Gateway
    backend: Backend

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.ws_port}/chat/events"

    def admin(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        url = f"{self.gateway.admin_url}{path}"
        data = json.dumps(body).encode() if body is not None else b""
        headers = sigv4_headers(method, url, self.gateway.secret, data)
        return requests.request(method, url, data=data, headers=headers, timeout=TIMEOUT)

    def push_to_user(self, user: str, data: bytes) -> dict:
        """`POST /{stage}/@users/{user}`, signed as a backend signs it: botocore's SigV4Auth."""
        url = f"{self.gateway.admin_url}/{STAGE}/@users/{user}"
        r = requests.post(url, data=data, headers=sigv4_headers("POST", url, self.gateway.secret, data), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json()

    def sign_up(self, username: str) -> str:
        """A user of pool `main` and its access token."""
        r = self.admin("POST", "/admin/pools/main/users", {"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        return self.token(username)

    def token(self, username: str) -> str:
        idp = boto3.client(
            "cognito-idp",
            endpoint_url=f"http://127.0.0.1:{self.gateway.ws_port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
        )
        result = idp.initiate_auth(
            ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
        )
        return result["AuthenticationResult"]["AccessToken"]

    def get(self, token: str | None = None, params: dict | None = None, headers: dict | None = None) -> requests.Response:
        all_headers = {"Accept": "text/event-stream", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return requests.get(self.events_url, params=params, headers=all_headers, stream=True, timeout=TIMEOUT)

    def open(self, token: str | None = None, **kwargs) -> "Stream":
        response = self.get(token, **kwargs)
        assert response.status_code == 200, response.text
        return Stream(response)


class Stream:
    """An open stream: its events in order, `connected` read first."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.events = sseclient.SSEClient(response).events()
        first = self.next()
        assert first.event == "connected", first.event
        self.connected_id = first.id
        self.connection_id = json.loads(first.data)["connectionId"]

    def next(self):
        return next(self.events)

    def ended(self) -> bool:
        """Whether the stream ends (after nothing but a `close` event)."""
        for event in self.events:
            if event.event != "close":
                return False
        return True

    def close(self) -> None:
        self.response.close()


@pytest.fixture(scope="module")
def world(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sse")
    backend = Backend().start()
    gateway = Gateway(portcullis_bin, workdir, f"http://127.0.0.1:{backend.port}/events", template=CONFIG)
    failed_before = request.session.testsfailed
    try:
        gateway.start()
        yield World(gateway, backend)
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            try:
                gateway.terminate()
            except AssertionError as e:
                print(e)
        backend.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / "test_sse"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("portcullis.log", "portcullis.toml"):
                if (workdir / name).exists():
                    shutil.copy(workdir / name, dest / name)
            print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")


def user(world: World) -> tuple[str, str]:
    """A new user and its access token."""
    name = "u" + secrets.token_hex(4)
    return name, world.sign_up(name)


def test_the_api_authorizer_admits_a_token_from_a_header_the_query_or_a_cookie_with_its_csrf_echo(world):
    name, token = user(world)
    csrf = secrets.token_hex(8)
    cookies = {"Cookie": f"access_token={token}; CSRF-TOKEN={csrf}"}
    for stream in (
        world.open(token),
        world.open(params={"access_token": token}),
        world.open(params={"csrf": csrf}, headers=cookies),
    ):
        connect = world.backend.wait_for("CONNECT", stream.connection_id)
        assert connect["requestContext"]["connectionType"] == "sse"
        assert connect["requestContext"]["authorizer"]["principalId"] == name
        stream.close()
    listed = world.admin("GET", f"/{STAGE}/@users/{name}")
    assert listed.status_code == 200


@pytest.mark.parametrize(
    "what, token, params, headers, status, message",
    [
        ("no token", None, None, {}, 401, "Unauthorized"),
        ("a forged token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", None, {}, 401, "Unauthorized"),
        ("a cookie without the CSRF echo", None, None, {"Cookie": "access_token={token}; CSRF-TOKEN=x"}, 403, "Forbidden"),
        ("a cookie with a wrong echo", None, {"csrf": "y"}, {"Cookie": "access_token={token}; CSRF-TOKEN=x"}, 403, "Forbidden"),
        ("another site's page", "{token}", None, {"Origin": "https://evil.example"}, 403, "Forbidden"),
    ],
)
def test_refusals_answer_with_the_json_of_http_apis(world, what, token, params, headers, status, message):
    _, real = user(world)
    token = token.format(token=real) if token else None
    headers = {k: v.format(token=real) for k, v in headers.items()}
    r = world.get(token, params=params, headers=headers)
    assert r.status_code == status, what
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"message": message}, what


def test_connect_refused_by_the_backend_answers_its_status(world):
    _, token = user(world)
    world.backend.connect_status = 403
    try:
        r = world.get(token)
    finally:
        world.backend.connect_status = 200
    assert r.status_code == 403
    assert r.json() == {"message": "Forbidden"}


def test_a_listed_origin_may_read_the_stream_with_credentials(world):
    _, token = user(world)
    r = world.get(token, headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Accel-Buffering"] == "no"
    r.close()


def test_boto3_pushes_arrive_as_events_multiline_and_binary_included(world):
    _, token = user(world)
    stream = world.open(token)
    boto = management_client(f"{world.gateway.admin_url}/{STAGE}", world.gateway.secret)
    boto.post_to_connection(ConnectionId=stream.connection_id, Data=b"hello")
    event = stream.next()
    assert (event.event, event.data) == ("message", "hello")
    assert event.id
    boto.post_to_connection(ConnectionId=stream.connection_id, Data="one\ntwo\r\nthree\n".encode())
    assert stream.next().data == "one\ntwo\nthree\n"
    boto.post_to_connection(ConnectionId=stream.connection_id, Data=bytes([0, 1, 254, 255]))
    binary = stream.next()
    assert (binary.event, binary.data) == ("binary", "AAH+/w==")
    boto.delete_connection(ConnectionId=stream.connection_id)
    close = stream.next()
    assert close.event == "close"
    assert json.loads(close.data) == {"code": 1000, "reason": "Connection deleted"}
    assert stream.ended()
    disconnect = world.backend.wait_for("DISCONNECT", stream.connection_id)
    assert disconnect["requestContext"]["connectionType"] == "sse"
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_a_client_that_goes_away_gets_its_disconnect(world):
    _, token = user(world)
    stream = world.open(token)
    stream.close()
    disconnect = world.backend.wait_for("DISCONNECT", stream.connection_id)
    assert disconnect["requestContext"]["connectionType"] == "sse"
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1005


def test_heartbeats_are_comment_lines(world):
    _, token = user(world)
    r = world.get(token)
    lines = r.iter_lines(decode_unicode=True)
    assert next(lines).startswith("id: ")
    # Nothing is pushed: after `connected`, the stream carries heartbeats (one per second).
    pings = 0
    for line in lines:
        if line == ": ping":
            pings += 1
            if pings == 2:
                break
        else:
            assert line == "" or line.startswith(("event: connected", "data: ")), line
    r.close()


def test_a_revocation_closes_the_stream(world):
    name, token = user(world)
    stream = world.open(token)
    assert world.admin("POST", f"/admin/pools/main/users/{name}/sign-out").status_code == 200
    close = stream.next()
    assert close.event == "close"
    assert json.loads(close.data) == {"code": 1008, "reason": "Token revoked"}
    assert stream.ended()
    disconnect = world.backend.wait_for("DISCONNECT", stream.connection_id)
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1008
    assert world.get(token).status_code == 401


def test_last_event_id_replays_the_user_pushes_missed_then_goes_live(world):
    name, token = user(world)
    assert world.push_to_user(name, b"before any stream") == {"connections": 0}
    stream = world.open(token)
    assert world.push_to_user(name, b"one") == {"connections": 1}
    one = stream.next()
    assert one.data == "one"
    stream.close()
    world.backend.wait_for("DISCONNECT", stream.connection_id)

    for text in (b"two", b"three"):
        assert world.push_to_user(name, text) == {"connections": 0}
    resumed = world.open(token, headers={"Last-Event-ID": one.id})
    assert [resumed.next().data, resumed.next().data] == ["two", "three"]
    world.push_to_user(name, b"live")
    assert resumed.next().data == "live"
    resumed.close()


def test_a_gap_older_than_the_buffer_yields_reset_first(world):
    name, token = user(world)
    stream = world.open(token)
    start = stream.connected_id
    stream.close()
    for text in (b"a", b"b", b"c", b"d"):  # the API keeps 3 per user
        world.push_to_user(name, text)
    resumed = world.open(token, headers={"Last-Event-ID": start})
    reset = resumed.next()
    assert (reset.event, reset.data) == ("reset", "{}")
    assert [resumed.next().data for _ in range(3)] == ["b", "c", "d"]
    resumed.close()
    # An id from an earlier run of the gateway (or not ours at all) is a gap too.
    for foreign in ("00000000-1", "not-an-id"):
        other = world.open(token, params={"lastEventId": foreign})
        assert other.next().event == "reset"
        other.close()
