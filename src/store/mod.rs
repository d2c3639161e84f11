//! An open container file: the current snapshot for readers and, for read-write handles,
//! the writer. Shared (through `Arc`) by every channel and image handle of the file.

mod checks;
mod copy;
mod create;
mod snapshot;
mod table;
mod txn;
mod verify;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

pub use checks::ChecksumPolicy;
pub use copy::{AutoCompact, Compaction};
pub(crate) use snapshot::{Snapshot, check_len};
pub(crate) use txn::{Prepared, Txn, prepare_chunk};
pub use verify::Verification;
pub use writer::Durability;
use writer::Writer;

use crate::error::{Error, Result};
use crate::format::{Catalog, REGION_START, SLOT_PAGE, Slot, TableEntry, align_up};
use crate::io::{FileBackend, Mapping, WriterLock, read_owned};

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

/// How a store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

pub(crate) struct Store {
    /// Id (see `thread_id`) of the thread holding the writer in a transaction, or 0.
    txn_thread: AtomicU64,
    /// The open file; replaced when the file is compacted (or, for a reader, found
    /// compacted on refresh).
    file: RwLock<Arc<File>>,
    path: Option<PathBuf>,
    current: RwLock<Arc<Snapshot>>,
    writer: Option<Mutex<Writer>>,
    auto_compact: Mutex<Option<AutoCompact>>,
    /// Applied to the backend of every file this store writes (also compaction copies).
    wrap: Arc<WrapBackend>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the writer half-updated on disk (commits
    // are atomic), so a poisoned mutex is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
        let lock = match access {
            Access::ReadWrite => {
                let lock = WriterLock::acquire(path)?;
                create::remove_stale_temps(path);
                Some(lock)
            }
            Access::ReadOnly => None,
        };
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(access == Access::ReadWrite)
                .open(path)?,
        );
        let snapshot = open_newest(&file)?;
        expect(&snapshot.catalog)?;
        let writer = match access {
            Access::ReadOnly => None,
            Access::ReadWrite => {
                let backend = wrap(Box::new(FileBackend(file.clone())));
                let mut writer = Writer::new(backend, lock, snapshot.slot, snapshot.page, true)?;
                // Data of the chosen commit may still be only in the page cache (the last
                // writer crashed): make it durable before building on it.
                writer.sync()?;
                Some(Mutex::new(writer))
            }
        };
        let store = Store {
            txn_thread: AtomicU64::new(0),
            file: RwLock::new(file),
            path: Some(path.to_path_buf()),
            current: RwLock::new(Arc::new(snapshot)),
            writer,
            auto_compact: Mutex::new(None),
            wrap,
        };
        store.publish_writer_slot();
        Ok(store)
    }

    /// The open file.
    fn file(&self) -> Arc<File> {
        self.file
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The file's path, if it has one.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether this handle may write.
    pub(crate) fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// The current snapshot: one commit, immutable, cheap to clone.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, snapshot: Snapshot) {
        let current = self.snapshot();
        if !Arc::ptr_eq(&current.checks, &snapshot.checks) {
            // A new file (compaction, replacement): the handle's policy carries over.
            snapshot.checks.set_policy(current.checks.policy());
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
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

    /// A mapping that covers `committed_end`: `current` if it does, else a new one of the
    /// whole file (`file_len` bytes).
    fn map_covering(
        &self,
        current: &Arc<Mapping>,
        committed_end: u64,
        file_len: u64,
    ) -> Result<Arc<Mapping>> {
        if current.len() >= committed_end {
            return Ok(current.clone());
        }
        Ok(Arc::new(Mapping::new(&self.file(), file_len)?))
    }

    /// Make every commit durable.
    pub(crate) fn sync(&self) -> Result {
        if self.writer.is_none() {
            return Ok(());
        }
        self.lock_writer()?.sync()?;
        self.publish_writer_slot();
        Ok(())
    }

    /// After a sync wrote a marker slot, readers in this process see its generation.
    fn publish_writer_slot(&self) {
        let Some(writer) = &self.writer else { return };
        let (slot, page) = {
            let w = lock(writer);
            (w.last, w.last_page)
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
        *self
            .auto_compact
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = auto;
        Ok(())
    }

    /// Set when commits become durable.
    pub(crate) fn set_durability(&self, durability: Durability) -> Result {
        self.lock_writer()?.durability = durability;
        Ok(())
    }

    /// Move a read-only handle to the newest commit. Returns whether it changed.
    pub(crate) fn refresh(&self) -> Result<bool> {
        if self.writer.is_some() {
            return Ok(false); // the only writer always has the newest commit
        }
        let current = self.snapshot();
        if self.reopen_if_replaced()? {
            return Ok(true);
        }
        let (slots, file_len) = read_slots(&self.file())?;
        let mut candidates: Vec<(Slot, usize)> = slots
            .into_iter()
            .enumerate()
            .filter_map(|(page, s)| s.ok().map(|s| (s, page)))
            .filter(|(s, _)| s.generation > current.slot.generation)
            .collect();
        candidates.sort_by_key(|(s, _)| std::cmp::Reverse(s.generation));
        for (slot, page) in candidates {
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
        let live = s.live_bytes();
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
            file_len: self.file().metadata()?.len(),
            committed_end: s.slot.committed_end,
            live_bytes: live,
            dead_bytes: align_up(s.slot.committed_end) - REGION_START - live,
            blob_chunks,
            fill_chunks,
            fill_bytes,
        })
    }
}

impl Snapshot {
    /// A copy sharing the tables, metadata and mapping.
    fn shallow_clone(&self) -> Snapshot {
        Snapshot {
            slot: self.slot,
            page: self.page,
            catalog: self.catalog.clone(),
            tables: self.tables.clone(),
            metadata: self.metadata.clone(),
            map: self.map.clone(),
            checks: self.checks.clone(),
        }
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

/// fsync the directory holding `path`, so a rename into it is durable.
fn sync_parent_dir(path: &Path) -> Result {
    File::open(create::parent_dir(path))?.sync_all()?;
    Ok(())
}
