//! An open container file: the current snapshot for readers and, for read-write handles,
//! the writer. Shared (through `Arc`) by every channel and image handle of the file.
//!
//! The store deals in records, tables, fill entries and checksummed bytes; it never
//! compresses or decompresses (that is the chunk codec's job, `crate::chunk_codec`).

mod anonymous;
mod checks;
mod copy;
mod create;
mod pinned;
mod snapshot;
mod table;
mod txn;
mod verify;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{
    Arc, LockResult, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

use anonymous::Anonymous;
pub use anonymous::AnonymousBacking;
pub use checks::ChecksumPolicy;
pub use copy::{AutoCompact, Compaction};
pub(crate) use create::temp_beside;
pub(crate) use snapshot::{BlobRead, Snapshot, StoredChunk};
pub(crate) use txn::Txn;

pub(crate) use crate::io::Access;
pub use verify::Verification;
pub use writer::Durability;
use writer::{OnDrop, Writer};

use crate::error::{Error, Result};
use crate::format::{Catalog, SLOT_PAGE, Slot, TableEntry};
use crate::io::{
    FileBackend, Mapping, Storage, WriterLock, file_error, open_container, read_owned, same_file,
};

/// Space accounting and shape of one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Generation of the commit described.
    pub generation: u64,
    /// Length of the file in bytes (may include preallocated space).
    pub file_len: u64,
    /// End of the committed records.
    pub committed_end: u64,
    /// Bytes of records the commit references (catalog, metadata, tables, blobs).
    pub live_bytes: u64,
    /// Bytes of superseded records below `committed_end`, reclaimable by `save_as`.
    pub dead_bytes: u64,
    /// Chunks stored as compressed blobs.
    pub blob_chunks: usize,
    /// Chunks stored as fill entries (lazy chunks, including never-written ones).
    pub fill_chunks: usize,
    /// Uncompressed bytes the fill entries stand for.
    pub fill_bytes: u64,
    /// Whether the bytes are in memory: an anonymous store kept there by its
    /// [`AnonymousBacking`]. False for named files and temporary files.
    pub in_memory: bool,
}

/// Wraps the production backend, e.g. to inject faults in tests.
pub type WrapBackend =
    dyn Fn(Box<dyn crate::io::Backend>) -> Box<dyn crate::io::Backend> + Send + Sync;

/// The identity wrapper: production backends as they are.
pub(crate) fn no_wrap() -> Arc<WrapBackend> {
    Arc::new(|b| b)
}

/// Checks a file's catalog on open, before a writer touches the file.
pub(crate) type ExpectCatalog = dyn Fn(&Catalog) -> Result;

pub(crate) struct Store {
    /// Id (see `thread_id`) of the thread holding the writer in a transaction, or 0.
    txn_thread: AtomicU64,
    /// The open file (or, for an anonymous store, the memory holding its bytes); replaced
    /// when the file is compacted (or, for a reader, found compacted on refresh).
    file: RwLock<Storage>,
    path: Option<PathBuf>,
    current: RwLock<Arc<Snapshot>>,
    writer: Option<Mutex<Writer>>,
    /// A read-only handle opened at one commit ([`Store::open_pinned`]): it never moves.
    pinned: bool,
    auto_compact: Mutex<Option<AutoCompact>>,
    /// Applied to the backend of every file this store writes (also compaction copies).
    wrap: Arc<WrapBackend>,
    /// Where an anonymous store (no path) keeps its bytes; `None` for a named file. Changed
    /// only with the writer locked, which is taken first.
    anonymous: Option<Mutex<Anonymous>>,
}

/// The guard or value of a lock operation, also when a thread panicked while holding the
/// lock. Every lock of the store guards state that a panic cannot leave half-updated (commits
/// are atomic on disk, and in memory a snapshot or the writer's fields are replaced whole),
/// so a poisoned lock is still usable.
fn unpoisoned<G>(result: LockResult<G>) -> G {
    result.unwrap_or_else(PoisonError::into_inner)
}

/// Lock a mutex of the store (see [`unpoisoned`]).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    unpoisoned(m.lock())
}

/// Read-lock a lock of the store (see [`unpoisoned`]).
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    unpoisoned(l.read())
}

/// Write-lock a lock of the store (see [`unpoisoned`]).
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    unpoisoned(l.write())
}

