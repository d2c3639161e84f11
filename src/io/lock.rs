//! The single-writer lock: an exclusive advisory lock on the sidecar file `<path>.lock`.
//!
//! The data file itself is never locked (on Windows an exclusive lock would also block
//! readers, and a compaction renames a new file over the data file while the sidecar stays).
//! `flock` locks belong to the open file description, so a second writer in the same
//! process is refused just like one in another process.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held for as long as a read-write handle is open; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

/// The sidecar lock path of a container file.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl WriterLock {
    /// Take the lock or fail at once with [`Error::Locked`].
    pub(crate) fn acquire(path: &Path) -> Result<WriterLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path(path))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::Io(e)),
        }
    }
}
