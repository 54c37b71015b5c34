"""Secrets at rest against the real binary: the probe that read a signing key out of the SQLite
file, repeated.

`portcullis serve` on a fresh SQLite store creates the database and its -wal/-shm files with mode
0600 and refuses a database other users may read. Without a key-encryption key, the PKCS#8 key in
`signing_keys` loads as an RSA private key straight from the file (what an attacker who can read
it needs to mint tokens); with `[store] key_encryption_key` the rows and the client-secret pepper
are sealed on the next start, the key no longer appears in the file, tokens issued before still
verify, and a start with another key fails with a message saying why.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from conftest import TIMEOUT, Gateway

CLIENT_SECRET = "pytest-at-rest-client-secret"
KEK = "pytest-kek-0123456789abcdef0123456789abcdef"
OTHER_KEK = "pytest-kek-fedcba9876543210fedcba9876543210"
SEALED_PREFIX = b"PCSEAL1:"

TEMPLATE = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
public_url = "http://127.0.0.1:{ws_port}"

[store]
url = "sqlite://{db}"
{kek_line}

[pools.main]

[pools.main.resource_servers.reports]
scopes = ["read"]

[pools.main.clients.backend]
secret = "{client_secret}"
grants = ["client_credentials"]
allowed_scopes = ["reports/read"]
"""


def gateway(binary: Path, tmp_path: Path, kek: str | None) -> Gateway:
    return Gateway(
        binary,
        tmp_path,
        backend_url="http://127.0.0.1:9",
        env={"PORTCULLIS_KEK": kek} if kek else None,
        template=TEMPLATE,
        db=tmp_path / "idp.db",
        kek_line='key_encryption_key = "${PORTCULLIS_KEK}"' if kek else "",
        client_secret=CLIENT_SECRET,
    )


def token(gw: Gateway) -> str:
    base = f"http://127.0.0.1:{gw.ws_port}"
    r = requests.post(
        f"{base}/pools/main/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("backend", CLIENT_SECRET),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def verifies(gw: Gateway, access_token: str) -> bool:
    base = f"http://127.0.0.1:{gw.ws_port}"
    jwks = jwt.PyJWKClient(f"{base}/pools/main/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(access_token).key
    try:
        jwt.decode(access_token, key, algorithms=["RS256"], options={"verify_aud": False})
        return True
    except jwt.InvalidTokenError:
        return False


def stored(db: Path) -> tuple[list[bytes], bytes]:
    """What an attacker reading the file gets: the signing key rows and the pepper."""
    with sqlite3.connect(db) as conn:
        keys = [bytes(r[0]) for r in conn.execute("SELECT pkcs8 FROM signing_keys")]
        (pepper,) = conn.execute(
            "SELECT value FROM meta WHERE key = 'client_secret_pepper'"
        ).fetchone()
    conn.close()
    return keys, bytes(pepper)


def file_bytes(db: Path) -> bytes:
    return b"".join(
        Path(f"{db}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{db}{suffix}").exists()
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_store_files_are_owner_only_and_a_readable_database_is_refused(portcullis_bin, tmp_path):
    db = tmp_path / "idp.db"
    gw = gateway(portcullis_bin, tmp_path, None).start()
    try:
        token(gw)
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists(), path
            assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    finally:
        gw.terminate()

    os.chmod(db, 0o644)
    refused = gateway(portcullis_bin, tmp_path, None)
    with pytest.raises(AssertionError, match="exited"):
        refused.start()
    assert f"chmod 600 {db}" in refused.log_text(), refused.log_tail()
    assert mode(db) == 0o644

    os.chmod(db, 0o600)
    gateway(portcullis_bin, tmp_path, None).start().terminate()


def test_a_key_encryption_key_seals_the_keys_and_pepper_in_the_file(portcullis_bin, tmp_path):
    db = tmp_path / "idp.db"
    gw = gateway(portcullis_bin, tmp_path, None).start()
    try:
        before = token(gw)
        assert "unencrypted" in gw.log_text()
    finally:
        gw.terminate()
    # the probe: without a key-encryption key the file hands out the private key
    keys, pepper = stored(db)
    assert len(keys) == 1 and len(pepper) == 32
    serialization.load_der_private_key(keys[0], password=None)
    plain_key = keys[0]

    gw = gateway(portcullis_bin, tmp_path, KEK).start()
    try:
        assert verifies(gw, before)
        after = token(gw)
        assert verifies(gw, after)
        assert "unencrypted" not in gw.log_text()
    finally:
        gw.terminate()
    keys, pepper = stored(db)
    assert len(keys) == 1
    assert keys[0].startswith(SEALED_PREFIX) and pepper.startswith(SEALED_PREFIX)
    with pytest.raises(ValueError):
        serialization.load_der_private_key(keys[0], password=None)
    assert plain_key[-64:] not in file_bytes(db)

    wrong = gateway(portcullis_bin, tmp_path, OTHER_KEK)
    with pytest.raises(AssertionError, match="exited"):
        wrong.start()
    assert "cannot be decrypted" in wrong.log_text(), wrong.log_tail()
    assert KEK not in wrong.log_text() and OTHER_KEK not in wrong.log_text()

    gw = gateway(portcullis_bin, tmp_path, KEK).start()
    try:
        assert verifies(gw, before) and verifies(gw, after)
    finally:
        gw.terminate()
