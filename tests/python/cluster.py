"""A cluster of real `portcullis` nodes for the end-to-end tests (CONTRACT.md §3).

What a test gets, all throwaway and on free loopback ports:

- `RedisServer`: `redis-server` without persistence (`--save "" --appendonly no`) in a temp
  dir, which can be killed and started again on the SAME port (it comes back empty, as a
  Redis without persistence does). Never the machine's Redis on 6379.
- `TempPostgres`: `initdb` into a temp dir and `pg_ctl start` on a free port (as `postgres`
  through `runuser` when run as root: initdb refuses root), one database `portcullis`. Never the
  machine's shared PostgreSQL.
- `Cluster`: N gateways (`node-a`, `node-b`, ...) made from ONE config template; only
  `[server]` ports and `node_id` differ between them, the management secret is shared. Each node
  is a `PushStack` (connect as a principal, signed raw calls) over its own `Gateway`; all share
  one recording `Backend` and one principal webhook.

On failure every node's log (and Redis's) is copied to tests/artifacts/<test>/ and the tails are
printed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from conftest import ARTIFACTS, TIMEOUT, Backend, Gateway, free_port, wait_until
from push_world import ADMIN_KEY_ID, ADMIN_SECRET, PrincipalWebhook, PushStack

NODE_IDS = ("node-a", "node-b", "node-c")
HEARTBEAT = "1s"

CLUSTER_SECTION = """
[cluster]
redis = "{redis_url}"
node_id = "{node_id}"
heartbeat = "{heartbeat}"
"""

# The push world (push_world.TEMPLATE) without its tiny caps, as a cluster: principals come from
# `?user=`, the chat API records every event in the shared backend.
PUSH_TEMPLATE = (
    """\
[server]
listen = "127.0.0.1:{ws_port}"
admin_listen = "127.0.0.1:{admin_port}"
connect_rate_per_ip = 0  # every node's clients connect from 127.0.0.1, dozens at once

[management]
region = "{region}"
credentials = [
  {{ access_key_id = "{akid}", secret_access_key = "{secret}" }},
  {{ access_key_id = "{admin_akid}", secret_access_key = "{admin_secret}", scopes = ["admin"] }},
]

[websocket.chat]
stage = "{stage}"
authorizer = "who"

[websocket.chat.routes]
"$connect"    = {{ integration = "backend" }}
"$disconnect" = {{ integration = "backend" }}
"$default"    = {{ integration = "backend" }}

[integrations.backend]
type = "http"
url = "{backend_url}"
timeout = "5s"

[authorizers.who]
type = "request"
url = "{webhook_url}"
identity_source = ["route.request.querystring.user"]
cache_ttl = "0s"
"""
    + CLUSTER_SECTION
)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


# ---- Redis ------------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of the test's own, without persistence, stoppable and restartable on the
    same port."""

    def __init__(self, workdir: Path, tls: bool = False) -> None:
        self.tls = tls
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server)")
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://localhost:{self.port}"
        return f"redis://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """With `tls`: the private CA that signed the server's certificate."""
        return self.dir / "ca.pem"

    def _make_certificates(self) -> list[str]:
        """A private CA and a certificate for localhost/127.0.0.1 signed by it; the
        redis-server arguments that serve TLS only, with it."""
        d = self.dir
        if not (d / "server.pem").exists():
            def openssl(*args: str) -> None:
                subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                    "-subj", "/CN=portcullis test CA")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
            (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
            openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(d / "server.pem"), "--tls-key-file", str(d / "server.key"),
            "--tls-ca-cert-file", str(d / "ca.pem"), "--tls-auth-clients", "no",
        ]

    def start(self) -> "RedisServer":
        assert self.proc is None or self.proc.poll() is not None, "redis-server is already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                    "--daemonize", "no", "--protected-mode", "yes",
                    *(self._make_certificates() if self.tls else []),
                ],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        # The port was free a moment ago; a restart may briefly find the old socket in TIME_WAIT
        # (redis sets SO_REUSEADDR, so it binds).
        wait_until(self._answers, what=f"redis-server on {self.port} answering PING")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: Redis is gone at once, with everything it held."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def command(self, *args: str) -> Any:
        """One command in RESP; simple answers only (status, error, integer, bulk string,
        array of bulk strings), enough to look inside."""
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a.encode()
            parts.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
            s = raw
            if self.tls:
                context = ssl.create_default_context(cafile=str(self.ca_file))
                s = context.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"".join(parts))
            f = s.makefile("rb")
            return _read_resp(f)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _read_resp(f) -> Any:
    line = f.readline().rstrip(b"\r\n")
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise AssertionError(f"redis error: {rest}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:n]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise AssertionError(f"unexpected redis answer {line!r}")


# ---- PostgreSQL -------------------------------------------------------------------------------


class TempPostgres:
    """initdb into a temp dir, a server on a free loopback port, one database `portcullis`."""

    def __init__(self) -> None:
        initdb, pg_ctl, createdb = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("createdb")
        if not (initdb and pg_ctl and createdb):
            raise AssertionError("initdb/pg_ctl/createdb not found (apt-get install postgresql)")
        self.initdb, self.pg_ctl, self.createdb = initdb, pg_ctl, createdb
        self.as_postgres = os.geteuid() == 0
        # Not under pytest's tmp_path: the `postgres` user must be able to reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="portcullis-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/portcullis"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> "TempPostgres":
        if self.as_postgres:
            shutil.chown(self.dir, user="postgres")
        out = self._run(
            self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"
        )
        assert out.returncode == 0, f"initdb: {out.stdout}\n{out.stderr}"
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        out = self._run(self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.log_path), "-w", "start")
        assert out.returncode == 0, f"pg_ctl start: {out.stdout}\n{out.stderr}\n{self.log_tail()}"
        out = self._run(self.createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "portcullis")
        assert out.returncode == 0, f"createdb: {out.stdout}\n{out.stderr}"
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# ---- the cluster ----------------------------------------------------------------------------


