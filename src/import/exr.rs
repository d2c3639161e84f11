//! OpenEXR files through the `exr` crate's block API.
//!
//! Each band re-reads the small header and the offset tables, picks the blocks (scanline
//! blocks or level-0 tiles of the part) whose rows fall in the band, reads them in file
//! order and decompresses them in parallel; nothing outside the band is held.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::ops::Range;

use exr::block::UncompressedBlock;
use exr::block::reader::ChunksReader;
use exr::compression::Compression;
use exr::math::Vec2;
use exr::meta::BlockDescription;
use exr::meta::MetaData;
use exr::meta::attribute::SampleType;
use exr::meta::header::Header;
use rayon::prelude::*;

use super::error::{FileResult, ImageFileError};
use super::exr_attributes::{compression_name, header_metadata};
use super::exr_header::{code_name, compression_codes};
use super::order::exr_order;
use super::source::{Source, SourceChannel, SourceInfo, whole_blocks};
use crate::sample::Dtype;

/// The typed error for an `exr` crate error.
fn exr_error(e: exr::error::Error) -> ImageFileError {
    use exr::error::Error as E;
    match e {
        E::NotSupported(m) if m.contains("deep") => ImageFileError::DeepData,
        E::NotSupported(m) if m.contains("compression") => {
            ImageFileError::UnsupportedCompression(m.into_owned())
        }
        E::NotSupported(m) => ImageFileError::Unsupported(m.into_owned()),
        E::Invalid(m) => ImageFileError::Decode(m.into_owned()),
        E::Io(e) => e.into(),
        E::Aborted => ImageFileError::Decode("aborted".into()),
    }
}

/// One part of an OpenEXR file.
pub(crate) struct ExrSource {
    file: BufReader<File>,
    part: usize,
    info: SourceInfo,
    /// Header channel (OpenEXR's sorted order) of each presented channel.
    header_channel: Vec<usize>,
    /// Bytes per sample of each header channel.
    sample_sizes: Vec<usize>,
    /// Block size in pixels: scanline blocks are the width × the lines per block.
    block: Vec2<usize>,
}

fn dtype_of(sample: SampleType) -> Dtype {
    match sample {
        SampleType::F16 => Dtype::F16,
        SampleType::F32 => Dtype::F32,
        SampleType::U32 => Dtype::U32,
    }
}

/// Refuse what cannot be imported from `header`, before any pixel is read.
fn check_importable(header: &Header) -> FileResult {
    if header.deep {
        return Err(ImageFileError::DeepData);
    }
    if matches!(
        header.compression,
        Compression::HTJ2K256 | Compression::HTJ2K32
    ) {
        return Err(ImageFileError::UnsupportedCompression(
            compression_name(header.compression).into(),
        ));
    }
    if let Some(c) = header
        .channels
        .list
        .iter()
        .find(|c| c.sampling != Vec2(1, 1))
    {
        return Err(ImageFileError::Subsampled {
            channel: String::from_utf8_lossy(c.name.bytes()).into_owned(),
        });
    }
    // The exr crate's attribute listing needs the chunk count as an i32.
    if i32::try_from(header.chunk_count).is_err() {
        return Err(ImageFileError::TooLarge {
            width: header.layer_size.0 as u64,
            height: header.layer_size.1 as u64,
        });
    }
    Ok(())
}

/// The error for headers the `exr` crate refused: an unknown compression method by name,
/// else the crate's error.
fn header_error(e: exr::error::Error, file: &mut BufReader<File>, part: usize) -> ImageFileError {
    let codes = compression_codes(file);
    match codes.get(part).or(codes.first()) {
        Some(&code) if code > MAX_KNOWN_COMPRESSION => {
            ImageFileError::UnsupportedCompression(code_name(code))
        }
        _ => exr_error(e),
    }
}

/// The largest compression code the `exr` crate reads (HTJ2K32, which it cannot decode).
const MAX_KNOWN_COMPRESSION: u8 = 11;

