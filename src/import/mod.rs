//! Importing image files — OpenEXR, TIFF, PNG and JPEG — into an [`AnyImage`] or an
//! [`Image<T>`], streamed: decoded blocks go straight into chunks, which are compressed and
//! appended as they complete, so an import never holds the whole image (see
//! [`AnyImage::read`]).

mod assemble;
pub(crate) mod convert;
pub(crate) mod error;
mod exr;
mod exr_attributes;
mod exr_header;
mod file_info;
mod jpeg;
mod metadata;
pub(crate) mod options;
mod order;
mod pipeline;
mod png;
mod source;
mod tiff;
mod tiff_chunks;
mod tiff_tags;

use std::path::Path;

pub use error::ImageFileError;
pub use file_info::ImageFileInfo;
pub use options::{ChannelSelection, Destination, ImportedChunk, ReadOptions};

use crate::any_image::AnyImage;
use crate::error::{Argument, Error, Result};
use crate::geometry::MAX_CHUNK_BYTES;
use crate::image::Image;
use crate::progress::{NoProgress, Progress, Tracker};
use crate::sample::{Dtype, Sample};
use pipeline::{Hooks, Plan, PostProcess};
use source::{Source, SourceInfo};

/// `Err(TooLarge)` when a scanline of a channel of `dtype` would not fit one chunk or the
/// channel's size overflows.
fn check_importable(info: &SourceInfo, dtype: Dtype) -> error::FileResult {
    let fits = info
        .width
        .checked_mul(dtype.size())
        .filter(|&row| row <= MAX_CHUNK_BYTES)
        .and_then(|row| row.checked_mul(info.height))
        .is_some();
    if fits {
        Ok(())
    } else {
        Err(ImageFileError::TooLarge {
            width: info.width as u64,
            height: info.height as u64,
        })
    }
}

/// Import `path` as `options` say, calling `post` on every chunk before it is stored and
/// reporting the stored chunks to `progress`.
fn import(
    path: &Path,
    options: &ReadOptions,
    post: &mut PostProcess<'_>,
    progress: &dyn Progress,
) -> Result<AnyImage> {
    import_from(
        &mut *source::open(path, options.subimage)?,
        path,
        options,
        post,
        progress,
    )
}

/// Import from `source`, the reader of `path`'s subimage, as `options` say.
fn import_from(
    source: &mut dyn Source,
    path: &Path,
    options: &ReadOptions,
    post: &mut PostProcess<'_>,
    progress: &dyn Progress,
) -> Result<AnyImage> {
    let in_file = error::in_file(path);
    let info = source.info().clone();
    let names: Vec<String> = info.channels.iter().map(|c| c.name.clone()).collect();
    let plan = Plan::new(order::select(&names, &options.channels).map_err(in_file)?);
    let channels: Vec<(Dtype, &str)> = plan
        .picks
        .iter()
        .map(|&p| {
            let channel = &info.channels[p];
            (
                options.dtype.unwrap_or(channel.dtype),
                channel.name.as_str(),
            )
        })
        .collect();
    for &(dtype, _) in &channels {
        check_importable(&info, dtype).map_err(in_file)?;
    }
    let destination = match &options.destination {
        Destination::Anonymous => None,
        Destination::File(p) => Some(p.as_path()),
    };
    // Declared before the image and its temporary file, so dropped after them: the
    // observer hears `finish` once a failed import's temporary file is gone.
    let tracker;
    let (image, temp) = AnyImage::create_staged(
        destination,
        info.width,
        info.height,
        &channels,
        &options.settings,
    )?;
    let pixels = info.width as u64 * info.height as u64;
    let element_bytes: u64 = channels.iter().map(|(d, _)| d.size() as u64).sum();
    tracker = Tracker::start(progress, "import", pixels * element_bytes);
    {
        let snapshot = image.store.snapshot();
        let descs = &snapshot.catalog.channels;
        let mut txn = image.store.begin()?;
        txn.set_metadata(metadata::image_metadata(path, options.subimage, &info));
        let hooks = Hooks {
            post,
            tracker: &tracker,
        };
        pipeline::stream(source, path, &plan, descs, &mut txn, hooks, image.threads())?;
        txn.commit()?;
    }
    image.store.finish_create(temp)?;
    Ok(image)
}

/// A post-process callback that changes nothing.
fn keep(_: ImportedChunk<'_>) -> Result {
    Ok(())
}

#[cfg(test)]
mod tests;

