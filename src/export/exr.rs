//! OpenEXR files through the `exr` crate's block API: one scanline part, its blocks built
//! from bands of rows, compressed in parallel and written in increasing order, so that
//! only a band is held at a time.

use std::io::{Seek, Write};
use std::path::Path;

use exr::block::chunk::{Chunk, CompressedBlock, CompressedScanLineBlock};
use exr::block::writer::ChunksWriter;
use exr::block::{BlockIndex, UncompressedBlock};
use exr::compression::Compression;
use exr::math::Vec2;
use exr::meta::attribute::{ChannelDescription, LineOrder, SampleType, Text};
use exr::meta::header::Header;
use exr::meta::{BlockDescription, Headers};
use exr::prelude::SmallVec;
use rayon::prelude::*;

use super::bands::Reading;
use super::exr_metadata::{self, file_name};
use super::exr_zip;
use super::options::ExrCompression;
use crate::error::Result;
use crate::import::ImageFileError;
use crate::import::convert::convert;
use crate::import::error::in_file;
use crate::sample::Dtype;

/// The `exr` crate's compression for `compression`.
fn exr_compression(compression: ExrCompression) -> Compression {
    match compression {
        ExrCompression::None => Compression::Uncompressed,
        ExrCompression::Rle => Compression::RLE,
        ExrCompression::Zips => Compression::ZIP1,
        ExrCompression::Zip => Compression::ZIP16,
        ExrCompression::Piz => Compression::PIZ,
        ExrCompression::Pxr24 => Compression::PXR24,
        ExrCompression::B44 => Compression::B44,
        ExrCompression::B44a => Compression::B44A,
        ExrCompression::Dwaa => Compression::DWAA(None),
        ExrCompression::Dwab => Compression::DWAB(None),
    }
}

/// The type a channel of `dtype` is written as: `f16`, `f32` and `u32` as they are; `u8`
/// and `i8` as `f16`, `u16`, `i16`, `i32` and `f64` as `f32`, converted as the importer
/// converts (integers normalised by their type's maximum, `f64` rounded).
pub(crate) fn file_dtype(dtype: Dtype) -> Dtype {
    match dtype {
        Dtype::F16 | Dtype::U8 | Dtype::I8 => Dtype::F16,
        Dtype::U32 => Dtype::U32,
        _ => Dtype::F32,
    }
}

fn sample_type(dtype: Dtype) -> SampleType {
    match dtype {
        Dtype::F16 => SampleType::F16,
        Dtype::U32 => SampleType::U32,
        _ => SampleType::F32,
    }
}

/// The typed error for an `exr` crate error while writing.
fn exr_error(e: exr::error::Error) -> ImageFileError {
    use exr::error::Error as E;
    match e {
        E::NotSupported(m) if m.contains("compression") => {
            ImageFileError::UnsupportedCompression(m.into_owned())
        }
        E::NotSupported(m) => ImageFileError::Unsupported(m.into_owned()),
        E::Invalid(m) => ImageFileError::Encode(m.into_owned()),
        E::Io(e) => ImageFileError::Io(e),
        E::Aborted => ImageFileError::Encode("aborted".into()),
    }
}

/// A written channel: its name, the type in the file and its position in the band.
struct FileChannel {
    name: Text,
    dtype: Dtype,
    band: usize,
}

/// The written channels sorted by name, as OpenEXR stores them.
///
/// # Errors
/// [`ImageFileError::Unsupported`] for a name OpenEXR cannot hold,
/// [`ImageFileError::DuplicateChannel`].
fn file_channels(names: &[String], dtypes: &[Dtype]) -> Result<Vec<FileChannel>, ImageFileError> {
    let mut channels = names
        .iter()
        .zip(dtypes)
        .enumerate()
        .map(|(band, (name, &dtype))| {
            let text = file_name(name).ok_or_else(|| {
                ImageFileError::Unsupported(format!(
                    "channel name {name:?} (OpenEXR names are 1 to 255 bytes of Latin-1 text)"
                ))
            })?;
            Ok(FileChannel {
                name: text,
                dtype: file_dtype(dtype),
                band,
            })
        })
        .collect::<Result<Vec<_>, ImageFileError>>()?;
    channels.sort_by(|a, b| a.name.bytes().cmp(b.name.bytes()));
    if let Some(pair) = channels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(ImageFileError::DuplicateChannel(pair[0].name.to_string()));
    }
    Ok(channels)
}

/// The part's header: the channels, the size, scanline blocks in increasing order, and
/// the attributes restored from OpenEXR metadata.
fn header(
    channels: &[FileChannel],
    width: usize,
    height: usize,
    compression: ExrCompression,
    metadata: &serde_json::Value,
) -> Result<Header, ImageFileError> {
    // OpenEXR's windows end below `i32::MAX / 2`.
    let limit = (i32::MAX / 2) as usize;
    if width >= limit || height >= limit {
        return Err(ImageFileError::TooLarge {
            width: width as u64,
            height: height as u64,
        });
    }
    // `pLinear` off, as OpenEXR and OpenImageIO write channels: B44 then quantizes every
    // channel the same way.
    let list: SmallVec<[ChannelDescription; 5]> = channels
        .iter()
        .map(|c| ChannelDescription::new(c.name.clone(), sample_type(c.dtype), false))
        .collect();
    let mut header = Header::new(Text::from(""), (width, height), list).with_encoding(
        exr_compression(compression),
        BlockDescription::ScanLines,
        LineOrder::Increasing,
    );
    header.own_attributes.layer_name = None;
    if exr_metadata::from_openexr(metadata) {
        exr_metadata::apply(&mut header, metadata);
    }
    Ok(header)
}

