"""Slow and greedy clients against the real binary: a flood of connections trickling request
bodies into the public listener leaves health checks and @connections answering, a body that
does not arrive in time gets 408 and loses its connection, and one client address cannot hold
more than `max_connections_per_ip` connections.

The flood is the probe that once took the admin listener down: open many connections to the
public listener, send a request head announcing a body, then one body byte now and then.
"""

from __future__ import annotations

import shutil
import socket

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ARTIFACTS, CONFIG_TEMPLATE, STAGE, TIMEOUT, Backend, Gateway, Stack, management_client

HTTP_API = """
[http.api]
base_path = "/api"
[http.api.routes]
"POST /echo" = {{ integration = "backend" }}
"""


def template(server: str) -> str:
    admin = 'admin_listen = "127.0.0.1:{admin_port}"\n'
    return CONFIG_TEMPLATE.replace(admin, admin + server + "\n") + HTTP_API


@pytest.fixture
def make_stack(request, portcullis_bin, tmp_path):
    started: list[tuple[Stack, Backend]] = []

    def make(server: str) -> Stack:
        backend = Backend().start()
        gateway = Gateway(
            portcullis_bin, tmp_path, f"http://127.0.0.1:{backend.port}/events", template=template(server)
        )
        gateway.start()
        backend.management = management_client(f"{gateway.admin_url}/{STAGE}", gateway.secret)
        stack = Stack(gateway, backend)
        started.append((stack, backend))
        return stack

    failed_before = request.session.testsfailed
    yield make
    for stack, backend in started:
        stack.close_all()
        if stack.gateway.proc is not None and stack.gateway.proc.poll() is None:
            try:
                stack.gateway.terminate()
            except AssertionError as e:
                print(e)
        backend.stop()
        if request.session.testsfailed > failed_before:
            dest = ARTIFACTS / request.node.name.replace("/", "_")
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(stack.gateway.log_path, dest / "portcullis.log")
            print(f"\n---- portcullis log (copied to {dest}) ----\n{stack.gateway.log_tail()}")


def slow_body(port: int) -> socket.socket:
    """A connection that announces a 1000-byte body and sends one byte of it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(
        f"POST /api/echo HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n{".encode()
    )
    return s


def read_to_close(s: socket.socket) -> bytes:
    """Everything the gateway sends until it closes (a socket timeout fails the test)."""
    received = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_flood_of_slow_bodies_leaves_health_checks_and_connections_answering(make_stack):
    stack = make_stack("max_connections = 20")
    port = stack.gateway.ws_port
    # Fill the public listener's budget: each connection waits until the gateway reads its body
    # (100 Continue), then trickles one byte.
    flood = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            flood.append(s)
            s.sendall(
                f"POST /api/echo HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 1000\r\n"
                "expect: 100-continue\r\n\r\n".encode()
            )
            assert s.recv(1024).startswith(b"HTTP/1.1 100 Continue"), "the gateway is not reading the body"
            s.sendall(b"{")
        # Health checks, metrics and @connections still answer.
        health = requests.get(f"{stack.admin_url}/healthz", timeout=TIMEOUT)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert requests.get(f"{stack.admin_url}/metrics", timeout=TIMEOUT).status_code == 200
        with pytest.raises(ClientError) as gone:
            stack.client().post_to_connection(ConnectionId="AAAAAAAAAAAAAAAAAAAA", Data=b"hi")
        assert gone.value.response["Error"]["Code"] == "GoneException"
        # The flood is still waiting for its bodies: nothing reached the backend.
        assert not [e for e in stack.backend.events if e.get("routeKey") == "POST /echo"]
    finally:
        for s in flood:
            s.close()


def test_a_body_that_does_not_arrive_in_time_gets_408_and_is_closed(make_stack):
    stack = make_stack('body_read_timeout = "500ms"')
    s = slow_body(stack.gateway.ws_port)
    answer = read_to_close(s).decode()
    s.close()
    assert answer.startswith("HTTP/1.1 408 "), answer
    assert "connection: close" in answer, answer
    assert answer.endswith('{"message":"Request Timeout"}'), answer
    assert not [e for e in stack.backend.events if e.get("routeKey") == "POST /echo"]


def test_connections_beyond_the_per_address_cap_are_refused(make_stack):
    stack = make_stack("max_connections_per_ip = 3")
    sockets = [stack.connect() for _ in range(3)]
    extra = socket.create_connection(("127.0.0.1", stack.gateway.ws_port), timeout=TIMEOUT)
    refused = read_to_close(extra).decode()
    extra.close()
    assert refused.startswith("HTTP/1.1 503 "), refused
    # The three keep working.
    client = stack.client()
    for ws, cid in sockets:
        client.post_to_connection(ConnectionId=cid, Data=cid.encode())
        assert ws.recv(timeout=TIMEOUT) == cid
    metrics = requests.get(f"{stack.admin_url}/metrics", timeout=TIMEOUT).text
    assert 'portcullis_connections_refused_total{listener="public",reason="per_ip"} 1' in metrics
