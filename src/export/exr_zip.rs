//! OpenEXR's ZIP and ZIPS block compression through libdeflate, the deflate library
//! OpenEXR itself uses: at the same level (4, OpenEXR's default) it compresses several
//! times faster than the `miniz_oxide` deflate inside the `exr` crate, and the export of a
//! ZIP file is mostly that compression. The `exr` crate still lays out and writes the file
//! and does every other compression.
//!
//! The encoding is OpenEXR's (`ImfZip.cpp`): the block's little-endian bytes split into the
//! bytes at even offsets followed by those at odd offsets, each byte then replaced by its
//! difference to the one before plus 128, and the result zlib-compressed; a block that does
//! not get smaller is stored raw, which readers recognise by its length.

use std::cell::RefCell;

use libdeflater::{CompressionLvl, Compressor};

/// OpenEXR's default deflate level for ZIP and ZIPS (`zipCompressionLevel`), which the
/// `exr` crate also uses.
const LEVEL: i32 = 4;

thread_local! {
    /// One compressor (its match finder's state) per thread of the writing pool.
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// The even-offset bytes of `raw`, then the odd-offset ones, as differences.
fn predicted(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    out.extend(raw.iter().step_by(2));
    out.extend(raw.iter().skip(1).step_by(2));
    let mut previous = out.first().copied().unwrap_or(0);
    for byte in out.iter_mut().skip(1) {
        let value = *byte;
        *byte = value.wrapping_sub(previous).wrapping_add(128);
        previous = value;
    }
    out
}

/// The stored bytes of one block whose pixels, little-endian, are `raw`.
pub(crate) fn compress(raw: &[u8]) -> Vec<u8> {
    let prepared = predicted(raw);
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = cell.get_or_insert_with(|| {
            Compressor::new(CompressionLvl::new(LEVEL).expect("level 4 is one of libdeflate's"))
        });
        let mut out = vec![0; compressor.zlib_compress_bound(prepared.len())];
        match compressor.zlib_compress(&prepared, &mut out) {
            Ok(len) if len < raw.len() => {
                out.truncate(len);
                out
            }
            // Not smaller (or, impossibly, over the bound): OpenEXR stores such a block raw.
            _ => raw.to_vec(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenEXR's decoding of a ZIP block, written out plainly.
    fn decode(stored: &[u8], len: usize) -> Vec<u8> {
        if stored.len() == len {
            return stored.to_vec();
        }
        let mut prepared = vec![0; len];
        let n = libdeflater::Decompressor::new()
            .zlib_decompress(stored, &mut prepared)
            .expect("zlib");
        assert_eq!(n, len);
        for i in 1..len {
            prepared[i] = prepared[i].wrapping_add(prepared[i - 1]).wrapping_sub(128);
        }
        let half = len.div_ceil(2);
        (0..len)
            .map(|i| {
                if i % 2 == 0 {
                    prepared[i / 2]
                } else {
                    prepared[half + i / 2]
                }
            })
            .collect()
    }

    #[test]
    fn blocks_decode_to_their_pixels_whatever_their_length() {
        for len in [0usize, 1, 2, 3, 17, 4096, 4097] {
            let smooth: Vec<u8> = (0..len).map(|i| (i / 7) as u8).collect();
            assert_eq!(
                decode(&compress(&smooth), len),
                smooth,
                "smooth, {len} bytes"
            );
            let mut x = 0x9e37_79b9u32;
            let noise: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let stored = compress(&noise);
            assert_eq!(decode(&stored, len), noise, "noise, {len} bytes");
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let mut x = 7u32;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        assert_eq!(compress(&noise), noise);
    }
}
