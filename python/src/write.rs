//! Exporting images as image files: `Image.write` (OpenEXR, TIFF, PNG) and `Image.preview`
//! (a PNG thumbnail), through the crate's export with the GIL released. Not in 1.0.1,
//! whose images are written only as compressed-image files.
//!
//! The string options (`format`, `compression`, `transfer`) are checked here, before any
//! file is touched: a name the format does not have is a ValueError, never ignored. Errors
//! of the export itself map as every crate error does (see `errors.rs`).

use std::path::{Path, PathBuf};

use ci::{
    DEFAULT_PREVIEW_SIZE, ExrCompression, ImageFormat, PreviewOptions, SampleDepth,
    TiffCompression, Transfer, WriteOptions,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::image::PyImage;
use crate::read::keyword_selection;

/// The compressions OpenEXR has, by the names OpenEXR gives them.
const EXR_COMPRESSIONS: [(&str, ExrCompression); 10] = [
    ("none", ExrCompression::None),
    ("rle", ExrCompression::Rle),
    ("zips", ExrCompression::Zips),
    ("zip", ExrCompression::Zip),
    ("piz", ExrCompression::Piz),
    ("pxr24", ExrCompression::Pxr24),
    ("b44", ExrCompression::B44),
    ("b44a", ExrCompression::B44a),
    ("dwaa", ExrCompression::Dwaa),
    ("dwab", ExrCompression::Dwab),
];

/// The compressions TIFF strips can have here.
const TIFF_COMPRESSIONS: [(&str, TiffCompression); 3] = [
    ("none", TiffCompression::None),
    ("lzw", TiffCompression::Lzw),
    ("deflate", TiffCompression::Deflate),
];

/// How float colour samples become TIFF and PNG integers.
const TRANSFERS: [(&str, Transfer); 2] = [("srgb", Transfer::Srgb), ("linear", Transfer::Linear)];

/// The formats `format=` names: the extensions, and OpenEXR's own name.
const FORMATS: [(&str, ImageFormat); 5] = [
    ("exr", ImageFormat::OpenExr),
    ("openexr", ImageFormat::OpenExr),
    ("tif", ImageFormat::Tiff),
    ("tiff", ImageFormat::Tiff),
    ("png", ImageFormat::Png),
];

/// The value `name` (in any case) stands for in `table`, else a ValueError that names `what`
/// and lists the names it takes.
fn lookup<T: Copy>(table: &[(&str, T)], name: &str, what: &str) -> PyResult<T> {
    let wanted = name.to_ascii_lowercase();
    table
        .iter()
        .find(|(n, _)| *n == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            PyValueError::new_err(format!(
                "there is no {what} {name:?} (use one of: {})",
                names.join(", ")
            ))
        })
}

/// The format `format` names (see [`FORMATS`]), else the one of `filepath`'s extension;
/// `None` when neither tells, which the crate reports with the file's path.
fn format_of(filepath: &Path, format: Option<&str>) -> PyResult<Option<ImageFormat>> {
    match format {
        Some(name) => lookup(&FORMATS, name, "format").map(Some),
        None => {
            let extension = filepath.extension().unwrap_or_default().to_string_lossy();
            Ok(ImageFormat::from_extension(&extension))
        }
    }
}

/// `depth` (8 or 16) as a sample depth; it applies to TIFF and PNG only.
fn sample_depth(depth: i64, format: Option<ImageFormat>) -> PyResult<SampleDepth> {
    if format == Some(ImageFormat::OpenExr) {
        return Err(PyValueError::new_err(
            "depth applies to TIFF and PNG files; OpenEXR keeps float16, float32 and uint32 channels",
        ));
    }
    match depth {
        8 => Ok(SampleDepth::Eight),
        16 => Ok(SampleDepth::Sixteen),
        _ => Err(PyValueError::new_err(format!(
            "depth must be 8 or 16 (bits per sample), not {depth}"
        ))),
    }
}

/// `compression` set on `options` for `format`: a name the format does not have is a
/// ValueError. Without a known format the name is left unchecked: the crate then refuses
/// the file name itself.
fn set_compression(
    options: WriteOptions,
    name: &str,
    format: Option<ImageFormat>,
) -> PyResult<WriteOptions> {
    Ok(match format {
        Some(ImageFormat::OpenExr) => {
            options.exr_compression(lookup(&EXR_COMPRESSIONS, name, "OpenEXR compression")?)
        }
        Some(ImageFormat::Tiff) => {
            options.tiff_compression(lookup(&TIFF_COMPRESSIONS, name, "TIFF compression")?)
        }
        None => options,
        Some(_) => {
            return Err(PyValueError::new_err(format!(
                "only OpenEXR and TIFF files have a choice of compression (got {name:?}): \
                 pass compression=None for PNG"
            )));
        }
    })
}

/// `max_size` as the crate takes it: a size of at least 1 (the crate refuses 0, and a
/// negative size has no `usize`).
fn preview_size(max_size: i64) -> PyResult<usize> {
    usize::try_from(max_size)
        .ok()
        .filter(|&size| size >= 1)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "max_size must be at least 1 (pixels), not {max_size}"
            ))
        })
}

