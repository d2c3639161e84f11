//! Fuzz target `import_file`; the harness (shared with `tests/fuzz_corpus.rs`) is in
//! `fuzz/harness/`, and `fuzz/README.md` describes the input format and how to run it.

#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::import_file(data));
