"""TLS on the public listener, from real clients: `websockets` and `requests` trusting a test
CA, and headless Chromium loading a page over https that opens a wss:// socket.

The CA and the leaf (for localhost and 127.0.0.1) are made with `cryptography` in a temp dir.
Chromium trusts the leaf through --ignore-certificate-errors-spki-list (the SHA-256 of its
public key) and is driven over the DevTools protocol. Without Chromium the browser test is
skipped unless PORTCULLIS_REQUIRE_BROWSER is set.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websockets.sync.client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import CONFIG_TEMPLATE, TIMEOUT, Gateway, wait_until

# The static site's Content-Security-Policy allows scripts from the site only.
PAGE = """<!doctype html><title>pending</title><script src="app.js"></script>
"""
SCRIPT = """
const ws = new WebSocket("wss://localhost:" + location.port + "/chat");
ws.onopen = () => ws.send("hello from the browser");
ws.onmessage = (m) => { document.title = "echo:" + JSON.parse(m.data).echo; };
ws.onerror = () => { document.title = "error"; };
"""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_leaf(dir: Path) -> tuple[Path, Path, Path, bytes]:
    """ca.pem, cert.pem, key.pem in `dir`, and the leaf's SubjectPublicKeyInfo (DER)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Portcullis test CA"))
        .issuer_name(_name("Portcullis test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = dir / "ca.pem", dir / "cert.pem", dir / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (*paths, spki)


@pytest.fixture
def tls_gateway(portcullis_bin, tmp_path, backend):
    ca, cert, key, spki = make_ca_and_leaf(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    (site / "app.js").write_text(SCRIPT)
    template = CONFIG_TEMPLATE.replace(
        'admin_listen = "127.0.0.1:{admin_port}"\n',
        'admin_listen = "127.0.0.1:{admin_port}"\ntls = {{ cert = "cert.pem", key = "key.pem" }}\n',
    ) + '\n[static.page]\npath = "/page"\ndir = "site"\n'
    gateway = Gateway(portcullis_bin, tmp_path, f"http://127.0.0.1:{backend.port}/events", template=template)
    gateway.start()
    yield gateway, ca, spki
    gateway.terminate()


def test_websockets_and_requests_trusting_the_ca(tls_gateway, backend):
    gateway, ca, _ = tls_gateway
    context = ssl.create_default_context(cafile=str(ca))
    with websockets.sync.client.connect(
        f"wss://localhost:{gateway.ws_port}/chat", ssl=context, open_timeout=TIMEOUT
    ) as ws:
        ws.send("over wss")
        assert json.loads(ws.recv(timeout=TIMEOUT))["echo"] == "over wss"
        connect = wait_until(
            lambda: next((e for e in backend.events if e["requestContext"]["eventType"] == "CONNECT"), None),
            what="$connect",
        )
        assert connect["headers"]["X-Forwarded-Proto"] == "https"
        assert connect["requestContext"]["domainName"] == f"127.0.0.1:{gateway.ws_port}"

    page = requests.get(f"https://localhost:{gateway.ws_port}/page/", verify=str(ca), timeout=TIMEOUT)
    assert page.status_code == 200 and "app.js" in page.text

    # Not trusted without the CA; not served as plain HTTP.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://localhost:{gateway.ws_port}/page/", timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{gateway.ws_port}/page/", timeout=TIMEOUT)


def _chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_chromium_loads_the_page_over_https_and_echoes_over_wss(tls_gateway, tmp_path):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("PORTCULLIS_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed")
        pytest.skip("Chromium is not installed")
    gateway, _, spki = tls_gateway
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    profile = tmp_path / "chromium-profile"
    browser = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--ignore-certificate-errors-spki-list={pin}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30, what="DevTools port")
        devtools = int(port_file.read_text().split()[0])
        targets = wait_until(
            lambda: [t for t in requests.get(f"http://127.0.0.1:{devtools}/json", timeout=TIMEOUT).json() if t["type"] == "page"],
            timeout=30,
            what="a page target",
        )
        with websockets.sync.client.connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as cdp:
            ids = iter(range(1, 1000))

            def call(method: str, **params):
                n = next(ids)
                cdp.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    answer = json.loads(cdp.recv(timeout=TIMEOUT))
                    if answer.get("id") == n:
                        return answer.get("result", {})

            call("Page.navigate", url=f"https://localhost:{gateway.ws_port}/page/")
            deadline = time.monotonic() + 30
            title = ""
            while time.monotonic() < deadline:
                title = call("Runtime.evaluate", expression="document.title")["result"].get("value", "")
                if title.startswith("echo:") or title == "error":
                    break
                time.sleep(0.2)
            state = call("Runtime.evaluate", expression="ws.readyState")["result"].get("value")
            assert title == "echo:hello from the browser", f"{title} readyState={state}\n{gateway.log_tail()}"
            scheme = call("Runtime.evaluate", expression="location.protocol")["result"]["value"]
            assert scheme == "https:"
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
