"""Identity pools through boto3's `cognito-identity` client against the real binary.

Users sign in with boto3's `cognito-idp` (USER_PASSWORD_AUTH), and their ID tokens are
exchanged at the Cognito Identity API (`POST /` with `AWSCognitoIdentityService.*`, unsigned)
for temporary credentials. Which role the credentials carry is not visible to the client (as on
AWS): the Rust tests of `portcullis_idp::http::identity` check it. The expired login is a real
ID token re-signed with PyJWT and the pool's own key, read from the store's SQLite file (no
key-encryption key is configured, so the key is stored as it is).
"""

from __future__ import annotations

import datetime
import shutil
import sqlite3
import subprocess
import time

import boto3
import botocore
import botocore.config
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import ARTIFACTS, CONFIG_TEMPLATE, REGION, TIMEOUT, Backend, Gateway

POLICY = (
    '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke",'
    '"Resource":"arn:aws:execute-api:*:*:*/prod/$connect"}}]}}'
)

CONFIG = CONFIG_TEMPLATE.replace(
    "[server]\n", '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + f"""
[pools.main]
groups = ["admins", "members"]

[pools.main.clients.web]
public = true

[identity_pools.app]
user_pools = ["main"]
credentials_ttl = "15m"
roles = {{{{ authenticated = "chat-user", by_group = {{{{ admins = "chat-admin" }}}} }}}}

[identity_pools.open]
user_pools = ["main"]
allow_unauthenticated = true
roles = {{{{ authenticated = "chat-user", unauthenticated = "guest" }}}}

[roles.chat-user]
policy = '{POLICY}'

[roles.chat-admin]
policy = '{POLICY}'

[roles.guest]
policy = '{POLICY}'
"""

PASSWORD = "password1"


@pytest.fixture(scope="module")
def stack(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("identity_pools")
    backend = Backend().start()
    gateway = Gateway(portcullis_bin, workdir, f"http://127.0.0.1:{backend.port}/events", template=CONFIG)
    failed_before = request.session.testsfailed
    try:
        gateway.start()
        for user, groups in (("alice", ["admins"]), ("bob", []), ("carol", []), ("dave", [])):
            cli(gateway, "create", user, "--password", PASSWORD)
            for group in groups:
                cli(gateway, "add-to-group", user, group)
        yield gateway
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            try:
                gateway.terminate()
            except AssertionError as e:
                print(e)
        backend.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / "test_identity_pools"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("portcullis.log", "portcullis.toml"):
                if (workdir / name).exists():
                    shutil.copy(workdir / name, dest / name)
            print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")


def cli(gateway: Gateway, command: str, *args: str) -> None:
    """`portcullis users COMMAND ... --config F --pool main` on the gateway's store."""
    subprocess.run(
        [str(gateway.binary), "users", command, "--config", str(gateway.config_path), "--pool", "main", *args],
        cwd=gateway.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def client(stack: Gateway, service: str):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{stack.ws_port}",
        region_name=REGION,
        config=botocore.config.Config(
            signature_version=botocore.UNSIGNED,
            retries={"max_attempts": 1, "mode": "standard"},
            read_timeout=TIMEOUT,
        ),
    )


@pytest.fixture(scope="module")
def idp(stack):
    return client(stack, "cognito-idp")


@pytest.fixture(scope="module")
def identity(stack):
    return client(stack, "cognito-identity")


def provider(stack: Gateway) -> str:
    return f"127.0.0.1:{stack.ws_port}/pools/main"


def id_token(idp, username: str) -> str:
    r = idp.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return r["AuthenticationResult"]["IdToken"]


def pool_id(name: str) -> str:
    return f"{REGION}:{name}"


def test_sign_in_then_credentials(stack, idp, identity):
    token = id_token(idp, "alice")
    logins = {provider(stack): token}
    first = identity.get_id(IdentityPoolId=pool_id("app"), Logins=logins)["IdentityId"]
    assert first.startswith(f"{REGION}:")
    # GetId is idempotent (AWS keeps the identity; here it is derived), also with a new token
    # and with the account id given.
    assert identity.get_id(IdentityPoolId=pool_id("app"), Logins=logins)["IdentityId"] == first
    again = {provider(stack): id_token(idp, "alice")}
    assert identity.get_id(IdentityPoolId=pool_id("app"), AccountId="000000000000", Logins=again)["IdentityId"] == first
    # another user, another identity; another identity pool, another identity
    bob = identity.get_id(IdentityPoolId=pool_id("app"), Logins={provider(stack): id_token(idp, "bob")})
    assert bob["IdentityId"] != first
    other = identity.get_id(IdentityPoolId=pool_id("open"), Logins=logins)["IdentityId"]
    assert other != first

    before = datetime.datetime.now(datetime.timezone.utc)
    r = identity.get_credentials_for_identity(IdentityId=first, Logins=logins)
    assert r["IdentityId"] == first
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretKey"]) == 40
    assert creds["SessionToken"]
    # credentials_ttl = 15m
    ttl = (creds["Expiration"] - before).total_seconds()
    assert 14 * 60 <= ttl <= 16 * 60, ttl
    # each call mints new credentials
    again = identity.get_credentials_for_identity(IdentityId=first, Logins=logins)["Credentials"]
    assert again["AccessKeyId"] != creds["AccessKeyId"]
    # an access token of the pool is accepted as a login too
    auth = idp.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    r = identity.get_credentials_for_identity(IdentityId=first, Logins={provider(stack): auth["AccessToken"]})
    assert r["IdentityId"] == first

    # CustomRoleArn: a role of the user's groups, not one it has no right to
    admin_arn = "arn:aws:iam::000000000000:role/chat-admin"
    identity.get_credentials_for_identity(IdentityId=first, Logins=logins, CustomRoleArn=admin_arn)
    bob_logins = {provider(stack): id_token(idp, "bob")}
    with pytest.raises(identity.exceptions.NotAuthorizedException):
        identity.get_credentials_for_identity(IdentityId=bob["IdentityId"], Logins=bob_logins, CustomRoleArn=admin_arn)
    # bob's login does not open alice's identity
    with pytest.raises(identity.exceptions.NotAuthorizedException):
        identity.get_credentials_for_identity(IdentityId=first, Logins=bob_logins)


def test_open_id_token(stack, idp, identity):
    logins = {provider(stack): id_token(idp, "bob")}
    identity_id = identity.get_id(IdentityPoolId=pool_id("app"), Logins=logins)["IdentityId"]
    r = identity.get_open_id_token(IdentityId=identity_id, Logins=logins)
    assert r["IdentityId"] == identity_id
    # signed with the user pool's key, published in its JWKS
    base = f"http://127.0.0.1:{stack.ws_port}"
    key = jwt.PyJWKClient(f"{base}/pools/main/.well-known/jwks.json").get_signing_key_from_jwt(r["Token"]).key
    claims = jwt.decode(
        r["Token"], key, algorithms=["RS256"], audience=pool_id("app"), issuer=f"{base}/identity-pools/app"
    )
    assert claims["sub"] == identity_id
    assert claims["amr"][0] == "authenticated"


def test_login_tokens_that_are_refused(stack, idp, identity):
    token = id_token(idp, "carol")
    get_id = lambda logins: identity.get_id(IdentityPoolId=pool_id("app"), Logins=logins)  # noqa: E731
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    for logins in (
        {provider(stack): tampered},
        {provider(stack): "not-a-token"},
        {"cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc": token},
        {f"127.0.0.1:{stack.ws_port}/pools/other": token},
    ):
        with pytest.raises(identity.exceptions.NotAuthorizedException) as e:
            get_id(logins)
        assert e.value.response["Error"]["Message"].startswith("Invalid login token.")

    # Expired: the same claims, re-signed with the pool's own key but expired an hour ago.
    header = jwt.get_unverified_header(token)
    with sqlite3.connect(stack.workdir / "portcullis.db") as conn:
        (pkcs8,) = conn.execute("SELECT pkcs8 FROM signing_keys WHERE kid = ?", (header["kid"],)).fetchone()
    conn.close()
    private_key = serialization.load_der_private_key(bytes(pkcs8), password=None)
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
    expired = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": header["kid"]})
    # the re-signed token is genuine: with a fresh exp it is accepted
    claims.update(iat=now, exp=now + 600)
    fresh = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": header["kid"]})
    assert get_id({provider(stack): fresh})["IdentityId"]
    with pytest.raises(identity.exceptions.NotAuthorizedException) as e:
        get_id({provider(stack): expired})
    assert "expired" in e.value.response["Error"]["Message"]

    # Revoked: credentials are refused once the user is signed out everywhere.
    identity_id = get_id({provider(stack): token})["IdentityId"]
    cli(stack, "sign-out", "carol")
    for call in (
        lambda: get_id({provider(stack): token}),
        lambda: identity.get_credentials_for_identity(IdentityId=identity_id, Logins={provider(stack): token}),
    ):
        with pytest.raises(identity.exceptions.NotAuthorizedException):
            call()
    # a new sign-in works again
    assert get_id({provider(stack): id_token(idp, "carol")})["IdentityId"] == identity_id


def test_unknown_identity_pool(stack, idp, identity):
    with pytest.raises(identity.exceptions.ResourceNotFoundException):
        identity.get_id(IdentityPoolId=pool_id("nope"), Logins={provider(stack): id_token(idp, "dave")})
    with pytest.raises(identity.exceptions.ResourceNotFoundException):
        identity.get_id(IdentityPoolId=pool_id("app"), AccountId="123456789012")


def test_guests_only_where_allowed(stack, identity):
    with pytest.raises(identity.exceptions.NotAuthorizedException) as e:
        identity.get_id(IdentityPoolId=pool_id("app"))
    assert "Unauthenticated access is not supported" in e.value.response["Error"]["Message"]

    guest = identity.get_id(IdentityPoolId=pool_id("open"))["IdentityId"]
    assert guest != identity.get_id(IdentityPoolId=pool_id("open"))["IdentityId"]
    creds = identity.get_credentials_for_identity(IdentityId=guest)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    # default credentials_ttl: 1 hour
    ttl = (creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 59 * 60 <= ttl <= 61 * 60, ttl
    token = identity.get_open_id_token(IdentityId=guest)["Token"]
    assert jwt.decode(token, options={"verify_signature": False})["amr"] == ["unauthenticated"]
    # a guest id nobody handed out
    with pytest.raises(identity.exceptions.NotAuthorizedException):
        identity.get_credentials_for_identity(IdentityId=f"{REGION}:00000000-0000-4000-8000-000000000000")
