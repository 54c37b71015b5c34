"""Authorizers through the real binary, with real tokens from a real issuer.

One gateway per module (started once; every case is a request against it) with:

* `chat`: WebSocket API, `jwt` authorizer `users` (query `access_token`, then the token offered
  as a subprotocol), issuer `{jwks}/main` (OIDC discovery) with `audience = ["web"]`,
  `token_use = "access"`, `subprotocols = ["chat.v1"]`, `sendmessage` needing `chat/write`;
* `app`: WebSocket API at `/app`, `request` authorizer `session` (Cookie header) with
  `csrf = { cookie = "CSRF-TOKEN", query = "csrf" }` and `allowed_origins`;
* `orders`: HTTP API at `/api`: `GET /orders/{id}` behind a `jwt` authorizer trusting two
  Cognito-like pools (seed 002 without code), `GET /legacy/{id}` behind seed 002's own Python
  Lambda authorizer (payload format 1.0, handler unchanged);
* `content`: HTTP API at `/content`: seed 004's `GET`/`POST /premium` with per-method scopes
  and an external issuer (its JWKS named by `jwks_uri`).

Tokens are minted by PyJWT with RSA keys generated at test time and published by
`jwks_server.JwksServer`; hostile ones are assembled by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import websockets.sync.client
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from websockets.exceptions import InvalidStatus

from conftest import ARTIFACTS, REPO, TIMEOUT, USER_AGENT, Backend, Gateway
from jwks_server import (
    Issuer,
    JwksServer,
    b64url,
    b64url_decode,
    compact,
    ec_key,
    mint,
    public_jwk,
    rsa_key,
)

POOL1 = "us-east-1_examplePool1"  # seed 002's pool ids: its handler checks aud == pool id
POOL2 = "us-east-1_examplePool2"
POOL3 = "us-east-1_examplePool3"  # a pool nobody trusts
APP_ORIGIN = "http://app.example"
SEED002_DIR = REPO / "tests" / "python" / "authorizers"

CONFIG = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
connect_rate_per_ip = 0  # the tests connect from 127.0.0.1, dozens a second; test_abuse_limits tests the limit

[management]
credentials = [{{ access_key_id = "{akid}", secret_access_key = "{secret}" }}]
region = "{region}"

[websocket.chat]
stage = "{stage}"
route_selection_expression = "$request.body.action"
authorizer = "users"
subprotocols = ["chat.v1"]

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend", response = true }}
sendmessage   = {{ integration = "backend", scopes = ["chat/write"] }}

[websocket.app]
path = "/app"
stage = "{stage}"
authorizer = "session"
allowed_origins = ["{app_origin}"]

[websocket.app.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend", response = true }}

[http.orders]
base_path = "/api"

[http.orders.routes]
"GET /orders/{{id}}" = {{ integration = "backend", authorizer = "pools" }}
"GET /legacy/{{id}}" = {{ integration = "backend", authorizer = "seed002" }}
# The WebSocket API's own authorizer on an HTTP route: its WWW-Authenticate names why a token
# was refused, which a refused upgrade does not say.
"GET /probe" = {{ integration = "backend", authorizer = "users" }}

[http.content]
base_path = "/content"

[http.content.routes]
"GET /premium"  = {{ integration = "backend", authorizer = "m2m", scopes = ["premium-content/read"] }}
"POST /premium" = {{ integration = "backend", authorizer = "m2m", scopes = ["premium-content/write"] }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"

[authorizers.users]
type = "jwt"
identity_source = ["route.request.querystring.access_token", "route.request.header.Sec-WebSocket-Protocol"]
issuers = [{{ issuer = "{main_issuer}", audience = ["web"] }}]
token_use = "access"

[authorizers.pools]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [
  {{ issuer = "{pool1_issuer}", audience = ["{pool1}"] }},
  {{ issuer = "{pool2_issuer}", audience = ["{pool2}"], jwks_uri = "{pool2_jwks}" }},
]

[authorizers.m2m]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{{ issuer = "{m2m_issuer}", jwks_uri = "{m2m_jwks}" }}]

[authorizers.seed002]
type = "request"
url = "{seed002_url}"
identity_source = ["$request.header.Authorization"]
payload_format = "1.0"
cache_ttl = "0s"

[authorizers.session]
type = "request"
url = "{webhook_url}"
identity_source = ["route.request.header.Cookie"]
cache_ttl = "0s"
csrf = {{ cookie = "CSRF-TOKEN", query = "csrf" }}
"""


# ---- the cookie-session webhook (a REQUEST authorizer that allows everyone) --------------------


