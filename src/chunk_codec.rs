//! The chunk codec: turns a chunk's elements into what the store keeps (a fill value or a
//! c-blosc2 chunk) and back. It sits between the handles and the store: the store deals in
//! records, tables, fill entries and checksummed bytes and never compresses; this layer
//! detects constant chunks, compresses, checks a blob's blosc2 header before any of its
//! bytes reach C, decompresses (whole chunks or a range of elements) and expands fills.

use crate::blosc::{self, ChunkHeader, CompressParams};
use crate::error::{Error, Result};
use crate::format::{self, ChannelDesc};
use crate::progress::Progress;
use crate::sample::{fill_bytes, uniform_bits};
use crate::store::{BlobRead, Snapshot, Store, StoredChunk, Verification};

// The format's blob length bounds (SPEC §8, §9), which the store enforces without knowing
// c-blosc2, are c-blosc2's own.
const _: () = assert!(
    format::BLOB_HEADER_LEN == blosc::HEADER_LEN
        && format::BLOB_MAX_OVERHEAD == blosc::MAX_OVERHEAD
);

/// A chunk ready to be stored: a fill value (every element has these bits) or a compressed
/// blosc2 chunk.
pub(crate) enum Prepared {
    Fill(u64),
    Blob(Vec<u8>),
}

impl<'a> From<&'a Prepared> for StoredChunk<'a> {
    fn from(chunk: &'a Prepared) -> StoredChunk<'a> {
        match chunk {
            Prepared::Fill(bits) => StoredChunk::Fill(*bits),
            Prepared::Blob(bytes) => StoredChunk::Blob(bytes),
        }
    }
}

/// Compress chunk `index` of `desc` (exactly the chunk's bytes), or recognise it as bitwise
/// constant. Runs outside any lock; `threads` is what the handle asks c-blosc2 for (capped
/// in [`blosc`]).
pub(crate) fn prepare_chunk(
    desc: &ChannelDesc,
    index: usize,
    data: &[u8],
    threads: usize,
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
        threads,
    );
    let mut out = Vec::new();
    blosc::compress(params, data, &mut out)?;
    Ok(Prepared::Blob(out))
}

/// What the bytes a chunk is read into hold before the read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Onto {
    /// Anything: every byte is written.
    Any,
    /// Zero bytes only (a fresh zeroed allocation): a fill of zero bits writes nothing,
    /// so the pages of a fresh allocation under it are never touched.
    Zeros,
}

/// Decompress chunk `index` of the channel at `pos` of `snap` into `out` (exactly the
/// chunk's bytes).
pub(crate) fn read_chunk(
    snap: &Snapshot,
    pos: usize,
    index: usize,
    out: &mut [u8],
    threads: usize,
) -> Result {
    read_chunk_onto(snap, pos, index, out, Onto::Any, threads)
}

/// [`read_chunk`] into bytes that hold what `onto` says.
pub(crate) fn read_chunk_onto(
    snap: &Snapshot,
    pos: usize,
    index: usize,
    out: &mut [u8],
    onto: Onto,
    threads: usize,
) -> Result {
    let desc = &snap.catalog.channels[pos];
    desc.geometry.check_index(index)?;
    check_len(out.len(), desc.geometry.chunk_bytes_at(index))?;
    match snap.stored_chunk(pos, index, BlobRead::Whole)? {
        StoredChunk::Fill(0) if onto == Onto::Zeros => {}
        StoredChunk::Fill(bits) => fill_bytes(out, bits, desc.dtype.size()),
        StoredChunk::Blob(blob) => {
            blosc::decompress_into(checked_blob(desc, index, blob)?, out, threads)?
        }
    }
    Ok(())
}

/// Decode elements `[start, start + out.len() / element size)` of chunk `index` of the
/// channel at `pos` into `out`, touching only the blosc2 blocks that hold them. The caller
/// keeps the range inside the chunk.
pub(crate) fn read_chunk_part(
    snap: &Snapshot,
    pos: usize,
    index: usize,
    start: usize,
    out: &mut [u8],
    threads: usize,
) -> Result {
    let desc = &snap.catalog.channels[pos];
    let size = desc.dtype.size();
    match snap.stored_chunk(pos, index, BlobRead::Part)? {
        StoredChunk::Fill(bits) => fill_bytes(out, bits, size),
        StoredChunk::Blob(blob) => blosc::get_items_into(
            checked_blob(desc, index, blob)?,
            start,
            out.len() / size,
            out,
            threads,
        )?,
    }
    Ok(())
}

/// Check every record of `store`'s current commit, blosc2 headers included, reporting to
/// `progress`.
pub(crate) fn verify(store: &Store, progress: &dyn Progress) -> Result<Verification> {
    store.verify(
        &|desc, index, blob| checked_blob(desc, index, blob).map(drop),
        progress,
    )
}

/// `blob` (chunk `index` of `desc`, record and checksum already checked by the store) once
/// its blosc2 header agrees with the geometry (SPEC §8 step 4). Checked on every read: it is
/// what keeps untrusted bytes from c-blosc2.
fn checked_blob<'b>(desc: &ChannelDesc, index: usize, blob: &'b [u8]) -> Result<&'b [u8]> {
    let header = ChunkHeader::parse(blob)
        .ok_or_else(|| Error::corrupted("blob shorter than a blosc2 header"))?;
    header.check(blob, desc.geometry.chunk_bytes_at(index), desc.dtype.size())?;
    Ok(blob)
}

/// `Ok` when a caller's buffer has exactly the expected length.
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
