"""What users may write, with a real boto3 client against the real binary.

SignUp and UpdateUserAttributes accept only the pool's schema (standard attributes and the
declared custom ones, immutable ones only at sign-up) and never a verification flag or a token
claim name; the admin CLI may write `email_verified` but no claim either. Usernames are
normalised (NFKC), and invisible, bidirectional and mixed-script look-alikes are refused.
"""

from __future__ import annotations

import subprocess

import boto3
import botocore.config
import jwt
import pytest

from conftest import CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway

POOL = "main"

CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[pools.main]
self_sign_up = true
password_policy = {{ min_length = 8, require_digits = true }}
custom_attributes = {{ tier = {{ mutable = false }}, team = {{}} }}

[pools.main.clients.web]
public = true
"""


@pytest.fixture(scope="module")
def stack(portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("user_input")
    backend = Backend().start()
    gateway = Gateway(portcullis_bin, workdir, f"http://127.0.0.1:{backend.port}/events", template=CONFIG)
    try:
        gateway.start()
        yield gateway
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            try:
                gateway.terminate()
            except AssertionError as e:
                print(e)
        backend.stop()


@pytest.fixture(scope="module")
def idp(stack):
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{stack.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def cli(stack: Gateway, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(stack.binary), "users", args[0], "--config", str(stack.config_path), "--pool", POOL, *args[1:]],
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def attrs(**pairs: str) -> list[dict]:
    return [{"Name": k.replace("__", ":"), "Value": v} for k, v in pairs.items()]


def sign_up(idp, username: str, attributes: list[dict]):
    return idp.sign_up(ClientId="web", Username=username, Password="password1", UserAttributes=attributes)


def id_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def login(idp, username: str) -> dict:
    return idp.initiate_auth(
        ClientId="web",
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": "password1"},
    )["AuthenticationResult"]


def test_attributes_users_may_not_write_are_refused(stack, idp):
    for attribute, error in [
        ({"Name": "email_verified", "Value": "true"}, "NotAuthorizedException"),
        ({"Name": "phone_number_verified", "Value": "true"}, "NotAuthorizedException"),
        ({"Name": "custom:undeclared", "Value": "x"}, "InvalidParameterException"),
        ({"Name": "iss", "Value": "https://attacker.example"}, "InvalidParameterException"),
        ({"Name": "token_use", "Value": "access"}, "InvalidParameterException"),
        ({"Name": "amr", "Value": "mfa"}, "InvalidParameterException"),
    ]:
        with pytest.raises(idp.exceptions.ClientError) as e:
            sign_up(idp, "mallory", [{"Name": "email", "Value": "m@example.com"}, attribute])
        assert e.value.response["Error"]["Code"] == error, attribute

    sign_up(idp, "mallory", attrs(email="m@example.com", custom__tier="gold", custom__team="red"))
    # confirmed by an administrator: no code reached the address, so it is not verified
    cli(stack, "confirm", "mallory")
    tokens = login(idp, "mallory")
    claims = id_claims(tokens["IdToken"])
    assert claims["email_verified"] is False
    assert claims["custom:tier"] == "gold"
    assert claims["iss"] == f"http://127.0.0.1:{stack.ws_port}/pools/{POOL}"
    assert "amr" not in claims

    access = tokens["AccessToken"]
    for attribute, error in [
        ({"Name": "custom:tier", "Value": "platinum"}, "NotAuthorizedException"),
        ({"Name": "email_verified", "Value": "true"}, "NotAuthorizedException"),
        ({"Name": "aud", "Value": "web"}, "InvalidParameterException"),
    ]:
        with pytest.raises(idp.exceptions.ClientError) as e:
            idp.update_user_attributes(AccessToken=access, UserAttributes=[attribute])
        assert e.value.response["Error"]["Code"] == error, attribute
    idp.update_user_attributes(AccessToken=access, UserAttributes=attrs(custom__team="blue"))
    shown = {a["Name"]: a["Value"] for a in idp.get_user(AccessToken=access)["UserAttributes"]}
    assert shown["custom:team"] == "blue"
    assert shown["custom:tier"] == "gold"
    assert "email_verified" not in shown or shown["email_verified"] == "false"


def test_the_admin_cli_may_verify_an_email_but_not_write_claims(stack, idp):
    cli(stack, "create", "vera", "--attribute", "email=v@example.com", "--attribute", "email_verified=true")
    assert "attribute.email_verified: true" in cli(stack, "show", "vera").stdout
    refused = cli(stack, "create", "walt", "--attribute", "iss=https://attacker.example", check=False)
    assert refused.returncode == 1, refused
    assert "Attributes did not conform to the schema" in refused.stderr
    assert "walt" not in cli(stack, "list").stdout


def test_usernames_are_normalised_and_look_alikes_refused(stack, idp):
    for raw in ["bo\u200bb", "b\u202eob", "p\u0430ypal"]:
        with pytest.raises(idp.exceptions.InvalidParameterException):
            sign_up(idp, raw, [])
    sign_up(idp, "\uff42\uff4f\uff42", [])  # full-width "bob"
    cli(stack, "confirm", "bob")
    for spelling in ["bob", "\uff42\uff4f\uff42"]:
        assert id_claims(login(idp, spelling)["IdToken"])["cognito:username"] == "bob"
    listed = cli(stack, "list").stdout
    assert "bo\u200bb" not in listed and "b\u202eob" not in listed
