//! The mappings readers slice: a read-only mapping of a container file, or a view of the
//! process-private memory an in-memory store lives in. The only use of memmap2 and the only
//! place a slice over mapped bytes is formed.
//!
//! Rule that makes this sound (SPEC §11): within one validated commit, the bytes in
//! `[REGION_START, committed_end)` are immutable — the writer only appends past the newest
//! `committed_end`, and the file never shrinks in place. Callers only ask for ranges inside
//! a validated commit. A program outside the protocol that truncates or rewrites the file
//! while it is mapped breaks this rule; that residual risk is documented in the crate docs.
//! For memory (a [`Reservation`]) the rule is not only a protocol: the reservation itself
//! refuses to hand out bytes it has not been told are committed, and to write those.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use memmap2::{Mmap, MmapOptions, MmapRaw};

/// What a [`Mapping`] shows.
enum View {
    /// Nothing (a file of length 0).
    Empty,
    /// A read-only, shared mapping of the first bytes of a file.
    File(Mmap),
    /// The exposed bytes of a reservation (kept alive by this view).
    Memory(Arc<Reservation>),
}

/// The bytes readers of a snapshot slice: a read-only, shared mapping of the first `len`
/// bytes of a file, or a view of a [`Reservation`].
pub(crate) struct Mapping {
    view: View,
    /// Start offsets of the ranges [`populate_once`](Self::populate_once) has populated.
    populated: Mutex<HashSet<u64>>,
}

impl Mapping {
    fn with(view: View) -> Mapping {
        Mapping {
            view,
            populated: Mutex::default(),
        }
    }

    /// Map the first `len` bytes of `file` (no mapping at all for `len == 0`).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping::with(View::Empty));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        // SAFETY: the mapping is read-only and only ever sliced inside a validated commit's
        // range, whose bytes neither this process nor any writer following the protocol
        // modifies or truncates while mapped (module docs). `len` does not exceed the file
        // length the caller observed, and the file never shrinks in place.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Mapping::with(View::File(map)))
    }

    /// A view of `reservation`: it shows the bytes the reservation exposes (see
    /// [`Reservation::expose`]), and keeps the reservation alive.
    pub(crate) fn of_memory(reservation: Arc<Reservation>) -> Mapping {
        Mapping::with(View::Memory(reservation))
    }

    /// Whether this is a view of `reservation`.
    pub(crate) fn views(&self, reservation: &Arc<Reservation>) -> bool {
        matches!(&self.view, View::Memory(r) if Arc::ptr_eq(r, reservation))
    }

    /// Whether this maps a file (or nothing) rather than viewing memory.
    pub(crate) fn is_file(&self) -> bool {
        !matches!(self.view, View::Memory(_))
    }

    /// Mapped length in bytes (a reservation's capacity).
    pub(crate) fn len(&self) -> u64 {
        match &self.view {
            View::Empty => 0,
            View::File(map) => map.len() as u64,
            View::Memory(reservation) => reservation.capacity(),
        }
    }

    /// Map the page-cache pages of `[offset, offset + len)` into this mapping in one call,
    /// ahead of a first read of them (Linux ≥ 5.14; a no-op elsewhere, for memory, or when
    /// the range is not all mapped). Touching a freshly mapped 3 MiB blob page by page takes
    /// hundreds of minor faults, which cost more than reading it. Failure is harmless: the
    /// reads fault. Memory needs none of this: its pages are mapped by the writes.
    pub(crate) fn populate(&self, offset: u64, len: usize) {
        #[cfg(target_os = "linux")]
        if let (View::File(map), Ok(start)) = (&self.view, usize::try_from(offset))
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
        if !matches!(self.view, View::File(_)) {
            return;
        }
        let first = self
            .populated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(offset);
        if first {
            self.populate(offset, len);
        }
    }

    /// The bytes `[offset, offset + len)`, or `None` if they are not all mapped (for memory:
    /// not all exposed).
    pub(crate) fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        match &self.view {
            View::Empty => None,
            View::File(map) => {
                let start = usize::try_from(offset).ok()?;
                map.get(start..start.checked_add(len)?)
            }
            View::Memory(reservation) => reservation.exposed(offset, len),
        }
    }
}

