//! Exporting an image, or some of its channels, as an OpenEXR, TIFF or PNG file, and
//! previews as PNG thumbnails; streamed band by band from the chunks, so an export never
//! holds the whole image (see [`AnyImage::write`]).

mod bands;
mod exr;
mod exr_metadata;
mod exr_zip;
mod options;
mod png;
mod preview;
mod select;
mod tiff;
mod transfer;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

pub use options::{
    DEFAULT_PREVIEW_SIZE, ExrCompression, ImageFormat, PreviewOptions, SampleDepth,
    TiffCompression, Transfer, WriteOptions,
};

use crate::any_image::AnyImage;
use crate::error::{Argument, Error, Result};
use crate::import::error::in_file;
use crate::import::{ChannelSelection, ImageFileError};
use crate::io::file_error;
use crate::progress::{NoProgress, Progress};
use crate::store::{Snapshot, sync_parent_dir, temp_beside};
use bands::Reading;
use transfer::{PixelLayout, automatic_depth};

/// Write a new file at `target` through `write`: under a temporary name beside it, made
/// durable and renamed into place only when `write` succeeded; on an error (a
/// cancellation too) the temporary is removed and whatever was at `target` stays.
///
/// `start` begins the [`Reading`] `write` is given once the temporary file exists, so an
/// export that cannot even make it reports nothing; the reading's observer hears `finish`
/// after the rename or the removal.
fn write_atomically<'a>(
    target: &Path,
    start: impl FnOnce() -> Reading<'a>,
    write: impl FnOnce(&mut BufWriter<File>, &Reading<'a>) -> Result,
) -> Result {
    // Declared before the temporary file, so dropped after it.
    let reading;
    let (file, temp) = temp_beside(target, "export")?;
    reading = start();
    let mut out = BufWriter::new(file);
    write(&mut out, &reading)?;
    let io = |e| in_file(target)(ImageFileError::Io(e));
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    temp.persist(target)
        .map_err(|e| file_error(target, e.error))?;
    sync_parent_dir(target)
}