/// The block of `lines` rows from `first_line` of the band (`band_start` its first row):
/// for each line, each channel's row, in the header's order.
fn block(
    band: &[&[u8]],
    channels: &[FileChannel],
    width: usize,
    band_start: usize,
    first_line: usize,
    lines: usize,
) -> UncompressedBlock {
    let bytes_per_pixel: usize = channels.iter().map(|c| c.dtype.size()).sum();
    let mut data = Vec::with_capacity(bytes_per_pixel * width * lines);
    for line in first_line - band_start..first_line - band_start + lines {
        for c in channels {
            let row = width * c.dtype.size();
            data.extend_from_slice(&band[c.band][line * row..][..row]);
        }
    }
    UncompressedBlock {
        index: BlockIndex {
            layer: 0,
            pixel_position: Vec2(0, first_line),
            pixel_size: Vec2(width, lines),
            level: Vec2(0, 0),
        },
        data,
    }
}

/// The block compressed as ZIP or ZIPS by [`exr_zip`], in the part whose data window
/// starts at row `origin_y`.
fn zip_chunk(block: UncompressedBlock, origin_y: i32) -> Chunk {
    // The header's check keeps every row below `i32::MAX / 2`.
    let y = block.index.pixel_position.y() as i32;
    Chunk {
        layer_index: 0,
        compressed_block: CompressedBlock::ScanLine(CompressedScanLineBlock {
            y_coordinate: origin_y + y,
            compressed_pixels_le: exr_zip::compress(&block.data),
        }),
    }
}

/// The band's channels in the file's types: converted into `converted` where the type
/// differs, else as they are.
fn in_file_types<'b>(
    band: &'b [Vec<u8>],
    dtypes: &[Dtype],
    converted: &'b mut [Vec<u8>],
) -> Vec<&'b [u8]> {
    for ((src, &from), out) in band.iter().zip(dtypes).zip(converted.iter_mut()) {
        let to = file_dtype(from);
        if from != to {
            out.resize(src.len() / from.size() * to.size(), 0);
            convert(src, from, out, to);
        }
    }
    let converted: &'b [Vec<u8>] = converted;
    band.iter()
        .zip(dtypes)
        .zip(converted.iter())
        .map(|((src, &from), out)| {
            if file_dtype(from) == from {
                src.as_slice()
            } else {
                out.as_slice()
            }
        })
        .collect()
}

/// Write the channels `reading` reads, named `names`, as an OpenEXR file to `out`;
/// `target` is the path errors name.
pub(crate) fn write(
    out: impl Write + Seek,
    target: &Path,
    reading: &Reading<'_>,
    names: &[String],
    compression: ExrCompression,
) -> Result {
    let in_file = in_file(target);
    let snap = reading.snap;
    let (width, height) = (snap.catalog.width, snap.catalog.height);
    let dtypes = reading.dtypes();
    let channels = file_channels(names, &dtypes).map_err(in_file)?;
    let header = header(&channels, width, height, compression, &snap.metadata).map_err(in_file)?;
    let lines_per_block = header.compression.scan_lines_per_block();
    // ZIP and ZIPS through libdeflate; the block bytes are native-endian, which is the
    // file's little-endian only on little-endian machines (elsewhere the `exr` crate
    // converts and compresses).
    let zip_origin = (cfg!(target_endian = "little")
        && matches!(compression, ExrCompression::Zip | ExrCompression::Zips))
    .then(|| header.own_attributes.layer_position.y());
    let mut bands = reading.bands(lines_per_block);
    let headers: Headers = std::iter::once(header).collect();
    // An error reading the image, or a cancellation, which the `exr` crate's callback
    // cannot return.
    let mut failure = None;
    // Not pedantic: the crate's strict check refuses standard attribute names among the
    // custom attributes, which is where the restored ones are held; the rest of what it
    // checks holds by construction (unique sorted names, increasing lines, valid windows).
    let written = exr::block::write(out, headers, false, |meta, writer| {
        let mut converted = vec![Vec::new(); channels.len()];
        loop {
            let band = match bands.next_band() {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(()),
                Err(e) => {
                    failure = Some(e);
                    return Err(exr::error::Error::Aborted);
                }
            };
            let rows = band.rows;
            let band = in_file_types(band.channels, &dtypes, &mut converted);
            let starts: Vec<usize> = rows.clone().step_by(lines_per_block).collect();
            let chunks = starts
                .par_iter()
                .map(|&y| {
                    let lines = lines_per_block.min(rows.end - y);
                    let block = block(&band, &channels, width, rows.start, y, lines);
                    match zip_origin {
                        Some(origin_y) => Ok(zip_chunk(block, origin_y)),
                        None => block.compress_to_chunk(&meta.headers),
                    }
                })
                .collect::<exr::error::Result<Vec<_>>>()?;
            for (y, chunk) in starts.iter().zip(chunks) {
                writer.write_chunk(y / lines_per_block, chunk)?;
            }
        }
    });
    match (failure, written) {
        (Some(e), _) => Err(e),
        (None, written) => written.map_err(|e| in_file(exr_error(e))),
    }
}
