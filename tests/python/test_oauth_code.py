"""OAuth 2.0 against the real binary with a real client library (Authlib).

`portcullis serve` with a pool that has a public client (authorization code + PKCE) and a
confidential one (client credentials and authorization code). Authlib reads the discovery
document, builds the authorization URL with PKCE S256, and exchanges the code; the hosted
sign-in form is submitted with `requests` after reading its hidden fields. Tokens are checked
against the JWKS with PyJWT.
"""

from __future__ import annotations

import html.parser
import subprocess
import urllib.parse
from pathlib import Path

import jwt
import pytest
import requests
import requests.adapters
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from conftest import TIMEOUT, Gateway, free_port

CONFIDENTIAL_SECRET = "pytest-confidential-secret"
PASSWORD = "Passw0rd-alice"
# Pending sign-in requests one client address may hold (the gateway's default).
PENDING_PER_ADDRESS = 20

TEMPLATE = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
public_url = "http://127.0.0.1:{ws_port}"

[store]
url = "sqlite://{db}"

[pools.main]

[pools.main.resource_servers.reports]
scopes = ["read"]

[pools.main.clients.spa]
public = true
grants = ["authorization_code", "refresh_token"]
callback_urls = ["http://127.0.0.1:{ws_port}/cb"]
logout_urls = ["http://127.0.0.1:{ws_port}/bye"]
allowed_scopes = ["openid", "email", "profile"]

