"""The identity admin API (`/admin/...` on the admin listener) called with botocore's SigV4Auth
against the real binary: create a user, sign in with boto3's cognito-idp client, manage its
groups, and disable it, which closes its open WebSocket with 1008.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse

import boto3
import botocore.config
import pytest
import requests
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from conftest import ARTIFACTS, CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway, sigv4_headers

PASSWORD = "Correct-Horse-9"

CONFIG = (
    CONFIG_TEMPLATE.replace('[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1)
    # the identity admin API needs the "admin" scope (the default is "connections" only)
    .replace('secret_access_key = "{secret}" }}]', 'secret_access_key = "{secret}", scopes = ["connections", "admin"] }}]', 1)
    .replace('[websocket.chat]\n', '[websocket.chat]\nauthorizer = "users"\n', 1)
    + """
[authorizers.users]
type = "jwt"
identity_source = ["route.request.querystring.access_token"]
issuers = [{{ issuer = "http://127.0.0.1:{ws_port}/pools/main" }}]

[pools.main]
groups = ["admins", "members"]
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.clients.web]
public = true
"""
)


@pytest.fixture
def gateway(request, portcullis_bin, tmp_path):
    backend = Backend().start()
    gw = Gateway(portcullis_bin, tmp_path, f"http://127.0.0.1:{backend.port}/events", template=CONFIG)
    failed_before = request.session.testsfailed
    try:
        gw.start()
        yield gw
    finally:
        if gw.proc is not None and gw.proc.poll() is None:
            try:
                gw.terminate()
            except AssertionError as e:
                print(e)
        backend.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / "test_identity_admin"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("portcullis.log", "portcullis.toml"):
                if (tmp_path / name).exists():
                    shutil.copy(tmp_path / name, dest / name)
            print(f"\n---- portcullis log (copied to {dest}) ----\n{gw.log_tail()}")


def admin(gw: Gateway, method: str, path: str, body: dict | None = None, secret: str | None = "") -> requests.Response:
    """An admin API call signed by botocore's SigV4Auth (`secret=None`: unsigned)."""
    url = f"{gw.admin_url}{path}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers.update(sigv4_headers(method, url, secret or gw.secret, data))
        headers["Content-Type"] = "application/json"
    return requests.request(method, url, data=data, headers=headers, timeout=TIMEOUT)


def test_admin_api_with_botocore_sigv4(gateway):
    gw = gateway
    # unsigned and wrongly signed calls are refused
    assert admin(gw, "GET", "/admin/pools", secret=None).status_code == 403
    r = admin(gw, "GET", "/admin/pools", secret="not-the-secret")
    assert r.status_code == 403 and r.json()["message"] == "Forbidden"

    r = admin(gw, "GET", "/admin/pools")
    assert r.status_code == 200, r.text
    assert r.json()["pools"] == [
        {"name": "main", "id": "us-east-1_main", "issuer": f"http://127.0.0.1:{gw.ws_port}/pools/main"}
    ]
    assert admin(gw, "GET", "/admin/pools/nope/groups").status_code == 404

    r = admin(
        gw,
        "POST",
        "/admin/pools/main/users",
        {"username": "alice", "password": PASSWORD, "attributes": {"email": "alice@example.com"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "CONFIRMED"
    assert PASSWORD not in r.text
    assert admin(gw, "POST", "/admin/pools/main/users", {"username": "alice"}).status_code == 409
    r = admin(gw, "PUT", "/admin/pools/main/users/alice/groups/admins")
    assert r.status_code == 200 and r.json()["groups"] == ["admins"]
    assert admin(gw, "GET", "/admin/pools/main/users/alice").json()["groups"] == ["admins"]
    # forgetting a TOTP software token (none yet: nothing changes), and of an unknown user
    r = admin(gw, "POST", "/admin/pools/main/users/alice/remove-mfa")
    assert r.status_code == 200 and r.json()["username"] == "alice", r.text
    assert admin(gw, "POST", "/admin/pools/main/users/nobody/remove-mfa").status_code == 404

    idp = boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{gw.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )
    auth = idp.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    query = urllib.parse.urlencode({"access_token": auth["AccessToken"]})
    with websockets.sync.client.connect(
        f"{gw.ws_url}?{query}", open_timeout=TIMEOUT, close_timeout=2, ping_interval=None, proxy=None
    ) as ws:
        r = admin(gw, "POST", "/admin/pools/main/users/alice/disable")
        assert r.status_code == 200 and r.json()["enabled"] is False
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.initiate_auth(
            ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
        )
    assert admin(gw, "DELETE", "/admin/pools/main/users/alice").status_code == 200
    assert admin(gw, "GET", "/admin/pools/main/users/alice").status_code == 404


def test_a_backend_credential_pushes_but_cannot_administer(stack):
    # `stack` signs with the default scope ("connections"), as a backend's credential is.
    ws, cid = stack.connect()
    stack.client().post_to_connection(ConnectionId=cid, Data=b"still allowed")
    assert ws.recv(timeout=TIMEOUT) == "still allowed"
    for method, path, body in [
        ("GET", "/admin/pools", b""),
        ("POST", "/admin/pools/main/users", json.dumps({"username": "mallory", "password": PASSWORD}).encode()),
    ]:
        url = f"{stack.admin_url}{path}"
        headers = {**sigv4_headers(method, url, stack.secret, body), "Content-Type": "application/json"}
        r = requests.request(method, url, data=body, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "AccessDeniedException"
        assert r.headers["x-amzn-ErrorType"] == "AccessDeniedException"
