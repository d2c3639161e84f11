//! Record headers (SPEC §4): 32 bytes before every record payload in the record region.

use super::{LeReader, LeWriter, RECORD_ALIGN, REGION_START, align_up};
use crate::error::{Error, Result};

/// Record header magic, a sync marker for salvage scans.
const RECORD_MAGIC: [u8; 4] = *b"CIR1";
/// Length of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 32;

/// Bytes of a record with a `payload_len`-byte payload: header and payload.
pub(crate) fn record_len(payload_len: u32) -> u64 {
    RECORD_HEADER_LEN as u64 + u64::from(payload_len)
}

/// Bytes a record takes in the region, padding up to the next record included (what SPEC §12
/// counts as live).
pub(crate) fn record_footprint(payload_len: u32) -> u64 {
    align_up(record_len(payload_len))
}

/// SPEC §4 step 1, without the mapping: a record at `offset` with a `payload_len`-byte payload
/// starts aligned in the record region and ends at or before `committed_end`.
pub(crate) fn record_in_region(offset: u64, payload_len: u32, committed_end: u64) -> bool {
    offset >= REGION_START
        && offset.is_multiple_of(RECORD_ALIGN)
        && offset
            .checked_add(record_len(payload_len))
            .is_some_and(|end| end <= committed_end)
}

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A blosc2 chunk.
    Blob = 1,
    /// A channel's chunk table.
    Table = 2,
    /// Image metadata (JSON text).
    Meta = 3,
    /// The catalog of channels.
    Catalog = 4,
}

/// The header in front of every record payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub kind: RecordKind,
    /// Generation of the commit that wrote the record.
    pub generation: u64,
    /// Channel id (blob, table) or 0.
    pub channel_id: u32,
    /// Chunk index (blob), entry count (table), channel count (catalog) or 0.
    pub aux: u32,
    pub payload_len: u32,
    pub payload_crc: u32,
}

impl RecordHeader {
    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut w = LeWriter::default();
        w.bytes(&RECORD_MAGIC).u8(self.kind as u8).zeros(3);
        w.u64(self.generation)
            .u32(self.channel_id)
            .u32(self.aux)
            .u32(self.payload_len)
            .u32(self.payload_crc);
        w.0.try_into().expect("record header layout is 32 bytes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<RecordHeader> {
        let bytes = bytes
            .get(..RECORD_HEADER_LEN)
            .ok_or_else(|| Error::corrupted("record header truncated"))?;
        if bytes[..4] != RECORD_MAGIC {
            return Err(Error::corrupted("record magic"));
        }
        let mut r = LeReader::new(bytes);
        r.skip(4);
        let kind = match r.u8() {
            1 => RecordKind::Blob,
            2 => RecordKind::Table,
            3 => RecordKind::Meta,
            4 => RecordKind::Catalog,
            k => return Err(Error::corrupted(format!("record kind {k}"))),
        };
        r.skip(3);
        Ok(RecordHeader {
            kind,
            generation: r.u64(),
            channel_id: r.u32(),
            aux: r.u32(),
            payload_len: r.u32(),
            payload_crc: r.u32(),
        })
    }

    /// Check that a stored header is the one a reference (slot, catalog or table) expects.
    pub(crate) fn expect(&self, expected: &RecordHeader, max_generation: u64) -> Result {
        let same = self.kind == expected.kind
            && self.channel_id == expected.channel_id
            && self.aux == expected.aux
            && self.payload_len == expected.payload_len
            && self.payload_crc == expected.payload_crc;
        if !same {
            return Err(Error::corrupted(format!(
                "{:?} record header does not match its reference",
                expected.kind
            )));
        }
        if self.generation == 0 || self.generation > max_generation {
            return Err(Error::corrupted(format!(
                "{:?} record from generation {}",
                expected.kind, self.generation
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trips_and_checks() {
        let h = RecordHeader {
            kind: RecordKind::Blob,
            generation: 3,
            channel_id: 1,
            aux: 9,
            payload_len: 100,
            payload_crc: 5,
        };
        let d = RecordHeader::decode(&h.encode()).unwrap();
        assert_eq!(d, h);
        assert!(d.expect(&h, 3).is_ok());
        assert!(d.expect(&h, 2).is_err());
        assert!(d.expect(&RecordHeader { aux: 8, ..h }, 3).is_err());
        let mut bad = h.encode();
        bad[4] = 9;
        assert!(RecordHeader::decode(&bad).is_err());
    }

    #[test]
    fn record_bounds_follow_spec_section_4() {
        // 32-byte header + 100-byte payload = 132 bytes, 192 with padding.
        assert_eq!((record_len(100), record_footprint(100)), (132, 192));
        assert_eq!(record_footprint(32), 64);
        assert!(record_in_region(REGION_START, 100, REGION_START + 132));
        assert!(!record_in_region(REGION_START, 100, REGION_START + 131));
        assert!(!record_in_region(REGION_START - 64, 0, REGION_START + 64));
        assert!(!record_in_region(REGION_START + 32, 0, REGION_START + 128));
        assert!(!record_in_region(u64::MAX - 63, u32::MAX, u64::MAX));
    }
}
