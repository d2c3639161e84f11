//! The catalog (SPEC §5): image size, metadata reference and one descriptor per channel.

use super::{LeReader, LeWriter, TABLE_ENTRY_LEN};
use crate::error::{Error, Result};
use crate::geometry::Geometry;
use crate::sample::Dtype;
use crate::settings::{Codec, MAX_BLOCK_SIZE};

const FIXED_LEN: usize = 64;
const DESC_LEN: usize = 64;
const FLAG_NAMES: u32 = 1;

/// Where a record is and what its payload must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordRef {
    /// Offset of the record header.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
    /// CRC-32 of the payload.
    pub crc: u32,
}

impl RecordRef {
    fn encode(r: Option<RecordRef>, w: &mut LeWriter) {
        let r = r.unwrap_or(RecordRef {
            offset: 0,
            len: 0,
            crc: 0,
        });
        w.u64(r.offset).u32(r.len).u32(r.crc);
    }
    fn decode(r: &mut LeReader) -> Option<RecordRef> {
        let (offset, len, crc) = (r.u64(), r.u32(), r.u32());
        (offset != 0).then_some(RecordRef { offset, len, crc })
    }
}

/// One channel as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelDesc {
    /// Stable within a file; never reused.
    pub id: u32,
    pub dtype: Dtype,
    pub codec: Codec,
    pub level: u8,
    /// Requested blosc2 block size (0 = automatic).
    pub block_size: u32,
    pub geometry: Geometry,
    /// Raw bits of the value every `Default` table entry reads as.
    pub default_fill: u64,
    /// The chunk table; `None` means every chunk is `Default`.
    pub table: Option<RecordRef>,
    /// May be empty; names may repeat.
    pub name: String,
}

/// The whole image as one commit sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Catalog {
    pub width: usize,
    pub height: usize,
    pub next_channel_id: u32,
    /// Whether the image has channel names at all (the API distinguishes "no names" from
    /// "empty names").
    pub names_present: bool,
    /// The metadata record; `None` reads as JSON null.
    pub meta: Option<RecordRef>,
    pub channels: Vec<ChannelDesc>,
}

impl Catalog {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let names_len: usize = self.channels.iter().map(|c| c.name.len()).sum();
        let mut w = LeWriter(Vec::with_capacity(
            FIXED_LEN + DESC_LEN * self.channels.len() + names_len,
        ));
        w.u64(self.width as u64)
            .u64(self.height as u64)
            .u32(self.channels.len() as u32)
            .u32(self.next_channel_id);
        w.u32(if self.names_present { FLAG_NAMES } else { 0 })
            .u32(names_len as u32);
        RecordRef::encode(self.meta, &mut w);
        w.zeros(16);
        let mut name_offset = 0u32;
        for c in &self.channels {
            let g = &c.geometry;
            w.u32(c.id)
                .u8(c.dtype.code())
                .u8(c.dtype.size() as u8)
                .u8(c.codec.code())
                .u8(c.level);
            w.u32(c.block_size)
                .u32(g.rows_per_chunk() as u32)
                .u32(g.num_chunks() as u32)
                .u32(0);
            w.u64(c.default_fill);
            RecordRef::encode(c.table, &mut w);
            w.u32(name_offset).u32(c.name.len() as u32).zeros(8);
            name_offset += c.name.len() as u32;
        }
        for c in &self.channels {
            w.bytes(c.name.as_bytes());
        }
        w.0
    }

    /// Decode and check a catalog payload (whose CRC the caller verified).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Catalog> {
        if bytes.len() < FIXED_LEN {
            return Err(Error::corrupted("catalog shorter than its fixed part"));
        }
        let mut r = LeReader::new(bytes);
        let (width, height) = (to_usize(r.u64(), "width")?, to_usize(r.u64(), "height")?);
        let count = r.u32() as usize;
        let next_channel_id = r.u32();
        let flags = r.u32();
        let names_len = r.u32() as usize;
        let meta = RecordRef::decode(&mut r);
        r.skip(16);
        if flags & !FLAG_NAMES != 0 {
            return Err(Error::corrupted("catalog flags"));
        }
        let expected_len = (count as u64) * DESC_LEN as u64 + FIXED_LEN as u64 + names_len as u64;
        if expected_len != bytes.len() as u64 {
            return Err(Error::corrupted(format!(
                "catalog length {} does not match {count} channels and {names_len} name bytes",
                bytes.len()
            )));
        }
        let names = &bytes[FIXED_LEN + count * DESC_LEN..];
        let mut channels: Vec<ChannelDesc> = Vec::with_capacity(count);
        for index in 0..count {
            let desc = decode_desc(&mut r, width, height, names)
                .map_err(|e| Error::corrupted(format!("channel descriptor {index}: {e}")))?;
            if desc.id >= next_channel_id || channels.iter().any(|c| c.id == desc.id) {
                return Err(Error::corrupted(format!(
                    "channel descriptor {index}: id {} repeats or is not below next_channel_id {next_channel_id}",
                    desc.id
                )));
            }
            channels.push(desc);
        }
        let names_present = flags & FLAG_NAMES != 0;
        if !names_present {
            // Without the names flag the image has no names, whatever bytes are stored.
            channels.iter_mut().for_each(|c| c.name.clear());
        }
        Ok(Catalog {
            width,
            height,
            next_channel_id,
            names_present,
            meta,
            channels,
        })
    }
}

