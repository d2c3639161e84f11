//! The shared test kit: what the integration tests and the fuzz harness (`fuzz/harness/`,
//! which includes this folder by `#[path]`) all need, kept once.
//!
//! * [`format`]: the on-disk structures of `format/SPEC.md` — a strict parser of pristine
//!   files, a lenient slot decoder and record scanner for damaged ones, field offsets, and
//!   the patchers that recompute CRCs after an edit.
//! * [`rng`]: the one seeded generator (xorshift64*) and deterministic noise.
//! * [`fault`]: a `Backend` wrapper that fails chosen writes, `set_len` calls or fsyncs.
//! * [`child`]: running this test binary again as a child process on one test.
//! * [`model`]: the in-memory model of what a channel and an image hold.
//!
//! `python.rs` (the Python interpreter for independent cross-checks) sits beside them but
//! is included by `#[path]` only where needed, as it reads variables Cargo sets for tests.
//!
//! Each test target includes the whole kit but uses only part of it; the rest would be
//! reported as dead code in that target, hence the `allow` below.

#![allow(dead_code, unused_macros)]

#[macro_use]
pub mod child;
pub mod fault;
pub mod format;
pub mod model;
pub mod rng;

/// Whether the long runs were asked for (`CIMG_LONG=1`).
pub fn long_run() -> bool {
    std::env::var("CIMG_LONG").is_ok_and(|v| v == "1")
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Bytes compared by value but printed as length and CRC, so failures stay readable.
#[derive(Clone, PartialEq)]
pub struct Digest(pub Vec<u8>);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let crc = format::crc32(&self.0);
        write!(f, "<{} bytes, crc32 {crc:08x}>", self.0.len())
    }
}
