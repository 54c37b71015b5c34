"""SRP sign-in (USER_SRP_AUTH → PASSWORD_VERIFIER) with the real client libraries against the
real binary: pycognito (`Cognito.authenticate`, and its `AWSSRP` helper step by step, over a
boto3 client), amazon-cognito-identity-js in Node (`tests/node-aws/srp.mjs`) and AWS Amplify v6's
`signIn` in Node (`tests/node-aws/amplify.mjs`).

Users are created with the admin CLI (`portcullis users create --password`), so their SRP
verifiers are computed by the binary. Tokens are verified against the pool's JWKS. pycognito
checks `iss` against `{endpoint}/{pool id}` (Cognito's URL shape): the subclass below points it
at the pool's issuer (`{public_url}/pools/main`) instead, as a self-hosted deployment would.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess

import boto3
import botocore.config
import botocore.exceptions
import jwt
import pytest
from pycognito import Cognito
from pycognito.aws_srp import AWSSRP

from conftest import CONFIG_TEMPLATE, REPO, TIMEOUT, Backend, Gateway, cognito_client, module_gateway

POOL = "main"
POOL_ID = "us-east-1_main"
SECRET = "confidential-secret-0123456789abcdef"
NODE_DIR = REPO / "tests" / "node-aws"

CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[pools.main]
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.clients.web]
public = true

[pools.main.clients.confidential]
secret = "{client_secret}"
grants = ["password", "refresh_token"]

[pools.main.clients.password-only]
public = true
auth_flows = ["USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"]
"""


@pytest.fixture(scope="module")
def stack(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cognito_srp")
    backend = Backend().start()
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        template=CONFIG,
        client_secret=SECRET,
    )
    with module_gateway(request, gateway, "test_cognito_srp", backend):
        yield gateway


def endpoint(stack: Gateway) -> str:
    return f"http://127.0.0.1:{stack.ws_port}"


def issuer(stack: Gateway) -> str:
    return f"{endpoint(stack)}/pools/{POOL}"


@pytest.fixture(scope="module")
def idp(stack):
    return cognito_client(stack)


def create_user(stack: Gateway, username: str, password: str) -> None:
    """`portcullis users create NAME --password PW` on the gateway's store (CONFIRMED)."""
    subprocess.run(
        [str(stack.binary), "users", "create", username, "--config", str(stack.config_path),
         "--pool", POOL, "--password", password],
        cwd=stack.workdir, capture_output=True, text=True, timeout=60, check=True,
    )