impl Store {
    /// Open an existing file at its newest valid commit.
    pub(crate) fn open(path: &Path, access: Access, expect: &ExpectCatalog) -> Result<Store> {
        Store::open_with(path, access, expect, no_wrap())
    }

    /// [`Store::open`], with every mutation routed through `wrap(production backend)`.
    /// `expect` checks the catalog (element type, channel count) before anything is written.
    pub(crate) fn open_with(
        path: &Path,
        access: Access,
        expect: &ExpectCatalog,
        wrap: Arc<WrapBackend>,
    ) -> Result<Store> {
        // The file is opened before the lock is taken, so an open that fails for want of a
        // file (missing, a directory, not permitted) creates no lock sidecar.
        let mut file = open_container(path, access)?;
        let lock = match access {
            Access::ReadWrite => {
                let lock = WriterLock::acquire(path)?;
                // Until the lock was held, a compaction could rename a new file over `path`.
                if !same_file(&file.metadata()?, &metadata_of(path)?) {
                    file = open_container(path, access)?;
                }
                create::remove_stale_temps(path);
                Some(lock)
            }
            Access::ReadOnly => None,
        };
        let file = Arc::new(file);
        let snapshot = open_newest(&file)?;
        expect(&snapshot.catalog)?;
        let writer = match access {
            Access::ReadOnly => None,
            Access::ReadWrite => {
                let backend = wrap(Box::new(FileBackend(file.clone())));
                let mut writer =
                    Writer::new(backend, lock, snapshot.slot, snapshot.page, OnDrop::Sync)?;
                // Data of the chosen commit may still be only in the page cache (the last
                // writer crashed): make it durable before building on it.
                writer.sync()?;
                writer.keep_lock_file(); // the open succeeded
                Some(Mutex::new(writer))
            }
        };
        let store = Store {
            txn_thread: AtomicU64::new(0),
            file: RwLock::new(Storage::File(file)),
            path: Some(path.to_path_buf()),
            current: RwLock::new(Arc::new(snapshot)),
            writer,
            pinned: false,
            auto_compact: Mutex::new(None),
            wrap,
            anonymous: None,
        };
        store.publish_writer_slot();
        Ok(store)
    }

    /// The open file, or memory.
    fn file(&self) -> Storage {
        read(&self.file).clone()
    }

