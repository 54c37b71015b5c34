"""The native cognito-idp JSON API with a real boto3 client against the real binary.

Assumes the gateway routes `POST /` with `X-Amz-Target: AWSCognitoIdentityProviderService.*` on
the public listener to `portcullis_idp::cognito_router`. Sign-up codes are confirmed with the
admin CLI (`portcullis users confirm`); the password-reset code is read from the gateway's log
(codes are delivered by an info-level log line). Tokens are verified with PyJWT against the
pool's JWKS. A second gateway has a pool with `code_webhook`: its codes arrive at a Python HTTP
listener (and not in the log), and a pool with `rate_limit_per_ip = 1` answers
TooManyRequestsException.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config
import botocore.exceptions
import jwt
import pytest

from conftest import CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway, wait_until, cognito_client, module_gateway

POOL = "main"
SECRET = "confidential-secret-0123456789abcdef"

CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[pools.main]
self_sign_up = true
password_policy = {{ min_length = 8, require_digits = true }}
access_token_ttl = "1h"

[pools.main.clients.web]
public = true

[pools.main.clients.confidential]
secret = "{client_secret}"
grants = ["password", "refresh_token"]
"""


@pytest.fixture(scope="module")
def stack(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cognito")
    backend = Backend().start()
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        template=CONFIG,
        client_secret=SECRET,
    )
    with module_gateway(request, gateway, "test_cognito", backend):
        yield gateway


@pytest.fixture(scope="module")
def idp(stack):
    return cognito_client(stack)


def cli(stack: Gateway, *args: str) -> subprocess.CompletedProcess:
    """`portcullis users ARGS... --config F --pool main` in the gateway's directory (same store)."""
    return subprocess.run(
        [str(stack.binary), "users", args[0], "--config", str(stack.config_path), "--pool", POOL, *args[1:]],
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def secret_hash(username: str, client_id: str = "confidential") -> str:
    mac = hmac.new(SECRET.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def verify(stack: Gateway, token: str, token_use: str, client_id: str) -> dict:
    issuer = f"http://127.0.0.1:{stack.ws_port}/pools/{POOL}"
    jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    if token_use == "id":
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=client_id, issuer=issuer)
        assert claims["aud"] == client_id
    else:
        claims = jwt.decode(
            token, key.key, algorithms=["RS256"], issuer=issuer, options={"verify_aud": False}
        )
        assert "aud" not in claims
        assert claims["client_id"] == client_id
    assert claims["token_use"] == token_use
    return claims


def login(idp, username: str, password: str, client_id: str = "web", **extra) -> dict:
    params = {"USERNAME": username, "PASSWORD": password, **extra}
    return idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params)


def test_sign_up_confirm_sign_in_refresh_change_and_global_sign_out(stack, idp):
    r = idp.sign_up(
        ClientId="web",
        Username="bob",
        Password="password1",
        UserAttributes=[{"Name": "email", "Value": "bob@example.com"}],
    )
    assert r["UserConfirmed"] is False
    sub = r["UserSub"]
    with pytest.raises(idp.exceptions.UsernameExistsException):
        idp.sign_up(ClientId="web", Username="bob", Password="password1")
    with pytest.raises(idp.exceptions.InvalidPasswordException):
        idp.sign_up(ClientId="web", Username="weak", Password="short")
    with pytest.raises(idp.exceptions.UserNotConfirmedException):
        login(idp, "bob", "password1")
    # the code went to the log only: the password did not
    assert "password1" not in stack.log_text()
    cli(stack, "confirm", "bob")

    auth = login(idp, "bob", "password1")["AuthenticationResult"]
    assert auth["TokenType"] == "Bearer" and auth["ExpiresIn"] == 3600
    access = verify(stack, auth["AccessToken"], "access", "web")
    idt = verify(stack, auth["IdToken"], "id", "web")
    assert access["sub"] == idt["sub"] == sub
    assert idt["email"] == "bob@example.com"
    refresh = auth["RefreshToken"]
    assert refresh.count(".") != 2  # opaque, not a JWT

    me = idp.get_user(AccessToken=auth["AccessToken"])
    assert me["Username"] == "bob"
    assert {"Name": "sub", "Value": sub} in me["UserAttributes"]

    r = idp.initiate_auth(ClientId="web", AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh})
    verify(stack, r["AuthenticationResult"]["IdToken"], "id", "web")
    # a public client rotates refresh tokens (as Cognito with rotation on): a new one each time
    assert r["AuthenticationResult"]["RefreshToken"] not in ("", refresh)

    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.change_password(PreviousPassword="wrong-pass1", ProposedPassword="password2", AccessToken=auth["AccessToken"])
    idp.change_password(PreviousPassword="password1", ProposedPassword="password2", AccessToken=auth["AccessToken"])
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        login(idp, "bob", "password1")
    login(idp, "bob", "password2")

    # in the same second as the sign-in: sign-out still ends the session
    idp.global_sign_out(AccessToken=auth["AccessToken"])
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.get_user(AccessToken=auth["AccessToken"])
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.initiate_auth(ClientId="web", AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh})


