"""The systemd unit in deploy/: it loads as systemd would load it, and stays hardened.

`systemd-analyze verify` checks every directive and the ExecStart binary; `security --offline`
scores the sandboxing the way `systemd-analyze security portcullis` does on a host (lower is
safer; docs/deployment.md promises 1.5, "OK"; dropping a protection raises it). A directive
dropped or misspelled by an edit fails here instead of on a user's server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

UNIT = REPO / "deploy" / "portcullis.service"


def _unit_for(binary: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at the binary built here (not /usr/local/bin)."""
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/portcullis " in text
    unit = tmp_path / "portcullis.service"
    unit.write_text(text.replace("/usr/local/bin/portcullis", str(binary)))
    return unit


@pytest.fixture
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing (Debian: package systemd)")
    return path


def test_systemd_unit_verifies(analyze: str, portcullis_bin: Path, tmp_path: Path) -> None:
    unit = _unit_for(portcullis_bin, tmp_path)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # Unknown or misspelled directives are warnings on stderr, not a non-zero exit.
    assert "Unknown" not in result.stderr and "ignoring" not in result.stderr, result.stderr


def test_systemd_unit_is_hardened(analyze: str, portcullis_bin: Path, tmp_path: Path) -> None:
    unit = _unit_for(portcullis_bin, tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for portcullis\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5, result.stdout
    # Not root, and nothing writable but the state directory.
    text = unit.read_text()
    assert re.search(r"^User=portcullis$", text, re.M)
    assert re.search(r"^ProtectSystem=strict$", text, re.M)