/// The format `options` ask for, else the one `path`'s extension names.
fn format_of(path: &Path, options: &WriteOptions) -> Result<ImageFormat, ImageFileError> {
    if let Some(format) = options.format {
        return Ok(format);
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    ImageFormat::from_extension(&extension).ok_or(ImageFileError::UnknownExtension(extension))
}

/// `Ok` when `count` channels make a pixel of a PNG or TIFF file (or a preview).
fn check_pixel_channels(count: usize, format: &str) -> Result<(), ImageFileError> {
    match count {
        0 => Err(ImageFileError::NoChannels),
        1..=4 => Ok(()),
        _ => Err(ImageFileError::Unsupported(format!(
            "{count} channels in a {format} (1 to 4: gray, gray + alpha, RGB, RGBA)"
        ))),
    }
}

/// The positions of the channels to write, checked to be at least one.
fn chosen(snap: &Snapshot, selection: &ChannelSelection, target: &Path) -> Result<Vec<usize>> {
    let positions = select::positions(&snap.catalog, selection)?;
    if positions.is_empty() {
        return Err(in_file(target)(ImageFileError::NoChannels));
    }
    Ok(positions)
}

impl AnyImage {
    /// Export the image, or the channels [`WriteOptions::channels`] selects, as an
    /// OpenEXR, TIFF or PNG file at `path` — the format [`WriteOptions::format`] names,
    /// else the one of the extension (`.exr`, `.tif`, `.tiff`, `.png`, in any case). The
    /// whole image is read from one commit.
    ///
    /// # Formats
    /// - **OpenEXR** (`exr` crate): one scanline part, any number of channels, with the
    ///   compression of [`WriteOptions::exr_compression`] (ZIP by default; see
    ///   [`ExrCompression`] for which are lossy). `f16`, `f32` and `u32` channels keep
    ///   their type; `u8` and `i8` are written as `f16`, `u16`, `i16`, `i32` and `f64` as
    ///   `f32`, converted as [`AnyImage::read`] converts (integers normalised by their
    ///   type's maximum). Channels keep their names (`diffuse.R` is channel `R` of layer
    ///   `diffuse`), stored sorted by name as OpenEXR requires; two channels of one name
    ///   are an error. An image without names gets `Y`; `Y A`; `R G B`; `R G B A`,
    ///   `channel4`…, and an empty name becomes `channel<position>`.
    /// - **TIFF** (`tiff` crate, compressed here): gray, gray + alpha, RGB or RGBA
    ///   (one to four channels, in the order selected; alpha is marked unassociated),
    ///   8 or 16 bits per sample, in strips of about 256 KiB, compressed with
    ///   [`WriteOptions::tiff_compression`] (Deflate with the horizontal predictor by
    ///   default); a BigTIFF when the pixels could take 4 GiB.
    /// - **PNG** (`png` crate): the same layouts and depths, rows streamed into the
    ///   encoder.
    ///
    /// # PNG and TIFF samples
    /// The depth is [`WriteOptions::depth`], else 8 bits when every written channel is
    /// `u8` and 16 bits otherwise. Each element is put on the common scale of the
    /// import's conversions (integers normalised by their type's maximum, floats as they
    /// are), NaN becomes 0, the value is clamped to [0, 1]; floating-point colour samples
    /// (all but the alpha of gray + alpha and RGBA) are then encoded with the sRGB
    /// transfer function (`12.92 v` up to 0.0031308, else `1.055 v^(1/2.4) − 0.055`)
    /// under [`Transfer::Srgb`], the default, and left linear under [`Transfer::Linear`];
    /// integer samples are taken as already encoded. The value is finally scaled by 255
    /// or 65535 and rounded to nearest, halves away from zero: `u8` → 8 bits and `u16` →
    /// 16 bits are exact, `u16` → 8 bits is `round(v / 257)`, `u32` → 16 bits is
    /// `round(v × 65535 / (2³² − 1))`, a float 0.5 is 188 in 8 bits (128 linear).
    ///
    /// # Metadata
    /// For an image imported from an OpenEXR file (`source:format` is `"openexr"`), the
    /// OpenEXR entries of the metadata go back into the header: the data window's origin,
    /// the display window, the pixel aspect ratio, the screen window, and every other
    /// attribute by its JSON shape (strings, numbers, vectors, boxes, matrices,
    /// chromaticities; the compression, channel list and line order are the writer's).
    /// PNG and TIFF files, and OpenEXR files of other images, get no metadata.
    ///
    /// # Memory
    /// Rows are read a band at a time — about one chunk of each written channel, rounded
    /// to whole OpenEXR blocks or TIFF strips — converted, compressed (OpenEXR blocks and
    /// TIFF strips in parallel) and written before the next band is read. The `exr`
    /// crate keeps the chunk offset table (8 bytes per block) until the end, the TIFF
    /// writer the strip offsets.
    ///
    /// The file is written under a temporary name beside `path`, made durable and
    /// renamed into place only when complete: a failed export leaves no file (nor
    /// temporary) behind and whatever was at `path` untouched.
    ///
    /// # Errors
    /// [`Error::ImageFile`] naming `path` with [`ImageFileError::UnknownExtension`],
    /// [`ImageFileError::NoChannels`], [`ImageFileError::Unsupported`] (more than four
    /// channels for PNG or TIFF, a channel name OpenEXR cannot hold),
    /// [`ImageFileError::DuplicateChannel`], [`ImageFileError::TooLarge`] (beyond the
    /// format's size limits), [`ImageFileError::Encode`] or [`ImageFileError::Io`];
    /// [`Error::UnknownChannelName`] and [`Error::IndexOutOfRange`] for the selection;
    /// [`Error::File`] when the temporary file cannot be made beside `path` (say, the
    /// directory is missing or not writable) or cannot be renamed; errors reading the
    /// image's chunks.
    pub fn write(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result {
        self.write_with_progress(path, options, &NoProgress)
    }

    /// [`write`](Self::write), reporting to `progress` (as `"export"`) the bytes of the
    /// image's pixels written: every element of the written channels in the image's own
    /// element types, whatever the file's samples (an RGB `f32` image of `w × h` is
    /// `12 w h` bytes, also as an 8-bit PNG). The bytes of a band are reported once the
    /// band has gone to the file; `start` comes once the temporary file exists, `finish`
    /// after the rename (or the removal of the temporary).
    ///
    /// Cancelled, the export stops at the next band, removes its temporary file and leaves
    /// whatever was at `path` untouched.
    ///
    /// # Errors
    /// As [`write`](Self::write); [`Error::Cancelled`] when `progress` cancels.
    pub fn write_with_progress(
        &self,
        path: impl AsRef<Path>,
        options: &WriteOptions,
        progress: &dyn Progress,
    ) -> Result {
        let path = path.as_ref();
        let target = in_file(path);
        let format = format_of(path, options).map_err(target)?;
        let snap = self.store.snapshot();
        let positions = chosen(&snap, &options.channels, path)?;
        let threads = self.threads();
        let start = || Reading::start(&snap, &positions, threads, progress, "export");
        if format == ImageFormat::OpenExr {
            let names = select::file_names(&snap.catalog);
            let names: Vec<String> = positions.iter().map(|&p| names[p].clone()).collect();
            let compression = options.exr_compression;
            return write_atomically(path, start, |out, reading| {
                exr::write(out, path, reading, &names, compression)
            });
        }
        let format_name = if format == ImageFormat::Png {
            "PNG"
        } else {
            "TIFF"
        };
        check_pixel_channels(positions.len(), format_name).map_err(target)?;
        let dtypes = bands::dtypes(&snap, &positions);
        let depth = options.depth.unwrap_or_else(|| automatic_depth(&dtypes));
        let layout = PixelLayout::new(&dtypes, depth, options.transfer);
        write_atomically(path, start, |out, reading| match format {
            ImageFormat::Png => png::write(out, path, reading, &layout),
            _ => {
                let plan = tiff::TiffPlan {
                    reading,
                    layout,
                    compression: options.tiff_compression,
                };
                tiff::write(out, path, &plan)
            }
        })
    }

    /// Write a preview of the image as an 8-bit PNG file at `path` (whatever its
    /// extension): scaled down so that its longest side is [`PreviewOptions::max_size`]
    /// (the other side in proportion, rounded; a smaller image keeps its size).
    ///
    /// It shows the channels [`PreviewOptions::channels`] selects, one to four (gray,
    /// gray + alpha, RGB, RGBA), or by default, as OpenImageIO's viewers pick them, `R G
    /// B` (and `A`) when the image has channels of those names, else `Y` (and `A`), else
    /// the first channel. Each preview pixel is the area-weighted mean (a box filter) of
    /// the image pixels it covers, taken on the common scale (floats as they are, NaN
    /// counted as 0, integers normalised by their type's maximum), then made an 8-bit
    /// sample by the rules of [`write`](Self::write): clamped to [0, 1], floating-point
    /// colour (not alpha) sRGB-encoded, scaled by 255 and rounded.
    ///
    /// The image is read a band of chunks at a time and each preview row goes to the PNG
    /// encoder as soon as it is complete: memory is about a band of the shown channels
    /// plus two preview rows. The file appears only when complete, as with
    /// [`write`](Self::write).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `max_size` of 0; otherwise as
    /// [`write`](Self::write).
    pub fn preview(&self, path: impl AsRef<Path>, options: &PreviewOptions) -> Result {
        self.preview_with_progress(path, options, &NoProgress)
    }

    /// [`preview`](Self::preview), reporting to `progress` (as `"preview"`) the bytes of
    /// the image's pixels read: every element of the shown channels, in the image's element
    /// types, a band at a time once it has been scaled down and its preview rows written.
    /// `start` and `finish` come as for [`write_with_progress`](Self::write_with_progress).
    ///
    /// Cancelled, the preview stops at the next band, removes its temporary file and leaves
    /// whatever was at `path` untouched.
    ///
    /// # Errors
    /// As [`preview`](Self::preview); [`Error::Cancelled`] when `progress` cancels.
    pub fn preview_with_progress(
        &self,
        path: impl AsRef<Path>,
        options: &PreviewOptions,
        progress: &dyn Progress,
    ) -> Result {
        let path = path.as_ref();
        if options.max_size == 0 {
            return Err(Error::invalid(Argument::PreviewSize, 0, "at least 1"));
        }
        let snap = self.store.snapshot();
        let positions = if options.channels == ChannelSelection::All {
            if snap.catalog.channels.is_empty() {
                return Err(in_file(path)(ImageFileError::NoChannels));
            }
            select::preview_positions(&select::file_names(&snap.catalog))
        } else {
            chosen(&snap, &options.channels, path)?
        };
        check_pixel_channels(positions.len(), "preview").map_err(in_file(path))?;
        let (width, height) = (snap.catalog.width, snap.catalog.height);
        let size = preview::preview_size(width, height, options.max_size);
        let threads = self.threads();
        write_atomically(
            path,
            || Reading::start(&snap, &positions, threads, progress, "preview"),
            |out, reading| preview::write(out, path, reading, size),
        )
    }
}