def test_wrong_password_and_unknown_user_are_both_not_authorized(stack, idp):
    idp.sign_up(ClientId="web", Username="carol", Password="password1")
    cli(stack, "confirm", "carol")
    for username in ("carol", "nobody-here"):
        with pytest.raises(idp.exceptions.NotAuthorizedException) as e:
            login(idp, username, "wrong-pass1")
        assert e.value.response["Error"]["Message"] == "Incorrect username or password."
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_brute_force_locks_the_user_out(stack, idp):
    idp.sign_up(ClientId="web", Username="dave", Password="password1")
    cli(stack, "confirm", "dave")
    for _ in range(5):
        with pytest.raises(idp.exceptions.NotAuthorizedException):
            login(idp, "dave", "wrong-pass1")
    # locked: even the right password is refused, with the lockout message
    with pytest.raises(idp.exceptions.NotAuthorizedException) as e:
        login(idp, "dave", "password1")
    assert e.value.response["Error"]["Message"] == "Password attempts exceeded"
    # the first lock lasts 1 s
    time.sleep(2.1)
    login(idp, "dave", "password1")


def test_secret_hash_client(stack, idp):
    idp.sign_up(ClientId="confidential", Username="erin", Password="password1", SecretHash=secret_hash("erin"))
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.sign_up(ClientId="confidential", Username="erin2", Password="password1")
    cli(stack, "confirm", "erin")
    with pytest.raises(idp.exceptions.NotAuthorizedException) as e:
        login(idp, "erin", "password1", client_id="confidential")
    assert "SECRET_HASH" in e.value.response["Error"]["Message"]
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        login(idp, "erin", "password1", client_id="confidential", SECRET_HASH=secret_hash("erin", "web"))
    auth = login(idp, "erin", "password1", client_id="confidential", SECRET_HASH=secret_hash("erin"))["AuthenticationResult"]
    verify(stack, auth["AccessToken"], "access", "confidential")
    verify(stack, auth["IdToken"], "id", "confidential")
    r = idp.initiate_auth(
        ClientId="confidential",
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": auth["RefreshToken"], "SECRET_HASH": secret_hash("erin")},
    )
    assert r["AuthenticationResult"]["AccessToken"]
    idp.revoke_token(Token=auth["RefreshToken"], ClientId="confidential", ClientSecret=SECRET)
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.initiate_auth(
            ClientId="confidential",
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": auth["RefreshToken"], "SECRET_HASH": secret_hash("erin")},
        )


