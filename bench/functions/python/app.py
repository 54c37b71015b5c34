"""The no-op handler of the functions benchmarks: one answer for HTTP routes and WebSocket
messages alike. scripts/bench runs it as a function and, for the baseline, behind the `http`
integration through http_server.py."""


def handler(event, context):
    return {"statusCode": 200, "body": "pong"}
