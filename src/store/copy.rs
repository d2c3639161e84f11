//! Copies of the live data: `save_as` to another path, and compaction in place.
//!
//! Both write the records the current commit references — compressed blobs verbatim, no
//! recompression — into a new file, sync it and rename it into place; the old file is
//! never truncated or rewritten, so a crash at any step leaves the old or the new file
//! complete, and readers holding the old file keep reading it.

use std::path::Path;

use super::create::{Fresh, temp_beside};
use super::writer::{Growth, OnDrop, Writer};
use super::{Anonymous, BlobRead, Snapshot, Store, lock, sync_parent_dir, unpoisoned, write};
use crate::error::{Error, Result};
use crate::format::{REGION_START, TableEntry};
use crate::io::{file_error, open_container, same_file};
use crate::progress::{NoProgress, Progress, Tracker};

/// When to compact automatically after a commit: when dead bytes are at least
/// `min_dead_ratio` of the committed bytes and at least `min_dead_bytes`. Off by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoCompact {
    /// Fraction of dead bytes (0–1) that triggers a compaction.
    pub min_dead_ratio: f64,
    /// Dead bytes below which no compaction runs, whatever the ratio.
    pub min_dead_bytes: u64,
}

impl Default for AutoCompact {
    /// Half the file dead and at least 64 MiB.
    fn default() -> Self {
        AutoCompact {
            min_dead_ratio: 0.5,
            min_dead_bytes: 64 << 20,
        }
    }
}

impl AutoCompact {
    /// What an anonymous store starts with: compact once two thirds of it are dead (and at
    /// least 64 MiB). Every rewrite appends, so without it a loop of edits would grow an
    /// in-memory store without bound, where the original library frees a replaced chunk at
    /// once; with it the store stays within about three times its live bytes, one full
    /// rewrite of every chunk never triggers it, and the copying costs at most one more
    /// copy of each byte written (a compaction copies the live bytes only after at least
    /// twice as many were written).
    pub const ANONYMOUS: AutoCompact = AutoCompact {
        min_dead_ratio: 2.0 / 3.0,
        min_dead_bytes: 64 << 20,
    };
}

/// Sizes before and after a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compaction {
    /// File length before.
    pub file_len_before: u64,
    /// File length after: exactly the live records.
    pub file_len_after: u64,
    /// Dead bytes reclaimed.
    pub reclaimed: u64,
}

impl Store {
    /// Write the live records of `snap` (all channels, or only channel `only`) into the
    /// fresh store `target` as its first commit, advancing `tracker` by each blob's length.
    fn copy_live(snap: &Snapshot, only: Option<u32>, target: &Store, tracker: &Tracker) -> Result {
        let mut txn = target.begin()?;
        for (pos, desc) in Store::copied_channels(snap, only) {
            for (index, entry) in snap.tables[pos].iter().enumerate() {
                // A DEFAULT entry stays one: the copy's table starts all DEFAULT.
                if entry != TableEntry::Default {
                    let chunk = snap.stored_chunk(pos, index, BlobRead::Whole)?;
                    txn.put(desc.id, index, chunk)?;
                    if let TableEntry::Blob { len, .. } = entry {
                        tracker.advance(u64::from(len))?;
                    }
                }
            }
        }
        if only.is_none() {
            txn.set_metadata((*snap.metadata).clone());
        }
        txn.catalog_mut(); // always write the catalog, even for an all-default copy
        tracker.checkpoint()?;
        txn.commit()
    }

    /// The channels (position, descriptor) of `snap` a copy holds: all, or only `only`.
    fn copied_channels(
        snap: &Snapshot,
        only: Option<u32>,
    ) -> impl Iterator<Item = (usize, &crate::format::ChannelDesc)> {
        (snap.catalog.channels.iter().enumerate())
            .filter(move |(_, d)| only.is_none_or(|id| id == d.id))
    }