    /// The file's path, if it has one.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether this handle may write.
    pub(crate) fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// Whether this handle was opened at one commit and never moves from it.
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The current snapshot: one commit, immutable, cheap to clone.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        read(&self.current).clone()
    }

    fn publish(&self, snapshot: Snapshot) {
        let current = self.snapshot();
        if !Arc::ptr_eq(&current.checks, &snapshot.checks) {
            // A new file (compaction, replacement): the handle's policy carries over.
            snapshot.checks.set_policy(current.checks.policy());
        }
        *write(&self.current) = Arc::new(snapshot);
    }

    /// Start a transaction (waits for another thread's transaction on this file to end;
    /// a second one on the same thread is an error, since waiting would deadlock).
    pub(crate) fn begin(&self) -> Result<Txn<'_>> {
        let guard = self.lock_writer()?;
        self.txn_thread.store(thread_id(), Ordering::Release);
        Txn::new(self, guard)
    }

    /// The writer, once no other thread uses it; `BatchInProgress` if this thread does.
    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>> {
        let writer = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        if self.txn_thread.load(Ordering::Acquire) == thread_id() {
            return Err(Error::BatchInProgress);
        }
        Ok(lock(writer))
    }

    /// Called by a transaction as it ends, before it releases the writer.
    fn end_txn(&self) {
        self.txn_thread.store(0, Ordering::Release);
    }

    /// A mapping that shows the commit ending at `committed_end`: `current` if it does, else
    /// a new one of the whole file (`file_len` bytes) or of the memory.
    fn map_covering(
        &self,
        current: &Arc<Mapping>,
        committed_end: u64,
        file_len: u64,
    ) -> Result<Arc<Mapping>> {
        Ok(self.file().map_covering(current, committed_end, file_len)?)
    }

    /// Make every commit durable.
    pub(crate) fn sync(&self) -> Result {
        if self.writer.is_none() {
            return Ok(());
        }
        let mut writer = self.lock_writer()?;
        writer.sync()?;
        // Published under the writer's lock: a commit made on another thread cannot come
        // between the marker and its publication, so the marker never replaces a newer
        // commit's snapshot (which would show its catalog under an older generation).
        self.publish_slot(writer.last(), writer.last_page());
        Ok(())
    }

    /// After a sync wrote a marker slot, readers in this process see its generation.
    fn publish_writer_slot(&self) {
        let Some(writer) = &self.writer else { return };
        let (slot, page) = {
            let w = lock(writer);
            (w.last(), w.last_page())
        };
        self.publish_slot(slot, page);
    }

    /// Publish `slot` (a marker of the current commit) if it is not the current one.
    fn publish_slot(&self, slot: Slot, page: usize) {
        let current = self.snapshot();
        if current.slot != slot {
            self.publish(Snapshot {
                slot,
                page,
                ..current.shallow_clone()
            });
        }
    }

    /// Set (or turn off) automatic compaction after commits.
    pub(crate) fn set_auto_compact(&self, auto: Option<AutoCompact>) -> Result {
        if self.writer.is_none() {
            return Err(Error::ReadOnly);
        }
        *lock(&self.auto_compact) = auto;
        Ok(())
    }

    /// Set when commits become durable.
    pub(crate) fn set_durability(&self, durability: Durability) -> Result {
        self.lock_writer()?.set_durability(durability);
        Ok(())
    }

    /// Move a read-only handle to the newest commit. Returns whether it changed; a marker
    /// slot of the current commit (written by a sync) is no change, and is not taken. A
    /// pinned handle never moves.
    pub(crate) fn refresh(&self) -> Result<bool> {
        if self.writer.is_some() || self.pinned {
            return Ok(false); // the only writer always has the newest commit
        }
        let current = self.snapshot();
        if self.reopen_if_replaced()? {
            return Ok(true);
        }
        let storage = self.file();
        // Only a handle without a writer gets here, and one in memory always has its writer.
        let Some(file) = storage.file() else {
            return Ok(false);
        };
        let (slots, file_len) = read_slots(file)?;
        let mut candidates: Vec<(Slot, usize)> = slots
            .into_iter()
            .enumerate()
            .filter_map(|(page, s)| s.ok().map(|s| (s, page)))
            .filter(|(s, _)| s.generation > current.slot.generation)
            .collect();
        candidates.sort_by_key(|(s, _)| std::cmp::Reverse(s.generation));
        for (slot, page) in candidates {
            if slot.same_commit(&current.slot) && slot.durable_end >= current.slot.durable_end {
                // A marker of the commit this handle shows (a sync wrote it): the same data,
                // so no change; the handle keeps its snapshot. (A repeat of the commit that
                // claims less durable data is no marker: it gets the full check below.)
                return Ok(false);
            }
            let map = self.map_covering(&current.map, slot.committed_end, file_len)?;
            // The same acceptance rule as `open` (a slot already on disk when no writer runs
            // may reference data a power loss never wrote), checksumming only new blobs.
            if let Ok(snapshot) = Snapshot::load(slot, page, map, Some(&current)) {
                self.publish(snapshot);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// When reads checksum blobs (shared by every snapshot of this handle).
    pub(crate) fn checksum_policy(&self) -> ChecksumPolicy {
        self.snapshot().checks.policy()
    }

    pub(crate) fn set_checksum_policy(&self, policy: ChecksumPolicy) {
        self.snapshot().checks.set_policy(policy);
    }

    /// Space accounting of the current commit.
    pub(crate) fn stats(&self) -> Result<Stats> {
        let s = self.snapshot();

        let (mut blob_chunks, mut fill_chunks, mut fill_bytes) = (0, 0, 0u64);
        for (desc, table) in s.catalog.channels.iter().zip(&s.tables) {
            for (i, e) in table.iter().enumerate() {
                if let TableEntry::Blob { .. } = e {
                    blob_chunks += 1;
                } else {
                    fill_chunks += 1;
                    fill_bytes += desc.geometry.chunk_bytes_at(i) as u64;
                }
            }
        }
        Ok(Stats {
            generation: s.slot.generation,
            file_len: self.file().len()?,
            committed_end: s.slot.committed_end,
            live_bytes: s.live_bytes(),
            dead_bytes: s.dead_bytes(),
            blob_chunks,
            fill_chunks,
            fill_bytes,
            in_memory: self.in_memory(),
        })
    }
}

/// A process-unique, nonzero id of the calling thread.
fn thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    ID.with(|id| *id)
}

/// Decode both slot pages (read with `pread`, never through a mapping).
fn read_slots(file: &File) -> Result<([Result<Slot>; 2], u64)> {
    let a = read_owned(file, 0, crate::format::SLOT_LEN)?;
    let b = read_owned(file, SLOT_PAGE, crate::format::SLOT_LEN)?;
    // The length is read after the slots: a writer grows the file before it writes a slot
    // that references the growth, so every slot read above lies within this length.
    let file_len = file.metadata()?.len();
    let decode = |bytes: Option<Vec<u8>>| match bytes {
        Some(bytes) => Slot::decode(&bytes, file_len),
        None => Err(Error::corrupted("file shorter than its slot pages")),
    };
    Ok(([decode(a), decode(b)], file_len))
}

/// The newest commit whose slot, catalog, tables and unsynced blobs all verify (SPEC §9).
fn open_newest(file: &File) -> Result<Snapshot> {
    let has_magic = |page: u64| -> Result<bool> {
        Ok(read_owned(file, page * SLOT_PAGE, 8)?.is_some_and(|m| m == crate::format::MAGIC))
    };
    if !has_magic(0)? && !has_magic(1)? {
        return Err(Error::NotACompressedImage);
    }
    let (slots, file_len) = read_slots(file)?;
    let map = Arc::new(Mapping::new(file, file_len)?);
    let mut candidates: Vec<(Slot, usize)> = slots
        .iter()
        .enumerate()
        .filter_map(|(page, s)| s.as_ref().ok().map(|s| (*s, page)))
        .collect();
    candidates.sort_by_key(|(s, _)| std::cmp::Reverse(s.generation));
    let mut reasons = Vec::new();
    for (slot, page) in candidates {
        match Snapshot::load(slot, page, map.clone(), None) {
            Ok(snapshot) => return Ok(snapshot),
            Err(e) => reasons.push(format!("slot {page} (generation {}): {e}", slot.generation)),
        }
    }
    for s in slots.into_iter() {
        match s {
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
            Err(e) => reasons.push(e.to_string()),
            Ok(_) => {}
        }
    }
    Err(Error::corrupted(format!(
        "no valid commit: {}",
        reasons.join("; ")
    )))
}

/// The metadata of the file at `path`, following symbolic links.
fn metadata_of(path: &Path) -> Result<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|e| file_error(path, e))
}

