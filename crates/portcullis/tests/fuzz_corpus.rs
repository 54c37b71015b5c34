//! The fuzz targets' committed corpora (`fuzz/corpus/TARGET/`) as a regression suite: every
//! file goes through the same function libFuzzer drives (`fuzz/src/TARGET.rs`), on the
//! stable toolchain, in the normal test run. A crash found by `fuzz/run.sh` is fixed and its
//! input committed to the corpus, so it stays fixed.

#[allow(dead_code, clippy::all)]
#[path = "../../../fuzz/src/lib.rs"]
mod fuzz;

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_fuzz_target_has_a_committed_seed_corpus() {
    for (target, _) in fuzz::TARGETS {
        let files = std::fs::read_dir(corpus_dir(target))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(files > 0, "fuzz/corpus/{target}/ has no seed inputs");
    }
}

#[test]
fn every_committed_corpus_input_passes_its_fuzz_target() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, run) in fuzz::TARGETS {
        let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            replayed += 1;
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(replayed > 0, "no corpus input found");
    assert!(
        failures.is_empty(),
        "inputs that fail their target: {failures:#?}"
    );
}

#[test]
fn the_fuzz_script_and_manifest_name_every_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    for (target, _) in fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target}"
        );
        assert!(
            root.join("fuzz_targets")
                .join(format!("{target}.rs"))
                .exists(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
}
