"""The structure check (scripts/check-structure) that scripts/test runs: it must find import
circles between sibling modules and oversized files, and accept folders (a parent using its
children and back)."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check-structure"


def run(root):
    return subprocess.run(
        [sys.executable, str(CHECK), str(root)], capture_output=True, text=True, timeout=60
    )


def crate(tmp_path, files):
    src = tmp_path / "crates" / "demo" / "src"
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_direct_circle_between_siblings_is_reported(tmp_path):
    root = crate(tmp_path, {
        "lib.rs": "mod a;\nmod b;\n",
        "a.rs": "use crate::b::Thing;\npub struct Other;\n",
        "b.rs": "pub struct Thing;\nfn f() -> crate::a::Other { crate::a::Other }\n",
    })
    out = run(root)
    assert out.returncode == 1
    assert "import circle among crate::{a, b}" in out.stdout


def test_a_circle_through_a_grouped_use_and_a_folder_is_reported(tmp_path):
    root = crate(tmp_path, {
        "lib.rs": "mod server;\nmod web;\nmod queue;\n",
        "server.rs": "use crate::{queue::Q, web::{self, handle}};\npub struct State;\n",
        "web/mod.rs": "mod session;\npub fn handle() {}\n",
        "web/session.rs": "use super::super::server::State;\n",
        "queue.rs": "pub struct Q;\n",
    })
    out = run(root)
    assert out.returncode == 1
    assert "crate::{server, web}" in out.stdout
    assert "queue" not in out.stdout


def test_folders_tests_and_one_way_uses_are_accepted(tmp_path):
    root = crate(tmp_path, {
        "lib.rs": "mod web;\nmod reply;\npub use web::handle;\n",
        "reply.rs": "pub fn json() {}\n#[cfg(test)]\nmod tests {\n    use crate::web::handle;\n}\n",
        "web/mod.rs": "mod session;\nuse crate::reply::json;\npub fn handle() { session::run() }\n",
        "web/session.rs": "use super::handle;\npub fn run() {}\n",
        "web/tests.rs": "use crate::reply;\n",
    })
    out = run(root)
    assert out.returncode == 0, out.stdout


def test_a_file_over_the_limit_counts_only_non_test_code(tmp_path):
    code = "fn f() {}\n" * 650
    tests = "#[cfg(test)]\nmod tests {\n" + "    fn g() {}\n" * 400 + "}\n"
    root = crate(tmp_path, {"lib.rs": code + tests})
    assert run(root).returncode == 0
    root = crate(tmp_path, {"lib.rs": code * 2})
    out = run(root)
    assert out.returncode == 1
    assert "1300 lines of non-test code" in out.stdout
