"""`/readyz` follows the identity store: a node whose PostgreSQL stops answering reports 503 and
names the store, keeps its open sockets, and is ready again, without a restart, once the
database is back. (Redis outages are covered by the Rust end-to-end tests.)
"""

from __future__ import annotations

import requests
import websockets.sync.client

from cluster import TempPostgres
from conftest import CONFIG_TEMPLATE, TIMEOUT, Backend, Gateway, wait_until

TEMPLATE = (
    CONFIG_TEMPLATE
    + """
[store]
url = "{store_url}"

[pools.main]
password_policy = {{ min_length = 12 }}
"""
)


def readyz(gateway: Gateway) -> tuple[int, dict]:
    r = requests.get(f"{gateway.admin_url}/readyz", timeout=TIMEOUT)
    return r.status_code, r.json()


def test_readyz_follows_the_postgres_store(portcullis_bin, tmp_path):
    pg = TempPostgres()
    backend = Backend().start()
    gateway = None
    try:
        pg.start()
        gateway = Gateway(
            portcullis_bin, tmp_path, f"http://127.0.0.1:{backend.port}/events",
            template=TEMPLATE, store_url=pg.url,
        ).start()
        status, body = readyz(gateway)
        assert (status, body.get("status")) == (200, "ready"), body

        with websockets.sync.client.connect(gateway.ws_url, open_timeout=TIMEOUT) as socket:
            socket.send('{"action":"whoami"}')
            socket.recv(timeout=TIMEOUT)

            # The database goes away: the node says which dependency failed.
            pg._run(pg.pg_ctl, "-D", str(pg.data), "-m", "immediate", "stop")
            body = wait_until(
                lambda: (lambda s, b: b if s == 503 else None)(*readyz(gateway)),
                timeout=3 * TIMEOUT,
                what="/readyz 503 with the store down",
            )
            assert body["status"] == "unavailable", body
            assert body["failed"] == ["store"], body
            assert body["dependencies"]["store"] != "ok", body
            # Liveness is not readiness: the process is fine, and its open socket still works.
            assert requests.get(f"{gateway.admin_url}/healthz", timeout=TIMEOUT).status_code == 200
            socket.send('{"action":"whoami"}')
            socket.recv(timeout=TIMEOUT)

            # Back on the same port: ready again without a restart.
            opts = f"-p {pg.port} -k {pg.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            out = pg._run(pg.pg_ctl, "-D", str(pg.data), "-o", opts, "-l", str(pg.log_path), "-w", "start")
            assert out.returncode == 0, out.stderr
            wait_until(
                lambda: readyz(gateway)[0] == 200, timeout=6 * TIMEOUT, what="/readyz 200 again"
            )
    finally:
        if gateway is not None:
            gateway.terminate()
        backend.stop()
        pg.stop()