def cognito(stack: Gateway, username: str, client_id: str = "web", client_secret: str | None = None) -> Cognito:
    """pycognito's Cognito over the gateway, checking tokens against the pool's issuer."""
    pool_issuer = issuer(stack)

    class PortcullisCognito(Cognito):
        @property
        def user_pool_url(self) -> str:
            return pool_issuer

    return PortcullisCognito(
        POOL_ID,
        client_id,
        username=username,
        client_secret=client_secret,
        boto3_client_kwargs={
            "endpoint_url": endpoint(stack),
            "aws_access_key_id": "x",
            "aws_secret_access_key": "x",
        },
        botocore_config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def verify_id_token(stack: Gateway, token: str, client_id: str) -> dict:
    key = jwt.PyJWKClient(f"{issuer(stack)}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=client_id, issuer=issuer(stack))
    assert claims["token_use"] == "id"
    return claims


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_pycognito_signs_in_with_srp(stack):
    create_user(stack, "alice", "Password1-alice")
    user = cognito(stack, "alice")
    user.authenticate(password="Password1-alice")
    # pycognito verified both tokens against the JWKS; so does PyJWT
    claims = verify_id_token(stack, user.id_token, "web")
    assert claims["cognito:username"] == "alice"
    assert user.refresh_token
    with pytest.raises(botocore.exceptions.ClientError) as wrong:
        cognito(stack, "alice").authenticate(password="Password1-wrong")
    assert error_code(wrong) == "NotAuthorizedException"
    assert wrong.value.response["Error"]["Message"] == "Incorrect username or password."
    # an unknown user gets a challenge too, and fails the same way
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        cognito(stack, "nobody").authenticate(password="Password1-alice")
    assert error_code(unknown) == "NotAuthorizedException"
    assert unknown.value.response["Error"]["Message"] == "Incorrect username or password."


def srp_steps(idp, username: str, password: str, client_secret: str | None = None, client_id: str = "web"):
    """pycognito's AWSSRP by hand: the challenge, and the answer it would send."""
    srp = AWSSRP(username=username, password=password, pool_id=POOL_ID, client_id=client_id,
                 client=idp, client_secret=client_secret)
    params = srp.get_auth_params()
    challenge = idp.initiate_auth(AuthFlow="USER_SRP_AUTH", AuthParameters=params, ClientId=client_id)
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    assert "Session" not in challenge
    assert set(challenge["ChallengeParameters"]) == {"SALT", "SECRET_BLOCK", "SRP_B", "USERNAME", "USER_ID_FOR_SRP"}
    return srp, params, challenge["ChallengeParameters"]


def test_a_replayed_answer_is_refused(stack, idp):
    create_user(stack, "bob", "Password1-bob")
    srp, params, challenge = srp_steps(idp, "bob", "Password1-bob")
    answer = srp.process_challenge(challenge, params)
    tokens = idp.respond_to_auth_challenge(ClientId="web", ChallengeName="PASSWORD_VERIFIER",
                                           ChallengeResponses=answer)
    verify_id_token(stack, tokens["AuthenticationResult"]["IdToken"], "web")
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.respond_to_auth_challenge(ClientId="web", ChallengeName="PASSWORD_VERIFIER",
                                      ChallengeResponses=answer)


def test_a_stale_timestamp_is_refused(stack, idp):
    create_user(stack, "carol", "Password1-carol")
    srp, params, challenge = srp_steps(idp, "carol", "Password1-carol")
    ten_minutes_ago = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    srp.get_cognito_formatted_timestamp = lambda _now: AWSSRP.get_cognito_formatted_timestamp(ten_minutes_ago)
    answer = srp.process_challenge(challenge, params)
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.respond_to_auth_challenge(ClientId="web", ChallengeName="PASSWORD_VERIFIER",
                                      ChallengeResponses=answer)


def test_a_client_with_a_secret(stack, idp):
    create_user(stack, "dave", "Password1-dave")
    user = cognito(stack, "dave", client_id="confidential", client_secret=SECRET)
    user.authenticate(password="Password1-dave")
    assert verify_id_token(stack, user.id_token, "confidential")["cognito:username"] == "dave"
    # without the secret, SECRET_HASH is missing
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        cognito(stack, "dave", client_id="confidential").authenticate(password="Password1-dave")
    assert error_code(missing) == "NotAuthorizedException"


def test_auth_flows_restrict_a_client(stack, idp):
    create_user(stack, "erin", "Password1-erin")
    with pytest.raises(idp.exceptions.InvalidParameterException):
        srp_steps(idp, "erin", "Password1-erin", client_id="password-only")
    r = idp.initiate_auth(ClientId="password-only", AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "erin", "PASSWORD": "Password1-erin"})
    assert "IdToken" in r["AuthenticationResult"]


def test_amazon_cognito_identity_js_signs_in_with_srp(stack):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "amazon-cognito-identity-js").is_dir():
        reason = "Node.js or tests/node-aws/node_modules is missing (cd tests/node-aws && npm ci)"
        if os.environ.get("PORTCULLIS_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    create_user(stack, "frank", "Password1-frank")
    run = subprocess.run(
        [node, str(NODE_DIR / "srp.mjs")],
        cwd=NODE_DIR,
        env={**os.environ, "PORTCULLIS_URL": endpoint(stack), "USER_POOL_ID": POOL_ID,
             "CLIENT_ID": "web", "USERNAME": "frank", "PASSWORD": "Password1-frank"},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, f"srp.mjs failed:\n{run.stdout}\n{run.stderr}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert verify_id_token(stack, result["idToken"], "web")["cognito:username"] == "frank"
    assert result["username"] == "frank"
    assert result["wrong"] == "NotAuthorizedException"


def test_amplify_v6_signs_in_with_srp(stack):
    """AWS Amplify v6 `signIn` (its default USER_SRP_AUTH) with `userPoolEndpoint` = the gateway,
    then `fetchAuthSession` (and a forced refresh), `getCurrentUser` and `signOut`; a wrong
    password gets Cognito's error name."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "aws-amplify").is_dir():
        reason = "Node.js or tests/node-aws/node_modules is missing (cd tests/node-aws && npm ci)"
        if os.environ.get("PORTCULLIS_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    create_user(stack, "grace", "Password1-grace")
    run = subprocess.run(
        [node, str(NODE_DIR / "amplify.mjs")],
        cwd=NODE_DIR,
        env={**os.environ, "PORTCULLIS_URL": endpoint(stack), "USER_POOL_ID": POOL_ID,
             "CLIENT_ID": "web", "USERNAME": "grace", "PASSWORD": "Password1-grace"},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, f"amplify.mjs failed:\n{run.stdout}\n{run.stderr}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert (result["signedIn"], result["nextStep"]) == (True, "DONE"), result
    claims = verify_id_token(stack, result["idToken"], "web")
    assert claims["cognito:username"] == "grace"
    assert result["username"] == "grace"
    assert result["userId"] == claims["sub"]
    # forceRefresh: new tokens from GetTokensFromRefreshToken
    assert result["refreshedAccessToken"] not in (None, result["accessToken"])
    refreshed = jwt.decode(result["refreshedAccessToken"], options={"verify_signature": False})
    assert (refreshed["username"], refreshed["client_id"]) == ("grace", "web")
    assert result["wrong"] == "NotAuthorizedException"
