//! [`SnapshotId`]: the name of one commit of a file, to open exactly that commit again,
//! in this or another process (SPEC §11, "Pinned commits").

use std::fmt;
use std::str::FromStr;

use crate::error::{Argument, Error, Result};
use crate::format::{LeReader, LeWriter, RECORD_ALIGN, REGION_START, Slot, crc32};

/// Everything needed to load one commit of a file again: its file's id, its generation and
/// the reference to its catalog (offset, length, CRC-32) and its end. Get it from a handle
/// with `snapshot_id()` (the commit the handle reads) and open that commit with
/// `open_snapshot(path, &id)` ([`AnyImage::open_snapshot`](crate::AnyImage::open_snapshot),
/// [`AnyChannel::open_snapshot`](crate::AnyChannel::open_snapshot), …), in this or another
/// process, however many commits the writer has made since: committed bytes never change
/// (SPEC §1). Once the file is compacted or replaced the commit is gone, and the open
/// fails with [`Error::SnapshotUnavailable`] rather than read anything else.
///
/// [`to_bytes`](Self::to_bytes) / [`from_bytes`](Self::from_bytes) are a stable 48-byte
/// little-endian encoding, and `Display` / `FromStr` the same bytes in hexadecimal:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | encoding version, 1 |
/// | 1 | 3 | zero |
/// | 4 | 8 | `file_id` |
/// | 12 | 8 | `generation` |
/// | 20 | 8 | `committed_end` |
/// | 28 | 8 | `catalog_offset` |
/// | 36 | 4 | `catalog_len` |
/// | 40 | 4 | `catalog_crc` |
/// | 44 | 4 | CRC-32 of bytes 0–43 |
///
/// ```
/// # fn main() -> compressed_image::Result {
/// use compressed_image::{Channel, Settings, SnapshotId};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("c.cimg");
/// let writer = Channel::<u8>::create_full(&path, 8, 8, 1, Settings::default())?;
/// let id: SnapshotId = writer.snapshot_id().to_string().parse()?;
/// writer.set_chunk(0, &[2; 64])?; // a newer commit
/// let pinned = Channel::<u8>::open_snapshot(&path, &id)?;
/// assert_eq!(pinned.get_chunk_vec(0)?, [1; 64]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnapshotId {
    file_id: u64,
    generation: u64,
    committed_end: u64,
    catalog_offset: u64,
    catalog_len: u32,
    catalog_crc: u32,
}

const VERSION: u8 = 1;
/// Length of the encoding; the CRC covers the bytes before [`CRC_AT`].
const ENCODED_LEN: usize = 48;
const CRC_AT: usize = 44;

fn invalid(got: impl fmt::Display) -> Error {
    Error::invalid(
        Argument::SnapshotId,
        got,
        "the 48-byte encoding of a snapshot id (version 1)",
    )
}

impl SnapshotId {
    /// The id of the commit `slot` names.
    pub(crate) fn of(slot: &Slot) -> SnapshotId {
        SnapshotId {
            file_id: slot.file_id,
            generation: slot.generation,
            committed_end: slot.committed_end,
            catalog_offset: slot.catalog_offset,
            catalog_len: slot.catalog_len,
            catalog_crc: slot.catalog_crc,
        }
    }

    /// A slot naming this commit. `durable_end` is its end: a pinned commit's blobs are
    /// checksummed as they are read (SPEC §8) rather than all at open.
    pub(crate) fn slot(&self) -> Slot {
        Slot {
            generation: self.generation,
            file_id: self.file_id,
            committed_end: self.committed_end,
            durable_end: self.committed_end,
            catalog_offset: self.catalog_offset,
            catalog_len: self.catalog_len,
            catalog_crc: self.catalog_crc,
        }
    }

    /// The generation of the commit (see `generation()` on the handles).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The random id of the file, kept by compaction (SPEC §3).
    pub fn file_id(&self) -> u64 {
        self.file_id
    }

    /// The stable encoding (see the type's documentation).
    pub fn to_bytes(&self) -> [u8; ENCODED_LEN] {
        let mut w = LeWriter(Vec::with_capacity(ENCODED_LEN));
        w.u8(VERSION).zeros(3);
        w.u64(self.file_id)
            .u64(self.generation)
            .u64(self.committed_end)
            .u64(self.catalog_offset);
        w.u32(self.catalog_len).u32(self.catalog_crc);
        let crc = crc32(&w.0);
        w.u32(crc);
        w.0.try_into().expect("the encoding is 48 bytes")
    }

    /// Decode [`to_bytes`](Self::to_bytes)' encoding.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (kind [`Argument::SnapshotId`]) for another length, an
    /// unknown version, a damaged id (its CRC-32 fails) or fields that cannot name a
    /// commit; never panics. An id that decodes but names no commit of the file is refused
    /// when opened.
    pub fn from_bytes(bytes: &[u8]) -> Result<SnapshotId> {
        if bytes.len() != ENCODED_LEN {
            return Err(invalid(format!("{} bytes", bytes.len())));
        }
        if bytes[0] != VERSION {
            return Err(invalid(format!("version {}", bytes[0])));
        }
        let mut r = LeReader::new(&bytes[CRC_AT..]);
        if r.u32() != crc32(&bytes[..CRC_AT]) {
            return Err(invalid("a damaged id (its checksum fails)"));
        }
        if bytes[1..4] != [0; 3] {
            return Err(invalid("nonzero reserved bytes"));
        }
        let mut r = LeReader::new(&bytes[4..CRC_AT]);
        let id = SnapshotId {
            file_id: r.u64(),
            generation: r.u64(),
            committed_end: r.u64(),
            catalog_offset: r.u64(),
            catalog_len: r.u32(),
            catalog_crc: r.u32(),
        };
        let names_a_commit = id.generation >= 1
            && id.catalog_offset >= REGION_START
            && id.catalog_offset.is_multiple_of(RECORD_ALIGN)
            && id.committed_end > id.catalog_offset;
        if !names_a_commit {
            return Err(invalid("fields that name no commit"));
        }
        Ok(id)
    }
}

impl fmt::Display for SnapshotId {
    /// The encoding in lower-case hexadecimal (96 digits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for SnapshotId {
    type Err = Error;

    /// The hexadecimal form `Display` writes.
    fn from_str(s: &str) -> Result<SnapshotId> {
        let digits = s.as_bytes();
        if !digits.len().is_multiple_of(2) || !s.is_ascii() {
            return Err(invalid("a string that is not hexadecimal bytes"));
        }
        let bytes = digits
            .chunks_exact(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| invalid("a string that is not hexadecimal bytes"))
            })
            .collect::<Result<Vec<u8>>>()?;
        SnapshotId::from_bytes(&bytes)
    }
}
