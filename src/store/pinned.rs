//! Opening a file read-only at one commit named by a [`SnapshotId`] (SPEC §11, "Pinned
//! commits"), however many commits the writer made since.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::{Access, ExpectCatalog, Snapshot, Store, no_wrap, read_slots};
use crate::error::{Error, Result};
use crate::io::{Mapping, open_container};
use crate::snapshot_id::SnapshotId;

impl Store {
    /// Open `path` read-only at the commit `id` names. The handle stays on that commit
    /// (`refresh` changes nothing).
    ///
    /// # Errors
    /// [`Error::SnapshotUnavailable`] when the file at `path` is another file or no longer
    /// holds the commit (compacted, replaced, or rolled back by a power loss); the errors
    /// of [`Store::open`] for a file that is no container at all.
    pub(crate) fn open_pinned(
        path: &Path,
        id: &SnapshotId,
        expect: &ExpectCatalog,
    ) -> Result<Store> {
        let file = open_container(path, Access::ReadOnly)?;
        let snapshot = load_pinned(&file, id)?;
        expect(&snapshot.catalog)?;
        Ok(Store {
            txn_thread: AtomicU64::new(0),
            file: RwLock::new(Arc::new(file)),
            path: Some(path.to_path_buf()),
            current: RwLock::new(Arc::new(snapshot)),
            writer: None,
            pinned: true,
            auto_compact: Mutex::new(None),
            wrap: no_wrap(),
            anonymous: None,
        })
    }
}

/// The commit `id` names in `file`, checked as a refresh checks a newer commit (SPEC §9:
/// slot identity, catalog record bounds, header and CRC, tables, metadata, blob bounds);
/// blobs are checksummed when read.
fn load_pinned(file: &std::fs::File, id: &SnapshotId) -> Result<Snapshot> {
    let unavailable = |reason: &str| Error::SnapshotUnavailable {
        generation: id.generation(),
        reason: reason.to_string(),
    };
    let (slots, file_len) = read_slots(file)?;
    let newest = slots
        .iter()
        .enumerate()
        .filter_map(|(page, s)| s.as_ref().ok().map(|s| (page, *s)))
        .max_by_key(|(_, s)| s.generation);
    let Some((page, newest)) = newest else {
        // No slot decodes: the file is no container (or a damaged one), whatever the id.
        let first_error = slots.into_iter().find_map(Result::err);
        return Err(first_error.unwrap_or_else(|| Error::corrupted("no slot decodes")));
    };
    if newest.file_id != id.file_id() {
        return Err(unavailable("the file at the path is another file"));
    }
    if newest.generation < id.generation() {
        return Err(unavailable(
            "the file's newest commit is older: the commit was lost before it was synced",
        ));
    }
    let slot = id.slot();
    if slot.committed_end > file_len {
        return Err(unavailable("the commit ends past the end of the file"));
    }
    let map = Arc::new(Mapping::new(file, slot.committed_end)?);
    // Every check that fails here says the bytes at the id's catalog reference are not
    // that commit: a compaction or replacement wrote other records there.
    Snapshot::load(slot, page, map, None).map_err(|e| match e {
        Error::Corrupted { reason } => unavailable(&reason),
        other => other,
    })
}
