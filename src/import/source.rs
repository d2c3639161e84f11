//! What every format reader provides: the image's description and its rows, band by band.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::{FileResult, ImageFileError};
use crate::sample::Dtype;

/// Most bytes of decoded pixels an import holds at once: a band of rows, or the whole
/// image of a decoder that cannot stream (JPEG, interlaced PNG). A file that needs more
/// (say, one claiming a strip of billions of rows) is refused before anything is
/// allocated.
pub(crate) const MAX_HELD_BYTES: usize = 1 << 32;

/// `Err(TooLarge)` when holding `bytes` of decoded pixels would exceed [`MAX_HELD_BYTES`].
pub(crate) fn check_held(bytes: Option<usize>, width: usize, height: usize) -> FileResult {
    match bytes {
        Some(b) if b <= MAX_HELD_BYTES => Ok(()),
        _ => Err(ImageFileError::TooLarge {
            width: width as u64,
            height: height as u64,
        }),
    }
}

/// A channel as the file presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceChannel {
    pub name: String,
    pub dtype: Dtype,
}

/// What a reader knows about the subimage before decoding pixels.
#[derive(Debug, Clone)]
pub(crate) struct SourceInfo {
    /// The format's name in the metadata (`"openexr"`, `"tiff"`, `"png"`, `"jpeg"`).
    pub format: &'static str,
    pub width: usize,
    pub height: usize,
    /// The channels in the order OpenImageIO presents them.
    pub channels: Vec<SourceChannel>,
    /// How many subimages the file has.
    pub subimages: usize,
    /// Format-specific metadata of the subimage.
    pub metadata: Map<String, Value>,
}

/// A reader of one subimage, decoding bands of whole rows from the top.
pub(crate) trait Source: Send {
    fn info(&self) -> &SourceInfo;

    /// The rows of a band for a wish of `wanted` rows: a multiple of the decoder's block
    /// height (strip, tile or OpenEXR block), so that no block is decoded twice.
    fn band_rows(&self, wanted: usize) -> usize;

    /// Decode `rows` of the channels at presented positions `wanted` (ascending, distinct)
    /// into `out`, one buffer per wanted channel, each exactly `rows.len() × width`
    /// elements of the channel's type, little-endian. Bands come in order from row 0, each
    /// starting where the previous ended and, except the last, `band_rows` long.
    fn read_band(
        &mut self,
        rows: Range<usize>,
        wanted: &[usize],
        out: &mut [Vec<u8>],
    ) -> FileResult;
}

/// The image file formats this library reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    OpenExr,
    Tiff,
    Png,
    Jpeg,
}

/// The format a file's first bytes announce.
pub(crate) fn detect(head: &[u8]) -> Option<Format> {
    const SIGNATURES: [(&[u8], Format); 7] = [
        (&[0x76, 0x2f, 0x31, 0x01], Format::OpenExr),
        (b"II*\0", Format::Tiff),
        (b"MM\0*", Format::Tiff),
        (b"II+\0", Format::Tiff), // BigTIFF
        (b"MM\0+", Format::Tiff),
        (b"\x89PNG\r\n\x1a\n", Format::Png),
        (&[0xff, 0xd8, 0xff], Format::Jpeg),
    ];
    SIGNATURES
        .iter()
        .find(|(signature, _)| head.starts_with(signature))
        .map(|&(_, format)| format)
}

/// The format of `file`, from its signature; the file is left at its start.
pub(crate) fn detect_file(file: &mut File) -> FileResult<Format> {
    let mut head = [0u8; 8];
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    detect(&head[..len]).ok_or(ImageFileError::UnknownFormat)
}

/// Open the subimage `subimage` of the image file `path` for reading.
pub(crate) fn open(path: &Path, subimage: usize) -> crate::Result<Box<dyn Source>> {
    let mut file = File::open(path).map_err(|e| crate::io::file_error(path, e))?;
    let in_file = super::error::in_file(path);
    let format = detect_file(&mut file).map_err(in_file)?;
    let source: Box<dyn Source> = match format {
        Format::OpenExr => Box::new(super::exr::ExrSource::open(file, subimage).map_err(in_file)?),
        Format::Tiff => Box::new(super::tiff::TiffSource::open(file, subimage).map_err(in_file)?),
        Format::Png => Box::new(super::png::PngSource::open(file, subimage).map_err(in_file)?),
        Format::Jpeg => Box::new(super::jpeg::JpegSource::open(file, subimage).map_err(in_file)?),
    };
    Ok(source)
}

/// `Ok` for subimage 0 of a format with a single image.
pub(crate) fn only_subimage(subimage: usize) -> FileResult {
    if subimage != 0 {
        return Err(ImageFileError::BadSubimage {
            index: subimage,
            count: 1,
        });
    }
    Ok(())
}

/// The rows of a band for a wish of `wanted` rows with blocks of `block_rows` rows:
/// `wanted` rounded up to whole blocks, at least one block.
pub(crate) fn whole_blocks(wanted: usize, block_rows: usize) -> usize {
    let block_rows = block_rows.max(1);
    wanted
        .max(1)
        .div_ceil(block_rows)
        .saturating_mul(block_rows)
}

/// Split interleaved samples (`samples` per pixel, each `size` bytes) into the planes of
/// the wanted samples: `out[k]` receives sample `wanted[k]` of every pixel.
pub(crate) fn deinterleave(
    pixels: &[u8],
    samples: usize,
    size: usize,
    wanted: &[usize],
    out: &mut [&mut [u8]],
) {
    let stride = samples * size;
    for (plane, &sample) in out.iter_mut().zip(wanted) {
        let from = pixels
            .chunks_exact(stride)
            .map(|p| &p[sample * size..][..size]);
        for (o, s) in plane.chunks_exact_mut(size).zip(from) {
            o.copy_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_name_their_formats() {
        assert_eq!(detect(b"\x76\x2f\x31\x01\x02\0\0\0"), Some(Format::OpenExr));
        assert_eq!(detect(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(detect(b"MM\0+\0\x08\0\0"), Some(Format::Tiff));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n"), Some(Format::Png));
        assert_eq!(detect(b"\xff\xd8\xff\xe0"), Some(Format::Jpeg));
        assert_eq!(detect(b"GIF89a"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn bands_are_whole_blocks() {
        assert_eq!(whole_blocks(100, 16), 112);
        assert_eq!(whole_blocks(0, 16), 16);
        assert_eq!(whole_blocks(32, 32), 32);
        assert_eq!(whole_blocks(5, 1), 5);
    }

    #[test]
    fn deinterleave_picks_the_wanted_samples() {
        let pixels = [1u8, 2, 3, 4, 5, 6]; // two pixels of three one-byte samples
        let (mut a, mut b) = ([0u8; 2], [0u8; 2]);
        deinterleave(&pixels, 3, 1, &[0, 2], &mut [&mut a, &mut b]);
        assert_eq!((a, b), ([1, 4], [3, 6]));
    }
}
