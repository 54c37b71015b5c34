"""`authorization = "AWS_IAM"` with the AWS clients: a user signs in to the built-in pool
(boto3 `cognito-idp`), exchanges the ID token for identity-pool credentials (boto3
`cognito-identity`: GetId, GetCredentialsForIdentity), presigns the WebSocket URL with
botocore's `SigV4QueryAuth` (service `execute-api`) and connects with `websockets`; HTTP routes
are signed with botocore's `SigV4Auth`. The role of the user's group (`by_group`) decides
`$connect` and every message route.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from unittest import mock

import boto3
import botocore.auth
import botocore.config
import pytest
import requests
import websockets.exceptions
import websockets.sync.client
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, TIMEOUT, Backend, Gateway

PASSWORD = "Correct-Horse-9"

MEMBER_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": [
                    "arn:aws:execute-api:*:*:*/prod/$connect",
                    "arn:aws:execute-api:*:*:*/prod/$default",
                    "arn:aws:execute-api:*:*:*/prod/sendmessage",
                    "arn:aws:execute-api:*:*:*/*/GET/orders",
                ],
            }
        ],
    }
)
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"}]}
)

CONFIG = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
public_url = "http://127.0.0.1:{ws_port}"

[management]
credentials = [{{ access_key_id = "{akid}", secret_access_key = "{secret}" }}]
region = "{region}"

[websocket.chat]
stage = "{stage}"
authorization = "AWS_IAM"

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend", response = true }}
sendmessage   = {{ integration = "backend", response = true }}
admin         = {{ integration = "backend", response = true }}

[websocket.ops]
stage = "ops"
authorization = "AWS_IAM"

[websocket.ops.routes]
"$connect" = {{ integration = "backend" }}
"$default" = {{ integration = "backend", response = true }}

[http.shop]
base_path = "/api"
authorization = "AWS_IAM"

[http.shop.routes]
"GET /orders"  = {{ integration = "backend" }}
"POST /orders" = {{ integration = "backend" }}
"GET /health"  = {{ integration = "backend", authorization = "NONE" }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"

[pools.main]
groups = ["admins", "members"]

[pools.main.clients.web]
public = true

[identity_pools.app]
user_pools = ["main"]
roles = {{ authenticated = "chat-user", by_group = {{ admins = "chat-admin" }} }}

[roles.chat-user]
policy = '{member_policy}'

[roles.chat-admin]
policy = '{admin_policy}'
"""


@pytest.fixture
def stack(request, portcullis_bin, tmp_path):
    backend = Backend().start()
    gateway = Gateway(
        portcullis_bin,
        tmp_path,
        f"http://127.0.0.1:{backend.port}/events",
        template=CONFIG,
        member_policy=MEMBER_POLICY,
        admin_policy=ADMIN_POLICY,
    )
    try:
        gateway.start()
        for user, group in (("alice", "admins"), ("bob", "members")):
            cli(gateway, "create", user, "--password", PASSWORD)
            cli(gateway, "add-to-group", user, group)
        yield gateway, backend
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.terminate()
        backend.stop()


def cli(gateway: Gateway, command: str, *args: str) -> None:
    """`portcullis users COMMAND --config F --pool main ARGS...` against the gateway's store."""
    subprocess.run(
        [str(gateway.binary), "users", command, "--config", str(gateway.config_path), "--pool", "main", *args],
        cwd=gateway.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def aws(gateway: Gateway, service: str):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{gateway.ws_port}",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def credentials(gateway: Gateway, username: str) -> Credentials:
    """Sign in, then GetId + GetCredentialsForIdentity with the ID token as the login."""
    auth = aws(gateway, "cognito-idp").initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH",
        ClientId="web",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    logins = {f"127.0.0.1:{gateway.ws_port}/pools/main": auth["AuthenticationResult"]["IdToken"]}
    identity = aws(gateway, "cognito-identity")
    identity_id = identity.get_id(IdentityPoolId=f"{REGION}:app", Logins=logins)["IdentityId"]
    c = identity.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretKey"], c["SessionToken"])


def presign(gateway: Gateway, creds: Credentials, path: str = "/chat", expires: int = 60, at=None) -> str:
    """The wss URL as botocore's presigner produces it (signing time `at` when given)."""
    request = AWSRequest(method="GET", url=f"ws://127.0.0.1:{gateway.ws_port}{path}")
    signer = SigV4QueryAuth(creds, "execute-api", REGION, expires=expires)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
            signer.add_auth(request)
    return request.url


def open_socket(url: str):
    return websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=2, ping_interval=None, compression=None, proxy=None
    )