class Node(PushStack):
    """One gateway of the cluster, with the push helpers (`connect_as`, `call`)."""

    @property
    def node_id(self) -> str:
        return self.gateway.workdir.name

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.ws_port}"

    def metric(self, name: str) -> float | None:
        """The sample `name` on this node's /metrics (summed over its labels, if it has any);
        None when the node does not export it (or does not answer)."""
        try:
            samples = self.gateway.metrics()
        except OSError:
            return None
        found = [v for k, v in samples.items() if k == name or k.startswith(name + "{")]
        return sum(found) if found else None

    def alive(self) -> bool:
        return self.gateway.proc is not None and self.gateway.proc.poll() is None

    def __repr__(self) -> str:
        return f"<Node {self.node_id} ws={self.gateway.ws_port} admin={self.gateway.admin_port}>"


class Cluster:
    """N nodes from one config template (only `[server]` ports and `node_id` differ)."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        redis: RedisServer,
        backend: Backend,
        template: str = PUSH_TEMPLATE,
        nodes: int = 3,
        env: dict[str, str] | None = None,
        **values: Any,
    ) -> None:
        self.redis = redis
        self.backend = backend
        self.webhook = PrincipalWebhook().start()
        self.secret = "pytest-" + secrets.token_hex(16)
        self.nodes: list[Node] = []
        for node_id in NODE_IDS[:nodes]:
            node_dir = workdir / node_id
            node_dir.mkdir(parents=True, exist_ok=True)
            gateway = Gateway(
                binary,
                node_dir,
                f"http://127.0.0.1:{backend.port}/events",
                env=env,
                template=template,
                secret=self.secret,
                webhook_url=self.webhook.url,
                admin_akid=ADMIN_KEY_ID,
                admin_secret=ADMIN_SECRET,
                redis_url=redis.url,
                node_id=node_id,
                heartbeat=HEARTBEAT,
                **values,
            )
            self.nodes.append(Node(gateway, backend))

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    def __iter__(self):
        return iter(self.nodes)

    def start(self) -> "Cluster":
        for node in self.nodes:
            node.gateway.start()
        self.wait_for_members(len(self.nodes))
        return self

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive()]

    def wait_for_members(self, n: int, timeout: float = 3 * TIMEOUT) -> None:
        """Every live node counts `n` live nodes (itself included) and sees Redis up."""

        def settled() -> bool:
            return all(
                node.metric("portcullis_cluster_nodes") == n and node.metric("portcullis_cluster_redis_up") == 1
                for node in self.live()
            )

        try:
            wait_until(settled, timeout=timeout, what=f"every live node to count {n} nodes with Redis up")
        except AssertionError as e:
            seen = {
                n.node_id: (n.metric("portcullis_cluster_nodes"), n.metric("portcullis_cluster_redis_up"))
                for n in self.live()
            }
            raise AssertionError(f"{e}; (nodes, redis_up) per node: {seen}") from None

    def finish(self, failed: bool, name: str) -> None:
        """Closes the sockets and stops every node; when `failed`, keeps the logs under
        tests/artifacts/`name`/."""
        for node in self.nodes:
            node.close_all()
        for node in self.nodes:
            gw = node.gateway
            if gw.proc is not None and gw.proc.poll() is None:
                try:
                    gw.terminate()
                except AssertionError as e:
                    print(e)
        self.webhook.stop()
        if failed:
            save_artifacts(name, [n.gateway for n in self.nodes], self.redis)


def failed(request) -> bool:
    """Whether the test of `request` failed in setup or call (conftest records the reports)."""
    return any(getattr(getattr(request.node, "rep_" + w, None), "failed", False) for w in ("setup", "call"))


def save_artifacts(
    name: str, gateways: list[Gateway], redis: RedisServer | None = None, extra: dict[str, Path] | None = None
) -> None:
    """Copies every node's log and config (and Redis's log, and `extra` files) to
    tests/artifacts/`name`/ and prints the tails."""
    dest = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    for gw in gateways:
        name = gw.workdir.name
        for f in (gw.log_path, gw.config_path):
            if f.exists():
                shutil.copy(f, dest / f"{name}-{f.name}")
        print(f"\n---- {name} log (copied to {dest}) ----\n{gw.log_tail(40)}")
    if redis is not None and redis.log_path.exists():
        shutil.copy(redis.log_path, dest / "redis.log")
    for label, path in (extra or {}).items():
        if path.exists():
            shutil.copy(path, dest / path.name)
            try:
                tail = "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            except OSError:
                tail = "(unreadable)"
            print(f"\n---- {label} (copied to {dest}) ----\n{tail}")


def pause(seconds: float) -> None:
    """A deliberate wait (e.g. for duplicates that must NOT come); never asserted on."""
    time.sleep(seconds)


# ---- nginx ----------------------------------------------------------------------------------

NGINX_SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "portcullis.conf"
# The example addresses deploy/nginx/portcullis.conf names, in node order.
SITE_PUBLIC = ("10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080")
SITE_ADMIN = ("10.0.0.11:9090", "10.0.0.12:9090", "10.0.0.13:9090")

NGINX_MAIN = """\
{user}
worker_processes 1;
error_log {prefix}/error.log info;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {site};
}}
"""


class Nginx:
    """deploy/nginx/portcullis.conf run as it is, but for its addresses: the three example nodes
    become `public`/`admin` (host:port), `listen 80` and the private admin listener become free
    loopback ports, the logs go to the prefix. One worker, so round robin is strict."""

    def __init__(self, workdir: Path, public: list[str], admin: list[str]) -> None:
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.prefix = workdir / "nginx"
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.port, self.admin_port = free_port(), free_port()
        site = NGINX_SITE.read_text()
        swaps = [(f"server {old} ", f"server {new} ") for old, new in zip(SITE_PUBLIC, public)]
        swaps += [(f"server {old} ", f"server {new} ") for old, new in zip(SITE_ADMIN, admin)]
        swaps += [
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
            ("listen 10.0.0.10:9090;", f"listen 127.0.0.1:{self.admin_port};"),
            ("/var/log/nginx/", f"{self.prefix}/"),
        ]
        for old, new in swaps:
            assert old in site, f"{NGINX_SITE} no longer has {old!r}: update cluster.Nginx"
            site = site.replace(old, new)
        (self.prefix / "portcullis.conf").write_text(site)
        self.access_log = self.prefix / "portcullis.access.log"
        self.admin_access_log = self.prefix / "portcullis-admin.access.log"
        self.error_log = self.prefix / "error.log"
        self.conf = self.prefix / "nginx.conf"
        # As root the workers would switch to `nobody`, who cannot enter pytest's temp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf.write_text(NGINX_MAIN.format(user=user, prefix=self.prefix, site=self.prefix / "portcullis.conf"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> "Nginx":
        check = subprocess.run(
            [self.binary, "-t", "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"],
            capture_output=True, text=True, timeout=30,
        )
        assert check.returncode == 0, f"nginx -t:\n{check.stderr}"
        with open(self.prefix / "stderr.log", "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )

        def listening() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{self.error_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(listening, what="nginx listening")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the access log is complete
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def upstreams(self, log: Path, pattern: str) -> list[str]:
        """The `upstream=` of every access-log line whose request matches `pattern`, in order."""
        found = []
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return found
        for line in text.splitlines():
            request = re.search(r'"([A-Z]+ [^"]*)"', line)
            upstream = re.search(r"upstream=(\S+)", line)
            if request and upstream and re.search(pattern, request.group(1)):
                found.append(upstream.group(1))
        return found

    def error_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
