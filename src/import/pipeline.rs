//! The streaming import: bands of rows from a reader, gathered into chunks, post-processed,
//! compressed and appended to one transaction. Decoding the next band overlaps with
//! compressing the chunks the previous band completed, so the memory in use is about
//! two bands of the wanted channels plus, per imported channel, the chunk being filled and
//! the chunk being compressed — never the whole image. Each chunk is reported to the
//! progress observer once it is stored.

use std::path::Path;

use rayon::prelude::*;

use super::assemble::{ChunkAssembler, FullChunk};
use super::error::in_file;
use super::options::ImportedChunk;
use super::source::{Source, check_held};
use crate::chunk_codec::{Prepared, prepare_chunk};
use crate::error::Result;
use crate::format::ChannelDesc;
use crate::progress::Tracker;
use crate::sample::Dtype;
use crate::store::Txn;

/// The per-chunk callback of an import.
pub(crate) type PostProcess<'p> = dyn FnMut(ImportedChunk<'_>) -> Result + 'p;

/// Who hears of each chunk of an import: the post-process callback, before the chunk is
/// compressed, and the progress tracker, with the chunk's bytes once it is stored.
pub(crate) struct Hooks<'h, 'p> {
    pub post: &'h mut PostProcess<'p>,
    pub tracker: &'h Tracker<'h>,
}

/// How the channels of an import map onto the reader's.
pub(crate) struct Plan {
    /// Presented position, in the file, of each imported channel.
    pub picks: Vec<usize>,
    /// The distinct presented positions to decode, ascending.
    pub decoded: Vec<usize>,
    /// For each imported channel, its buffer among `decoded`.
    pub slot: Vec<usize>,
}

impl Plan {
    pub(crate) fn new(picks: Vec<usize>) -> Plan {
        let mut decoded = picks.clone();
        decoded.dedup(); // picks are sorted
        let slot = picks
            .iter()
            .map(|p| decoded.partition_point(|d| d < p))
            .collect();
        Plan {
            picks,
            decoded,
            slot,
        }
    }
}

/// The rows each band holds: enough for the smallest chunk of the imported channels,
/// rounded to the reader's blocks.
pub(crate) fn band_rows(source: &dyn Source, descs: &[ChannelDesc]) -> usize {
    let wanted = descs
        .iter()
        .map(|d| d.geometry.rows_per_chunk())
        .min()
        .unwrap_or(1);
    source.band_rows(wanted)
}

/// Compress `chunks` in parallel, `threads` threads in all.
fn compress(chunks: &[FullChunk], descs: &[ChannelDesc], threads: usize) -> Result<Vec<Prepared>> {
    let per_chunk = (threads / chunks.len().max(1)).max(1);
    chunks
        .par_iter()
        .map(|c| prepare_chunk(&descs[c.channel], c.index, c.data.bytes(), per_chunk))
        .collect()
}

/// Make each band buffer hold `elems` elements of its channel's type.
fn size_bands(bands: &mut [Vec<u8>], dtypes: &[Dtype], elems: usize) {
    for (band, dtype) in bands.iter_mut().zip(dtypes) {
        let len = elems * dtype.size();
        if band.len() >= len {
            band.truncate(len);
        } else {
            // Zeroed memory is mapped lazily: a file that fails early never touches it.
            *band = vec![0; len];
        }
    }
}

/// The post-process callback's view of `chunk` of the channel `desc` describes.
fn imported<'c>(chunk: &'c mut FullChunk, desc: &ChannelDesc, plan: &Plan) -> ImportedChunk<'c> {
    ImportedChunk {
        channel: chunk.channel,
        file_channel: plan.picks[chunk.channel],
        index: chunk.index,
        start_row: desc.geometry.chunk_start_row(chunk.index),
        width: desc.geometry.width(),
        dtype: desc.dtype,
        data: chunk.data.bytes_mut(),
    }
}

/// Stream every row of `source` into the channels `descs` (one per pick of `plan`, already
/// in the transaction's catalog), telling `hooks` of each chunk. Reader errors name `path`.
///
/// # Errors
/// [`Error::Cancelled`](crate::Error::Cancelled) when the tracker's observer cancels, after
/// the chunk it was told of; the callback's errors; reader and store errors.
pub(crate) fn stream(
    source: &mut dyn Source,
    path: &Path,
    plan: &Plan,
    descs: &[ChannelDesc],
    txn: &mut Txn<'_>,
    hooks: Hooks<'_, '_>,
    threads: usize,
) -> Result {
    let (width, height) = (source.info().width, source.info().height);
    let src_dtypes: Vec<Dtype> = plan
        .decoded
        .iter()
        .map(|&p| source.info().channels[p].dtype)
        .collect();
    let band_rows = band_rows(source, descs);
    let band_bytes = src_dtypes.iter().try_fold(0usize, |sum, d| {
        band_rows
            .checked_mul(width)?
            .checked_mul(d.size())?
            .checked_add(sum)
    });
    check_held(band_bytes, width, height).map_err(in_file(path))?;
    let mut assemblers: Vec<ChunkAssembler> = descs
        .iter()
        .enumerate()
        .map(|(k, d)| ChunkAssembler::new(k, d.geometry, d.dtype))
        .collect();
    let mut bands: Vec<Vec<u8>> = vec![Vec::new(); plan.decoded.len()];
    let mut ready: Vec<FullChunk> = Vec::new();
    let mut next_row = 0;
    while next_row < height || !ready.is_empty() {
        let rows = next_row..(next_row + band_rows).min(height);
        size_bands(&mut bands, &src_dtypes, rows.len() * width);
        let (decoded, compressed) = rayon::join(
            || {
                if rows.is_empty() || plan.decoded.is_empty() {
                    Ok(())
                } else {
                    source.read_band(rows.clone(), &plan.decoded, &mut bands)
                }
            },
            || compress(&ready, descs, threads),
        );
        decoded.map_err(in_file(path))?;
        for (chunk, prepared) in ready.iter().zip(&compressed?) {
            txn.put(descs[chunk.channel].id, chunk.index, prepared)?;
            hooks.tracker.advance_len(chunk.data.bytes().len())?;
        }
        ready.clear();
        for (k, assembler) in assemblers.iter_mut().enumerate() {
            let slot = plan.slot[k];
            assembler.push_rows(&bands[slot], src_dtypes[slot], &mut ready);
        }
        for chunk in &mut ready {
            (hooks.post)(imported(chunk, &descs[chunk.channel], plan))?;
        }
        next_row = rows.end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_picked_twice_is_decoded_once() {
        let plan = Plan::new(vec![0, 2, 2, 5]);
        assert_eq!(plan.decoded, [0, 2, 5]);
        assert_eq!(plan.slot, [0, 1, 1, 2]);
    }
}