/// fsync the directory holding `path`, so a rename into it is durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result {
    File::open(create::parent_dir(path))?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod fixture;

#[cfg(test)]
mod tests {
    use super::fixture::{self, blob, put_blob};
    use super::*;
    use crate::format::{SLOT_LEN, record_footprint};
    use crate::io::read_owned;

    /// The slot record stored in `page` of the file at `path`.
    fn slot_bytes(path: &Path, page: u64) -> Vec<u8> {
        let file = File::open(path).unwrap();
        read_owned(&file, page * SLOT_PAGE, SLOT_LEN)
            .unwrap()
            .unwrap()
    }

    fn open(path: &Path, access: Access) -> Store {
        Store::open(path, access, &|_| Ok(())).unwrap()
    }

    #[test]
    fn commits_go_to_the_page_that_does_not_hold_the_durable_commit() {
        let (_dir, path, store) = fixture::create_temp();
        // Creation: generation 1 in page A, synced, then its marker (generation 2) in B.
        let snap = store.snapshot();
        assert_eq!((snap.slot.generation, snap.page), (2, 1));
        let durable = slot_bytes(&path, 0);
        // Unsynced commits all replace each other in page B; page A (durable) stays as is.
        for (seed, generation) in [(1, 3), (2, 4)] {
            put_blob(&store, 0, &blob(40, seed));
            let snap = store.snapshot();
            assert_eq!((snap.slot.generation, snap.page), (generation, 1));
            assert_eq!(slot_bytes(&path, 0), durable);
        }
        // A sync makes page B durable; its marker (generation 5) goes to page A, and so
        // does the next commit.
        store.sync().unwrap();
        assert_eq!(
            (store.snapshot().slot.generation, store.snapshot().page),
            (5, 0)
        );
        let durable = slot_bytes(&path, 1);
        put_blob(&store, 1, &blob(40, 3));
        assert_eq!(
            (store.snapshot().slot.generation, store.snapshot().page),
            (6, 0)
        );
        assert_eq!(slot_bytes(&path, 1), durable);
    }

