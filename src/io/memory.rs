//! An in-memory store's bytes: a [`Reservation`] of process-private memory that is replaced
//! by a larger one when the store outgrows it.
//!
//! A file-like length is kept apart from the reservation's capacity: `set_len` within the
//! capacity only records it. Growth past the capacity copies the bytes into a new
//! reservation and continues there; mappings made before keep the old reservation alive
//! (through their `Arc`) until the snapshots holding them are dropped, and nothing writes
//! the old one again, so what they read stays exact.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Backend;
use super::mmap::{Mapping, Reservation};

/// The smallest reservation: small stores (a few KiB) take little address space.
const MIN_RESERVATION: u64 = 256 << 10;

/// The bytes of one in-memory store.
pub(crate) struct Memory {
    state: Mutex<State>,
    /// Bytes at the start that are rewritten in place and never shown to readers.
    head: u64,
    /// Capacity a reservation is not made larger than unless the store needs it: the
    /// size at which the store leaves memory anyway.
    roomy_limit: Option<u64>,
}

struct State {
    reservation: Arc<Reservation>,
    /// The length as a file's: every byte written lies below it.
    len: u64,
}

impl Memory {
    /// Empty memory for about `expected_len` bytes, whose first `head` bytes are rewritten
    /// in place and never exposed, and whose reservations are sized for at most
    /// `roomy_limit` bytes unless it needs more.
    pub(crate) fn new(
        head: u64,
        expected_len: u64,
        roomy_limit: Option<u64>,
    ) -> io::Result<Memory> {
        let expected_len = expected_len.max(head);
        // A roomy reservation may fail where a small one does not (strict overcommit
        // accounting); the store then grows when it needs to.
        let reservation = Reservation::new(reservation_size(expected_len, roomy_limit), head)
            .or_else(|_| Reservation::new(reservation_size(head, roomy_limit), head))?;
        Ok(Memory {
            state: Mutex::new(State {
                reservation: Arc::new(reservation),
                len: 0,
            }),
            head,
            roomy_limit,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is replaced field by field only after everything that can fail.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current reservation, with every byte from the head up to `committed_end` exposed
    /// to readers (and never written again). Every record of that commit must be written.
    pub(crate) fn expose(&self, committed_end: u64) -> io::Result<Arc<Reservation>> {
        let state = self.state();
        if committed_end > state.len {
            return Err(io::Error::other("a commit past the end of the memory"));
        }
        state.reservation.expose(committed_end)?;
        Ok(state.reservation.clone())
    }

    /// A mapping for readers of the commit ending at `committed_end` (see
    /// [`expose`](Self::expose)).
    pub(crate) fn map(&self, committed_end: u64) -> io::Result<Mapping> {
        Ok(Mapping::of_memory(self.expose(committed_end)?))
    }

    pub(crate) fn len(&self) -> u64 {
        self.state().len
    }

    /// Make room for `len` bytes: past the capacity, move to a larger reservation.
    fn reserve(&self, state: &mut State, len: u64) -> io::Result<()> {
        if len <= state.reservation.capacity() {
            return Ok(());
        }
        // A roomy reservation may fail where one of the exact size does not (strict
        // overcommit accounting).
        let larger = Reservation::new(reservation_size(len, self.roomy_limit), self.head)
            .or_else(|_| Reservation::new(len, self.head))?;
        state.reservation.copy_into(&larger, state.len)?;
        state.reservation = Arc::new(larger);
        Ok(())
    }
}

/// The capacity reserved for `needed` bytes: twice as much rounded up to a power of two, so
/// that growth copies each byte about once on average, but no more than `roomy_limit`
/// unless `needed` is larger.
fn reservation_size(needed: u64, roomy_limit: Option<u64>) -> u64 {
    let roomy = needed
        .saturating_mul(2)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX)
        .max(MIN_RESERVATION);
    match roomy_limit {
        Some(limit) if needed <= limit => roomy.min(limit).max(needed),
        _ => roomy,
    }
}

/// The [`Backend`] of an in-memory store: writes copy into the reservation.
pub(crate) struct MemoryBackend(pub Arc<Memory>);

impl Backend for MemoryBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.len())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.0.state();
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= state.len => state.reservation.read(offset, buf),
            _ => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::other("write past the largest offset"))?;
        let mut state = self.0.state();
        self.0.reserve(&mut state, end)?;
        state.reservation.write(offset, buf)?;
        state.len = state.len.max(end);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.0.state();
        self.0.reserve(&mut state, len)?;
        state.len = len;
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(()) // nothing to make durable
    }
    fn prefault(&self, offset: u64, len: u64) -> io::Result<()> {
        self.0.state().reservation.prefault(offset, len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: u64 = 8192;

    fn backend(limit: Option<u64>) -> (Arc<Memory>, MemoryBackend) {
        let memory = Arc::new(Memory::new(HEAD, HEAD, limit).unwrap());
        (memory.clone(), MemoryBackend(memory))
    }

    fn read(backend: &MemoryBackend, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        backend.read_exact_at(&mut buf, offset).unwrap();
        buf
    }

    #[test]
    fn reservations_double_with_headroom_within_the_limit() {
        assert_eq!(reservation_size(8192, None), MIN_RESERVATION);
        assert_eq!(reservation_size(3 << 20, None), 8 << 20);
        assert_eq!(reservation_size(3 << 20, Some(5 << 20)), 5 << 20);
        // Past the limit the store is about to leave memory: roomy again, no exact steps.
        assert_eq!(reservation_size(6 << 20, Some(5 << 20)), 16 << 20);
    }

    #[test]
    fn committed_bytes_can_be_read_but_not_written_and_the_head_is_never_exposed() {
        let (memory, backend) = backend(None);
        backend.set_len(HEAD).unwrap();
        backend.write_all_at(&[7; 100], HEAD).unwrap();
        let map = memory.map(HEAD + 100).unwrap();
        assert_eq!(map.get(HEAD, 100), Some(&[7u8; 100][..]));
        assert_eq!(map.get(HEAD, 101), None, "past the commit");
        assert_eq!(map.get(0, 8), None, "slot pages");
        let err = backend.write_all_at(&[1; 10], HEAD + 95).unwrap_err();
        assert_eq!(err.to_string(), "write over committed bytes in memory");
        assert_eq!(read(&backend, HEAD, 100), vec![7; 100]);
        // The head and the bytes past the commit stay writable.
        backend.write_all_at(&[1; 10], 0).unwrap();
        backend.write_all_at(&[2; 10], HEAD + 100).unwrap();
        assert_eq!(read(&backend, 0, 10), vec![1; 10]);
        assert!(memory.expose(HEAD + 111).is_err(), "past the length");
    }

    #[test]
    fn growth_moves_to_a_larger_reservation_and_old_views_keep_the_old_one() {
        let (memory, backend) = backend(None);
        backend.set_len(HEAD).unwrap();
        backend.write_all_at(&[3; 1000], HEAD).unwrap();
        let old = memory.map(HEAD + 1000).unwrap();
        let capacity = old.len();
        // Staged (unexposed) bytes move too.
        backend.write_all_at(&[4; 10], HEAD + 1000).unwrap();
        backend.write_all_at(&[5; 10], capacity + 10).unwrap();
        assert_eq!(backend.len().unwrap(), capacity + 20);
        let new = memory.map(HEAD + 1010).unwrap();
        assert!(new.len() > capacity);
        assert_eq!(old.get(HEAD, 1000), Some(&[3u8; 1000][..]));
        assert_eq!(new.get(HEAD, 1000), Some(&[3u8; 1000][..]));
        assert_eq!(new.get(HEAD + 1000, 10), Some(&[4u8; 10][..]));
        assert_eq!(
            old.get(HEAD + 1000, 10),
            None,
            "exposed after the move only"
        );
        assert_eq!(read(&backend, capacity + 10, 10), vec![5; 10]);
        // Committed bytes stay protected in the new reservation.
        assert!(backend.write_all_at(&[0], HEAD + 5).is_err());
    }

    #[test]
    fn reads_past_the_length_are_short() {
        let (_, backend) = backend(None);
        backend.set_len(HEAD).unwrap();
        let mut buf = [0; 2];
        let err = backend.read_exact_at(&mut buf, HEAD - 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
