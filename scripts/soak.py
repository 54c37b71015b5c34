"""Soak run (TARGETS.md R6), started by scripts/soak: see `scripts/soak --help`.

A release gateway, a backend (scripts/soak_backend.py: some slow answers, some 500s, some past
the integration timeout), a JWT authorizer whose token comes in the query string or in a
cookie, a population of idle connections held by `portcullis-load idle`, and churn from this
process: connect, a few messages, `@connections` pushes, close, again. SIGHUP reloads mid-run
when the gateway has live reload. Every few seconds: the gateway's RSS and open files. At the
end: a CSV, a PNG, a summary, and a non-zero exit if a goal failed.
"""

import argparse
import asyncio
import base64
import csv
import datetime
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCESS_KEY = "AKIDSOAK"
SECRET = "soak-secret-key-0123456789abcdef"
STAGE = "prod"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def read_proc(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of `pid`."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def metrics(admin: str) -> dict[str, float]:
    out = {}
    for line in http_get(f"{admin}/metrics").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def gateway_config(port: int, admin_port: int, backend: str, issuer: str) -> str:
    return f"""# written by scripts/soak
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin_port}"
max_connections_per_ip = 1000000
# One address opens every connection here: the per-address rates would refuse the load.
connect_rate_per_ip = 0
upstream_idle_timeout = "5s"

[management]
region = "{REGION}"
credentials = [{{ access_key_id = "{ACCESS_KEY}", secret_access_key = "{SECRET}" }}]

[websocket.soak]
path = "/soak"
stage = "{STAGE}"
authorizer = "users"
route_selection_expression = "$request.body.action"
idle_timeout = "1h"
message_rate = 0

[websocket.soak.routes]
"$connect" = {{ integration = "lifecycle" }}
"$disconnect" = {{ integration = "lifecycle" }}
"$default" = {{ integration = "backend", response = true }}

# Messages: a short timeout, which the backend's "hang" answers exceed on purpose.
[integrations.backend]
type = "http"
url = "{backend}/events"
timeout = "2s"

# $connect and $disconnect: the same backend with the default timeout, so that 8,000
# $disconnect events at once (the idle population leaving) are all delivered.
[integrations.lifecycle]
type = "http"
url = "{backend}/events"

[authorizers.users]
type = "jwt"
identity_source = ["route.request.querystring.access_token", "route.request.cookie.session"]
issuers = [{{ issuer = "{issuer}" }}]
token_use = "access"
"""


class Stats:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.closed = 0

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


class Soak:
    def __init__(self, args, gw_url: str, admin: str, tokens: list[str]) -> None:
        self.args = args
        self.url = gw_url
        self.admin = admin
        self.tokens = tokens
        self.stats = Stats()
        self.live: dict[str, object] = {}
        self.stop = asyncio.Event()
        self.mgmt = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=f"{admin}/{STAGE}",
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
            config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=10),
        )

    async def reply(self, ws) -> str:
        """The next frame that is not a push."""
        while True:
            text = await asyncio.wait_for(ws.recv(), 15)
            if isinstance(text, str) and text.startswith("push:"):
                self.stats.add("push_received")
                continue
            return text

    async def session(self, n: int) -> None:
        token = random.choice(self.tokens)
        src = f"127.0.50.{n % 50 + 1}"
        kwargs = {"open_timeout": 15, "ping_interval": None, "close_timeout": 10}
        if n % 2:
            url, headers = f"{self.url}?access_token={token}", None
            self.stats.add("connect_jwt_query")
        else:
            url, headers = self.url, {"Cookie": f"session={token}; theme=dark"}
            self.stats.add("connect_jwt_cookie")
        if n % 97 == 0:  # a bad token now and then: refused, never connected
            url, headers = f"{self.url}?access_token=not-a-token", None
        try:
            ws = await connect(url, additional_headers=headers, local_addr=(src, 0), **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure is counted by kind
            self.stats.add(f"connect_refused:{type(e).__name__}" if n % 97 else "bad_token_refused")
            return
        if n % 97 == 0:
            self.stats.add("error:bad_token_accepted")
        key = f"s{n}"
        try:
            await ws.send(json.dumps({"action": "whoami"}))
            cid = json.loads(await self.reply(ws)).get("connectionId")
            if cid:
                self.live[key] = cid
            for _ in range(random.randint(1, 3)):
                action = random.choices(["echo", "slow", "fail", "hang"], [80, 12, 6, 2])[0]
                await ws.send(json.dumps({"action": action, "n": n}))
                text = await self.reply(ws)
                outcome = "ok" if '"n"' in text else "error"
                self.stats.add(f"reply:{action}:{outcome}")
                await asyncio.sleep(random.uniform(0.05, 0.5))
            # Stay a while, reading what is pushed meanwhile.
            end = time.monotonic() + random.uniform(0.5, self.args.hold)
            while (left := end - time.monotonic()) > 0:
                try:
                    text = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    break
                if isinstance(text, str) and text.startswith("push:"):
                    self.stats.add("push_received")
        except Exception as e:  # noqa: BLE001
            self.stats.add(f"session_error:{type(e).__name__}")
        finally:
            self.live.pop(key, None)
            await ws.close()
            self.stats.closed += 1

    async def churn(self) -> None:
        n = 0
        tasks: set[asyncio.Task] = set()
        interval = 1.0 / self.args.rate
        while not self.stop.is_set():
            if len(tasks) < self.args.clients:
                n += 1
                t = asyncio.create_task(self.session(n))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.sleep(interval)
        await asyncio.gather(*tasks, return_exceptions=True)

    def push_one(self, cid: str) -> str:
        try:
            self.mgmt.post_to_connection(ConnectionId=cid, Data=b"push:hello")
            return "push_ok"
        except self.mgmt.exceptions.GoneException:
            return "push_gone"
        except Exception as e:  # noqa: BLE001
            return f"push_error:{type(e).__name__}"

    async def pusher(self) -> None:
        while not self.stop.is_set():
            for cid in random.sample(list(self.live.values()), min(5, len(self.live))):
                self.stats.add(await asyncio.to_thread(self.push_one, cid))
            self.stats.add(await asyncio.to_thread(self.push_one, "AAAAAAAAAAAAAAAA"))
            await asyncio.sleep(0.5)


def idle_population(args, load_bin: Path, url: str, token: str, pid: int, seconds: int):
    if args.idle <= 0:
        return None
    return subprocess.Popen(
        [str(load_bin), "idle", "--url", url, "--query", f"access_token={token}",
         "--connections", str(args.idle), "--server-pid", str(pid),
         "--source-ips", "127.0.60.1-127.0.60.50", "--hold", f"{seconds}s", "--settle", "1s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def plot(rows: list[dict], png: Path, warmup: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(t, [r["rss_kib"] / 1024 for r in rows], color="tab:blue", label="RSS (MiB)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)", color="tab:blue")
    ax.axvline(warmup, color="grey", linestyle=":", label="end of warm-up")
    ax2 = ax.twinx()
    ax2.plot(t, [r["fds"] for r in rows], color="tab:orange", label="open files")
    ax2.plot(t, [r["connections"] for r in rows], color="tab:green", label="open connections")
    ax2.set_ylabel("open files / connections")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    ax.set_title("portcullis soak: RSS, open files, connections")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def summarize(rows: list[dict], warmup: float, loaded_until: float) -> dict:
    """RSS drift: the mean over the last tenth of the loaded period against the mean over
    the tenth right after warm-up."""
    loaded = [r for r in rows if warmup <= r["t"] <= loaded_until]
    k = max(1, len(loaded) // 10)
    early = sum(r["rss_kib"] for r in loaded[:k]) / k if loaded else 0
    late = sum(r["rss_kib"] for r in loaded[-k:]) / k if loaded else 0
    return {"rss_after_warmup_kib": early, "rss_end_of_load_kib": late,
            "drift_pct": (late - early) / early * 100 if early else 0.0}


async def run(args) -> int:
    out = Path(args.out or ROOT / "soak-results" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    # SOAK_PROFILE=debug runs the debug build (a quick check of the script itself).
    release = ROOT / "target" / os.environ.get("SOAK_PROFILE", "release")
    port, admin_port, backend_port = free_port(), free_port(), free_port()
    backend = f"http://127.0.0.1:{backend_port}"
    admin = f"http://127.0.0.1:{admin_port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()
    jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "soak-1", "alg": "RS256", "use": "sig",
                                 "n": b64(pub.n), "e": b64(pub.e)}]})
    now = int(time.time())
    tokens = [jwt.encode({"iss": backend, "sub": f"user-{i}", "token_use": "access",
                          "iat": now, "exp": now + 6 * 3600}, key, "RS256",
                         headers={"kid": "soak-1"}) for i in range(20)]
    be = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "soak_backend.py"),
                           str(backend_port), backend], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    be.stdin.write(jwks)
    be.stdin.close()
    be.stdout.readline()
    config = out / "gateway.toml"
    config.write_text(gateway_config(port, admin_port, backend, backend))
    log = open(out / "gateway.log", "w")
    gw = subprocess.Popen([os.environ.get("SOAK_GATEWAY", str(release / "portcullis")), "serve", "--config", str(config)],
                          stdout=log, stderr=subprocess.STDOUT)
    rows: list[dict] = []
    result = {"command": " ".join(sys.argv), "out": str(out)}
    try:
        for _ in range(200):
            try:
                http_get(f"{admin}/healthz", 1)
                break
            except OSError:
                time.sleep(0.1)
        # SIGHUP reloads the configuration (the counter appears with the first reload).
        reload_supported = True
        do_reload = not args.no_reload
        await asyncio.sleep(2)
        base_rss, base_fds = read_proc(gw.pid)
        total = args.minutes * 60
        warmup = total * 0.25
        soak = Soak(args, f"ws://127.0.0.1:{port}/soak", admin, tokens)
        idle = idle_population(args, release / "portcullis-load", soak.url, tokens[0], gw.pid,
                               int(total))
        tasks = [asyncio.create_task(soak.churn()), asyncio.create_task(soak.pusher())]
        start = time.monotonic()
        reloads = [total / 3, 2 * total / 3] if do_reload else []
        reloads_sent = 0

        def sample(phase: str) -> None:
            rss, fds = read_proc(gw.pid)
            try:
                conns = sum(v for k, v in metrics(admin).items()
                            if k.startswith("portcullis_ws_connections_open"))
            except OSError:
                conns = -1
            rows.append({"t": round(time.monotonic() - start, 1), "phase": phase,
                         "rss_kib": rss, "fds": fds, "connections": int(conns)})

        while time.monotonic() - start < total:
            if gw.poll() is not None:
                raise RuntimeError(f"gateway exited with {gw.returncode}")
            if reloads and time.monotonic() - start >= reloads[0]:
                reloads.pop(0)
                gw.send_signal(signal.SIGHUP)
                reloads_sent += 1
            sample("load")
            await asyncio.sleep(args.sample_every)
        loaded_until = time.monotonic() - start
        soak.stop.set()
        await asyncio.gather(*tasks)
        soak.mgmt.close()  # its kept-alive connection to the admin listener
        idle_report = ""
        if idle is not None:
            idle.send_signal(signal.SIGINT)
            try:
                idle_report = idle.communicate(timeout=120)[0]
            except subprocess.TimeoutExpired:
                idle.kill()
                idle_report = idle.communicate()[0]
        # Everyone has left: wait for every $disconnect, the upstream idle timeout and the
        # allocator's purge, sampling all along.
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            sample("after")
            await asyncio.sleep(args.sample_every)
        # Read before the last scrape: the scrape's own connection to the admin listener is
        # not one the gateway kept.
        final_rss, final_fds = read_proc(gw.pid)
        backend_stats = json.loads(http_get(f"{backend}/stats"))
        connects = set(backend_stats["connects"])
        disconnects = set(backend_stats["disconnects"])
        m1 = metrics(admin)
        crashed = gw.poll() is not None
        result.update(summarize(rows, warmup, loaded_until))
        result.update({
            "minutes": args.minutes, "idle_connections": args.idle, "churn_clients": args.clients,
            "baseline_rss_kib": base_rss, "baseline_fds": base_fds,
            "final_rss_kib": final_rss, "final_fds": final_fds,
            "peak_rss_kib": max(r["rss_kib"] for r in rows),
            "peak_connections": max(r["connections"] for r in rows),
            "connections_opened": len(connects),
            "disconnect_events": len(connects & disconnects),
            "disconnect_pct": len(connects & disconnects) / len(connects) * 100 if connects else 100.0,
            "duplicate_disconnects": backend_stats["duplicate_disconnects"],
            "churn_sessions_closed": soak.stats.closed,
            "client_counts": dict(sorted(soak.stats.counts.items())),
            "backend_counts": backend_stats["counts"],
            "gateway_errors": {k: v for k, v in sorted(m1.items()) if k.startswith("portcullis_errors_total")},
            "reload_supported": reload_supported, "reloads_sent": reloads_sent,
            "reloads_metric": {k: v for k, v in m1.items() if k.startswith("portcullis_config_reloads_total")},
            "crashes": int(crashed),
            "idle_load_report": idle_report.strip().splitlines()[-3:],
        })
    except Exception as e:
        result["failure"] = f"{type(e).__name__}: {e}"
        result["crashes"] = int(gw.poll() is not None)
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(30)
            except subprocess.TimeoutExpired:
                gw.kill()
        be.kill()
        log.close()
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["t", "phase", "rss_kib", "fds", "connections"])
        w.writeheader()
        w.writerows(rows)
    if rows:
        plot(rows, out / "soak.png", args.minutes * 60 * 0.25)
    result["machine"] = f"{os.cpu_count()} cores, {os.uname().release}, load {os.getloadavg()}"
    result["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    goals = {
        "rss drift < 5 %": result.get("drift_pct", 100) < 5,
        "open files back to baseline": result.get("final_fds", 1 << 30) <= result.get("baseline_fds", 0),
        "$disconnect for 100 % of connections": result.get("disconnect_pct", 0) == 100.0,
        "0 crashes": result.get("crashes", 1) == 0 and "failure" not in result,
        "every reload applied": sum(
            v for k, v in result.get("reloads_metric", {}).items() if 'result="ok"' in k
        ) == result.get("reloads_sent", 0),
    }
    result["goals"] = goals
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    for goal, ok in goals.items():
        print(f"{'PASS' if ok else 'FAIL'}  {goal}")
    return 0 if all(goals.values()) else 1


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10, help="loaded period (default 10)")
    p.add_argument("--idle", type=int, default=8000,
                   help="idle connections held all along by portcullis-load (default 8000)")
    p.add_argument("--clients", type=int, default=200,
                   help="churning connections at once from this process (default 200)")
    p.add_argument("--rate", type=float, default=100, help="new churn connections/s at most")
    p.add_argument("--hold", type=float, default=3, help="a churn connection's longest idle stay (s)")
    p.add_argument("--sample-every", type=float, default=5, help="seconds between samples")
    p.add_argument("--settle", type=float, default=40,
                   help="seconds sampled after everyone left (default 40)")
    p.add_argument("--no-reload", action="store_true", help="never send SIGHUP")
    p.add_argument("--out", help="results directory (default soak-results/<time>)")
    args = p.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