#[pymethods]
impl PyImage {
    /// Write the image, or the channels `channel_indices` or `channel_names` select (in
    /// that order), as an OpenEXR, TIFF or PNG file at `filepath`, with the GIL released.
    /// Not in 1.0.1.
    ///
    /// The format is `format` (`"exr"` or `"openexr"`, `"tif"` or `"tiff"`, `"png"`), else
    /// the one of the extension (`.exr`, `.tif`, `.tiff`, `.png`); names in any case. The file is written under a temporary
    /// name beside `filepath` and renamed into place only when complete: a failed write
    /// leaves no file behind and whatever was at `filepath` untouched.
    ///
    /// - OpenEXR: one scanline part, any number of channels, names kept (`diffuse.R` is
    ///   channel `R` of layer `diffuse`); float16, float32 and uint32 channels keep their
    ///   type, uint8 and int8 become float16, the others float32 (integers normalised by
    ///   their type's maximum). `compression` is one of OpenEXR's: `"none"`, `"rle"`,
    ///   `"zips"`, `"zip"` (the default), `"piz"` (all lossless), `"pxr24"` (float32 rounded
    ///   to 24 bits), `"b44"`, `"b44a"` (float16 lossy), `"dwaa"`, `"dwab"` (colour channels
    ///   lossy). An image read from an OpenEXR file gets its header attributes back.
    /// - TIFF and PNG: one to four channels, as gray, gray + alpha, RGB or RGBA, of `depth`
    ///   bits per sample (8 or 16; by default 8 when every channel is uint8, else 16).
    ///   Integers are scaled through their normalised value (uint8 to 8 bits and uint16 to
    ///   16 bits are exact); floats are clamped to [0, 1], their colour samples (not alpha)
    ///   encoded with the sRGB transfer function unless `transfer="linear"`, then scaled and
    ///   rounded. TIFF `compression` is `"none"`, `"lzw"` or `"deflate"` (the default; both
    ///   with the horizontal predictor); PNG has no choice of compression.
    ///
    /// A `compression` or `depth` the format does not have, an unknown `format` or
    /// `transfer`, an unknown extension, no channel to write, more than four channels for
    /// TIFF or PNG, two channels of one name for OpenEXR: ValueError. An unknown channel
    /// name: ValueError (as `image["name"]`); an index out of range: IndexError. A
    /// directory that cannot take the file: OSError (its errno's subclass).
    #[pyo3(
        signature = (filepath, *, channel_indices = None, channel_names = None, compression = None, depth = None, transfer = "srgb", format = None),
        text_signature = "($self, filepath, *, channel_indices=None, channel_names=None, compression=None, depth=None, transfer='srgb', format=None)"
    )]
    fn write(
        &self,
        py: Python<'_>,
        filepath: PathBuf,
        channel_indices: Option<&Bound<'_, PyAny>>,
        channel_names: Option<&Bound<'_, PyAny>>,
        compression: Option<&str>,
        depth: Option<i64>,
        transfer: &str,
        format: Option<&str>,
    ) -> PyResult<()> {
        let image = self.image()?;
        let known = format_of(&filepath, format)?;
        let mut options = WriteOptions::default();
        options.format = known;
        options.channels = keyword_selection(channel_indices, channel_names)?;
        options = options.transfer(lookup(&TRANSFERS, transfer, "transfer")?);
        if let Some(depth) = depth {
            options = options.depth(sample_depth(depth, known)?);
        }
        if let Some(name) = compression {
            options = set_compression(options, name, known)?;
        }
        py.detach(|| image.write(&filepath, &options))
            .map_err(to_py)
    }

    /// Write a preview of the image as an 8-bit PNG file at `filepath` (whatever its
    /// extension), with the GIL released: scaled down so that its longest side is
    /// `max_size` pixels (the other side in proportion; a smaller image keeps its size), each
    /// pixel the area-weighted mean of those it covers. Not in 1.0.1.
    ///
    /// It shows the channels `channel_indices` or `channel_names` select, one to four (gray,
    /// gray + alpha, RGB, RGBA), or by default, as OpenImageIO's viewers pick them, `R G B`
    /// (and `A`) when the image has channels of those names, else `Y` (and `A`), else the
    /// first channel. Samples are converted as `write` converts them to 8 bits (float colour
    /// sRGB-encoded). The file appears only when complete.
    ///
    /// Errors as `write`'s; a `max_size` below 1 is a ValueError.
    #[pyo3(
        signature = (filepath, max_size = DEFAULT_PREVIEW_SIZE as i64, *, channel_indices = None, channel_names = None),
        text_signature = "($self, filepath, max_size=512, *, channel_indices=None, channel_names=None)"
    )]
    fn preview(
        &self,
        py: Python<'_>,
        filepath: PathBuf,
        max_size: i64,
        channel_indices: Option<&Bound<'_, PyAny>>,
        channel_names: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let image = self.image()?;
        let mut options = PreviewOptions::default().max_size(preview_size(max_size)?);
        options.channels = keyword_selection(channel_indices, channel_names)?;
        py.detach(|| image.preview(&filepath, &options))
            .map_err(to_py)
    }
}
