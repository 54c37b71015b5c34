"""Seed 000's two-way routes: they answer with what the integration learns about the caller.

With ``authorization = "AWS_IAM"`` the gateway fills ``requestContext.identity`` as API Gateway
does for callers signing with Cognito Identity Pool credentials (``cognitoIdentityId``,
``cognitoIdentityPoolId``, ``cognitoAuthenticationType``, ``userArn``, ``caller``,
``accessKey``, ...). The role's policy has already decided that the caller may use the route:
the handlers check nothing themselves.

* ``app.secret`` (route ``secret``, admins only by policy) answers ``{"secret": ..., "identity": ...}``;
* ``app.whoami`` (route ``$default``) answers ``{"routeKey": ..., "identity": ...}``.
"""

import json

IDENTITY_FIELDS = (
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "cognitoAuthenticationType",
    "cognitoAuthenticationProvider",
    "accountId",
    "userArn",
    "caller",
    "user",
    "accessKey",
    "sourceIp",
)


def _identity(event):
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return {k: identity.get(k) for k in IDENTITY_FIELDS}


def secret(event, context):
    body = {"secret": "the admins' secret", "identity": _identity(event)}
    return {"statusCode": 200, "body": json.dumps(body)}


def whoami(event, context):
    body = {
        "routeKey": (event.get("requestContext") or {}).get("routeKey"),
        "identity": _identity(event),
    }
    return {"statusCode": 200, "body": json.dumps(body)}