class Webhook:
    """Allows every caller; records each authorizer event so a test can prove it was not called."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/authorize"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Webhook":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls_tagged(self, tag: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if (e.get("queryStringParameters") or {}).get("tag") == tag]

    def _handler_class(self):
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                event = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with hook.lock:
                    hook.events.append(event)
                answer = {
                    "principalId": "session-user",
                    "policyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
                    },
                    "context": {"user": "session-user"},
                }
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


# ---- the module's world -------------------------------------------------------------------------


@dataclass
class World:
    gateway: Gateway
    backend: Backend
    webhook: Webhook
    jwks: JwksServer
    attacker: JwksServer
    main: Issuer
    pool1: Issuer
    pool2: Issuer
    pool3: Issuer
    m2m: Issuer
    evil: Issuer
    minted: list[str]  # every token handed to the gateway, for the log check

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.gateway.ws_port}"

    def ws_url(self, path: str, query: dict[str, str] | list[tuple[str, str]]) -> str:
        return f"ws://127.0.0.1:{self.gateway.ws_port}{path}?{urllib.parse.urlencode(query)}"

    def user_token(self, **claims: Any) -> str:
        """A token the `users` authorizer accepts, unless `claims` spoil it."""
        base = {"sub": "alice", "aud": "web", "token_use": "access", "scope": "openid chat/write"}
        base.update(claims)
        return self.keep(self.main.token(**base))

    def keep(self, token: str) -> str:
        self.minted.append(token)
        return token

    def attempt(self, path: str = "/chat", query: dict[str, str] | list[tuple[str, str]] | None = None, **kwargs: Any):
        """One upgrade; returns (status, response, tag). A 101 is closed again at once.
        `query` may be a list of pairs, to repeat a parameter."""
        tag = secrets.token_hex(8)
        pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
        url = self.ws_url(path, [("tag", tag), *pairs])
        for _, value in pairs:
            self.keep(value)
        for proto in kwargs.get("subprotocols") or []:
            self.keep(proto)
        options = dict(
            user_agent_header=USER_AGENT, open_timeout=TIMEOUT, close_timeout=2,
            ping_interval=None, compression=None, proxy=None,
        )
        options.update(kwargs)
        try:
            with websockets.sync.client.connect(url, **options) as ws:
                return 101, ws.response, tag
        except InvalidStatus as e:
            return e.response.status_code, e.response, tag

    def connect(self, query: dict[str, str] | None = None, **kwargs: Any):
        """An open socket on `chat` and its CONNECT event."""
        tag = secrets.token_hex(8)
        for value in (query or {}).values():
            self.keep(value)
        url = self.ws_url("/chat", {"tag": tag, **(query or {})})
        options = dict(
            user_agent_header=USER_AGENT, open_timeout=TIMEOUT, close_timeout=2,
            ping_interval=None, compression=None, proxy=None,
        )
        options.update(kwargs)
        ws = websockets.sync.client.connect(url, **options)
        event = self.backend.wait_for("CONNECT", pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag)
        return ws, event

    def connects_with(self, tag: str) -> list[dict]:
        return self.backend.find("CONNECT", pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag)

    def get(self, path: str, token: str | None = None, scheme: str = "Bearer ", method: str = "GET") -> requests.Response:
        headers = {}
        if token is not None:
            self.keep(token)
            headers["Authorization"] = f"{scheme}{token}"
        tag = secrets.token_hex(8)
        return requests.request(method, f"{self.http}{path}", params={"tag": tag}, headers=headers, timeout=TIMEOUT)

    def backend_event(self, response: requests.Response) -> dict:
        """The integration event of an answered HTTP request (found by its `tag`)."""
        tag = urllib.parse.parse_qs(urllib.parse.urlsplit(response.url).query)["tag"][0]
        found = self.backend.find(None, pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag)
        assert len(found) == 1, f"expected one backend event for {response.url}, got {len(found)}"
        return found[0]


def start_seed002(jwks_base: str, log: Path) -> tuple[subprocess.Popen, str, Any]:
    """seed 002's authorizer (handler unchanged) behind its http.server wrapper; JWKS from `jwks_base`."""
    stderr = open(log, "wb")
    env = {**os.environ, "PORT": "0", "AWS_REGION": "us-east-1", "SEED002_COGNITO_BASE": jwks_base, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(SEED002_DIR / "seed002_authorizer.py")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=SEED002_DIR,
    )
    line = proc.stdout.readline().decode().strip()  # "listening on http://127.0.0.1:PORT"
    if not line.startswith("listening on "):
        proc.kill()
        raise AssertionError(f"seed002 authorizer did not start: {line!r}; stderr in {log}")
    return proc, line.removeprefix("listening on ") + "/authorize", stderr


