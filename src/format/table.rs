//! Chunk-table entries (SPEC §6): 32 bytes per chunk, in chunk order.

use super::{LeReader, LeWriter, TABLE_ENTRY_LEN};
use crate::error::{Error, Result};

/// Where one chunk's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableEntry {
    /// Never written: reads as the channel's default fill value.
    Default,
    /// A constant chunk: every element has these raw bits (zero-extended).
    Fill { bits: u64, generation: u64 },
    /// A blosc2 chunk stored in a BLOB record.
    Blob {
        /// Offset of the record header.
        offset: u64,
        /// Length of the blosc2 chunk (the record payload).
        len: u32,
        /// CRC-32 of the blosc2 chunk.
        crc: u32,
        /// Generation of the commit that wrote it.
        generation: u64,
    },
}

const KIND_DEFAULT: u8 = 0;
const KIND_BLOB: u8 = 1;
const KIND_FILL: u8 = 2;

impl TableEntry {
    /// Append this entry for a chunk of `raw_len` uncompressed bytes.
    pub(crate) fn encode(&self, raw_len: u32, w: &mut LeWriter) {
        match *self {
            TableEntry::Default => {
                w.zeros(TABLE_ENTRY_LEN);
            }
            TableEntry::Fill { bits, generation } => {
                w.u8(KIND_FILL)
                    .zeros(3)
                    .u32(0)
                    .u64(bits)
                    .u32(0)
                    .u32(raw_len)
                    .u64(generation);
            }
            TableEntry::Blob {
                offset,
                len,
                crc,
                generation,
            } => {
                w.u8(KIND_BLOB)
                    .zeros(3)
                    .u32(crc)
                    .u64(offset)
                    .u32(len)
                    .u32(raw_len)
                    .u64(generation);
            }
        }
    }

    /// Decode one entry; `raw_len` is what the geometry says the chunk holds.
    pub(crate) fn decode(bytes: &[u8], raw_len: u32) -> Result<TableEntry> {
        let mut r = LeReader::new(&bytes[..TABLE_ENTRY_LEN]);
        let kind = r.u8();
        let (flags, reserved) = (r.u8(), r.u16());
        let crc = r.u32();
        let word = r.u64();
        let len = r.u32();
        let stored_raw = r.u32();
        let generation = r.u64();
        if flags != 0 || reserved != 0 {
            return Err(Error::corrupted("table entry reserved bits set"));
        }
        let entry = match kind {
            KIND_DEFAULT if bytes[..TABLE_ENTRY_LEN].iter().all(|&b| b == 0) => {
                return Ok(TableEntry::Default);
            }
            KIND_FILL if crc == 0 && len == 0 => TableEntry::Fill {
                bits: word,
                generation,
            },
            KIND_BLOB => TableEntry::Blob {
                offset: word,
                len,
                crc,
                generation,
            },
            _ => {
                return Err(Error::corrupted(format!(
                    "table entry kind {kind} with inconsistent fields"
                )));
            }
        };
        if stored_raw != raw_len {
            return Err(Error::corrupted(format!(
                "table entry raw length {stored_raw}, geometry says {raw_len}"
            )));
        }
        if generation == 0 {
            return Err(Error::corrupted("table entry generation 0"));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for e in [
            TableEntry::Default,
            TableEntry::Fill {
                bits: 0x7fc0_0001,
                generation: 2,
            },
            TableEntry::Blob {
                offset: 8256,
                len: 99,
                crc: 77,
                generation: 3,
            },
        ] {
            let mut w = LeWriter::default();
            e.encode(400, &mut w);
            assert_eq!(w.0.len(), TABLE_ENTRY_LEN);
            assert_eq!(TableEntry::decode(&w.0, 400).unwrap(), e);
        }
    }

    #[test]
    fn raw_length_must_match_geometry() {
        let mut w = LeWriter::default();
        TableEntry::Fill {
            bits: 1,
            generation: 1,
        }
        .encode(400, &mut w);
        assert!(TableEntry::decode(&w.0, 396).is_err());
    }
}
