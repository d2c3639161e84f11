//! JPEG files through the `zune-jpeg` crate, which decodes a whole frame at once (a JPEG
//! is at most 65535 × 65535 pixels).

use std::fs::File;
use std::io::Read;
use std::ops::Range;

use serde_json::{Map, Value, json};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::error::{FileResult, ImageFileError};
use super::metadata::{note_blob, note_resolution};
use super::source::{
    Source, SourceChannel, SourceInfo, check_held, deinterleave, only_subimage, whole_blocks,
};
use crate::sample::Dtype;

/// The largest width and height a JPEG frame can declare.
const MAX_SIDE: usize = u16::MAX as usize;

fn jpeg_error(e: zune_jpeg::errors::DecodeErrors) -> ImageFileError {
    ImageFileError::Decode(e.to_string())
}

/// A JPEG image.
pub(crate) struct JpegSource {
    bytes: Vec<u8>,
    options: DecoderOptions,
    info: SourceInfo,
    /// The decoded image, interleaved, once decoded.
    pixels: Option<Vec<u8>>,
}

impl JpegSource {
    pub(crate) fn open(mut file: File, subimage: usize) -> FileResult<JpegSource> {
        only_subimage(subimage)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut options = DecoderOptions::default()
            .set_max_width(MAX_SIDE)
            .set_max_height(MAX_SIDE)
            .set_strict_mode(true);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(&bytes), options);
        decoder.decode_headers().map_err(jpeg_error)?;
        let (Some(info), Some(input)) = (decoder.info(), decoder.input_colorspace()) else {
            return Err(ImageFileError::Decode("no frame header".into()));
        };
        // Gray stays gray; YCbCr, CMYK and YCCK become RGB (as OpenImageIO reads them).
        let (output, names): (ColorSpace, &[&str]) = match input {
            ColorSpace::Luma => (ColorSpace::Luma, &["Y"]),
            _ => (ColorSpace::RGB, &["R", "G", "B"]),
        };
        options = options.jpeg_set_out_colorspace(output);
        let (width, height) = (usize::from(info.width), usize::from(info.height));
        check_held(width.checked_mul(height * names.len()), width, height)?;
        let mut metadata = Map::new();
        metadata.insert("jpeg:ColorSpace".into(), json!(format!("{input:?}")));
        note_blob(
            &mut metadata,
            "ICCProfile",
            decoder.icc_profile().map_or(0, |b| b.len()),
        );
        note_blob(&mut metadata, "Exif", decoder.exif().map_or(0, Vec::len));
        note_density(&mut metadata, &info);
        Ok(JpegSource {
            bytes,
            options,
            info: SourceInfo {
                format: "jpeg",
                width,
                height,
                channels: names
                    .iter()
                    .map(|n| SourceChannel {
                        name: n.to_string(),
                        dtype: Dtype::U8,
                    })
                    .collect(),
                subimages: 1,
                metadata,
            },
            pixels: None,
        })
    }

    /// The decoded image, decoded on first use.
    fn pixels(&mut self) -> FileResult<&[u8]> {
        if self.pixels.is_none() {
            let mut decoder =
                JpegDecoder::new_with_options(ZCursor::new(&self.bytes), self.options);
            let pixels = decoder.decode().map_err(jpeg_error)?;
            let expected = self.info.width * self.info.height * self.info.channels.len();
            if pixels.len() != expected {
                return Err(ImageFileError::Decode(format!(
                    "decoded {} bytes, expected {expected}",
                    pixels.len()
                )));
            }
            self.pixels = Some(pixels);
            self.bytes = Vec::new(); // no longer needed
        }
        Ok(self.pixels.as_deref().unwrap_or_default())
    }
}

/// The JFIF density as a resolution (units 1: per inch, 2: per centimetre, 0: aspect only).
fn note_density(map: &mut Map<String, Value>, info: &zune_jpeg::ImageInfo) {
    let unit = match info.pixel_density {
        1 => "in",
        2 => "cm",
        _ => "none",
    };
    if info.x_density > 0 && info.y_density > 0 {
        note_resolution(
            map,
            f64::from(info.x_density),
            f64::from(info.y_density),
            unit,
        );
    }
}

impl Source for JpegSource {
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
        let samples = self.info.channels.len();
        let row_len = self.info.width * samples;
        let band = &self.pixels()?[rows.start * row_len..rows.end * row_len];
        let mut planes: Vec<&mut [u8]> = out.iter_mut().map(|o| o.as_mut_slice()).collect();
        deinterleave(band, samples, 1, wanted, &mut planes);
        Ok(())
    }
}
