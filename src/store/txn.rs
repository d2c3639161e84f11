//! A transaction: staged changes to one file, written as one commit.
//!
//! Blobs stream to the file's tail as they are added (memory stays bounded however many
//! chunks a batch writes); tables, metadata and the catalog are written at commit, then the
//! slot. Dropping a transaction without committing discards it: its tail bytes are never
//! referenced and are overwritten by the next record.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use super::Store;
use super::snapshot::{Snapshot, StoredChunk, blob_header};
use super::table::Table;
use super::writer::{Durability, Writer};
use crate::error::{Error, Result};
use crate::format::{
    Catalog, ChannelDesc, LeWriter, RecordHeader, RecordKind, RecordRef, Slot, TABLE_ENTRY_LEN,
    TableEntry, crc32, record_len,
};

pub(crate) struct Txn<'a> {
    store: &'a Store,
    writer: MutexGuard<'a, Writer>,
    base: Arc<Snapshot>,
    catalog: Catalog,
    /// Changed tables, by channel id.
    tables: HashMap<u32, Vec<TableEntry>>,
    /// New metadata, if it changed.
    metadata: Option<serde_json::Value>,
    dirty: bool,
    committed: bool,
    /// Whether the caller has a thread to spare for [`Writer::write_ahead`] after the commit.
    write_ahead: bool,
}