    #[test]
    fn a_sync_without_a_commit_since_the_last_writes_no_slot() {
        let (_dir, path, store) = fixture::create_temp();
        put_blob(&store, 0, &blob(40, 1));
        store.sync().unwrap(); // the commit's marker
        let (slot, pages) = (
            store.snapshot().slot,
            [slot_bytes(&path, 0), slot_bytes(&path, 1)],
        );
        store.sync().unwrap();
        store.sync().unwrap();
        assert_eq!(store.snapshot().slot, slot);
        assert_eq!([slot_bytes(&path, 0), slot_bytes(&path, 1)], pages);
    }

    #[test]
    fn refresh_skips_a_marker_of_its_commit() {
        let (_dir, path, writer) = fixture::create_temp();
        put_blob(&writer, 0, &blob(40, 1));
        let reader = open(&path, Access::ReadOnly);
        let seen = reader.snapshot().slot;
        writer.sync().unwrap(); // a marker: a new generation, the same commit
        assert!(writer.snapshot().slot.generation > seen.generation);
        assert!(!reader.refresh().unwrap());
        assert_eq!(reader.snapshot().slot, seen);
        put_blob(&writer, 1, &blob(40, 2));
        assert!(reader.refresh().unwrap());
        assert_eq!(reader.snapshot().slot, writer.snapshot().slot);
    }

    #[test]
    fn dead_bytes_are_exactly_the_superseded_records() {
        let (_dir, _, store) = fixture::create_temp();
        let first = store.snapshot();
        assert_eq!(first.dead_bytes(), 0);
        assert_eq!(first.live_bytes(), record_footprint(first.slot.catalog_len));
        put_blob(&store, 0, &blob(40, 1));
        let second = store.snapshot();
        // Live: catalog, table, blob. Dead: the first catalog.
        let table_len = (fixture::HEIGHT * crate::format::TABLE_ENTRY_LEN) as u32;
        assert_eq!(
            second.live_bytes(),
            record_footprint(second.slot.catalog_len)
                + record_footprint(table_len)
                + record_footprint(40)
        );
        assert_eq!(
            second.dead_bytes(),
            record_footprint(first.slot.catalog_len)
        );
        put_blob(&store, 0, &blob(100, 2));
        let third = store.snapshot();
        assert_eq!(
            third.dead_bytes(),
            record_footprint(first.slot.catalog_len)
                + record_footprint(second.slot.catalog_len)
                + record_footprint(table_len)
                + record_footprint(40)
        );
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.live_bytes, stats.dead_bytes),
            (third.live_bytes(), third.dead_bytes())
        );
        assert_eq!((stats.blob_chunks, stats.fill_chunks), (1, 3));
    }

    #[test]
    fn a_reopened_file_shows_the_same_commit() {
        let (_dir, path, store) = fixture::create_temp();
        put_blob(&store, 2, &blob(40, 1));
        let slot = store.snapshot().slot;
        drop(store); // syncs: a marker follows
        let reader = open(&path, Access::ReadOnly);
        assert!(reader.snapshot().slot.same_commit(&slot));
        assert_eq!(
            fixture::stored(&reader, 2, BlobRead::Verify).unwrap(),
            fixture::Stored::Blob(blob(40, 1))
        );
    }

    #[test]
    fn a_failed_read_write_open_leaves_no_lock_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cimg");
        let sidecar = crate::io::lock_path(&path);
        // Missing file: refused before the lock is taken.
        let err = Store::open(&path, Access::ReadWrite, &|_| Ok(())).err();
        assert!(matches!(err, Some(Error::File { .. })), "{err:?}");
        assert!(!sidecar.exists());
        // A file that is no container: the lock was taken, and its sidecar removed again.
        std::fs::write(&path, b"not an image").unwrap();
        let err = Store::open(&path, Access::ReadWrite, &|_| Ok(())).err();
        assert!(matches!(err, Some(Error::NotACompressedImage)), "{err:?}");
        assert!(!sidecar.exists());
        // A catalog the caller refuses: likewise.
        std::fs::remove_file(&path).unwrap();
        drop(fixture::create(&path));
        std::fs::remove_file(&sidecar).unwrap();
        let refuse = |_: &Catalog| Err(Error::ChannelRemoved);
        let err = Store::open(&path, Access::ReadWrite, &refuse).err();
        assert!(matches!(err, Some(Error::ChannelRemoved)), "{err:?}");
        assert!(!sidecar.exists());
        // A successful open keeps the sidecar it made.
        drop(open(&path, Access::ReadWrite));
        assert!(sidecar.exists());
    }
}
