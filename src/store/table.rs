//! A channel's chunk table in memory.

use std::sync::Arc;

use crate::format::TableEntry;

/// The entries of one channel's table. A channel without a table record (every chunk
/// DEFAULT) allocates nothing, so a file declaring huge chunk counts costs no memory until
/// its tables are written. Invariant: `entries`, when present, has `len` entries.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    entries: Option<Arc<[TableEntry]>>,
    len: usize,
}

impl Table {
    /// `len` DEFAULT entries.
    pub(crate) fn all_default(len: usize) -> Table {
        Table { entries: None, len }
    }

    /// Entry `index`; panics past the end (callers check the index against the geometry).
    pub(crate) fn get(&self, index: usize) -> TableEntry {
        assert!(index < self.len, "table index {index} past {}", self.len);
        self.entries
            .as_ref()
            .map_or(TableEntry::Default, |e| e[index])
    }

    /// Whether `entry` is this table's blob entry `index` and lies at or past `from` (in a
    /// table whose blobs past `from` were checksummed, it needs no second checksum).
    pub(crate) fn checksummed(&self, index: usize, entry: &TableEntry, from: u64) -> bool {
        match *entry {
            TableEntry::Blob { offset, .. } => {
                offset >= from && index < self.len && self.get(index) == *entry
            }
            _ => false,
        }
    }

    /// Every entry, in chunk order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = TableEntry> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// A mutable copy of the entries.
    pub(crate) fn to_vec(&self) -> Vec<TableEntry> {
        self.iter().collect()
    }
}

impl From<Vec<TableEntry>> for Table {
    fn from(entries: Vec<TableEntry>) -> Table {
        Table {
            len: entries.len(),
            entries: Some(entries.into()),
        }
    }
}
