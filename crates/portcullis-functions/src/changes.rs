//! Pure rules of code changes: which paths under a function's `code` directory are not code
//! (files the runtimes and editors write), and the fingerprint of a tree that stands in for
//! change notifications when the directory cannot be watched. The watching is in `watch`.

use std::ffi::OsStr;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Whether a change of `relative` (a path inside a code directory) is noise: Python's byte
/// code (`__pycache__/`, `*.pyc`), Git's own files (`.git/`), and editor temporaries (`*.swp`,
/// `*.swx`, `*~`, `.#*`).
pub(crate) fn is_noise(relative: &Path) -> bool {
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        let Component::Normal(name) = component else {
            continue;
        };
        if name == OsStr::new("__pycache__") || name == OsStr::new(".git") {
            return true;
        }
        if components.peek().is_none() {
            let name = name.to_string_lossy();
            return name.ends_with(".pyc")
                || name.ends_with(".swp")
                || name.ends_with(".swx")
                || name.ends_with('~')
                || name.starts_with(".#");
        }
    }
    false
}

/// What the fingerprint of a tree takes from each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative to the code directory.
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
    pub(crate) dir: bool,
}

/// One number for a tree listed in a fixed order: it changes when a file is added, removed,
/// renamed, resized or rewritten (its mtime moves). Noise entries are left out.
pub(crate) fn fingerprint(entries: &[Entry]) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut count = 0u64;
    for entry in entries.iter().filter(|e| !is_noise(&e.path)) {
        entry.path.hash(&mut hasher);
        entry.len.hash(&mut hasher);
        entry.modified.hash(&mut hasher);
        entry.dir.hash(&mut hasher);
        count += 1;
    }
    count.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn runtime_and_editor_files_are_noise() {
        for path in [
            "__pycache__/app.cpython-311.pyc",
            "pkg/__pycache__/x.pyc",
            "pkg/__pycache__",
            "old.pyc",
            ".app.py.swp",
            ".app.py.swx",
            "app.py~",
            ".#app.py",
            ".git/index",
            "sub/.git/HEAD",
        ] {
            assert!(is_noise(Path::new(path)), "{path}");
        }
        for path in [
            "app.py",
            "pkg/module.py",
            "index.mjs",
            "package.json",
            "bootstrap",
            "data/config.yaml",
            "pycache.py",
            "swp",
            "",
        ] {
            assert!(!is_noise(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn the_fingerprint_moves_with_code_and_not_with_noise() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let entry = |path: &str, len: u64, modified: SystemTime| Entry {
            path: PathBuf::from(path),
            len,
            modified: Some(modified),
            dir: false,
        };
        let base = vec![entry("app.py", 10, t), entry("lib.py", 20, t)];
        let f = fingerprint(&base);
        assert_eq!(f, fingerprint(&base.clone()));

        let mut noisy = base.clone();
        noisy.push(entry("__pycache__/app.cpython-311.pyc", 99, t));
        noisy.push(entry(".app.py.swp", 1, t));
        assert_eq!(fingerprint(&noisy), f);

        let mut resized = base.clone();
        resized[0].len = 11;
        assert_ne!(fingerprint(&resized), f);
        let mut touched = base.clone();
        touched[1].modified = Some(t + Duration::from_nanos(1));
        assert_ne!(fingerprint(&touched), f);
        let mut renamed = base.clone();
        renamed[1].path = PathBuf::from("lib2.py");
        assert_ne!(fingerprint(&renamed), f);
        assert_ne!(fingerprint(&base[..1]), f);
        let mut added = base;
        added.push(entry("new.py", 0, t));
        assert_ne!(fingerprint(&added), f);
    }
}
