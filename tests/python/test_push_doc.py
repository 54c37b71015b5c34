"""docs/push.md's Python, run exactly as written against a live gateway, so the page cannot
drift from the product: the module block (the signing helpers) and the usage block that follows
it, with `event` bound to a real `$connect` event."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ACCESS_KEY_ID, REGION, REPO, STAGE, TIMEOUT
from push_world import push_stack  # noqa: F401 - the fixture
from websockets.exceptions import ConnectionClosed

DOC = REPO / "docs" / "push.md"
MARKER = "<!-- tests/python/test_push_doc.py runs this block and the next one"


def doc_blocks() -> tuple[str, str]:
    """The two ```python blocks after the marker: the module, then its usage."""
    text = DOC.read_text()
    start = text.index(MARKER)
    blocks = re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert len(blocks) >= 2, "docs/push.md lost its Python blocks"
    return blocks[0], blocks[1]


@pytest.fixture
def snippet(push_stack, monkeypatch):
    """The module block, executed with the environment it documents."""
    monkeypatch.setenv("PORTCULLIS_MANAGEMENT_URL", f"{push_stack.admin_url}/{STAGE}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", push_stack.secret)
    monkeypatch.setenv("AWS_REGION", REGION)
    module, _ = doc_blocks()
    namespace: dict = {"__name__": "portcullis_push"}
    exec(compile(module, f"{DOC}:module", "exec"), namespace)
    return namespace


def test_the_usage_example_does_what_the_page_says(push_stack, snippet, capsys):
    alice, alice_id = push_stack.connect_as("alice")
    carol, carol_id = push_stack.connect_as("carol")
    bob_sockets = [push_stack.connect_as("bob") for _ in range(2)]
    snippet["subscribe"](carol_id, "room:lobby")
    _, usage = doc_blocks()
    snippet["event"] = push_stack.backend.wait_for("CONNECT", alice_id)

    exec(compile(usage, f"{DOC}:usage", "exec"), snippet)

    assert "2 members of room:lobby got it" in capsys.readouterr().out
    room_message = {"from": "alice", "text": "hi all"}
    assert json.loads(alice.recv(timeout=TIMEOUT)) == room_message
    assert json.loads(carol.recv(timeout=TIMEOUT)) == room_message
    for ws, cid in bob_sockets:
        assert json.loads(ws.recv(timeout=TIMEOUT)) == {"from": "alice", "text": "psst"}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        push_stack.backend.wait_for("DISCONNECT", cid)
    assert [c["connectionId"] for c in snippet["subscribers"]("room:lobby")] == [carol_id]


def test_every_helper_of_the_module_works(push_stack, snippet):
    ws, cid = push_stack.connect_as("user 42|x")
    snippet["post_to_connection"](cid, "one")
    assert ws.recv(timeout=TIMEOUT) == "one"
    assert snippet["push_to_user"]("user 42|x", b"two") == 1
    assert ws.recv(timeout=TIMEOUT) == "two"
    [listed] = snippet["user_connections"]("user 42|x")
    assert (listed["connectionId"], listed["transport"]) == (cid, "websocket")
    snippet["subscribe"](cid, "news")
    assert snippet["publish"]("news", "three") == 1
    assert ws.recv(timeout=TIMEOUT) == "three"
    snippet["unsubscribe"](cid, "news")
    assert snippet["subscribers"]("news") == []
    assert snippet["push_to_user"]("nobody", "x") == 0
    with pytest.raises(snippet["PushError"]) as refused:
        snippet["publish"]("news", b"x" * 131073)
    assert (refused.value.status, refused.value.code) == (413, "PayloadTooLargeException")
    assert refused.value.message
    snippet["disconnect_user"]("user 42|x")
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=TIMEOUT)
