"""The soak's backend and OIDC issuer, one asyncio HTTP/1.1 server in a process of its own.

- `POST /events`: the gateway's integration. Records the connection ids of CONNECT and
  DISCONNECT events; a MESSAGE with `"action": "slow"` is answered after 0.2-0.8 s, `"fail"`
  with HTTP 500, `"hang"` after longer than the integration's timeout; anything else echoes the
  body back (`{"statusCode": 200, "body": <body>}`).
- `GET /.well-known/openid-configuration`, `GET /jwks.json`: the issuer of the soak's tokens.
- `GET /stats`: what was recorded, as JSON (connect/disconnect ids, counts by kind).
"""

import asyncio
import json
import random
import sys

HANG_SECONDS = 4.0


class Recorder:
    def __init__(self) -> None:
        self.connects: set[str] = set()
        self.disconnects: set[str] = set()
        self.duplicate_disconnects = 0
        self.counts: dict[str, int] = {}

    def count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def stats(self) -> dict:
        return {
            "connects": sorted(self.connects),
            "disconnects": sorted(self.disconnects),
            "duplicate_disconnects": self.duplicate_disconnects,
            "counts": self.counts,
        }


def response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def handle_event(rec: Recorder, body: bytes) -> bytes:
    try:
        event = json.loads(body)
    except ValueError:
        rec.count("bad_event")
        return response(500, b"{}")
    ctx = event.get("requestContext") or {}
    kind = ctx.get("eventType", "?")
    cid = ctx.get("connectionId", "")
    rec.count(kind)
    if kind == "CONNECT":
        rec.connects.add(cid)
    elif kind == "DISCONNECT":
        if cid in rec.disconnects:
            rec.duplicate_disconnects += 1
        rec.disconnects.add(cid)
    elif kind == "MESSAGE":
        text = event.get("body") or ""
        try:
            action = json.loads(text).get("action")
        except (ValueError, AttributeError):
            action = None
        if action == "slow":
            await asyncio.sleep(random.uniform(0.2, 0.8))
        elif action == "fail":
            return response(500, b'{"error":"backend failure"}')
        elif action == "hang":
            await asyncio.sleep(HANG_SECONDS)
        elif action == "whoami":
            text = json.dumps({"connectionId": cid})
        return response(200, json.dumps({"statusCode": 200, "body": text}).encode())
    return response(200, b'{"statusCode":200}')


async def serve_connection(rec, issuer_docs, reader, writer) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                out = await handle_event(rec, body)
            elif path in issuer_docs:
                out = response(200, issuer_docs[path])
            elif path == "/stats":
                out = response(200, json.dumps(rec.stats()).encode())
            else:
                out = response(404, b"{}")
            writer.write(out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int, issuer: str, jwks: str) -> None:
    rec = Recorder()
    issuer_docs = {
        "/.well-known/openid-configuration": json.dumps(
            {"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}
        ).encode(),
        "/jwks.json": jwks.encode(),
    }
    server = await asyncio.start_server(
        lambda r, w: serve_connection(rec, issuer_docs, r, w), "127.0.0.1", port, backlog=4096
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.stdin.read()))
