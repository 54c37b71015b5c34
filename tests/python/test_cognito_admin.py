"""The Cognito Admin API with a real boto3 `cognito-idp` client, signed with IAM-style
credentials, against the real binary.

Admin operations (`AdminCreateUser`, `ListUsers`, `CreateGroup`, `AdminInitiateAuth`,
`DescribeUserPool`, …) are served at the same `POST /` of the public listener as the public
ones, and must be SigV4-signed (service `cognito-idp`) by a `[management]` credential with the
`admin` scope. The gateway here has two credentials: one with `scopes = ["admin"]` (the
client of these tests) and one with the default `connections` scope, which gets
AccessDeniedException. An unsigned client (botocore's UNSIGNED) gets NotAuthorizedException.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore
import botocore.config
import pytest

from conftest import ACCESS_KEY_ID, CONFIG_TEMPLATE, REGION, TIMEOUT, Backend, Gateway, module_gateway

POOL = "main"
POOL_ID = f"{REGION}_{POOL}"
PUSH_KEY = "AKIDPUSHONLY"
PUSH_SECRET = "push-only-secret-0123456789"

CONFIG = (
    CONFIG_TEMPLATE.replace(
        '[server]\n', '[server]\npublic_url = "http://127.0.0.1:{ws_port}"\n', 1
    ).replace(
        'credentials = [{{ access_key_id = "{akid}", secret_access_key = "{secret}" }}]',
        'credentials = [\n'
        '  {{ access_key_id = "{akid}", secret_access_key = "{secret}", scopes = ["admin"] }},\n'
        '  {{ access_key_id = "{push_key}", secret_access_key = "{push_secret}" }},\n'
        ']',
        1,
    )
    + """
[store]
url = "sqlite://portcullis.db"

[pools.main]
password_policy = {{ min_length = 8, require_digits = true }}
groups = ["admins"]
custom_attributes = {{ team = {{}} }}
access_token_ttl = "1h"
code_webhook = "http://127.0.0.1:{hook_port}/codes"

[pools.main.clients.web]
public = true
name = "Web app"
callback_urls = ["http://localhost/cb"]
"""
)
assert "scopes = [\"admin\"]" in CONFIG


class Webhook:
    """The pool's code_webhook: records every delivery (invitations of AdminCreateUser)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.cond:
                    hook.posts.append(json.loads(raw))
                    hook.cond.notify_all()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, username: str) -> dict:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(p["username"] == username for p in self.posts), TIMEOUT)
            assert ok, f"no delivery for {username}: {self.posts}"
            return [p for p in self.posts if p["username"] == username][-1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def stack(request, portcullis_bin, tmp_path_factory, webhook):
    workdir = tmp_path_factory.mktemp("cognito-admin")
    backend = Backend().start()
    gateway = Gateway(
        portcullis_bin,
        workdir,
        f"http://127.0.0.1:{backend.port}/events",
        template=CONFIG,
        push_key=PUSH_KEY,
        push_secret=PUSH_SECRET,
        hook_port=webhook.port,
    )
    with module_gateway(request, gateway, "test_cognito_admin", backend):
        yield gateway


def client(stack: Gateway, access_key_id: str | None = None, secret: str | None = None, unsigned: bool = False):
    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT)
    if unsigned:
        config = config.merge(botocore.config.Config(signature_version=botocore.UNSIGNED))
    return boto3.client(
        "cognito-idp",
        endpoint_url=f"http://127.0.0.1:{stack.ws_port}",
        region_name=REGION,
        aws_access_key_id=access_key_id or ACCESS_KEY_ID,
        aws_secret_access_key=secret or stack.secret,
        config=config,
    )


@pytest.fixture(scope="module")
def admin(stack):
    return client(stack)


@pytest.fixture(scope="module")
def public(stack):
    return client(stack, unsigned=True)


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def attrs(items: list[dict]) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in items}


def create(admin, username: str, email: str, password: str | None = "Temporary-1") -> dict:
    kwargs = {"TemporaryPassword": password} if password else {}
    return admin.admin_create_user(
        UserPoolId=POOL_ID,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        **kwargs,
    )["User"]


