//! A progress observer that logs every call, in order, and can cancel at a chosen call of
//! `advance`; with the checks every observed operation must pass: `start` once and
//! first, `finish` once and last.
//!
//! Included by `#[path]` (as `progress_log`) by the image file tests, not through
//! `common/mod.rs`.

use std::ops::ControlFlow;
use std::sync::Mutex;

use compressed_image::Progress;

/// One call an operation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Start(String, u64),
    Advance(u64),
    Finish,
}

/// How many of `calls` are `advance`.
fn advances_in(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| matches!(c, Call::Advance(_)))
        .count()
}

/// Logs the calls of one operation.
#[derive(Debug, Default)]
pub struct ProgressLog {
    /// The call of `advance` (counting from 1) that returns `Break`, if any.
    cancel_at: Option<usize>,
    calls: Mutex<Vec<Call>>,
}

impl ProgressLog {
    /// A log that never cancels.
    pub fn new() -> ProgressLog {
        ProgressLog::default()
    }

    /// A log that cancels at call `n` (counting from 1) of `advance`.
    pub fn cancelling_at(n: usize) -> ProgressLog {
        ProgressLog {
            cancel_at: Some(n),
            calls: Mutex::default(),
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// How many times `advance` was called.
    pub fn advances(&self) -> usize {
        advances_in(&self.calls())
    }

    /// Check an ended operation: one `start`, first; one `finish`, last. Returns what
    /// started, its total and the sum of the advances.
    pub fn ended(&self) -> (String, u64, u64) {
        let calls = self.calls();
        let (Some(Call::Start(what, total)), Some(Call::Finish)) = (calls.first(), calls.last())
        else {
            panic!("not started first and finished last: {calls:?}");
        };
        let inner = &calls[1..calls.len() - 1];
        let advanced = inner
            .iter()
            .map(|c| match c {
                Call::Advance(n) => *n,
                other => panic!("{other:?} between start and finish: {calls:?}"),
            })
            .sum();
        (what.clone(), *total, advanced)
    }

    /// Check a completed operation: it [`ended`](Self::ended), started as `what`, and
    /// its advances add up to its total, which is returned.
    pub fn completed(&self, what: &str) -> u64 {
        let (name, total, advanced) = self.ended();
        assert_eq!(name, what);
        assert_eq!(advanced, total, "advances of {what}");
        total
    }

    /// Whether the operation made no call at all.
    pub fn is_silent(&self) -> bool {
        self.calls().is_empty()
    }
}

impl Progress for ProgressLog {
    fn start(&self, what: &str, total: u64) {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Call::Start(what.to_string(), total));
    }

    fn advance(&self, n: u64) -> ControlFlow<()> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Call::Advance(n));
        if self.cancel_at == Some(advances_in(&calls)) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn finish(&self) {
        self.calls.lock().unwrap().push(Call::Finish);
    }
}
