//! TIFF files through the `tiff` crate, one strip or tile at a time.
//!
//! A band is a whole number of strip (or tile) rows; each strip or tile is decoded into a
//! scratch buffer and its rows copied into the band. A strip is decoded whole, so a file
//! written as a single strip (common for uncompressed files) is held whole.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;

use tiff::decoder::{ChunkType, Decoder, Limits};
use tiff::tags::Tag;

use super::error::{FileResult, ImageFileError};
use super::source::{Source, SourceChannel, SourceInfo, deinterleave, whole_blocks};
use super::tiff_tags::{
    channel_names, compression, page_metadata, sample_dtype, tag_numbers, tiff_error,
};

/// Most pages counted in a file.
const MAX_PAGES: usize = 1 << 16;
/// Largest decoded strip or tile, and largest compressed one: a larger one is refused as
/// too large (the decoder holds a strip or tile whole).
const MAX_CHUNK_BYTES: usize = 1 << 30;

/// Where a strip or tile lies in a band, in pixels.
#[derive(Debug, Clone, Copy)]
struct Rect {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

/// A page of a TIFF file.
pub(crate) struct TiffSource {
    decoder: Decoder<BufReader<File>>,
    info: SourceInfo,
    samples: usize,
    sample_size: usize,
    planar: bool,
    /// Width and height of a strip or tile.
    chunk: (usize, usize),
    /// Strips or tiles in a row, and in a plane.
    chunks_across: usize,
    chunks_per_plane: usize,
    scratch: Vec<u8>,
}

/// The number of pages (image directories) of the file.
fn count_pages(decoder: &mut Decoder<BufReader<File>>) -> FileResult<usize> {
    let mut seen = HashSet::new();
    let mut next = decoder.ifd_pointer();
    while let Some(pointer) = next.filter(|p| seen.len() < MAX_PAGES && seen.insert(p.0)) {
        next = decoder.read_directory(pointer).map_err(tiff_error)?.next();
    }
    Ok(seen.len())
}

impl TiffSource {
    pub(crate) fn open(file: File, page: usize) -> FileResult<TiffSource> {
        let limits = {
            let mut l = Limits::default();
            l.decoding_buffer_size = MAX_CHUNK_BYTES;
            l.intermediate_buffer_size = MAX_CHUNK_BYTES;
            l
        };
        let mut decoder = Decoder::new(BufReader::new(file))
            .map_err(tiff_error)?
            .with_limits(limits);
        let count = count_pages(&mut decoder)?;
        if page >= count {
            return Err(ImageFileError::BadSubimage { index: page, count });
        }
        decoder.seek_to_image(page).map_err(tiff_error)?;

        let code = tag_numbers(&mut decoder, Tag::Compression)?
            .first()
            .copied();
        let compression = compression(code.unwrap_or(1))?;
        let photometric = tag_numbers(&mut decoder, Tag::PhotometricInterpretation)?;
        let gray = match photometric.first() {
            Some(1) => true,
            Some(2) => false,
            other => {
                return Err(ImageFileError::Unsupported(format!(
                    "photometric interpretation {other:?} (gray and RGB are supported)"
                )));
            }
        };
        let color = decoder.colortype().map_err(tiff_error)?;
        let formats = tag_numbers(&mut decoder, Tag::SampleFormat)?;
        if formats.windows(2).any(|w| w[0] != w[1]) {
            return Err(ImageFileError::Unsupported("mixed sample formats".into()));
        }
        let dtype = sample_dtype(formats.first().copied().unwrap_or(1), color.bit_depth())?;
        // Every sample, extra samples included (the colour type counts alpha only).
        let samples = tag_numbers(&mut decoder, Tag::SamplesPerPixel)?
            .first()
            .map_or(1, |&s| usize::from(s));
        let extra = tag_numbers(&mut decoder, Tag::ExtraSamples)?;
        let planar = tag_numbers(&mut decoder, Tag::PlanarConfiguration)?.first() == Some(&2);
        let (width, height) = decoder.dimensions().map_err(tiff_error)?;
        let (width, height) = (width as usize, height as usize);
        let (chunk_width, chunk_height) = decoder.chunk_dimensions();
        let chunk = (chunk_width as usize, chunk_height as usize);
        if chunk.0 == 0 || chunk.1 == 0 {
            return Err(ImageFileError::Decode("empty strips or tiles".into()));
        }
        let chunk_samples = if planar { 1 } else { samples };
        let chunk_bytes = (chunk.0 as u64)
            .saturating_mul(chunk.1.min(height) as u64)
            .saturating_mul((chunk_samples * dtype.size()) as u64);
        if chunk_bytes > MAX_CHUNK_BYTES as u64 {
            return Err(ImageFileError::TooLarge {
                width: width as u64,
                height: height as u64,
            });
        }
        let chunks_across = match decoder.get_chunk_type() {
            ChunkType::Strip => 1,
            ChunkType::Tile => width.div_ceil(chunk.0),
        };
        let metadata = page_metadata(&mut decoder, compression, planar)?;
        Ok(TiffSource {
            decoder,
            info: SourceInfo {
                format: "tiff",
                width,
                height,
                channels: channel_names(samples, gray, &extra)
                    .into_iter()
                    .map(|name| SourceChannel { name, dtype })
                    .collect(),
                subimages: count,
                metadata,
            },
            samples,
            sample_size: dtype.size(),
            planar,
            chunk,
            chunks_across,
            chunks_per_plane: chunks_across * height.div_ceil(chunk.1),
            scratch: Vec::new(),
        })
    }

