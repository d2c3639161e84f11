//! [`Progress`]: how a caller watches, and cancels, a long operation.
//!
//! The library never draws anything: a command-line tool shows a progress bar from these
//! calls, a GUI a dialog, a server a log line.

use std::ops::ControlFlow;

use crate::error::{Error, Result};

/// An observer of one long operation, passed to the `*_with_progress` variant of the
/// method: compaction, `save_as`, verification, whole-channel decompression, adding a
/// channel from data, importing an image file
/// ([`read_with_progress`](crate::AnyImage::read_with_progress)), exporting one
/// ([`write_with_progress`](crate::AnyImage::write_with_progress)) and writing a preview
/// ([`preview_with_progress`](crate::AnyImage::preview_with_progress)).
///
/// The operation calls [`start`](Self::start) once with its total amount of work in bytes,
/// then [`advance`](Self::advance) as parts of it are done, from one thread or, for
/// parallel work, from several at once; when it completes, the amounts passed to `advance`
/// add up to exactly the total. [`finish`](Self::finish) follows once, whether the
/// operation succeeded, failed or was cancelled. An operation that fails before it starts
/// its work (a bad argument, a read-only handle) calls none of them.
///
/// Returning [`ControlFlow::Break`] from `advance` cancels the operation: it stops at the
/// next safe point and returns [`Error::Cancelled`]. What a cancelled operation leaves is
/// said on each method; a cancelled compaction, `save_as`, import into a file, export or
/// preview leaves every file as it was and no temporary file behind. `advance` may be
/// called with 0 at such a point, to ask whether to go on.
///
/// Every method has a default that does nothing, so an observer implements only what it
/// needs:
///
/// ```
/// use std::ops::ControlFlow;
/// use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
/// use compressed_image::{Channel, Progress, Settings};
///
/// /// Counts the bytes done; cancels once `stop` is set (say, by a Ctrl-C handler).
/// #[derive(Default)]
/// struct Watch {
///     done: AtomicU64,
///     stop: AtomicBool,
/// }
///
/// impl Progress for Watch {
///     fn advance(&self, n: u64) -> ControlFlow<()> {
///         self.done.fetch_add(n, Ordering::Relaxed);
///         if self.stop.load(Ordering::Relaxed) {
///             ControlFlow::Break(())
///         } else {
///             ControlFlow::Continue(())
///         }
///     }
/// }
///
/// # fn main() -> compressed_image::Result {
/// let data: Vec<f32> = (0..256 * 256).map(|i| i as f32).collect();
/// let channel = Channel::new(&data, 256, 256, Settings::default())?;
/// let watch = Watch::default();
/// let mut out = vec![0.0f32; data.len()];
/// channel.decompress_into_with_progress(&mut out, &watch)?;
/// assert_eq!(watch.done.into_inner(), 256 * 256 * 4);
/// # Ok(()) }
/// ```
pub trait Progress: Sync {
    /// The operation starts: `what` names it (`"compact"`, `"save_as"`, `"verify"`,
    /// `"decompress"`, `"compress"`, `"import"`, `"export"`, `"preview"`), `total` is its
    /// work in bytes (see each method).
    fn start(&self, what: &str, total: u64) {
        let _ = (what, total);
    }

    /// `n` more bytes are done. [`ControlFlow::Break`] cancels the operation.
    fn advance(&self, n: u64) -> ControlFlow<()> {
        let _ = n;
        ControlFlow::Continue(())
    }

    /// The operation ended (completed, failed or cancelled).
    fn finish(&self) {}
}

/// The observer that watches nothing and never cancels: what the methods without
/// `_with_progress` pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// One running operation's observer: `start` was called, `finish` is called on drop.
pub(crate) struct Tracker<'a> {
    observer: &'a dyn Progress,
}

impl<'a> Tracker<'a> {
    /// Report the start of `what`, `total` bytes of work.
    pub(crate) fn start(observer: &'a dyn Progress, what: &str, total: u64) -> Tracker<'a> {
        observer.start(what, total);
        Tracker { observer }
    }

    /// Report `n` more bytes done; [`Error::Cancelled`] if the observer asks to stop.
    pub(crate) fn advance(&self, n: u64) -> Result {
        match self.observer.advance(n) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Cancelled),
        }
    }

    /// [`advance`](Self::advance) by a length in bytes.
    pub(crate) fn advance_len(&self, n: usize) -> Result {
        self.advance(n as u64)
    }

    /// A point where the operation can still stop: [`Error::Cancelled`] if asked to.
    pub(crate) fn checkpoint(&self) -> Result {
        self.advance(0)
    }
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        self.observer.finish();
    }
}
