//! Model-based tests: proptest generates random sequences of 1–40 operations on an image
//! (anonymous from `Image::new`/`Image::from_channels`, or a file from `Image::create`) or on
//! a standalone `Channel<T>` (anonymous or a file), applies each to the library and to a
//! plain in-memory model (ordered channels of raw chunk bytes with a lazy flag, names and
//! JSON metadata), and after every operation compares everything the handles can observe
//! with the model, bit for bit: every chunk, the whole channel and row windows, lazy flags,
//! geometry and settings, names and metadata, `compressed_bytes` (a lazy chunk counts one
//! element, a blob the length the same bytes compress to with the same settings in a fresh
//! thread), the live/dead space accounting of SPEC §12 record by record, and a clean
//! `verify()`. The operations are chunk writes (random, compressible, constant — which must
//! be stored lazily, NaN payloads, −0.0 and f16 specials included — and short last chunks),
//! batches committed or dropped, `update_chunks` over a random subset, adding and removing
//! channels (removed handles must return `ChannelRemoved`), names, metadata, `sync`,
//! dropping and reopening the file, read-only handles that keep their snapshot until
//! `refresh`, compaction, `save_as` copies, durability and automatic compaction, and invalid
//! calls that must fail with the documented error and change nothing (not even the file's
//! bytes). Every element type runs the image and the channel state machines.
//!
//! The default run keeps CI short (64 cases per state machine and element type);
//! `PROPTEST_CASES=2000 cargo test --release --test model` runs a long one; each test prints
//! how many cases and operations it ran. A failure is shrunk to a minimal operation
//! sequence and recorded in `tests/model/proptest-regressions.txt`, which every later run
//! replays first. Two plain tests (`regressions`) pin the first bugs the state machines
//! found.
//!
//! Here: the assertions below; `data` (element types, generated data, the model's
//! settings and stored sizes), `ops` (operations and strategies), `target` (the system
//! under test and its checks), `harness`, `apply` and `invalid` (running a case),
//! `state_machines` and `regressions` (the tests). The model itself is the shared one
//! (`tests/common/model.rs`).

use proptest::prelude::*;

#[path = "../common/mod.rs"]
mod common;

type TestResult<V = ()> = Result<V, TestCaseError>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!(
                "{}: `{}` is false",
                format!($($fmt)+),
                stringify!($cond)
            )));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(TestCaseError::fail(format!(
                "{}: {} = {:?}, expected {} = {:?}",
                format!($($fmt)+),
                stringify!($a),
                a,
                stringify!($b),
                b
            )));
        }
    }};
}

/// `$e` (a `Result`) must be an `Err` matching `$p`.
macro_rules! expect_err {
    ($e:expr, $p:pat, $($fmt:tt)+) => {
        match ($e).map(|_| ()) {
            Err($p) => {}
            other => {
                return Err(TestCaseError::fail(format!(
                    "{}: `{}` gave {:?}, expected Err({})",
                    format!($($fmt)+),
                    stringify!($e),
                    other,
                    stringify!($p)
                )))
            }
        }
    };
}

/// Library errors where success was expected become test failures.
trait Ctx<V> {
    fn ctx(self, what: &str) -> TestResult<V>;
}

impl<V> Ctx<V> for compressed_image::Result<V> {
    fn ctx(self, what: &str) -> TestResult<V> {
        self.map_err(|e| TestCaseError::fail(format!("{what}: unexpected error {e:?} ({e})")))
    }
}

/// Byte-exact comparison that names the first differing byte.
fn same_bytes(got: &[u8], want: &[u8], what: &str) -> TestResult {
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!(
            "{what}: {} bytes, expected {}",
            got.len(),
            want.len()
        )));
    }
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        return Err(TestCaseError::fail(format!(
            "{what}: byte {at} is {:#04x}, expected {:#04x} (of {})",
            got[at],
            want[at],
            got.len()
        )));
    }
    Ok(())
}

mod apply;
mod data;
mod harness;
mod invalid;
mod ops;
mod regressions;
mod state_machines;
mod target;