    /// Decode strip or tile `index` (covering `rect`, pixels of `samples` samples) into
    /// the scratch buffer; returns the distance between its rows in bytes.
    fn decode(&mut self, index: usize, rect: Rect, samples: usize) -> FileResult<usize> {
        let index = u32::try_from(index)
            .map_err(|_| ImageFileError::Decode("too many strips or tiles".into()))?;
        let layout = self
            .decoder
            .image_chunk_buffer_layout(index)
            .map_err(tiff_error)?;
        let row = rect.width * samples * self.sample_size;
        let stride = layout.row_stride.map_or(row, |s| s.get());
        let needed = stride * rect.height.saturating_sub(1) + row;
        if stride < row || layout.len < needed {
            return Err(ImageFileError::Decode(format!(
                "strip or tile {index} does not hold its {} x {} pixels",
                rect.width, rect.height
            )));
        }
        self.scratch.resize(layout.len, 0);
        self.decoder
            .read_chunk_bytes(index, &mut self.scratch)
            .map_err(tiff_error)?;
        Ok(stride)
    }

    /// Copy the decoded strip or tile in the scratch buffer (rows `stride` bytes apart, of
    /// pixels of `samples` interleaved samples, covering `rect` of the band) into the
    /// band's planes: `out[k]` gets sample `picks[k]`.
    fn place(
        &self,
        rect: Rect,
        stride: usize,
        samples: usize,
        picks: &[usize],
        out: &mut [Vec<u8>],
    ) {
        let size = self.sample_size;
        let row = rect.width * samples * size;
        for y in 0..rect.height {
            let pixels = &self.scratch[y * stride..][..row];
            let at = ((rect.top + y) * self.info.width + rect.left) * size;
            let mut planes: Vec<&mut [u8]> = out
                .iter_mut()
                .map(|o| &mut o[at..][..rect.width * size])
                .collect();
            deinterleave(pixels, samples, size, picks, &mut planes);
        }
    }
}

impl Source for TiffSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn band_rows(&self, wanted: usize) -> usize {
        whole_blocks(wanted, self.chunk.1)
    }

    fn read_band(
        &mut self,
        rows: Range<usize>,
        wanted: &[usize],
        out: &mut [Vec<u8>],
    ) -> FileResult {
        let (chunk_width, chunk_height) = self.chunk;
        for chunk_row in rows.start / chunk_height..rows.end.div_ceil(chunk_height) {
            let top = chunk_row * chunk_height;
            let h = chunk_height.min(self.info.height - top);
            for across in 0..self.chunks_across {
                let left = across * chunk_width;
                let rect = Rect {
                    left,
                    top: top - rows.start,
                    width: chunk_width.min(self.info.width - left),
                    height: h,
                };
                let unit = chunk_row * self.chunks_across + across;
                if self.planar {
                    // One plane per sample: decode only the wanted ones.
                    for (k, &p) in wanted.iter().enumerate() {
                        let stride = self.decode(p * self.chunks_per_plane + unit, rect, 1)?;
                        self.place(rect, stride, 1, &[0], std::slice::from_mut(&mut out[k]));
                    }
                } else {
                    let stride = self.decode(unit, rect, self.samples)?;
                    self.place(rect, stride, self.samples, wanted, out);
                }
            }
        }
        Ok(())
    }
}
