//! Making new files: a fresh store whose first commit is still to be written.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::table::Table;
use super::writer::{Growth, OnDrop, Writer};
use super::{
    Anonymous, AnonymousBacking, AutoCompact, Snapshot, Store, WrapBackend, no_wrap,
    sync_parent_dir,
};
use crate::error::Result;
use crate::format::{Catalog, REGION_START, Slot};
use crate::io::{Storage, WriterLock, file_error};

/// How a fresh store is set up.
pub(super) struct Fresh {
    /// Where the bytes go: empty.
    pub file: Storage,
    pub path: Option<PathBuf>,
    pub lock: Option<WriterLock>,
    /// Generation of the virtual commit the first real commit follows.
    pub base_generation: u64,
    pub file_id: u64,
    pub growth: Growth,
    pub on_drop: OnDrop,
    pub wrap: Arc<WrapBackend>,
    /// For an anonymous store (no path), where `file` is (a temporary file or memory) and
    /// its backing.
    pub anonymous: Option<Anonymous>,
}

/// A new random file id.
pub(super) fn new_file_id() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// The directory holding `path`.
pub(super) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Prefix of the temporary files made beside `path` (`.<name>.cimg-tmp-<what>-…`).
fn temp_prefix(path: &Path, what: &str) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!(".{name}.cimg-tmp-{what}")
}

/// A new empty file in `path`'s directory, under a temporary name until persisted, with
/// the permissions `File::create` would give (0o666 less the umask), not tempfile's 0o600.
pub(crate) fn temp_beside(path: &Path, what: &str) -> Result<(File, tempfile::TempPath)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(path);
    Ok(tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .prefix(&format!("{}-", temp_prefix(path, what)))
        .rand_bytes(TEMP_RANDOM_LEN)
        .tempfile_in(dir)
        .map_err(|e| file_error(dir, e))?
        .into_parts())
}

/// Kinds of temporary files a store makes, as named by [`temp_beside`] (image file
/// exports name theirs `export`: a store never removes those).
const TEMP_KINDS: [&str; 2] = ["new", "compact"];
/// Length of the random suffix `tempfile` appends.
const TEMP_RANDOM_LEN: usize = 6;

