"""Pushes to users and topics (CONTRACT.md §1) through the real binary: real WebSocket clients
(`websockets`), real botocore SigV4 signatures, a real HTTP backend receiving `$disconnect`.
See push_world.py for the gateway: `chat` under stage `prod`, `ops` under stage `ops`,
principals named by `?user=`.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import socket

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import STAGE, TIMEOUT
from push_world import (
    ADMIN_KEY_ID,
    ADMIN_SECRET,
    SEND_QUEUE,
    SUBSCRIBERS_PER_TOPIC,
    TOPICS_PER_CONNECTION,
    PushStack,
    push_stack,  # noqa: F401 - the fixture
    quote,
)

MAX_DATA = 131072


def error_code(response) -> str:
    return response.headers.get("x-amzn-ErrorType", "").split(":")[0]


def assert_nothing_before_now(stack: PushStack, ws, connection_id: str) -> None:
    """Nothing reached `ws` so far: a marker posted now is the next frame it reads (pushes to
    one connection arrive in order)."""
    marker = "marker-" + os.urandom(4).hex()
    r = stack.call("POST", f"/{STAGE}/@connections/{quote(connection_id)}", marker.encode())
    assert r.status_code == 200, r.text
    assert ws.recv(timeout=TIMEOUT) == marker


def subscribe(stack: PushStack, connection_id: str, topic: str, stage: str = STAGE):
    return stack.call("PUT", f"/{stage}/@connections/{quote(connection_id)}/topics/{topic}")


def read_until_closed(ws) -> None:
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=TIMEOUT)


# ---- @users -------------------------------------------------------------------------------------


def test_a_user_push_reaches_every_connection_of_that_principal_and_no_other(push_stack):
    a1, _ = push_stack.connect_as("alice")
    a2, _ = push_stack.connect_as("alice")
    bob, bob_id = push_stack.connect_as("bob")
    r = push_stack.call("POST", f"/{STAGE}/@users/alice", "héllo ✓".encode())
    assert r.status_code == 200, r.text
    assert r.json() == {"connections": 2}
    assert a1.recv(timeout=TIMEOUT) == "héllo ✓"
    assert a2.recv(timeout=TIMEOUT) == "héllo ✓"
    assert_nothing_before_now(push_stack, bob, bob_id)


def test_a_principal_with_reserved_characters_is_reached_through_its_encoded_name(push_stack):
    user = "auth0|42 ü/x"
    ws, _ = push_stack.connect_as(user)
    r = push_stack.call("POST", f"/{STAGE}/@users/{quote(user)}", b"for you")
    assert r.json() == {"connections": 1}
    assert ws.recv(timeout=TIMEOUT) == "for you"


def test_an_unknown_user_is_zero_connections_not_an_error(push_stack):
    r = push_stack.call("POST", f"/{STAGE}/@users/nobody", b"anyone?")
    assert r.status_code == 200
    assert r.json() == {"connections": 0}
    r = push_stack.call("GET", f"/{STAGE}/@users/nobody")
    assert (r.status_code, r.json()) == (200, {"connections": []})


def test_listing_a_user_gives_each_connection_like_get_connection(push_stack):
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    _, id1 = push_stack.connect_as("alice")
    _, id2 = push_stack.connect_as("alice")
    push_stack.connect_as("bob")
    r = push_stack.call("GET", f"/{STAGE}/@users/alice")
    assert r.status_code == 200, r.text
    listed = r.json()["connections"]
    assert sorted(c["connectionId"] for c in listed) == sorted([id1, id2])
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    for c in listed:
        assert set(c) == {"connectionId", "connectedAt", "transport"}
        assert c["transport"] == "websocket"
        connected = datetime.datetime.fromisoformat(c["connectedAt"].replace("Z", "+00:00"))
        assert before <= connected <= after
        one = push_stack.call("GET", f"/{STAGE}/@connections/{quote(c['connectionId'])}").json()
        assert c["connectedAt"] == one["connectedAt"]


def test_deleting_a_user_closes_all_of_its_connections_and_each_gets_disconnect(push_stack):
    a1, id1 = push_stack.connect_as("alice")
    a2, id2 = push_stack.connect_as("alice")
    bob, bob_id = push_stack.connect_as("bob")
    r = push_stack.call("DELETE", f"/{STAGE}/@users/alice")
    assert r.status_code == 204, r.text
    assert r.content == b""
    read_until_closed(a1)
    read_until_closed(a2)
    for cid in (id1, id2):
        event = push_stack.backend.wait_for("DISCONNECT", cid)
        assert event["requestContext"]["routeKey"] == "$disconnect"
    assert push_stack.call("GET", f"/{STAGE}/@users/alice").json() == {"connections": []}
    assert push_stack.call("POST", f"/{STAGE}/@users/alice", b"x").json() == {"connections": 0}
    # bob was not touched
    assert not push_stack.backend.find("DISCONNECT", bob_id)
    assert_nothing_before_now(push_stack, bob, bob_id)


def test_non_utf8_data_arrives_as_a_binary_frame(push_stack):
    ws, _ = push_stack.connect_as("alice")
    data = b"\xff\x00\xfe binary"
    assert push_stack.call("POST", f"/{STAGE}/@users/alice", data).json() == {"connections": 1}
    assert ws.recv(timeout=TIMEOUT) == data


# ---- topics -------------------------------------------------------------------------------------


def test_subscribe_publish_list_and_unsubscribe(push_stack):
    s1, id1 = push_stack.connect_as("alice")
    s2, id2 = push_stack.connect_as("bob")
    outsider, outsider_id = push_stack.connect_as("carol")
    for cid in (id1, id2):
        r = subscribe(push_stack, cid, "room:lobby")
        assert r.status_code == 204, r.text
        assert r.content == b""
    r = push_stack.call("POST", f"/{STAGE}/@topics/room:lobby", b"score 1-0")
    assert (r.status_code, r.json()) == (200, {"connections": 2})
    assert s1.recv(timeout=TIMEOUT) == "score 1-0"
    assert s2.recv(timeout=TIMEOUT) == "score 1-0"
    assert_nothing_before_now(push_stack, outsider, outsider_id)

    listed = push_stack.call("GET", f"/{STAGE}/@topics/room:lobby").json()["connections"]
    assert sorted(c["connectionId"] for c in listed) == sorted([id1, id2])
    for c in listed:
        assert set(c) == {"connectionId", "connectedAt", "transport"}
        assert c["transport"] == "websocket"
        datetime.datetime.fromisoformat(c["connectedAt"].replace("Z", "+00:00"))

    r = push_stack.call("DELETE", f"/{STAGE}/@connections/{quote(id1)}/topics/room:lobby")
    assert r.status_code == 204, r.text
    r = push_stack.call("POST", f"/{STAGE}/@topics/room:lobby", b"score 2-0")
    assert r.json() == {"connections": 1}
    assert s2.recv(timeout=TIMEOUT) == "score 2-0"
    assert_nothing_before_now(push_stack, s1, id1)
    assert push_stack.call("POST", f"/{STAGE}/@topics/empty-room", b"x").json() == {"connections": 0}
    assert push_stack.call("GET", f"/{STAGE}/@topics/empty-room").json() == {"connections": []}


def test_pushes_reach_a_receiver_in_the_order_they_were_made(push_stack):
    ws, cid = push_stack.connect_as("alice")
    assert subscribe(push_stack, cid, "feed").status_code == 204
    sent = []
    for i in range(30):
        message = f"m{i}"
        sent.append(message)
        path = f"/{STAGE}/@topics/feed" if i % 2 else f"/{STAGE}/@users/alice"
        assert push_stack.call("POST", path, message.encode()).json() == {"connections": 1}
    assert [ws.recv(timeout=TIMEOUT) for _ in sent] == sent


def test_subscribing_an_unknown_or_closed_connection_is_gone(push_stack):
    ws, cid = push_stack.connect_as("alice")
    ws.close()
    push_stack.backend.wait_for("DISCONNECT", cid)
    for connection_id in ("Tm9TdWNoQ29ubj0=", cid):
        r = subscribe(push_stack, connection_id, "news")
        assert (r.status_code, error_code(r)) == (410, "GoneException"), r.text


@pytest.mark.parametrize(
    "name",
    ["", "x" * 129, quote("a/b"), quote("a b"), quote("café"), quote("a+b")],
    ids=["empty", "129-bytes", "slash", "space", "non-ascii", "plus"],
)
def test_bad_topic_names_are_bad_requests(push_stack, name):
    _, cid = push_stack.connect_as("alice")
    for method, path in (
        ("PUT", f"/{STAGE}/@connections/{quote(cid)}/topics/{name}"),
        ("POST", f"/{STAGE}/@topics/{name}"),
        ("GET", f"/{STAGE}/@topics/{name}"),
    ):
        r = push_stack.call(method, path, b"x" if method == "POST" else b"")
        assert (r.status_code, error_code(r)) == (400, "BadRequestException"), f"{method} {path}: {r.text}"
        assert isinstance(r.json()["message"], str)


def test_the_longest_topic_name_is_accepted(push_stack):
    ws, cid = push_stack.connect_as("alice")
    name = "A.b_c:d-" + "x" * 120
    assert subscribe(push_stack, cid, name).status_code == 204
    assert push_stack.call("POST", f"/{STAGE}/@topics/{name}", b"long").json() == {"connections": 1}
    assert ws.recv(timeout=TIMEOUT) == "long"


def test_a_closed_connection_leaves_its_topics(push_stack):
    ws, cid = push_stack.connect_as("alice")
    assert subscribe(push_stack, cid, "news").status_code == 204
    assert subscribe(push_stack, cid, "room:1").status_code == 204
    ws.close()
    push_stack.backend.wait_for("DISCONNECT", cid)
    for topic in ("news", "room:1"):
        assert push_stack.call("GET", f"/{STAGE}/@topics/{topic}").json() == {"connections": []}
        assert push_stack.call("POST", f"/{STAGE}/@topics/{topic}", b"x").json() == {"connections": 0}


def test_topics_per_connection_are_capped(push_stack):
    ws, cid = push_stack.connect_as("alice")
    topics = [f"t{i}" for i in range(TOPICS_PER_CONNECTION)]
    for topic in topics:
        assert subscribe(push_stack, cid, topic).status_code == 204
    r = subscribe(push_stack, cid, "one-too-many")
    assert (r.status_code, error_code(r)) == (429, "LimitExceededException"), r.text
    assert r.json()["message"]
    assert push_stack.call("POST", f"/{STAGE}/@topics/one-too-many", b"x").json() == {"connections": 0}
    # the subscriptions it has still work, and leaving one makes room
    assert push_stack.call("POST", f"/{STAGE}/@topics/t0", b"still here").json() == {"connections": 1}
    assert ws.recv(timeout=TIMEOUT) == "still here"
    assert push_stack.call("DELETE", f"/{STAGE}/@connections/{quote(cid)}/topics/t0").status_code == 204
    assert subscribe(push_stack, cid, "one-too-many").status_code == 204


def test_subscribers_per_topic_are_capped(push_stack):
    ids = [push_stack.connect_as(f"user{i}")[1] for i in range(SUBSCRIBERS_PER_TOPIC + 1)]
    for cid in ids[:-1]:
        assert subscribe(push_stack, cid, "crowded").status_code == 204
    r = subscribe(push_stack, ids[-1], "crowded")
    assert (r.status_code, error_code(r)) == (429, "LimitExceededException"), r.text
    r = push_stack.call("POST", f"/{STAGE}/@topics/crowded", b"x")
    assert r.json() == {"connections": SUBSCRIBERS_PER_TOPIC}


# ---- who may call, and how much -----------------------------------------------------------------


def every_row(cid: str) -> list[tuple[str, str]]:
    return [
        ("POST", f"/{STAGE}/@users/alice"),
        ("GET", f"/{STAGE}/@users/alice"),
        ("DELETE", f"/{STAGE}/@users/alice"),
        ("PUT", f"/{STAGE}/@connections/{quote(cid)}/topics/news"),
        ("DELETE", f"/{STAGE}/@connections/{quote(cid)}/topics/news"),
        ("POST", f"/{STAGE}/@topics/news"),
        ("GET", f"/{STAGE}/@topics/news"),
    ]


def test_unsigned_and_wrongly_signed_calls_are_refused_and_change_nothing(push_stack):
    ws, cid = push_stack.connect_as("alice")
    for method, path in every_row(cid):
        data = b"intruder" if method == "POST" else b""
        unsigned = push_stack.call(method, path, data, signed=False)
        assert (unsigned.status_code, error_code(unsigned)) == (403, "ForbiddenException"), f"{method} {path}"
        wrong = push_stack.call(method, path, data, secret="not-the-secret")
        assert (wrong.status_code, error_code(wrong)) == (403, "ForbiddenException"), f"{method} {path}"
        unknown = push_stack.call(method, path, data, key_id="AKIDUNKNOWN")
        assert (unknown.status_code, error_code(unknown)) == (403, "ForbiddenException"), f"{method} {path}"
        admin = push_stack.call(method, path, data, key_id=ADMIN_KEY_ID, secret=ADMIN_SECRET)
        assert (admin.status_code, error_code(admin)) == (403, "AccessDeniedException"), f"{method} {path}"
    # alice is still connected, subscribed to nothing, and got none of it
    assert push_stack.call("GET", f"/{STAGE}/@topics/news").json() == {"connections": []}
    assert_nothing_before_now(push_stack, ws, cid)


@pytest.mark.parametrize("target", ["@users/alice", "@topics/news"])
def test_data_over_128_kib_is_payload_too_large(push_stack, target):
    ws, cid = push_stack.connect_as("alice")
    assert subscribe(push_stack, cid, "news").status_code == 204
    r = push_stack.call("POST", f"/{STAGE}/{target}", b"x" * (MAX_DATA + 1))
    assert (r.status_code, error_code(r)) == (413, "PayloadTooLargeException"), r.text
    assert_nothing_before_now(push_stack, ws, cid)
    exact = b"y" * MAX_DATA
    assert push_stack.call("POST", f"/{STAGE}/{target}", exact).json() == {"connections": 1}
    assert ws.recv(timeout=TIMEOUT) == exact.decode()


def test_empty_data_is_a_bad_request(push_stack):
    push_stack.connect_as("alice")
    for path in (f"/{STAGE}/@users/alice", f"/{STAGE}/@topics/news"):
        r = push_stack.call("POST", path, b"")
        assert (r.status_code, error_code(r)) == (400, "BadRequestException"), r.text


# ---- the stage selects the API ------------------------------------------------------------------


def test_the_stage_in_the_path_selects_the_api(push_stack):
    chat, chat_id = push_stack.connect_as("alice", api="chat")
    ops, ops_id = push_stack.connect_as("alice", api="ops")
    assert push_stack.call("POST", f"/{STAGE}/@users/alice", b"to prod").json() == {"connections": 1}
    assert chat.recv(timeout=TIMEOUT) == "to prod"
    assert push_stack.call("POST", "/ops/@users/alice", b"to ops").json() == {"connections": 1}
    assert ops.recv(timeout=TIMEOUT) == "to ops"
    listed = push_stack.call("GET", "/ops/@users/alice").json()["connections"]
    assert [c["connectionId"] for c in listed] == [ops_id]

    # a connection is subscribed through its own API's stage only
    r = subscribe(push_stack, ops_id, "alerts", stage=STAGE)
    assert (r.status_code, error_code(r)) == (410, "GoneException"), r.text
    assert subscribe(push_stack, ops_id, "alerts", stage="ops").status_code == 204
    assert subscribe(push_stack, chat_id, "alerts").status_code == 204
    assert push_stack.call("POST", "/ops/@topics/alerts", b"ops alert").json() == {"connections": 1}
    assert ops.recv(timeout=TIMEOUT) == "ops alert"
    assert_nothing_before_now(push_stack, chat, chat_id)
    assert push_stack.call("DELETE", "/ops/@users/alice").status_code == 204
    read_until_closed(ops)
    assert_nothing_before_now(push_stack, chat, chat_id)


# ---- a receiver that does not read --------------------------------------------------------------


def silent_connection(stack: PushStack, user: str) -> tuple[socket.socket, str]:
    """A WebSocket that completes its handshake and then never reads, with a small receive
    buffer so that the gateway's side fills quickly."""
    tag = os.urandom(8).hex()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", stack.gateway.ws_port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /chat?user={user}&tag={tag} HTTP/1.1\r\nHost: 127.0.0.1:{stack.gateway.ws_port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # one byte at a time: nothing past the head is read
        byte = s.recv(1)
        assert byte, f"closed during the handshake: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    event = stack.backend.wait_for(
        "CONNECT", pred=lambda e: (e.get("queryStringParameters") or {}).get("tag") == tag
    )
    return s, event["requestContext"]["connectionId"]


