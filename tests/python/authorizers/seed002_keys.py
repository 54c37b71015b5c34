"""Test fixture for seed 002: makes an RSA key, its JWKS and RS256 tokens of the kind the seed's
handler accepts (``aud`` = the user pool id, which is what the handler checks) or rejects.

Usage: ``python3 seed002_keys.py [POOL_ID]`` prints one JSON object:
``{"pool": ..., "jwks": {...}, "tokens": {"valid", "wrong_aud", "expired", "other_key"}}``.
Needs PyJWT with ``cryptography``.
"""

import json
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KID = "seed002-test-key"


def main():
    pool = sys.argv[1] if len(sys.argv) > 1 else "us-east-1_examplePool1"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    now = int(time.time())

    def token(signing_key, **claims):
        body = {"sub": "user-7781", "aud": pool, "iat": now, "exp": now + 3600}
        body.update(claims)
        return jwt.encode(body, signing_key, algorithm="RS256", headers={"kid": KID})

    print(
        json.dumps(
            {
                "pool": pool,
                "jwks": {"keys": [jwk]},
                "tokens": {
                    "valid": token(key),
                    "wrong_aud": token(key, aud="some-app-client-id"),
                    "expired": token(key, iat=now - 7200, exp=now - 3600),
                    "other_key": token(other),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
