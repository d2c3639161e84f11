//! Commit slots (SPEC §3): two 256-byte records at the start of two 4 KiB pages.

use super::{FORMAT_MAJOR, FORMAT_MINOR, LeReader, LeWriter, MAGIC, REGION_START, crc32};
use crate::error::{Error, Result};

/// Largest valid generation: far beyond any real history (one commit per nanosecond for
/// 290 years), and low enough that the next generation can always be computed.
pub(crate) const MAX_GENERATION: u64 = 1 << 62;

/// Length of a slot record.
pub(crate) const SLOT_LEN: usize = 256;
const CRC_OFFSET: usize = SLOT_LEN - 4;

/// One commit: which catalog is current and which bytes are known durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Monotonic commit counter; a valid slot has generation ≥ 1.
    pub generation: u64,
    /// Random at file creation; identifies the file across copies and compaction.
    pub file_id: u64,
    /// Every byte the commit references lies below this offset.
    pub committed_end: u64,
    /// Every byte below this offset was on stable storage before this slot was written.
    pub durable_end: u64,
    /// Offset of the catalog record header.
    pub catalog_offset: u64,
    /// Catalog payload length.
    pub catalog_len: u32,
    /// CRC-32 of the catalog payload.
    pub catalog_crc: u32,
}

impl Slot {
    pub(crate) fn encode(&self) -> [u8; SLOT_LEN] {
        let mut w = LeWriter::default();
        w.bytes(&MAGIC)
            .u16(FORMAT_MAJOR)
            .u16(FORMAT_MINOR)
            .u32(SLOT_LEN as u32);
        w.u64(self.generation)
            .u64(self.file_id)
            .u64(self.committed_end)
            .u64(self.durable_end);
        w.u64(self.catalog_offset)
            .u32(self.catalog_len)
            .u32(self.catalog_crc);
        w.zeros(CRC_OFFSET - w.0.len());
        let crc = crc32(&w.0);
        w.u32(crc);
        w.0.try_into().expect("slot layout is 256 bytes")
    }

    /// Whether `other` names the same commit: the same catalog record of the same file,
    /// which a marker slot (SPEC §10 c) repeats with a newer generation. Committed records
    /// never change and their offsets are never reused, so the same catalog record means
    /// the same catalog, tables, metadata and blobs.
    pub(crate) fn same_commit(&self, other: &Slot) -> bool {
        (self.file_id, self.committed_end, self.catalog_offset)
            == (other.file_id, other.committed_end, other.catalog_offset)
            && (self.catalog_len, self.catalog_crc) == (other.catalog_len, other.catalog_crc)
    }

    /// The format version `(major, minor)` a slot record states (its bytes 8–11), unchecked;
    /// `None` when `bytes` is too short.
    pub(crate) fn stated_version(bytes: &[u8]) -> Option<(u16, u16)> {
        let mut r = LeReader::new(bytes.get(..12)?);
        r.skip(8);
        Some((r.u16(), r.u16()))
    }

    /// Decode and check one slot. `file_len` bounds every offset.
    pub(crate) fn decode(bytes: &[u8], file_len: u64) -> Result<Slot> {
        if bytes.len() < SLOT_LEN {
            return Err(Error::corrupted("slot page truncated"));
        }
        let bytes = &bytes[..SLOT_LEN];
        if bytes[..8] != MAGIC {
            return Err(Error::NotACompressedImage);
        }
        let mut r = LeReader::new(bytes);
        r.skip(8);
        let (major, minor, len) = (r.u16(), r.u16(), r.u32());
        let stored_crc = u32::from_le_bytes(bytes[CRC_OFFSET..].try_into().expect("4 bytes"));
        if crc32(&bytes[..CRC_OFFSET]) != stored_crc {
            return Err(Error::corrupted("slot checksum mismatch"));
        }
        if major != FORMAT_MAJOR {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        if len as usize != SLOT_LEN {
            return Err(Error::corrupted("slot length field"));
        }
        let slot = Slot {
            generation: r.u64(),
            file_id: r.u64(),
            committed_end: r.u64(),
            durable_end: r.u64(),
            catalog_offset: r.u64(),
            catalog_len: r.u32(),
            catalog_crc: r.u32(),
        };
        if slot.generation == 0 || slot.generation > MAX_GENERATION {
            return Err(Error::corrupted(format!(
                "slot generation {} out of range",
                slot.generation
            )));
        }
        if slot.committed_end < REGION_START || slot.committed_end > file_len {
            return Err(Error::corrupted(format!(
                "slot committed end {} outside the file (length {file_len})",
                slot.committed_end
            )));
        }
        if slot.durable_end < REGION_START || slot.durable_end > slot.committed_end {
            return Err(Error::corrupted("slot durable end beyond committed end"));
        }
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Slot {
        Slot {
            generation: 7,
            file_id: 0xdead_beef,
            committed_end: 9000,
            durable_end: 8192,
            catalog_offset: 8192,
            catalog_len: 128,
            catalog_crc: 42,
        }
    }

    #[test]
    fn slot_round_trips() {
        let s = sample();
        assert_eq!(Slot::decode(&s.encode(), 9000).unwrap(), s);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = sample().encode();
        for bit in 0..SLOT_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(Slot::decode(&b, 9000).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn future_major_version_is_unsupported() {
        let mut b = sample().encode();
        b[8..10].copy_from_slice(&2u16.to_le_bytes());
        let crc = crc32(&b[..CRC_OFFSET]);
        b[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Slot::decode(&b, 9000),
            Err(Error::UnsupportedVersion { major: 2, .. })
        ));
    }

    #[test]
    fn generation_beyond_the_limit_is_corrupt() {
        let s = Slot {
            generation: MAX_GENERATION + 1,
            ..sample()
        };
        assert!(Slot::decode(&s.encode(), 9000).is_err());
        let s = Slot {
            generation: MAX_GENERATION,
            ..sample()
        };
        assert!(Slot::decode(&s.encode(), 9000).is_ok());
    }

    #[test]
    fn a_marker_names_the_same_commit_and_a_new_catalog_does_not() {
        let s = sample();
        let marker = Slot {
            generation: 8,
            durable_end: 9000,
            ..s
        };
        assert!(marker.same_commit(&s));
        assert!(
            !Slot {
                catalog_offset: 8256,
                ..marker
            }
            .same_commit(&s)
        );
        assert!(
            !Slot {
                catalog_crc: 43,
                ..marker
            }
            .same_commit(&s)
        );
        assert!(
            !Slot {
                file_id: 1,
                ..marker
            }
            .same_commit(&s)
        );
    }

    #[test]
    fn committed_end_past_the_file_is_corrupt() {
        assert!(Slot::decode(&sample().encode(), 8999).is_err());
    }
}
