//! Reading the exported channels band by band: whole rows of every chosen channel, from
//! one commit, so that an export never holds more than a band of each channel.

use std::ops::Range;

use rayon::prelude::*;

use crate::any_channel::read_rows_unchecked;
use crate::error::Result;
use crate::sample::Dtype;
use crate::store::Snapshot;

/// Rows of the channels at `positions` of `snap`, read from the top in bands of
/// `band_rows` rows (the last band may be shorter).
pub(crate) struct Bands<'s> {
    snap: &'s Snapshot,
    positions: Vec<usize>,
    band_rows: usize,
    next_row: usize,
    threads: usize,
    /// One buffer per channel: the current band's rows, little-endian.
    buffers: Vec<Vec<u8>>,
}

/// A band of rows: which, and each channel's bytes for them (in the order of the
/// positions the bands were made for).
pub(crate) struct Band<'b> {
    pub rows: Range<usize>,
    pub channels: &'b [Vec<u8>],
}

/// The rows of a band: enough for the largest chunk among the channels at `positions`
/// (so that each band decodes about one chunk of each channel), rounded up to a multiple
/// of `block_rows` (the writer's block of rows: OpenEXR block, TIFF strip), and no more
/// than the image's height rounded up to whole blocks.
pub(crate) fn band_rows(snap: &Snapshot, positions: &[usize], block_rows: usize) -> usize {
    let block_rows = block_rows.max(1);
    let chunk_rows = positions
        .iter()
        .map(|&p| snap.catalog.channels[p].geometry.rows_per_chunk())
        .max()
        .unwrap_or(1);
    chunk_rows
        .min(snap.catalog.height)
        .max(1)
        .div_ceil(block_rows)
        .saturating_mul(block_rows)
}

/// The element type of each channel at `positions`.
pub(crate) fn dtypes(snap: &Snapshot, positions: &[usize]) -> Vec<Dtype> {
    positions
        .iter()
        .map(|&p| snap.catalog.channels[p].dtype)
        .collect()
}

impl<'s> Bands<'s> {
    pub(crate) fn new(
        snap: &'s Snapshot,
        positions: Vec<usize>,
        band_rows: usize,
        threads: usize,
    ) -> Bands<'s> {
        let buffers = vec![Vec::new(); positions.len()];
        Bands {
            snap,
            positions,
            band_rows: band_rows.max(1),
            next_row: 0,
            threads,
            buffers,
        }
    }

    /// The next band, or `None` after the last row. Channels are decoded in parallel.
    pub(crate) fn next_band(&mut self) -> Result<Option<Band<'_>>> {
        let height = self.snap.catalog.height;
        if self.next_row >= height {
            return Ok(None);
        }
        let rows = self.next_row..(self.next_row + self.band_rows).min(height);
        let width = self.snap.catalog.width;
        let per_channel = (self.threads / self.positions.len().max(1)).max(1);
        let snap = self.snap;
        self.buffers
            .par_iter_mut()
            .zip(&self.positions)
            .try_for_each(|(buffer, &pos)| {
                let len = rows.len() * width * snap.catalog.channels[pos].dtype.size();
                // Zeroed memory is mapped lazily and every byte is overwritten.
                buffer.resize(len, 0);
                read_rows_unchecked(snap, pos, rows.start, buffer, per_channel)
            })?;
        self.next_row = rows.end;
        Ok(Some(Band {
            rows,
            channels: &self.buffers,
        }))
    }
}