/// Whether `file_name` is a temporary file made beside `path` by [`temp_beside`] (exactly
/// the prefix, a kind, `-` and the random suffix, so another file's temporaries never match).
fn is_temp_of(path: &Path, file_name: &str) -> bool {
    TEMP_KINDS.iter().any(|kind| {
        file_name
            .strip_prefix(&format!("{}-", temp_prefix(path, kind)))
            .is_some_and(|random| {
                random.len() == TEMP_RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    })
}

/// Remove temporary files a killed writer of `path` left behind. Only the holder of the
/// writer lock calls this, and only writers holding the lock make such files.
pub(super) fn remove_stale_temps(path: &Path) {
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temp_of(path, &entry.file_name().to_string_lossy()) {
            // Best effort: a file that cannot be removed is only wasted space.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Store {
    /// A store over an empty `file` holding `catalog` as a virtual commit: nothing but the
    /// slot pages' space is written until the first commit, so that commit can already
    /// hold data and leaves no dead catalog behind.
    pub(super) fn fresh(fresh: Fresh, catalog: &Catalog) -> Result<Store> {
        let file = fresh.file;
        let backend = file.backend();
        backend.set_len(REGION_START)?;
        let slot = Slot {
            generation: fresh.base_generation,
            file_id: fresh.file_id,
            committed_end: REGION_START,
            durable_end: REGION_START,
            catalog_offset: 0,
            catalog_len: 0,
            catalog_crc: 0,
        };
        let snapshot = Snapshot {
            slot,
            page: 1,
            tables: catalog
                .channels
                .iter()
                .map(|c| Table::all_default(c.geometry.num_chunks()))
                .collect(),
            catalog: catalog.clone(),
            metadata: Arc::new(serde_json::Value::Null),
            checks: Arc::default(),
            map: Arc::new(file.map(REGION_START, REGION_START)?),
        };
        // Page 1 counts as durable, so the first commit goes to slot page A.
        let backend = (fresh.wrap)(backend);
        let mut writer = Writer::new(backend, fresh.lock, slot, 1, fresh.on_drop)?;
        writer.set_growth(fresh.growth);
        Ok(Store {
            txn_thread: AtomicU64::new(0),
            file: RwLock::new(file),
            path: fresh.path,
            current: RwLock::new(Arc::new(snapshot)),
            writer: Some(Mutex::new(writer)),
            pinned: false,
            auto_compact: Mutex::new(None),
            wrap: fresh.wrap,
            anonymous: fresh.anonymous.map(Mutex::new),
        })
    }

    /// Create a new file holding `catalog`. With a path, the file is built under a
    /// temporary name in the same directory and renamed into place by
    /// [`Store::finish_create`], so readers never see a half-made file; without a path it
    /// is anonymous, placed by the process's default [`AnonymousBacking`].
    pub(crate) fn create(
        path: Option<&Path>,
        catalog: &Catalog,
    ) -> Result<(Store, Option<tempfile::TempPath>)> {
        let (file, lock, temp, anonymous) = match path {
            Some(path) => {
                let lock = WriterLock::acquire(path)?;
                remove_stale_temps(path);
                let (file, temp) = temp_beside(path, "new")?;
                (file.into(), Some(lock), Some(temp), None)
            }
            None => {
                let backing = AnonymousBacking::process_default();
                let room = REGION_START.saturating_add(uncompressed_bytes(catalog));
                let (file, anonymous) = Anonymous::create(backing, REGION_START, room)?;
                (file, None, None, Some(anonymous))
            }
        };
        let fresh = Fresh {
            file,
            path: path.map(Path::to_path_buf),
            lock,
            base_generation: 0,
            file_id: new_file_id(),
            growth: Growth::Preallocate,
            on_drop: if path.is_some() {
                OnDrop::Sync
            } else {
                OnDrop::Nothing
            },
            wrap: no_wrap(),
            anonymous,
        };
        let store = Store::fresh(fresh, catalog)?;
        if path.is_none() {
            *super::lock(&store.auto_compact) = Some(AutoCompact::ANONYMOUS);
        }
        Ok((store, temp))
    }

    /// Write the first commit if nothing was committed yet; for a named file, make it
    /// durable and give it its final name.
    pub(crate) fn finish_create(&self, temp: Option<tempfile::TempPath>) -> Result {
        let mut txn = self.begin()?;
        if txn.is_first_commit() {
            txn.catalog_mut(); // the catalog must be written even if nothing else changed
        }
        txn.commit()?;
        if let (Some(temp), Some(path)) = (temp, &self.path) {
            self.sync()?;
            temp.persist(path).map_err(|e| file_error(path, e.error))?;
            // The file has its name: its lock sidecar stays (until now, a failure removed it).
            self.writer_mut(Writer::keep_lock_file)?;
            sync_parent_dir(path)?;
        }
        Ok(())
    }
}

/// The bytes of every channel of `catalog` uncompressed: about what writing each chunk once
/// appends, or more.
fn uncompressed_bytes(catalog: &Catalog) -> u64 {
    (catalog.channels.iter())
        .map(|c| c.geometry.num_bytes() as u64)
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_files_temporaries_match() {
        let p = Path::new("/d/a");
        assert!(is_temp_of(p, ".a.cimg-tmp-new-Ab12cD"));
        assert!(is_temp_of(p, ".a.cimg-tmp-compact-xYz789"));
        assert!(!is_temp_of(p, ".a.cimg-tmp-compact-xYz78"));
        assert!(!is_temp_of(p, ".a.cimg-tmp-x.cimg-tmp-compact-xYz789"));
        assert!(!is_temp_of(p, ".b.cimg-tmp-new-Ab12cD"));
        assert!(!is_temp_of(p, "a"));
    }
}
