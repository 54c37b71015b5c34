"""Seed 000 end to end: `examples/seeds/seed000.toml` served as it is (only its addresses, store
and secrets moved through the variables it reads), driven the way the article's clients do it.

A user signs in to the user pool (boto3 `cognito-idp` InitiateAuth, USER_PASSWORD_AUTH), exchanges
the ID token for temporary credentials at the identity pool (boto3 `cognito-identity` GetId and
GetCredentialsForIdentity; the role comes from the user's group), presigns the WebSocket URL as
the AWS SDKs do (botocore's `SigV4QueryAuth`, service `execute-api`) and connects with
`websockets`. The role's policy is checked for every message: an admin may use the route
`secret`, a member gets the Forbidden frame for it and keeps chatting on the same socket.
Disabling a user closes their live socket.

The same flow from Node.js with the AWS SDK for JavaScript v3 (`tests/node-aws/seed000.mjs`),
as a browser app would run it.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import subprocess
import urllib.parse
from unittest import mock

import boto3
import botocore.config
import pytest
import requests
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed

from conftest import REPO, TIMEOUT, sigv4_headers
from test_seeds_functions import ExampleGateway, refused_status, ws_connect

REGION = "us-east-1"
ACCOUNT = "123456789012"  # [management] account_id of the seed
IDENTITY_POOL_ID = f"{REGION}:app"
NODE_DIR = REPO / "tests" / "node-aws"


class Seed000:
    """The running seed plus what its clients need: users, boto3 clients, presigned URLs."""

    def __init__(self, gateway: ExampleGateway, binary, ops_secret: str) -> None:
        self.gateway = gateway
        self.binary = binary
        self.ops_secret = ops_secret
        config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT)
        endpoint = f"http://{gateway.base}"
        # Both APIs are unsigned on AWS for these calls; boto3 still wants some credentials.
        self.idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=REGION,
                                aws_access_key_id="x", aws_secret_access_key="x", config=config)
        self.identity = boto3.client("cognito-identity", endpoint_url=endpoint, region_name=REGION,
                                     aws_access_key_id="x", aws_secret_access_key="x", config=config)

    @property
    def logins_key(self) -> str:
        """A built-in pool's Logins key: its issuer without the scheme."""
        return f"{self.gateway.base}/pools/main"

    def users(self, *args: str) -> None:
        """`portcullis users ARGS... --config seed000.toml --pool main`, on the gateway's store."""
        result = subprocess.run(
            [str(self.binary), "users", args[0], "--config", str(self.gateway.config), "--pool", "main", *args[1:]],
            cwd=self.gateway.workdir, env=self.gateway.env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, f"users {' '.join(args)}:\n{result.stdout}\n{result.stderr}"

    def create_user(self, username: str, group: str) -> str:
        password = f"{username.capitalize()}-{secrets.token_hex(6)}-42"
        self.users("create", username, "--password", password)
        self.users("add-to-group", username, group)
        return password

    def sign_in(self, username: str, password: str) -> dict:
        """User pool sign-in, then the identity pool's credentials: {identity_id, credentials}."""
        auth = self.idp.initiate_auth(
            ClientId="web", AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        logins = {self.logins_key: auth["IdToken"]}
        identity_id = self.identity.get_id(IdentityPoolId=IDENTITY_POOL_ID, Logins=logins)["IdentityId"]
        answer = self.identity.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)
        assert answer["IdentityId"] == identity_id
        return {"identity_id": identity_id, "logins": logins, "credentials": answer["Credentials"]}

    def presign(self, credentials: dict, expires: int = 300, signed_at: datetime.datetime | None = None) -> str:
        """The upgrade URL presigned as the AWS SDKs do it (X-Amz-* in the query string),
        signed now or at `signed_at` (naive UTC, as botocore's clock)."""
        request = AWSRequest(method="GET", url=f"http://{self.gateway.base}/chat")
        creds = Credentials(credentials["AccessKeyId"], credentials["SecretKey"], credentials["SessionToken"])
        signer = SigV4QueryAuth(creds, "execute-api", REGION, expires=expires)
        if signed_at is None:
            signer.add_auth(request)
        else:
            with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
                signer.add_auth(request)
        return "ws://" + request.url.split("://", 1)[1]

    def disable(self, username: str) -> None:
        """The identity admin API, signed by the seed's operator credential (scope "admin")."""
        url = f"http://127.0.0.1:{self.gateway.admin_port}/admin/pools/main/users/{username}/disable"
        headers = sigv4_headers("POST", url, self.ops_secret, access_key_id="AKIDOPS")
        r = requests.post(url, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 200, r.text


@pytest.fixture
def seed000(request, portcullis_bin, tmp_path):
    ops_secret = "ops-" + secrets.token_hex(16)
    gateway = ExampleGateway(portcullis_bin, "seed000", tmp_path, {
        "PORTCULLIS_STORE": f"sqlite://{tmp_path}/seed000.db",
        "PORTCULLIS_OPS_SECRET": ops_secret,
        "CHAT_STATE_DIR": str(tmp_path / "chat-state"),
    })
    yield Seed000(gateway, portcullis_bin, ops_secret)
    failed = any(
        getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call")
    )
    gateway.stop(failed, request.node.name)


def role_arn(role: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/CognitoIdentityCredentials"


def test_admin_may_use_secret_member_may_not_checked_per_message(seed000):
    alice_password = seed000.create_user("alice", "admins")
    bob_password = seed000.create_user("bob", "members")
    alice = seed000.sign_in("alice", alice_password)
    bob = seed000.sign_in("bob", bob_password)

    # Temporary credentials shaped as AWS's: an ASIA key, a session token, an expiry in an hour.
    creds = bob["credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["SessionToken"] and len(creds["SecretKey"]) == 40
    left = creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(minutes=50) < left <= datetime.timedelta(hours=1, minutes=1)
    # Identity ids: one per user, the same on every GetId (as on AWS).
    assert alice["identity_id"] != bob["identity_id"]
    assert alice["identity_id"].startswith(f"{REGION}:")
    again = seed000.identity.get_id(IdentityPoolId=IDENTITY_POOL_ID, Logins=bob["logins"])
    assert again["IdentityId"] == bob["identity_id"]

    # Without a signature, with a signature that does not match, or an expired one: no socket.
    assert refused_status(f"ws://{seed000.gateway.base}/chat") == 403
    good = seed000.presign(creds)
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(good).query)["X-Amz-Signature"][0]
    forged = good.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert refused_status(forged) == 403
    # A URL presigned ten minutes ago for one minute has expired.
    ten_minutes_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    assert refused_status(seed000.presign(creds, expires=60, signed_at=ten_minutes_ago)) == 403

    with ws_connect(seed000.presign(alice["credentials"])) as a, ws_connect(good) as b:
        # The admin's role allows prod/*: the secret route answers, with who asked.
        a.send(json.dumps({"action": "secret"}))
        answer = json.loads(a.recv(timeout=TIMEOUT))
        assert answer["secret"] == "the admins' secret"
        identity = answer["identity"]
        assert identity["cognitoIdentityId"] == alice["identity_id"]
        assert identity["cognitoIdentityPoolId"] == IDENTITY_POOL_ID
        assert identity["cognitoAuthenticationType"] == "authenticated"
        assert identity["userArn"] == role_arn("chat-admin")
        assert identity["accessKey"] == alice["credentials"]["AccessKeyId"]
        assert identity["accountId"] == ACCOUNT
        assert identity["caller"].endswith(":CognitoIdentityCredentials")
        assert identity["cognitoAuthenticationProvider"].startswith(seed000.logins_key)

        # The member's role denies prod/secret explicitly: the Forbidden frame, as API Gateway
        # words it, and the socket stays open.
        b.send(json.dumps({"action": "secret"}))
        refused = json.loads(b.recv(timeout=TIMEOUT))
        assert refused["message"] == "Forbidden"
        assert refused["connectionId"] and refused["requestId"]

        # Both may chat: sendmessage reaches everyone, whoever sends it.
        b.send(json.dumps({"action": "sendmessage", "data": "hello from bob"}))
        assert b.recv(timeout=TIMEOUT) == "hello from bob"
        assert a.recv(timeout=TIMEOUT) == "hello from bob"
        a.send(json.dumps({"action": "sendmessage", "data": "hello from alice"}))
        assert a.recv(timeout=TIMEOUT) == "hello from alice"
        assert b.recv(timeout=TIMEOUT) == "hello from alice"

        # $default shows what the integration learns about the member.
        b.send(json.dumps({"action": "whoami"}))
        me = json.loads(b.recv(timeout=TIMEOUT))
        assert me["routeKey"] == "$default"
        assert me["identity"]["userArn"] == role_arn("chat-user")
        assert me["identity"]["cognitoIdentityId"] == bob["identity_id"]

        # Disabling bob ends his credentials, and his open socket with them; alice carries on.
        seed000.disable("bob")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                b.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        a.send(json.dumps({"action": "whoami"}))
        assert json.loads(a.recv(timeout=TIMEOUT))["identity"]["userArn"] == role_arn("chat-admin")

    # And his credentials no longer open a socket.
    assert refused_status(seed000.presign(creds)) in (401, 403)


def _node_unavailable(reason: str) -> None:
    if os.environ.get("PORTCULLIS_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (PORTCULLIS_REQUIRE_BROWSER is set, so this is a failure, not a skip)")
    pytest.skip(f"{reason}; scripts/test installs it")


def test_the_same_from_node_with_the_aws_sdk_v3(seed000):
    node = shutil.which("node")
    if node is None:
        _node_unavailable("Node.js is not installed")
    if not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-cognito-identity").is_dir():
        _node_unavailable("tests/node-aws/node_modules is missing (cd tests/node-aws && npm ci)")
    users = {"alice": seed000.create_user("alice", "admins"), "bob": seed000.create_user("bob", "members")}
    run = subprocess.run(
        [node, str(NODE_DIR / "seed000.mjs")],
        cwd=NODE_DIR,
        env={
            **os.environ,
            "PORTCULLIS_URL": f"http://{seed000.gateway.base}",
            "AWS_REGION": REGION,
            "ADMIN_USER": "alice",
            "ADMIN_PASSWORD": users["alice"],
            "MEMBER_USER": "bob",
            "MEMBER_PASSWORD": users["bob"],
            # the SDK must find nothing of the machine's own AWS setup
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"seed000.mjs failed:\n{run.stdout}\n{run.stderr}"
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert result["unsignedStatus"] == 403
    assert result["tamperedStatus"] == 403
    admin, member = result["admin"], result["member"]
    assert admin["accessKeyId"].startswith("ASIA") and member["accessKeyId"].startswith("ASIA")
    assert admin["secret"]["secret"] == "the admins' secret"
    assert admin["secret"]["identity"]["userArn"] == role_arn("chat-admin")
    assert admin["secret"]["identity"]["cognitoIdentityId"] == admin["identityId"]
    assert member["secret"]["message"] == "Forbidden"
    assert member["received"] == admin["received"] == "hello from node"
    assert member["whoami"]["identity"]["userArn"] == role_arn("chat-user")
    assert member["whoami"]["identity"]["accessKey"] == member["accessKeyId"]
    # The identity ids are the ones boto3 gets for the same users.
    assert seed000.sign_in("bob", users["bob"])["identity_id"] == member["identityId"]
