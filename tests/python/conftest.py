"""Fixtures driving the real `portcullis` binary with real clients.

Each test gets its own stack: a Python backend (a threaded http.server that records every event
the gateway POSTs and answers per route), a temporary config on free loopback ports, and
`portcullis serve --config FILE` as a subprocess whose output is captured to a file. Teardown
sends SIGTERM. When a test fails, the tail of the gateway's log is printed with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.config
import pytest
import requests
import websockets.sync.client
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
if not TARGET_DIR.is_absolute():
    TARGET_DIR = REPO / TARGET_DIR
ARTIFACTS = REPO / "tests" / "artifacts"

ACCESS_KEY_ID = "AKIDTEST"
REGION = "us-east-1"
STAGE = "prod"
USER_AGENT = "portcullis-pytest/1.0"
TIMEOUT = 10.0  # seconds any single wait may take; generous for a loaded 2-core CI machine


# ---- binaries ---------------------------------------------------------------------------------


def cargo_binary(package: str, name: str) -> Path:
    """target/debug/<name>, built with cargo if it is not there yet."""
    path = TARGET_DIR / "debug" / name
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "-p", package, "--bin", name], cwd=REPO, check=True
        )
    assert path.exists(), f"{path} was not built"
    return path


@pytest.fixture(scope="session")
def portcullis_bin() -> Path:
    return cargo_binary("portcullis", "portcullis")


@pytest.fixture(scope="session")
def demo_backend_bin() -> Path:
    return cargo_binary("portcullis-demo", "portcullis-demo-backend")


# ---- helpers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def management_client(endpoint_url: str, secret: str, access_key_id: str = ACCESS_KEY_ID):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=TIMEOUT,
        ),
    )


def sigv4_headers(
    method: str, url: str, secret: str, body: bytes = b"", access_key_id: str = ACCESS_KEY_ID
) -> dict[str, str]:
    """Headers botocore's SigV4Auth adds for `url` exactly as written (e.g. with %40connections)."""
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(access_key_id, secret), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


# ---- the Python backend -----------------------------------------------------------------------


class Backend:
    """Records every event; answers per route. Attributes may be changed while it runs."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.cond = threading.Condition()
        # Behaviour knobs:
        self.connect_status = 200  # answered to $connect
        self.post_from_connect = False  # call post_to_connection on the new id inside $connect
        self.connect_post_results: dict[str, str] = {}  # connection id -> "OK" or error code
        self.management: Any = None  # boto3 client, set once the gateway's ports are known
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Backend":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- queries --

    def find(self, event_type: str | None = None, connection_id: str | None = None, pred=None) -> list[dict]:
        with self.cond:
            return [
                e
                for e in self.events
                if (event_type is None or e.get("requestContext", {}).get("eventType") == event_type)
                and (connection_id is None or e.get("requestContext", {}).get("connectionId") == connection_id)
                and (pred is None or pred(e))
            ]

    def wait_for(self, event_type: str, connection_id: str | None = None, pred=None, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = self.find(event_type, connection_id, pred)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"backend got no {event_type} event for {connection_id or 'any connection'} "
                        f"within {timeout}s; events seen: {[_summary(e) for e in self.events]}"
                    )
                self.cond.wait(left)

    # -- handling --

    def handle(self, event: dict) -> dict:
        ctx = event.get("requestContext", {})
        kind = ctx.get("eventType")
        cid = ctx.get("connectionId", "")
        if kind == "CONNECT":
            if self.post_from_connect and self.management is not None:
                try:
                    self.management.post_to_connection(ConnectionId=cid, Data=b"too early")
                    self.connect_post_results[cid] = "OK"
                except self.management.exceptions.ClientError as e:
                    self.connect_post_results[cid] = e.response["Error"]["Code"]
                except Exception as e:  # noqa: BLE001 - recorded for the test to see
                    self.connect_post_results[cid] = f"{type(e).__name__}: {e}"
            return {"statusCode": self.connect_status}
        if kind == "DISCONNECT":
            return {"statusCode": 200}
        route = ctx.get("routeKey")
        if route == "whoami":
            return {"statusCode": 200, "body": json.dumps({"connectionId": cid})}
        return {"statusCode": 200, "body": json.dumps({"echo": event.get("body"), "connectionId": cid})}

    def _handler_class(self):
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    event = json.loads(raw)
                except ValueError:
                    self._answer(400, {"message": "not JSON"})
                    return
                with backend.cond:
                    backend.events.append(event)
                    backend.cond.notify_all()
                # $connect answers are decided after recording, so a test sees the event first.
                result = backend.handle(event)
                self._answer(200, result)

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def _summary(e: dict) -> str:
    ctx = e.get("requestContext", {})
    return f"{ctx.get('eventType')}:{ctx.get('routeKey')}:{ctx.get('connectionId')}"


# ---- the gateway --------------------------------------------------------------------------------

CONFIG_TEMPLATE = """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"

[management]
credentials = [{{ access_key_id = "{akid}", secret_access_key = "{secret}" }}]
region = "{region}"

