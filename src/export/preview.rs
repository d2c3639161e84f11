//! Previews: an image scaled down with an area-weighted box filter, streamed into an
//! 8-bit PNG.
//!
//! Output pixel `X` of a row of `out` pixels made from `src` source pixels covers the
//! source interval `[X × src / out, (X + 1) × src / out)`; each source pixel counts by
//! the fraction of it inside, so every output pixel is the mean of the source area it
//! covers (rows the same way). Values are averaged on the common scale (floats as they
//! are, NaN counted as 0; integers normalised), then turned into 8-bit samples with the
//! export's rules: clamped to [0, 1], sRGB-encoded for floating-point colour (not alpha),
//! scaled by 255 and rounded. Each source row adds into at most two output rows, and an
//! output row goes to the PNG stream as soon as its last source row is in, so a preview
//! holds a band of the image's rows and two rows of the preview.

use std::io::Write;
use std::path::Path;

use super::bands::Reading;
use super::options::{SampleDepth, Transfer};
use super::png::{encode, io_error};
use super::transfer::{Quantizer, is_alpha};
use crate::error::Result;
use crate::import::convert::for_each_unit;
use crate::import::error::in_file;
use crate::sample::Dtype;

/// The preview's size for an image of `width × height`: the longest side becomes
/// `max_size` (the other in proportion, rounded, at least 1); an image no larger keeps
/// its size.
pub(crate) fn preview_size(width: usize, height: usize, max_size: usize) -> (usize, usize) {
    let longest = width.max(height);
    if longest <= max_size {
        return (width, height);
    }
    let scale = |side: usize| {
        let scaled = (side as u128 * max_size as u128 + longest as u128 / 2) / longest as u128;
        (scaled as usize).max(1) // at most `max_size`
    };
    (scale(width), scale(height))
}

/// Where a source pixel goes along one axis: the first output pixel it covers, its
/// weight there, and its weight in the next output pixel (0 when it lies in one).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Share {
    first: usize,
    weight: f64,
    next_weight: f64,
}

/// The [`Share`] of each of `src` source pixels among `out ≤ src` output pixels. In
/// units of `1 / out` of a source pixel, source pixel `x` spans `[x × out, (x + 1) × out)`
/// and output pixel `X` spans `[X × src, (X + 1) × src)`; weights are overlaps over `src`.
fn shares(src: usize, out: usize) -> Vec<Share> {
    let (src_u, out_u) = (src as u128, out as u128);
    (0..src as u128)
        .map(|x| {
            let (start, end) = (x * out_u, (x + 1) * out_u);
            let first = start / src_u;
            let boundary = (first + 1) * src_u;
            let inside = end.min(boundary) - start;
            Share {
                first: first as usize,
                weight: inside as f64 / src as f64,
                next_weight: (end - start - inside) as f64 / src as f64,
            }
        })
        .collect()
}

/// A streaming box filter from `width × height` pixels of some channels to a preview.
pub(crate) struct Downscaler {
    width: usize,
    out_height: usize,
    columns: Vec<Share>,
    rows: Vec<Share>,
    quantizers: Vec<Quantizer>,
    /// The output row being filled and the one after it (`out_width × channels` each).
    current: Vec<f64>,
    next: Vec<f64>,
    /// The index of the output row in `current`.
    current_row: usize,
    /// A source row of one channel on the common scale (NaN as 0)…
    units: Vec<f64>,
    /// …and filtered horizontally.
    filtered: Vec<f64>,
    /// Source rows added so far.
    rows_in: usize,
}

