"""A real OIDC/JWKS issuer for tests, and helpers to mint honest and hostile JWTs.

`JwksServer` is a threaded http.server publishing any number of issuers under one base URL:
issuer NAME is `{base}/NAME` and serves

* `/NAME/.well-known/openid-configuration` -> `{"issuer": "{base}/NAME", "jwks_uri": "{base}/NAME/jwks.json"}`
* `/NAME/jwks.json` and `/NAME/.well-known/jwks.json` (Cognito's path, which seed 002's handler
  fetches) -> `{"keys": [...]}`

Every request path is recorded (`hits`), so a test can prove a URL was (or was never) fetched.
Keys are RSA keys generated with `cryptography` at test time; tokens are signed with PyJWT, or
assembled by hand (`compact`) when the point is that no honest library would produce them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: rsa.RSAPrivateKey, kid: str, alg: str = "RS256") -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def b64url(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def compact(header: dict | bytes | str, payload: dict | bytes | str, signature: bytes | str = b"") -> str:
    """`b64(header).b64(payload).b64(signature)` from dicts (JSON-encoded) or raw bytes."""

    def enc(part: dict | bytes | str) -> str:
        if isinstance(part, dict):
            part = json.dumps(part, separators=(",", ":"))
        return b64url(part)

    return f"{enc(header)}.{enc(payload)}.{enc(signature)}"


def mint(key: Any, claims: dict[str, Any], kid: str | None, alg: str = "RS256", **headers: Any) -> str:
    """A token signed by PyJWT; `kid=None` leaves the header without a kid."""
    extra = dict(headers)
    if kid is not None:
        extra["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=extra or None)


@dataclass
class Issuer:
    name: str
    base: str
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)  # kid -> private key

    @property
    def url(self) -> str:
        return f"{self.base}/{self.name}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks.json"

    @property
    def kid(self) -> str:
        """The first (current) key's kid."""
        return next(iter(self.keys))

    @property
    def key(self) -> rsa.RSAPrivateKey:
        return self.keys[self.kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k, kid) for kid, k in self.keys.items()]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Fresh, valid-looking claims from this issuer; `None` values remove a claim."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.url, "sub": "user-1", "iat": now, "exp": now + 3600}
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def token(self, kid: str | None = "", key: Any = None, alg: str = "RS256", headers: dict | None = None, **claims: Any) -> str:
        """A token signed with this issuer's key `kid` ("" = current key, None = no kid header)."""
        use_kid = self.kid if kid == "" else kid
        signing = key if key is not None else self.keys.get(use_kid or self.kid, self.key)
        return mint(signing, self.claims(**claims), use_kid, alg, **(headers or {}))


class JwksServer:
    def __init__(self) -> None:
        self.issuers: dict[str, Issuer] = {}
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, name: str, kids: list[str]) -> Issuer:
        issuer = Issuer(name, self.base, {kid: rsa_key() for kid in kids})
        self.issuers[name] = issuer
        return issuer

    def start(self) -> "JwksServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hits_for(self, fragment: str) -> list[str]:
        with self.lock:
            return [h for h in self.hits if fragment in h]

    def _document(self, path: str) -> dict | None:
        parts = path.split("?", 1)[0].strip("/").split("/", 1)
        if len(parts) != 2 or parts[0] not in self.issuers:
            return None
        issuer = self.issuers[parts[0]]
        if parts[1] == ".well-known/openid-configuration":
            return {"issuer": issuer.url, "jwks_uri": issuer.jwks_uri}
        if parts[1] in ("jwks.json", ".well-known/jwks.json"):
            return issuer.jwks()
        return None

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                with server.lock:
                    server.hits.append(self.path)
                doc = server._document(self.path)
                body = json.dumps(doc if doc is not None else {"message": "not found"}).encode()
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
