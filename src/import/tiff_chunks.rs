//! Decoding single TIFF strips and tiles, several decoders at a time: each decoder reads
//! the file through its own position over one shared open file.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tiff::decoder::{Decoder, DecodingResult, Limits};

use super::error::{FileResult, ImageFileError};
use super::tiff_tags::tiff_error;

/// Largest decoded strip or tile, and largest compressed one: a larger one is refused as
/// too large (the decoder holds a strip or tile whole).
pub(crate) const MAX_CHUNK_BYTES: usize = 1 << 30;

/// An open file read at a position of its own (positioned reads leave other readers of
/// the same file alone).
pub(crate) struct SharedFile {
    file: Arc<File>,
    position: u64,
}

impl SharedFile {
    pub(crate) fn new(file: Arc<File>) -> SharedFile {
        SharedFile { file, position: 0 }
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, offset) = match to {
            SeekFrom::Start(at) => (at, 0),
            SeekFrom::Current(offset) => (self.position, offset),
            SeekFrom::End(offset) => (self.file.metadata()?.len(), offset),
        };
        self.position = base
            .checked_add_signed(offset)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// A TIFF decoder over a [`SharedFile`], with the limits an import allows.
pub(crate) type TiffDecoder = Decoder<BufReader<SharedFile>>;

/// A decoder of `file`, at its first page.
pub(crate) fn open_decoder(file: &Arc<File>) -> FileResult<TiffDecoder> {
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_CHUNK_BYTES;
    limits.intermediate_buffer_size = MAX_CHUNK_BYTES;
    Ok(Decoder::new(BufReader::new(SharedFile::new(file.clone())))
        .map_err(tiff_error)?
        .with_limits(limits))
}

/// How a page's samples are stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleLayout {
    /// Samples per pixel in one strip or tile: all of them, or 1 for planar files.
    pub samples: usize,
    /// Bits per stored sample: 1, 2 or 4 (gray, unpacked to `u8`), or a whole number of
    /// bytes.
    pub bits: usize,
    /// Bytes per imported sample.
    pub size: usize,
    /// The samples are JPEG-compressed Y, Cb, Cr (8 bits), to be turned into R, G, B.
    pub ycbcr: bool,
}

/// A strip or tile: its index among the page's chunks, its width as stored (padding
/// included) and the size of its pixels in the image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSpot {
    pub index: usize,
    pub stored_width: usize,
    pub width: usize,
    pub height: usize,
}

/// Decode strip or tile `spot` with `decoder`: its rows, tightly packed, of pixels of
/// `layout.samples` samples of `layout.size` bytes (samples below 8 bits unpacked and
/// scaled to the full `u8` range, as OpenImageIO reads them).
pub(crate) fn decode_chunk(
    decoder: &mut TiffDecoder,
    spot: ChunkSpot,
    layout: SampleLayout,
) -> FileResult<Vec<u8>> {
    let index = u32::try_from(spot.index)
        .map_err(|_| ImageFileError::Decode("too many strips or tiles".into()))?;
    // Rows as stored, padding included: the decoder then reads each whole row at once
    // (skipping a tile's padding row by row fails in the tiff crate 0.11 when a code of the
    // LZW stream spans it).
    let stride = (spot.stored_width * layout.samples * layout.bits).div_ceil(8);
    let mut decoded = DecodingResult::U8(Vec::new());
    decoder
        .read_chunk_to_buffer(&mut decoded, index, stride)
        .map_err(tiff_error)?;
    let buffer = decoded.as_buffer(0);
    let bytes = buffer.as_bytes();
    let packed_row = (spot.width * layout.samples * layout.bits).div_ceil(8);
    if bytes.len() < stride * spot.height.saturating_sub(1) + packed_row {
        return Err(ImageFileError::Decode(format!(
            "strip or tile {index} does not hold its {} x {} pixels",
            spot.width, spot.height
        )));
    }
    let rows = bytes.chunks(stride).take(spot.height);
    let mut pixels: Vec<u8> = if layout.bits < 8 {
        rows.flat_map(|row| unpack(row, spot.width, layout.bits))
            .collect()
    } else {
        rows.flat_map(|row| &row[..packed_row]).copied().collect()
    };
    if layout.ycbcr {
        pixels.chunks_exact_mut(3).for_each(ycbcr_to_rgb);
    }
    Ok(pixels)
}

/// Turn a JPEG (JFIF) Y, Cb, Cr pixel into R, G, B, as a JPEG decoder does.
fn ycbcr_to_rgb(pixel: &mut [u8]) {
    let (y, cb, cr) = (
        f32::from(pixel[0]),
        f32::from(pixel[1]) - 128.0,
        f32::from(pixel[2]) - 128.0,
    );
    let channel = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    pixel[0] = channel(y + 1.402 * cr);
    pixel[1] = channel(y - 0.344_136 * cb - 0.714_136 * cr);
    pixel[2] = channel(y + 1.772 * cb);
}

/// The first `width` samples of `bits` bits (most significant first) of `row`, scaled to
/// 0..=255.
fn unpack(row: &[u8], width: usize, bits: usize) -> impl Iterator<Item = u8> + '_ {
    let per_byte = 8 / bits;
    let max = (1u16 << bits) - 1;
    (0..width).map(move |x| {
        let shift = 8 - bits * (x % per_byte + 1);
        let value = u16::from(row[x / per_byte] >> shift) & max;
        (value * 255 / max) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_bit_samples_unpack_most_significant_first_to_the_full_range() {
        let one: Vec<u8> = unpack(&[0b1010_0000], 4, 1).collect();
        assert_eq!(one, [255, 0, 255, 0]);
        let two: Vec<u8> = unpack(&[0b0001_1011], 4, 2).collect();
        assert_eq!(two, [0, 85, 170, 255]);
        let four: Vec<u8> = unpack(&[0x0f, 0x70], 3, 4).collect();
        assert_eq!(four, [0, 255, 119]);
    }

    #[test]
    fn ycbcr_turns_into_rgb_as_jfif_defines_it() {
        let mut gray = [77, 128, 128];
        ycbcr_to_rgb(&mut gray);
        assert_eq!(gray, [77, 77, 77]);
        let mut red = [76, 85, 255]; // pure red, as a JPEG encoder stores it
        ycbcr_to_rgb(&mut red);
        assert_eq!(red, [254, 0, 0]);
    }

    #[test]
    fn shared_files_keep_their_own_positions() {
        let mut temp = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut temp, b"0123456789").unwrap();
        let file = Arc::new(temp);
        let (mut a, mut b) = (SharedFile::new(file.clone()), SharedFile::new(file));
        let mut buf = [0u8; 3];
        a.seek(SeekFrom::Start(5)).unwrap();
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"012");
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"567");
        assert_eq!(b.seek(SeekFrom::End(-1)).unwrap(), 9);
        assert!(b.seek(SeekFrom::Current(-20)).is_err());
    }
}
