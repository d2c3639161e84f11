//! Record headers (SPEC §4): 32 bytes before every record payload in the record region.

use super::{LeReader, LeWriter};
use crate::error::{Error, Result};

/// Record header magic, a sync marker for salvage scans.
const RECORD_MAGIC: [u8; 4] = *b"CIR1";
/// Length of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 32;

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
}
