//! TIFF files through the `tiff` crate's directory encoder: chunky 8- or 16-bit strips,
//! made band by band from the image's rows, compressed here in parallel (the crate's
//! strip-by-strip encoder writes strips uncompressed) and written in order; the
//! directory, with the strip offsets, comes last.

use std::borrow::Cow;
use std::io::{Seek, Write};
use std::path::Path;

use rayon::prelude::*;
use tiff::encoder::compression::{CompressionAlgorithm, Deflate, Lzw};
use tiff::encoder::{DirectoryEncoder, TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard};
use tiff::tags::{
    CompressionMethod, ExtraSamples, PhotometricInterpretation, PlanarConfiguration, Predictor,
    SampleFormat, Tag,
};

use super::bands::Reading;
use super::options::{SampleDepth, TiffCompression};
use super::transfer::{PixelLayout, is_alpha};
use crate::error::Result;
use crate::import::ImageFileError;
use crate::import::error::in_file;

/// About how many bytes of pixels a strip holds.
const STRIP_BYTES: usize = 256 * 1024;

/// The typed error for a `tiff` crate error while writing.
fn tiff_error(e: tiff::TiffError) -> ImageFileError {
    match e {
        tiff::TiffError::IoError(e) => ImageFileError::Io(e),
        other => ImageFileError::Encode(other.to_string()),
    }
}

/// TIFF predictor 2 on a strip of rows of `row_bytes`: every sample becomes its
/// difference from the same sample of the previous pixel (16-bit samples little-endian).
fn horizontal_difference(strip: &mut [u8], row_bytes: usize, samples: usize, depth: SampleDepth) {
    for row in strip.chunks_exact_mut(row_bytes) {
        match depth {
            SampleDepth::Eight => {
                for i in (samples..row.len()).rev() {
                    row[i] = row[i].wrapping_sub(row[i - samples]);
                }
            }
            SampleDepth::Sixteen => {
                let stride = 2 * samples;
                for i in (stride..row.len()).step_by(2).rev() {
                    let here = u16::from_le_bytes([row[i], row[i + 1]]);
                    let left = u16::from_le_bytes([row[i - stride], row[i - stride + 1]]);
                    row[i..i + 2].copy_from_slice(&here.wrapping_sub(left).to_le_bytes());
                }
            }
        }
    }
}

/// A strip as stored: predicted and compressed as `compression` says.
fn encode_strip<'s>(
    strip: &'s [u8],
    layout: &PixelLayout,
    row_bytes: usize,
    compression: TiffCompression,
) -> std::io::Result<Cow<'s, [u8]>> {
    if compression == TiffCompression::None {
        return Ok(Cow::Borrowed(strip));
    }
    let mut strip = strip.to_vec();
    horizontal_difference(&mut strip, row_bytes, layout.samples(), layout.depth);
    let mut out = Vec::with_capacity(strip.len() / 2);
    match compression {
        TiffCompression::Lzw => Lzw.write_to(&mut out, &strip)?,
        _ => Deflate::default().write_to(&mut out, &strip)?,
    };
    Ok(Cow::Owned(out))
}

fn method(compression: TiffCompression) -> CompressionMethod {
    match compression {
        TiffCompression::None => CompressionMethod::None,
        TiffCompression::Lzw => CompressionMethod::LZW,
        TiffCompression::Deflate => CompressionMethod::Deflate,
    }
}

/// What a TIFF export writes.
pub(crate) struct TiffPlan<'a> {
    pub reading: &'a Reading<'a>,
    pub layout: PixelLayout,
    pub compression: TiffCompression,
}

