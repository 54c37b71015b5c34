"""Pushes to users and rooms in a real headless Chromium (tests/browser/push.mjs).

The demo stack of examples/demo.toml on free ports (the fixture of test_browser.py) with alice
(group admins), bob and carol. The script signs them in on four tabs (bob on two: one with a
WebSocket only, one with the cookie session and its Server-Sent Events stream) and checks that
a room's message reaches its members only, that `/msg bob` reaches bob's tabs only, and that a
stream that reconnects with Last-Event-ID gets the direct message it missed. At each
`PHASE <name> [arg]` it waits while this test looks at or acts on the gateway through the
management API, signed with botocore's SigV4Auth as a backend would.
"""

from __future__ import annotations

import os
import secrets

import pytest
import requests

from conftest import TIMEOUT, sigv4_headers
from test_browser import (  # noqa: F401 (browser_tools and demo_site are fixtures)
    BROWSER_ARTIFACTS,
    _add_to_group,
    _create_user,
    _tail,
    browser_tools,
    demo_site,
    run_phased,
)

SCRIPT_TIMEOUT = 300  # seconds for the whole script; each of its waits has its own limit


def _management(demo_site, method: str, resource: str) -> requests.Response:
    url = f"http://{demo_site['env']['PORTCULLIS_ADMIN_LISTEN']}/prod/{resource}"
    # examples/demo.toml's [management] credentials
    headers = sigv4_headers(method, url, demo_site["env"]["PORTCULLIS_ADMIN_SECRET"], access_key_id="AKIDLOCAL")
    return requests.request(method, url, headers=headers, timeout=TIMEOUT)


def _transports(demo_site, user: str) -> list[str]:
    r = _management(demo_site, "GET", f"@users/{user}")
    assert r.status_code == 200, r.text
    return sorted(c["transport"] for c in r.json()["connections"])


@pytest.mark.timeout(SCRIPT_TIMEOUT + 120)
def test_pushes_reach_the_right_tabs_and_a_resumed_stream_gets_what_it_missed(
    browser_tools, demo_site, portcullis_bin
):
    env = demo_site["env"]
    users = {name: f"{name.capitalize()}-{secrets.token_hex(6)}-42" for name in ("alice", "bob", "carol")}
    for name, password in users.items():
        _create_user(portcullis_bin, env, name, password)
    _add_to_group(portcullis_bin, env, "alice", "admins")
    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script_env = {
        **os.environ,
        "PORTCULLIS_URL": demo_site["url"],
        "CHROMIUM_PATH": browser_tools["chromium"],
        "BROWSER_ARTIFACTS": str(BROWSER_ARTIFACTS),
        **{f"{name.upper()}_PASSWORD": password for name, password in users.items()},
    }
    def on_phase(phase: str, arg: str) -> None:
        if phase == "signed-in":
            # bob: a WebSocket in each tab and one stream; unknown users have none
            assert _transports(demo_site, "bob") == ["sse", "websocket", "websocket"]
            assert _transports(demo_site, "carol") == ["sse", "websocket"]
            assert _transports(demo_site, "nobody") == []
        elif phase == "drop-stream":
            # what a backend does to end one connection; the stream ends with `close` 1000
            assert _management(demo_site, "DELETE", f"@connections/{arg}").status_code == 204

    run = run_phased(browser_tools["node"], "push.mjs", script_env, SCRIPT_TIMEOUT, on_phase)
    code, seen, report = run.code, run.phases, run.report
    if code != 0:
        for name, path in demo_site["logs"].items():
            report += f"\n---- {name} log ----\n{_tail(path)}"
    assert code == 0, f"the push script failed (screenshots in {BROWSER_ARTIFACTS}):\n{report}"
    assert seen == ["signed-in", "drop-stream"], report
    for shot in ("push-1-room", "push-2-direct", "push-3-replayed"):
        assert (BROWSER_ARTIFACTS / f"{shot}.png").is_file(), f"{shot}.png was not saved"
