//! TIFF files through the `tiff` crate, strips or tiles decoded in parallel.
//!
//! A band is a whole number of strip (or tile) rows. Its strips or tiles are shared out
//! among a few decoders, each reading the file at its own position, and their rows copied
//! into the band. A strip is decoded whole, so a file written as a single strip (common for
//! uncompressed files) is held whole; one above 1 GiB is refused.

use std::collections::HashSet;
use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use tiff::decoder::ChunkType;
use tiff::tags::Tag;

use super::error::{FileResult, ImageFileError};
use super::source::{Source, SourceChannel, SourceInfo, deinterleave, whole_blocks};
use super::tiff_chunks::{
    ChunkSpot, MAX_CHUNK_BYTES, SampleLayout, TiffDecoder, decode_chunk, open_decoder,
};
use super::tiff_tags::{
    channel_names, compression, page_metadata, sample_dtype, tag_numbers, tiff_error,
};

/// Most pages counted in a file.
const MAX_PAGES: usize = 1 << 16;
/// Most decoders working on one file.
const MAX_DECODERS: usize = 8;

/// A page of a TIFF file.
pub(crate) struct TiffSource {
    /// Decoders at the page, one per thread that decodes.
    decoders: Vec<TiffDecoder>,
    info: SourceInfo,
    /// Samples per pixel in the file.
    samples: usize,
    planar: bool,
    /// How a strip or tile stores its samples.
    layout: SampleLayout,
    /// Width and height of a strip or tile.
    chunk: (usize, usize),
    /// Strips or tiles in a row, and in a plane.
    chunks_across: usize,
    chunks_per_plane: usize,
}

/// A strip or tile to decode for a band: where it goes, and which samples it holds.
struct Job {
    spot: ChunkSpot,
    /// Its first column, and its first row in the band.
    left: usize,
    top: usize,
    /// For a plane of a planar file, the band buffer it fills.
    plane: Option<usize>,
}

/// The number of pages (image directories) of the file.
fn count_pages(decoder: &mut TiffDecoder) -> FileResult<usize> {
    let mut seen = HashSet::new();
    let mut next = decoder.ifd_pointer();
    while let Some(pointer) = next.filter(|p| seen.len() < MAX_PAGES && seen.insert(p.0)) {
        next = decoder.read_directory(pointer).map_err(tiff_error)?.next();
    }
    Ok(seen.len())
}

/// Whether the page is gray (else RGB): photometric interpretation 0 (white is zero, which
/// the decoder inverts) or 1, else 2, or YCbCr inside JPEG-compressed strips or tiles
/// (which the JPEG decoder turns into RGB).
fn is_gray(decoder: &mut TiffDecoder, compression: &str) -> FileResult<bool> {
    match tag_numbers(decoder, Tag::PhotometricInterpretation)?.first() {
        Some(0 | 1) => Ok(true),
        Some(2) => Ok(false),
        Some(6) if compression == "jpeg" => Ok(false),
        other => Err(ImageFileError::Unsupported(format!(
            "photometric interpretation {other:?} (gray and RGB are supported)"
        ))),
    }
}

