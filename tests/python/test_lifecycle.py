"""Connection lifecycle through the real binary: $connect outcomes, shutdown, secrets in logs."""

from __future__ import annotations

import secrets

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import TIMEOUT, sigv4_headers


def close_code(ws) -> int | None:
    """Reads until the connection closes; returns the close code the server sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=TIMEOUT)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.parametrize("status", [401, 403, 500])
def test_connect_refused_with_the_backend_status(stack, status):
    stack.backend.connect_status = status
    with pytest.raises(InvalidStatus) as err:
        stack.connect()
    assert err.value.response.status_code == status


def test_sigterm_closes_every_socket_with_1001_and_fires_disconnects(stack):
    opened = [stack.connect() for _ in range(3)]
    status = stack.gateway.terminate()
    for ws, cid in opened:
        assert close_code(ws) == 1001, f"connection {cid}"
    for _, cid in opened:
        event = stack.backend.wait_for("DISCONNECT", cid)
        assert event["requestContext"]["routeKey"] == "$disconnect"
    assert status == 0, f"portcullis exited with {status} after SIGTERM"


def exercise_secrets(stack, token: str) -> None:
    """Does the things most likely to log a secret: a token in the URL, good and bad calls."""
    ws, cid = stack.connect(query={"access_token": token})
    good = stack.client()
    good.post_to_connection(ConnectionId=cid, Data=b"hello")
    ws.recv(timeout=TIMEOUT)
    good.get_connection(ConnectionId=cid)
    bad = stack.client(secret=stack.secret + "x")
    with pytest.raises(bad.exceptions.ClientError):
        bad.post_to_connection(ConnectionId=cid, Data=b"nope")
    url = f"{stack.stage_url}/@connections/nope"
    requests.post(url, data=b"x", headers=sigv4_headers("POST", url, stack.secret, b"x"), timeout=TIMEOUT)
    ws.send("plain text to $default")
    ws.recv(timeout=TIMEOUT)
    ws.close()
    stack.backend.wait_for("DISCONNECT", cid)
    # The token did reach the backend, as on AWS: it is only the gateway's log that must not have it.
    connect = stack.backend.wait_for("CONNECT", cid)
    assert connect["queryStringParameters"]["access_token"] == token


@pytest.mark.parametrize("stack_fixture", ["stack", "debug_stack"])
def test_logs_never_contain_secrets(request, stack_fixture):
    stack = request.getfixturevalue(stack_fixture)
    token = "SECRET123" + secrets.token_hex(6)
    exercise_secrets(stack, token)
    stack.gateway.terminate()
    log = stack.gateway.log_text()
    assert log.strip(), "the gateway logged nothing at all; this test would prove nothing"
    assert stack.secret not in log
    assert "SECRET123" not in log
