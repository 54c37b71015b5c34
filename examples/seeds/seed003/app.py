"""Seed 003's WebSocket handlers, the DynamoDB table replaced by SQLite.

On AWS the seed's Lambda authorizer checked the HS256 JWT from ``access_token`` (or
``Sec-WebSocket-Protocol``) and returned a context of ``userId``, ``firstName``, ``lastName``
and ``sub``; its ``$connect`` function stored them with the connection (``userId`` as the
GSI1PK, to find a user's connections for per-user push). On Portcullis the ``jwt`` authorizer
verifies the token itself and hands the same keys to the handlers in
``requestContext.authorizer`` (every claim, as strings), so these handlers read them exactly
as they read the Lambda authorizer's context.

* ``app.on_connect``    ($connect)    stores the connection with the user's identity;
* ``app.on_disconnect`` ($disconnect) deletes it;
* ``app.on_default``    ($default)    answers with who is talking, from the event's context
  and from the stored row.

``SEED003_STATE_DIR`` names the directory of ``connections.sqlite3``.
"""

import json
import os
import sqlite3

STATE_DIR = os.environ.get("SEED003_STATE_DIR", "/tmp/portcullis-seed003")
DB_PATH = os.path.join(STATE_DIR, "connections.sqlite3")
IDENTITY = ("userId", "firstName", "lastName", "sub")


def _db():
    os.makedirs(STATE_DIR, exist_ok=True)
    conn = sqlite3.connect(DB_PATH, timeout=10)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS connections ("
        " connection_id TEXT PRIMARY KEY, user_id TEXT, first_name TEXT, last_name TEXT,"
        " sub TEXT)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS by_user ON connections (user_id)")
    return conn


def _who(event):
    authorizer = event["requestContext"].get("authorizer") or {}
    return {key: authorizer.get(key) for key in IDENTITY}


def on_connect(event, context):
    connection_id = event["requestContext"]["connectionId"]
    who = _who(event)
    if not who["userId"]:
        return {"statusCode": 403, "body": "no userId in the authorizer context"}
    with _db() as db:
        db.execute(
            "INSERT OR REPLACE INTO connections VALUES (?, ?, ?, ?, ?)",
            (connection_id, who["userId"], who["firstName"], who["lastName"], who["sub"]),
        )
    return {"statusCode": 200, "body": "Connected."}


def on_disconnect(event, context):
    connection_id = event["requestContext"]["connectionId"]
    with _db() as db:
        db.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
    return {"statusCode": 200, "body": "Disconnected."}


def on_default(event, context):
    connection_id = event["requestContext"]["connectionId"]
    with _db() as db:
        row = db.execute(
            "SELECT user_id, first_name, last_name, sub FROM connections WHERE connection_id = ?",
            (connection_id,),
        ).fetchone()
    stored = dict(zip(IDENTITY, row)) if row else None
    body = {
        "connectionId": connection_id,
        "context": _who(event),
        "principalId": (event["requestContext"].get("authorizer") or {}).get("principalId"),
        "stored": stored,
        "echo": event.get("body"),
    }
    return {"statusCode": 200, "body": json.dumps(body)}
