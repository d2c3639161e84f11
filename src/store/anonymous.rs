//! Where an anonymous store (a channel or image created without a path) keeps its bytes:
//! in process memory (on Linux) or in an unlinked temporary file, and moving between the
//! two.
//!
//! The store only ever sees a [`Storage`]: records, mappings and commits are the same on
//! both. A move copies every record into new storage and switches the writer, the store's
//! storage and the current snapshot to it, all under the writer lock. Snapshots taken
//! before the move keep their mapping of the old storage, which keeps it alive until they
//! are dropped; nobody writes to the old storage after the move, so what they read stays
//! exact.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use super::writer::Writer;
use super::{Snapshot, Store, lock, unpoisoned, write};
use crate::error::{Argument, Error, Result};
use crate::format::REGION_START;
use crate::io::{Backend, Storage};

/// Where an anonymous channel or image — one created without a path, such as
/// [`Channel::new`](crate::Channel::new), [`Channel::zeros`](crate::Channel::zeros) or
/// [`AnyImage::new`](crate::AnyImage::new) — keeps its bytes.
///
/// Every write to a store appends copy-on-write, so a file-backed anonymous store pays the
/// kernel's write-back of dirty pages for data that nobody will read from disk; while other
/// processes fill the page cache with dirty pages of their own, the kernel throttles those
/// writes and a `set_chunk` loop runs up to about three times slower (the `anon_backing`
/// example measures it). In memory there is no write-back at all, as in the original library,
/// which keeps its chunks in RAM. A temporary file bounds the memory instead: the page
/// cache keeps what fits.
///
/// New anonymous stores take the process default ([`AnonymousBacking::process_default`],
/// [`AnonymousBacking::auto`] unless [`set_process_default`](Self::set_process_default)
/// changed it); a handle can change its own with `set_anonymous_backing` (for instance
/// [`AnyChannel::set_anonymous_backing`](crate::AnyChannel::set_anonymous_backing)).
/// [`Stats::in_memory`](crate::Stats::in_memory) tells where a store is. Nothing about
/// the bytes differs: [`save_as`](crate::AnyChannel::save_as) writes the same file from
/// either.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnonymousBacking {
    /// In memory, on Linux: process-private anonymous memory (counted in the process's
    /// resident size; it leaves RAM only through swap), reserved with room to grow, its
    /// pages allocated as writes fill them. The first read of each blob after a write then
    /// finds it mapped already, instead of paying a page fault per 4 KiB page as a
    /// shared-memory file (memfd) does. Elsewhere an unlinked temporary file in
    /// [`std::env::temp_dir`].
    Memory,
    /// An unlinked temporary file in `dir` ([`std::env::temp_dir`] when `None`).
    TempFile {
        /// The directory of the temporary file.
        dir: Option<PathBuf>,
    },
    /// In memory while the store's bytes stay at or below `spill_above`; the write that
    /// would take them past it first moves them to an unlinked temporary file in `dir`
    /// ([`std::env::temp_dir`] when `None`), where the store then stays. A
    /// [`compact`](crate::AnyChannel::compact)ion, or setting the backing again, puts it
    /// back in memory if its bytes fit.
    ///
    /// The bytes counted are every record written, superseded ones included: rewriting a
    /// chunk adds its new bytes and frees nothing until a compaction.
    Auto {
        /// Bytes above which the store moves to a temporary file.
        spill_above: u64,
        /// The directory of the temporary file.
        dir: Option<PathBuf>,
    },
}

/// Whether [`AnonymousBacking::Memory`] really is memory on this platform (where its page
/// handling was measured).
const MEMORY_SUPPORTED: bool = cfg!(target_os = "linux");

/// The default threshold where the memory size is unknown.
const FALLBACK_SPILL_ABOVE: u64 = 1 << 30;

/// The process default, when set; `None` means [`AnonymousBacking::auto`].
static PROCESS_DEFAULT: RwLock<Option<AnonymousBacking>> = RwLock::new(None);

impl AnonymousBacking {
    /// [`Auto`](Self::Auto) with the default threshold
    /// ([`default_spill_above`](Self::default_spill_above)) and the default temporary
    /// directory: the backing of new anonymous stores unless the process default changed.
    pub fn auto() -> AnonymousBacking {
        AnonymousBacking::Auto {
            spill_above: AnonymousBacking::default_spill_above(),
            dir: None,
        }
    }

