//! The write side of an open file: appending records, publishing slots, syncing, and
//! poisoning after an I/O error (SPEC §10).

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::format::{RECORD_HEADER_LEN, RecordHeader, SLOT_PAGE, Slot, align_up, record_len};
use crate::io::{Backend, WriterLock};

/// The file grows in steps of at least this many bytes, and by at least 1/8 of its size,
/// so that mappings are renewed rarely.
const GROW_STEP: u64 = 64 * 1024;

/// A commit must have appended at least this much for the next one to be written ahead.
const WRITE_AHEAD_MIN: u64 = 1 << 20;
/// The most bytes written ahead of one commit.
const WRITE_AHEAD_MAX: u64 = 64 << 20;

/// Once this many bytes were appended since the last sync or early write-back, a commit
/// starts writing them back (named files only): the final sync then waits for at most
/// about this much, and the disk works while the caller compresses.
const WRITEBACK_BATCH: u64 = 32 << 20;

/// When commits become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Commits are atomic and visible at once, and survive a process crash; they survive
    /// power loss once [`sync`](crate::AnyChannel::sync) returns (or the handle is dropped).
    /// A power loss before that opens at an earlier, complete commit.
    ///
    /// For a named file, once 32 MiB of records have accumulated since the last sync the
    /// next commit asks the operating system to start writing them to disk (without
    /// waiting), so a sync after a long series of edits waits for little more than the
    /// last 32 MiB, and the disk works while the caller compresses. The same bytes would be
    /// written back by the kernel later anyway; nothing becomes durable before a sync.
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
    backend: Arc<dyn Backend>,
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
    /// Bytes the newest commit appended (its records and their padding).
    last_commit_len: u64,
    /// Where the records not yet synced nor handed to early write-back begin.
    writeback_from: u64,
    /// A helper thread creating the pages past `append_end` (see
    /// [`write_ahead`](Self::write_ahead)); joined before any other operation on the file.
    ahead: Option<JoinHandle<()>>,
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
            last_commit_len: 0,
            writeback_from: align_up(last.committed_end),
            ahead: None,
            backend: Arc::from(backend),
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
        self.finish_write_ahead();
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
        self.finish_write_ahead();
        if self.growth == Growth::Exact {
            self.file_len = end; // the write itself extends the file
            return Ok(());
        }
        let new_len = self.grown_len(end);
        let r = self.backend.set_len(new_len);
        self.io(r)?;
        self.file_len = new_len;
        Ok(())
    }

    /// The length the file grows to when `end` bytes must exist (past its length).
    fn grown_len(&self, end: u64) -> u64 {
        let grown = (self.file_len + self.file_len / 8).max(end);
        grown.div_ceil(GROW_STEP) * GROW_STEP
    }

    /// Write the slot of a new commit into the page that does not hold the durable commit.
    pub(crate) fn publish(&mut self, mut slot: Slot) -> Result {
        self.check_usable()?;
        self.finish_write_ahead();
        slot.durable_end = slot.durable_end.max(self.durable_end);
        let page = 1 - self.durable_page;
        self.unsynced = true;
        let r = self
            .backend
            .write_all_at(&slot.encode(), page as u64 * SLOT_PAGE);
        self.io(r)?;
        self.last_commit_len =
            align_up(slot.committed_end).saturating_sub(self.append_end_of_last());
        self.last = slot;
        self.last_page = page;
        self.append_end = align_up(slot.committed_end);
        Ok(())
    }

    /// Where the newest commit's records ended (where the one being published began).
    fn append_end_of_last(&self) -> u64 {
        align_up(self.last.committed_end)
    }

    /// Start creating, on a helper thread, the page-cache pages the next commit will write,
    /// assuming it appends as much as the newest one: in a loop of `set_chunk` calls the
    /// kernel's page allocation for each appended blob (about 0.3–1 ms per 3 MiB on small
    /// virtual machines) then overlaps with the compression of the next chunk instead of
    /// following it. Only for a writer whose caller has a thread to spare, for commits that
    /// wait for no sync, and for a file that grows in steps; the pages lie past every byte
    /// a commit references, so nothing a reader or a recovery looks at changes.
    ///
    /// Nothing here fails the commit: an error growing the file, starting the thread or
    /// writing the zeros costs only the overlap (the next real write creates the pages, and
    /// reports a persistent error itself).
    pub(crate) fn write_ahead(&mut self) {
        let len = self.last_commit_len.min(WRITE_AHEAD_MAX);
        if len < WRITE_AHEAD_MIN
            || self.poisoned
            || self.durability == Durability::Immediate
            || self.growth == Growth::Exact
        {
            return;
        }
        self.finish_write_ahead();
        let start = self.append_end;
        let end = start + len;
        if end > self.file_len {
            let new_len = self.grown_len(end);
            if self.backend.set_len(new_len).is_err() {
                return;
            }
            self.file_len = new_len;
        }
        let backend = Arc::clone(&self.backend);
        self.ahead = std::thread::Builder::new()
            .name("cimg-write-ahead".into())
            .spawn(move || {
                let _ = backend.prefault(start, len);
            })
            .ok();
    }

    /// Start writing the records of the commits since the last sync (or the last call that
    /// started) back to disk once they add up to [`WRITEBACK_BATCH`], for a named file
    /// whose commits wait for an explicit sync: the sync that makes them durable then has
    /// little left to write. Only whole records of made commits are handed over; the slot
    /// pages, which every commit rewrites, are left to the sync.
    pub(crate) fn early_writeback(&mut self) {
        let end = align_up(self.last.committed_end);
        if self.on_drop != OnDrop::Sync
            || self.durability != Durability::OnSync
            || self.poisoned
            || end < self.writeback_from + WRITEBACK_BATCH
        {
            return;
        }
        self.finish_write_ahead();
        self.backend
            .start_writeback(self.writeback_from, end - self.writeback_from);
        self.writeback_from = end;
    }

    /// Wait for the write-ahead thread, if one runs: no other operation on the file may
    /// overlap its writes.
    fn finish_write_ahead(&mut self) {
        if let Some(thread) = self.ahead.take() {
            let _ = thread.join();
        }
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
        self.finish_write_ahead();
        if !self.unsynced {
            return Ok(());
        }
        let r = self.backend.sync();
        self.io(r)?;
        self.unsynced = false;
        self.durable_page = self.last_page;
        self.durable_end = self.last.committed_end;
        self.writeback_from = self.writeback_from.max(align_up(self.durable_end));
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
        old.finish_write_ahead();
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
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish_write_ahead();
        if self.on_drop == OnDrop::Sync && !self.poisoned {
            // Best effort: an error here cannot be reported; the file still opens at the
            // last durable commit or a newer complete one.
            let _ = self.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::format::REGION_START;
    use crate::store::fixture::{self, ID, blob};
    use crate::store::{Access, Store, StoredChunk};

    /// Delegates to the production backend and records the early write-back requests.
    struct WritebackLog {
        inner: Box<dyn Backend>,
        calls: Arc<Mutex<Vec<(u64, u64)>>>,
    }

    impl Backend for WritebackLog {
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.inner.read_exact_at(buf, offset)
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.inner.write_all_at(buf, offset)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync(&self) -> io::Result<()> {
            self.inner.sync()
        }
        fn start_writeback(&self, offset: u64, len: u64) {
            self.calls.lock().unwrap().push((offset, len));
        }
    }

    /// Open `path` read-write with its write-back requests logged into `calls`.
    fn open_logged(path: &std::path::Path, calls: &Arc<Mutex<Vec<(u64, u64)>>>) -> Store {
        let calls = calls.clone();
        Store::open_with(
            path,
            Access::ReadWrite,
            &|_| Ok(()),
            Arc::new(move |inner| {
                Box::new(WritebackLog {
                    inner,
                    calls: calls.clone(),
                })
            }),
        )
        .unwrap()
    }

    fn commit_blob(store: &Store, index: usize, len: usize) {
        let mut txn = store.begin().unwrap();
        txn.put(ID, index, StoredChunk::Blob(&blob(len, index as u8)))
            .unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn early_writeback_hands_over_each_batch_of_committed_records_once_in_order() {
        let (_dir, path, store) = fixture::create_temp();
        drop(store);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let store = open_logged(&path, &calls);
        let mut from = align_up(store.snapshot().slot.committed_end);
        let mut committed = Vec::new();
        for round in 0..40 {
            commit_blob(&store, round % 4, 3 << 20);
            committed.push(store.snapshot().slot.committed_end);
        }
        let logged = calls.lock().unwrap().clone();
        // 120 MiB of records: three batches of at least 32 MiB.
        assert_eq!(logged.len(), 3, "{logged:?}");
        for &(offset, len) in &logged {
            // Contiguous from the first record after the last sync, never the slot pages,
            // each ending where a commit ended.
            assert!(offset == from && offset >= REGION_START, "{logged:?}");
            assert!(len >= WRITEBACK_BATCH, "{logged:?}");
            assert!(committed.iter().any(|&end| align_up(end) == offset + len));
            from = offset + len;
        }
        // A sync makes everything durable: the next batch starts after it.
        store.sync().unwrap();
        let synced_end = align_up(store.snapshot().slot.committed_end);
        for round in 0..12 {
            commit_blob(&store, round % 4, 3 << 20);
        }
        let after = calls.lock().unwrap()[logged.len()..].to_vec();
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(after[0].0 >= synced_end, "{after:?} from {synced_end}");
    }

    #[test]
    fn no_early_writeback_when_every_commit_is_synced_or_for_an_anonymous_file() {
        let (_dir, path, store) = fixture::create_temp();
        drop(store);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let store = open_logged(&path, &calls);
        store.set_durability(Durability::Immediate).unwrap();
        for round in 0..16 {
            commit_blob(&store, round % 4, 3 << 20);
        }
        assert!(calls.lock().unwrap().is_empty());
        // An anonymous file is never synced: its records need never reach the disk.
        let (anonymous, _) = Store::create(None, &fixture::catalog()).unwrap();
        assert_eq!(
            anonymous.writer_mut(|w| w.on_drop).unwrap(),
            OnDrop::Nothing
        );
    }
}
