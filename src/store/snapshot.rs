//! One validated commit: catalog, chunk tables and metadata, over a mapping of the file.
//! Every read goes through a snapshot, so a multi-chunk read sees one generation.

use std::sync::Arc;

use super::checks::BlobChecks;
use super::table::Table;
use crate::blosc::{self, ChunkHeader};
use crate::error::{Error, Result};
use crate::format::{
    Catalog, ChannelDesc, RECORD_ALIGN, REGION_START, RecordHeader, RecordKind, RecordRef, Slot,
    TABLE_ENTRY_LEN, TableEntry, align_up, crc32,
};
use crate::io::Mapping;
use crate::sample::fill_bytes;

/// Length of a record header.
const HEADER: u64 = crate::format::RECORD_HEADER_LEN as u64;

/// A validated commit. Invariant: every reference in `catalog` and `tables` lies inside
/// `[REGION_START, slot.committed_end)`, which `map` covers.
pub(crate) struct Snapshot {
    pub slot: Slot,
    /// Which slot page (0 or 1) the commit was read from or written to.
    pub page: usize,
    pub catalog: Catalog,
    /// One table per channel, parallel to `catalog.channels`.
    pub tables: Vec<Table>,
    pub metadata: Arc<serde_json::Value>,
    pub map: Arc<Mapping>,
    /// Blobs of this file already checksummed, shared by the snapshots of one handle.
    pub checks: Arc<BlobChecks>,
}

impl Snapshot {
    /// Load the commit `slot` names and check everything it references. Every blob at or
    /// past `slot.durable_end` is checksummed too, which tells a complete commit from one
    /// whose data was lost in a power failure.
    ///
    /// `known` is a snapshot loaded the same way (the reader's current commit): a blob entry
    /// identical to one of its entries at or past its own durable end was checksummed when
    /// `known` was loaded and is not read again, so a refresh costs only the new blobs. The
    /// answer is the same as without `known` (invariant: a reader's snapshot has every blob
    /// at or past its durable end checksummed).
    pub(crate) fn load(
        slot: Slot,
        page: usize,
        map: Arc<Mapping>,
        known: Option<&Snapshot>,
    ) -> Result<Snapshot> {
        if map.len() < slot.committed_end {
            return Err(Error::corrupted("commit extends past the mapped file"));
        }
        let catalog_ref = RecordRef {
            offset: slot.catalog_offset,
            len: slot.catalog_len,
            crc: slot.catalog_crc,
        };
        let (count, catalog_bytes) = record(&map, &slot, catalog_ref, RecordKind::Catalog, 0)?;
        let catalog = Catalog::decode(catalog_bytes)?;
        if count as usize != catalog.channels.len() {
            return Err(Error::corrupted(
                "catalog record header disagrees with its channel count",
            ));
        }
        let metadata = match catalog.meta {
            None => serde_json::Value::Null,
            Some(r) => match record(&map, &slot, r, RecordKind::Meta, 0)? {
                (0, json) => serde_json::from_slice(json)
                    .map_err(|e| Error::corrupted(format!("metadata record is not JSON: {e}")))?,
                _ => return Err(Error::corrupted("metadata record header")),
            },
        };
        let checks = known.map_or_else(Arc::default, |k| k.checks.clone());
        let mut tables = Vec::with_capacity(catalog.channels.len());
        for (pos, desc) in catalog.channels.iter().enumerate() {
            let table = load_table(&map, &slot, desc)?;
            let verified = known.and_then(|k| k.verified_table(desc.id));
            for (index, entry) in table.iter().enumerate() {
                let verify_from = match verified {
                    Some((table, from)) if table.checksummed(index, &entry, from) => None,
                    _ => Some(slot.durable_end),
                };
                check_blob_entry(&map, &slot, desc, pos, index, &entry, verify_from)?;
                if let (
                    Some(from),
                    TableEntry::Blob {
                        offset, len, crc, ..
                    },
                ) = (verify_from, entry)
                    && offset >= from
                {
                    checks.mark_verified(offset, len, crc);
                }
            }
            tables.push(table);
        }
        Ok(Snapshot {
            slot,
            page,
            catalog,
            tables,
            metadata: Arc::new(metadata),
            map,
            checks,
        })
    }

    /// The table of channel `id` and the offset from which its blobs were checksummed.
    fn verified_table(&self, id: u32) -> Option<(&Table, u64)> {
        let pos = self.catalog.channels.iter().position(|c| c.id == id)?;
        Some((&self.tables[pos], self.slot.durable_end))
    }

    /// Position of the channel with this id, or [`Error::ChannelRemoved`].
    pub(crate) fn position(&self, id: u32) -> Result<usize> {
        self.catalog
            .channels
            .iter()
            .position(|c| c.id == id)
            .ok_or(Error::ChannelRemoved)
    }