[pools.main.clients.backend]
secret = "{secret_cc}"
grants = ["client_credentials", "authorization_code"]
callback_urls = ["http://127.0.0.1:{ws_port}/app"]
allowed_scopes = ["openid", "email", "reports/read"]
"""


class _Hidden(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value") or ""


def parse_form(page: str) -> tuple[str, dict[str, str]]:
    p = _Hidden()
    p.feed(page)
    assert p.action, page
    return p.action, p.fields


@pytest.fixture
def idp(portcullis_bin: Path, tmp_path: Path):
    gw = Gateway(
        portcullis_bin,
        tmp_path,
        backend_url="http://127.0.0.1:9",
        template=TEMPLATE,
        db=tmp_path / "idp.db",
        secret_cc=CONFIDENTIAL_SECRET,
    )
    subprocess.run(
        [
            str(portcullis_bin),
            "users",
            "create",
            "--config",
            str(gw.config_path),
            "--pool",
            "main",
            "alice",
            "--password",
            PASSWORD,
            "--confirmed",
        ],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    gw.start()
    try:
        base = f"http://127.0.0.1:{gw.ws_port}"
        meta = requests.get(
            f"{base}/pools/main/.well-known/openid-configuration", timeout=TIMEOUT
        ).json()
        yield gw, base, meta
    finally:
        gw.terminate()


def jwks_key(meta: dict, token: str):
    return jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token).key


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connects from another loopback address: another client, as the gateway sees it."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", _FromAddress(address))
    return s


def sign_in(
    base: str, authorize_url: str, browser: requests.Session | None = None
) -> requests.Response:
    """Opens the hosted page and submits alice's credentials; returns the 302."""
    browser = browser or requests.Session()
    page = browser.get(authorize_url, timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 200, page.text
    action, fields = parse_form(page.text)
    assert set(fields) == {"csrf", "request_id"}
    fields.update(username="alice", password=PASSWORD)
    return browser.post(base + action, data=fields, timeout=TIMEOUT, allow_redirects=False)


def test_discovery_lists_code_flow_endpoints(idp):
    _, base, meta = idp
    assert meta["issuer"] == f"{base}/pools/main"
    assert meta["authorization_endpoint"] == f"{base}/pools/main/oauth2/authorize"
    assert meta["userinfo_endpoint"] == f"{base}/pools/main/oauth2/userInfo"
    assert meta["end_session_endpoint"] == f"{base}/pools/main/logout"
    assert "S256" in meta["code_challenge_methods_supported"]


def test_discovery_advertises_exactly_the_accepted_response_types(idp):
    _, base, meta = idp
    challenge = create_s256_code_challenge(generate_token(48))

    def authorize(response_type: str) -> requests.Response:
        return requests.get(
            meta["authorization_endpoint"],
            params={
                "response_type": response_type,
                "client_id": "spa",
                "redirect_uri": f"{base}/cb",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    advertised = meta["response_types_supported"]
    assert advertised
    for response_type in advertised:
        assert authorize(response_type).status_code == 200, response_type
    for response_type in ("token", "id_token", "code id_token"):
        assert response_type not in advertised
        r = authorize(response_type)
        assert r.status_code == 302, response_type
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
        assert q["error"] == ["unsupported_response_type"]


def test_authorize_flood_from_one_address_is_capped_and_others_still_sign_in(idp):
    """One address cannot fill the pending sign-in table: beyond its cap it gets 429 pages,
    while a browser on another address opens the page and completes the code flow."""
    _, base, meta = idp
    redirect_uri = f"{base}/cb"
    client = OAuth2Session(
        "spa",
        redirect_uri=redirect_uri,
        scope="openid",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    flood = [
        requests.get(url, allow_redirects=False, timeout=TIMEOUT)
        for _ in range(PENDING_PER_ADDRESS + 10)
    ]
    statuses = [r.status_code for r in flood]
    assert statuses.count(200) == PENDING_PER_ADDRESS, statuses
    assert statuses.count(429) == 10, statuses
    assert "Too many sign-ins are in progress" in flood[-1].text

    browser = session_from("127.0.0.2")
    r = sign_in(base, url, browser)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(redirect_uri + "?")
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    token = browser.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "client_id": "spa",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    assert token.status_code == 200, token.text
    assert token.json()["access_token"]


def test_client_credentials_with_authlib(idp):
    _, _, meta = idp
    client = OAuth2Session(
        "backend", CONFIDENTIAL_SECRET, token_endpoint_auth_method="client_secret_basic"
    )
    token = client.fetch_token(
        meta["token_endpoint"], grant_type="client_credentials", scope="reports/read"
    )
    claims = jwt.decode(
        token["access_token"],
        jwks_key(meta, token["access_token"]),
        algorithms=["RS256"],
        issuer=meta["issuer"],
    )
    assert claims["client_id"] == "backend"
    assert claims["scope"] == "reports/read"
    assert claims["token_use"] == "access"


def test_authorization_code_with_pkce(idp):
    gw, base, meta = idp
    redirect_uri = f"{base}/cb"
    client = OAuth2Session(
        "spa",
        redirect_uri=redirect_uri,
        scope="openid email profile",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    nonce = generate_token(16)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    assert "code_challenge=" in url
    r = sign_in(base, url)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(redirect_uri + "?")
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert token.get("refresh_token")
    key = jwks_key(meta, token["id_token"])
    id_claims = jwt.decode(
        token["id_token"], key, algorithms=["RS256"], audience="spa", issuer=meta["issuer"]
    )
    assert id_claims["nonce"] == nonce
    assert id_claims["cognito:username"] == "alice"
    access = jwt.decode(
        token["access_token"], key, algorithms=["RS256"], issuer=meta["issuer"]
    )
    assert access["client_id"] == "spa"
    assert set(access["scope"].split()) == {"openid", "email", "profile"}
    assert access["sub"] == id_claims["sub"]

    info = client.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == id_claims["sub"]
    assert info.json()["username"] == "alice"

    # the code is single-use: replaying it fails and revokes the session it created
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    replay = requests.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "client_id": "spa",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert client.get(meta["userinfo_endpoint"], timeout=TIMEOUT).status_code == 401

    # the gateway never logs codes, passwords or tokens
    log = gw.log_text()
    for secret in (code, PASSWORD, token["access_token"], token["refresh_token"], verifier):
        assert secret not in log


def test_pkce_verifier_mismatch_is_refused(idp):
    _, base, meta = idp
    client = OAuth2Session(
        "spa",
        redirect_uri=f"{base}/cb",
        scope="openid",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    location = sign_in(base, url).headers["Location"]
    from authlib.integrations.base_client.errors import OAuthError

    with pytest.raises(OAuthError) as e:
        client.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            code_verifier=generate_token(48),
        )
    assert e.value.error == "invalid_grant"


def test_confidential_client_code_flow(idp):
    _, base, meta = idp
    client = OAuth2Session(
        "backend",
        CONFIDENTIAL_SECRET,
        redirect_uri=f"{base}/app",
        scope="openid email",
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier
    )
    location = sign_in(base, url).headers["Location"]
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert jwt.decode(
        token["id_token"],
        jwks_key(meta, token["id_token"]),
        algorithms=["RS256"],
        audience="backend",
    )["cognito:username"] == "alice"


def test_unregistered_redirect_uri_is_an_error_page(idp):
    _, base, meta = idp
    challenge = create_s256_code_challenge(generate_token(48))
    r = requests.get(
        meta["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": "spa",
            "redirect_uri": "http://evil.example/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


def test_missing_pkce_for_public_client_redirects_with_error(idp):
    _, base, meta = idp
    r = requests.get(
        meta["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": "spa",
            "redirect_uri": f"{base}/cb",
            "state": "xyz",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 302
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["invalid_request"]
    assert q["state"] == ["xyz"]


def test_logout_redirects_to_registered_uri(idp):
    _, base, _ = idp
    r = requests.get(
        f"{base}/pools/main/logout",
        params={"client_id": "spa", "logout_uri": f"{base}/bye"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 302
    assert r.headers["Location"] == f"{base}/bye"
    bad = requests.get(
        f"{base}/pools/main/logout",
        params={"client_id": "spa", "logout_uri": "http://evil.example/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert bad.status_code == 400
