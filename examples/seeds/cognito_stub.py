"""Stand-in for Cognito's JWKS endpoints, for running seed 002's authorizer without AWS.

Seed 002's handler fetches ``https://cognito-idp.{AWS_REGION}.amazonaws.com/{pool}/.well-known/jwks.json``
with ``urllib.request.urlopen`` and checks RS256 tokens whose ``aud`` is the pool id. Its code is
not changed; its *environment* is:

* ``https_proxy=http://127.0.0.1:PORT`` sends that fetch through this stub (urllib honours the
  variable and opens a CONNECT tunnel);
* ``SSL_CERT_FILE=.../ca.pem`` makes the handler trust the throwaway CA whose certificate this
  stub presents for ``cognito-idp.{region}.amazonaws.com`` inside the tunnel.

Only ``CONNECT cognito-idp.*.amazonaws.com:443`` is served; anything else is refused (403), so
nothing leaves the machine. Inside the tunnel ``GET /{pool}/.well-known/jwks.json`` answers the
pool's public key; other paths are 404.

Run it alone (Python with ``cryptography`` and PyJWT, e.g. the test venv)::

    python3 examples/seeds/cognito_stub.py --dir /tmp/seed002 --port 8443

It writes ``/tmp/seed002/ca.pem``, prints the variables to export for
``examples/seeds/seed002-authorizer.toml`` and a valid token per pool, and serves until Ctrl-C.
Tests import ``CognitoStub`` and mint tokens with ``token()``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

POOLS = ("us-east-1_examplePool1", "us-east-1_examplePool2")  # the ids written in the handler
_HOST = re.compile(r"^cognito-idp\.[a-z0-9-]{1,32}\.amazonaws\.com$")
_JWKS_PATH = re.compile(r"^/([A-Za-z0-9_-]{1,64})/\.well-known/jwks\.json$")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificates(region: str, directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for cognito-idp.{region}.amazonaws.com; returns the paths
    of (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cognito-stub test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    host = f"cognito-idp.{region}.amazonaws.com"
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class CognitoStub:
    """A CONNECT proxy answering Cognito's JWKS URLs for `pools`, each with its own RSA key."""

    def __init__(self, directory: Path, pools=POOLS, region: str = "us-east-1", port: int = 0):
        self.region = region
        self.keys = {pool: _key() for pool in pools}
        self.hits: list[str] = []
        self.ca_path, cert, key = _certificates(region, Path(directory))
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        stub = self

        class Jwks(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                stub.hits.append(self.path)
                m = _JWKS_PATH.match(self.path)
                key = stub.keys.get(m.group(1)) if m else None
                if key is None:
                    self._answer(404, {"message": "not found"})
                    return
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                jwk.update({"kid": stub.kid(m.group(1)), "alg": "RS256", "use": "sig"})
                self._answer(200, {"keys": [jwk]})

            def _answer(self, status, value):
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                pass

        class Proxy(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_CONNECT(self):
                host, _, port = self.path.rpartition(":")
                if not _HOST.match(host) or port != "443":
                    self.send_error(403, "only cognito-idp.*.amazonaws.com:443 is served")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                try:
                    inner = stub.tls.wrap_socket(self.connection, server_side=True)
                    inner.settimeout(10)
                    Jwks(inner, self.client_address, self.server)
                except (OSError, ssl.SSLError):
                    pass  # a client that gave up, or did not trust the CA

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Proxy)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kid(self, pool: str) -> str:
        return f"{pool}-key"

    def token(self, pool: str = POOLS[0], sub: str = "user-7781", **claims) -> str:
        """An RS256 token of `pool` as seed 002's handler accepts it (aud = pool id)."""
        now = int(time.time())
        body = {"sub": sub, "aud": pool, "iat": now, "exp": now + 3600, "token_use": "id"}
        body.update(claims)
        return jwt.encode(body, self.keys[pool], algorithm="RS256", headers={"kid": self.kid(pool)})

    def start(self) -> "CognitoStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/seed002", help="where ca.pem and the server key go")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    stub = CognitoStub(Path(args.dir), region=args.region, port=args.port).start()
    print(f"export SEED002_HTTPS_PROXY={stub.proxy_url}")
    print(f"export SEED002_CA_FILE={stub.ca_path}")
    for pool in POOLS:
        print(f"# a token of {pool}:\n{stub.token(pool)}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()


if __name__ == "__main__":
    main()
