//! The read-only mapping of a container file: the only use of memmap2 and the only place
//! a slice over mapped bytes is formed.
//!
//! Rule that makes this sound (SPEC §11): within one validated commit, the bytes in
//! `[REGION_START, committed_end)` are immutable — the writer only appends past the newest
//! `committed_end`, and the file never shrinks in place. Callers only ask for ranges inside
//! a validated commit. A program outside the protocol that truncates or rewrites the file
//! while it is mapped breaks this rule; that residual risk is documented in the crate docs.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::sync::{Mutex, PoisonError};

use memmap2::{Mmap, MmapOptions};

/// A read-only, shared mapping of the first `len` bytes of a file.
pub(crate) struct Mapping {
    map: Option<Mmap>,
    /// Start offsets of the ranges [`populate_once`](Self::populate_once) has populated.
    populated: Mutex<HashSet<u64>>,
}

impl Mapping {
    /// Map the first `len` bytes of `file` (no mapping at all for `len == 0`).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping {
                map: None,
                populated: Mutex::default(),
            });
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        // SAFETY: the mapping is read-only and only ever sliced inside a validated commit's
        // range, whose bytes neither this process nor any writer following the protocol
        // modifies or truncates while mapped (module docs). `len` does not exceed the file
        // length the caller observed, and the file never shrinks in place.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Mapping {
            map: Some(map),
            populated: Mutex::default(),
        })
    }

    /// Mapped length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.map.as_ref().map_or(0, |m| m.len() as u64)
    }

    /// Map the page-cache pages of `[offset, offset + len)` into this mapping in one call,
    /// ahead of a first read of them (Linux ≥ 5.14; a no-op elsewhere or when the range is
    /// not all mapped). Touching a freshly mapped 3 MiB blob page by page takes hundreds of
    /// minor faults, which cost more than reading it. Failure is harmless: the reads fault.
    pub(crate) fn populate(&self, offset: u64, len: usize) {
        #[cfg(target_os = "linux")]
        if let (Some(map), Ok(start)) = (&self.map, usize::try_from(offset))
            && start.checked_add(len).is_some_and(|end| end <= map.len())
        {
            let _ = map.advise_range(memmap2::Advice::PopulateRead, start, len);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }

    /// [`populate`](Self::populate) the range starting at `offset` the first time it is
    /// asked for through this mapping only. Populating a range whose pages are mapped already
    /// still walks its page tables (about 20 µs for 3 MiB), a cost a hot read loop should
    /// not pay; pages the kernel unmaps later (reclaim) fault back in as usual.
    pub(crate) fn populate_once(&self, offset: u64, len: usize) {
        let first = self
            .populated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(offset);
        if first {
            self.populate(offset, len);
        }
    }

    /// The bytes `[offset, offset + len)`, or `None` if they are not all mapped.
    pub(crate) fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        let start = usize::try_from(offset).ok()?;
        map.get(start..start.checked_add(len)?)
    }
}

/// Outputs at least this large ask for transparent huge pages.
const HUGE_PAGE_OUTPUT: usize = 4 << 20;

/// A zero-filled vector of `len` elements for a large output (a whole decompressed channel).
/// The zeroed allocation is untouched (fresh zero pages from the OS), and on Linux it is
/// marked for transparent huge pages before anything writes it: the first write then faults
/// in 2 MiB at a time instead of 4 KiB, which for a 256 MiB channel saves about 65,000 page
/// faults — more time than the decompression itself on small machines. Elsewhere, or when
/// the kernel declines, it is an ordinary zeroed vector.
pub(crate) fn large_zeroed_vec<T: bytemuck::Pod>(len: usize) -> Vec<T> {
    let mut v = bytemuck::zeroed_vec::<T>(len);
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut v);
    if bytes.len() >= HUGE_PAGE_OUTPUT {
        advise_huge_pages(bytes);
    }
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(bytes: &mut [u8]) {
    const HUGE: usize = 2 << 20;
    let start = bytes.as_mut_ptr() as usize;
    let aligned_start = start.next_multiple_of(HUGE);
    let end = (start + bytes.len()) & !(HUGE - 1);
    if aligned_start < end {
        // SAFETY: `[aligned_start, end)` lies inside `bytes`, a live allocation this function
        // borrows exclusively. MADV_HUGEPAGE is advice: it never changes the contents,
        // validity or ownership of the memory, only how later page faults are served. The
        // result is ignored because declining the advice is harmless.
        unsafe {
            libc::madvise(
                aligned_start as *mut libc::c_void,
                end - aligned_start,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_bytes: &mut [u8]) {}

/// Start writing the dirty page-cache pages of `file` in `[offset, offset + len)` to disk
/// without waiting for it (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a later
/// fdatasync finds less to do. Durability still comes only from that fdatasync. A no-op
/// elsewhere; errors are ignored (the fdatasync reports what matters).
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) {
        // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open for the
        // duration of the call; it touches no memory of this process.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}
