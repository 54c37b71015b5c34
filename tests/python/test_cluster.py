"""Three `portcullis` nodes sharing one Redis (CONTRACT.md §3), driven end to end: real
WebSocket clients on different nodes, boto3's `apigatewaymanagementapi` and SigV4-signed
`requests` against any node's admin listener, a node killed with SIGKILL, Redis killed and
started again empty, revocations and sign-in steps landing on different nodes (pools on a
throwaway PostgreSQL). See cluster.py for the harness; heartbeat "1s" throughout.

The load-balancer tests (nginx in front of the three nodes, and a real Chromium signing in
through it) are in test_cluster_lb.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import urllib.parse

import boto3
import botocore.config
import pytest
import requests
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from cluster import (
    CLUSTER_SECTION,
    Cluster,
    Node,
    RedisServer,
    TempPostgres,
    failed,
    pause,
)
from conftest import REGION, STAGE, TIMEOUT, Backend, free_port, sigv4_headers, wait_until
from push_world import ADMIN_KEY_ID, ADMIN_SECRET, quote
from test_oauth_code import parse_form

KILLED_NODE_CONNECTIONS = 50
# Long enough for a dead node to be noticed (3 heartbeats of 1 s) and its connections handed
# out, on a loaded 2-core machine.
NODE_LOST_TIMEOUT = 30.0
PASSWORD = "Correct-Horse-9"


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def cluster(request, portcullis_bin, tmp_path, backend, redis):
    c = Cluster(portcullis_bin, tmp_path, redis, backend)
    try:
        c.start()
    except BaseException:
        c.finish(True, request.node.name)
        raise
    yield c
    c.finish(failed(request), request.node.name)


# ---- helpers --------------------------------------------------------------------------------


def received(ws, what: str) -> str:
    try:
        return ws.recv(timeout=TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{what}: nothing arrived within {TIMEOUT}s") from None


def assert_nothing_before_now(node: Node, ws, connection_id: str) -> None:
    """Nothing reached `ws` so far: a marker posted now (to its own node) is the next frame."""
    marker = "marker-" + secrets.token_hex(4)
    r = node.call("POST", f"/{STAGE}/@connections/{quote(connection_id)}", marker.encode())
    assert r.status_code == 200, r.text
    assert received(ws, "the marker") == marker


def read_until_closed(ws) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=TIMEOUT)
    return closed.value


def disconnects(backend: Backend, connection_id: str) -> list[dict]:
    return backend.find("DISCONNECT", connection_id)


# ---- @users, @topics, @connections across nodes -------------------------------------------------


def test_a_user_push_reaches_sockets_on_all_three_nodes(cluster):
    a, b, c = cluster
    sockets = {}
    for node in (a, b, c):
        ws, cid = node.connect_as("alice")
        sockets[cid] = (node, ws)
    bob, bob_id = b.connect_as("bob")

    r = a.call("POST", f"/{STAGE}/@users/alice", "héllo ✓".encode())
    assert r.status_code == 200, r.text
    assert r.json() == {"connections": 3}
    for cid, (node, ws) in sockets.items():
        assert received(ws, f"alice's socket on {node.node_id}") == "héllo ✓"
    assert_nothing_before_now(b, bob, bob_id)

    for node in (a, b, c):
        listed = node.call("GET", f"/{STAGE}/@users/alice")
        assert listed.status_code == 200, listed.text
        assert sorted(x["connectionId"] for x in listed.json()["connections"]) == sorted(sockets), node

    # DELETE on node C closes alice's sockets wherever they are; each gets its $disconnect once.
    r = c.call("DELETE", f"/{STAGE}/@users/alice")
    assert r.status_code == 204, r.text
    for cid, (node, ws) in sockets.items():
        read_until_closed(ws)
        cluster.backend.wait_for("DISCONNECT", cid)
    assert a.call("POST", f"/{STAGE}/@users/alice", b"x").json() == {"connections": 0}
    assert all(len(disconnects(cluster.backend, cid)) == 1 for cid in sockets)
    assert not disconnects(cluster.backend, bob_id)


def test_a_topic_fans_out_to_subscribers_on_every_node(cluster):
    a, b, c = cluster
    subscribers = {}
    for node in (a, b, c):
        ws, cid = node.connect_as(f"fan-{node.node_id}")
        subscribers[cid] = (node, ws)
    outsider, outsider_id = c.connect_as("outsider")
    # Each subscription is made on a node that does not hold the socket.
    for i, cid in enumerate(subscribers):
        via = cluster[(i + 1) % 3]
        r = via.call("PUT", f"/{STAGE}/@connections/{quote(cid)}/topics/match:42")
        assert r.status_code == 204, (via, r.status_code, r.text)

    r = b.call("POST", f"/{STAGE}/@topics/match:42", b"goal!")
    assert (r.status_code, r.json()) == (200, {"connections": 3}), r.text
    for cid, (node, ws) in subscribers.items():
        assert received(ws, f"the subscriber on {node.node_id}") == "goal!"
    assert_nothing_before_now(c, outsider, outsider_id)
    for node in (a, b, c):
        listed = node.call("GET", f"/{STAGE}/@topics/match:42").json()["connections"]
        assert sorted(x["connectionId"] for x in listed) == sorted(subscribers), node


def test_connection_calls_on_node_a_reach_a_socket_on_node_c(cluster):
    a, _, c = cluster
    ws, cid = c.connect_as("carol")
    on_a, on_c = a.client(), c.client()

    on_a.post_to_connection(ConnectionId=cid, Data=b"from node a")
    assert received(ws, "the post from node a") == "from node a"

    info_a = on_a.get_connection(ConnectionId=cid)
    info_c = on_c.get_connection(ConnectionId=cid)
    for field in ("ConnectedAt", "Identity", "LastActiveAt"):
        assert info_a[field] == info_c[field], field
    assert info_a["Identity"]["UserAgent"]

    on_a.delete_connection(ConnectionId=cid)
    read_until_closed(ws)
    cluster.backend.wait_for("DISCONNECT", cid)
    for client in (on_a, on_c):
        with pytest.raises(client.exceptions.GoneException):
            client.post_to_connection(ConnectionId=cid, Data=b"too late")
        with pytest.raises(client.exceptions.GoneException):
            client.get_connection(ConnectionId=cid)
    assert len(disconnects(cluster.backend, cid)) == 1


def test_nodes_reach_each_other_through_a_redis_that_speaks_only_tls(request, portcullis_bin, tmp_path, backend):
    """`rediss://`: the nodes verify Redis's certificate (here signed by a private CA given with
    SSL_CERT_FILE, as an operator would for a managed Redis with its own CA)."""
    redis = RedisServer(tmp_path, tls=True).start()
    two = Cluster(portcullis_bin, tmp_path, redis, backend, nodes=2,
                  env={"SSL_CERT_FILE": str(redis.ca_file)})
    try:
        two.start()
        a, b = two
        ws, cid = b.connect_as("tina")
        a.client().post_to_connection(ConnectionId=cid, Data=b"over tls")
        assert received(ws, "the post over TLS") == "over tls"
        assert a.metric("portcullis_cluster_redis_up") == 1
    finally:
        two.finish(failed(request), request.node.name)
        redis.stop()


def test_an_unknown_or_closed_connection_is_gone_on_every_node(cluster):
    _, b, _ = cluster
    ws, closed_id = b.connect_as("dave")
    ws.close()
    cluster.backend.wait_for("DISCONNECT", closed_id)
    # Well-formed-looking ids that no node ever issued, and one that a node did issue but closed.
    invented = base64.b64encode(os.urandom(10)).decode()
    for node in cluster:
        client = node.client()
        for cid in (invented, "AAAAAAAAAAAAAA=", closed_id):
            for op in ("post_to_connection", "get_connection", "delete_connection"):
                kwargs = {"ConnectionId": cid, **({"Data": b"x"} if op == "post_to_connection" else {})}
                with pytest.raises(client.exceptions.GoneException):
                    getattr(client, op)(**kwargs)
        raw = node.call("POST", f"/{STAGE}/@connections/{quote(invented)}", b"x")
        assert raw.status_code == 410, (node, raw.status_code, raw.text)


# ---- a node lost ------------------------------------------------------------------------------


def test_a_killed_nodes_connections_each_get_one_disconnect_from_a_survivor(cluster):
    a, b, c = cluster
    backend = cluster.backend
    doomed: dict[str, str] = {}  # connection id -> its principal
    for i in range(KILLED_NODE_CONNECTIONS):
        _, cid = c.connect_as(f"doomed-{i % 5}")
        doomed[cid] = f"doomed-{i % 5}"
    keep_a, keep_a_id = a.connect_as("survivor")
    keep_b, keep_b_id = b.connect_as("survivor")
    before = {n.node_id: n.metric("portcullis_cluster_disconnects_delivered_total") or 0 for n in (a, b)}

    c.gateway.kill()

    def all_delivered() -> bool:
        return all(disconnects(backend, cid) for cid in doomed)

    try:
        wait_until(all_delivered, timeout=NODE_LOST_TIMEOUT, what="a $disconnect for every connection of the killed node")
    except AssertionError as e:
        missing = [cid for cid in doomed if not disconnects(backend, cid)]
        raise AssertionError(f"{e}: {len(missing)} of {len(doomed)} never got one, e.g. {missing[:3]}") from None
    cluster.wait_for_members(2)
    # Duplicates would come from the other survivor; give it three more heartbeats to send one.
    pause(3.5)

    counts = {cid: len(disconnects(backend, cid)) for cid in doomed}
    assert sorted(set(counts.values())) == [1], {cid: n for cid, n in counts.items() if n != 1}
    for cid, principal in doomed.items():
        event = disconnects(backend, cid)[0]
        ctx = event["requestContext"]
        assert ctx["routeKey"] == "$disconnect"
        assert ctx["disconnectReason"] == "node lost", ctx
        assert ctx["disconnectStatusCode"] == 1006, ctx
        # The event is the connection's own: who it was, as its $connect said.
        assert ctx["authorizer"]["principalId"] == principal, ctx
        connect = backend.wait_for("CONNECT", cid)["requestContext"]
        assert ctx["connectedAt"] == connect["connectedAt"], (ctx, connect)
    delivered = {
        n.node_id: (n.metric("portcullis_cluster_disconnects_delivered_total") or 0) - before[n.node_id]
        for n in (a, b)
    }
    assert sum(delivered.values()) == KILLED_NODE_CONNECTIONS, delivered

    for node in (a, b):
        client = node.client()
        for cid in list(doomed)[:5]:
            with pytest.raises(client.exceptions.GoneException):
                client.post_to_connection(ConnectionId=cid, Data=b"anyone?")
        assert node.call("POST", f"/{STAGE}/@users/doomed-0", b"x").json() == {"connections": 0}
    # The survivors' own sockets were not touched and still hear from either node.
    assert not disconnects(backend, keep_a_id) and not disconnects(backend, keep_b_id)
    r = b.call("POST", f"/{STAGE}/@users/survivor", b"still here")
    assert r.json() == {"connections": 2}, r.text
    assert received(keep_a, "survivor on a") == "still here"
    assert received(keep_b, "survivor on b") == "still here"


def test_a_node_stopped_gracefully_disconnects_its_own_and_nobody_repeats_it(cluster):
    a, b, c = cluster
    backend = cluster.backend
    leaving = {}
    for i in range(5):
        ws, cid = c.connect_as(f"leaving-{i}")
        leaving[cid] = ws
    assert c.gateway.terminate() == 0
    for cid, ws in leaving.items():
        closed = read_until_closed(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 1001, closed
        backend.wait_for("DISCONNECT", cid)
    cluster.wait_for_members(2)
    pause(3.5)  # three more heartbeats: time for a survivor to (wrongly) reap the node
    for cid in leaving:
        events = disconnects(backend, cid)
        assert len(events) == 1, [e["requestContext"] for e in events]
        assert events[0]["requestContext"].get("disconnectReason") != "node lost"
    for node in (a, b):
        assert node.metric("portcullis_cluster_disconnects_delivered_total") in (0, None)
        with pytest.raises(node.client().exceptions.GoneException):
            node.client().post_to_connection(ConnectionId=next(iter(leaving)), Data=b"gone?")


# ---- Redis down and back ----------------------------------------------------------------------


def test_redis_restarted_empty_nodes_serve_locally_then_resume_cross_node_delivery(cluster):
    a, b, c = cluster
    redis, backend = cluster.redis, cluster.backend
    ws_a, id_a = a.connect_as("alice")
    ws_b, id_b = b.connect_as("alice")
    for cid in (id_a, id_b):
        assert c.call("PUT", f"/{STAGE}/@connections/{quote(cid)}/topics/news").status_code == 204
    assert c.call("POST", f"/{STAGE}/@users/alice", b"before").json() == {"connections": 2}
    assert received(ws_a, "alice on a") == "before" and received(ws_b, "alice on b") == "before"

    redis.kill()
    wait_until(
        lambda: all(n.metric("portcullis_cluster_redis_up") == 0 for n in cluster),
        timeout=3 * TIMEOUT,
        what="every node to report portcullis_cluster_redis_up 0",
    )

    # Each node keeps serving what it holds...
    r = a.call("POST", f"/{STAGE}/@connections/{quote(id_a)}", b"local while redis is down")
    assert r.status_code == 200, r.text
    assert received(ws_a, "a local post during the outage") == "local while redis is down"
    ws_a.send(json.dumps({"action": "say", "text": "during the outage"}))
    backend.wait_for("MESSAGE", id_a, pred=lambda e: "during the outage" in (e.get("body") or ""))
    # ... and what needs another node is refused as API Gateway would.
    r = a.call("POST", f"/{STAGE}/@connections/{quote(id_b)}", b"cross-node while down")
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json() == {"message": "Service Unavailable"}
    r = a.call("POST", f"/{STAGE}/@users/alice", b"a user push needs every node")
    assert (r.status_code, r.json()) == (503, {"message": "Service Unavailable"}), r.text

    redis.start()  # the same port, and empty: no persistence
    cluster.wait_for_members(3)

    def cross_node_works() -> bool:
        return a.call("POST", f"/{STAGE}/@connections/{quote(id_b)}", b"after").status_code == 200

    wait_until(cross_node_works, timeout=3 * TIMEOUT, what="a cross-node POST to answer 200 again")
    assert received(ws_b, "the cross-node post after recovery") == "after"
    # Users and topics were announced again by the nodes that hold them.
    r = c.call("POST", f"/{STAGE}/@users/alice", b"user push after")
    assert r.json() == {"connections": 2}, r.text
    assert received(ws_a, "user push on a") == "user push after"
    assert received(ws_b, "user push on b") == "user push after"
    r = c.call("POST", f"/{STAGE}/@topics/news", b"topic push after")
    assert r.json() == {"connections": 2}, r.text
    assert received(ws_a, "topic push on a") == "topic push after"
    assert received(ws_b, "topic push on b") == "topic push after"
    # Nobody was declared dead while nobody could hear anybody, nor once they could again (a
    # node judges others 3 heartbeats after it reconnects: wait that long, and a little more).
    pause(3.5)
    cluster.wait_for_members(3)
    assert not backend.find("DISCONNECT"), [e["requestContext"] for e in backend.find("DISCONNECT")]
    assert all(n.metric("portcullis_cluster_disconnects_delivered_total") in (0, None) for n in cluster)


# ---- pools on PostgreSQL: revocation and sign-in across nodes -----------------------------------

POOL_TEMPLATE = (
    """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