@pytest.fixture(scope="module")
def world(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("authorizers")
    jwks = JwksServer()
    main = jwks.add("main", ["main-2026-01"])
    pool1 = jwks.add(POOL1, ["pool1-key"])
    pool2 = jwks.add(POOL2, ["pool2-current", "pool2-previous"])  # two keys: a kid is required
    pool3 = jwks.add(POOL3, ["pool3-key"])
    m2m = jwks.add("m2m", ["m2m-key"])
    jwks.start()
    attacker = JwksServer()
    evil = attacker.add("evil", ["evil-key"])
    attacker.start()
    backend = Backend().start()
    webhook = Webhook().start()
    seed002, seed002_url, seed002_log = start_seed002(jwks.base, workdir / "seed002.log")
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        env={"PORTCULLIS_LOG": "debug"},  # the most talkative level: tokens must not show even there
        template=CONFIG,
        app_origin=APP_ORIGIN,
        main_issuer=main.url,
        pool1=POOL1,
        pool2=POOL2,
        pool1_issuer=pool1.url,
        pool2_issuer=pool2.url,
        pool2_jwks=pool2.jwks_uri,
        m2m_issuer=m2m.url,
        m2m_jwks=m2m.jwks_uri,
        seed002_url=seed002_url,
        webhook_url=webhook.url,
    )
    failed_before = request.session.testsfailed
    try:
        gateway.start()
        yield World(gateway, backend, webhook, jwks, attacker, main, pool1, pool2, pool3, m2m, evil, [])
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            try:
                gateway.terminate()
            except AssertionError as e:
                print(e)
        seed002.terminate()
        seed002.wait(10)
        seed002_log.close()
        for server in (backend, webhook, jwks, attacker):
            server.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / "test_authorizers"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("portcullis.log", "portcullis.toml", "seed002.log"):
                if (workdir / name).exists():
                    (dest / name).write_bytes((workdir / name).read_bytes())
            print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")


def assert_unauthorized_upgrade(world: World, status: int, response, tag: str) -> None:
    assert status == 401, f"expected 401, got {status}"
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert world.connects_with(tag) == [], "a refused upgrade reached $connect"


# ---- 1. WebSocket API with a jwt authorizer: what gets in -----------------------------------


def test_query_token_connects_and_claims_reach_every_event(world):
    now = int(time.time())
    token = world.user_token(sub="alice", exp=now + 1800, **{"cognito:groups": ["admins", "members"]})
    ws, connect = world.connect(query={"access_token": token})
    with ws:
        authorizer = connect["requestContext"]["authorizer"]
        assert authorizer["principalId"] == "alice"
        claims = authorizer["jwt"]["claims"]
        assert claims["sub"] == "alice"
        assert claims["iss"] == world.main.url
        assert claims["aud"] == "web"
        assert claims["token_use"] == "access"
        assert claims["exp"] == str(now + 1800), "numbers are rendered as decimal strings"
        assert claims["cognito:groups"] == "[admins members]", "arrays are rendered Go-style"
        assert authorizer["jwt"]["scopes"] == ["openid", "chat/write"]
        cid = connect["requestContext"]["connectionId"]

        ws.send(json.dumps({"action": "sendmessage", "data": "hi"}))
        message = world.backend.wait_for("MESSAGE", cid, pred=lambda e: e["requestContext"]["routeKey"] == "sendmessage")
        assert message["requestContext"]["authorizer"] == authorizer


def test_token_as_subprotocol_connects_and_only_chat_v1_is_echoed(world):
    token = world.user_token(sub="bob")
    status, response, tag = world.attempt(subprotocols=["chat.v1", token])
    assert status == 101
    assert response.headers.get_all("Sec-WebSocket-Protocol") == ["chat.v1"]
    assert token not in str(response.headers)
    [connect] = world.connects_with(tag)
    assert connect["requestContext"]["authorizer"]["principalId"] == "bob"


@pytest.mark.parametrize(
    "case",
    [
        # The documented rule (crates/portcullis-auth/src/jwt/keys.rs `KeySet::find`,
        # JwtError::MissingKeyId): a token without `kid` is matched to the issuer's only key;
        # with several keys it is refused (see test_no_kid_with_a_two_key_issuer_is_refused).
        "no_kid_single_key_issuer",
        # Cognito access tokens have no aud: client_id is compared instead.
        "aud_absent_right_client_id",
        "aud_list_containing_web",
        # jku is ignored: a token signed by the issuer's real key still verifies, jku unfetched.
        "jku_header_ignored_with_the_real_key",
    ],
)
def test_positive_controls(world, case):
    make: dict[str, Callable[[], str]] = {
        "no_kid_single_key_issuer": lambda: world.keep(
            mint(world.main.key, world.main.claims(sub="c1", aud="web", token_use="access"), kid=None)
        ),
        "aud_absent_right_client_id": lambda: world.user_token(sub="c1", aud=None, client_id="web"),
        "aud_list_containing_web": lambda: world.user_token(sub="c1", aud=["other", "web"]),
        "jku_header_ignored_with_the_real_key": lambda: world.keep(
            world.main.token(sub="c1", aud="web", token_use="access", headers={"jku": world.evil.jwks_uri})
        ),
    }
    status, _, tag = world.attempt(query={"access_token": make[case]()})
    assert status == 101, f"{case}: expected the upgrade to succeed, got {status}"
    [connect] = world.connects_with(tag)
    assert connect["requestContext"]["authorizer"]["principalId"] == "c1"
    assert world.attacker.hits == []


# ---- 2. the attacker suite ----------------------------------------------------------------------


def _split(token: str) -> tuple[str, str, str]:
    h, p, s = token.split(".")
    return h, p, s