fn decode_desc(r: &mut LeReader, width: usize, height: usize, names: &[u8]) -> Result<ChannelDesc> {
    let id = r.u32();
    let dtype = Dtype::from_code(r.u8()).ok_or_else(|| Error::corrupted("unknown dtype code"))?;
    let typesize = r.u8();
    let codec = Codec::from_code(r.u8()).ok_or_else(|| Error::corrupted("unknown codec code"))?;
    let level = r.u8();
    let block_size = r.u32();
    let rows = r.u32() as usize;
    let num_chunks = r.u32() as usize;
    let flags = r.u32();
    let default_fill = r.u64();
    let table = RecordRef::decode(r);
    let (name_offset, name_len) = (r.u32() as usize, r.u32() as usize);
    r.skip(8);
    if typesize as usize != dtype.size()
        || flags != 0
        || level > 9
        || block_size as usize > MAX_BLOCK_SIZE
    {
        return Err(Error::corrupted(
            "typesize, flags, level or block size out of range",
        ));
    }
    if dtype.size() < 8 && default_fill >> (8 * dtype.size()) != 0 {
        return Err(Error::corrupted("fill value wider than the element"));
    }
    let geometry = Geometry::from_rows(width, height, dtype.size(), rows)?;
    if geometry.num_chunks() != num_chunks {
        return Err(Error::corrupted("chunk count does not match the geometry"));
    }
    if let Some(t) = table
        && t.len as usize != num_chunks * TABLE_ENTRY_LEN
    {
        return Err(Error::corrupted(
            "table length does not match the chunk count",
        ));
    }
    let name = names
        .get(name_offset..name_offset.saturating_add(name_len))
        .ok_or_else(|| Error::corrupted("name outside the names area"))?;
    let name =
        String::from_utf8(name.to_vec()).map_err(|_| Error::corrupted("name is not UTF-8"))?;
    Ok(ChannelDesc {
        id,
        dtype,
        codec,
        level,
        block_size,
        geometry,
        default_fill,
        table,
        name,
    })
}

fn to_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| Error::corrupted(format!("catalog {what} {v} does not fit this platform")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalog {
        let g = Geometry::new(100, 30, 4, 3200).unwrap();
        let desc = |id, name: &str| ChannelDesc {
            id,
            dtype: Dtype::F32,
            codec: Codec::Zstd,
            level: 5,
            block_size: 0,
            geometry: g,
            default_fill: 0x8000_0000,
            table: Some(RecordRef {
                offset: 8192,
                len: 4 * 32,
                crc: 1,
            }),
            name: name.into(),
        };
        Catalog {
            width: 100,
            height: 30,
            next_channel_id: 3,
            names_present: true,
            meta: Some(RecordRef {
                offset: 9000,
                len: 2,
                crc: 3,
            }),
            channels: vec![desc(0, "R"), desc(2, ""), desc(1, "R")],
        }
    }

    #[test]
    fn catalog_round_trips() {
        let c = sample();
        assert_eq!(Catalog::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn stored_names_without_the_names_flag_read_as_no_names() {
        let mut c = sample();
        c.names_present = false;
        let decoded = Catalog::decode(&c.encode()).unwrap();
        assert!(decoded.channels.iter().all(|ch| ch.name.is_empty()));
    }

    #[test]
    fn reused_channel_id_is_corrupt() {
        let mut c = sample();
        c.channels[1].id = 0;
        assert!(Catalog::decode(&c.encode()).is_err());
    }

    #[test]
    fn truncated_catalog_is_corrupt() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Catalog::decode(&bytes[..len]).is_err(), "length {len}");
        }
    }
}
