//! Which blob checksums a file's readers have already verified, and whether they may rely on
//! that: every blob is checksummed on its first read through a handle, and on every read only
//! when the handle asks for it ([`ChecksumPolicy::EveryRead`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// When `get_chunk` and the other reads checksum a compressed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// The first read of each chunk blob through a handle verifies its CRC-32; later reads of
    /// the same blob skip it (blobs are immutable once written; the handle's own writes
    /// count as verified). The default.
    #[default]
    FirstRead,
    /// Every read verifies the CRC-32 of the whole blob (costs about one CRC pass over the
    /// compressed bytes per read; catches damage that happens while the file is open).
    EveryRead,
}

/// The blobs (by offset, length and CRC) of one file already checksummed, shared by every
/// snapshot of that file in one handle. Invariant: an entry is only added after its bytes
/// were checksummed or written by this handle, and a file's bytes under a committed blob
/// never change (append-only), so a hit is as good as a checksum.
#[derive(Debug, Default)]
pub(crate) struct BlobChecks {
    every_read: AtomicBool,
    verified: Mutex<HashSet<(u64, u32, u32)>>,
}

impl BlobChecks {
    pub(crate) fn policy(&self) -> ChecksumPolicy {
        if self.every_read.load(Ordering::Relaxed) {
            ChecksumPolicy::EveryRead
        } else {
            ChecksumPolicy::FirstRead
        }
    }

    pub(crate) fn set_policy(&self, policy: ChecksumPolicy) {
        self.every_read
            .store(policy == ChecksumPolicy::EveryRead, Ordering::Relaxed);
    }

    /// Whether the blob must be checksummed before use.
    pub(crate) fn needs_check(&self, offset: u64, len: u32, crc: u32) -> bool {
        self.every_read.load(Ordering::Relaxed) || !self.lock().contains(&(offset, len, crc))
    }

    /// Record a blob as verified.
    pub(crate) fn mark_verified(&self, offset: u64, len: u32, crc: u32) {
        self.lock().insert((offset, len, crc));
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<(u64, u32, u32)>> {
        super::lock(&self.verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_read_trusts_a_verified_blob_and_every_read_trusts_none() {
        let checks = BlobChecks::default();
        assert_eq!(checks.policy(), ChecksumPolicy::FirstRead);
        assert!(checks.needs_check(8192, 40, 7));
        checks.mark_verified(8192, 40, 7);
        assert!(!checks.needs_check(8192, 40, 7));
        // Another length or checksum at the same offset is another blob.
        assert!(checks.needs_check(8192, 41, 7));
        assert!(checks.needs_check(8192, 40, 8));
        checks.set_policy(ChecksumPolicy::EveryRead);
        assert_eq!(checks.policy(), ChecksumPolicy::EveryRead);
        assert!(checks.needs_check(8192, 40, 7));
        checks.set_policy(ChecksumPolicy::FirstRead);
        assert!(!checks.needs_check(8192, 40, 7));
    }
}