    /// Decompress chunk `index` of the channel at `pos` into `out` (exactly the chunk's bytes).
    pub(crate) fn read_chunk(
        &self,
        pos: usize,
        index: usize,
        out: &mut [u8],
        nthreads: usize,
    ) -> Result {
        let desc = &self.catalog.channels[pos];
        desc.geometry.check_index(index)?;
        check_len(out.len(), desc.geometry.chunk_bytes_at(index))?;
        let size = desc.dtype.size();
        match self.tables[pos].get(index) {
            TableEntry::Default => fill_bytes(out, desc.default_fill, size),
            TableEntry::Fill { bits, .. } => fill_bytes(out, bits, size),
            TableEntry::Blob { .. } => {
                blosc::decompress_into(self.blob(pos, index)?, out, nthreads)?
            }
        }
        Ok(())
    }

    /// Decode elements `[start, start + out.len()/size)` of chunk `index` into `out`,
    /// touching only the blosc2 blocks that hold them.
    pub(crate) fn read_chunk_part(
        &self,
        pos: usize,
        index: usize,
        start: usize,
        out: &mut [u8],
        nthreads: usize,
    ) -> Result {
        let desc = &self.catalog.channels[pos];
        let size = desc.dtype.size();
        match self.tables[pos].get(index) {
            TableEntry::Default => fill_bytes(out, desc.default_fill, size),
            TableEntry::Fill { bits, .. } => fill_bytes(out, bits, size),
            TableEntry::Blob { .. } => blosc::get_items_into(
                self.blob_part(pos, index)?,
                start,
                out.len() / size,
                out,
                nthreads,
            )?,
        }
        Ok(())
    }

    /// The checked blosc2 chunk behind a blob entry: record header, CRC and blosc2 header
    /// all verified, so the bytes may be handed to c-blosc2.
    pub(crate) fn blob(&self, pos: usize, index: usize) -> Result<&[u8]> {
        self.blob_with(pos, index, false, true)
    }

    /// [`blob`](Self::blob), checksummed whatever the policy and earlier reads.
    pub(crate) fn blob_verified(&self, pos: usize, index: usize) -> Result<&[u8]> {
        self.blob_with(pos, index, true, true)
    }

    /// [`blob`](Self::blob) for a read of a few of its blosc2 blocks.
    fn blob_part(&self, pos: usize, index: usize) -> Result<&[u8]> {
        self.blob_with(pos, index, false, false)
    }

    /// The checked payload of blob `index` of channel `pos`; `whole`: the caller reads all
    /// of it (else a few blocks, which need not be paged in together).
    fn blob_with(&self, pos: usize, index: usize, always: bool, whole: bool) -> Result<&[u8]> {
        let desc = &self.catalog.channels[pos];
        let TableEntry::Blob {
            offset, len, crc, ..
        } = self.tables[pos].get(index)
        else {
            unreachable!("caller matched a blob entry")
        };
        let expected = blob_header(desc, index, len, crc);
        let check = always || self.checks.needs_check(offset, len, crc);
        if check || whole {
            // On every whole read: a blob may be new to this mapping (a writer's file grows
            // into new mappings), and the call is cheap when its pages are already mapped.
            self.map.populate(offset, HEADER as usize + len as usize);
        }
        let payload = record_payload(&self.map, &self.slot, offset, expected)?;
        if check && crc32(payload) != crc {
            return Err(Error::ChecksumMismatch {
                channel: pos,
                chunk: index,
            });
        }
        // The header is checked on every read: it is what keeps untrusted bytes from c-blosc2.
        let header = ChunkHeader::parse(payload)
            .ok_or_else(|| Error::corrupted("blob shorter than a blosc2 header"))?;
        header.check(
            payload,
            desc.geometry.chunk_bytes_at(index),
            desc.dtype.size(),
        )?;
        if check {
            self.checks.mark_verified(offset, len, crc);
        }
        Ok(payload)
    }

    /// Bytes of the records this commit references (aligned sizes), i.e. the live data.
    pub(crate) fn live_bytes(&self) -> u64 {
        let rec = |len: u32| align_up(HEADER + u64::from(len));
        let mut live = rec(self.slot.catalog_len) + self.catalog.meta.map_or(0, |m| rec(m.len));
        for (desc, table) in self.catalog.channels.iter().zip(&self.tables) {
            live += desc.table.map_or(0, |t| rec(t.len));
            live += table
                .iter()
                .map(|e| {
                    if let TableEntry::Blob { len, .. } = e {
                        rec(len)
                    } else {
                        0
                    }
                })
                .sum::<u64>();
        }
        live
    }
}

/// `Ok` when a caller's buffer has exactly the chunk's length.
pub(crate) fn check_len(got: usize, expected: usize) -> Result {
    if got != expected {
        return Err(Error::invalid(
            crate::error::Argument::BufferLength,
            format!("{got} bytes"),
            format!("exactly {expected} bytes"),
        ));
    }
    Ok(())
}

