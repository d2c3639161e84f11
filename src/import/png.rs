//! PNG files through the `png` crate, row by row (interlaced files at once: their passes
//! cover the whole image).

use std::fs::File;
use std::io::BufReader;
use std::ops::Range;

use png::{BitDepth, ColorType, Decoder, Reader, Transformations, Unit};
use serde_json::{Map, Value, json};

use super::error::{FileResult, ImageFileError};
use super::metadata::{note_blob, note_resolution};
use super::source::{
    Source, SourceChannel, SourceInfo, check_held, deinterleave, only_subimage, whole_blocks,
};
use crate::sample::Dtype;

fn png_error(e: png::DecodingError) -> ImageFileError {
    match e {
        png::DecodingError::IoError(e) => e.into(),
        other => ImageFileError::Decode(other.to_string()),
    }
}

/// A PNG image.
pub(crate) struct PngSource {
    reader: Reader<BufReader<File>>,
    info: SourceInfo,
    /// Samples per pixel and bytes per sample of the decoded rows.
    samples: usize,
    sample_size: usize,
    /// The whole decoded image of an interlaced file, once decoded.
    whole: Option<Vec<u8>>,
}

/// The text chunks, gamma, colour space, ICC profile and resolution of a PNG.
fn png_metadata(info: &png::Info<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    for chunk in &info.uncompressed_latin1_text {
        map.insert(chunk.keyword.clone(), json!(chunk.text));
    }
    for chunk in &info.compressed_latin1_text {
        if let Ok(text) = chunk.get_text() {
            map.insert(chunk.keyword.clone(), json!(text));
        }
    }
    for chunk in &info.utf8_text {
        if let Ok(text) = chunk.get_text() {
            map.insert(chunk.keyword.clone(), json!(text));
        }
    }
    if let Some(gamma) = info.gamma() {
        // Stored as 100000 times the gamma.
        map.insert(
            "png:Gamma".into(),
            json!(f64::from(gamma.into_scaled()) / 1e5),
        );
    }
    if info.srgb.is_some() {
        map.insert("png:sRGB".into(), json!(true));
    }
    note_blob(
        &mut map,
        "ICCProfile",
        info.icc_profile.as_ref().map_or(0, |b| b.len()),
    );
    note_blob(
        &mut map,
        "Exif",
        info.exif_metadata.as_ref().map_or(0, |b| b.len()),
    );
    if let Some(dims) = info.pixel_dims {
        let (x, y) = (f64::from(dims.xppu), f64::from(dims.yppu));
        match dims.unit {
            // Pixels per metre, as OpenImageIO gives them: per centimetre.
            Unit::Meter => note_resolution(&mut map, x / 100.0, y / 100.0, "cm"),
            Unit::Unspecified => note_resolution(&mut map, x, y, "none"),
        }
    }
    map
}

impl PngSource {
    pub(crate) fn open(file: File, subimage: usize) -> FileResult<PngSource> {
        only_subimage(subimage)?;
        let mut decoder = Decoder::new(BufReader::new(file));
        // Palettes and tRNS become RGB(A), gray below 8 bits is scaled to 8 bits; 16-bit
        // samples stay 16-bit.
        decoder.set_transformations(Transformations::EXPAND);
        let header = decoder.read_header_info().map_err(png_error)?;
        let (width, height) = (header.width as usize, header.height as usize);
        let too_large = || ImageFileError::TooLarge {
            width: width as u64,
            height: height as u64,
        };
        let reader = decoder.read_info().map_err(|e| match e {
            // A row longer than the decoder's limit (64 MiB).
            png::DecodingError::LimitsExceeded => too_large(),
            e => png_error(e),
        })?;
        if reader.info().interlaced {
            // Decoded whole (see the module documentation).
            check_held(reader.output_buffer_size(), width, height)?;
        }
        let (color, depth) = reader.output_color_type();
        let names: &[&str] = match color {
            ColorType::Grayscale => &["Y"],
            ColorType::GrayscaleAlpha => &["Y", "A"],
            ColorType::Rgb => &["R", "G", "B"],
            ColorType::Rgba => &["R", "G", "B", "A"],
            ColorType::Indexed => {
                return Err(ImageFileError::Decode("palette was not expanded".into()));
            }
        };
        let dtype = match depth {
            BitDepth::Sixteen => Dtype::U16,
            _ => Dtype::U8,
        };
        let info = reader.info();
        let source_info = SourceInfo {
            format: "png",
            width,
            height,
            channels: names
                .iter()
                .map(|n| SourceChannel {
                    name: n.to_string(),
                    dtype,
                })
                .collect(),
            subimages: 1,
            metadata: png_metadata(info),
        };
        Ok(PngSource {
            reader,
            info: source_info,
            samples: names.len(),
            sample_size: dtype.size(),
            whole: None,
        })
    }

    /// The next row, decoded (of a non-interlaced image).
    fn next_row(&mut self) -> FileResult<&[u8]> {
        match self.reader.next_row().map_err(png_error)? {
            Some(row) => Ok(row.data()),
            None => Err(ImageFileError::Decode("the image data ends early".into())),
        }
    }

    /// The whole image of an interlaced file, decoded on first use.
    fn whole_image(&mut self) -> FileResult<&[u8]> {
        if self.whole.is_none() {
            let len = self
                .reader
                .output_buffer_size()
                .ok_or_else(|| ImageFileError::Decode("the image is too large".into()))?;
            let mut buffer = vec![0; len];
            self.reader.next_frame(&mut buffer).map_err(png_error)?;
            self.whole = Some(buffer);
        }
        Ok(self.whole.as_deref().unwrap_or_default())
    }
}

impl Source for PngSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn band_rows(&self, wanted: usize) -> usize {
        whole_blocks(wanted, 1)
    }

    fn read_band(
        &mut self,
        rows: Range<usize>,
        wanted: &[usize],
        out: &mut [Vec<u8>],
    ) -> FileResult {
        let (samples, size) = (self.samples, self.sample_size);
        let row_len = self.info.width * samples * size;
        let plane_row = self.info.width * size;
        let interlaced = self.reader.info().interlaced;
        for (i, y) in rows.enumerate() {
            let row = if interlaced {
                self.whole_image()?.get(y * row_len..(y + 1) * row_len)
            } else {
                self.next_row()?.get(..row_len)
            };
            let row = row.ok_or_else(|| ImageFileError::Decode("a row is too short".into()))?;
            let mut planes: Vec<&mut [u8]> = out
                .iter_mut()
                .map(|o| &mut o[i * plane_row..][..plane_row])
                .collect();
            deinterleave(row, samples, size, wanted, &mut planes);
        }
        if size == 2 {
            // PNG stores 16-bit samples big-endian.
            for plane in out.iter_mut() {
                plane.chunks_exact_mut(2).for_each(|s| s.swap(0, 1));
            }
        }
        Ok(())
    }
}
