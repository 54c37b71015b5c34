"""A small integration for the authorizer examples: answers what the authorizer let through.

On an HTTP route (payload format 2.0) it returns a JSON body with the route and
``requestContext.authorizer``; on a WebSocket route it answers the same as the route's response.
"""

import json


def lambda_handler(event, context):
    request_context = event.get("requestContext") or {}
    body = {
        "routeKey": event.get("routeKey") or request_context.get("routeKey"),
        "authorizer": request_context.get("authorizer"),
        "requestId": context.aws_request_id,
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
