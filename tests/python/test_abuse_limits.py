"""Abuse limits against the real binary with the `websockets` client: an upgrade beyond
`max_connections` gets 503 and one over `connect_rate_per_ip` 429 (both with the HTTP APIs' JSON
bodies, before `$connect`), a message over `message_rate` gets the AWS-style error frame while the
socket stays open, and `X-Forwarded-For` names the client only when the peer is a trusted proxy.
"""

from __future__ import annotations

import json
import time

import pytest
import websockets
from websockets.sync.client import connect as ws_connect

from conftest import CONFIG_TEMPLATE, STAGE, TIMEOUT, Backend, Gateway, Stack, management_client


def template(server: str, api: str = "") -> str:
    admin = 'admin_listen = "127.0.0.1:{admin_port}"\n'
    chat = 'route_selection_expression = "$request.body.action"\n'
    return CONFIG_TEMPLATE.replace(admin, admin + server + "\n").replace(chat, chat + api + "\n")


@pytest.fixture
def make_stack(request, portcullis_bin, tmp_path):
    started: list[Stack] = []

    def make(server: str, api: str = "") -> Stack:
        backend = Backend().start()
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        gateway = Gateway(
            portcullis_bin, workdir, f"http://127.0.0.1:{backend.port}/events", template=template(server, api)
        )
        gateway.start()
        backend.management = management_client(f"{gateway.admin_url}/{STAGE}", gateway.secret)
        stack = Stack(gateway, backend)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.close_all()
        if stack.gateway.proc is not None and stack.gateway.proc.poll() is None:
            stack.gateway.terminate()
        stack.backend.stop()


def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        ws_connect(url, additional_headers=headers or {}, open_timeout=TIMEOUT, proxy=None)
    response = refused.value.response
    return response.status_code, json.loads(response.body)


def test_beyond_max_connections_the_upgrade_gets_503_until_one_closes(make_stack):
    stack = make_stack("max_connections = 1\nconnect_rate_per_ip = 0")
    ws, cid = stack.connect()
    assert refusal(stack.gateway.ws_url) == (503, {"message": "Service Unavailable"})
    ws.close()
    stack.backend.wait_for("DISCONNECT", cid)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            stack.connect()
            break
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == 503 and time.monotonic() < deadline, e


def test_over_connect_rate_per_ip_the_upgrade_gets_429_before_connect(make_stack):
    stack = make_stack("connect_rate_per_ip = 2")
    stack.connect()
    stack.connect()
    assert refusal(stack.gateway.ws_url) == (429, {"message": "Too Many Requests"})
    assert len(stack.backend.find("CONNECT")) == 2


def test_over_message_rate_an_error_frame_and_the_socket_stays(make_stack):
    stack = make_stack("", "message_rate = 2")
    ws, cid = stack.connect()
    for i in range(5):
        ws.send(json.dumps({"n": i}))
    frames = [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(5)]
    throttled = [f for f in frames if f.get("message") == "Too Many Requests"]
    echoed = [f for f in frames if "echo" in f]
    assert throttled and len(echoed) >= 2, frames
    for frame in throttled:
        assert frame["connectionId"] == cid and frame["requestId"], frame
    assert len(stack.backend.find("MESSAGE", cid)) == len(echoed)
    time.sleep(1.1)  # the allowance refills (half a second per message)
    ws.send("again")
    assert json.loads(ws.recv(timeout=TIMEOUT))["echo"] == "again"


def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(make_stack):
    trusted = make_stack('trusted_proxies = ["127.0.0.1/32"]')
    _, cid = trusted.connect(additional_headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    event = trusted.backend.wait_for("CONNECT", cid)
    assert event["requestContext"]["identity"]["sourceIp"] == "203.0.113.9"

    untrusted = make_stack('trusted_proxies = ["10.0.0.0/8"]')
    _, cid = untrusted.connect(additional_headers={"X-Forwarded-For": "203.0.113.9"})
    event = untrusted.backend.wait_for("CONNECT", cid)
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
