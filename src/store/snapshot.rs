//! One validated commit: catalog, chunk tables and metadata, over a mapping of the file.
//! Every read goes through a snapshot, so a multi-chunk read sees one generation.
//!
//! A snapshot hands out chunks as stored (fill bits or checked blob bytes); decoding them is
//! the chunk codec's job.

use std::sync::Arc;

use super::checks::BlobChecks;
use super::table::Table;
use crate::error::{Error, Result};
use crate::format::{
    BLOB_HEADER_LEN, BLOB_MAX_OVERHEAD, Catalog, ChannelDesc, RECORD_HEADER_LEN, REGION_START,
    RecordHeader, RecordKind, RecordRef, Slot, TABLE_ENTRY_LEN, TableEntry, align_up, crc32,
    record_footprint, record_in_region, record_len,
};
use crate::io::Mapping;

/// One chunk as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredChunk<'a> {
    /// Every element has these raw bits (zero-extended to 64 bits).
    Fill(u64),
    /// The payload of a BLOB record: a c-blosc2 chunk, opaque to the store.
    Blob(&'a [u8]),
}

/// How a reader uses a blob's bytes, which decides what is checked and paged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobRead {
    /// All of it (a whole-chunk decode, a copy): paged in at once; checksummed as the
    /// handle's [`ChecksumPolicy`](super::ChecksumPolicy) says.
    Whole,
    /// A few c-blosc2 blocks (a range of rows): paged in only when checksummed, since the
    /// blocks read need not be adjacent; checksummed as the policy says.
    Part,
    /// All of it, checksummed whatever the policy and earlier reads (full verification).
    Verify,
}

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
                let TableEntry::Blob {
                    offset, len, crc, ..
                } = entry
                else {
                    continue;
                };
                let known_good =
                    verified.is_some_and(|(table, from)| table.checksummed(index, &entry, from));
                let checksum = !known_good && offset >= slot.durable_end;
                let at = BlobAt { pos, index, offset };
                check_blob_entry(
                    &map,
                    &slot,
                    desc,
                    at,
                    blob_header(desc, index, len, crc),
                    checksum,
                )?;
                if checksum {
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

    /// Chunk `index` of the channel at `pos` as stored: the fill bits of a DEFAULT or FILL
    /// entry, or the payload of a BLOB record once its bounds, its header and (as `read` and
    /// the checksum policy say) its CRC are checked (SPEC §8 steps 1–3).
    pub(crate) fn stored_chunk(
        &self,
        pos: usize,
        index: usize,
        read: BlobRead,
    ) -> Result<StoredChunk<'_>> {
        let desc = &self.catalog.channels[pos];
        desc.geometry.check_index(index)?;
        let (offset, len, crc) = match self.tables[pos].get(index) {
            TableEntry::Default => return Ok(StoredChunk::Fill(desc.default_fill)),
            TableEntry::Fill { bits, .. } => return Ok(StoredChunk::Fill(bits)),
            TableEntry::Blob {
                offset, len, crc, ..
            } => (offset, len, crc),
        };
        let checksum = read == BlobRead::Verify || self.checks.needs_check(offset, len, crc);
        if checksum || read != BlobRead::Part {
            // Once per blob and mapping: a blob may be new to this mapping (a writer's file
            // grows into new mappings); afterwards its pages stay mapped.
            self.map.populate_once(offset, record_len(len) as usize);
        }
        let payload = record_payload(
            &self.map,
            &self.slot,
            offset,
            blob_header(desc, index, len, crc),
        )?;
        if checksum {
            if crc32(payload) != crc {
                return Err(Error::ChecksumMismatch {
                    channel: pos,
                    chunk: index,
                });
            }
            self.checks.mark_verified(offset, len, crc);
        }
        Ok(StoredChunk::Blob(payload))
    }

    /// Bytes of the records this commit references (aligned sizes), i.e. the live data
    /// (SPEC §12).
    pub(crate) fn live_bytes(&self) -> u64 {
        let mut live = record_footprint(self.slot.catalog_len)
            + self.catalog.meta.map_or(0, |m| record_footprint(m.len));
        for (desc, table) in self.catalog.channels.iter().zip(&self.tables) {
            live += desc.table.map_or(0, |t| record_footprint(t.len));
            live += table
                .iter()
                .map(|e| match e {
                    TableEntry::Blob { len, .. } => record_footprint(len),
                    _ => 0,
                })
                .sum::<u64>();
        }
        live
    }

    /// Bytes of the record region up to this commit, padding after its last record included.
    pub(crate) fn committed_bytes(&self) -> u64 {
        align_up(self.slot.committed_end) - REGION_START
    }

    /// Bytes of superseded records below this commit's end (SPEC §12).
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.committed_bytes() - self.live_bytes()
    }

    /// A copy sharing the tables, metadata and mapping.
    pub(super) fn shallow_clone(&self) -> Snapshot {
        Snapshot {
            slot: self.slot,
            page: self.page,
            catalog: self.catalog.clone(),
            tables: self.tables.clone(),
            metadata: self.metadata.clone(),
            map: self.map.clone(),
            checks: self.checks.clone(),
        }
    }
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
    if !record_in_region(offset, expected.payload_len, slot.committed_end) {
        return Err(Error::corrupted(format!(
            "{kind:?} record at {offset} outside the committed region"
        )));
    }
    let bytes = map
        .get(offset, record_len(expected.payload_len) as usize)
        .ok_or_else(|| Error::corrupted(format!("{kind:?} record at {offset} is not mapped")))?;
    RecordHeader::decode(bytes)?.expect(&expected, slot.generation)?;
    Ok(&bytes[RECORD_HEADER_LEN..])
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
    let bytes = map.get(r.offset, RECORD_HEADER_LEN).ok_or_else(|| {
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

/// Where a blob entry points: channel position, chunk index, record offset.
struct BlobAt {
    pos: usize,
    index: usize,
    offset: u64,
}

/// Structural checks of one blob entry whose record header should be `expected`; with
/// `checksum`, its record header and CRC too (SPEC §9 step 3).
fn check_blob_entry(
    map: &Mapping,
    slot: &Slot,
    desc: &ChannelDesc,
    at: BlobAt,
    expected: RecordHeader,
    checksum: bool,
) -> Result {
    let BlobAt { pos, index, offset } = at;
    let fail = |what: String| {
        Err(Error::corrupted(format!(
            "channel {pos} chunk {index}: {what}"
        )))
    };
    let len = expected.payload_len as usize;
    let raw = desc.geometry.chunk_bytes_at(index);
    if len < BLOB_HEADER_LEN || len > raw + BLOB_MAX_OVERHEAD {
        return fail(format!("blob length {len} for {raw} raw bytes"));
    }
    if checksum {
        let payload = record_payload(map, slot, offset, expected)?;
        if crc32(payload) != expected.payload_crc {
            return fail("unsynced blob fails its checksum".into());
        }
    } else if !record_in_region(offset, expected.payload_len, slot.committed_end) {
        return fail("blob outside the committed region".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::store::ChecksumPolicy;
    use crate::store::fixture::{self, Stored, blob, put_blob, stored};

    /// A file with one blob commit; its snapshot and the file's mapping.
    fn committed() -> (tempfile::TempDir, crate::store::Store) {
        let (dir, _, store) = fixture::create_temp();
        put_blob(&store, 1, &blob(40, 1));
        (dir, store)
    }

    fn load(snap: &Snapshot, slot: Slot) -> Result<Snapshot> {
        Snapshot::load(slot, snap.page, snap.map.clone(), None)
    }

    #[test]
    fn load_accepts_the_commit_as_written() {
        let (_dir, store) = committed();
        let snap = store.snapshot();
        let loaded = load(&snap, snap.slot).unwrap();
        assert_eq!(loaded.catalog, snap.catalog);
        assert_eq!(loaded.tables[0].to_vec(), snap.tables[0].to_vec());
    }

    #[test]
    fn load_rejects_a_catalog_outside_the_committed_region() {
        let (_dir, store) = committed();
        let snap = store.snapshot();
        let s = snap.slot;
        let bad = [
            (
                "past the mapping",
                Slot {
                    committed_end: snap.map.len() + 1,
                    ..s
                },
            ),
            (
                "unaligned",
                Slot {
                    catalog_offset: s.catalog_offset + 8,
                    ..s
                },
            ),
            (
                "in the slot pages",
                Slot {
                    catalog_offset: REGION_START - 64,
                    ..s
                },
            ),
            (
                "past committed_end",
                Slot {
                    committed_end: s.committed_end - 1,
                    ..s
                },
            ),
            (
                "longer than stored",
                Slot {
                    catalog_len: s.catalog_len + 1,
                    ..s
                },
            ),
            (
                "another checksum",
                Slot {
                    catalog_crc: s.catalog_crc ^ 1,
                    ..s
                },
            ),
        ];
        for (what, slot) in bad {
            assert!(
                matches!(load(&snap, slot), Err(Error::Corrupted { .. })),
                "{what}"
            );
        }
    }

    #[test]
    fn blob_entries_outside_their_bounds_are_corrupt() {
        let (_dir, store) = committed();
        let snap = store.snapshot();
        let desc = &snap.catalog.channels[0];
        let TableEntry::Blob {
            offset, len, crc, ..
        } = snap.tables[0].get(1)
        else {
            panic!("chunk 1 is a blob");
        };
        let check = |offset: u64, len: u32, checksum: bool| {
            let at = BlobAt {
                pos: 0,
                index: 1,
                offset,
            };
            let expected = blob_header(desc, 1, len, crc);
            check_blob_entry(&snap.map, &snap.slot, desc, at, expected, checksum)
        };
        check(offset, len, false).unwrap();
        check(offset, len, true).unwrap();
        let raw = fixture::WIDTH as u32;
        for (offset, len) in [
            (offset, 31),                   // shorter than a blosc2 header
            (offset, raw + 33),             // longer than raw + overhead
            (snap.slot.committed_end, len), // past committed_end
            (REGION_START - 64, len),       // in the slot pages
            (offset + 1, len),              // unaligned
        ] {
            assert!(check(offset, len, false).is_err(), "{offset} {len}");
            assert!(
                check(offset, len, true).is_err(),
                "{offset} {len} checksummed"
            );
        }
        // Inside the region but another record (the table after the blob): only the
        // checksummed check reads the header.
        assert!(check(offset + record_footprint(len), len, true).is_err());
    }

    #[test]
    fn the_checksum_policy_decides_whether_a_known_blob_is_checked_again() {
        let (dir, store) = committed();
        // Damage the blob's payload behind the store's back (the mapping shows it).
        let TableEntry::Blob { offset, .. } = store.snapshot().tables[0].get(1) else {
            panic!("chunk 1 is a blob");
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("a.cimg"))
            .unwrap();
        file.write_all_at(&[0xff], offset + 40).unwrap();
        let mismatch = |r: Result<Stored>| {
            matches!(
                r,
                Err(Error::ChecksumMismatch {
                    channel: 0,
                    chunk: 1
                })
            )
        };
        // First read: the handle wrote the blob, so it is trusted (not re-read).
        assert_eq!(store.checksum_policy(), ChecksumPolicy::FirstRead);
        assert!(stored(&store, 1, BlobRead::Whole).is_ok());
        assert!(stored(&store, 1, BlobRead::Part).is_ok());
        // Verification always checksums; so does every read under `EveryRead`.
        assert!(mismatch(stored(&store, 1, BlobRead::Verify)));
        store.set_checksum_policy(ChecksumPolicy::EveryRead);
        assert!(mismatch(stored(&store, 1, BlobRead::Whole)));
        assert!(mismatch(stored(&store, 1, BlobRead::Part)));
        // A new handle has checked nothing yet: its first read catches the damage.
        drop(store);
        let reader = crate::store::Store::open(
            &dir.path().join("a.cimg"),
            crate::store::Access::ReadOnly,
            &|_| Ok(()),
        );
        // The damaged blob lies below the durable end, so the open does not checksum it.
        let reader = reader.unwrap();
        assert!(mismatch(stored(&reader, 1, BlobRead::Whole)));
    }
}
