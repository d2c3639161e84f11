//! The single-writer lock: an exclusive advisory lock on the sidecar file `<path>.lock`.
//!
//! The data file itself is never locked (on Windows an exclusive lock would also block
//! readers, and a compaction renames a new file over the data file while the sidecar stays).
//! `flock` locks belong to the open file description, so a second writer in the same
//! process is refused just like one in another process.
//!
//! Rules that keep the lock exclusive although a sidecar may be removed (SPEC §11):
//! - a sidecar is only removed by a handle that holds its lock, and only when that handle's
//!   own open created it and then failed, so a failed open leaves nothing behind;
//! - a lock counts only if, once it is held, `<path>.lock` still names the locked file.
//!   Otherwise the file was removed (and maybe re-created by another opener) between this
//!   opener's `open` and its `flock`, and the attempt starts over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::{file_error, same_file};
use crate::error::{Error, Result};

/// Rounds of open-and-lock before giving up with [`Error::Locked`]: each extra round means
/// a failing open removed the sidecar in between, which takes a race with another opener.
const ATTEMPTS: usize = 8;

/// Held for as long as a read-write handle is open; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
    /// The sidecar's path.
    path: PathBuf,
    /// Remove the sidecar when the lock is dropped: this lock created it, and the open that
    /// took the lock has not succeeded (yet).
    remove_on_drop: bool,
}

/// The sidecar lock path of a container file.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl WriterLock {
    /// Take the lock or fail at once with [`Error::Locked`]. Until [`keep`](Self::keep) is
    /// called, dropping the lock removes a sidecar this call created.
    ///
    /// # Errors
    /// [`Error::Locked`] when another handle holds it; [`Error::File`] when the sidecar
    /// cannot be opened or created (e.g. the directory is missing or read-only).
    pub(crate) fn acquire(path: &Path) -> Result<WriterLock> {
        let sidecar = lock_path(path);
        for _ in 0..ATTEMPTS {
            let Some((file, created)) = open_or_create(&sidecar)? else {
                continue; // removed between the two opens: start over
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    });
                }
                // Not held, so not removed even when created here: another opener may
                // have locked it meanwhile.
                Err(TryLockError::Error(e)) => return Err(file_error(&sidecar, e)),
            }
            let mut lock = WriterLock {
                file,
                path: sidecar.clone(),
                remove_on_drop: created,
            };
            if lock.still_named()? {
                return Ok(lock);
            }
            // What this lock holds is no longer the sidecar: it is not ours to remove.
            lock.remove_on_drop = false;
        }
        Err(Error::Locked {
            path: path.to_path_buf(),
        })
    }

    /// Keep the sidecar after the lock is released: the open that took it succeeded.
    pub(crate) fn keep(&mut self) {
        self.remove_on_drop = false;
    }

    /// Whether the sidecar path still names the locked file.
    fn still_named(&self) -> Result<bool> {
        let held = self
            .file
            .metadata()
            .map_err(|e| file_error(&self.path, e))?;
        match std::fs::metadata(&self.path) {
            Ok(named) => Ok(same_file(&held, &named)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(file_error(&self.path, e)),
        }
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Still locked here (the file closes after this), so no opener following the rules
        // holds it; and only if the path still names it (someone outside the protocol may
        // have removed it, and a new sidecar there belongs to another writer). Best effort:
        // a sidecar that cannot be removed is only an empty file.
        if self.remove_on_drop && self.still_named().unwrap_or(false) {
            let _ = std::fs::remove_file(&self.path);
        }
        // Unlock explicitly rather than by closing: a `flock` belongs to the open file
        // description, which a child process shares from `fork` until its `exec` closes
        // the descriptor. Closing ours alone would keep the file locked for that window,
        // and a reopen right after this drop would see `Locked`.
        let _ = self.file.unlock();
    }
}

/// Open the sidecar, creating it if missing; also returns whether this call created it.
/// `None` when it vanished between the attempt to create it and the attempt to open it.
fn open_or_create(sidecar: &Path) -> Result<Option<(File, bool)>> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    match options.clone().create_new(true).open(sidecar) {
        Ok(file) => return Ok(Some((file, true))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file_error(sidecar, e)),
    }
    match options.open(sidecar) {
        Ok(file) => Ok(Some((file, false))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(sidecar, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_lock_removes_only_a_sidecar_it_created_and_did_not_keep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cimg");
        drop(WriterLock::acquire(&path).unwrap());
        assert!(!lock_path(&path).exists(), "created and not kept");

        let mut lock = WriterLock::acquire(&path).unwrap();
        lock.keep();
        drop(lock);
        assert!(lock_path(&path).exists(), "kept");

        drop(WriterLock::acquire(&path).unwrap());
        assert!(lock_path(&path).exists(), "found, not created");
    }

    #[test]
    fn a_dropped_lock_is_released_even_while_a_copy_of_its_descriptor_lives() {
        // A child process between fork and exec holds such a copy of every descriptor.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cimg");
        let mut lock = WriterLock::acquire(&path).unwrap();
        lock.keep();
        let inherited = lock.file.try_clone().unwrap();
        drop(lock);
        drop(WriterLock::acquire(&path).expect("the lock was released"));
        drop(inherited);
    }

    #[test]
    fn a_second_lock_is_refused_and_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cimg");
        let first = WriterLock::acquire(&path).unwrap();
        assert!(matches!(
            WriterLock::acquire(&path),
            Err(Error::Locked { path: p }) if p == path
        ));
        assert!(lock_path(&path).exists());
        drop(first);
    }

    #[test]
    fn a_lock_on_a_removed_sidecar_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cimg");
        let stale = WriterLock::acquire(&path).unwrap();
        // The sidecar is replaced while `stale` holds the old file: a new lock must lock
        // the new file, not be refused by the old one or share it.
        std::fs::remove_file(lock_path(&path)).unwrap();
        let mut fresh = WriterLock::acquire(&path).unwrap();
        assert!(!stale.still_named().unwrap());
        assert!(fresh.still_named().unwrap());
        fresh.keep();
        drop((stale, fresh));
        assert!(lock_path(&path).exists());
    }

    #[test]
    fn a_missing_directory_is_a_file_error_naming_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no").join("a.cimg");
        match WriterLock::acquire(&path) {
            Err(Error::File { path: p, source }) => {
                assert_eq!(p, lock_path(&path));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }
}
