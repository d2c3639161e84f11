//! [`WriteOptions`] and [`PreviewOptions`]: what to export from an image and how.

use crate::import::ChannelSelection;
use crate::import::options::channel_setters;

/// The image file formats this library writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// OpenEXR (`.exr`): `f16`, `f32` and `u32` channels, any number, by name.
    OpenExr,
    /// TIFF (`.tif`, `.tiff`): 8- or 16-bit gray, gray + alpha, RGB or RGBA.
    Tiff,
    /// PNG (`.png`): 8- or 16-bit gray, gray + alpha, RGB or RGBA.
    Png,
}

impl ImageFormat {
    /// The format a file name's extension names (`exr`, `tif`, `tiff`, `png`, in any case).
    pub fn from_extension(extension: &str) -> Option<ImageFormat> {
        match extension.to_ascii_lowercase().as_str() {
            "exr" => Some(ImageFormat::OpenExr),
            "tif" | "tiff" => Some(ImageFormat::Tiff),
            "png" => Some(ImageFormat::Png),
            _ => None,
        }
    }
}

/// How OpenEXR pixel blocks are compressed, by the names OpenEXR gives them.
///
/// None, RLE, ZIPS, ZIP and PIZ are lossless. PXR24 rounds `f32` samples to 24 bits
/// (`f16` and `u32` stay exact); B44 and B44A compress `f16` samples lossily (`f32` and
/// `u32` stay exact); DWAA and DWAB compress colour-like `f16` and `f32` channels (`R`,
/// `G`, `B`, `Y`, `BY`, `RY` by the last part of the name) lossily and the others without
/// loss, at OpenEXR's default level 45.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExrCompression {
    /// No compression.
    None,
    /// Run-length encoding, one scanline per block.
    Rle,
    /// Deflate, one scanline per block.
    Zips,
    /// Deflate, 16 scanlines per block (the default).
    #[default]
    Zip,
    /// Wavelet and Huffman coding, 32 scanlines per block.
    Piz,
    /// `f32` rounded to 24 bits, then deflate; 16 scanlines per block.
    Pxr24,
    /// 4×4 blocks of `f16` in 14 bytes; 32 scanlines per block.
    B44,
    /// B44, with flat 4×4 blocks in 3 bytes.
    B44a,
    /// DCT-based, 32 scanlines per block.
    Dwaa,
    /// DCT-based, 256 scanlines per block.
    Dwab,
}

/// How TIFF strips are compressed (all lossless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TiffCompression {
    /// No compression.
    None,
    /// LZW with the horizontal-differencing predictor.
    Lzw,
    /// Deflate (Adobe) with the horizontal-differencing predictor (the default).
    #[default]
    Deflate,
}

/// The bits of each sample of a PNG or TIFF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleDepth {
    /// 8 bits per sample (`u8`).
    Eight,
    /// 16 bits per sample (`u16`).
    Sixteen,
}

impl SampleDepth {
    /// The largest sample value.
    pub(crate) fn max(self) -> u16 {
        match self {
            SampleDepth::Eight => u8::MAX.into(),
            SampleDepth::Sixteen => u16::MAX,
        }
    }

    /// Bytes per sample.
    pub(crate) fn bytes(self) -> usize {
        match self {
            SampleDepth::Eight => 1,
            SampleDepth::Sixteen => 2,
        }
    }
}

/// How floating-point colour samples become PNG or TIFF integers (see
/// [`AnyImage::write`](crate::AnyImage::write)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transfer {
    /// Clamped to [0, 1], encoded with the sRGB transfer function, scaled (the default).
    #[default]
    Srgb,
    /// Clamped to [0, 1] and scaled, as OpenImageIO converts.
    Linear,
}

/// What to export from an image and how: built from [`WriteOptions::default`] with the
/// setters.
///
/// ```
/// use compressed_image::{ExrCompression, ImageFormat, WriteOptions};
///
/// let options = WriteOptions::default()
///     .channel_names(["R", "G", "B"])
///     .exr_compression(ExrCompression::Piz)
///     .format(ImageFormat::OpenExr);
/// assert_eq!(options.format, Some(ImageFormat::OpenExr));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The file format; `None` takes it from the file name's extension.
    pub format: Option<ImageFormat>,
    /// The channels to write, in the order of the request (for PNG and TIFF, the order of
    /// the samples: gray, gray + alpha, R G B, R G B A).
    pub channels: ChannelSelection,
    /// OpenEXR compression.
    pub exr_compression: ExrCompression,
    /// TIFF compression.
    pub tiff_compression: TiffCompression,
    /// PNG and TIFF sample depth; `None` chooses 8 bits when every written channel is `u8`,
    /// else 16 bits.
    pub depth: Option<SampleDepth>,
    /// How floating-point colour samples are turned into PNG and TIFF integers.
    pub transfer: Transfer,
}

impl WriteOptions {
    /// Write this format, whatever the file name says.
    pub fn format(mut self, format: ImageFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Take the format from the file name's extension (the default).
    pub fn format_from_extension(mut self) -> Self {
        self.format = None;
        self
    }

    channel_setters!(
        "Write only the channels with these names, in this order.",
        "Write only the channels at these positions of the image, in this order."
    );

    /// OpenEXR compression.
    pub fn exr_compression(mut self, compression: ExrCompression) -> Self {
        self.exr_compression = compression;
        self
    }

    /// TIFF compression.
    pub fn tiff_compression(mut self, compression: TiffCompression) -> Self {
        self.tiff_compression = compression;
        self
    }

    /// PNG and TIFF sample depth.
    pub fn depth(mut self, depth: SampleDepth) -> Self {
        self.depth = Some(depth);
        self
    }

    /// How floating-point colour samples become PNG and TIFF integers.
    pub fn transfer(mut self, transfer: Transfer) -> Self {
        self.transfer = transfer;
        self
    }
}

/// Default longest side of a preview, in pixels.
pub const DEFAULT_PREVIEW_SIZE: usize = 512;

/// What a preview shows and how large it is (see
/// [`AnyImage::preview`](crate::AnyImage::preview)).
///
/// ```
/// use compressed_image::PreviewOptions;
///
/// let options = PreviewOptions::default().max_size(256).channel_names(["Z"]);
/// assert_eq!(options.max_size, 256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewOptions {
    /// The longest side of the preview, in pixels (at least 1); smaller images keep
    /// their size.
    pub max_size: usize,
    /// The channels shown, one to four (gray, gray + alpha, RGB, RGBA);
    /// [`ChannelSelection::All`] picks them by name.
    pub channels: ChannelSelection,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        PreviewOptions {
            max_size: DEFAULT_PREVIEW_SIZE,
            channels: ChannelSelection::All,
        }
    }
}

impl PreviewOptions {
    /// The longest side of the preview, in pixels.
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    channel_setters!(
        "Show the channels with these names, in this order.",
        "Show the channels at these positions of the image, in this order."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_name_formats_in_any_case() {
        assert_eq!(
            ImageFormat::from_extension("EXR"),
            Some(ImageFormat::OpenExr)
        );
        assert_eq!(ImageFormat::from_extension("tif"), Some(ImageFormat::Tiff));
        assert_eq!(ImageFormat::from_extension("Tiff"), Some(ImageFormat::Tiff));
        assert_eq!(ImageFormat::from_extension("png"), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::from_extension("jpg"), None);
        assert_eq!(ImageFormat::from_extension(""), None);
    }
}