/// Writes at least this large into a reservation have their pages allocated in one call
/// first (see [`Reservation::prefault`]).
const PREFAULTED_WRITE: usize = 256 << 10;

/// A range of process-private anonymous memory holding an in-memory store's bytes, as a file
/// would: offset `o` of the store is byte `o` of the reservation. Pages are allocated by the
/// kernel when the writes that fill them come (the mapping asks for no swap reservation):
/// on Linux a large write has its pages allocated in one `MADV_POPULATE_WRITE` call first,
/// and a reader's first touch of a blob finds it mapped already. Transparent huge pages are
/// not asked for: on the 2-core virtual machine the benchmarks run on, they made the same
/// 256 MiB construction or decompression take anywhere from 1× to 4× its usual time from run
/// to run (a fresh 2 MiB page there sometimes costs far more than 512 small ones).
///
/// Invariant, checked on every access: the bytes `[head, exposed_end)` are immutable.
/// [`exposed`](Self::exposed) hands out shared slices only inside that range, without
/// locking; [`write`](Self::write) refuses any range that overlaps it; `exposed_end` only
/// grows ([`expose`](Self::expose)). Every other access through the pointer (writes, copies
/// out, raising `exposed_end`) holds `access`, so those never race each other. Hence no
/// write ever touches a byte that a slice handed out covers, and no `&mut [u8]` is ever
/// formed over the memory: writes go through `ptr::copy_nonoverlapping`. The first `head`
/// bytes (a container's slot pages, rewritten in place by every commit) are never exposed.
pub(crate) struct Reservation {
    /// The mapping, used only through raw pointers (`MmapRaw` never forms references).
    raw: MmapRaw,
    /// Bytes at the start that are written in place and never exposed.
    head: u64,
    /// End of the immutable, exposed bytes `[head, exposed_end)`; `head` when none are.
    exposed_end: AtomicU64,
    /// Held by every access except the reading of exposed bytes.
    access: Mutex<()>,
}

// `Reservation` is `Send` and `Sync` through its fields (`MmapRaw` is both: it is a pointer
// and a length that unmaps on drop). That is sound because of the invariant above: shared
// slices only cover immutable bytes, and every mutation is serialised by `access` and
// confined to bytes no slice covers, so concurrent use from several threads never has a
// write race with any other access.

impl Reservation {
    /// Reserve `capacity` bytes (at least one page is mapped) whose first `head` bytes will
    /// never be exposed.
    pub(crate) fn new(capacity: u64, head: u64) -> io::Result<Reservation> {
        let len = usize::try_from(capacity.max(1))
            .map_err(|_| io::Error::other("reservation too large for the address space"))?;
        let map = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
        Ok(Reservation {
            raw: MmapRaw::from(map),
            head,
            exposed_end: AtomicU64::new(head),
            access: Mutex::new(()),
        })
    }

