"""Seed 003 on Portcullis: `examples/seeds/seed003.toml` served as it is, driven by real clients.

Users carry HS256 JWTs signed with the application's secret, minted by `portcullis token mint`
(the seed's CreateTestJwt) and by PyJWT; they connect with `?access_token=` or, as a browser
must, with the token offered in `Sec-WebSocket-Protocol` next to the protocol the server echoes.
The `jwt` authorizer's context (`userId`, `firstName`, `lastName`, `sub`) reaches the `$connect`
handler, which stores it in SQLite, and every message; a push to the user by `userId` goes
through `POST /prod/@users/{userId}` signed as any `@connections` call.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import subprocess
import time

import jwt
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import TIMEOUT, wait_until
from test_seeds_functions import refused_status, serve, ws_connect  # noqa: F401 (fixture)

ISSUER = "my-app"
ADA = {"userId": "u1", "firstName": "Ada", "lastName": "Lovelace", "sub": "s-ada"}
GRACE = {"userId": "u2", "firstName": "Grace", "lastName": "Hopper", "sub": "s-grace"}


def cli_token(portcullis_bin, secret: str, claims: dict, *extra: str) -> str:
    """`portcullis token mint` as an operator runs it: the secret in the environment only."""
    done = subprocess.run(
        [str(portcullis_bin), "token", "mint", "--secret-env", "JWT_SECRET", "--issuer", ISSUER,
         "--claims", json.dumps(claims), "--ttl", "1h", *extra],
        capture_output=True, text=True, timeout=60,
        env={"JWT_SECRET": secret, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    token = done.stdout
    assert token.endswith("\n") and token.count("\n") == 1, "only the token, on one line"
    return token.strip()


def pyjwt_token(secret: str, claims: dict, **overrides) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "iat": now, "exp": now + 3600, **claims, **overrides}
    return jwt.encode(payload, secret, algorithm="HS256")


def push(gateway, path: str, data: bytes) -> requests.Response:
    url = f"http://127.0.0.1:{gateway.admin_port}{path}"
    request = AWSRequest(method="POST", url=url, data=data)
    secret = gateway.env["PORTCULLIS_ADMIN_SECRET"]
    SigV4Auth(Credentials("AKIDLOCAL", secret), "execute-api", "us-east-1").add_auth(request)
    return requests.post(url, data=data, headers=dict(request.headers.items()), timeout=TIMEOUT)


def ask(ws, text: str) -> dict:
    """Sends a message to $default and returns its answer (who the gateway says is talking)."""
    ws.send(text)
    return json.loads(ws.recv(timeout=TIMEOUT))


def test_seed003_tokens_in_query_or_protocol_carry_the_context_to_every_handler_and_push(
    serve, portcullis_bin, tmp_path
):
    secret = secrets.token_urlsafe(32)
    state = tmp_path / "seed003-state"
    gateway = serve("seed003", JWT_SECRET=secret, SEED003_STATE_DIR=str(state))
    url = f"ws://{gateway.base}/seed003"

    def stored() -> dict[str, tuple]:
        path = state / "connections.sqlite3"
        if not path.exists():
            return {}
        with sqlite3.connect(path, timeout=10) as db:
            return {row[0]: row[1:] for row in db.execute("SELECT * FROM connections")}

    sockets = contextlib.ExitStack()
    # The operator's token (CLI) in the query string, as the article connects with Postman.
    by_query = sockets.enter_context(
        ws_connect(f"{url}?access_token={cli_token(portcullis_bin, secret, ADA)}")
    )
    # PyJWT's token offered as a subprotocol, next to the one the page really speaks: the
    # gateway echoes "websocket" (never the token), so a browser accepts the handshake.
    by_protocol = sockets.enter_context(
        ws_connect(url, subprotocols=["websocket", pyjwt_token(secret, ADA)])
    )
    assert by_protocol.subprotocol == "websocket"
    grace = sockets.enter_context(
        ws_connect(f"{url}?access_token={cli_token(portcullis_bin, secret, GRACE)}")
    )

    # Every message carries the context, as the seed's Lambda authorizer gave it.
    for ws, who in ((by_query, ADA), (by_protocol, ADA), (grace, GRACE)):
        for text in ("hello", json.dumps({"action": "anything", "n": 1})):
            answer = ask(ws, text)
            assert answer["context"] == who
            assert answer["principalId"] == who["userId"]
            assert answer["echo"] == text
            # $connect stored the same identity with the connection.
            assert answer["stored"] == who
    rows = wait_until(lambda: len(stored()) == 3 and stored(), what="three stored connections")
    assert sorted(rows.values()) == sorted(
        [tuple(ADA.values()), tuple(ADA.values()), tuple(GRACE.values())]
    )

    # A push to the user by userId reaches both of Ada's connections and not Grace's.
    r = push(gateway, "/prod/@users/u1", b"for Ada only")
    assert (r.status_code, r.json()) == (200, {"connections": 2}), r.text
    assert by_query.recv(timeout=TIMEOUT) == "for Ada only"
    assert by_protocol.recv(timeout=TIMEOUT) == "for Ada only"
    assert ask(grace, "still me?")["echo"] == "still me?", "Grace received nothing before"
    assert push(gateway, "/prod/@users/s-ada", b"x").json() == {"connections": 0}, \
        "the principal is userId, not sub"

    sockets.close()
    wait_until(lambda: stored() == {}, what="the $disconnect handler deleting every row")


@pytest.mark.filterwarnings("ignore:The HMAC key")
def test_seed003_refuses_missing_forged_and_expired_tokens(serve, portcullis_bin, tmp_path):
    secret = secrets.token_urlsafe(32)
    gateway = serve("seed003", JWT_SECRET=secret, SEED003_STATE_DIR=str(tmp_path / "state"))
    url = f"ws://{gateway.base}/seed003"

    assert refused_status(url) == 401
    assert refused_status(url, subprotocols=["websocket"]) == 401
    wrong_secret = pyjwt_token(secrets.token_urlsafe(32), ADA)
    assert refused_status(f"{url}?access_token={wrong_secret}") == 401
    assert refused_status(url, subprotocols=["websocket", wrong_secret]) == 401
    expired = pyjwt_token(secret, ADA, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    assert refused_status(f"{url}?access_token={expired}") == 401
    other_issuer = pyjwt_token(secret, ADA, iss="someone-else")
    assert refused_status(f"{url}?access_token={other_issuer}") == 401
    unsigned = jwt.encode({"iss": ISSUER, "exp": int(time.time()) + 600, **ADA}, None, algorithm="none")
    assert refused_status(f"{url}?access_token={unsigned}") == 401
    hs512 = jwt.encode(
        {"iss": ISSUER, "exp": int(time.time()) + 600, **ADA}, secret, algorithm="HS512"
    )
    assert refused_status(f"{url}?access_token={hs512}") == 401, "only HS256 is configured"
    # The right token still gets in.
    with ws_connect(f"{url}?access_token={pyjwt_token(secret, ADA)}") as ws:
        assert ask(ws, "hi")["context"] == ADA


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--claims", '{"userId": '], {"JWT_SECRET": "s" * 40}, "--claims is not valid JSON"),
        (["--claims", '["u1"]'], {"JWT_SECRET": "s" * 40}, "must be a JSON object"),
        (["--claims", '{"userId":"u1"}'], {}, "JWT_SECRET is not set"),
        (["--claims", '{"userId":"u1"}'], {"JWT_SECRET": "short"}, "at least 32"),
    ],
)
def test_token_mint_fails_loudly_with_nothing_on_stdout(portcullis_bin, args, env, message):
    done = subprocess.run(
        [str(portcullis_bin), "token", "mint", "--secret-env", "JWT_SECRET", "--issuer", ISSUER, *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert message in done.stderr
    assert "s" * 40 not in done.stderr
