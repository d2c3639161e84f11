//! Files and memory: the mutation seam ([`Backend`]), where a store's bytes are
//! ([`Storage`]), the mappings readers slice and the writer lock.
//!
//! Nothing here knows about chunks or records.

mod lock;
mod memory;
// The mapping is one of the two modules allowed `unsafe` (crate root).
#[allow(unsafe_code)]
mod mmap;
mod storage;

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

pub(crate) use lock::WriterLock;
#[cfg(test)]
pub(crate) use lock::lock_path;

use crate::error::{Error, Result};
pub(crate) use mmap::Mapping;
use mmap::start_writeback;
pub(crate) use storage::Storage;

/// Every mutation of a container file goes through this trait, so tests can inject I/O
/// faults and simulate power loss on the production code path.
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait Backend: Send + Sync {
    /// Current length of the file.
    fn len(&self) -> io::Result<u64>;
    /// Fill `buf` from `offset`; fails on a short read.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Grow (or, only for a file no one maps, shrink) the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make every completed write durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Have the file's pages in `[offset, offset + len)` (inside the file, past every byte a
    /// commit references) created in the page cache ahead of the writes that will fill them,
    /// by writing zeros there. The writer calls it from a helper thread and waits for it
    /// before its next operation on the file. The default does nothing: a backend that
    /// records or injects faults keeps its sequence of writes deterministic.
    fn prefault(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
    /// Start writing `[offset, offset + len)` back to disk without waiting, ahead of a
    /// sync. The default does nothing (as for [`prefault`](Self::prefault)).
    fn start_writeback(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

/// Zeros written by [`FileBackend::prefault`] per call.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// The production backend: positioned reads and writes on a shared [`File`].
pub(crate) struct FileBackend(pub Arc<File>);

impl Backend for FileBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn start_writeback(&self, offset: u64, len: u64) {
        start_writeback(&self.0, offset, len);
    }
    fn prefault(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut at = offset;
        let end = offset.saturating_add(len);
        while at < end {
            let n = (end - at).min(ZEROS.len() as u64) as usize;
            self.0.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
}

/// Read `len` bytes at `offset` into a new buffer, mapping a short read to `None`.
pub(crate) fn read_owned(file: &File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The error of a file operation on `path`, naming the path.
pub(crate) fn file_error(path: &Path, source: io::Error) -> Error {
    Error::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether two metadata describe the same file (device and inode).
pub(crate) fn same_file(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// How a container file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// Open the container file at `path` for reading, and for writing too with
/// [`Access::ReadWrite`].
///
/// # Errors
/// [`Error::File`] naming `path` with the OS error; for a directory (which a read-only open
/// accepts) the error of reading it, `IsADirectory`.
pub(crate) fn open_container(path: &Path, access: Access) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    let metadata = file.metadata().map_err(|e| file_error(path, e))?;
    if metadata.is_dir() {
        // Reading it gives the operating system's own error (EISDIR), errno included.
        let error = file
            .read_at(&mut [0u8; 1], 0)
            .err()
            .unwrap_or_else(|| io::ErrorKind::IsADirectory.into());
        return Err(file_error(path, error));
    }
    Ok(file)
}