def test_users_are_created_read_updated_and_deleted(admin):
    user = create(admin, "alice", "alice@example.com")
    assert user["Username"] == "alice"
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert user["Enabled"] is True
    assert attrs(user["Attributes"])["email"] == "alice@example.com"
    # dates are epoch seconds botocore turns into datetimes
    assert user["UserCreateDate"].year >= 2024

    got = admin.admin_get_user(UserPoolId=POOL_ID, Username="alice")
    assert got["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert "sub" in attrs(got["UserAttributes"])

    with pytest.raises(admin.exceptions.UsernameExistsException):
        create(admin, "alice", "alice@example.com")
    with pytest.raises(admin.exceptions.InvalidPasswordException):
        create(admin, "weak", "weak@example.com", password="short")

    admin.admin_update_user_attributes(
        UserPoolId=POOL_ID,
        Username="alice",
        UserAttributes=[{"Name": "email", "Value": "alice@example.org"}, {"Name": "custom:team", "Value": "blue"}],
    )
    got = attrs(admin.admin_get_user(UserPoolId=POOL_ID, Username="alice")["UserAttributes"])
    assert got["email"] == "alice@example.org"
    assert got["email_verified"] == "false"
    assert got["custom:team"] == "blue"

    admin.admin_delete_user(UserPoolId=POOL_ID, Username="alice")
    with pytest.raises(admin.exceptions.UserNotFoundException):
        admin.admin_get_user(UserPoolId=POOL_ID, Username="alice")
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.admin_get_user(UserPoolId="us-east-1_nope", Username="alice")


def test_list_users_filters_and_paginates(admin):
    for i in range(25):
        domain = "corp.example" if i % 5 == 0 else "example.com"
        admin.admin_create_user(
            UserPoolId=POOL_ID,
            Username=f"list-{i:02}",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": f"list{i:02}@{domain}"}],
        )
    exact = admin.list_users(UserPoolId=POOL_ID, Filter='email = "list07@example.com"')["Users"]
    assert [u["Username"] for u in exact] == ["list-07"]
    corp = admin.list_users(UserPoolId=POOL_ID, Filter='email ^= "list0"', Limit=60)["Users"]
    assert [u["Username"] for u in corp] == [f"list-{i:02}" for i in range(10)]

    paginator = admin.get_paginator("list_users")
    pages = list(
        paginator.paginate(UserPoolId=POOL_ID, Filter='username ^= "list-"', PaginationConfig={"PageSize": 10})
    )
    assert [len(p["Users"]) for p in pages] == [10, 10, 5]
    names = [u["Username"] for p in pages for u in p["Users"]]
    assert names == [f"list-{i:02}" for i in range(25)]

    only = admin.list_users(UserPoolId=POOL_ID, Filter='username = "list-03"', AttributesToGet=["email"])["Users"]
    assert only[0]["Attributes"] == [{"Name": "email", "Value": "list03@example.com"}]
    with pytest.raises(admin.exceptions.InvalidParameterException):
        admin.list_users(UserPoolId=POOL_ID, Filter="email = unquoted")


def test_groups(admin):
    create(admin, "gina", "gina@example.com")
    group = admin.create_group(UserPoolId=POOL_ID, GroupName="editors", Description="Edit", Precedence=2)["Group"]
    assert group["GroupName"] == "editors" and group["Precedence"] == 2
    with pytest.raises(admin.exceptions.GroupExistsException):
        admin.create_group(UserPoolId=POOL_ID, GroupName="admins")
    names = [g["GroupName"] for g in admin.list_groups(UserPoolId=POOL_ID)["Groups"]]
    assert names == ["admins", "editors"]

    admin.admin_add_user_to_group(UserPoolId=POOL_ID, Username="gina", GroupName="editors")
    admin.admin_add_user_to_group(UserPoolId=POOL_ID, Username="gina", GroupName="admins")
    mine = admin.admin_list_groups_for_user(UserPoolId=POOL_ID, Username="gina")["Groups"]
    assert [g["GroupName"] for g in mine] == ["admins", "editors"]
    members = admin.list_users_in_group(UserPoolId=POOL_ID, GroupName="editors")["Users"]
    assert [u["Username"] for u in members] == ["gina"]
    admin.admin_remove_user_from_group(UserPoolId=POOL_ID, Username="gina", GroupName="editors")
    assert admin.list_users_in_group(UserPoolId=POOL_ID, GroupName="editors")["Users"] == []

    admin.delete_group(UserPoolId=POOL_ID, GroupName="editors")
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.delete_group(UserPoolId=POOL_ID, GroupName="editors")
    # declared in the configuration file: stays
    with pytest.raises(admin.exceptions.InvalidParameterException):
        admin.delete_group(UserPoolId=POOL_ID, GroupName="admins")


def test_admin_sign_in_new_password_and_sign_out(admin, public):
    create(admin, "hank", "hank@example.com", password="Temporary-1")
    r = admin.admin_initiate_auth(
        UserPoolId=POOL_ID,
        ClientId="web",
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "hank", "PASSWORD": "Temporary-1"},
    )
    assert r["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = admin.admin_respond_to_auth_challenge(
        UserPoolId=POOL_ID,
        ClientId="web",
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=r["Session"],
        ChallengeResponses={"USERNAME": "hank", "NEW_PASSWORD": "Permanent-2"},
    )["AuthenticationResult"]
    assert done["AccessToken"] and done["IdToken"] and done["RefreshToken"]
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username="hank")["UserStatus"] == "CONFIRMED"

    # a permanent password set by the admin works with the public flow
    admin.admin_set_user_password(UserPoolId=POOL_ID, Username="hank", Password="Permanent-3", Permanent=True)
    signed_in = public.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "hank", "PASSWORD": "Permanent-3"}
    )["AuthenticationResult"]
    refresh = signed_in["RefreshToken"]

    # global sign-out: the refresh token is refused
    admin.admin_user_global_sign_out(UserPoolId=POOL_ID, Username="hank")
    with pytest.raises(public.exceptions.NotAuthorizedException):
        public.initiate_auth(ClientId="web", AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh})

    # disabled: sign-in refused; enabled again: it works
    admin.admin_disable_user(UserPoolId=POOL_ID, Username="hank")
    with pytest.raises(public.exceptions.NotAuthorizedException) as e:
        public.initiate_auth(
            ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "hank", "PASSWORD": "Permanent-3"}
        )
    assert e.value.response["Error"]["Message"] == "User is disabled."
    admin.admin_enable_user(UserPoolId=POOL_ID, Username="hank")
    public.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "hank", "PASSWORD": "Permanent-3"}
    )


