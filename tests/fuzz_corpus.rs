//! Replays the curated fuzz seeds in `fuzz/seeds/<target>/` through the same harness the
//! cargo-fuzz targets run (`fuzz/harness/`, included here by path), so every input that
//! once found a bug, or that reaches deep into the format, is checked by a plain
//! `cargo test` without libFuzzer or a nightly toolchain. A seed passes when the harness
//! returns without panicking; a missing or empty seed folder fails the test.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "../fuzz/harness/mod.rs"]
mod harness;

/// The seed files of `target`, sorted; panics when there are none.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed folder {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("seed folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "seed folder {} holds no seeds",
        dir.display()
    );
    files
}

/// Run `harness` on every seed of `target`, naming the seed that fails.
fn replay(target: &str, harness: fn(&[u8])) {
    let start = Instant::now();
    let files = seeds(target);
    for path in &files {
        let data = std::fs::read(path).expect("read seed");
        let result = std::panic::catch_unwind(|| harness(&data));
        if let Err(panic) = result {
            eprintln!("{target} seed {} failed", path.display());
            std::panic::resume_unwind(Box::new(format!(
                "{target} seed {} failed: {}",
                path.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)")
            )));
        }
    }
    eprintln!(
        "{target}: {} seeds replayed in {:.2?}",
        files.len(),
        start.elapsed()
    );
}

#[test]
fn open_read_seeds_never_panic() {
    replay("open_read", harness::open_read);
}

#[test]
fn open_mutated_seeds_never_panic() {
    replay("open_mutated", harness::open_mutated);
}

#[test]
fn ops_faults_seeds_never_panic() {
    replay("ops_faults", harness::ops_faults);
}

#[test]
fn import_file_seeds_never_panic() {
    replay("import_file", harness::import_file);
}

#[test]
fn the_golden_files_pass_the_read_harness_unchanged() {
    // Guards the harness itself: a valid file must pass every check, and the mutation
    // target with no edits must leave it valid.
    for (name, bytes) in harness::mutate::GOLDEN {
        let result = std::panic::catch_unwind(|| harness::open_read(bytes));
        assert!(result.is_ok(), "golden file {name} fails the read harness");
    }
    for index in 0..harness::mutate::GOLDEN.len() as u8 {
        // Recompute CRCs and lengths (a no-op on a valid file), then write and read back.
        harness::open_mutated(&[index, 0b1011]);
    }
}
