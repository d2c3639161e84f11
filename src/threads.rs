//! The thread count a handle works with, settable through `&self`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Argument, Error, Result};

/// A handle's thread count (at least 1). Cloning a handle copies the count: the clone's
/// count is independent from then on.
#[derive(Debug)]
pub(crate) struct ThreadCount(AtomicUsize);

impl ThreadCount {
    /// The default count: the machine's available parallelism.
    pub(crate) fn machine() -> ThreadCount {
        ThreadCount::from(available_parallelism())
    }

    /// The current count.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Set the count.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 (the count is then unchanged).
    pub(crate) fn set(&self, threads: usize) -> Result {
        if threads == 0 {
            return Err(Error::invalid(Argument::ThreadCount, 0, "at least 1"));
        }
        self.0.store(threads, Ordering::Relaxed);
        Ok(())
    }
}

impl From<usize> for ThreadCount {
    /// A count of `threads`, which the caller has checked to be at least 1.
    fn from(threads: usize) -> ThreadCount {
        ThreadCount(AtomicUsize::new(threads.max(1)))
    }
}

impl Clone for ThreadCount {
    fn clone(&self) -> ThreadCount {
        ThreadCount::from(self.get())
    }
}

/// The machine's available parallelism (1 when unknown), read once: on Linux the standard
/// library reads the process's cgroup files for it, several microseconds per call, which
/// every handle creation and open would otherwise pay.
pub(crate) fn available_parallelism() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// How many chunks a whole-channel operation with `threads` threads works on at once: the
/// count, capped at rayon's global pool, which runs them (at least 1).
pub(crate) fn chunk_parallelism(threads: usize) -> usize {
    threads.min(rayon::current_num_threads()).max(1)
}