impl AnyImage {
    /// Import an image file — OpenEXR, TIFF, PNG or JPEG, recognised by its first bytes —
    /// as a new image, streamed. The subimage, the channels, the element type, the
    /// compression settings and where the image lives come from `options`.
    ///
    /// # Formats
    /// - **OpenEXR** (`exr` crate): scanline and tiled parts, every compression but HTJ2K
    ///   (none, RLE, ZIPS, ZIP, PIZ, PXR24, B44, B44A, DWAA, DWAB); `f16`, `f32` and `u32`
    ///   channels keep their type. Parts are subimages; mip- and rip-mapped parts give
    ///   level 0. The image is the data window. Deep data and subsampled channels are
    ///   refused.
    /// - **TIFF** (`tiff` crate): 8-, 16- and 32-bit unsigned and signed integer and 16-,
    ///   32- and 64-bit float samples, gray of 1, 2 or 4 bits (scaled to the full `u8`
    ///   range), gray and RGB with any extra samples, white-is-zero gray (inverted;
    ///   OpenImageIO inverts it only up to 8 bits), strips and tiles, chunky and planar, uncompressed, LZW, Deflate,
    ///   PackBits, ZSTD and JPEG (YCbCr turned into RGB), with horizontal or
    ///   floating-point predictor, classic and BigTIFF; strips and tiles are decoded in
    ///   parallel. Pages are subimages. Palette and CMYK images, and YCbCr other than in
    ///   JPEG, are refused.
    /// - **PNG** (`png` crate): every colour type and bit depth; palettes and `tRNS`
    ///   transparency become RGB(A), gray below 8 bits is scaled to the full `u8` range,
    ///   16-bit samples are `u16`.
    /// - **JPEG** (`zune-jpeg` crate): 8-bit gray, RGB (from YCbCr) and CMYK (converted
    ///   to RGB as OpenImageIO does: `R = C × K / 255` on the stored, inverted values).
    ///
    /// # Channels
    /// Named and ordered as OpenImageIO presents the file: OpenEXR channels keep their
    /// names, grouped by layer (the name up to the last `.`), layers sorted by name with
    /// the unnamed layer first, and inside a layer `R`, `G`, `B`, then `Y`, `A`, `Z`
    /// (among other well-known names), then the rest by name — e.g. `R G B A Z
    /// disparityL.x left.R left.G left.B left.A`. TIFF, PNG and JPEG channels are named
    /// `Y` (one channel), `Y A` (gray and alpha), `R G B`, `R G B A`; further TIFF
    /// samples are `channel3`, `channel4`…, and a TIFF extra sample marked as alpha is
    /// `A`. A subset selected by name or by index comes back in this order, not in the
    /// order of the request. Pixel values are imported as stored: unlike OpenImageIO,
    /// which multiplies colour by unassociated alpha by default, nothing is premultiplied.
    ///
    /// # Element types
    /// With [`ReadOptions::dtype`] every channel is converted as OpenImageIO converts:
    /// integers to floats normalised (`u8` 255 → 1.0), floats to integers clamped to
    /// [0, 1] ([−1, 1] for signed types), scaled by the type's maximum and rounded to
    /// nearest (0.5 → `u8` 128), NaN to 0; integers to integers through the normalised
    /// value; floats to floats rounded to nearest.
    ///
    /// # Metadata
    /// A JSON object: `source:format` (`"openexr"`, `"tiff"`, `"png"`, `"jpeg"`),
    /// `source:path`, `source:subimage` and `oiio:subimages`, plus per format:
    /// - OpenEXR: every header attribute of the part under its OpenEXR name
    ///   (`dataWindow`, `displayWindow` as `[x_min, y_min, x_max, y_max]`,
    ///   `pixelAspectRatio`, `screenWindowCenter`, `chromaticities`, `owner`, custom
    ///   attributes, …; `channels` is left out), with `compression` in OpenImageIO's
    ///   spelling (`"zip"`, `"zips"`, `"piz"`, `"dwaa"`, …);
    /// - TIFF: `compression`, `planarconfig`, `tiff:Compression`,
    ///   `tiff:PhotometricInterpretation`, `tiff:PlanarConfiguration`, `XResolution`,
    ///   `YResolution`, `ResolutionUnit`, `Software`, `ImageDescription`, `DateTime`,
    ///   `Artist`, `Copyright`, `HostComputer`, `Make`, `Model` where
    ///   present;
    /// - PNG: text chunks under their keywords, `png:Gamma`, `png:sRGB`, resolution;
    /// - JPEG: `jpeg:ColorSpace`, resolution;
    /// - an embedded ICC profile as `ICCProfile:bytes` (its length); EXIF as `Exif:bytes`.
    ///
    /// # Memory
    /// Rows are decoded a band at a time — the smallest chunk of the imported channels,
    /// rounded up to the decoder's blocks (OpenEXR blocks and tiles, TIFF strips and
    /// tiles) — into the chunks being filled; each chunk is compressed and appended as
    /// soon as it is complete, while the next band decodes. Peak memory is about two bands
    /// plus two chunks per channel and the decoder's block buffers, never the whole image
    /// — except where the decoder needs the whole image: JPEG (decoded at once) and
    /// interlaced PNG (its passes cover the whole image). OpenEXR blocks of a band are
    /// decompressed in parallel; chunks are compressed in parallel.
    ///
    /// The import is one commit: a reader of a named destination never sees a partial
    /// image, and a failed import leaves no file (nor temporary file) behind.
    ///
    /// # Errors
    /// [`Error::File`] when `path` cannot be opened; [`Error::ImageFile`] with the
    /// [`ImageFileError`] for an unknown format, a missing subimage or channel, an
    /// unsupported feature or compression, deep data, subsampled channels, a damaged or
    /// truncated file, or an image too large to import; [`Error::InvalidArgument`] for
    /// invalid settings; [`Error::Locked`] when another handle writes the destination; I/O
    /// errors.
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions) -> Result<AnyImage> {
        AnyImage::read_with_progress(path, options, &NoProgress)
    }

    /// [`read`](Self::read), reporting to `progress` (as `"import"`) the bytes of the
    /// image's pixels stored: every element of the imported channels in their stored
    /// element types ([`ReadOptions::dtype`] when set), uncompressed — `w × h × 4` for each
    /// `f32` channel of `w × h`, whatever the file holds. A chunk's bytes are reported once
    /// it is compressed and appended; `start` comes once the image (and, for a named
    /// destination, its temporary file) exists, `finish` after the commit and rename, or
    /// after a failed import's temporary file is removed.
    ///
    /// Cancelled, the import stops after the chunk being reported and returns
    /// [`Error::Cancelled`]; an import into a file leaves neither the file nor its
    /// temporary behind (as any failed import), an anonymous one is simply dropped.
    ///
    /// To post-process the chunks as well, use [`read_with`](Self::read_with): its
    /// callback already sees every chunk, in order for each channel, and ends the import
    /// when it returns an error such as [`Error::Cancelled`].
    ///
    /// # Errors
    /// As [`read`](Self::read); [`Error::Cancelled`] when `progress` cancels.
    pub fn read_with_progress(
        path: impl AsRef<Path>,
        options: &ReadOptions,
        progress: &dyn Progress,
    ) -> Result<AnyImage> {
        import(path.as_ref(), options, &mut keep, progress)
    }

    /// [`read`](Self::read), calling `postprocess` on every chunk before it is compressed
    /// (as the original library's post-process callback): it may change the chunk's
    /// elements, and an error it returns ends the import (which then leaves nothing
    /// behind). Chunks of a channel come in order; channels interleave.
    ///
    /// # Errors
    /// As [`read`](Self::read); the callback's errors.
    pub fn read_with(
        path: impl AsRef<Path>,
        options: &ReadOptions,
        mut postprocess: impl FnMut(ImportedChunk<'_>) -> Result,
    ) -> Result<AnyImage> {
        import(path.as_ref(), options, &mut postprocess, &NoProgress)
    }
}

