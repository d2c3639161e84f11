//! The read-only mapping of a container file: the only use of memmap2 and the only place
//! a slice over mapped bytes is formed.
//!
//! Rule that makes this sound (SPEC §11): within one validated commit, the bytes in
//! `[REGION_START, committed_end)` are immutable — the writer only appends past the newest
//! `committed_end`, and the file never shrinks in place. Callers only ask for ranges inside
//! a validated commit. A program outside the protocol that truncates or rewrites the file
//! while it is mapped breaks this rule; that residual risk is documented in the crate docs.

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// A read-only, shared mapping of the first `len` bytes of a file.
pub(crate) struct Mapping {
    map: Option<Mmap>,
}

impl Mapping {
    /// Map the first `len` bytes of `file` (no mapping at all for `len == 0`).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping { map: None });
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        // SAFETY: the mapping is read-only and only ever sliced inside a validated commit's
        // range, whose bytes neither this process nor any writer following the protocol
        // modifies or truncates while mapped (module docs). `len` does not exceed the file
        // length the caller observed, and the file never shrinks in place.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Mapping { map: Some(map) })
    }

    /// Mapped length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }

    /// The bytes `[offset, offset + len)`, or `None` if they are not all mapped.
    pub(crate) fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let start = usize::try_from(offset).ok()?;
        map.get(start..start.checked_add(len)?)
    }
}
