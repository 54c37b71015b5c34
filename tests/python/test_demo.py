"""The bundled chat demo end to end: the real gateway, the real demo backend, real clients."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest
import requests
import websockets.sync.client

from conftest import (
    ACCESS_KEY_ID,
    REPO,
    STAGE,
    TIMEOUT,
    Gateway,
    cargo_binary,
    free_port,
    management_client,
    wait_until,
)


@pytest.fixture
def demo(request, portcullis_bin, demo_backend_bin, tmp_path):
    backend_port = free_port()
    gateway = Gateway(portcullis_bin, tmp_path, f"http://127.0.0.1:{backend_port}/events")
    backend_log = open(tmp_path / "backend.log", "wb")
    backend = subprocess.Popen(
        [
            str(demo_backend_bin),
            "--listen", f"127.0.0.1:{backend_port}",
            "--management-url", f"{gateway.admin_url}/{STAGE}",
            "--access-key-id", ACCESS_KEY_ID,
        ],
        env={**os.environ, "PORTCULLIS_ADMIN_SECRET": gateway.secret},
        stdin=subprocess.DEVNULL, stdout=backend_log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert backend.poll() is None, (tmp_path / "backend.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{backend_port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "demo backend did not start"
            time.sleep(0.05)
        gateway.start()
        yield gateway
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.terminate()
        backend.terminate()
        backend.wait(10)
        backend_log.close()
        if any(getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call")):
            print("---- portcullis log ----\n" + gateway.log_tail())
            print("---- demo backend log ----\n" + (tmp_path / "backend.log").read_text(errors="replace")[-4000:])


def ws_connect(url: str):
    return websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=2, ping_interval=None, compression=None, proxy=None
    )


def test_sendmessage_is_broadcast_to_everyone(demo):
    with ws_connect(demo.ws_url) as a, ws_connect(demo.ws_url) as b:
        a.send(json.dumps({"action": "sendmessage", "data": "hi from A"}))
        assert a.recv(timeout=TIMEOUT) == "hi from A"
        assert b.recv(timeout=TIMEOUT) == "hi from A"
        b.send(json.dumps({"action": "sendmessage", "data": "hi from B ✓"}))
        assert a.recv(timeout=TIMEOUT) == "hi from B ✓"
        assert b.recv(timeout=TIMEOUT) == "hi from B ✓"


def test_whoami_and_push_with_boto3(demo):
    with ws_connect(demo.ws_url) as ws:
        ws.send(json.dumps({"action": "whoami"}))
        me = json.loads(ws.recv(timeout=TIMEOUT))
        cid = me["connectionId"]
        assert me["identity"]["sourceIp"] == "127.0.0.1"
        client = management_client(f"{demo.admin_url}/{STAGE}", demo.secret)
        client.post_to_connection(ConnectionId=cid, Data=b"pushed by boto3")
        assert ws.recv(timeout=TIMEOUT) == "pushed by boto3"


def test_default_route_echoes(demo):
    with ws_connect(demo.ws_url) as ws:
        ws.send("not json at all")
        reply = json.loads(ws.recv(timeout=TIMEOUT))
        assert reply["received"] == "not json at all"
        assert reply["routeKey"] == "$default"


def test_chat_client(demo):
    chat_bin = cargo_binary("portcullis-demo", "portcullis-chat")
    with ws_connect(demo.ws_url) as other:
        chat = subprocess.Popen(
            [str(chat_bin), demo.ws_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(line.decode().rstrip("\n") for line in chat.stdout), daemon=True
        )
        reader.start()
        try:
            assert chat.stdin is not None
            chat.stdin.write(b"hello from the terminal\n")
            chat.stdin.write(b'/raw {"action":"sendmessage","data":"raw json"}\n')
            chat.stdin.flush()
            assert other.recv(timeout=TIMEOUT) == "hello from the terminal"
            assert other.recv(timeout=TIMEOUT) == "raw json"
            # The chat client prints the same broadcasts.
            wait_until(lambda: "raw json" in lines, what=f"the chat client to print both messages: {lines}")
            chat.stdin.close()  # end of input: the client closes the connection and exits
            assert chat.wait(timeout=TIMEOUT) == 0, chat.stderr.read().decode() if chat.stderr else ""
            reader.join(TIMEOUT)
        finally:
            if chat.poll() is None:
                chat.kill()
    assert lines[:2] == ["hello from the terminal", "raw json"]
    assert lines[-1] == "connection closed: 1000", lines


def test_example_config_is_valid_and_redacted(portcullis_bin):
    secret = "example-secret-" + os.urandom(6).hex()
    result = subprocess.run(
        [str(portcullis_bin), "check", "--config", str(REPO / "examples" / "chat.toml")],
        env={**os.environ, "PORTCULLIS_ADMIN_SECRET": secret},
        capture_output=True, timeout=30,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    assert secret not in output