impl<T: Sample> Image<T> {
    /// Import an image file with every channel converted to `T`; see [`AnyImage::read`].
    ///
    /// # Errors
    /// As [`AnyImage::read`]; [`Error::InvalidArgument`] when `options` ask for another
    /// element type.
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Image<T>> {
        Image::read_with_progress(path, options, &NoProgress)
    }

    /// [`read`](Self::read) with a post-process callback; see [`AnyImage::read_with`].
    ///
    /// # Errors
    /// As [`read`](Self::read); the callback's errors.
    pub fn read_with(
        path: impl AsRef<Path>,
        options: &ReadOptions,
        postprocess: impl FnMut(ImportedChunk<'_>) -> Result,
    ) -> Result<Image<T>> {
        Image::import_as_t(options, |options| {
            AnyImage::read_with(path, options, postprocess)
        })
    }

    /// [`read`](Self::read) with a progress observer; see
    /// [`AnyImage::read_with_progress`] (the bytes are those of `T` elements).
    ///
    /// # Errors
    /// As [`read`](Self::read); [`Error::Cancelled`] when `progress` cancels.
    pub fn read_with_progress(
        path: impl AsRef<Path>,
        options: &ReadOptions,
        progress: &dyn Progress,
    ) -> Result<Image<T>> {
        Image::import_as_t(options, |options| {
            AnyImage::read_with_progress(path, options, progress)
        })
    }

    /// Run `import` with `options` asking for `T`, refusing options that ask for another
    /// element type (before anything is read or reported).
    fn import_as_t(
        options: &ReadOptions,
        import: impl FnOnce(&ReadOptions) -> Result<AnyImage>,
    ) -> Result<Image<T>> {
        if let Some(dtype) = options.dtype.filter(|&d| d != T::DTYPE) {
            return Err(Error::invalid(
                Argument::Dtype,
                dtype,
                format!("{} (the image's element type) or none", T::DTYPE),
            ));
        }
        Image::try_from_any(import(&options.clone().dtype(T::DTYPE))?)
    }
}