    /// The default threshold of [`Auto`](Self::Auto): an eighth of the memory, which is
    /// the physical RAM or, if lower, the memory limit of the process's control group (as
    /// seen from inside a container); 1 GiB where the RAM size cannot be read. In-memory bytes
    /// cannot be evicted like page cache (only swapped), so one store must not crowd out
    /// the decompressed buffers next to it, the page cache and a few other stores: an
    /// eighth of 16 GiB, 2 GiB, holds a 4-channel 8192 × 8192 `f32` render compressed 2:1
    /// with a few full rewrites on top. Read once per process.
    pub fn default_spill_above() -> u64 {
        static SPILL_ABOVE: OnceLock<u64> = OnceLock::new();
        *SPILL_ABOVE.get_or_init(|| memory_limit().map_or(FALLBACK_SPILL_ABOVE, |m| m / 8))
    }

    /// The backing new anonymous stores of this process get.
    pub fn process_default() -> AnonymousBacking {
        unpoisoned(PROCESS_DEFAULT.read())
            .clone()
            .unwrap_or_else(AnonymousBacking::auto)
    }

    /// Set the backing of anonymous stores created from now on in this process (stores
    /// that exist keep theirs).
    pub fn set_process_default(backing: AnonymousBacking) {
        *unpoisoned(PROCESS_DEFAULT.write()) = Some(backing);
    }

    /// Whether a store of `used` bytes belongs in memory.
    fn wants_memory(&self, used: u64) -> bool {
        MEMORY_SUPPORTED
            && match self {
                AnonymousBacking::Memory => true,
                AnonymousBacking::TempFile { .. } => false,
                AnonymousBacking::Auto { spill_above, .. } => used <= *spill_above,
            }
    }

    /// The directory for a temporary file.
    fn dir(&self) -> PathBuf {
        match self {
            AnonymousBacking::TempFile { dir: Some(dir) }
            | AnonymousBacking::Auto { dir: Some(dir), .. } => dir.clone(),
            _ => std::env::temp_dir(),
        }
    }

    /// New empty storage for `used` bytes, with room for about `room` in memory: in memory
    /// or, with `in_memory` false, in a temporary file.
    fn new_storage(&self, in_memory: bool, used: u64, room: u64) -> Result<Storage> {
        if in_memory {
            let roomy_limit = match self {
                AnonymousBacking::Auto { spill_above, .. } => Some(*spill_above),
                _ => None,
            };
            // The slot pages are rewritten in place: readers never see them (SPEC §11).
            // Room past the size at which the store leaves memory would never be used.
            let room = roomy_limit.map_or(room, |limit| room.min(limit));
            return Ok(Storage::memory(REGION_START, used.max(room), roomy_limit)?);
        }
        let dir = self.dir();
        let file = tempfile::tempfile_in(&dir).map_err(|source| temp_file_error(&dir, source))?;
        Ok(file.into())
    }
}

/// Physical memory, or the control group's memory limit if lower (cgroup v2, then v1, at
/// the root of the process's cgroup namespace, as in a container).
#[cfg(target_os = "linux")]
fn memory_limit() -> Option<u64> {
    let info = rustix::system::sysinfo();
    #[allow(clippy::useless_conversion)] // `totalram` is 32-bit on 32-bit targets
    let physical = u64::from(info.totalram).checked_mul(u64::from(info.mem_unit.max(1)))?;
    let cgroup_limits = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .into_iter()
    .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    Some(cgroup_limits.fold(physical, u64::min)).filter(|&m| m > 0)
}

#[cfg(not(target_os = "linux"))]
fn memory_limit() -> Option<u64> {
    None
}

/// The error of making or filling a temporary file in `dir`.
fn temp_file_error(dir: &Path, source: io::Error) -> Error {
    Error::TempFile {
        dir: dir.to_path_buf(),
        source,
    }
}

/// The backing of an anonymous store, and where its bytes are now.
pub(super) struct Anonymous {
    backing: AnonymousBacking,
    in_memory: bool,
}

impl Anonymous {
    /// New empty storage for a store of `used` bytes, placed as `backing` says; in memory,
    /// with room reserved for about `room` bytes (address space only: pages come with the
    /// writes), so that it seldom has to move to a larger reservation while it fills.
    pub(super) fn create(
        backing: AnonymousBacking,
        used: u64,
        room: u64,
    ) -> Result<(Storage, Anonymous)> {
        let in_memory = backing.wants_memory(used);
        let storage = backing.new_storage(in_memory, used, room)?;
        Ok((storage, Anonymous { backing, in_memory }))
    }
}