def skipped_total(stack: PushStack) -> int:
    text = stack.call("GET", "/metrics", signed=False).text
    total = 0
    for line in text.splitlines():
        if line.startswith("portcullis_push_skipped_total{") and 'api="chat"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_a_receiver_that_does_not_read_is_skipped_and_counted_and_the_others_get_everything(push_stack):
    stuck, stuck_id = silent_connection(push_stack, "stuck")
    try:
        readers = [push_stack.connect_as(f"reader{i}") for i in range(2)]
        for cid in [stuck_id] + [cid for _, cid in readers]:
            assert subscribe(push_stack, cid, "feed").status_code == 204
        assert skipped_total(push_stack) == 0
        payload = "x" * (64 * 1024)
        pushes, skipped = 200, 0
        for i in range(pushes):
            message = f"{i:08}{payload}"
            r = push_stack.call("POST", f"/{STAGE}/@topics/feed", message.encode())
            assert r.status_code == 200, r.text
            delivered = r.json()["connections"]
            assert delivered >= len(readers), "a reader that keeps up is never skipped"
            skipped += 3 - delivered
            # the readers keep up: each reads this push, in order, before the next is made
            for ws, _ in readers:
                assert ws.recv(timeout=TIMEOUT)[:8] == f"{i:08}"
        assert skipped > 0, f"the silent receiver (send_queue = {SEND_QUEUE}) was never skipped"
        assert skipped_total(push_stack) == skipped
    finally:
        stuck.close()
