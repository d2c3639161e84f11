//! PNG files through the `png` crate's stream writer: rows are handed over as they are
//! made, so only a band of rows is held at a time.

use std::io::Write;
use std::path::Path;

use png::{BitDepth, ColorType};

use super::bands::Reading;
use super::options::SampleDepth;
use super::transfer::PixelLayout;
use crate::error::Result;
use crate::import::ImageFileError;
use crate::import::error::in_file;

/// The typed error for a `png` crate error while writing.
pub(crate) fn png_error(e: png::EncodingError) -> ImageFileError {
    match e {
        png::EncodingError::IoError(e) => io_error(e),
        png::EncodingError::LimitsExceeded => {
            ImageFileError::Encode("the image exceeds PNG's limits".into())
        }
        other => ImageFileError::Encode(other.to_string()),
    }
}

/// The typed error for an I/O error of the stream writer, which passes its own encoding
/// errors as I/O errors.
pub(crate) fn io_error(e: std::io::Error) -> ImageFileError {
    match e.downcast::<png::EncodingError>() {
        Ok(encoding) => png_error(encoding),
        Err(e) => ImageFileError::Io(e),
    }
}

/// Write a PNG file of `width × height` pixels of `samples` samples (gray, gray + alpha,
/// RGB, RGBA) of `depth` to `out`: the header, then the rows `rows` writes into the stream
/// it is given (whole rows in order, 16-bit samples big-endian), then the end; `target`
/// is the path errors name. I/O errors `rows` meets are its to attach the path to.
pub(crate) fn encode<W: Write>(
    out: W,
    target: &Path,
    (width, height): (usize, usize),
    samples: usize,
    depth: SampleDepth,
    rows: impl FnOnce(&mut dyn Write) -> Result,
) -> Result {
    let in_file = in_file(target);
    let png = |e| in_file(png_error(e));
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(in_file(ImageFileError::TooLarge {
            width: width as u64,
            height: height as u64,
        }));
    };
    let mut encoder = png::Encoder::new(out, w, h);
    encoder.set_color(match samples {
        1 => ColorType::Grayscale,
        2 => ColorType::GrayscaleAlpha,
        3 => ColorType::Rgb,
        _ => ColorType::Rgba,
    });
    encoder.set_depth(match depth {
        SampleDepth::Eight => BitDepth::Eight,
        SampleDepth::Sixteen => BitDepth::Sixteen,
    });
    let mut writer = encoder.write_header().map_err(png)?;
    let mut stream = writer.stream_writer().map_err(png)?;
    rows(&mut stream)?;
    stream.finish().map_err(png)?;
    writer.finish().map_err(png)
}

/// Write the channels `reading` reads as a PNG file of `layout`'s samples to `out`;
/// `target` is the path errors name.
pub(crate) fn write(
    out: impl Write,
    target: &Path,
    reading: &Reading<'_>,
    layout: &PixelLayout,
) -> Result {
    let size = (reading.snap.catalog.width, reading.snap.catalog.height);
    encode(
        out,
        target,
        size,
        layout.samples(),
        layout.depth,
        |stream| {
            let mut bands = reading.bands(1);
            while let Some(band) = bands.next_band()? {
                stream
                    .write_all(&layout.pixels(band.channels, true))
                    .map_err(|e| in_file(target)(io_error(e)))?;
            }
            Ok(())
        },
    )
}