impl ExrSource {
    pub(crate) fn open(file: File, part: usize) -> FileResult<ExrSource> {
        let mut file = BufReader::new(file);
        // The headers unvalidated first, so that the requested part's problems get their
        // own error kinds; then validated, as every band reads them.
        let meta = match MetaData::read_from_buffered(&mut file, false) {
            Ok(meta) => meta,
            Err(e) => return Err(header_error(e, &mut file, part)),
        };
        let count = meta.headers.len();
        let header = meta
            .headers
            .get(part)
            .ok_or(ImageFileError::BadSubimage { index: part, count })?;
        check_importable(header)?;
        file.seek(SeekFrom::Start(0))?;
        exr::block::read(&mut file, false).map_err(exr_error)?;

        let names: Vec<String> = header
            .channels
            .list
            .iter()
            .map(|c| String::from_utf8_lossy(c.name.bytes()).into_owned())
            .collect();
        let header_channel = exr_order(&names);
        let channels = header_channel
            .iter()
            .map(|&c| SourceChannel {
                name: names[c].clone(),
                dtype: dtype_of(header.channels.list[c].sample_type),
            })
            .collect();
        let sample_sizes = header
            .channels
            .list
            .iter()
            .map(|c| dtype_of(c.sample_type).size())
            .collect();
        let block = match header.blocks {
            BlockDescription::ScanLines => Vec2(
                header.layer_size.0,
                header.compression.scan_lines_per_block(),
            ),
            BlockDescription::Tiles(tiles) => tiles.tile_size,
        };
        Ok(ExrSource {
            file,
            part,
            info: SourceInfo {
                format: "openexr",
                width: header.layer_size.0,
                height: header.layer_size.1,
                channels,
                subimages: count,
                metadata: header_metadata(header),
            },
            header_channel,
            sample_sizes,
            block,
        })
    }

    /// The blocks of level 0 of this part that start in `rows`, decompressed.
    fn decompress_band(&mut self, rows: &Range<usize>) -> FileResult<Vec<UncompressedBlock>> {
        self.file.seek(SeekFrom::Start(0))?;
        let part = self.part;
        let reader = exr::block::read(&mut self.file, false).map_err(exr_error)?;
        let chunks = reader
            .filter_chunks(false, |_, tile, block| {
                block.layer == part
                    && tile.level_index == Vec2(0, 0)
                    && rows.contains(&block.pixel_position.1)
            })
            .map_err(exr_error)?;
        let meta = chunks.meta_data().clone();
        // Reading (in file order, one thread at a time) overlaps with decompressing.
        chunks
            .par_bridge()
            .map(|chunk| UncompressedBlock::decompress_chunk(chunk?, &meta, false))
            .collect::<Result<_, _>>()
            .map_err(exr_error)
    }
}

impl Source for ExrSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn band_rows(&self, wanted: usize) -> usize {
        whole_blocks(wanted, self.block.1)
    }

    fn read_band(
        &mut self,
        rows: Range<usize>,
        wanted: &[usize],
        out: &mut [Vec<u8>],
    ) -> FileResult {
        let width = self.info.width;
        // The output buffer of each header channel, if wanted.
        let mut target: Vec<Option<usize>> = vec![None; self.sample_sizes.len()];
        for (k, &p) in wanted.iter().enumerate() {
            target[self.header_channel[p]] = Some(k);
        }
        let mut seen = HashSet::new();
        let mut covered = 0;
        for block in self.decompress_band(&rows)? {
            let Vec2(x, y) = block.index.pixel_position;
            let Vec2(w, h) = block.index.pixel_size;
            let in_place = block.index.layer == self.part
                && block.index.level == Vec2(0, 0)
                && x.is_multiple_of(self.block.0)
                && y.is_multiple_of(self.block.1)
                && rows.start <= y
                && y + h <= rows.end
                && x + w <= width;
            if !in_place || !seen.insert((x, y)) {
                return Err(ImageFileError::Decode(format!(
                    "a block at ({x}, {y}) is misplaced or repeated"
                )));
            }
            let mut samples = block.data.as_slice();
            for line in y - rows.start..y - rows.start + h {
                for (c, size) in self.sample_sizes.iter().enumerate() {
                    let (line_samples, rest) = samples
                        .split_at_checked(w * size)
                        .ok_or_else(|| ImageFileError::Decode("a block is too short".into()))?;
                    if let Some(k) = target[c] {
                        out[k][(line * width + x) * size..][..w * size]
                            .copy_from_slice(line_samples);
                    }
                    samples = rest;
                }
            }
            covered += w * h;
        }
        if covered != rows.len() * width {
            return Err(ImageFileError::Decode(format!(
                "blocks are missing in rows {}..{}",
                rows.start, rows.end
            )));
        }
        Ok(())
    }
}
