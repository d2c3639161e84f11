//! The write side of an open file: appending records, publishing slots, syncing, and
//! poisoning after an I/O error (SPEC §10).

use std::io;

use crate::error::{Error, Result};
use crate::format::{RECORD_HEADER_LEN, RecordHeader, SLOT_PAGE, Slot, align_up, record_len};
use crate::io::{Backend, WriterLock};

/// The file grows in steps of at least this many bytes, and by at least 1/8 of its size,
/// so that mappings are renewed rarely.
const GROW_STEP: u64 = 64 * 1024;

/// When commits become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Commits are atomic and visible at once, and survive a process crash; they survive
    /// power loss once [`sync`](crate::AnyChannel::sync) returns (or the handle is dropped).
    /// A power loss before that opens at an earlier, complete commit.
    #[default]
    OnSync,
    /// Every commit is followed by a sync (one fsync per commit). If that sync fails, the
    /// call returns the I/O error and poisons the handle, but the commit was already made
    /// and is visible: its durability is unknown.
    Immediate,
}

/// How the file grows when records go past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Growth {
    /// In steps ahead of need (a file being edited), so mappings are renewed rarely.
    Preallocate,
    /// To exactly the bytes written (a copy written once).
    Exact,
}

/// What dropping the writer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDrop {
    /// Sync, best effort (a named file).
    Sync,
    /// Nothing (an anonymous file, or a writer whose role another one took over).
    Nothing,
}

/// Exclusive write access to one file. Invariants: `append_end` is 64-aligned and
/// `>= last.committed_end`; `durable_page` holds a commit all of whose bytes are durable
/// (or the file was just opened and will be synced before the first commit).
pub(crate) struct Writer {
    backend: Box<dyn Backend>,
    lock: Option<WriterLock>,
    poisoned: bool,
    /// Whether anything was written since the last successful sync.
    unsynced: bool,
    /// The newest commit and the page it is in.
    last: Slot,
    last_page: usize,
    durable_page: usize,
    /// `committed_end` of the commit in `durable_page`.
    durable_end: u64,
    /// Where the next record goes.
    append_end: u64,
    /// The file's length as this writer made it (the backend's when the writer started).
    file_len: u64,
    durability: Durability,
    on_drop: OnDrop,
    growth: Growth,
}

impl Writer {
    /// Take over a file whose newest valid commit is `last`, in slot page `page`.
    pub(crate) fn new(
        backend: Box<dyn Backend>,
        lock: Option<WriterLock>,
        last: Slot,
        page: usize,
        on_drop: OnDrop,
    ) -> Result<Writer> {
        let file_len = backend.len()?;
        Ok(Writer {
            backend,
            lock,
            poisoned: false,
            // Until this handle's first fsync, nothing it found in the file is known durable:
            // the previous writer may have died before its data left the page cache.
            unsynced: true,
            last,
            last_page: page,
            durable_page: page,
            durable_end: last.durable_end,
            append_end: align_up(last.committed_end),
            file_len,
            durability: Durability::default(),
            on_drop,
            growth: Growth::Preallocate,
        })
    }

    /// The newest commit (a virtual one of generation 0 or the compacted file's base
    /// generation before a fresh store's first commit).
    pub(crate) fn last(&self) -> Slot {
        self.last
    }

    /// The slot page of the newest commit.
    pub(crate) fn last_page(&self) -> usize {
        self.last_page
    }

    /// The file's length: every record appended so far lies below it.
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// When commits become durable.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    pub(crate) fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// How the file grows from now on.
    pub(crate) fn set_growth(&mut self, growth: Growth) {
        self.growth = growth;
    }

    /// Run an I/O call; any failure poisons the writer (after a failed write or fsync the
    /// kernel may have dropped dirty pages, so no later success can be trusted).
    fn io<T>(&mut self, result: io::Result<T>) -> Result<T> {
        result.map_err(|e| {
            self.poisoned = true;
            Error::Io(e)
        })
    }

