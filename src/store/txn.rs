//! A transaction: staged changes to one file, written as one commit.
//!
//! Blobs stream to the file's tail as they are added (memory stays bounded however many
//! chunks a batch writes); tables, metadata and the catalog are written at commit, then the
//! slot. Dropping a transaction without committing discards it: its tail bytes are never
//! referenced and are overwritten by the next record.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use super::Store;
use super::snapshot::{Snapshot, blob_header, check_len};
use super::table::Table;
use super::writer::{Durability, Writer};
use crate::blosc::{self, CompressParams};
use crate::error::{Error, Result};
use crate::format::{
    Catalog, ChannelDesc, LeWriter, RecordHeader, RecordKind, RecordRef, Slot, TableEntry, crc32,
};
use crate::sample::uniform_bits;

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
}

/// A chunk ready to be stored: either a fill value or a compressed blosc2 chunk.
pub(crate) enum Prepared {
    Fill(u64),
    Blob(Vec<u8>),
}

/// Compress one chunk of `desc` (or recognise it as bitwise constant), outside any lock.
pub(crate) fn prepare_chunk(
    desc: &ChannelDesc,
    index: usize,
    data: &[u8],
    nthreads: usize,
) -> Result<Prepared> {
    desc.geometry.check_index(index)?;
    check_len(data.len(), desc.geometry.chunk_bytes_at(index))?;
    let size = desc.dtype.size();
    if let Some(bits) = uniform_bits(data, size) {
        return Ok(Prepared::Fill(bits));
    }
    let params = CompressParams::new(
        desc.codec,
        desc.level,
        size,
        desc.block_size as usize,
        nthreads,
    );
    let mut out = Vec::new();
    blosc::compress(params, data, &mut out)?;
    Ok(Prepared::Blob(out))
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
        })
    }

    /// Whether the file has no commit yet (it is being created).
    pub(crate) fn is_first_commit(&self) -> bool {
        self.writer.last.generation == 0
    }

    fn generation(&self) -> u64 {
        self.writer.last.generation + 1
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

    /// Store a prepared chunk as chunk `index` of channel `id`.
    pub(crate) fn put(&mut self, id: u32, index: usize, chunk: &Prepared) -> Result {
        let generation = self.generation();
        let entry = match chunk {
            Prepared::Fill(bits) => TableEntry::Fill {
                bits: *bits,
                generation,
            },
            Prepared::Blob(bytes) => self.append_blob(id, index, bytes)?,
        };
        self.set_entry(id, index, entry)
    }

    /// Append a blosc2 chunk as a BLOB record; returns the table entry that points to it.
    pub(crate) fn append_blob(
        &mut self,
        id: u32,
        index: usize,
        chunk: &[u8],
    ) -> Result<TableEntry> {
        let desc = self.desc(id)?;
        let len = u32::try_from(chunk.len()).map_err(|_| {
            Error::invalid(
                crate::error::Argument::RecordLength,
                chunk.len(),
                "below 4 GiB",
            )
        })?;
        let crc = crc32(chunk);
        let header = RecordHeader {
            generation: self.generation(),
            ..blob_header(desc, index, len, crc)
        };
        let offset = self.writer.append(&header, chunk)?;
        // This handle wrote these bytes and computed their CRC: no read needs to check them.
        self.base.checks.mark_verified(offset, len, crc);
        Ok(TableEntry::Blob {
            offset,
            len,
            crc,
            generation: header.generation,
        })
    }

    /// Point chunk `index` of channel `id` at `entry`.
    pub(crate) fn set_entry(&mut self, id: u32, index: usize, entry: TableEntry) -> Result {
        self.desc(id)?.geometry.check_index(index)?;
        self.dirty = true;
        self.entries_mut(id)?[index] = entry;
        Ok(())
    }

    /// Write the staged changes as one commit and publish it to readers of this process.
    pub(crate) fn commit(mut self) -> Result {
        self.committed = true;
        if !self.dirty {
            return Ok(());
        }
        let generation = self.generation();
        // Tables of channels that were removed in this transaction are simply not written.
        let mut changed: Vec<u32> = self.tables.keys().copied().collect();
        changed.sort_unstable();
        for id in changed {
            let Some(pos) = self.catalog.channels.iter().position(|c| c.id == id) else {
                continue;
            };
            let g = self.catalog.channels[pos].geometry;
            let entries = &self.tables[&id];
            let mut w = LeWriter(Vec::with_capacity(
                entries.len() * crate::format::TABLE_ENTRY_LEN,
            ));
            for (i, e) in entries.iter().enumerate() {
                e.encode(g.chunk_bytes_at(i) as u32, &mut w);
            }
            let r = self.append_record(RecordKind::Table, id, entries.len() as u32, &w.0)?;
            self.catalog.channels[pos].table = Some(r);
        }
        if let Some(value) = &self.metadata {
            self.catalog.meta = match value {
                serde_json::Value::Null => None,
                v => Some(self.append_record(RecordKind::Meta, 0, 0, v.to_string().as_bytes())?),
            };
        }
        let catalog_bytes = self.catalog.encode();
        let count = self.catalog.channels.len() as u32;
        let catalog_ref = self.append_record(RecordKind::Catalog, 0, count, &catalog_bytes)?;
        let slot = Slot {
            generation,
            file_id: self.writer.last.file_id,
            committed_end: catalog_ref.offset
                + (crate::format::RECORD_HEADER_LEN + catalog_bytes.len()) as u64,
            durable_end: self.writer.durable_end(),
            catalog_offset: catalog_ref.offset,
            catalog_len: catalog_ref.len,
            catalog_crc: catalog_ref.crc,
        };
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
        let map =
            self.store
                .map_covering(&self.base.map, slot.committed_end, self.writer.file_len)?;
        self.writer.publish(slot)?;
        let snapshot = Snapshot {
            slot: self.writer.last,
            page: self.writer.last_page,
            catalog: std::mem::replace(&mut self.catalog, self.base.catalog.clone()),
            tables,
            metadata,
            map,
            checks: self.base.checks.clone(),
        };
        self.store.publish(snapshot);
        if self.writer.durability == Durability::Immediate {
            // The commit is made and visible; an error here means its durability is unknown.
            self.writer.sync()?;
            self.store
                .publish_slot(self.writer.last, self.writer.last_page);
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
        let len = u32::try_from(payload.len()).map_err(|_| {
            Error::invalid(
                crate::error::Argument::RecordLength,
                payload.len(),
                "below 4 GiB",
            )
        })?;
        let crc = crc32(payload);
        let header = RecordHeader {
            kind,
            generation: self.generation(),
            channel_id,
            aux,
            payload_len: len,
            payload_crc: crc,
        };
        let offset = self.writer.append(&header, payload)?;
        Ok(RecordRef { offset, len, crc })
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.writer.discard_uncommitted();
        }
        self.store.end_txn();
    }
}
