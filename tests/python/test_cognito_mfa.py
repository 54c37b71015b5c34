"""TOTP software-token MFA with real clients against the real binary: boto3's `cognito-idp`
(AssociateSoftwareToken, VerifySoftwareToken, SetUserMFAPreference, GetUser, the
SOFTWARE_TOKEN_MFA and MFA_SETUP challenges of RespondToAuthChallenge), codes computed by pyotp
as an authenticator app would, and pycognito's SRP sign-in meeting SOFTWARE_TOKEN_MFA.

Pool `main` has `mfa = "optional"`, pool `strict` has `mfa = "on"`. The server's clock is the
real one, so codes of the current step verify a token and codes of the next step (accepted, one
step ahead) sign in without waiting for the clock.
"""

from __future__ import annotations

import base64
import subprocess
import time

import boto3
import botocore.config
import jwt
import pyotp
import pytest
from pycognito import Cognito
from pycognito.exceptions import SoftwareTokenMFAChallengeException

from conftest import CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway, cognito_client, module_gateway

CONFIG = CONFIG_TEMPLATE.replace(
    '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
) + """
[pools.main]
mfa = "optional"
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.clients.web]
public = true

[pools.strict]
mfa = "on"

[pools.strict.clients.strict-web]
public = true
"""


@pytest.fixture(scope="module")
def stack(request, portcullis_bin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cognito_mfa")
    backend = Backend().start()
    gateway = Gateway(portcullis_bin, workdir, f"http://127.0.0.1:{backend.port}/events", template=CONFIG)
    with module_gateway(request, gateway, "test_cognito_mfa", backend):
        yield gateway


def endpoint(stack: Gateway) -> str:
    return f"http://127.0.0.1:{stack.ws_port}"


@pytest.fixture(scope="module")
def idp(stack):
    return cognito_client(stack)


def create_user(stack: Gateway, username: str, password: str, pool: str = "main") -> None:
    subprocess.run(
        [str(stack.binary), "users", "create", username, "--config", str(stack.config_path),
         "--pool", pool, "--password", password],
        cwd=stack.workdir, capture_output=True, text=True, timeout=60, check=True,
    )


def password_sign_in(idp, username: str, password: str, client_id: str = "web") -> dict:
    return idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": username, "PASSWORD": password})


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step (the server accepts one step ahead)."""
    return totp.at(time.time() + totp.interval)


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def enable_token(idp, access_token: str) -> pyotp.TOTP:
    """Associates, verifies (a code of the current step) and enables a token: an authenticator."""
    secret = idp.associate_software_token(AccessToken=access_token)["SecretCode"]
    assert len(secret) == 32  # 160 bits of base32
    totp = pyotp.TOTP(secret)
    with pytest.raises(idp.exceptions.EnableSoftwareTokenMFAException):
        idp.verify_software_token(AccessToken=access_token, UserCode=other_code(totp.now()))
    answer = idp.verify_software_token(AccessToken=access_token, UserCode=totp.now(),
                                       FriendlyDeviceName="pytest phone")
    assert answer["Status"] == "SUCCESS"
    idp.set_user_mfa_preference(AccessToken=access_token,
                                SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    return totp


def test_associate_verify_enable_and_sign_in_with_a_code(stack, idp):
    create_user(stack, "alice", "Password1-alice")
    tokens = password_sign_in(idp, "alice", "Password1-alice")["AuthenticationResult"]
    user = idp.get_user(AccessToken=tokens["AccessToken"])
    assert "UserMFASettingList" not in user
    totp = enable_token(idp, tokens["AccessToken"])
    user = idp.get_user(AccessToken=tokens["AccessToken"])
    assert user["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    assert user["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"

    challenge = password_sign_in(idp, "alice", "Password1-alice")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert "AuthenticationResult" not in challenge
    code = next_code(totp)
    # a wrong code first: refused, the session stays usable
    with pytest.raises(idp.exceptions.CodeMismatchException):
        idp.respond_to_auth_challenge(ClientId="web", ChallengeName="SOFTWARE_TOKEN_MFA",
                                      Session=challenge["Session"],
                                      ChallengeResponses={"USERNAME": "alice",
                                                          "SOFTWARE_TOKEN_MFA_CODE": other_code(code)})
    result = idp.respond_to_auth_challenge(ClientId="web", ChallengeName="SOFTWARE_TOKEN_MFA",
                                           Session=challenge["Session"],
                                           ChallengeResponses={"USERNAME": "alice",
                                                               "SOFTWARE_TOKEN_MFA_CODE": code})
    auth = result["AuthenticationResult"]
    claims = jwt.decode(auth["AccessToken"], options={"verify_signature": False})
    assert claims["username"] == "alice"
    assert auth["RefreshToken"]

    # the same code in a second sign-in is refused: each code is used once
    again = password_sign_in(idp, "alice", "Password1-alice")
    with pytest.raises(idp.exceptions.CodeMismatchException):
        idp.respond_to_auth_challenge(ClientId="web", ChallengeName="SOFTWARE_TOKEN_MFA",
                                      Session=again["Session"],
                                      ChallengeResponses={"USERNAME": "alice",
                                                          "SOFTWARE_TOKEN_MFA_CODE": code})
    # a spent session is over
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.respond_to_auth_challenge(ClientId="web", ChallengeName="SOFTWARE_TOKEN_MFA",
                                      Session=challenge["Session"],
                                      ChallengeResponses={"USERNAME": "alice",
                                                          "SOFTWARE_TOKEN_MFA_CODE": code})
    # SMS cannot be turned on
    with pytest.raises(idp.exceptions.InvalidParameterException):
        idp.set_user_mfa_preference(AccessToken=auth["AccessToken"],
                                    SMSMfaSettings={"Enabled": True, "PreferredMfa": False})


def test_mfa_on_sets_a_token_up_during_the_first_sign_in(stack, idp):
    create_user(stack, "bob", "Password1-bob", pool="strict")
    challenge = password_sign_in(idp, "bob", "Password1-bob", client_id="strict-web")
    assert challenge["ChallengeName"] == "MFA_SETUP"
    assert challenge["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["SOFTWARE_TOKEN_MFA"]'
    associated = idp.associate_software_token(Session=challenge["Session"])
    totp = pyotp.TOTP(associated["SecretCode"])
    verified = idp.verify_software_token(Session=associated["Session"], UserCode=totp.now())
    assert verified["Status"] == "SUCCESS"
    result = idp.respond_to_auth_challenge(ClientId="strict-web", ChallengeName="MFA_SETUP",
                                           Session=verified["Session"],
                                           ChallengeResponses={"USERNAME": "bob"})
    access = result["AuthenticationResult"]["AccessToken"]
    assert idp.get_user(AccessToken=access)["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    # from now on every sign-in asks for a code
    challenge = password_sign_in(idp, "bob", "Password1-bob", client_id="strict-web")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    result = idp.respond_to_auth_challenge(ClientId="strict-web", ChallengeName="SOFTWARE_TOKEN_MFA",
                                           Session=challenge["Session"],
                                           ChallengeResponses={"USERNAME": "bob",
                                                               "SOFTWARE_TOKEN_MFA_CODE": next_code(totp)})
    assert result["AuthenticationResult"]["IdToken"]


def test_pycognito_srp_sign_in_meets_the_software_token_challenge(stack, idp):
    create_user(stack, "carol", "Password1-carol")
    tokens = password_sign_in(idp, "carol", "Password1-carol")["AuthenticationResult"]
    totp = enable_token(idp, tokens["AccessToken"])
    pool_issuer = f"{endpoint(stack)}/pools/main"

    class PortcullisCognito(Cognito):
        # pycognito checks `iss` against Cognito's URL shape; a self-hosted pool has its own
        @property
        def user_pool_url(self) -> str:
            return pool_issuer

    user = PortcullisCognito(
        "us-east-1_main", "web", username="carol",
        boto3_client_kwargs={"endpoint_url": endpoint(stack), "aws_access_key_id": "x",
                             "aws_secret_access_key": "x"},
        botocore_config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                               read_timeout=TIMEOUT))
    with pytest.raises(SoftwareTokenMFAChallengeException) as challenge:
        user.authenticate(password="Password1-carol")
    user.respond_to_software_token_mfa_challenge(next_code(totp), challenge.value.get_tokens())
    claims = jwt.decode(user.access_token, options={"verify_signature": False})
    assert claims["username"] == "carol"


def test_totp_secrets_are_not_in_the_store_files_in_the_clear(stack, idp):
    create_user(stack, "dora", "Password1-dora")
    tokens = password_sign_in(idp, "dora", "Password1-dora")["AuthenticationResult"]
    totp = enable_token(idp, tokens["AccessToken"])
    raw = base64.b32decode(totp.secret)
    files = sorted(stack.workdir.glob("portcullis.db*"))
    assert files, list(stack.workdir.iterdir())
    for path in files:
        data = path.read_bytes()
        assert raw not in data, path
        assert totp.secret.encode() not in data, path


def test_an_administrator_removes_a_lost_token(stack, idp):
    create_user(stack, "erin", "Password1-erin")
    tokens = password_sign_in(idp, "erin", "Password1-erin")["AuthenticationResult"]
    enable_token(idp, tokens["AccessToken"])
    assert password_sign_in(idp, "erin", "Password1-erin")["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    done = subprocess.run(
        [str(stack.binary), "users", "remove-mfa", "erin", "--config", str(stack.config_path),
         "--pool", "main"],
        cwd=stack.workdir, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "TOTP software token removed" in done.stdout
    # the phone is gone: the next sign-in needs no code (the pool's mfa is optional)
    result = password_sign_in(idp, "erin", "Password1-erin")
    assert "ChallengeName" not in result
    assert result["AuthenticationResult"]["AccessToken"]
    again = subprocess.run(
        [str(stack.binary), "users", "remove-mfa", "nobody", "--config", str(stack.config_path),
         "--pool", "main"],
        cwd=stack.workdir, capture_output=True, text=True, timeout=60,
    )
    assert again.returncode != 0