impl<'a> Txn<'a> {
    pub(super) fn new(store: &'a Store, writer: MutexGuard<'a, Writer>) -> Result<Txn<'a>> {
        if let Err(e) = writer.check_usable() {
            store.end_txn();
            return Err(e);
        }
        let base = store.snapshot();
        let catalog = base.catalog.clone();
        Ok(Txn {
            store,
            writer,
            base,
            catalog,
            tables: HashMap::new(),
            metadata: None,
            dirty: false,
            committed: false,
            write_ahead: false,
        })
    }

    /// Let the commit prepare the file for a next one like it on a helper thread
    /// ([`Writer::write_ahead`]): for callers that work with more than one thread.
    pub(crate) fn allow_write_ahead(&mut self, allow: bool) {
        self.write_ahead = allow;
    }

    /// Whether the file has no commit yet (it is being created).
    pub(crate) fn is_first_commit(&self) -> bool {
        self.writer.last().generation == 0
    }

    /// The generation this transaction commits as.
    fn generation(&self) -> u64 {
        self.writer.last().generation + 1
    }

    /// The catalog as this transaction sees it.
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Change the catalog (channels, names).
    pub(crate) fn catalog_mut(&mut self) -> &mut Catalog {
        self.dirty = true;
        &mut self.catalog
    }

    /// The descriptor of channel `id` as this transaction sees it.
    pub(crate) fn desc(&self, id: u32) -> Result<&ChannelDesc> {
        self.catalog
            .channels
            .iter()
            .find(|c| c.id == id)
            .ok_or(Error::ChannelRemoved)
    }

    /// Set new image metadata.
    pub(crate) fn set_metadata(&mut self, value: serde_json::Value) {
        self.dirty = true;
        self.metadata = Some(value);
    }

    fn entries_mut(&mut self, id: u32) -> Result<&mut Vec<TableEntry>> {
        let desc = self
            .catalog
            .channels
            .iter()
            .find(|c| c.id == id)
            .ok_or(Error::ChannelRemoved)?;
        let base = &self.base;
        Ok(self
            .tables
            .entry(id)
            .or_insert_with(|| match base.position(id) {
                Ok(pos) => base.tables[pos].to_vec(),
                Err(_) => vec![TableEntry::Default; desc.geometry.num_chunks()],
            }))
    }

    /// Store `chunk` as chunk `index` of channel `id`: a FILL entry, or a BLOB record
    /// appended now and the entry that points to it.
    pub(crate) fn put<'c>(
        &mut self,
        id: u32,
        index: usize,
        chunk: impl Into<StoredChunk<'c>>,
    ) -> Result {
        let bits = match chunk.into() {
            StoredChunk::Fill(bits) => bits,
            StoredChunk::Blob(bytes) => {
                return self.put_blob_with_crc(id, index, bytes, crc32(bytes));
            }
        };
        self.desc(id)?.geometry.check_index(index)?;
        let generation = self.generation();
        self.set_entry(id, index, TableEntry::Fill { bits, generation })
    }

    /// Point chunk `index` of channel `id` at `entry`.
    fn set_entry(&mut self, id: u32, index: usize, entry: TableEntry) -> Result {
        self.dirty = true;
        self.entries_mut(id)?[index] = entry;
        Ok(())
    }

    /// Stage `blob` as chunk `index` of channel `id` with `crc`, its CRC-32, which the
    /// caller computed from these bytes or checked against them: the blob is read once,
    /// to write it. A wrong `crc` makes the chunk fail its checksum on every read.
    pub(crate) fn put_blob_with_crc(
        &mut self,
        id: u32,
        index: usize,
        blob: &[u8],
        crc: u32,
    ) -> Result {
        self.desc(id)?.geometry.check_index(index)?;
        debug_assert_eq!(crc32(blob), crc);
        let entry = self.append_blob(id, index, blob, crc)?;
        self.set_entry(id, index, entry)
    }

    /// Append a blob as a BLOB record; returns the table entry that points to it.
    fn append_blob(&mut self, id: u32, index: usize, chunk: &[u8], crc: u32) -> Result<TableEntry> {
        let desc = self.desc(id)?;
        let len = payload_len(chunk)?;
        let header = RecordHeader {
            generation: self.generation(),
            ..blob_header(desc, index, len, crc)
        };
        let offset = self.append(&header, chunk)?;
        // This handle wrote these bytes and computed their CRC: no read needs to check them.
        self.base.checks.mark_verified(offset, len, crc);
        Ok(TableEntry::Blob {
            offset,
            len,
            crc,
            generation: header.generation,
        })
    }

    /// Write the staged changes as one commit and publish it to readers of this process.
    pub(crate) fn commit(mut self) -> Result {
        self.committed = true;
        if !self.dirty {
            return Ok(());
        }
        let slot = self.write_records()?;
        self.install(slot)
    }

    /// Append the commit's TABLE, META and CATALOG records (SPEC §10 a); returns the slot
    /// that names them.
    fn write_records(&mut self) -> Result<Slot> {
        // Tables of channels that were removed in this transaction are simply not written.
        let mut changed: Vec<u32> = self.tables.keys().copied().collect();
        changed.sort_unstable();
        for id in changed {
            let Some(pos) = self.catalog.channels.iter().position(|c| c.id == id) else {
                continue;
            };
            let payload = encode_table(&self.catalog.channels[pos], &self.tables[&id]);
            let count = self.tables[&id].len() as u32;
            let r = self.append_record(RecordKind::Table, id, count, &payload)?;
            self.catalog.channels[pos].table = Some(r);
        }
        if let Some(value) = &self.metadata {
            self.catalog.meta = match value {
                serde_json::Value::Null => None,
                v => Some(self.append_record(RecordKind::Meta, 0, 0, v.to_string().as_bytes())?),
            };
        }
        let count = self.catalog.channels.len() as u32;
        let catalog = self.append_record(RecordKind::Catalog, 0, count, &self.catalog.encode())?;
        Ok(Slot {
            generation: self.generation(),
            file_id: self.writer.last().file_id,
            committed_end: catalog.offset + record_len(catalog.len),
            durable_end: self.writer.durable_end(),
            catalog_offset: catalog.offset,
            catalog_len: catalog.len,
            catalog_crc: catalog.crc,
        })
    }

    /// Write `slot` (SPEC §10 b) and make its commit this handle's current snapshot; then
    /// sync if every commit must be durable, and compact if the threshold is reached.
    fn install(mut self, slot: Slot) -> Result {
        // Everything that can fail without touching the file happens before the slot write,
        // so that once the slot is written this handle always shows the commit.
        let tables = self
            .catalog
            .channels
            .iter()
            .map(
                |c| match (self.tables.remove(&c.id), self.base.position(c.id)) {
                    (Some(t), _) => t.into(),
                    (None, Ok(pos)) => self.base.tables[pos].clone(),
                    (None, Err(_)) => Table::all_default(c.geometry.num_chunks()),
                },
            )
            .collect();
        let metadata = match self.metadata.take() {
            Some(v) => Arc::new(v),
            None => self.base.metadata.clone(),
        };
        // The current snapshot's mapping, not the base's: an anonymous store may have moved
        // to another file during the transaction.
        let current_map = self.store.snapshot().map.clone();
        let map =
            self.store
                .map_covering(&current_map, slot.committed_end, self.writer.file_len())?;
        self.writer.publish(slot)?;
        let snapshot = Snapshot {
            slot: self.writer.last(),
            page: self.writer.last_page(),
            catalog: std::mem::replace(&mut self.catalog, self.base.catalog.clone()),
            tables,
            metadata,
            map,
            checks: self.base.checks.clone(),
        };
        self.store.publish(snapshot);
        if self.writer.durability() == Durability::Immediate {
            // The commit is made and visible; an error here means its durability is unknown.
            self.writer.sync()?;
            self.store
                .publish_slot(self.writer.last(), self.writer.last_page());
        }
        self.writer.early_writeback();
        if self.write_ahead {
            self.writer.write_ahead();
        }
        self.store.maybe_auto_compact(&mut self.writer)
    }

    fn append_record(
        &mut self,
        kind: RecordKind,
        channel_id: u32,
        aux: u32,
        payload: &[u8],
    ) -> Result<RecordRef> {
        let len = payload_len(payload)?;
        let crc = crc32(payload);
        let header = RecordHeader {
            kind,
            generation: self.generation(),
            channel_id,
            aux,
            payload_len: len,
            payload_crc: crc,
        };
        let offset = self.append(&header, payload)?;
        Ok(RecordRef { offset, len, crc })
    }

    /// Append one record; an anonymous store in memory first moves to a temporary file if
    /// the record would take it past its threshold.
    fn append(&mut self, header: &RecordHeader, payload: &[u8]) -> Result<u64> {
        let end = self.writer.append_end() + record_len(header.payload_len);
        self.store.make_room(&mut self.writer, end)?;
        self.writer.append(header, payload)
    }
}