impl TiffSource {
    pub(crate) fn open(file: File, page: usize) -> FileResult<TiffSource> {
        let file = Arc::new(file);
        let mut decoder = open_decoder(&file)?;
        let count = count_pages(&mut decoder)?;
        if page >= count {
            return Err(ImageFileError::BadSubimage { index: page, count });
        }
        decoder.seek_to_image(page).map_err(tiff_error)?;

        let code = tag_numbers(&mut decoder, Tag::Compression)?
            .first()
            .copied();
        let compression = compression(code.unwrap_or(1))?;
        let gray = is_gray(&mut decoder, compression)?;
        let ycbcr = tag_numbers(&mut decoder, Tag::PhotometricInterpretation)?.first() == Some(&6);
        let bits = usize::from(decoder.colortype().map_err(tiff_error)?.bit_depth());
        let formats = tag_numbers(&mut decoder, Tag::SampleFormat)?;
        if formats.windows(2).any(|w| w[0] != w[1]) {
            return Err(ImageFileError::Unsupported("mixed sample formats".into()));
        }
        // Every sample, extra samples included (the colour type counts alpha only).
        let samples = tag_numbers(&mut decoder, Tag::SamplesPerPixel)?
            .first()
            .map_or(1, |&s| usize::from(s));
        let dtype = sample_dtype(formats.first().copied().unwrap_or(1), bits, samples)?;
        let extra = tag_numbers(&mut decoder, Tag::ExtraSamples)?;
        let planar = tag_numbers(&mut decoder, Tag::PlanarConfiguration)?.first() == Some(&2);
        let (width, height) = decoder.dimensions().map_err(tiff_error)?;
        let (width, height) = (width as usize, height as usize);
        let (chunk_width, chunk_height) = decoder.chunk_dimensions();
        let chunk = (chunk_width as usize, chunk_height as usize);
        if ycbcr && (planar || samples != 3 || bits != 8) {
            return Err(ImageFileError::Unsupported(
                "YCbCr other than 8-bit chunky JPEG".into(),
            ));
        }
        let layout = SampleLayout {
            samples: if planar { 1 } else { samples },
            bits,
            size: dtype.size(),
            ycbcr,
        };
        let chunk_bytes = (chunk.0 as u64)
            .saturating_mul(chunk.1.min(height) as u64)
            .saturating_mul((layout.samples * layout.size) as u64);
        if chunk.0 == 0 || chunk.1 == 0 || chunk_bytes > MAX_CHUNK_BYTES as u64 {
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
        let mut decoders = vec![decoder];
        for _ in 1..rayon::current_num_threads().clamp(1, MAX_DECODERS) {
            let mut more = open_decoder(&file)?;
            more.seek_to_image(page).map_err(tiff_error)?;
            decoders.push(more);
        }
        Ok(TiffSource {
            decoders,
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
            planar,
            layout,
            chunk,
            chunks_across,
            chunks_per_plane: chunks_across * height.div_ceil(chunk.1),
        })
    }

    /// The strips or tiles holding `rows` of the wanted channels (presented positions).
    fn jobs(&self, rows: &Range<usize>, wanted: &[usize]) -> Vec<Job> {
        let (chunk_width, chunk_height) = self.chunk;
        let mut jobs = Vec::new();
        for chunk_row in rows.start / chunk_height..rows.end.div_ceil(chunk_height) {
            let top = chunk_row * chunk_height;
            for across in 0..self.chunks_across {
                let left = across * chunk_width;
                let unit = chunk_row * self.chunks_across + across;
                let job = |index, plane| Job {
                    spot: ChunkSpot {
                        index,
                        stored_width: chunk_width,
                        width: chunk_width.min(self.info.width - left),
                        height: chunk_height.min(self.info.height - top),
                    },
                    left,
                    top: top - rows.start,
                    plane,
                };
                if self.planar {
                    // One plane per sample: only the wanted ones.
                    jobs.extend(
                        wanted
                            .iter()
                            .enumerate()
                            .map(|(k, &p)| job(p * self.chunks_per_plane + unit, Some(k))),
                    );
                } else {
                    jobs.push(job(unit, None));
                }
            }
        }
        jobs
    }

    /// Copy `pixels`, the decoded strip or tile of `job`, into the band buffers `out`
    /// (`out[k]` gets sample `wanted[k]`).
    fn place(&self, job: &Job, pixels: &[u8], wanted: &[usize], out: &mut [Vec<u8>]) {
        let size = self.layout.size;
        let (samples, picks, out) = match job.plane {
            Some(k) => (1, &[0][..], std::slice::from_mut(&mut out[k])),
            None => (self.samples, wanted, out),
        };
        let row = job.spot.width * samples * size;
        for (y, pixels) in pixels.chunks_exact(row).enumerate() {
            let at = ((job.top + y) * self.info.width + job.left) * size;
            let mut planes: Vec<&mut [u8]> = out
                .iter_mut()
                .map(|o| &mut o[at..][..job.spot.width * size])
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
        let jobs = self.jobs(&rows, wanted);
        let layout = self.layout;
        let workers = self.decoders.len();
        // Decoder d takes jobs d, d + workers, …
        let decoded: Vec<Vec<(usize, Vec<u8>)>> = self
            .decoders
            .par_iter_mut()
            .enumerate()
            .map(|(d, decoder)| {
                (d..jobs.len())
                    .step_by(workers)
                    .map(|j| Ok((j, decode_chunk(decoder, jobs[j].spot, layout)?)))
                    .collect::<FileResult<Vec<_>>>()
            })
            .collect::<FileResult<_>>()?;
        for (j, pixels) in decoded.into_iter().flatten() {
            self.place(&jobs[j], &pixels, wanted, out);
        }
        Ok(())
    }
}