def refused_status(url: str) -> int:
    with pytest.raises(websockets.exceptions.InvalidStatus) as excinfo:
        open_socket(url)
    response = excinfo.value.response
    if response.status_code == 403:
        assert json.loads(response.body) == {"message": "Forbidden"}
    return response.status_code


def ask(ws, action: str) -> str:
    ws.send(json.dumps({"action": action}))
    return ws.recv(timeout=TIMEOUT)


def test_presigned_connect_and_per_message_policy(stack):
    gateway, backend = stack
    alice, bob = credentials(gateway, "alice"), credentials(gateway, "bob")

    # Unsigned, expired (signed 10 minutes ago for 1 second), tampered: 403.
    assert refused_status(gateway.ws_url) == 403
    old = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    assert refused_status(presign(gateway, bob, expires=1, at=old)) == 403
    good = presign(gateway, bob)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert refused_status(tampered) == 403
    assert not backend.find("CONNECT"), "refused upgrades never reach $connect"

    # bob (members -> chat-user): connected, sendmessage allowed, admin denied per message.
    with open_socket(good) as ws:
        event = backend.wait_for("CONNECT")
        identity = event["requestContext"]["identity"]
        assert identity["accessKey"] == bob.access_key
        assert identity["cognitoIdentityPoolId"] == f"{REGION}:app"
        assert identity["cognitoAuthenticationType"] == "authenticated"
        assert identity["userArn"].endswith(":assumed-role/chat-user/CognitoIdentityCredentials")
        assert identity["cognitoAuthenticationProvider"].startswith(f"127.0.0.1:{gateway.ws_port}/pools/main,")
        assert "authorizer" not in event["requestContext"]
        assert json.loads(ask(ws, "sendmessage"))["echo"] is not None
        denied = json.loads(ask(ws, "admin"))
        assert denied["message"] == "Forbidden"
        assert "connectionId" in denied and "requestId" in denied
        assert json.loads(ask(ws, "sendmessage"))["echo"] is not None, "the socket stays open"

    # alice (admins -> chat-admin) may use admin.
    with open_socket(presign(gateway, alice)) as ws:
        assert "echo" in json.loads(ask(ws, "admin"))

    # A role without $connect on the ops stage.
    assert refused_status(presign(gateway, bob, path="/ops")) == 403
    with open_socket(presign(gateway, alice, path="/ops")) as ws:
        assert "echo" in json.loads(ask(ws, "anything"))


def test_revoked_user_is_refused_and_disconnected(stack):
    gateway, backend = stack
    bob = credentials(gateway, "bob")
    with open_socket(presign(gateway, bob)) as ws:
        backend.wait_for("CONNECT")
        cli(gateway, "disable", "bob")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert refused_status(presign(gateway, bob)) == 403


def signed(gateway: Gateway, creds: Credentials, method: str, path: str, body: bytes = b"") -> requests.Response:
    url = f"http://127.0.0.1:{gateway.ws_port}{path}"
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(creds, "execute-api", REGION).add_auth(request)
    return requests.request(method, url, data=body, headers=dict(request.headers.items()), timeout=TIMEOUT)


def test_http_routes_signed_with_sigv4auth(stack):
    gateway, backend = stack
    alice, bob = credentials(gateway, "alice"), credentials(gateway, "bob")
    base = f"http://127.0.0.1:{gateway.ws_port}"

    unsigned = requests.get(f"{base}/api/orders", timeout=TIMEOUT)
    assert unsigned.status_code == 403
    assert unsigned.json() == {"message": "Forbidden"}
    assert requests.get(f"{base}/api/health", timeout=TIMEOUT).status_code == 200

    assert signed(gateway, bob, "GET", "/api/orders").status_code == 200
    event = backend.wait_for(None, pred=lambda e: e.get("routeKey") == "GET /orders")
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == bob.access_key
    assert iam["cognitoIdentity"]["identityPoolId"] == f"{REGION}:app"
    assert iam["userArn"].endswith(":assumed-role/chat-user/CognitoIdentityCredentials")

    # The members' role has no POST /orders; the admins' has.
    assert signed(gateway, bob, "POST", "/api/orders", b'{"n": 1}').status_code == 403
    assert signed(gateway, alice, "POST", "/api/orders", b'{"n": 1}').status_code == 200
    # A body changed after signing breaks the payload hash.
    url = f"{base}/api/orders"
    request = AWSRequest(method="POST", url=url, data=b'{"n": 1}')
    SigV4Auth(alice, "execute-api", REGION).add_auth(request)
    tampered = requests.post(url, data=b'{"n": 2}', headers=dict(request.headers.items()), timeout=TIMEOUT)
    assert tampered.status_code == 403
