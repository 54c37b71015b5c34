"""A user pool's Lambda triggers against the real binary, with boto3.

The pool calls a webhook served by this test (pre sign-up, pre authentication) and a Python
Lambda handler run by Portcullis as `[functions.claims]` (pre token generation). The handler
adds the claim `custom_tier = "gold"` to the ID token, and an HTTP API route protected by a
`jwt` authorizer on the pool hands that claim to its backend in
`requestContext.authorizer.jwt.claims`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config
import pytest
import requests

from conftest import CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway, module_gateway

PASSWORD = "password123"

CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[http.shop]
base_path = "/api"

[http.shop.routes]
"GET /profile" = {{ integration = "backend", authorizer = "pool_ids" }}

# ID tokens: the V1_0 pre token generation event customises those.
[authorizers.pool_ids]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{{ issuer = "http://127.0.0.1:{ws_port}/pools/main", audience = ["web"] }}]
token_use = "id"

[functions.claims]
runtime = "python3.11"
handler = "app.handler"
code = "claims"
timeout = "5s"

[pools.main]
self_sign_up = true
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.triggers]
pre_sign_up = {{ url = "{hook_url}/pre-sign-up" }}
pre_authentication = {{ url = "{hook_url}/pre-authentication" }}
pre_token_generation = {{ function = "claims" }}

[pools.main.clients.web]
public = true
"""

# The pre token generation handler, unchanged from what would run on AWS Lambda.
HANDLER = '''
def handler(event, context):
    if event["userName"] == "autofrank":
        raise Exception("no tokens for frank")
    event["response"]["claimsOverrideDetails"] = {
        "claimsToAddOrOverride": {"custom_tier": "gold"},
    }
    return event
'''


class Hook:
    """The webhook: records each event by path and answers as a Lambda trigger."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.events.append((self.path, event))
                status, body = hook.answer(self.path, event)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, event: dict) -> tuple[int, dict]:
        if path == "/pre-sign-up" and event["userName"].startswith("auto"):
            event["response"]["autoConfirmUser"] = True
            event["response"]["autoVerifyEmail"] = True
        if path == "/pre-authentication" and event["userName"] == "mallory":
            return 400, {"errorMessage": "Mallory may not sign in", "errorType": "Error"}
        return 200, event

    def received(self, path: str) -> list[dict]:
        return [e for p, e in self.events if p == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cognito_triggers")
    (workdir / "claims").mkdir()
    (workdir / "claims" / "app.py").write_text(HANDLER)
    backend = Backend().start()
    hook = Hook()
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        template=CONFIG,
        hook_url=hook.url,
    )
    with module_gateway(request, gateway, "test_cognito_triggers", backend, hook):
        yield gateway, backend, hook


@pytest.fixture(scope="module")
def idp(world):
    gateway, _, _ = world
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{gateway.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def sign_in(idp, username: str) -> dict:
    return idp.initiate_auth(
        ClientId="web",
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]


def test_pre_sign_up_confirms_the_user_who_signs_in_without_a_code(world, idp):
    _, _, hook = world
    answer = idp.sign_up(
        ClientId="web",
        Username="autoalice",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "alice@example.com"}],
        ValidationData=[{"Name": "invite", "Value": "A-1"}],
    )
    assert answer["UserConfirmed"] is True
    assert "CodeDeliveryDetails" not in answer
    event = hook.received("/pre-sign-up")[-1]
    assert event["triggerSource"] == "PreSignUp_SignUp"
    assert event["userPoolId"] == "us-east-1_main"
    assert event["callerContext"]["clientId"] == "web"
    assert event["request"]["validationData"] == {"invite": "A-1"}
    assert PASSWORD not in json.dumps(event)
    # no ConfirmSignUp: the trigger confirmed the user
    assert sign_in(idp, "autoalice")["IdToken"]


def test_a_pre_token_claim_reaches_the_backend_of_a_jwt_route(world, idp):
    gateway, backend, _ = world
    idp.sign_up(ClientId="web", Username="autobob", Password=PASSWORD)
    tokens = sign_in(idp, "autobob")
    reply = requests.get(
        f"http://127.0.0.1:{gateway.ws_port}/api/profile",
        headers={"Authorization": f"Bearer {tokens['IdToken']}"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200, reply.text
    event = backend.wait_for(None, pred=lambda e: e.get("rawPath") == "/api/profile")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["custom_tier"] == "gold"
    assert claims["cognito:username"] == "autobob"
    # refreshed tokens are shaped alike
    refreshed = idp.initiate_auth(
        ClientId="web",
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
    )["AuthenticationResult"]
    reply = requests.get(
        f"http://127.0.0.1:{gateway.ws_port}/api/profile",
        headers={"Authorization": f"Bearer {refreshed['IdToken']}"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200, reply.text


def test_pre_authentication_refusal_is_a_user_lambda_validation_exception(world, idp):
    _, _, hook = world
    idp.sign_up(ClientId="web", Username="automallory", Password=PASSWORD)
    idp.sign_up(ClientId="web", Username="mallory", Password=PASSWORD)
    with pytest.raises(idp.exceptions.UserLambdaValidationException) as refused:
        sign_in(idp, "mallory")
    assert refused.value.response["Error"]["Message"] == (
        "PreAuthentication failed with error Mallory may not sign in."
    )
    event = hook.received("/pre-authentication")[-1]
    assert event["triggerSource"] == "PreAuthentication_Authentication"
    assert event["request"]["userAttributes"]["cognito:user_status"] == "UNCONFIRMED"
    # a wrong password is refused before the trigger runs
    calls = len(hook.received("/pre-authentication"))
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.initiate_auth(
            ClientId="web",
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "mallory", "PASSWORD": "wrong-password1"},
        )
    assert len(hook.received("/pre-authentication")) == calls


def test_a_function_that_raises_refuses_the_sign_in(world, idp):
    idp.sign_up(ClientId="web", Username="autofrank", Password=PASSWORD)
    with pytest.raises(idp.exceptions.UserLambdaValidationException) as refused:
        sign_in(idp, "autofrank")
    assert refused.value.response["Error"]["Message"] == (
        "PreTokenGeneration failed with error no tokens for frank."
    )
