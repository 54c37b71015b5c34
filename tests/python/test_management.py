"""The @connections management API, driven by real boto3 (apigatewaymanagementapi)."""

from __future__ import annotations

import datetime
import json
import time
import urllib.parse

import pytest
import requests
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed

from conftest import TIMEOUT, USER_AGENT, sigv4_headers


def quote_id(connection_id: str) -> str:
    return urllib.parse.quote(connection_id, safe="")


def assert_nothing_received(ws, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        ws.recv(timeout=wait)


def test_healthz(stack):
    r = requests.get(f"{stack.admin_url}/healthz", timeout=5)
    assert r.status_code == 200


def test_connect_event_carries_a_connection_id(stack):
    _, cid = stack.connect()
    event = stack.backend.wait_for("CONNECT", cid)
    ctx = event["requestContext"]
    assert ctx["routeKey"] == "$connect"
    assert ctx["stage"] == "prod"
    assert isinstance(cid, str) and cid


def test_post_to_connection_delivers_exact_bytes_as_text(stack):
    ws, cid = stack.connect()
    data = 'héllo wörld ✓ {"n": 1}\n\ttab'.encode()
    resp = stack.client().post_to_connection(ConnectionId=cid, Data=data)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    message = ws.recv(timeout=TIMEOUT)
    assert isinstance(message, str), "expected a text frame"
    assert message.encode() == data


def test_post_to_connection_keeps_order(stack):
    ws, cid = stack.connect()
    client = stack.client()
    for i in range(20):
        client.post_to_connection(ConnectionId=cid, Data=f"m{i}".encode())
    assert [ws.recv(timeout=TIMEOUT) for _ in range(20)] == [f"m{i}" for i in range(20)]


def test_post_exactly_128_kib_is_accepted(stack):
    ws, cid = stack.connect()
    data = b"y" * 131072
    stack.client().post_to_connection(ConnectionId=cid, Data=data)
    assert ws.recv(timeout=TIMEOUT) == data.decode()


def test_post_over_128_kib_is_payload_too_large(stack):
    ws, cid = stack.connect()
    client = stack.client()
    with pytest.raises(client.exceptions.PayloadTooLargeException) as err:
        client.post_to_connection(ConnectionId=cid, Data=b"x" * 131073)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert_nothing_received(ws)


def test_get_connection(stack):
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    _, cid = stack.connect()
    info = stack.client().get_connection(ConnectionId=cid)
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    assert isinstance(info["ConnectedAt"], datetime.datetime)
    assert isinstance(info["LastActiveAt"], datetime.datetime)
    assert before <= info["ConnectedAt"] <= after
    assert info["ConnectedAt"] <= info["LastActiveAt"] <= after
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert info["Identity"]["UserAgent"] == USER_AGENT


def test_get_connection_wire_format(stack):
    _, cid = stack.connect()
    url = f"{stack.stage_url}/@connections/{quote_id(cid)}"
    r = requests.get(url, headers=sigv4_headers("GET", url, stack.secret), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"connectedAt", "identity", "lastActiveAt"}
    for key in ("connectedAt", "lastActiveAt"):
        # ISO-8601 with a zone, e.g. 2025-03-03T09:14:02.118Z
        parsed = datetime.datetime.fromisoformat(body[key].replace("Z", "+00:00"))
        assert parsed.tzinfo is not None
    assert body["identity"]["sourceIp"] == "127.0.0.1"
    assert body["identity"]["userAgent"] == USER_AGENT


def test_delete_connection_closes_the_socket_and_fires_disconnect(stack):
    ws, cid = stack.connect()
    client = stack.client()
    resp = client.delete_connection(ConnectionId=cid)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ConnectionClosed):
        # Anything still buffered is fine; a close must follow.
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ws.recv(timeout=TIMEOUT)
    event = stack.backend.wait_for("DISCONNECT", cid)
    assert event["requestContext"]["routeKey"] == "$disconnect"
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=cid, Data=b"after delete")


@pytest.mark.parametrize("operation", ["post_to_connection", "get_connection", "delete_connection"])
def test_unknown_connection_is_gone(stack, operation):
    client = stack.client()
    kwargs = {"ConnectionId": "Tm9TdWNoQ29ubj0="}
    if operation == "post_to_connection":
        kwargs["Data"] = b"hello?"
    with pytest.raises(client.exceptions.GoneException) as err:
        getattr(client, operation)(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert err.value.response["Error"]["Code"] == "GoneException"


def test_closed_connection_is_gone(stack):
    ws, cid = stack.connect()
    ws.close()
    stack.backend.wait_for("DISCONNECT", cid)
    client = stack.client()
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=cid, Data=b"late")


