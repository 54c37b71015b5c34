"""Three `portcullis` nodes behind nginx running deploy/nginx/portcullis.conf (round robin, not
sticky), and a real Chromium signing in and chatting through it.

The nginx config is the shipped file with only its addresses moved to loopback (cluster.Nginx);
its access log names the node that served each request (`upstream=`), which is how these tests
see that consecutive requests, and the steps of one sign-in, land on different nodes.

Without nginx (Debian `nginx-light`), Chromium or tests/browser/node_modules these tests are
skipped, unless PORTCULLIS_REQUIRE_BROWSER is set (scripts/test sets it): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import urllib.parse

import pytest
import requests
import websockets.sync.client

from cluster import CLUSTER_SECTION, Cluster, Nginx, RedisServer, TempPostgres, failed, save_artifacts
from conftest import REPO, STAGE, TIMEOUT, USER_AGENT, free_port, management_client, sigv4_headers, wait_until
from test_browser import BROWSER_ARTIFACTS, BROWSER_DIR, DEMO_CONFIG, _stop, _unavailable, _wait_http
from test_browser import browser_tools  # noqa: F401 - the fixture

SOCKETS = 6  # two per node under strict round robin
SCRIPT_TIMEOUT = 240


@pytest.fixture
def nginx_bin() -> str:
    found = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if not found:
        _unavailable("nginx is not installed (apt-get install nginx-light)")
    return found


def _node_addresses(c: Cluster) -> tuple[list[str], list[str]]:
    return (
        [f"127.0.0.1:{n.gateway.ws_port}" for n in c],
        [f"127.0.0.1:{n.gateway.admin_port}" for n in c],
    )


# ---- nginx in front of the push world ---------------------------------------------------------


@pytest.fixture
def balanced(request, nginx_bin, portcullis_bin, tmp_path, backend):
    redis = RedisServer(tmp_path).start()
    c = Cluster(portcullis_bin, tmp_path, redis, backend)
    lb: Nginx | None = None
    ok = False
    try:
        c.start()
        lb = Nginx(tmp_path, *_node_addresses(c)).start()
        ok = True
        yield c, lb
    finally:
        if lb is not None:
            lb.stop()
        c.finish(not ok or failed(request), request.node.name)
        if (not ok or failed(request)) and lb is not None:
            save_artifacts(request.node.name + "-nginx", [], None,
                           {"nginx access log": lb.access_log, "nginx admin log": lb.admin_access_log,
                            "nginx error log": lb.error_log})
        redis.stop()


def test_nginx_round_robin_spreads_sockets_and_management_calls_over_all_nodes(balanced):
    c, lb = balanced
    backend = c.backend
    sockets = {}
    opened = contextlib.ExitStack()
    for _ in range(SOCKETS):
        tag = secrets.token_hex(8)
        query = urllib.parse.urlencode({"user": "lb-user", "tag": tag})
        ws = opened.enter_context(websockets.sync.client.connect(
            f"ws://127.0.0.1:{lb.port}/chat?{query}", open_timeout=TIMEOUT, close_timeout=2,
            ping_interval=None, compression=None, proxy=None, user_agent_header=USER_AGENT,
        ))
        event = backend.wait_for("CONNECT", pred=lambda e, t=tag: (e.get("queryStringParameters") or {}).get("tag") == t)
        sockets[event["requestContext"]["connectionId"]] = ws
    try:
        # A push to the user through the admin balancer counts the sockets of every node.
        url = f"{lb.admin_url}/{STAGE}/@users/lb-user"
        r = requests.post(url, data=b"to all", headers=sigv4_headers("POST", url, c.secret, b"to all"), timeout=TIMEOUT)
        assert (r.status_code, r.json()) == (200, {"connections": SOCKETS}), r.text
        for ws in sockets.values():
            assert ws.recv(timeout=TIMEOUT) == "to all"
        # boto3 through the balancer: each call lands on some node, mostly not the owner's.
        client = management_client(f"{lb.admin_url}/{STAGE}", c.secret)
        for cid, ws in sockets.items():
            client.post_to_connection(ConnectionId=cid, Data=f"just {cid}".encode())
            assert ws.recv(timeout=TIMEOUT) == f"just {cid}"
            assert client.get_connection(ConnectionId=cid)["Identity"]["UserAgent"] == USER_AGENT
    finally:
        opened.close()
    for cid in sockets:
        backend.wait_for("DISCONNECT", cid)

    public, admin = _node_addresses(c)
    wait_until(lambda: len(lb.upstreams(lb.access_log, r"^GET /chat\?")) == SOCKETS, what="nginx to log every socket")
    assert set(lb.upstreams(lb.access_log, r"^GET /chat\?")) == set(public)
    wait_until(lambda: len(lb.upstreams(lb.admin_access_log, r"@connections")) == 2 * SOCKETS,
               what="nginx to log every management call")
    assert set(lb.upstreams(lb.admin_access_log, r"@connections")) == set(admin)


# ---- the chat page, signing in through the balancer -------------------------------------------


@pytest.fixture
def demo_cluster(request, nginx_bin, browser_tools, portcullis_bin, demo_backend_bin, tmp_path, backend):
    """examples/demo.toml as three nodes on one PostgreSQL and Redis, behind nginx, with the demo
    backend pushing through nginx's admin listener. Yields (cluster, nginx, env of node A)."""
    pg = TempPostgres()
    redis = RedisServer(tmp_path)
    # The demo's own config, with the page's folder made absolute and [cluster] added; every
    # address comes from the environment as the demo documents.
    demo = DEMO_CONFIG.read_text().replace('dir = "../web/chat"', f'dir = "{REPO / "web" / "chat"}"')
    assert str(REPO / "web" / "chat") in demo, "examples/demo.toml no longer serves ../web/chat"
    template = demo.replace("{", "{{").replace("}", "}}") + CLUSTER_SECTION
    c: Cluster | None = None
    lb: Nginx | None = None
    demo_backend: subprocess.Popen | None = None
    backend_log = tmp_path / "demo-backend.log"
    backend_port = free_port()
    ok = False
    try:
        pg.start()
        redis.start()
        c = Cluster(portcullis_bin, tmp_path, redis, backend, template=template)
        lb = Nginx(tmp_path, *_node_addresses(c))
        admin_secret = c.secret
        for node in c:
            gw = node.gateway
            gw.env.update({
                "PORTCULLIS_LISTEN": f"127.0.0.1:{gw.ws_port}",
                "PORTCULLIS_ADMIN_LISTEN": f"127.0.0.1:{gw.admin_port}",
                "PORTCULLIS_PUBLIC_URL": lb.url,
                "PORTCULLIS_STORE": pg.url,
                "PORTCULLIS_ADMIN_SECRET": admin_secret,
                "DEMO_BACKEND_URL": f"http://127.0.0.1:{backend_port}",
            })
        with open(backend_log, "wb") as out:
            demo_backend = subprocess.Popen(
                [str(demo_backend_bin), "--listen", f"127.0.0.1:{backend_port}",
                 "--management-url", f"{lb.admin_url}/prod"],
                cwd=tmp_path, env={**os.environ, "PORTCULLIS_ADMIN_SECRET": admin_secret},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://127.0.0.1:{backend_port}/healthz", demo_backend, backend_log, "the demo backend")
        c.start()
        lb.start()
        ok = True
        yield c, lb, c[0].gateway.env
    finally:
        if lb is not None:
            lb.stop()
        if demo_backend is not None:
            _stop(demo_backend)
        bad = not ok or failed(request)
        if c is not None:
            c.finish(bad, request.node.name)
        if bad:
            extra = {"demo backend log": backend_log}
            if lb is not None:
                extra.update({"nginx access log": lb.access_log, "nginx error log": lb.error_log})
            save_artifacts(request.node.name + "-lb", [], None, extra)
        redis.stop()
        pg.stop()


def _create_user(portcullis_bin, env: dict[str, str], config, username: str, password: str) -> None:
    result = subprocess.run(
        [str(portcullis_bin), "users", "create", "--config", str(config), "--pool", "main", username,
         "--password", password],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"creating {username}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.timeout(SCRIPT_TIMEOUT + 120)
def test_chat_page_signs_in_and_chats_through_round_robin_nginx(browser_tools, demo_cluster, portcullis_bin):
    c, lb, env = demo_cluster
    users = {name: f"{name.capitalize()}-{secrets.token_hex(6)}-42" for name in ("alice", "bob")}
    for name, password in users.items():
        _create_user(portcullis_bin, env, c[0].gateway.config_path, name, password)
    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script_env = {
        **os.environ,
        "PORTCULLIS_URL": lb.url,
        "ALICE_USERNAME": "alice", "ALICE_PASSWORD": users["alice"],
        "BOB_USERNAME": "bob", "BOB_PASSWORD": users["bob"],
        "CHROMIUM_PATH": browser_tools["chromium"],
        "BROWSER_ARTIFACTS": str(BROWSER_ARTIFACTS),
    }
    try:
        result = subprocess.run(
            [browser_tools["node"], str(BROWSER_DIR / "cluster.mjs")],
            cwd=BROWSER_DIR, env=script_env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"tests/browser/cluster.mjs did not finish within {SCRIPT_TIMEOUT}s\n{e.stdout}\n{e.stderr}")
    lb.stop()  # flushes the access log: every socket and stream is over
    steps = {
        what: lb.upstreams(lb.access_log, pattern)
        for what, pattern in [
            ("hosted page", r"^GET /pools/main/oauth2/authorize"),
            ("sign-in form", r"^POST /pools/main/login"),
            ("token", r"^POST /pools/main/oauth2/token"),
            ("cookie session", r"^POST /pools/main/session"),
            ("WebSocket", r"^GET /chat(\?| )"),
            ("SSE", r"^GET /chat/events"),
        ]
    }
    report = (
        f"---- cluster.mjs stdout ----\n{result.stdout}\n---- cluster.mjs stderr ----\n{result.stderr}\n"
        f"---- which node served each step ----\n" + "\n".join(f"{k}: {v}" for k, v in steps.items())
    )
    print(report)
    assert result.returncode == 0, f"the browser script failed (screenshots in {BROWSER_ARTIFACTS}):\n{report}"
    public, _ = _node_addresses(c)
    everything = lb.upstreams(lb.access_log, r".")
    assert set(everything) == set(public), f"nginx did not use every node: {sorted(set(everything))}"
    sign_in_steps = steps["hosted page"] + steps["sign-in form"] + steps["token"] + steps["cookie session"]
    assert len(sign_in_steps) >= 5, steps
    assert len(set(sign_in_steps)) >= 2, f"every sign-in step landed on one node: {steps}"
    for shot in ("cluster-1-alice-signed-in", "cluster-2-chatting"):
        assert (BROWSER_ARTIFACTS / f"{shot}.png").is_file(), f"{shot}.png was not saved"


# ---- the systemd unit -------------------------------------------------------------------------


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path, portcullis_bin):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    shipped = (REPO / "deploy" / "portcullis.service").read_text()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "LimitNOFILE=", "Restart=on-failure", "User=portcullis"):
        assert setting in shipped, setting
    unit = tmp_path / "portcullis.service"
    unit.write_text(shipped.replace("/usr/local/bin/portcullis", str(portcullis_bin)))
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines() if "portcullis.service" in line]
    assert verify.returncode == 0 and not problems, verify.stdout + verify.stderr