    /// Start reporting a copy of `snap` to `progress`: its work is the blobs' bytes.
    fn start_copy<'p>(
        snap: &Snapshot,
        only: Option<u32>,
        what: &str,
        progress: &'p dyn Progress,
    ) -> Tracker<'p> {
        let blob_bytes = Store::copied_channels(snap, only)
            .map(|(pos, _)| snap.tables[pos].blob_bytes())
            .sum();
        Tracker::start(progress, what, blob_bytes)
    }

    /// The catalog of a copy: tables and metadata are rewritten by the copy itself.
    fn copy_catalog(snap: &Snapshot, only: Option<u32>) -> Result<crate::format::Catalog> {
        let mut catalog = snap.catalog.clone();
        catalog
            .channels
            .retain(|c| only.is_none_or(|id| c.id == id));
        if only.is_some() && catalog.channels.is_empty() {
            return Err(Error::ChannelRemoved);
        }
        catalog.meta = None;
        for c in &mut catalog.channels {
            c.table = None;
            if only.is_some() {
                c.name.clear();
            }
        }
        catalog.names_present &= only.is_none();
        Ok(catalog)
    }

    /// Write the current commit, without dead space, to a new file at `path`: the whole
    /// image, or with `only`, that one channel as a channel file (no names, no metadata).
    /// Cancelled through `progress`, it leaves no file behind (and any file at `path` as it
    /// was): the copy is renamed into place only once complete.
    pub(crate) fn save_as(
        &self,
        path: &Path,
        only: Option<u32>,
        progress: &dyn Progress,
    ) -> Result {
        let snap = self.snapshot();
        let catalog = Store::copy_catalog(&snap, only)?;
        let tracker = Store::start_copy(&snap, only, "save_as", progress);
        let (target, temp) = Store::create(Some(path), &catalog)?;
        target.writer_mut(|w| w.set_growth(Growth::Exact))?;
        Store::copy_live(&snap, only, &target, &tracker)?;
        // The last chance to stop: the sync can take long, the rename is the point of no
        // return (after this sync, the one `finish_create` makes has nothing left to do).
        target.sync()?;
        tracker.checkpoint()?;
        target.finish_create(temp)
    }

    /// Rewrite the live records into a new file, rename it over this one and continue on
    /// it. The next generation follows the current one, and the file id is kept, so readers
    /// of the old file move to the new one on `refresh`. Cancelled through `progress`, it
    /// leaves the file and this handle as they were and removes its temporary file.
    pub(crate) fn compact(&self, progress: &dyn Progress) -> Result<Compaction> {
        self.compact_locked(&mut *self.lock_writer()?, progress)
    }

    /// [`Store::compact`] with the writer already held.
    pub(super) fn compact_locked(
        &self,
        writer: &mut Writer,
        progress: &dyn Progress,
    ) -> Result<Compaction> {
        writer.check_usable()?;
        let snap = self.snapshot();
        let tracker = Store::start_copy(&snap, None, "compact", progress);
        let file_len_before = self.file().len()?;
        let catalog = Store::copy_catalog(&snap, None)?;
        let (file, temp, anonymous) = match &self.path {
            Some(path) => {
                let (file, temp) = temp_beside(path, "compact")?;
                // The copy takes the place of the file: keep its permissions.
                file.set_permissions(self.file().metadata()?.permissions())?;
                (file.into(), Some(temp), None)
            }
            None => {
                // The copy is placed for its own size (back in memory if it now fits); it
                // moves out during the copy if that size was underestimated.
                let used = REGION_START + snap.live_bytes();
                let (file, anonymous) = Anonymous::create(self.backing_of_copy(), used, used)?;
                (file, None, Some(anonymous))
            }
        };
        let fresh = Fresh {
            file,
            path: self.path.clone(),
            lock: None,
            base_generation: snap.slot.generation,
            file_id: snap.slot.file_id,
            growth: Growth::Exact,
            on_drop: OnDrop::Nothing,
            wrap: self.wrap.clone(),
            anonymous,
        };
        let target = Store::fresh(fresh, &catalog)?;
        Store::copy_live(&snap, None, &target, &tracker)?;
        target.sync()?;
        tracker.checkpoint()?; // the rename below is the point of no return
        if let (Some(temp), Some(path)) = (temp, &self.path) {
            temp.persist(path).map_err(|e| file_error(path, e.error))?;
            sync_parent_dir(path)?;
        }
        let Store {
            file,
            current,
            writer: new_writer,
            anonymous: new_anonymous,
            ..
        } = target;
        let mut new_writer =
            unpoisoned(new_writer.expect("a fresh store has a writer").into_inner());
        new_writer.adopt(writer);
        *writer = new_writer;
        *write(&self.file) = unpoisoned(file.into_inner());
        *write(&self.current) = unpoisoned(current.into_inner());
        if let (Some(anonymous), Some(new)) = (&self.anonymous, new_anonymous) {
            *lock(anonymous) = unpoisoned(new.into_inner());
        }
        let file_len_after = self.file().len()?;
        Ok(Compaction {
            file_len_before,
            file_len_after,
            reclaimed: file_len_before.saturating_sub(file_len_after),
        })
    }

    /// After a commit: compact if the automatic threshold is set and reached.
    pub(super) fn maybe_auto_compact(&self, writer: &mut Writer) -> Result {
        let Some(auto) = *lock(&self.auto_compact) else {
            return Ok(());
        };
        let snap = self.snapshot();
        let (committed, dead) = (snap.committed_bytes(), snap.dead_bytes());
        if dead >= auto.min_dead_bytes && dead as f64 >= auto.min_dead_ratio * committed as f64 {
            self.compact_locked(writer, &NoProgress)?;
        }
        Ok(())
    }

    /// For a reader: if the path now names a compacted copy of this file (same file id, newer
    /// commit), continue on it. Returns whether it did.
    pub(super) fn reopen_if_replaced(&self) -> Result<bool> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let Ok(on_disk) = std::fs::metadata(path) else {
            return Ok(false);
        };
        if same_file(&on_disk, &self.file().metadata()?) {
            return Ok(false);
        }
        let file = open_container(path, super::Access::ReadOnly)?;
        let Ok(snapshot) = super::open_newest(&file) else {
            return Ok(false);
        };
        let current = self.snapshot();
        if snapshot.slot.file_id != current.slot.file_id
            || snapshot.slot.generation <= current.slot.generation
        {
            return Ok(false); // another file took the name: stay on ours
        }
        *write(&self.file) = file.into();
        self.publish(snapshot);
        Ok(true)
    }

    /// Run `f` on the writer (not during a transaction of this thread).
    pub(super) fn writer_mut<R>(&self, f: impl FnOnce(&mut Writer) -> R) -> Result<R> {
        Ok(f(&mut *self.lock_writer()?))
    }
}
