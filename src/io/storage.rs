//! Where a store's bytes are: a file (named, or an unlinked temporary one), or process
//! memory. Records, commits and mappings work the same on both.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::memory::{Memory, MemoryBackend};
use super::{Backend, FileBackend, Mapping};

/// The bytes of a store; cheap to clone (it shares them).
#[derive(Clone)]
pub(crate) enum Storage {
    File(Arc<File>),
    Memory(Arc<Memory>),
}

impl From<File> for Storage {
    fn from(file: File) -> Storage {
        Storage::File(Arc::new(file))
    }
}

impl Storage {
    /// Empty memory for about `expected_len` bytes, whose first `head` bytes are rewritten
    /// in place and never shown to readers (a container's slot pages), with room to grow up
    /// to `roomy_limit` bytes (see [`Memory::new`]).
    pub(crate) fn memory(
        head: u64,
        expected_len: u64,
        roomy_limit: Option<u64>,
    ) -> io::Result<Storage> {
        let memory = Memory::new(head, expected_len, roomy_limit)?;
        Ok(Storage::Memory(Arc::new(memory)))
    }

    /// The file, if the bytes are in one.
    pub(crate) fn file(&self) -> Option<&File> {
        match self {
            Storage::File(file) => Some(file),
            Storage::Memory(_) => None,
        }
    }

    /// The file's metadata; an `Unsupported` error for memory, which has none.
    pub(crate) fn metadata(&self) -> io::Result<Metadata> {
        self.file()
            .ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?
            .metadata()
    }

    /// The length, as a file's.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            Storage::File(file) => Ok(file.metadata()?.len()),
            Storage::Memory(memory) => Ok(memory.len()),
        }
    }

    /// Fill `buf` from `offset`; fails on a short read.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Storage::File(file) => file.read_exact_at(buf, offset),
            Storage::Memory(memory) => MemoryBackend(memory.clone()).read_exact_at(buf, offset),
        }
    }

    /// The production backend writing these bytes.
    pub(crate) fn backend(&self) -> Box<dyn Backend> {
        match self {
            Storage::File(file) => Box::new(FileBackend(file.clone())),
            Storage::Memory(memory) => Box::new(MemoryBackend(memory.clone())),
        }
    }

    /// A mapping for readers of the commit ending at `committed_end`, whose records are all
    /// written: for a file, of its first `len` bytes; for memory, a view of it in which
    /// that commit's bytes are from now on immutable.
    pub(crate) fn map(&self, committed_end: u64, len: u64) -> io::Result<Mapping> {
        match self {
            Storage::File(file) => Mapping::new(file, len),
            Storage::Memory(memory) => memory.map(committed_end),
        }
    }

    /// As [`map`](Self::map), but `current` itself when it already shows the commit: for a
    /// file, when it maps at least `committed_end` bytes; for memory, when it views the
    /// reservation the bytes are in now (a growth moves them to a new one).
    pub(crate) fn map_covering(
        &self,
        current: &Arc<Mapping>,
        committed_end: u64,
        len: u64,
    ) -> io::Result<Arc<Mapping>> {
        match self {
            Storage::File(file) if !current.is_file() || current.len() < committed_end => {
                Ok(Arc::new(Mapping::new(file, len)?))
            }
            Storage::File(_) => Ok(current.clone()),
            Storage::Memory(memory) => {
                let reservation = memory.expose(committed_end)?;
                Ok(match current.views(&reservation) {
                    true => current.clone(),
                    false => Arc::new(Mapping::of_memory(reservation)),
                })
            }
        }
    }
}