def _rs256(key, header: dict | bytes, payload: dict) -> str:
    """A token with an arbitrary header, honestly RS256-signed by `key`."""
    h = b64url(header if isinstance(header, bytes) else json.dumps(header))
    p = b64url(json.dumps(payload))
    sig = key.sign(f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{h}.{p}.{b64url(sig)}"


def _over(**overrides: Any) -> dict:
    """Claim overrides on top of a token `users` would accept (`None` removes a claim)."""
    return {"sub": "mallory", "aud": "web", "token_use": "access", "scope": "chat/write", **overrides}


def _claims(w: World, **overrides: Any) -> dict:
    """The full claims of such a token from the `main` issuer."""
    return w.main.claims(**_over(**overrides))


def _hs256_with_public_pem(w: World) -> str:
    pem = w.main.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": w.main.kid}))
    p = b64url(json.dumps(_claims(w)))
    return f"{h}.{p}.{b64url(hmac.new(pem, f'{h}.{p}'.encode(), hashlib.sha256).digest())}"


def _tampered_payload(w: World) -> str:
    h, _, s = _split(w.user_token(sub="mallory"))
    return f"{h}.{b64url(json.dumps(_claims(w, sub='admin')))}.{s}"


def _tampered_signature(w: World) -> str:
    h, p, s = _split(w.user_token(sub="mallory"))
    sig = bytearray(b64url_decode(s))
    sig[len(sig) // 2] ^= 0x01
    return f"{h}.{p}.{b64url(bytes(sig))}"


def _none_keeping_signature(w: World) -> str:
    _, p, s = _split(w.user_token(sub="mallory"))
    return f"{b64url(json.dumps({'alg': 'none', 'kid': w.main.kid}))}.{p}.{s}"


def _huge_but_validly_signed(w: World) -> str:
    token = w.main.token(**_over(pad="x" * (17 * 1024)))
    assert len(token) > 16 * 1024
    return token


def _bad_b64(part: int) -> Callable[[World], str]:
    def build(w: World) -> str:
        parts = list(_split(w.user_token(sub="mallory")))
        parts[part] = parts[part][:8] + "*" + parts[part][8:]  # '*' is in no base64 alphabet
        return ".".join(parts)

    return build


def q(build: Callable[[World], str]) -> Callable[[World], dict]:
    """The token in the `access_token` query parameter."""
    return lambda w: {"query": {"access_token": build(w)}}


MALFORMED = "the token is malformed"
ALGORITHM = "the token's signing algorithm is not supported"
ISSUER = "the token does not have a valid issuer"
UNKNOWN_KEY = "the token's signing key is not known"
KEY_MISMATCH = "the token's signing key does not match its algorithm"
SIGNATURE = "the token signature is invalid"
AUDIENCE = "the token does not have a valid audience"
TOKEN_USE = "the token does not have a valid token_use"
MISSING = "the token is missing"


SIG = b64url(b"x" * 256)  # a signature-shaped filler for tokens that must fail before signatures

# id -> what to offer on the upgrade; every one must get 401 and never reach $connect.
ATTACKS: dict[str, Callable[[World], dict]] = {
    "alg_none_trailing_dot": q(lambda w: compact({"alg": "none", "typ": "JWT"}, _claims(w))),
    "alg_none_no_trailing_dot": q(lambda w: compact({"alg": "none"}, _claims(w)).rstrip(".")),
    "alg_none_kid_and_real_signature": q(_none_keeping_signature),
    "alg_None_capitalised": q(lambda w: compact({"alg": "None", "kid": w.main.kid}, _claims(w), b"sig")),
    "hs256_signed_with_rsa_public_key_pem": q(_hs256_with_public_pem),
    "unknown_kid": q(lambda w: w.main.token(kid="kid-nobody-published", **_over())),
    "kid_path_injection": q(lambda w: w.main.token(kid="../../etc/passwd", **_over())),
    "kid_very_long": q(lambda w: w.main.token(kid="k" * 4000, **_over())),
    "kid_not_a_string": q(lambda w: _rs256(w.main.key, {"alg": "RS256", "kid": 1}, _claims(w))),
    "expired": q(lambda w: w.main.token(**_over(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))),
    "exp_missing": q(lambda w: w.main.token(**_over(exp=None))),
    "nbf_in_the_future": q(lambda w: w.main.token(**_over(nbf=int(time.time()) + 3600))),
    "iat_in_the_future": q(lambda w: w.main.token(**_over(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200))),
    "wrong_iss": q(lambda w: w.main.token(**_over(iss="https://issuer.evil.example/main"))),
    "iss_with_trailing_slash": q(lambda w: w.main.token(**_over(iss=w.main.url + "/"))),
    "iss_missing": q(lambda w: w.main.token(**_over(iss=None))),
    # pool1 is trusted by the HTTP API's authorizer, not by `users`.
    "valid_token_of_an_issuer_trusted_elsewhere": q(lambda w: w.pool1.token(**_over())),
    # iss = main, but signed with pool1's key and naming pool1's kid: only main's keys are tried.
    "trusted_iss_signed_with_another_issuers_key_and_kid": q(lambda w: w.pool1.token(**_over(iss=w.main.url))),
    "wrong_aud": q(lambda w: w.main.token(**_over(aud="mobile"))),
    "aud_absent_wrong_client_id": q(lambda w: w.main.token(**_over(aud=None, client_id="not-web"))),
    "aud_wrong_right_client_id": q(lambda w: w.main.token(**_over(aud="mobile", client_id="web"))),
    "token_use_id": q(lambda w: w.main.token(**_over(token_use="id"))),
    "token_use_absent": q(lambda w: w.main.token(**_over(token_use=None))),
    "tampered_payload": q(_tampered_payload),
    "tampered_signature": q(_tampered_signature),
    "other_rsa_key_same_kid": q(lambda w: w.main.token(key=rsa_key(), **_over())),
    "malformed_base64_header": q(_bad_b64(0)),
    "malformed_base64_payload": q(_bad_b64(1)),
    "malformed_base64_signature": q(_bad_b64(2)),
    "padded_base64": q(lambda w: ".".join(part + "=" for part in _split(w.user_token(sub="mallory")))),
    "two_segments": q(lambda w: ".".join(_split(w.user_token(sub="mallory"))[:2])),
    "four_segments": q(lambda w: w.user_token(sub="mallory") + "." + SIG),
    "empty_string": q(lambda w: ""),
    "only_dots": q(lambda w: ".."),
    "huge_validly_signed_token": q(_huge_but_validly_signed),
    "non_json_header": q(lambda w: _rs256(w.main.key, b"alg=RS256;kid=" + w.main.kid.encode(), _claims(w))),
    "header_is_a_json_array": q(lambda w: _rs256(w.main.key, b'["RS256"]', _claims(w))),
    "header_alg_is_a_number": q(lambda w: _rs256(w.main.key, {"alg": 256, "kid": w.main.kid}, _claims(w))),
    "crit_header": q(lambda w: _rs256(w.main.key, {"alg": "RS256", "kid": w.main.kid, "crit": ["exp"]}, _claims(w))),
    "jku_header_pointing_to_attacker_keys": q(
        lambda w: _rs256(w.evil.key, {"alg": "RS256", "kid": w.evil.kid, "jku": w.evil.jwks_uri}, _claims(w))
    ),
    "jku_header_with_the_real_kid": q(
        lambda w: _rs256(w.evil.key, {"alg": "RS256", "kid": w.main.kid, "jku": w.evil.jwks_uri}, _claims(w))
    ),
    "jwk_header_embedding_attacker_key": q(
        lambda w: _rs256(
            w.evil.key, {"alg": "RS256", "kid": w.main.kid, "jwk": public_jwk(w.evil.key, w.main.kid)}, _claims(w)
        )
    ),
    "es256_header_with_the_rsa_kid": q(lambda w: mint(ec_key(), _claims(w), kid=w.main.kid, alg="ES256")),
    "ps256_with_a_key_pinned_to_rs256": q(lambda w: mint(w.main.key, _claims(w), kid=w.main.kid, alg="PS256")),
    "bearer_doubled": q(lambda w: "Bearer Bearer " + w.user_token(sub="mallory")),
    "token_in_the_wrong_query_parameter": lambda w: {"query": {"token": w.user_token(sub="mallory")}},
    "query_parameter_name_is_case_sensitive": lambda w: {"query": {"Access_Token": w.user_token(sub="mallory")}},
    "no_token_at_all": lambda w: {},
    "expired_token_as_subprotocol": lambda w: {
        "subprotocols": ["chat.v1", w.main.token(**_over(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))]
    },
    "forged_token_as_subprotocol": lambda w: {"subprotocols": ["chat.v1", _tampered_payload(w)]},
    # A repeated parameter: the last value is the one verified (and the one events carry).
    "access_token_repeated_forged_last": lambda w: {
        "query": [("access_token", w.user_token(sub="alice")), ("access_token", _tampered_payload(w))]
    },
    # The first source present is the one verified: a valid protocol token does not rescue it.
    "bad_query_token_beside_a_valid_subprotocol_token": lambda w: {
        "query": {"access_token": w.main.token(**_over(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))},
        "subprotocols": ["chat.v1", w.user_token(sub="mallory")],
    },
}

# Why each attack must fail, as the `users` authorizer states it in WWW-Authenticate on /api/probe:
# proof that the token was refused by the intended check, not by an earlier accident.
REASONS: dict[str, str] = {
    "alg_none_trailing_dot": ALGORITHM,
    "alg_none_no_trailing_dot": MALFORMED,
    "alg_none_kid_and_real_signature": ALGORITHM,
    "alg_None_capitalised": ALGORITHM,
    "hs256_signed_with_rsa_public_key_pem": ALGORITHM,
    "unknown_kid": UNKNOWN_KEY,
    "kid_path_injection": UNKNOWN_KEY,
    "kid_very_long": UNKNOWN_KEY,
    "kid_not_a_string": MALFORMED,
    "expired": "the token has expired",
    "exp_missing": MALFORMED,
    "nbf_in_the_future": "the token is not valid yet",
    "iat_in_the_future": "the token was issued in the future",
    "wrong_iss": ISSUER,
    "iss_with_trailing_slash": ISSUER,
    "iss_missing": ISSUER,
    "valid_token_of_an_issuer_trusted_elsewhere": ISSUER,
    "trusted_iss_signed_with_another_issuers_key_and_kid": UNKNOWN_KEY,
    "wrong_aud": AUDIENCE,
    "aud_absent_wrong_client_id": AUDIENCE,
    "aud_wrong_right_client_id": AUDIENCE,
    "token_use_id": TOKEN_USE,
    "token_use_absent": TOKEN_USE,
    "tampered_payload": SIGNATURE,
    "tampered_signature": SIGNATURE,
    "other_rsa_key_same_kid": SIGNATURE,
    "malformed_base64_header": MALFORMED,
    "malformed_base64_payload": MALFORMED,
    "malformed_base64_signature": MALFORMED,
    "padded_base64": MALFORMED,
    "two_segments": MALFORMED,
    "four_segments": MALFORMED,
    "empty_string": MISSING,
    "only_dots": MALFORMED,
    "huge_validly_signed_token": "the token is too large",
    "non_json_header": MALFORMED,
    "header_is_a_json_array": MALFORMED,
    "header_alg_is_a_number": MALFORMED,
    "crit_header": MALFORMED,
    "jku_header_pointing_to_attacker_keys": UNKNOWN_KEY,
    "jku_header_with_the_real_kid": SIGNATURE,
    "jwk_header_embedding_attacker_key": SIGNATURE,
    "es256_header_with_the_rsa_kid": KEY_MISMATCH,
    "ps256_with_a_key_pinned_to_rs256": KEY_MISMATCH,
    "bearer_doubled": MALFORMED,
    "token_in_the_wrong_query_parameter": MISSING,
    "query_parameter_name_is_case_sensitive": MISSING,
    "no_token_at_all": MISSING,
    "expired_token_as_subprotocol": "the token has expired",
    "forged_token_as_subprotocol": SIGNATURE,
    "bad_query_token_beside_a_valid_subprotocol_token": "the token has expired",
    "access_token_repeated_forged_last": SIGNATURE,
}
assert set(REASONS) == set(ATTACKS)



@pytest.mark.parametrize("case", list(ATTACKS))
def test_attacker_token_is_refused_with_401(world, case):
    kwargs = ATTACKS[case](world)
    status, response, tag = world.attempt(**kwargs)
    assert_unauthorized_upgrade(world, status, response, tag)
    # The same offer as an HTTP request to a route behind the same authorizer says why.
    headers = {}
    if kwargs.get("subprotocols"):
        headers["Sec-WebSocket-Protocol"] = ", ".join(kwargs["subprotocols"])
    probe = requests.get(f"{world.http}/api/probe", params=kwargs.get("query"), headers=headers, timeout=TIMEOUT)
    _assert_invalid_token(probe, REASONS[case])
    assert world.attacker.hits == [], "the gateway fetched keys from a URL named in a token header"
    assert world.jwks.hits_for("passwd") == [] and world.jwks.hits_for("..") == []


def test_repeated_access_token_the_backend_sees_the_verified_one(world):
    """Parameter pollution: `?access_token=FORGED&access_token=VALID` connects only because the
    last value verified, and that is also the value `queryStringParameters` hands the backend, so
    a backend reading the token from the event reads the verified one."""
    forged, valid = _tampered_payload(world), world.user_token(sub="alice")
    status, _, tag = world.attempt(query=[("access_token", forged), ("access_token", valid)])
    assert status == 101
    [connect] = world.connects_with(tag)
    assert connect["queryStringParameters"]["access_token"] == valid
    assert connect["multiValueQueryStringParameters"]["access_token"] == [forged, valid]
    assert connect["requestContext"]["authorizer"]["principalId"] == "alice"


def test_missing_scope_on_sendmessage_gets_forbidden_frame_and_stays_open(world):
    ws, connect = world.connect(query={"access_token": world.user_token(sub="reader", scope="openid")})
    cid = connect["requestContext"]["connectionId"]
    with ws:
        ws.send(json.dumps({"action": "sendmessage", "data": "let me in"}))
        frame = json.loads(ws.recv(timeout=TIMEOUT))
        assert frame["message"] == "Forbidden"
        assert frame["connectionId"] == cid
        assert frame["requestId"]
        # Still open and still routed: $default answers.
        ws.send(json.dumps({"action": "other", "data": "still here?"}))
        reply = json.loads(ws.recv(timeout=TIMEOUT))
        assert reply["connectionId"] == cid
        routes = [e["requestContext"]["routeKey"] for e in world.backend.find("MESSAGE", cid)]
        assert routes == ["$default"], f"sendmessage reached the backend: {routes}"


def test_scope_present_on_sendmessage_reaches_the_backend(world):
    """Positive control for the Forbidden frame above."""
    ws, connect = world.connect(query={"access_token": world.user_token(sub="writer", scope="chat/write")})
    cid = connect["requestContext"]["connectionId"]
    with ws:
        ws.send(json.dumps({"action": "sendmessage", "data": "hello"}))
        event = world.backend.wait_for("MESSAGE", cid, pred=lambda e: e["requestContext"]["routeKey"] == "sendmessage")
        assert json.loads(event["body"])["data"] == "hello"


# ---- CSRF and Origin on the cookie-authenticated API --------------------------------------------

CSRF = "c5rf-" + "a1" * 16
SESSION_COOKIE = f"session=s3ss10n; CSRF-TOKEN={CSRF}"

# id -> (origin, Cookie header, csrf query value); all must be 403 without calling the webhook.
CSRF_ATTACKS = {
    "foreign_origin": ("https://evil.example", SESSION_COOKIE, CSRF),
    "origin_null": ("null", SESSION_COOKIE, CSRF),
    "origin_with_other_port": ("http://app.example:8443", SESSION_COOKIE, CSRF),
    "csrf_mismatch": (APP_ORIGIN, SESSION_COOKIE, CSRF[:-1] + "0"),
    "csrf_query_missing": (APP_ORIGIN, SESSION_COOKIE, None),
    "csrf_cookie_missing": (APP_ORIGIN, "session=s3ss10n", CSRF),
    "csrf_both_empty": (APP_ORIGIN, "session=s3ss10n; CSRF-TOKEN=", ""),
}


def _app_attempt(world: World, origin: str | None, cookie: str | None, csrf: str | None):
    query = {} if csrf is None else {"csrf": csrf}
    headers = {} if cookie is None else {"Cookie": cookie}
    return world.attempt("/app", query=query, origin=origin, additional_headers=headers)


@pytest.mark.parametrize("case", list(CSRF_ATTACKS))
def test_cross_site_upgrade_is_refused_with_403_before_the_authorizer(world, case):
    status, response, tag = _app_attempt(world, *CSRF_ATTACKS[case])
    assert status == 403, f"expected 403, got {status}"
    assert json.loads(response.body) == {"message": "Forbidden"}
    assert world.webhook.calls_tagged(tag) == [], "the authorizer was called for a cross-site request"
    assert world.connects_with(tag) == []


def test_cookie_api_without_cookie_is_401_before_the_authorizer(world):
    status, response, tag = _app_attempt(world, APP_ORIGIN, None, CSRF)
    assert status == 401
    assert world.webhook.calls_tagged(tag) == []


@pytest.mark.parametrize("origin", [APP_ORIGIN, None], ids=["same_origin", "no_origin_non_browser"])
def test_same_site_upgrade_with_matching_csrf_connects(world, origin):
    status, _, tag = _app_attempt(world, origin, SESSION_COOKIE, CSRF)
    assert status == 101
    [call] = world.webhook.calls_tagged(tag)
    assert call["methodArn"].endswith("/$connect")
    [connect] = world.connects_with(tag)
    assert connect["requestContext"]["authorizer"]["principalId"] == "session-user"


# ---- 3. HTTP API trusting two pools; seed 002's own Lambda authorizer --------------------------


def pool_token(issuer: Issuer, pool: str, **claims: Any) -> str:
    """An id-token-like token of `issuer` whose aud is the pool id (what seed 002's handler checks)."""
    return issuer.token(**{"sub": f"user-of-{pool}", "aud": pool, **claims})


@pytest.mark.parametrize("pool", ["pool1", "pool2", "pool2_previous_key"])
def test_both_trusted_pools_are_accepted(world, pool):
    issuer, pool_id, kid = {
        "pool1": (world.pool1, POOL1, ""),
        "pool2": (world.pool2, POOL2, ""),
        "pool2_previous_key": (world.pool2, POOL2, "pool2-previous"),
    }[pool]
    response = world.get("/api/orders/42", pool_token(issuer, pool_id, kid=kid))
    assert response.status_code == 200, response.text
    event = world.backend_event(response)
    assert event["pathParameters"] == {"id": "42"}
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["iss"] == issuer.url
    assert event["requestContext"]["authorizer"]["principalId"] == f"user-of-{pool_id}"


def _assert_invalid_token(response: requests.Response, description: str | None = None) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"message": "Unauthorized"}
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    if description is not None:
        assert f'error_description="{description}"' in challenge, challenge


def test_third_pool_is_refused_with_invalid_token(world):
    response = world.get("/api/orders/42", pool_token(world.pool3, POOL3))
    _assert_invalid_token(response, "the token does not have a valid issuer")


def test_pool1_issuer_signed_with_pool2_key_is_refused(world):
    """A trusted `iss` with another trusted issuer's key and kid: only that issuer's keys count."""
    token = world.pool2.token(**{"iss": world.pool1.url, "sub": "x", "aud": POOL1})
    _assert_invalid_token(world.get("/api/orders/42", token), "the token's signing key is not known")


def test_no_kid_with_a_two_key_issuer_is_refused(world):
    token = world.keep(mint(world.pool2.key, world.pool2.claims(aud=POOL2), kid=None))
    _assert_invalid_token(world.get("/api/orders/42", token), "the token does not name its signing key")


def test_http_expired_token_names_the_reason(world):
    now = int(time.time())
    token = pool_token(world.pool1, POOL1, iat=now - 7200, exp=now - 3600)
    _assert_invalid_token(world.get("/api/orders/42", token), "the token has expired")


def test_http_bearer_doubled_is_refused(world):
    _assert_invalid_token(world.get("/api/orders/42", pool_token(world.pool1, POOL1), scheme="Bearer Bearer "))


def test_http_missing_token_is_401(world):
    response = world.get("/api/orders/42")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize("pool", ["pool1", "pool2"])
def test_seed002_authorizer_allows_tokens_of_its_pools(world, pool):
    issuer, pool_id = {"pool1": (world.pool1, POOL1), "pool2": (world.pool2, POOL2)}[pool]
    # The handler reads event['authorizationToken'] as the bare JWT: no "Bearer " prefix.
    response = world.get("/api/legacy/7", pool_token(issuer, pool_id), scheme="")
    assert response.status_code == 200, response.text
    assert world.backend_event(response)["pathParameters"] == {"id": "7"}


@pytest.mark.parametrize("case", ["third_pool", "wrong_aud", "expired", "other_key", "garbage"])
def test_seed002_authorizer_deny_is_403(world, case):
    now = int(time.time())
    token = {
        "third_pool": lambda: pool_token(world.pool3, POOL3),
        "wrong_aud": lambda: pool_token(world.pool1, POOL1, aud="some-app-client-id"),
        "expired": lambda: pool_token(world.pool1, POOL1, iat=now - 7200, exp=now - 3600),
        "other_key": lambda: pool_token(world.pool1, POOL1, key=rsa_key()),
        "garbage": lambda: "not-a-jwt",
    }[case]()
    response = world.get("/api/legacy/7", token, scheme="")
    assert response.status_code == 403, response.text
    assert response.json() == {"message": "Forbidden"}
    tag = urllib.parse.parse_qs(urllib.parse.urlsplit(response.url).query)["tag"][0]
    assert world.backend.find(None, pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag) == []


def test_seed002_authorizer_without_token_is_401_without_calling_it(world):
    response = world.get("/api/legacy/7")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


# ---- 4. seed 004: per-method scopes with an external issuer -------------------------------------


def m2m_token(world: World, scope: str) -> str:
    return world.m2m.token(sub="reporting-service", client_id="reporting-service", token_use="access", scope=scope)


def test_read_scope_gets_200_on_get_and_403_on_post(world):
    token = m2m_token(world, "premium-content/read")
    got = world.get("/content/premium", token)
    assert got.status_code == 200, got.text
    assert world.backend_event(got)["requestContext"]["authorizer"]["jwt"]["scopes"] == ["premium-content/read"]
    posted = world.get("/content/premium", token, method="POST")
    assert posted.status_code == 403, posted.text
    assert posted.json() == {"message": "Forbidden"}
    challenge = posted.headers.get("WWW-Authenticate", "")
    assert 'error="insufficient_scope"' in challenge and 'scope="premium-content/write"' in challenge, challenge


def test_write_scope_gets_200_on_post_and_403_on_get(world):
    token = m2m_token(world, "premium-content/write")
    assert world.get("/content/premium", token, method="POST").status_code == 200
    assert world.get("/content/premium", token).status_code == 403


def test_both_scopes_get_200_on_both(world):
    token = m2m_token(world, "premium-content/read premium-content/write")
    assert world.get("/content/premium", token).status_code == 200
    assert world.get("/content/premium", token, method="POST").status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_premium_without_token_is_401(world, method):
    response = world.get("/content/premium", method=method)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_premium_with_a_token_of_another_issuer_is_401(world):
    token = world.main.token(sub="x", client_id="reporting-service", scope="premium-content/read")
    _assert_invalid_token(world.get("/content/premium", token))


# ---- last: nothing above leaked a token into the gateway's log ----------------------------------


def test_gateway_log_never_contains_a_token(world):
    # Self-sufficient when run alone; after the whole module it also covers every token above.
    assert world.attempt(query={"access_token": world.user_token()})[0] == 101
    assert world.attempt(subprotocols=["chat.v1", world.user_token()])[0] == 101
    assert world.attempt(query={"access_token": _tampered_signature(world)})[0] == 401
    assert world.get("/api/orders/1", pool_token(world.pool1, POOL1)).status_code == 200
    assert world.get("/api/orders/1", pool_token(world.pool3, POOL3)).status_code == 401
    assert world.get("/api/legacy/1", pool_token(world.pool1, POOL1), scheme="").status_code == 200
    # Read while running (each log line is written before the answer it belongs to is sent), so
    # the order of tests does not matter.
    log = world.gateway.log_text()
    assert "upgrade refused" in log, "the gateway logged no refusals; this check would prove nothing"
    for token in world.minted:
        # Each token's signature (or, without one, its longest part) must not appear anywhere.
        parts = [p for p in token.replace("Bearer ", "").split(".") if len(p) >= 24]
        for part in parts[-1:]:
            assert part not in log, f"a token part appears in the gateway log: {part[:16]}..."