/// A record payload's length as the format stores it (a u32).
fn payload_len(payload: &[u8]) -> Result<u32> {
    u32::try_from(payload.len()).map_err(|_| {
        Error::invalid(
            crate::error::Argument::RecordLength,
            payload.len(),
            "below 4 GiB",
        )
    })
}

/// The TABLE payload of `desc` with these entries (SPEC §6).
fn encode_table(desc: &ChannelDesc, entries: &[TableEntry]) -> Vec<u8> {
    let mut w = LeWriter(Vec::with_capacity(entries.len() * TABLE_ENTRY_LEN));
    for (i, e) in entries.iter().enumerate() {
        e.encode(desc.geometry.chunk_bytes_at(i) as u32, &mut w);
    }
    w.0
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.writer.discard_uncommitted();
        }
        self.store.end_txn();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BlobRead;
    use crate::store::fixture::{self, ID, Stored, blob, stored};

    #[test]
    fn a_commit_is_visible_at_once_with_its_fill_and_blob_entries() {
        let (_dir, _, store) = fixture::create_temp();
        let generation = store.snapshot().slot.generation;
        let mut txn = store.begin().unwrap();
        txn.put(ID, 1, StoredChunk::Fill(3)).unwrap();
        txn.put(ID, 2, StoredChunk::Blob(&blob(40, 1))).unwrap();
        txn.commit().unwrap();
        assert_eq!(store.snapshot().slot.generation, generation + 1);
        assert_eq!(stored(&store, 0, BlobRead::Whole).unwrap(), Stored::Fill(7));
        assert_eq!(stored(&store, 1, BlobRead::Whole).unwrap(), Stored::Fill(3));
        assert_eq!(
            stored(&store, 2, BlobRead::Verify).unwrap(),
            Stored::Blob(blob(40, 1))
        );
    }

    #[test]
    fn a_dropped_transaction_changes_nothing_and_its_space_is_reused() {
        let (_dir, _, store) = fixture::create_temp();
        let before = store.snapshot().slot;
        let mut txn = store.begin().unwrap();
        txn.put(ID, 0, StoredChunk::Blob(&blob(40, 1))).unwrap();
        let TableEntry::Blob {
            offset: abandoned, ..
        } = txn.tables[&ID][0]
        else {
            panic!("a blob entry was staged");
        };
        drop(txn);
        assert_eq!(store.snapshot().slot, before);
        assert_eq!(stored(&store, 0, BlobRead::Whole).unwrap(), Stored::Fill(7));
        fixture::put_blob(&store, 0, &blob(50, 2));
        let snap = store.snapshot();
        let TableEntry::Blob { offset, .. } = snap.tables[0].get(0) else {
            panic!("chunk 0 is a blob");
        };
        assert_eq!(
            offset, abandoned,
            "the next record overwrites the abandoned one"
        );
        assert_eq!(snap.slot.generation, before.generation + 1);
    }

    /// Commit a 2 MiB blob as chunk `index`, allowing write-ahead; returns the file length
    /// past the new commit's end.
    fn commit_large(store: &Store, index: usize, seed: u8, write_ahead: bool) -> u64 {
        let mut txn = store.begin().unwrap();
        txn.put(ID, index, StoredChunk::Blob(&blob(2 << 20, seed)))
            .unwrap();
        txn.allow_write_ahead(write_ahead);
        txn.commit().unwrap();
        let len = std::fs::metadata(store.path().unwrap()).unwrap().len();
        len - store.snapshot().slot.committed_end
    }

    #[test]
    fn write_ahead_prepares_room_for_a_commit_like_the_last_and_is_overwritten_exactly() {
        let (_dir, _, store) = fixture::create_temp();
        // The first large commit has nothing to predict from; each later one finds the room
        // the previous one prepared, and prepares as much again.
        commit_large(&store, 0, 1, true);
        for round in 0..12u8 {
            let room = commit_large(&store, usize::from(round % 4), round, true);
            assert!(room >= 2 << 20, "round {round}: only {room} bytes ahead");
            for index in 0..=usize::from(round.min(3)) {
                let seed = (0..=round)
                    .rev()
                    .find(|r| usize::from(r % 4) == index)
                    .unwrap();
                assert_eq!(
                    stored(&store, index, BlobRead::Verify).unwrap(),
                    Stored::Blob(blob(2 << 20, seed)),
                    "round {round}, chunk {index}"
                );
            }
        }
    }

    #[test]
    fn no_write_ahead_unless_allowed_or_when_every_commit_is_synced() {
        let (_dir, _, store) = fixture::create_temp();
        commit_large(&store, 0, 1, false);
        assert!(commit_large(&store, 1, 2, false) < 2 << 20);
        store.set_durability(Durability::Immediate).unwrap();
        commit_large(&store, 2, 3, true);
        assert!(commit_large(&store, 3, 4, true) < 2 << 20);
    }

    #[test]
    fn a_transaction_without_changes_commits_nothing() {
        let (_dir, _, store) = fixture::create_temp();
        let before = store.snapshot().slot;
        store.begin().unwrap().commit().unwrap();
        assert_eq!(store.snapshot().slot, before);
    }

    #[test]
    fn a_bad_chunk_index_is_refused_before_anything_is_written() {
        let (_dir, _, store) = fixture::create_temp();
        let mut txn = store.begin().unwrap();
        let err = txn.put(ID, fixture::HEIGHT, StoredChunk::Blob(&blob(40, 1)));
        assert!(matches!(err, Err(Error::IndexOutOfRange { .. })), "{err:?}");
        assert!(!txn.dirty);
        assert!(matches!(
            txn.put(9, 0, StoredChunk::Fill(1)),
            Err(Error::ChannelRemoved)
        ));
    }

    #[test]
    fn a_second_transaction_on_the_same_thread_is_refused() {
        let (_dir, _, store) = fixture::create_temp();
        let txn = store.begin().unwrap();
        assert!(matches!(store.begin(), Err(Error::BatchInProgress)));
        drop(txn);
        store.begin().unwrap();
    }

    #[test]
    fn encoded_tables_decode_entry_by_entry() {
        let desc = &fixture::catalog().channels[0];
        let entries = [
            TableEntry::Default,
            TableEntry::Fill {
                bits: 5,
                generation: 2,
            },
            TableEntry::Blob {
                offset: 8256,
                len: 40,
                crc: 9,
                generation: 3,
            },
            TableEntry::Default,
        ];
        let bytes = encode_table(desc, &entries);
        assert_eq!(bytes.len(), entries.len() * TABLE_ENTRY_LEN);
        for (i, e) in bytes.chunks_exact(TABLE_ENTRY_LEN).enumerate() {
            let raw = desc.geometry.chunk_bytes_at(i) as u32;
            assert_eq!(TableEntry::decode(e, raw).unwrap(), entries[i]);
        }
    }
}
