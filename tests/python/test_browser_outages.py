"""The chat page through outages, in a real headless Chromium (tests/browser/outages.mjs).

The test owns the processes: it stops the gateway under a signed-in page, brings it back without
its backend, then brings the backend back, and at each step the page must say what is wrong in
words a user understands ("Portcullis is not reachable", "the chat backend is not answering")
and finally reconnect by itself and chat again. The script prints `PHASE <name>` when the page
has reached a state and waits for "go" on stdin once the test has acted.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from conftest import free_port
from test_browser import (  # noqa: F401 (browser_tools is a fixture)
    BROWSER_ARTIFACTS,
    DEMO_CONFIG,
    _create_user,
    _stop,
    _tail,
    _wait_http,
    browser_tools,
    run_phased,
)

SCRIPT_TIMEOUT = 420  # seconds; the page's reconnect back-off grows to 30 s


class Stack:
    """The demo backend and the gateway on fixed free ports, each stoppable and restartable."""

    def __init__(self, tmp: Path, portcullis_bin: Path, backend_bin: Path):
        port, self.admin_port, self.backend_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PORTCULLIS_LISTEN": f"127.0.0.1:{port}",
            "PORTCULLIS_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "PORTCULLIS_PUBLIC_URL": self.url,
            "DEMO_BACKEND_URL": f"http://127.0.0.1:{self.backend_port}",
            "PORTCULLIS_STORE": f"sqlite://{tmp}/demo.db",
            "PORTCULLIS_ADMIN_SECRET": "outages-" + secrets.token_hex(16),
        }
        self.tmp, self.portcullis_bin, self.backend_bin = tmp, portcullis_bin, backend_bin
        self.backend: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        self.logs = {"backend": tmp / "backend.log", "portcullis": tmp / "portcullis.log"}

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(args, cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)

    def start_backend(self) -> None:
        self.backend = self._spawn(
            [str(self.backend_bin), "--listen", f"127.0.0.1:{self.backend_port}",
             "--management-url", f"http://127.0.0.1:{self.admin_port}/prod"],
            self.logs["backend"],
        )
        _wait_http(f"http://127.0.0.1:{self.backend_port}/healthz", self.backend,
                   self.logs["backend"], "the demo backend")

    def start_gateway(self) -> None:
        self.gateway = self._spawn(
            [str(self.portcullis_bin), "serve", "--config", str(DEMO_CONFIG)], self.logs["portcullis"]
        )
        _wait_http(f"http://127.0.0.1:{self.admin_port}/healthz", self.gateway,
                   self.logs["portcullis"], "portcullis")

    def stop(self) -> None:
        for proc in (self.gateway, self.backend):
            if proc is not None:
                _stop(proc)


@pytest.mark.timeout(SCRIPT_TIMEOUT + 120)
def test_the_page_explains_outages_and_recovers(browser_tools, portcullis_bin, demo_backend_bin, tmp_path):
    stack = Stack(tmp_path, portcullis_bin, demo_backend_bin)
    password = f"Alice-{secrets.token_hex(6)}-42"
    _create_user(portcullis_bin, stack.env, "alice", password)
    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack.start_backend()
    stack.start_gateway()

    def on_phase(phase: str, _arg: str) -> None:
        if phase == "connected":
            assert stack.gateway is not None
            _stop(stack.gateway)  # SIGTERM: the page's socket closes with 1001
        elif phase == "gateway-down-shown":
            assert stack.backend is not None
            _stop(stack.backend)
            stack.start_gateway()  # same store: the page's session is still valid
        elif phase == "backend-down-shown":
            stack.start_backend()

    try:
        run = run_phased(
            browser_tools["node"], "outages.mjs",
            {**os.environ, "PORTCULLIS_URL": stack.url, "ALICE_USERNAME": "alice", "ALICE_PASSWORD": password,
             "CHROMIUM_PATH": browser_tools["chromium"], "BROWSER_ARTIFACTS": str(BROWSER_ARTIFACTS)},
            SCRIPT_TIMEOUT, on_phase,
        )
    finally:
        stack.stop()
    seen, code, report = run.phases, run.code, run.report
    if code != 0:
        for name, path in stack.logs.items():
            report += f"\n---- {name} log ----\n{_tail(path)}"
    assert seen == ["connected", "gateway-down-shown", "backend-down-shown"], report
    assert code == 0, f"the outage script failed (screenshots in {BROWSER_ARTIFACTS}):\n{report}"
    for shot in ("outage-1-gateway-down", "outage-2-backend-down", "outage-3-recovered"):
        assert (BROWSER_ARTIFACTS / f"{shot}.png").is_file(), f"{shot}.png was not saved"