impl Downscaler {
    pub(crate) fn new(
        width: usize,
        height: usize,
        (out_width, out_height): (usize, usize),
        dtypes: &[Dtype],
    ) -> Downscaler {
        let count = dtypes.len();
        let quantizers = dtypes
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                Quantizer::new(
                    d,
                    SampleDepth::Eight.max(),
                    Transfer::Srgb,
                    !is_alpha(count, k),
                )
            })
            .collect();
        Downscaler {
            width,
            out_height,
            columns: shares(width, out_width),
            rows: shares(height, out_height),
            quantizers,
            current: vec![0.0; out_width * count],
            next: vec![0.0; out_width * count],
            current_row: 0,
            units: Vec::with_capacity(width),
            filtered: vec![0.0; out_width],
            rows_in: 0,
        }
    }

    /// Add a band of source rows (one buffer per channel, elements of `dtypes`), writing
    /// every completed output row to `out` as 8-bit samples.
    pub(crate) fn add_band(
        &mut self,
        band: &[Vec<u8>],
        dtypes: &[Dtype],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let count = dtypes.len();
        let band_rows = band
            .first()
            .zip(dtypes.first())
            .map_or(0, |(b, d)| b.len() / d.size() / self.width);
        for r in 0..band_rows {
            let share = self.rows[self.rows_in];
            for (k, (bytes, &dtype)) in band.iter().zip(dtypes).enumerate() {
                let row_bytes = self.width * dtype.size();
                self.units.clear();
                for_each_unit(&bytes[r * row_bytes..][..row_bytes], dtype, |u| {
                    self.units.push(if u.is_nan() { 0.0 } else { u })
                });
                self.filter_row();
                for (x, &v) in self.filtered.iter().enumerate() {
                    self.current[x * count + k] += share.weight * v;
                    self.next[x * count + k] += share.next_weight * v;
                }
            }
            self.rows_in += 1;
            let row_done = share.next_weight > 0.0
                || self.rows_in == self.rows.len()
                || self.rows[self.rows_in].first != share.first;
            if row_done && self.current_row < self.out_height {
                self.emit(out)?;
            }
        }
        Ok(())
    }

    /// Filter the source row of one channel in `units` into `filtered`.
    fn filter_row(&mut self) {
        self.filtered.fill(0.0);
        for (share, &v) in self.columns.iter().zip(&self.units) {
            self.filtered[share.first] += share.weight * v;
            if share.next_weight > 0.0 {
                self.filtered[share.first + 1] += share.next_weight * v;
            }
        }
    }

    /// Write the current output row and move on to the next.
    fn emit(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let count = self.quantizers.len();
        let row: Vec<u8> = self
            .current
            .iter()
            .enumerate()
            // 8-bit quantizers give at most 255.
            .map(|(i, &v)| self.quantizers[i % count].sample(v) as u8)
            .collect();
        out.write_all(&row)?;
        std::mem::swap(&mut self.current, &mut self.next);
        self.next.fill(0.0);
        self.current_row += 1;
        Ok(())
    }
}

/// Write a preview of `size` of the channels `reading` reads (one to four: gray, gray +
/// alpha, RGB, RGBA) as an 8-bit PNG file to `out`; `target` is the path errors name.
pub(crate) fn write(
    out: impl Write,
    target: &Path,
    reading: &Reading<'_>,
    size: (usize, usize),
) -> Result {
    let (width, height) = (reading.snap.catalog.width, reading.snap.catalog.height);
    let dtypes = reading.dtypes();
    let samples = dtypes.len();
    encode(out, target, size, samples, SampleDepth::Eight, |png| {
        let mut scaler = Downscaler::new(width, height, size, &dtypes);
        let mut bands = reading.bands(1);
        while let Some(band) = bands.next_band()? {
            scaler
                .add_band(band.channels, &dtypes, png)
                .map_err(|e| in_file(target)(io_error(e)))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_side_becomes_the_maximum_and_the_aspect_is_kept() {
        assert_eq!(preview_size(1000, 500, 512), (512, 256));
        assert_eq!(preview_size(67, 45, 512), (67, 45));
        assert_eq!(preview_size(45, 67, 20), (13, 20));
        assert_eq!(preview_size(10_000, 3, 100), (100, 1));
    }

    #[test]
    fn shares_split_source_pixels_across_output_boundaries() {
        // 3 source pixels into 2: the middle one is split evenly.
        let s = shares(3, 2);
        assert_eq!(
            s[0],
            Share {
                first: 0,
                weight: 2.0 / 3.0,
                next_weight: 0.0
            }
        );
        assert_eq!(
            s[1],
            Share {
                first: 0,
                weight: 1.0 / 3.0,
                next_weight: 1.0 / 3.0
            }
        );
        assert_eq!(
            s[2],
            Share {
                first: 1,
                weight: 2.0 / 3.0,
                next_weight: 0.0
            }
        );
        // Every output pixel's weights sum to one.
        let s = shares(67, 13);
        let mut sums = vec![0.0; 13];
        for share in &s {
            sums[share.first] += share.weight;
            if share.next_weight > 0.0 {
                sums[share.first + 1] += share.next_weight;
            }
        }
        assert!(sums.iter().all(|&t| (t - 1.0).abs() < 1e-12), "{sums:?}");
    }

    #[test]
    fn a_two_by_two_mean_of_u8_values_is_rounded() {
        let mut scaler = Downscaler::new(2, 2, (1, 1), &[Dtype::U8]);
        let mut out = Vec::new();
        scaler
            .add_band(&[vec![10, 20, 30, 41]], &[Dtype::U8], &mut out)
            .unwrap();
        assert_eq!(out, [25]); // 25.25
    }
}