def test_wrong_secret_is_forbidden(stack):
    ws, cid = stack.connect()
    client = stack.client(secret="not-the-secret")
    with pytest.raises(ClientError) as err:
        client.post_to_connection(ConnectionId=cid, Data=b"intruder")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.value.response["Error"]["Code"] == "ForbiddenException"
    assert isinstance(err.value, client.exceptions.ForbiddenException)
    assert_nothing_received(ws)


def test_unknown_access_key_is_forbidden(stack):
    ws, cid = stack.connect()
    from conftest import management_client

    client = management_client(stack.stage_url, stack.secret, access_key_id="AKIDUNKNOWN")
    with pytest.raises(client.exceptions.ForbiddenException) as err:
        client.get_connection(ConnectionId=cid)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_request_is_forbidden(stack):
    ws, cid = stack.connect()
    r = requests.post(f"{stack.stage_url}/@connections/{quote_id(cid)}", data=b"unsigned", timeout=TIMEOUT)
    assert r.status_code == 403
    assert r.headers.get("x-amzn-ErrorType", "").split(":")[0] == "ForbiddenException"
    assert_nothing_received(ws)


def test_tampered_body_is_forbidden(stack):
    ws, cid = stack.connect()
    url = f"{stack.stage_url}/@connections/{quote_id(cid)}"
    headers = sigv4_headers("POST", url, stack.secret, b"signed body")
    r = requests.post(url, data=b"other body", headers=headers, timeout=TIMEOUT)
    assert r.status_code == 403
    assert_nothing_received(ws)


def test_error_wire_format(stack):
    url = f"{stack.stage_url}/@connections/{quote_id('Tm9TdWNoQ29ubj0=')}"
    r = requests.post(url, data=b"x", headers=sigv4_headers("POST", url, stack.secret, b"x"), timeout=TIMEOUT)
    assert r.status_code == 410
    assert r.headers.get("x-amzn-ErrorType", "").split(":")[0] == "GoneException"
    body = r.json() if r.content else {}
    assert isinstance(body, dict)
    assert body.get("message") is None or isinstance(body["message"], str)


def test_endpoint_without_stage_works(stack):
    ws, cid = stack.connect()
    client = stack.client(endpoint_url=stack.admin_url)
    client.post_to_connection(ConnectionId=cid, Data=b"no stage")
    assert ws.recv(timeout=TIMEOUT) == "no stage"
    assert client.get_connection(ConnectionId=cid)["Identity"]["SourceIp"] == "127.0.0.1"


def test_percent_encoded_at_sign_works(stack):
    ws, cid = stack.connect()
    url = f"{stack.stage_url}/%40connections/{quote_id(cid)}"
    body = b"via %40connections"
    r = requests.post(url, data=body, headers=sigv4_headers("POST", url, stack.secret, body), timeout=TIMEOUT)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    assert ws.recv(timeout=TIMEOUT) == body.decode()
    r = requests.get(url, headers=sigv4_headers("GET", url, stack.secret), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["identity"]["sourceIp"] == "127.0.0.1"


def test_list_connections_extension(stack):
    _, a = stack.connect()
    _, b = stack.connect()
    for base in (stack.stage_url, stack.admin_url):
        url = f"{base}/@connections"
        r = requests.get(url, headers=sigv4_headers("GET", url, stack.secret), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        ids = {c["connectionId"] for c in r.json()["connections"]}
        assert {a, b} <= ids
    r = requests.get(f"{stack.stage_url}/@connections", timeout=TIMEOUT)
    assert r.status_code == 403


def test_post_from_inside_connect_is_gone(stack):
    stack.backend.post_from_connect = True
    ws, cid = stack.connect()
    assert stack.backend.connect_post_results.get(cid) == "GoneException"
    # The connection itself was accepted and works once $connect has returned.
    stack.client().post_to_connection(ConnectionId=cid, Data=b"now it works")
    assert ws.recv(timeout=TIMEOUT) == "now it works"


def test_full_send_queue_is_limit_exceeded(stack):
    # A client that never reads: its socket buffers and then the gateway's send queue fill up.
    ws, cid = stack.connect(max_queue=1)
    client = stack.client()
    chunk = b"z" * 131072
    codes = []
    deadline = time.monotonic() + 60
    for _ in range(2000):
        try:
            client.post_to_connection(ConnectionId=cid, Data=chunk)
        except ClientError as e:
            codes.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
            break
        if time.monotonic() > deadline:
            break
    assert codes, "2000 posts of 128 KiB to a client that never reads were all accepted"
    assert codes[0] == ("LimitExceededException", 429)


def test_two_way_route_replies(stack):
    ws, cid = stack.connect()
    ws.send(json.dumps({"action": "whoami"}))
    assert json.loads(ws.recv(timeout=TIMEOUT)) == {"connectionId": cid}
    event = stack.backend.wait_for("MESSAGE", cid)
    assert event["requestContext"]["routeKey"] == "whoami"