/// The record header a blob entry expects.
pub(crate) fn blob_header(desc: &ChannelDesc, index: usize, len: u32, crc: u32) -> RecordHeader {
    RecordHeader {
        kind: RecordKind::Blob,
        generation: 0,
        channel_id: desc.id,
        aux: index as u32,
        payload_len: len,
        payload_crc: crc,
    }
}

/// The payload of the record at `offset`, after checking bounds and its header against
/// `expected` (all fields but the generation, which must lie in `1..=slot.generation`).
fn record_payload<'m>(
    map: &'m Mapping,
    slot: &Slot,
    offset: u64,
    expected: RecordHeader,
) -> Result<&'m [u8]> {
    let kind = expected.kind;
    let end = offset.checked_add(HEADER + u64::from(expected.payload_len));
    if offset < REGION_START
        || !offset.is_multiple_of(RECORD_ALIGN)
        || end.is_none_or(|e| e > slot.committed_end)
    {
        return Err(Error::corrupted(format!(
            "{kind:?} record at {offset} outside the committed region"
        )));
    }
    let bytes = map
        .get(offset, (HEADER + u64::from(expected.payload_len)) as usize)
        .ok_or_else(|| Error::corrupted(format!("{kind:?} record at {offset} is not mapped")))?;
    RecordHeader::decode(bytes)?.expect(&expected, slot.generation)?;
    Ok(&bytes[HEADER as usize..])
}

/// A checksummed record's `aux` field and payload (catalog, table, meta); the caller
/// checks `aux`.
fn record<'m>(
    map: &'m Mapping,
    slot: &Slot,
    r: RecordRef,
    kind: RecordKind,
    channel_id: u32,
) -> Result<(u32, &'m [u8])> {
    let bytes = map.get(r.offset, HEADER as usize).ok_or_else(|| {
        Error::corrupted(format!("{kind:?} record at {} is not mapped", r.offset))
    })?;
    let stored_aux = RecordHeader::decode(bytes)?.aux;
    let expected = RecordHeader {
        kind,
        generation: 0,
        channel_id,
        aux: stored_aux,
        payload_len: r.len,
        payload_crc: r.crc,
    };
    let payload = record_payload(map, slot, r.offset, expected)?;
    if crc32(payload) != r.crc {
        return Err(Error::corrupted(format!(
            "{kind:?} record at {} fails its checksum",
            r.offset
        )));
    }
    Ok((stored_aux, payload))
}

fn load_table(map: &Mapping, slot: &Slot, desc: &ChannelDesc) -> Result<Table> {
    let g = &desc.geometry;
    let Some(r) = desc.table else {
        return Ok(Table::all_default(g.num_chunks()));
    };
    let (count, bytes) = record(map, slot, r, RecordKind::Table, desc.id)?;
    if count as usize != g.num_chunks() {
        return Err(Error::corrupted(
            "table record header disagrees with the chunk count",
        ));
    }
    bytes
        .chunks_exact(TABLE_ENTRY_LEN)
        .enumerate()
        .map(|(i, e)| {
            let entry = TableEntry::decode(e, g.chunk_bytes_at(i) as u32)?;
            match entry {
                TableEntry::Fill { generation, .. } | TableEntry::Blob { generation, .. }
                    if generation > slot.generation =>
                {
                    Err(Error::corrupted(format!(
                        "table entry {i} from a future generation"
                    )))
                }
                _ => Ok(entry),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Table::from)
}

/// Structural checks of one blob entry; its record and CRC too when the blob lies at or
/// past `verify_from`.
fn check_blob_entry(
    map: &Mapping,
    slot: &Slot,
    desc: &ChannelDesc,
    pos: usize,
    index: usize,
    entry: &TableEntry,
    verify_from: Option<u64>, // None: never checksum
) -> Result {
    let TableEntry::Blob {
        offset, len, crc, ..
    } = *entry
    else {
        return Ok(());
    };
    let raw = desc.geometry.chunk_bytes_at(index);
    if (len as usize) < blosc::HEADER_LEN || len as usize > raw + blosc::MAX_OVERHEAD {
        return Err(Error::corrupted(format!(
            "channel {pos} chunk {index}: blob length {len} for {raw} raw bytes"
        )));
    }
    if verify_from.is_some_and(|from| offset >= from) {
        let payload = record_payload(map, slot, offset, blob_header(desc, index, len, crc))?;
        if crc32(payload) != crc {
            return Err(Error::corrupted(format!(
                "channel {pos} chunk {index}: unsynced blob fails its checksum"
            )));
        }
    } else {
        let end = offset.checked_add(HEADER + u64::from(len));
        if offset < REGION_START
            || !offset.is_multiple_of(RECORD_ALIGN)
            || end.is_none_or(|e| e > slot.committed_end)
        {
            return Err(Error::corrupted(format!(
                "channel {pos} chunk {index}: blob outside the committed region"
            )));
        }
    }
    Ok(())
}