    /// `Err(Poisoned)` after an earlier I/O error.
    pub(crate) fn check_usable(&self) -> Result {
        if self.poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Append one record at the next aligned offset; returns its offset.
    pub(crate) fn append(&mut self, header: &RecordHeader, payload: &[u8]) -> Result<u64> {
        self.check_usable()?;
        debug_assert_eq!(header.payload_len as usize, payload.len());
        let offset = self.append_end;
        let end = offset + record_len(header.payload_len);
        self.reserve(end)?;
        self.unsynced = true;
        let r = self.backend.write_all_at(&header.encode(), offset);
        self.io(r)?;
        let r = self
            .backend
            .write_all_at(payload, offset + RECORD_HEADER_LEN as u64);
        self.io(r)?;
        self.append_end = align_up(end);
        Ok(offset)
    }

    /// Grow the file so that `end` bytes exist, in steps (zero-filled, never read).
    fn reserve(&mut self, end: u64) -> Result {
        if end <= self.file_len {
            return Ok(());
        }
        if self.growth == Growth::Exact {
            self.file_len = end; // the write itself extends the file
            return Ok(());
        }
        let grown = (self.file_len + self.file_len / 8).max(end);
        let new_len = grown.div_ceil(GROW_STEP) * GROW_STEP;
        let r = self.backend.set_len(new_len);
        self.io(r)?;
        self.file_len = new_len;
        Ok(())
    }

    /// Write the slot of a new commit into the page that does not hold the durable commit.
    pub(crate) fn publish(&mut self, mut slot: Slot) -> Result {
        self.check_usable()?;
        slot.durable_end = slot.durable_end.max(self.durable_end);
        let page = 1 - self.durable_page;
        self.unsynced = true;
        let r = self
            .backend
            .write_all_at(&slot.encode(), page as u64 * SLOT_PAGE);
        self.io(r)?;
        self.last = slot;
        self.last_page = page;
        self.append_end = align_up(slot.committed_end);
        Ok(())
    }

    /// The durable end a new commit records.
    pub(crate) fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// Make every commit durable: fsync, then the newest commit's page becomes the durable
    /// one, and a marker slot (same catalog, nothing left to verify) goes to the other page
    /// so that the next open has no unsynced data to check.
    pub(crate) fn sync(&mut self) -> Result {
        self.check_usable()?;
        if !self.unsynced {
            return Ok(());
        }
        let r = self.backend.sync();
        self.io(r)?;
        self.unsynced = false;
        self.durable_page = self.last_page;
        self.durable_end = self.last.committed_end;
        if self.last.durable_end < self.last.committed_end {
            let marker = Slot {
                generation: self.last.generation + 1,
                durable_end: self.durable_end,
                ..self.last
            };
            self.publish(marker)?;
            // The marker needs no fsync: losing it only means the next open verifies the
            // last commit's new blobs again.
            self.unsynced = false;
        }
        Ok(())
    }

    /// Keep the lock sidecar this writer's open created once the lock is released: the open
    /// succeeded (until then, a failed open removes it).
    pub(crate) fn keep_lock_file(&mut self) {
        if let Some(lock) = &mut self.lock {
            lock.keep();
        }
    }

    /// Take over the role of `old` after a compaction: its lock, durability setting and
    /// sync-on-drop duty. `old` is left inert (it will not sync when dropped).
    pub(crate) fn adopt(&mut self, old: &mut Writer) {
        self.lock = old.lock.take();
        self.durability = old.durability;
        self.on_drop = old.on_drop;
        self.growth = Growth::Preallocate;
        old.on_drop = OnDrop::Nothing;
    }

    /// Forget records appended after the newest commit (a discarded batch); the space is
    /// reused by the next record.
    pub(crate) fn discard_uncommitted(&mut self) {
        self.append_end = align_up(self.last.committed_end);
    }

    /// Where the next record goes: every record of the file and of the open transaction
    /// lies below it.
    pub(crate) fn append_end(&self) -> u64 {
        self.append_end
    }

    /// Continue on `backend`, a file holding the same bytes as the current one below
    /// [`append_end`](Self::append_end) and as long (an anonymous store moved into or out
    /// of memory).
    pub(crate) fn switch_backend(&mut self, backend: Box<dyn Backend>) {
        self.backend = backend;
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.on_drop == OnDrop::Sync && !self.poisoned {
            // Best effort: an error here cannot be reported; the file still opens at the
            // last durable commit or a newer complete one.
            let _ = self.sync();
        }
    }
}