/// Bytes copied per read and write when a store moves.
const COPY_PIECE: u64 = 4 << 20;

/// Copy the first `len` bytes of `from` into `to`.
fn copy_prefix(from: &Storage, to: &dyn Backend, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_PIECE.min(len) as usize];
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(COPY_PIECE) as usize;
        from.read_exact_at(&mut buf[..n], offset)?;
        to.write_all_at(&buf[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

impl Store {
    /// The backing of an anonymous store; `None` for a named file.
    pub(crate) fn anonymous_backing(&self) -> Option<AnonymousBacking> {
        Some(lock(self.anonymous.as_ref()?).backing.clone())
    }

    /// Whether the store's bytes are in memory (only an anonymous store's can be).
    pub(super) fn in_memory(&self) -> bool {
        self.anonymous.as_ref().is_some_and(|a| lock(a).in_memory)
    }

    /// The backing of the copy a compaction makes (named files have none).
    pub(super) fn backing_of_copy(&self) -> AnonymousBacking {
        self.anonymous_backing()
            .unwrap_or_else(AnonymousBacking::process_default)
    }

    /// Give an anonymous store another backing, moving its bytes now if they are not where
    /// it puts them. On failure nothing changed.
    pub(crate) fn set_anonymous_backing(&self, backing: AnonymousBacking) -> Result {
        let Some(anonymous) = &self.anonymous else {
            return Err(Error::invalid(
                Argument::AnonymousBacking,
                "a named file",
                "an anonymous channel or image",
            ));
        };
        let mut writer = self.lock_writer()?;
        writer.check_usable()?;
        let mut anonymous = lock(anonymous);
        let in_memory = backing.wants_memory(writer.append_end());
        if in_memory != anonymous.in_memory {
            self.move_bytes(&mut writer, &backing, in_memory)?;
            anonymous.in_memory = in_memory;
        }
        anonymous.backing = backing;
        Ok(())
    }

    /// Before appending a record that ends at `end`: move an anonymous store in memory to a
    /// temporary file if the record would take it past its threshold. On failure the store
    /// stays in memory, unchanged and usable, and the record must not be appended.
    pub(super) fn make_room(&self, writer: &mut Writer, end: u64) -> Result {
        let Some(anonymous) = &self.anonymous else {
            return Ok(());
        };
        let mut anonymous = lock(anonymous);
        if anonymous.in_memory && !anonymous.backing.wants_memory(end) {
            self.move_bytes(writer, &anonymous.backing, false)?;
            anonymous.in_memory = false;
        }
        Ok(())
    }

    /// Copy every record (committed or staged by the open transaction) into new storage
    /// placed by `backing` and `in_memory`, and continue on it.
    fn move_bytes(
        &self,
        writer: &mut Writer,
        backing: &AnonymousBacking,
        in_memory: bool,
    ) -> Result {
        // With exact growth the file ends at the last record, before its alignment padding.
        let used = writer.append_end().min(writer.file_len());
        let storage = backing.new_storage(in_memory, used, used)?;
        let backend = (self.wrap)(storage.backend());
        let copied = copy_prefix(&self.file(), backend.as_ref(), used)
            .and_then(|()| backend.set_len(writer.file_len()));
        if let Err(source) = copied {
            return Err(match in_memory {
                true => Error::Io(source),
                false => temp_file_error(&backing.dir(), source),
            });
        }
        let current = self.snapshot();
        let map = Arc::new(storage.map(current.slot.committed_end, writer.file_len())?);
        // Nothing can fail from here on: the store switches whole.
        writer.switch_backend(backend);
        *write(&self.file) = storage;
        self.publish(Snapshot {
            map,
            ..current.shallow_clone()
        });
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::format::Catalog;
    use crate::store::fixture::{self, Stored, blob, put_blob, stored, stored_in};
    use crate::store::{BlobRead, StoredChunk};

    /// What `/proc/self/fd` shows for the store's open file (which must be one).
    fn fd_link(store: &Store) -> String {
        let fd = store.file().file().expect("a file").as_raw_fd();
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn anonymous_store(catalog: &Catalog) -> Store {
        let (store, temp) = Store::create(None, catalog).unwrap();
        store.finish_create(temp).unwrap();
        store
    }

    #[test]
    fn an_anonymous_store_is_in_process_memory_by_default() {
        let store = anonymous_store(&fixture::catalog());
        assert!(matches!(store.file(), Storage::Memory(_)));
        assert!(store.in_memory());
        assert_eq!(
            store.anonymous_backing(),
            Some(AnonymousBacking::process_default())
        );
    }

    #[test]
    fn growth_in_memory_moves_to_larger_memory_and_old_snapshots_keep_theirs() {
        let store = anonymous_store(&fixture::catalog());
        store
            .set_anonymous_backing(AnonymousBacking::Memory)
            .unwrap();
        put_blob(&store, 0, &blob(5000, 1));
        let before = store.snapshot();
        for seed in 2..42 {
            put_blob(&store, 1, &blob(100_000, seed));
        }
        let after = store.snapshot();
        // The mapping's length is the memory's capacity: 4 MB did not fit the first.
        assert!(after.map.len() > before.map.len() && after.map.len() >= 4_000_000);
        assert!(store.in_memory());
        assert_eq!(
            stored_in(&before, 0, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(5000, 1))
        );
        assert_eq!(
            stored_in(&before, 1, BlobRead::Verify).unwrap(),
            stored(&anonymous_store(&fixture::catalog()), 1, BlobRead::Verify).unwrap(),
            "chunk 1 was never written in the old snapshot"
        );
        assert_eq!(
            stored(&store, 1, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(100_000, 41))
        );
        assert_eq!(
            stored(&store, 0, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(5000, 1))
        );
    }

    #[test]
    fn a_move_to_a_temp_file_keeps_old_snapshots_and_every_record() {
        let store = anonymous_store(&fixture::catalog());
        put_blob(&store, 0, &blob(5000, 1));
        let before = store.snapshot();
        let dir = tempfile::tempdir().unwrap();
        let backing = AnonymousBacking::TempFile {
            dir: Some(dir.path().to_path_buf()),
        };
        store.set_anonymous_backing(backing.clone()).unwrap();
        assert!(!store.in_memory());
        assert!(fd_link(&store).starts_with(dir.path().to_str().unwrap()));
        assert_eq!(store.anonymous_backing(), Some(backing));
        put_blob(&store, 1, &blob(3000, 2));
        // The snapshot from before the move reads the memory, which only its mapping keeps.
        assert_eq!(
            stored_in(&before, 0, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(5000, 1))
        );
        assert!(!Arc::ptr_eq(&before.map, &store.snapshot().map));
        for (index, expected) in [(0, blob(5000, 1)), (1, blob(3000, 2))] {
            assert_eq!(
                stored(&store, index, BlobRead::Verify).unwrap(),
                Stored::Blob(expected)
            );
        }
        // And back: the bytes move into new memory.
        store
            .set_anonymous_backing(AnonymousBacking::Memory)
            .unwrap();
        assert!(matches!(store.file(), Storage::Memory(_)));
        assert_eq!(
            stored(&store, 1, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(3000, 2))
        );
    }

    #[test]
    fn a_move_inside_a_transaction_keeps_its_staged_records_and_maps_the_new_file() {
        let store = anonymous_store(&fixture::catalog());
        put_blob(&store, 0, &blob(300, 1));
        let dir = tempfile::tempdir().unwrap();
        let spill_above = store.writer_mut(|w| w.append_end()).unwrap() + 500;
        store
            .set_anonymous_backing(AnonymousBacking::Auto {
                spill_above,
                dir: Some(dir.path().to_path_buf()),
            })
            .unwrap();
        let file_len = store.stats().unwrap().file_len;
        // The first blob fits; the second takes the store past the threshold, so it moves
        // with the first one staged. The file does not grow: the old mapping would cover
        // the commit, but only the new file holds its records.
        let mut txn = store.begin().unwrap();
        txn.put(fixture::ID, 1, StoredChunk::Blob(&blob(300, 2)))
            .unwrap();
        assert!(store.in_memory());
        txn.put(fixture::ID, 2, StoredChunk::Blob(&blob(300, 3)))
            .unwrap();
        assert!(!store.in_memory());
        txn.commit().unwrap();
        assert_eq!(store.stats().unwrap().file_len, file_len);
        for (index, seed) in [(0, 1), (1, 2), (2, 3)] {
            assert_eq!(
                stored(&store, index, BlobRead::Verify).unwrap(),
                Stored::Blob(blob(300, seed))
            );
        }
    }

    #[test]
    fn the_default_threshold_is_an_eighth_of_a_known_memory_size() {
        let memory = memory_limit().expect("sysinfo reports the RAM on Linux");
        assert_eq!(AnonymousBacking::default_spill_above(), memory / 8);
    }
}
