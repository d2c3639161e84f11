//! Full integrity check of the current commit (every CRC, every blosc2 header, no two
//! records overlapping), beyond the checks a read makes on the way.

use super::{BlobRead, Store, StoredChunk};
use crate::error::Result;
use crate::format::{ChannelDesc, TableEntry, record_footprint};
use crate::progress::{Progress, Tracker};

/// Checks a blob's bytes beyond their record and checksum (the chunk codec's header check),
/// given its channel and chunk index.
pub(crate) type CheckBlob = dyn Fn(&ChannelDesc, usize, &[u8]) -> Result;

/// What [`verify`](crate::AnyChannel::verify) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// Generation of the commit checked.
    pub generation: u64,
    /// Records checked (catalog, metadata, tables, blobs).
    pub records: usize,
    /// Bytes whose CRC was computed.
    pub bytes_checked: u64,
    /// One line per problem; empty when the commit is intact.
    pub problems: Vec<String>,
    /// `(channel, chunk)` of every chunk whose blob failed a check, in channel and chunk
    /// order (each also has a line in `problems`). Reading such a chunk fails; every other
    /// chunk of the commit reads.
    pub damaged_chunks: Vec<(usize, usize)>,
}

impl Verification {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Check every record the current commit references, each blob also with `check_blob`.
    /// `progress` counts the bytes whose CRC is computed (those of the catalog, metadata and
    /// tables at once, then blob by blob).
    pub(crate) fn verify(
        &self,
        check_blob: &CheckBlob,
        progress: &dyn Progress,
    ) -> Result<Verification> {
        let snap = self.snapshot();
        let blob_bytes: u64 = snap.tables.iter().map(|t| t.blob_bytes()).sum();
        let mut problems = Vec::new();
        let mut damaged_chunks = Vec::new();
        // (offset, aligned length, what) of every referenced record.
        let mut ranges = vec![(
            snap.slot.catalog_offset,
            record_footprint(snap.slot.catalog_len),
            "catalog".to_string(),
        )];
        let mut bytes_checked = u64::from(snap.slot.catalog_len);
        if let Some(m) = snap.catalog.meta {
            ranges.push((m.offset, record_footprint(m.len), "metadata".into()));
            bytes_checked += u64::from(m.len);
        }
        for (pos, desc) in snap.catalog.channels.iter().enumerate() {
            if let Some(t) = desc.table {
                ranges.push((
                    t.offset,
                    record_footprint(t.len),
                    format!("table of channel {pos}"),
                ));
                bytes_checked += u64::from(t.len);
            }
        }
        // The checksums of the catalog, metadata and tables held when the commit was loaded.
        let tracker = Tracker::start(progress, "verify", bytes_checked + blob_bytes);
        tracker.advance(bytes_checked)?;
        for (pos, desc) in snap.catalog.channels.iter().enumerate() {
            for (index, entry) in snap.tables[pos].iter().enumerate() {
                if let TableEntry::Blob { offset, len, .. } = entry {
                    ranges.push((
                        offset,
                        record_footprint(len),
                        format!("channel {pos} chunk {index}"),
                    ));
                    bytes_checked += u64::from(len);
                    let checked = snap.stored_chunk(pos, index, BlobRead::Verify).and_then(
                        |chunk| match chunk {
                            StoredChunk::Blob(blob) => check_blob(desc, index, blob),
                            StoredChunk::Fill(_) => Ok(()),
                        },
                    );
                    if let Err(e) = checked {
                        problems.push(format!("channel {pos} chunk {index}: {e}"));
                        damaged_chunks.push((pos, index));
                    }
                    tracker.advance(u64::from(len))?;
                }
            }
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            let ((a_off, a_len, a), (b_off, _, b)) = (&pair[0], &pair[1]);
            if a_off + a_len > *b_off {
                problems.push(format!("{a} at {a_off} overlaps {b} at {b_off}"));
            }
        }
        Ok(Verification {
            generation: snap.slot.generation,
            records: ranges.len(),
            bytes_checked,
            problems,
            damaged_chunks,
        })
    }
}
