"""The seeds as written, run by Portcullis as functions: `examples/seeds/*.toml` served as they
are (only their addresses moved through the variables they read), driven by real clients.

* seed 002: its Python authorizer, the article's code unchanged, on an HTTP route (payload 1.0).
  Its JWKS fetches from `https://cognito-idp.us-east-1.amazonaws.com/...` reach
  `examples/seeds/cognito_stub.py` through `https_proxy` and a throwaway CA in `SSL_CERT_FILE`.
* seed 001: the Node.js cookie + CSRF authorizer on a WebSocket API's `$connect`.
* the chat: AWS's simple-websockets-chat-app in Python, connection ids in SQLite, broadcasting
  with boto3 `apigatewaymanagementapi` built from `requestContext.domainName`/`stage`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import jwt
import pytest
import requests
import websockets.sync.client
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus

from conftest import ARTIFACTS, REPO, TIMEOUT, USER_AGENT, free_port, wait_until

SEEDS = REPO / "examples" / "seeds"
sys.path.insert(0, str(SEEDS))

from cognito_stub import POOLS, CognitoStub  # noqa: E402

# Where this interpreter finds PyJWT and boto3: the handlers' PYTHONPATH, as a Lambda layer (or
# the Lambda runtime, for boto3) provides them on AWS.
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
APP_ORIGIN = "http://app.example"


class ExampleGateway:
    """`portcullis serve --config examples/seeds/NAME.toml` on free ports, its log in a file."""

    def __init__(self, binary: Path, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.config = SEEDS / f"{name}.toml"
        self.port = free_port()
        self.admin_port = free_port()
        self.log_path = workdir / "portcullis.log"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "PORTCULLIS_LISTEN": f"127.0.0.1:{self.port}",
            "PORTCULLIS_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "PORTCULLIS_ADMIN_SECRET": "seeds-" + secrets.token_hex(16),
            "SEEDS_PYTHONPATH": SITE_PACKAGES,
            **env,
        }
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--config", str(self.config)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"portcullis exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                return requests.get(f"http://127.0.0.1:{self.admin_port}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(healthy, timeout=30, what="portcullis /healthz")

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 80) -> str:
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, failed: bool, test_name: str) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if failed:
            dest = ARTIFACTS / test_name
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "portcullis.log").write_bytes(self.log_path.read_bytes())
            print(f"\n---- portcullis log (copied to {dest}) ----\n{self.log_tail()}")


@pytest.fixture
def serve(request, portcullis_bin, tmp_path):
    check = subprocess.run(
        [str(portcullis_bin), "check", "--config", str(SEEDS / "chat.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if 'got "lambda"' in check.stderr:
        pytest.skip("this portcullis build has no `lambda` integrations yet")
    assert check.returncode == 0, check.stderr
    started: list[ExampleGateway] = []

    def start(name: str, **env: str) -> ExampleGateway:
        gateway = ExampleGateway(portcullis_bin, name, tmp_path, env)
        started.append(gateway)
        return gateway

    yield start
    failed = any(
        getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call")
    )
    for gateway in started:
        gateway.stop(failed, request.node.name)


def ws_connect(url: str, **kwargs):
    kwargs.setdefault("user_agent_header", USER_AGENT)
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("compression", None)
    kwargs.setdefault("proxy", None)
    return websockets.sync.client.connect(url, **kwargs)


def refused_status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, **kwargs).close()
    return refused.value.response.status_code


# ---- seed 002: the Python authorizer of two Cognito pools ---------------------------------------


def test_seed002_authorizer_file_is_the_articles_code():
    """examples/seeds/seed002/authorizer.py is the code printed in the article, byte for byte
    (the same text tests/python/authorizers/seed002_handler.py carries under its header)."""
    verbatim = (REPO / "tests/python/authorizers/seed002_handler.py").read_text()
    code = verbatim[verbatim.index("import json\n") :]
    assert (SEEDS / "seed002" / "authorizer.py").read_text() == code


def test_seed002_allows_tokens_of_either_pool_and_denies_the_rest(serve, tmp_path):
    stub = CognitoStub(tmp_path / "cognito").start()
    try:
        gateway = serve(
            "seed002-authorizer",
            SEED002_HTTPS_PROXY=stub.proxy_url,
            SEED002_CA_FILE=str(stub.ca_path),
        )
        url = f"http://{gateway.base}/api/orders/42"

        def get(token: str | None) -> requests.Response:
            headers = {} if token is None else {"Authorization": token}
            return requests.get(url, headers=headers, timeout=TIMEOUT)

        for pool in POOLS:
            ok = get(stub.token(pool, sub=f"user-of-{pool}"))
            assert ok.status_code == 200, ok.text
            assert ok.json()["routeKey"] == "GET /orders/{id}"
        # The handler really fetched each pool's JWKS from "Cognito".
        assert f"/{POOLS[0]}/.well-known/jwks.json" in stub.hits
        assert f"/{POOLS[1]}/.well-known/jwks.json" in stub.hits

        # Deny policies are 403, as API Gateway answers them.
        wrong_aud = get(stub.token(POOLS[0], aud="some-app-client-id"))
        assert (wrong_aud.status_code, wrong_aud.json()) == (403, {"message": "Forbidden"})
        expired = get(stub.token(POOLS[0], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
        assert expired.status_code == 403
        forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(
            {"sub": "mallory", "aud": POOLS[0], "exp": int(time.time()) + 600},
            forged_key,
            algorithm="RS256",
            headers={"kid": stub.kid(POOLS[0])},
        )
        assert get(forged).status_code == 403
        assert get("not-a-jwt").status_code == 403

        # No Authorization header: 401 before the handler is asked.
        missing = get(None)
        assert (missing.status_code, missing.json()) == (401, {"message": "Unauthorized"})
    finally:
        stub.stop()


# ---- seed 001: the Node.js cookie + CSRF authorizer ---------------------------------------------


def test_seed001_allows_the_cookie_pair_and_refuses_the_rest(serve):
    secret = secrets.token_hex(32)
    gateway = serve("seed001-authorizer", SEED001_JWT_SECRET=secret, APP_ORIGIN=APP_ORIGIN)

    def session(sub: str, ttl: int = 600, key: str = secret) -> str:
        return jwt.encode({"sub": sub, "exp": int(time.time()) + ttl}, key, algorithm="HS256")

    def url(csrf: str | None) -> str:
        query = f"?csrf={csrf}" if csrf is not None else ""
        return f"ws://{gateway.base}/ws{query}"

    def cookies(jwt_value: str | None, csrf: str | None) -> dict[str, str]:
        pairs = [f"JWT={jwt_value}"] if jwt_value else []
        pairs += [f"CSRF-TOKEN={csrf}"] if csrf else []
        return {"Cookie": "; ".join(["theme=dark", *pairs])}

    csrf = secrets.token_urlsafe(16)
    with ws_connect(url(csrf), origin=APP_ORIGIN, additional_headers=cookies(session("alice"), csrf)) as ws:
        ws.send("who am I?")
        answer = json.loads(ws.recv(timeout=TIMEOUT))
        assert answer["routeKey"] == "$default"
        assert answer["authorizer"]["principalId"] == "alice"
        assert answer["authorizer"]["userId"] == "alice"

    # No valid JWT cookie: callback("Unauthorized") -> 401.
    assert refused_status(url(csrf), origin=APP_ORIGIN, additional_headers=cookies(session("bob", key="x" * 64), csrf)) == 401
    assert refused_status(url(csrf), origin=APP_ORIGIN, additional_headers=cookies(session("bob", ttl=-60), csrf)) == 401
    assert refused_status(url(csrf), origin=APP_ORIGIN, additional_headers=cookies(None, csrf)) == 401
    # No Cookie header at all: the identity source is missing, 401 without calling the handler.
    assert refused_status(url(csrf), origin=APP_ORIGIN) == 401
    # A good JWT whose CSRF copy is missing or different: the handler's Deny policy -> 403.
    carol = session("carol")
    assert refused_status(url("guess"), origin=APP_ORIGIN, additional_headers=cookies(carol, csrf)) == 403
    assert refused_status(url(None), origin=APP_ORIGIN, additional_headers=cookies(session("dave"), csrf)) == 403
    # A page of another site never reaches the authorizer.
    assert refused_status(url(csrf), origin="http://evil.example", additional_headers=cookies(session("erin"), csrf)) == 403


# ---- the chat: connect / disconnect / sendmessage with SQLite -----------------------------------


def test_chat_broadcasts_to_everyone_and_forgets_gone_connections(serve, tmp_path):
    state = tmp_path / "chat-state"
    gateway = serve("chat", CHAT_STATE_DIR=str(state))
    url = f"ws://{gateway.base}/chat"
    db_path = state / "connections.sqlite3"

    def stored() -> set[str]:
        if not db_path.exists():
            return set()
        with sqlite3.connect(db_path, timeout=10) as db:
            return {row[0] for row in db.execute("SELECT connection_id FROM connections")}

    sockets = contextlib.ExitStack()
    clients, ids = [], []
    for _ in range(3):
        before = stored()
        clients.append(sockets.enter_context(ws_connect(url)))
        new = wait_until(lambda: stored() - before, what="the $connect handler storing the id")
        ids.append(new.pop())
    alice, bob, carol = clients

    alice.send(json.dumps({"action": "sendmessage", "data": "hello from alice"}))
    for ws in clients:  # everyone, the sender too, as the AWS sample does
        assert ws.recv(timeout=TIMEOUT) == "hello from alice"

    # carol leaves: $disconnect deletes her id.
    carol.close()
    wait_until(lambda: ids[2] not in stored(), what="the $disconnect handler deleting the id")
    # Her id comes back as a stale entry, as when a $disconnect is lost: the next broadcast gets
    # GoneException for it, deletes it, and still reaches everyone else.
    with sqlite3.connect(db_path, timeout=10) as db:
        db.execute("INSERT INTO connections (connection_id) VALUES (?)", (ids[2],))
    bob.send(json.dumps({"action": "sendmessage", "data": "carol?"}))
    assert alice.recv(timeout=TIMEOUT) == "carol?"
    assert bob.recv(timeout=TIMEOUT) == "carol?"
    wait_until(lambda: stored() == {ids[0], ids[1]}, what="the gone id deleted by sendmessage")
    sockets.close()
    wait_until(lambda: stored() == set(), what="both $disconnects")
