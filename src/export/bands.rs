//! Reading the exported channels band by band: whole rows of every chosen channel, from
//! one commit, so that an export never holds more than a band of each channel; each band
//! is reported to the export's progress observer once it has been written.

use std::ops::Range;

use rayon::prelude::*;

use crate::any_channel::read_rows_unchecked;
use crate::error::Result;
use crate::progress::{Progress, Tracker};
use crate::sample::Dtype;
use crate::store::Snapshot;

/// What an export reads — the channels at `positions` of `snap`, decoded on `threads`
/// threads — and the observer of its progress, which hears `finish` when this is dropped.
///
/// The work is the bytes of those channels' elements in the image's types (not the
/// written file's samples): [`total_bytes`] in all.
pub(crate) struct Reading<'a> {
    pub snap: &'a Snapshot,
    pub positions: &'a [usize],
    pub threads: usize,
    tracker: Tracker<'a>,
}

/// Bytes of every element of the channels at `positions` of `snap`.
pub(crate) fn total_bytes(snap: &Snapshot, positions: &[usize]) -> u64 {
    let pixels = snap.catalog.width as u64 * snap.catalog.height as u64;
    let element_bytes: u64 = dtypes(snap, positions)
        .iter()
        .map(|d| d.size() as u64)
        .sum();
    pixels * element_bytes
}

impl<'a> Reading<'a> {
    /// Start the reading: `progress` hears `start` with `what` and [`total_bytes`].
    pub(crate) fn start(
        snap: &'a Snapshot,
        positions: &'a [usize],
        threads: usize,
        progress: &'a dyn Progress,
        what: &str,
    ) -> Reading<'a> {
        let tracker = Tracker::start(progress, what, total_bytes(snap, positions));
        Reading {
            snap,
            positions,
            threads,
            tracker,
        }
    }

    /// The element type of each channel read.
    pub(crate) fn dtypes(&self) -> Vec<Dtype> {
        dtypes(self.snap, self.positions)
    }

    /// The rows, from the top, in bands of about a chunk rounded up to whole blocks of
    /// `block_rows` rows (see [`band_rows`]).
    pub(crate) fn bands(&self, block_rows: usize) -> Bands<'_> {
        let band_rows = band_rows(self.snap, self.positions, block_rows);
        Bands {
            reading: self,
            band_rows,
            next_row: 0,
            buffers: vec![Vec::new(); self.positions.len()],
            unreported: 0,
        }
    }
}

/// Rows of the channels a [`Reading`] reads, from the top in bands of `band_rows` rows
/// (the last band may be shorter).
pub(crate) struct Bands<'r> {
    reading: &'r Reading<'r>,
    band_rows: usize,
    next_row: usize,
    /// One buffer per channel: the current band's rows, little-endian.
    buffers: Vec<Vec<u8>>,
    /// Bytes of the band handed out last, reported as done when the next is asked for
    /// (the writer is done with a band when it asks for the next one).
    unreported: u64,
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
fn band_rows(snap: &Snapshot, positions: &[usize], block_rows: usize) -> usize {
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

impl Bands<'_> {
    /// The next band, or `None` after the last row; first the band before it is reported
    /// done. Channels are decoded in parallel.
    ///
    /// # Errors
    /// [`Error::Cancelled`](crate::Error::Cancelled) when the observer cancels; errors
    /// reading the chunks.
    pub(crate) fn next_band(&mut self) -> Result<Option<Band<'_>>> {
        let reading = self.reading;
        reading
            .tracker
            .advance(std::mem::take(&mut self.unreported))?;
        let snap = reading.snap;
        let height = snap.catalog.height;
        if self.next_row >= height {
            return Ok(None);
        }
        let rows = self.next_row..(self.next_row + self.band_rows).min(height);
        let width = snap.catalog.width;
        let per_channel = (reading.threads / reading.positions.len().max(1)).max(1);
        self.buffers
            .par_iter_mut()
            .zip(reading.positions)
            .try_for_each(|(buffer, &pos)| {
                let len = rows.len() * width * snap.catalog.channels[pos].dtype.size();
                // Zeroed memory is mapped lazily and every byte is overwritten.
                buffer.resize(len, 0);
                read_rows_unchecked(snap, pos, rows.start, buffer, per_channel)
            })?;
        self.next_row = rows.end;
        self.unreported = self.buffers.iter().map(|b| b.len() as u64).sum();
        Ok(Some(Band {
            rows,
            channels: &self.buffers,
        }))
    }
}