def test_unknown_client_and_forgot_password(stack, idp):
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        login(idp, "x", "y", client_id="no-such-client")
    idp.sign_up(ClientId="web", Username="fred", Password="password1")
    cli(stack, "confirm", "fred")
    r = idp.forgot_password(ClientId="web", Username="fred")
    assert r["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    pattern = re.compile(r'username[=":\s]+"?fred"?.*?purpose[=":\s]+"?forgot_password"?.*?code[=":\s]+"?(\d{6})')
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    code = wait_until(
        lambda: (pattern.findall(ansi.sub("", stack.log_text())) or [None])[-1], what="reset code in the log"
    )
    with pytest.raises(idp.exceptions.CodeMismatchException):
        idp.confirm_forgot_password(
            ClientId="web", Username="fred", ConfirmationCode="000000" if code != "000000" else "111111", Password="password7"
        )
    with pytest.raises(idp.exceptions.InvalidPasswordException):
        idp.confirm_forgot_password(ClientId="web", Username="fred", ConfirmationCode=code, Password="weak")
    idp.confirm_forgot_password(ClientId="web", Username="fred", ConfirmationCode=code, Password="password7")
    login(idp, "fred", "password7")
    # unknown users get a simulated delivery, not UserNotFoundException
    idp.forgot_password(ClientId="web", Username="nobody-at-all")


def answer(call, **params) -> tuple:
    """What a caller sees of one operation: the body of a success, or status, code and message."""
    try:
        r = call(**params)
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]
        return ("error", e.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"], err["Message"])
    return ("ok", {k: v for k, v in r.items() if k != "ResponseMetadata"})


def test_code_answers_are_the_same_for_known_and_unknown_names(stack, idp):
    idp.sign_up(
        ClientId="web", Username="kim", Password="password1", UserAttributes=[{"Name": "email", "Value": "kim@example.com"}]
    )
    cli(stack, "confirm", "kim")

    def script(name: str) -> list[tuple]:
        seen = []
        for _ in range(6):  # 5 reset codes an hour, then LimitExceededException
            seen.append(answer(idp.forgot_password, ClientId="web", Username=name))
        for _ in range(2):
            seen.append(answer(idp.resend_confirmation_code, ClientId="web", Username=name))
        for _ in range(2):  # a confirmed user is told nothing about its status
            seen.append(answer(idp.confirm_sign_up, ClientId="web", Username=name, ConfirmationCode="1234567"))
        for _ in range(7):  # 5 wrong guesses per code, then LimitExceededException
            seen.append(
                answer(
                    idp.confirm_forgot_password,
                    ClientId="web",
                    Username=name,
                    ConfirmationCode="1234567",
                    Password="password7",
                )
            )
        return seen

    known, unknown = script("kim"), script("nobody-kim")
    assert known == unknown
    masked = {"Destination": "***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    assert known[0] == ("ok", {"CodeDeliveryDetails": masked})
    limited = ("error", 400, "LimitExceededException", "Attempt limit exceeded, please try after some time.")
    assert known[5] == limited and known[-1] == limited
    assert known[8][2] == "CodeMismatchException"


# ---- codes to a webhook, and the per-IP rate limit ---------------------------------------------

HOOK_SECRET = "webhook-secret-0123456789"

HOOK_CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[pools.hooked]
self_sign_up = true
code_webhook = "http://127.0.0.1:{hook_port}/codes"
code_webhook_secret = "{hook_secret}"

[pools.hooked.clients.hooked-web]
public = true

[pools.tight]
self_sign_up = true
rate_limit_per_ip = 1

[pools.tight.clients.tight-web]
public = true
"""


class CodeWebhook:
    """Records every POST (headers, raw body) and answers 204."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.cond:
                    hook.posts.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                    hook.cond.notify_all()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, username: str, kind: str) -> tuple[dict[str, str], bytes, dict]:
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                for headers, raw in self.posts:
                    body = json.loads(raw)
                    if body.get("username") == username and body.get("kind") == kind:
                        return headers, raw, body
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} code for {username} reached the webhook; got {self.posts}")
                self.cond.wait(left)

    def count(self, username: str, kind: str) -> int:
        with self.cond:
            bodies = [json.loads(raw) for _, raw in self.posts]
        return sum(1 for b in bodies if b.get("username") == username and b.get("kind") == kind)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hook_stack(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cognito-webhook")
    backend = Backend().start()
    hook = CodeWebhook()
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        template=HOOK_CONFIG,
        hook_port=hook.port,
        hook_secret=HOOK_SECRET,
    )
    with module_gateway(request, gateway, "test_cognito_webhook", hook, backend):
        yield gateway, hook