def test_only_admin_credentials_may_call(stack, public):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public.list_users(UserPoolId=POOL_ID)
    assert code(e) == "NotAuthorizedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    push = client(stack, access_key_id=PUSH_KEY, secret=PUSH_SECRET)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        push.admin_create_user(UserPoolId=POOL_ID, Username="mallory", MessageAction="SUPPRESS")
    assert code(e) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    wrong = client(stack, secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.list_users(UserPoolId=POOL_ID)
    assert code(e) == "NotAuthorizedException"

    admin = client(stack)
    with pytest.raises(admin.exceptions.UserNotFoundException):
        admin.admin_get_user(UserPoolId=POOL_ID, Username="mallory")


def test_describe_pool_and_client(admin):
    pool = admin.describe_user_pool(UserPoolId=POOL_ID)["UserPool"]
    assert pool["Id"] == POOL_ID
    assert pool["Name"] == POOL
    assert pool["Arn"].startswith(f"arn:aws:cognito-idp:{REGION}:") and pool["Arn"].endswith(f":userpool/{POOL_ID}")
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == 8 and policy["RequireNumbers"] is True
    assert pool["MfaConfiguration"] == "OFF"
    assert pool["EstimatedNumberOfUsers"] >= 0
    assert pool["CreationDate"].year >= 2024
    assert any(a["Name"] == "custom:team" for a in pool["SchemaAttributes"])

    c = admin.describe_user_pool_client(UserPoolId=POOL_ID, ClientId="web")["UserPoolClient"]
    assert c["ClientId"] == "web" and c["ClientName"] == "Web app" and c["UserPoolId"] == POOL_ID
    assert "ALLOW_USER_SRP_AUTH" in c["ExplicitAuthFlows"]
    assert c["CallbackURLs"] == ["http://localhost/cb"]
    assert "ClientSecret" not in c
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.describe_user_pool_client(UserPoolId=POOL_ID, ClientId="nope")


def test_invitations_carry_a_generated_temporary_password_to_the_webhook(stack, admin, public, webhook):
    admin.admin_create_user(
        UserPoolId=POOL_ID, Username="ivy", UserAttributes=[{"Name": "email", "Value": "ivy@example.com"}]
    )
    invitation = webhook.wait_for("ivy")
    assert invitation["kind"] == "ADMIN_CREATE_USER"
    assert invitation["destination"] == {"email": "ivy@example.com"}
    password = invitation["code"]
    assert len(password) >= 16
    r = public.initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "ivy", "PASSWORD": password}
    )
    assert r["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    # a password never reaches the log
    assert password not in stack.log_text()
    # SUPPRESS sends nothing (an invitation made after it arrives, none for it)
    create(admin, "quiet", "quiet@example.com")
    admin.admin_create_user(UserPoolId=POOL_ID, Username="loud", TemporaryPassword="Temporary-9")
    assert webhook.wait_for("loud")["code"] == "Temporary-9"
    assert not [p for p in webhook.posts if p["username"] == "quiet"]