[websocket.chat]
stage = "{stage}"
route_selection_expression = "$request.body.action"

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend", response = true }}
whoami        = {{ integration = "backend", response = true }}
sendmessage   = {{ integration = "backend" }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"
"""


class Gateway:
    def __init__(
        self,
        binary: Path,
        workdir: Path,
        backend_url: str,
        env: dict[str, str] | None = None,
        template: str = CONFIG_TEMPLATE,
        secret: str | None = None,
        **values: Any,
    ) -> None:
        """`template` is formatted with the ports, credentials and `backend_url` below plus `values`.
        `secret` (the management credential's) is random unless given: the nodes of a cluster
        share one."""
        self.binary = binary
        self.workdir = workdir
        self.secret = secret or "pytest-" + secrets.token_hex(16)
        self.ws_port = free_port()
        self.admin_port = free_port()
        self.config_path = workdir / "portcullis.toml"
        self.config_path.write_text(
            template.format(
                ws_port=self.ws_port,
                admin_port=self.admin_port,
                akid=ACCESS_KEY_ID,
                secret=self.secret,
                region=REGION,
                stage=STAGE,
                backend_url=backend_url,
                **values,
            )
        )
        self.log_path = workdir / "portcullis.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/chat"

    def start(self) -> "Gateway":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config_path)],
            cwd=self.workdir,  # anything it writes (a default SQLite file) stays in the temp dir
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"portcullis exited with {self.proc.returncode} before /healthz answered:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.admin_url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"portcullis /healthz did not answer 200 within 30s:\n{self.log_tail()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"portcullis did not exit within {timeout}s of SIGTERM")
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye (a crashed or lost machine)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def metrics(self) -> dict[str, float]:
        """`/metrics` on the admin listener: each unlabelled sample by name (labelled ones by
        their full `name{labels}`)."""
        text = requests.get(f"{self.admin_url}/metrics", timeout=TIMEOUT).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                samples[name] = float(value)
            except ValueError:
                continue
        return samples

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def module_gateway(request, gateway: "Gateway", artifacts: str, *others):
    """Starts `gateway` for the tests of one module and yields it; at the end stops it and
    `others` (a backend, a webhook: anything with `stop()`), and when a test of the module
    failed, copies its log and configuration to tests/artifacts/ARTIFACTS."""
    failed_before = request.session.testsfailed
    try:
        gateway.start()
        yield gateway
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            try:
                gateway.terminate()
            except AssertionError as e:
                print(e)
        for other in others:
            other.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / artifacts
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("portcullis.log", "portcullis.toml"):
                if (gateway.workdir / name).exists():
                    shutil.copy(gateway.workdir / name, dest / name)
            print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")


def cognito_client(gateway: "Gateway", **kwargs):
    """boto3's `cognito-idp` client against the gateway's public listener (unsigned calls)."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{gateway.ws_port}",
        region_name="us-east-1",
        aws_access_key_id=kwargs.pop("aws_access_key_id", "x"),
        aws_secret_access_key=kwargs.pop("aws_secret_access_key", "x"),
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
        **kwargs,
    )


class Stack:
    """A running gateway plus the recording backend, with client helpers."""

    def __init__(self, gateway: Gateway, backend: Backend) -> None:
        self.gateway = gateway
        self.backend = backend
        self.sockets = contextlib.ExitStack()

    @property
    def secret(self) -> str:
        return self.gateway.secret

    @property
    def admin_url(self) -> str:
        return self.gateway.admin_url

    @property
    def stage_url(self) -> str:
        return f"{self.gateway.admin_url}/{STAGE}"

    def client(self, endpoint_url: str | None = None, secret: str | None = None):
        return management_client(endpoint_url or self.stage_url, secret or self.secret)

    def connect(self, query: dict[str, str] | None = None, path: str | None = None, **kwargs):
        """Opens a WebSocket (to `path`, `/chat` by default); returns (socket, connection id
        from the CONNECT event)."""
        tag = secrets.token_hex(8)
        params = {"tag": tag, **(query or {})}
        base = f"ws://127.0.0.1:{self.gateway.ws_port}{path}" if path else self.gateway.ws_url
        url = f"{base}?{urllib.parse.urlencode(params)}"
        kwargs.setdefault("user_agent_header", USER_AGENT)
        kwargs.setdefault("open_timeout", TIMEOUT)
        kwargs.setdefault("close_timeout", 2)
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("compression", None)
        kwargs.setdefault("proxy", None)
        ws = self.sockets.enter_context(websockets.sync.client.connect(url, **kwargs))
        event = self.backend.wait_for(
            "CONNECT", pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag
        )
        return ws, event["requestContext"]["connectionId"]

    def close_all(self) -> None:
        try:
            self.sockets.close()
        except Exception:  # noqa: BLE001 - a socket the test already closed is fine
            pass


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call"))


@pytest.fixture
def backend():
    b = Backend().start()
    yield b
    b.stop()


def _start_stack(request, portcullis_bin: Path, tmp_path: Path, backend: Backend, env=None) -> Stack:
    gateway = Gateway(portcullis_bin, tmp_path, f"http://127.0.0.1:{backend.port}/events", env=env)
    gateway.start()
    backend.management = management_client(f"{gateway.admin_url}/{STAGE}", gateway.secret)
    return Stack(gateway, backend)


def _finish_stack(request, stack: Stack) -> None:
    stack.close_all()
    gateway = stack.gateway
    if gateway.proc is not None and gateway.proc.poll() is None:
        try:
            gateway.terminate()
        except AssertionError as e:
            print(e)
    if _failed(request):
        dest = ARTIFACTS / request.node.name.replace("/", "_")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(gateway.log_path, dest / "portcullis.log")
        shutil.copy(gateway.config_path, dest / "portcullis.toml")
        print(f"\n---- portcullis log (copied to {dest}) ----\n{gateway.log_tail()}")


@pytest.fixture
def stack(request, portcullis_bin, tmp_path, backend):
    s = _start_stack(request, portcullis_bin, tmp_path, backend)
    yield s
    _finish_stack(request, s)


@pytest.fixture
def debug_stack(request, portcullis_bin, tmp_path, backend):
    """Like `stack`, with debug logging in JSON (the other log format)."""
    env = {"PORTCULLIS_LOG": "debug", "PORTCULLIS_LOG_FORMAT": "json"}
    s = _start_stack(request, portcullis_bin, tmp_path, backend, env=env)
    yield s
    _finish_stack(request, s)
