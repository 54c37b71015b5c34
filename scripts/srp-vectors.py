#!/usr/bin/env python3
"""Known-answer vectors for portcullis-idp's SRP module (crates/portcullis-idp/src/srp.rs).

Runs the client side of Cognito's USER_SRP_AUTH / PASSWORD_VERIFIER exchange with pycognito's
`aws_srp` module, on fixed inputs (pool id, user, password, salt, the client's a, the server's b,
secret block, timestamp), and prints the values the Rust tests compare against: the verifier,
A, B, the 16-byte key and the PASSWORD_CLAIM_SIGNATURE the client sends.

Run it in a throwaway virtualenv outside the repository:

    python3 -m venv /tmp/srpvec
    /tmp/srpvec/bin/pip install pycognito
    /tmp/srpvec/bin/python scripts/srp-vectors.py

Nothing is sent anywhere: AWSSRP is given a placeholder instead of a boto3 client.
"""

import base64
import hashlib
from importlib.metadata import version

from pycognito import aws_srp
from pycognito.aws_srp import (
    AWSSRP,
    G_HEX,
    N_HEX,
    hash_sha256,
    hex_hash,
    hex_to_long,
    long_to_hex,
    pad_hex,
)

VECTORS = [
    {
        # salt whose first nibble is >= 8: padHex puts a 00 byte before it
        "pool_id": "us-east-1_AbCdEf123",
        "user_id": "5e0b7c1a-7f3e-4d2a-9a51-0c8a4f2b6d11",
        "password": "Correct-Horse-7",
        "salt": "9f3ac2d1e4b5a6978877665544332211",
        "label": "one",
        "secret_block": b"secret block one: opaque to the client",
        "timestamp": "Tue Dec 2 05:04:09 UTC 2025",
    },
    {
        # salt whose first nibble is in 1..=7: hashed as is
        "pool_id": "eu-west-3_Zz9yX8wV7",
        "user_id": "alice",
        "password": "p\u00e4ssw\u00f6rd \u2603 with spaces",
        "salt": "1a2b3c4d5e6f708192a3b4c5d6e7f801",
        "label": "two",
        "secret_block": bytes(range(64)),
        "timestamp": "Sat Mar 14 23:59:59 UTC 2026",
    },
    {
        "pool_id": "ap-southeast-2_Q",
        "user_id": "b1c2d3e4-0000-4000-8000-000000000001",
        "password": "x",
        "salt": "ff00000000000000000000000000000f",
        "label": "three",
        "secret_block": b"\x00\xff" * 40,
        "timestamp": "Wed Jan 7 00:00:00 UTC 2026",
    },
]


def fixed(label, nbytes):
    """Deterministic bytes standing for a random draw."""
    out = b""
    counter = 0
    while len(out) < nbytes:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:nbytes]


def main():
    print(f"# pycognito {version('pycognito')}")
    big_n = hex_to_long(N_HEX)
    g = hex_to_long(G_HEX)
    k = hex_to_long(hex_hash("00" + N_HEX + "0" + G_HEX))
    for vec in VECTORS:
        pool_name = vec["pool_id"].split("_")[1]
        # the verifier, as Cognito's clients compute it for a device (same formula, user's secret)
        inner = hash_sha256(f"{pool_name}{vec['user_id']}:{vec['password']}".encode("utf-8"))
        x = hex_to_long(hex_hash(pad_hex(vec["salt"]) + inner))
        v = pow(g, x, big_n)
        # the server's ephemeral
        b = int.from_bytes(fixed("b-" + vec["label"], 32), "big")
        big_b = (k * v + pow(g, b, big_n)) % big_n

        srp = AWSSRP(
            username=vec["user_id"],
            password=vec["password"],
            pool_id=vec["pool_id"],
            client_id="client",
            client=object(),
        )
        srp.small_a_value = int.from_bytes(fixed("a-" + vec["label"], 128), "big") % big_n
        srp.large_a_value = srp.calculate_a()
        key = srp.get_password_authentication_key(
            vec["user_id"], vec["password"], big_b, vec["salt"]
        )
        srp.get_cognito_formatted_timestamp = lambda _now, ts=vec["timestamp"]: ts
        secret_block = base64.standard_b64encode(vec["secret_block"]).decode()
        response = srp.process_challenge(
            {
                "USER_ID_FOR_SRP": vec["user_id"],
                "SALT": vec["salt"],
                "SRP_B": long_to_hex(big_b),
                "SECRET_BLOCK": secret_block,
            },
            {"USERNAME": vec["user_id"]},
        )
        u = aws_srp.calculate_u(srp.large_a_value, big_b)
        print(f"# vector {vec['label']}")
        print(f"pool_id = {vec['pool_id']!r}")
        print(f"user_id = {vec['user_id']!r}")
        print(f"password = {vec['password']!r}")
        print(f"salt = {vec['salt']}")
        print(f"verifier = {long_to_hex(v)}")
        print(f"a = {long_to_hex(srp.small_a_value)}")
        print(f"b = {long_to_hex(b)}")
        print(f"A = {long_to_hex(srp.large_a_value)}")
        print(f"B = {long_to_hex(big_b)}")
        print(f"u = {long_to_hex(u)} (padded: {pad_hex(u)[:2] == '00'})")
        print(f"key = {key.hex()}")
        print(f"secret_block = {secret_block}")
        print(f"timestamp = {response['TIMESTAMP']!r}")
        print(f"signature = {response['PASSWORD_CLAIM_SIGNATURE']}")


if __name__ == "__main__":
    main()