connect_rate_per_ip = 0  # every node's clients connect from 127.0.0.1, dozens at once
public_url = "{public_url}"

[management]
region = "{region}"
credentials = [
  {{ access_key_id = "{akid}", secret_access_key = "{secret}" }},
  {{ access_key_id = "{admin_akid}", secret_access_key = "{admin_secret}", scopes = ["admin"] }},
]

[websocket.chat]
stage = "{stage}"
authorizer = "users"

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend" }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"

[authorizers.users]
type = "jwt"
identity_source = ["route.request.querystring.access_token"]
issuers = [{{ issuer = "{public_url}/pools/main" }}]

[store]
url = "{store_url}"

[pools.main]
password_policy = {{ min_length = 8, require_digits = true }}

[pools.main.clients.web]
public = true
callback_urls = ["{public_url}/cb"]
allowed_scopes = ["openid", "email", "profile"]
"""
    + CLUSTER_SECTION
)


@pytest.fixture(scope="module")
def pool_cluster(request, portcullis_bin, tmp_path_factory):
    """Three nodes with pool `main` in one PostgreSQL; module-wide (each test has its users)."""
    workdir = tmp_path_factory.mktemp("pool-cluster")
    pg = TempPostgres()
    redis = RedisServer(workdir)
    backend = Backend().start()
    failed_before = request.session.testsfailed
    c: Cluster | None = None
    setup_failed = False
    try:
        pg.start()
        redis.start()
        # Where the load balancer would be: the issuer every node names (no test calls it).
        public_url = f"http://127.0.0.1:{free_port()}"
        c = Cluster(
            portcullis_bin, workdir, redis, backend, template=POOL_TEMPLATE,
            store_url=pg.url, public_url=public_url,
        )
        c.public_url = public_url
        try:
            c.start()
        except BaseException:
            setup_failed = True
            raise
        yield c
    finally:
        if c is not None:
            c.finish(setup_failed or request.session.testsfailed > failed_before, "test_cluster_pools")
        backend.stop()
        redis.stop()
        pg.stop()


def admin(node: Node, method: str, path: str, body: dict | None = None) -> requests.Response:
    url = f"{node.admin_url}{path}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {**sigv4_headers(method, url, ADMIN_SECRET, data, access_key_id=ADMIN_KEY_ID),
               "Content-Type": "application/json"}
    return requests.request(method, url, data=data, headers=headers, timeout=TIMEOUT)


def idp_client(node: Node):
    return boto3.client(
        "cognito-idp",
        endpoint_url=node.public_url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=TIMEOUT),
    )


def create_user(node: Node, username: str, password: str = PASSWORD) -> None:
    r = admin(node, "POST", "/admin/pools/main/users", {"username": username, "password": password})
    assert r.status_code == 201, r.text


def socket_with_token(node: Node, access_token: str):
    query = urllib.parse.urlencode({"access_token": access_token})
    return node.sockets.enter_context(
        websockets.sync.client.connect(
            f"{node.gateway.ws_url}?{query}", open_timeout=TIMEOUT, close_timeout=2, ping_interval=None, proxy=None
        )
    )


def test_disabling_a_user_on_node_a_closes_their_socket_on_node_b(pool_cluster):
    a, b, c = pool_cluster
    create_user(a, "erin")
    tokens = idp_client(c).initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "erin", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    ws = socket_with_token(b, tokens["AccessToken"])
    r = admin(a, "POST", "/admin/pools/main/users/erin/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text
    closed = read_until_closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008, closed


def test_a_global_sign_out_on_node_c_closes_the_socket_on_node_a(pool_cluster):
    a, _, c = pool_cluster
    create_user(a, "frank")
    tokens = idp_client(a).initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "frank", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    ws = socket_with_token(a, tokens["AccessToken"])
    idp_client(c).global_sign_out(AccessToken=tokens["AccessToken"])
    closed = read_until_closed(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008, closed


def test_hosted_sign_in_steps_each_on_another_node(pool_cluster):
    a, b, c = pool_cluster
    create_user(a, "grace")
    public = pool_cluster.public_url
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code", "client_id": "web", "redirect_uri": f"{public}/cb",
        "scope": "openid email", "state": secrets.token_urlsafe(16),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    browser = requests.Session()
    # 1. the hosted page, from node A
    page = browser.get(f"{a.public_url}/pools/main/oauth2/authorize", params=params, timeout=TIMEOUT)
    assert page.status_code == 200, page.text
    action, fields = parse_form(page.text)
    # 2. the form, posted to node B
    fields.update(username="grace", password=PASSWORD)
    r = browser.post(f"{b.public_url}{action}", data=fields, timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 302, (r.status_code, r.text[:500])
    location = urllib.parse.urlsplit(r.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert query["state"] == [params["state"]], query
    # 3. the code, exchanged at node C
    token = requests.post(
        f"{c.public_url}/pools/main/oauth2/token",
        data={"grant_type": "authorization_code", "client_id": "web", "code": query["code"][0],
              "redirect_uri": f"{public}/cb", "code_verifier": verifier},
        timeout=TIMEOUT,
    )
    assert token.status_code == 200, token.text
    # 4. and the token opens a socket on node A
    ws = socket_with_token(a, token.json()["access_token"])
    ws.send(json.dumps({"hello": "from grace"}))
    pool_cluster.backend.wait_for("MESSAGE", pred=lambda e: "from grace" in (e.get("body") or ""))


def test_a_cognito_challenge_answered_on_another_node(pool_cluster, portcullis_bin):
    a, b, c = pool_cluster
    temporary = "Temporary-Pass-1"
    result = subprocess.run(
        [str(portcullis_bin), "users", "create", "--config", str(a.gateway.config_path), "--pool", "main",
         "heidi", "--temporary-password", temporary],
        cwd=a.gateway.workdir, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    started = idp_client(a).initiate_auth(
        ClientId="web", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "heidi", "PASSWORD": temporary}
    )
    assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED", started
    answered = idp_client(b).respond_to_auth_challenge(
        ClientId="web", ChallengeName="NEW_PASSWORD_REQUIRED", Session=started["Session"],
        ChallengeResponses={"USERNAME": "heidi", "NEW_PASSWORD": PASSWORD},
    )
    access = answered["AuthenticationResult"]["AccessToken"]
    assert idp_client(c).get_user(AccessToken=access)["Username"] == "heidi"
