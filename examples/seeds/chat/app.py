"""The classic WebSocket chat (AWS's simple-websockets-chat-app: onconnect, ondisconnect,
sendmessage) in Python, with the connection ids kept in SQLite instead of DynamoDB.

Three handlers, one per function, as in the sample:

* ``app.on_connect``    ($connect)    stores the connection id;
* ``app.on_disconnect`` ($disconnect) deletes it;
* ``app.send_message``  (sendmessage) posts ``data`` of ``{"action": "sendmessage", "data": ...}``
  to every stored connection through the API Gateway Management API, deleting the ids that
  answer ``GoneException`` (a connection closed without its $disconnect reaching us).

``CHAT_STATE_DIR`` names the directory of the SQLite file (``connections.sqlite3``).
The management endpoint is built from the event, as the AWS sample does:
``https://{requestContext.domainName}/{requestContext.stage}``.
"""

import json
import os
import sqlite3

import boto3
from botocore.exceptions import ClientError

STATE_DIR = os.environ.get("CHAT_STATE_DIR", "/tmp/portcullis-chat")
DB_PATH = os.path.join(STATE_DIR, "connections.sqlite3")


def _db():
    os.makedirs(STATE_DIR, exist_ok=True)
    conn = sqlite3.connect(DB_PATH, timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS connections (connection_id TEXT PRIMARY KEY)")
    return conn


def on_connect(event, context):
    connection_id = event["requestContext"]["connectionId"]
    try:
        with _db() as db:
            db.execute(
                "INSERT OR REPLACE INTO connections (connection_id) VALUES (?)", (connection_id,)
            )
    except sqlite3.Error as e:
        print(f"Failed to connect: {e}")
        return {"statusCode": 500, "body": "Failed to connect: " + str(e)}
    return {"statusCode": 200, "body": "Connected."}


def on_disconnect(event, context):
    connection_id = event["requestContext"]["connectionId"]
    try:
        with _db() as db:
            db.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
    except sqlite3.Error as e:
        print(f"Failed to disconnect: {e}")
        return {"statusCode": 500, "body": "Failed to disconnect: " + str(e)}
    return {"statusCode": 200, "body": "Disconnected."}


def send_message(event, context):
    with _db() as db:
        connection_ids = [row[0] for row in db.execute("SELECT connection_id FROM connections")]

    api = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"https://{event['requestContext']['domainName']}/{event['requestContext']['stage']}",
    )
    post_data = json.loads(event["body"])["data"]

    for connection_id in connection_ids:
        try:
            api.post_to_connection(ConnectionId=connection_id, Data=post_data)
        except ClientError as e:
            if e.response["Error"]["Code"] == "GoneException":
                print(f"Found stale connection, deleting {connection_id}")
                with _db() as db:
                    db.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
            else:
                print(f"Failed to post to {connection_id}: {e}")
                return {"statusCode": 500, "body": str(e)}

    return {"statusCode": 200, "body": "Data sent."}