/// The tags describing the image, its strips at `offsets` of `counts` bytes.
fn write_tags<W: Write + Seek, K: TiffKind>(
    dir: &mut DirectoryEncoder<'_, W, K>,
    plan: &TiffPlan<'_>,
    rows_per_strip: u32,
    offsets: &[K::OffsetType],
    counts: &[K::OffsetType],
) -> tiff::TiffResult<()> {
    let samples = plan.layout.samples();
    let catalog = &plan.reading.snap.catalog;
    // The size was checked to fit u32; as was the sample count (at most 4).
    dir.write_tag(Tag::ImageWidth, catalog.width as u32)?;
    dir.write_tag(Tag::ImageLength, catalog.height as u32)?;
    let bits = 8 * plan.layout.depth.bytes() as u16;
    dir.write_tag(Tag::BitsPerSample, &vec![bits; samples][..])?;
    dir.write_tag(Tag::Compression, method(plan.compression).to_u16())?;
    let photometric = if samples >= 3 {
        PhotometricInterpretation::RGB
    } else {
        PhotometricInterpretation::BlackIsZero
    };
    dir.write_tag(Tag::PhotometricInterpretation, photometric.to_u16())?;
    dir.write_tag(Tag::StripOffsets, K::convert_slice(offsets))?;
    dir.write_tag(Tag::SamplesPerPixel, samples as u16)?;
    dir.write_tag(Tag::RowsPerStrip, rows_per_strip)?;
    dir.write_tag(Tag::StripByteCounts, K::convert_slice(counts))?;
    dir.write_tag(
        Tag::PlanarConfiguration,
        PlanarConfiguration::Chunky.to_u16(),
    )?;
    if plan.compression != TiffCompression::None {
        dir.write_tag(Tag::Predictor, Predictor::Horizontal.to_u16())?;
    }
    if is_alpha(samples, samples - 1) {
        dir.write_tag(Tag::ExtraSamples, ExtraSamples::UnassociatedAlpha.to_u16())?;
    }
    dir.write_tag(
        Tag::SampleFormat,
        &vec![SampleFormat::Uint.to_u16(); samples][..],
    )?;
    Ok(())
}

/// Write the strips and the directory with a TIFF or BigTIFF encoder (`K`).
fn write_kind<W: Write + Seek, K: TiffKind>(out: W, target: &Path, plan: &TiffPlan<'_>) -> Result {
    let in_file = in_file(target);
    let tiff = |e| in_file(tiff_error(e));
    let catalog = &plan.reading.snap.catalog;
    let row_bytes = plan.layout.row_bytes(catalog.width);
    let rows_per_strip = (STRIP_BYTES / row_bytes).clamp(1, catalog.height);
    let mut encoder = TiffEncoder::<W, K>::new_generic(out).map_err(tiff)?;
    let mut dir = encoder.image_directory().map_err(tiff)?;
    let mut bands = plan.reading.bands(rows_per_strip);
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    while let Some(band) = bands.next_band()? {
        let pixels = plan.layout.pixels(band.channels, false);
        let strips = pixels
            .par_chunks(rows_per_strip * row_bytes)
            .map(|strip| encode_strip(strip, &plan.layout, row_bytes, plan.compression))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| in_file(ImageFileError::Io(e)))?;
        for strip in strips {
            let offset = dir.write_data(&strip[..]).map_err(tiff)?;
            offsets.push(K::convert_offset(offset).map_err(tiff)?);
            counts.push(K::convert_offset(strip.len() as u64).map_err(tiff)?);
        }
    }
    // At most the height, which fits u32.
    write_tags(&mut dir, plan, rows_per_strip as u32, &offsets, &counts).map_err(tiff)?;
    dir.finish().map_err(tiff)?;
    Ok(())
}

/// Write a TIFF file (a BigTIFF when the pixels could take 4 GiB) to `out`; `target` is
/// the path errors name.
pub(crate) fn write(out: impl Write + Seek, target: &Path, plan: &TiffPlan<'_>) -> Result {
    let catalog = &plan.reading.snap.catalog;
    if u32::try_from(catalog.width).is_err() || u32::try_from(catalog.height).is_err() {
        return Err(in_file(target)(ImageFileError::TooLarge {
            width: catalog.width as u64,
            height: catalog.height as u64,
        }));
    }
    let raw = plan.layout.row_bytes(catalog.width) as u64 * catalog.height as u64;
    // LZW can grow incompressible data by up to half; directories are small.
    if raw + raw / 2 + (1 << 20) < u64::from(u32::MAX) {
        write_kind::<_, TiffKindStandard>(out, target, plan)
    } else {
        write_kind::<_, TiffKindBig>(out, target, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predictor_differences_samples_of_neighbouring_pixels() {
        let mut eight = vec![10u8, 20, 15, 25, 14, 30];
        horizontal_difference(&mut eight, 6, 2, SampleDepth::Eight);
        assert_eq!(eight, [10, 20, 5, 5, 255, 5]);
        let mut sixteen: Vec<u8> = [1000u16, 900, 1200]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        horizontal_difference(&mut sixteen, 6, 1, SampleDepth::Sixteen);
        let values: Vec<u16> = bytemuck::pod_collect_to_vec(&sixteen);
        assert_eq!(values, [1000, 900u16.wrapping_sub(1000), 300]);
    }
}