    /// Bytes reserved.
    pub(crate) fn capacity(&self) -> u64 {
        self.raw.len() as u64
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // Nothing the lock guards can be left half-updated by a panic.
        self.access.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `[offset, offset + len)` as a range of indices, if it lies inside the reservation.
    fn range(&self, offset: u64, len: usize) -> Option<(usize, usize)> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.raw.len()).then_some((start, end))
    }

    /// The exposed bytes `[offset, offset + len)`, or `None` if they are not all exposed.
    pub(crate) fn exposed(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let (start, end) = self.range(offset, len)?;
        // Acquire: the writes of these bytes happened before the store that exposed them.
        if offset < self.head || end as u64 > self.exposed_end.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `[start, end)` lies inside the live mapping (`range`), which `self` keeps
        // mapped for the returned lifetime. The bytes are exposed, hence initialised (fresh
        // anonymous memory reads as zeros) and never written again (type invariant): no
        // `&mut` and no write through the pointer overlaps them while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(start), end - start) })
    }

    /// Mark every byte from `head` up to `end` immutable and readable through
    /// [`exposed`](Self::exposed). Never lowers the mark; fails if `end` is past the
    /// reservation.
    pub(crate) fn expose(&self, end: u64) -> io::Result<()> {
        if end > self.capacity() {
            return Err(io::Error::other(
                "exposing bytes past the end of a reservation",
            ));
        }
        let _access = self.lock();
        // Release: the writes below `end` (all made under `access`) are visible to readers
        // that see the new mark.
        self.exposed_end.fetch_max(end, Ordering::Release);
        Ok(())
    }

    /// Write `bytes` at `offset`. Refused (an error, nothing written) for a range past the
    /// reservation or overlapping an exposed byte.
    pub(crate) fn write(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let (start, end) = self
            .range(offset, bytes.len())
            .ok_or_else(|| io::Error::other("write past the end of a reservation"))?;
        if bytes.len() >= PREFAULTED_WRITE {
            // One call allocates the pages instead of a fault per 4 KiB page of the copy.
            self.prefault(offset, bytes.len() as u64);
        }
        let _access = self.lock();
        let exposed_end = self.exposed_end.load(Ordering::Relaxed);
        if offset.max(self.head) < (end as u64).min(exposed_end) {
            return Err(io::Error::other("write over committed bytes in memory"));
        }
        // SAFETY: `[start, end)` lies inside the live mapping, which is writable. No shared
        // slice covers it: it is outside `[head, exposed_end)` (checked above under
        // `access`, and `exposed_end` only grows, so no slice handed out earlier covered it
        // either), and every other access to unexposed bytes holds `access`, as this does.
        // `bytes` cannot overlap it: a shared slice into this reservation covers exposed
        // bytes only (or is `copy_into`'s source, a different reservation).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.raw.as_mut_ptr().add(start),
                end - start,
            );
        }
        Ok(())
    }

    /// Fill `buf` from `offset`; an error if that range is past the reservation.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (start, end) = self
            .range(offset, buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let _access = self.lock();
        // SAFETY: `[start, end)` lies inside the live mapping; nothing writes it meanwhile
        // (writes hold `access`), and `buf`, an exclusive borrow, cannot overlap it (no
        // `&mut` into the reservation is ever formed).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.raw.as_ptr().add(start),
                buf.as_mut_ptr(),
                end - start,
            );
        }
        Ok(())
    }

    /// Copy the first `len` bytes into `target`, a reservation nothing has been exposed of
    /// yet, and expose there what is exposed here: `target` then stands in for this one.
    pub(crate) fn copy_into(&self, target: &Reservation, len: u64) -> io::Result<()> {
        let _access = self.lock();
        // The exposed bytes are copied whatever `len` says.
        let exposed_end = self.exposed_end.load(Ordering::Relaxed);
        let end = usize::try_from(len.max(exposed_end))
            .ok()
            .filter(|&end| end <= self.raw.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        // SAFETY: `[0, end)` lies inside the live mapping. While `access` is held nothing
        // writes this reservation, so a shared slice over any of its bytes is valid for as
        // long as the guard lives (readers only form shared slices too).
        let bytes = unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), end) };
        target.write(0, bytes)?;
        target.expose(exposed_end)
    }

    /// Have the kernel allocate the pages of `[offset, offset + len)` now, ahead of the
    /// writes that will fill them (Linux ≥ 5.14; a no-op elsewhere or past the reservation).
    /// The contents do not change. Failure is harmless: the writes fault the pages in.
    pub(crate) fn prefault(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        if let Ok(len) = usize::try_from(len)
            && let Some((start, _)) = self.range(offset, len)
        {
            let _ = self
                .raw
                .advise_range(memmap2::Advice::PopulateWrite, start, len);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }
}

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
