"""The chat page (web/chat) in a real headless Chromium: the "first five minutes" of the demo.

Starts the real demo stack exactly as examples/demo.toml describes it (the demo backend and
`portcullis serve --config examples/demo.toml`, every address moved to a free port through the
config's environment variables, a temporary SQLite store), creates alice and bob with the CLI,
and runs tests/browser/chat.mjs (playwright-core driving /usr/bin/chromium), which must exit 0.

Screenshots land in tests/artifacts/browser/. Without Chromium or tests/browser/node_modules the
test is skipped, unless PORTCULLIS_REQUIRE_BROWSER is set (scripts/test sets it): then it fails.
Set PORTCULLIS_UPDATE_DOCS_IMAGES=1 to refresh docs/images/browser-chat.png from this run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import ARTIFACTS, REPO, free_port

BROWSER_DIR = REPO / "tests" / "browser"
BROWSER_ARTIFACTS = ARTIFACTS / "browser"
DEMO_CONFIG = REPO / "examples" / "demo.toml"
DOCS_IMAGE = REPO / "docs" / "images" / "browser-chat.png"
SCRIPT_TIMEOUT = 300  # seconds for the whole browser script; each of its waits has its own limit


def _chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get("PORTCULLIS_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (PORTCULLIS_REQUIRE_BROWSER is set, so this is a failure, not a skip)")
    pytest.skip(f"{reason}; scripts/test installs it (set PORTCULLIS_REQUIRE_BROWSER=1 to fail instead)")


@pytest.fixture
def browser_tools() -> dict[str, str]:
    chromium = _chromium()
    if chromium is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js is not installed")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        _unavailable("tests/browser/node_modules is missing (cd tests/browser && npm ci)")
    return {"chromium": chromium, "node": node}


def _wait_http(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {url} did not answer 200 within {timeout}s:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def demo_site(request, portcullis_bin, demo_backend_bin, tmp_path):
    """examples/demo.toml on free ports, with its backend; yields (public URL, env, logs)."""
    port, admin_port, backend_port = free_port(), free_port(), free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PORTCULLIS_LISTEN": f"127.0.0.1:{port}",
        "PORTCULLIS_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "PORTCULLIS_PUBLIC_URL": public_url,
        "DEMO_BACKEND_URL": f"http://127.0.0.1:{backend_port}",
        "PORTCULLIS_STORE": f"sqlite://{tmp_path}/demo.db",
        "PORTCULLIS_ADMIN_SECRET": "browser-" + secrets.token_hex(16),
    }
    backend_log = tmp_path / "backend.log"
    gateway_log = tmp_path / "portcullis.log"
    procs: list[subprocess.Popen] = []
    files = [open(backend_log, "wb"), open(gateway_log, "wb")]
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(demo_backend_bin),
                    "--listen", f"127.0.0.1:{backend_port}",
                    "--management-url", f"http://127.0.0.1:{admin_port}/prod",
                ],
                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=files[0], stderr=subprocess.STDOUT,
            )
        )
        _wait_http(f"http://127.0.0.1:{backend_port}/healthz", procs[0], backend_log, "the demo backend")
        procs.append(
            subprocess.Popen(
                [str(portcullis_bin), "serve", "--config", str(DEMO_CONFIG)],
                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=files[1], stderr=subprocess.STDOUT,
            )
        )
        _wait_http(f"http://127.0.0.1:{admin_port}/healthz", procs[1], gateway_log, "portcullis")
        yield {
            "url": public_url,
            "env": env,
            "pids": {"backend": procs[0].pid, "gateway": procs[1].pid},
            "logs": {"portcullis": gateway_log, "backend": backend_log},
        }
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for f in files:
            f.close()
        failed = any(
            getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call")
        )
        if failed:
            BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for name, path in (("portcullis", gateway_log), ("backend", backend_log)):
                if path.exists():
                    shutil.copy(path, BROWSER_ARTIFACTS / f"{name}.log")
                    print(f"\n---- {name} log (copied to {BROWSER_ARTIFACTS}) ----\n{_tail(path)}")


@dataclass
class PhasedRun:
    code: int
    phases: list[str]
    report: str  # the script's stdout and stderr


def run_phased(node: str, script: str, env: dict[str, str], timeout: float,
               on_phase: Callable[[str, str], None]) -> PhasedRun:
    """Runs tests/browser/SCRIPT, which prints `PHASE <name> [arg]` when its pages reached a
    state and then waits for "go" on stdin: `on_phase(name, arg)` acts or checks meanwhile.
    The script is killed after `timeout` seconds, or when `on_phase` raises."""
    proc = subprocess.Popen(
        [node, str(BROWSER_DIR / script)], cwd=BROWSER_DIR, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    phases: list[str] = []
    output: list[str] = []
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            if not line.startswith("PHASE "):
                continue
            name, _, arg = line.split(maxsplit=1)[1].strip().partition(" ")
            phases.append(name)
            on_phase(name, arg)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        code = proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    return PhasedRun(code, phases, "\n".join(output) + "\n" + stderr)


def _create_user(portcullis_bin: Path, env: dict[str, str], username: str, password: str) -> None:
    result = subprocess.run(
        [str(portcullis_bin), "users", "create", "--config", str(DEMO_CONFIG), "--pool", "main",
         username, "--password", password],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"creating {username}:\n{result.stdout}\n{result.stderr}"


def _add_to_group(portcullis_bin: Path, env: dict[str, str], username: str, group: str) -> None:
    result = subprocess.run(
        [str(portcullis_bin), "users", "add-to-group", "--config", str(DEMO_CONFIG), "--pool", "main",
         username, group],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"adding {username} to {group}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.timeout(SCRIPT_TIMEOUT + 120)
def test_chat_page_in_a_real_browser(browser_tools, demo_site, portcullis_bin):
    env = demo_site["env"]
    users = {name: f"{name.capitalize()}-{secrets.token_hex(6)}-42" for name in ("alice", "bob", "carol")}
    for name, password in users.items():
        _create_user(portcullis_bin, env, name, password)
    # As scripts/demo does: only alice may announce (the route needs the group admins).
    _add_to_group(portcullis_bin, env, "alice", "admins")

    # The page itself, before any browser: served with its security headers, `/demo` redirects.
    index = requests.get(f"{demo_site['url']}/demo/", timeout=10)
    assert index.status_code == 200, index.text[:500]
    assert "app.js" in index.text
    assert "default-src 'self'" in index.headers.get("Content-Security-Policy", "")
    bare = requests.get(f"{demo_site['url']}/demo", timeout=10, allow_redirects=False)
    assert bare.status_code in (301, 302, 307, 308), bare.status_code
    assert bare.headers["Location"].endswith("/demo/")

    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script_env = {
        **os.environ,
        "PORTCULLIS_URL": demo_site["url"],
        "ALICE_USERNAME": "alice",
        "ALICE_PASSWORD": users["alice"],
        "BOB_USERNAME": "bob",
        "BOB_PASSWORD": users["bob"],
        # carol signs in with "Sign in with Amplify" (AWS Amplify v6, SRP, on the page)
        "CAROL_USERNAME": "carol",
        "CAROL_PASSWORD": users["carol"],
        "CHROMIUM_PATH": browser_tools["chromium"],
        "BROWSER_ARTIFACTS": str(BROWSER_ARTIFACTS),
        # The last steps stop the backend, then the gateway, and check what the page says.
        "BACKEND_PID": str(demo_site["pids"]["backend"]),
        "GATEWAY_PID": str(demo_site["pids"]["gateway"]),
    }
    if os.environ.get("PORTCULLIS_UPDATE_DOCS_IMAGES") or not DOCS_IMAGE.exists():
        script_env["DOCS_IMAGE"] = str(DOCS_IMAGE)
    try:
        result = subprocess.run(
            [browser_tools["node"], str(BROWSER_DIR / "chat.mjs")],
            cwd=BROWSER_DIR, env=script_env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"tests/browser/chat.mjs did not finish within {SCRIPT_TIMEOUT}s\n{out}\n{err}")
    output = f"---- chat.mjs stdout ----\n{result.stdout}\n---- chat.mjs stderr ----\n{result.stderr}"
    print(output)
    assert result.returncode == 0, f"the browser test failed (screenshots in {BROWSER_ARTIFACTS}):\n{output}"
    for shot in ("01-signed-out", "02-hosted-sign-in", "03-chatting", "04-announce-refused", "05-signed-out"):
        assert (BROWSER_ARTIFACTS / f"{shot}.png").is_file(), f"{shot}.png was not saved"
