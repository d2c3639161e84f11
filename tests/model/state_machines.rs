//! The tests: both state machines for every element type.

use std::sync::atomic::{AtomicUsize, Ordering};

use compressed_image::f16;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

use crate::TestResult;
use crate::harness::{run_channel, run_image};
use crate::ops::{channel_case, image_case};

/// Run a case in a thread of its own, so that no per-thread state (such as cached
/// compression contexts) carries over from earlier cases: a failure replays on its own.
pub fn in_fresh_thread(case: impl FnOnce() -> TestResult + Send) -> TestResult {
    std::thread::scope(|s| s.spawn(case).join())
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// 64 cases per test unless `PROPTEST_CASES` says otherwise.
pub fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    // Failures are kept in this folder and replayed first by every later run.
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/model/proptest-regressions.txt"
    ))));
    config
}

/// Run `test` on the cases `strategy` generates, each in a fresh thread, shrinking a
/// failure to a minimal case; then print how many cases and operations ran.
pub fn run_cases<S>(
    what: &str,
    strategy: S,
    ops: fn(&S::Value) -> usize,
    test: fn(&S::Value) -> TestResult,
) where
    S: Strategy,
    S::Value: Send + Sync,
{
    let cases = AtomicUsize::new(0);
    let operations = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |case| {
        cases.fetch_add(1, Ordering::Relaxed);
        operations.fetch_add(ops(&case), Ordering::Relaxed);
        in_fresh_thread(|| test(&case))
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    println!(
        "model [{what}]: {} cases, {} operations",
        cases.into_inner(),
        operations.into_inner()
    );
}

macro_rules! model_tests {
    ($($module:ident: $t:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn image_matches_model() {
                let what = concat!(stringify!($module), " image");
                run_cases(what, image_case(), |c| c.ops.len(), run_image::<$t>);
            }

            #[test]
            fn channel_matches_model() {
                let what = concat!(stringify!($module), " channel");
                run_cases(what, channel_case(), |c| c.ops.len(), run_channel::<$t>);
            }
        }
    )*};
}

model_tests!(
    dtype_u8: u8,
    dtype_i8: i8,
    dtype_u16: u16,
    dtype_i16: i16,
    dtype_u32: u32,
    dtype_i32: i32,
    dtype_f16: f16,
    dtype_f32: f32,
    dtype_f64: f64,
);
