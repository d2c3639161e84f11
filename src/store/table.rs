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

    /// Bytes of the blosc2 chunks the blob entries reference (their payload lengths).
    pub(crate) fn blob_bytes(&self) -> u64 {
        self.iter()
            .map(|e| match e {
                TableEntry::Blob { len, .. } => u64::from(len),
                _ => 0,
            })
            .sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(offset: u64) -> TableEntry {
        TableEntry::Blob {
            offset,
            len: 40,
            crc: 1,
            generation: 2,
        }
    }

    #[test]
    fn an_all_default_table_reads_default_everywhere() {
        let t = Table::all_default(3);
        assert!(t.entries.is_none());
        assert_eq!(t.to_vec(), vec![TableEntry::Default; 3]);
    }

    #[test]
    fn lookup_returns_each_entry_in_chunk_order() {
        let entries = vec![
            TableEntry::Default,
            blob(8192),
            TableEntry::Fill {
                bits: 3,
                generation: 1,
            },
        ];
        let t = Table::from(entries.clone());
        assert_eq!((0..3).map(|i| t.get(i)).collect::<Vec<_>>(), entries);
        assert_eq!(t.iter().collect::<Vec<_>>(), entries);
    }

    #[test]
    #[should_panic(expected = "table index 3 past 3")]
    fn lookup_past_the_end_panics_as_documented() {
        Table::all_default(3).get(3);
    }

    #[test]
    fn only_the_same_blob_at_or_past_the_offset_counts_as_checksummed() {
        let t = Table::from(vec![blob(8192), blob(9000)]);
        assert!(t.checksummed(1, &blob(9000), 9000));
        assert!(!t.checksummed(1, &blob(9000), 9001), "below the offset");
        assert!(!t.checksummed(0, &blob(9000), 0), "another chunk's entry");
        assert!(!t.checksummed(5, &blob(9000), 0), "past the end");
        assert!(!t.checksummed(
            0,
            &TableEntry::Fill {
                bits: 0,
                generation: 1
            },
            0
        ));
    }
}
