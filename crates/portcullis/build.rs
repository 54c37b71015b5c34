//! Records the commit the binary is built from for `portcullis --version`: the short hash from
//! `git rev-parse --short HEAD`, or `unknown` when git or the repository is missing (a
//! `cargo install` from a tarball).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Rebuild when the file exists and changes; a missing path is not named (cargo would rerun
/// the script on every build).
fn watch(path: &str) {
    if Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    if commit.is_some() {
        // HEAD moves on checkout; the branch it points to moves on commit (a loose ref, or
        // packed-refs after `git gc`).
        if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
            watch(&head);
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(r) = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
        {
            watch(&r);
        }
        if let Some(packed) = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "packed-refs",
        ]) {
            watch(&packed);
        }
    }
    let commit = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PORTCULLIS_COMMIT={commit}");
}