@pytest.fixture(scope="module")
def hook_idp(hook_stack):
    gateway, _ = hook_stack
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{gateway.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def test_sign_up_code_goes_to_the_webhook_and_confirms_the_user(hook_stack, hook_idp):
    gateway, hook = hook_stack
    r = hook_idp.sign_up(
        ClientId="hooked-web",
        Username="gwen",
        Password="password1",
        UserAttributes=[{"Name": "email", "Value": "gwen@example.com"}],
    )
    assert r["UserConfirmed"] is False
    headers, raw, body = hook.wait_for("gwen", "SIGN_UP")
    assert body == {
        "pool": "hooked",
        "username": "gwen",
        "kind": "SIGN_UP",
        "code": body["code"],
        "client_id": "hooked-web",
        "destination": {"email": "gwen@example.com"},
    }
    assert re.fullmatch(r"\d{6}", body["code"])
    assert headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-portcullis-signature"], expected)

    hook_idp.confirm_sign_up(ClientId="hooked-web", Username="gwen", ConfirmationCode=body["code"])
    auth = hook_idp.initiate_auth(
        ClientId="hooked-web",
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "gwen", "PASSWORD": "password1"},
    )["AuthenticationResult"]
    assert auth["AccessToken"]

    # a reset code takes the same way
    hook_idp.forgot_password(ClientId="hooked-web", Username="gwen")
    _, _, reset = hook.wait_for("gwen", "FORGOT_PASSWORD")
    hook_idp.confirm_forgot_password(
        ClientId="hooked-web", Username="gwen", ConfirmationCode=reset["code"], Password="password2"
    )
    hook_idp.initiate_auth(
        ClientId="hooked-web",
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "gwen", "PASSWORD": "password2"},
    )
    # with a webhook, the log does not carry the codes
    log = gateway.log_text()
    assert body["code"] not in log and reset["code"] not in log
    assert "password1" not in log


def test_twelve_forgot_passwords_send_at_most_five_codes(hook_stack, hook_idp):
    _, hook = hook_stack
    hook_idp.sign_up(ClientId="hooked-web", Username="hal", Password="password1")
    _, _, body = hook.wait_for("hal", "SIGN_UP")
    hook_idp.confirm_sign_up(ClientId="hooked-web", Username="hal", ConfirmationCode=body["code"])
    outcomes = []
    for _ in range(12):
        try:
            hook_idp.forgot_password(ClientId="hooked-web", Username="hal")
            outcomes.append("sent")
        except hook_idp.exceptions.LimitExceededException:
            outcomes.append("LimitExceededException")
    assert outcomes == ["sent"] * 5 + ["LimitExceededException"] * 7
    wait_until(lambda: hook.count("hal", "FORGOT_PASSWORD") >= 5, what="5 reset codes at the webhook")
    time.sleep(0.3)  # deliveries run in the background: give a 6th (there must be none) a chance
    assert hook.count("hal", "FORGOT_PASSWORD") == 5


def test_rate_limit_per_ip_answers_too_many_requests(hook_stack, hook_idp):
    # rate_limit_per_ip = 1: a burst of 2, then one request per second
    refused = None
    for _ in range(10):
        try:
            login(hook_idp, "nobody", "wrong-pass1", client_id="tight-web")
        except hook_idp.exceptions.TooManyRequestsException as e:
            refused = e
            break
        except hook_idp.exceptions.NotAuthorizedException:
            pass
    assert refused is not None, "no TooManyRequestsException within 10 sign-ins at 1/s"
    assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    headers = refused.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"].startswith("TooManyRequestsException")
    # the other pool's limit (default 200/s) is not touched
    with pytest.raises(hook_idp.exceptions.NotAuthorizedException):
        login(hook_idp, "nobody", "wrong-pass1", client_id="hooked-web")
