//! Safe c-blosc2 chunk codec: compress, decompress into caller memory, header checks.
//!
//! One compression and one decompression context per thread, created on first use and
//! reused while the parameters stay the same, so no call allocates a context and no
//! context is shared between threads. c-blosc2 reads `BLOSC_*` environment variables when
//! it creates a context and lets them override the parameters set here; keep them unset.

mod ffi;

use std::cell::RefCell;

pub(crate) use ffi::{CompressParams, MAX_OVERHEAD};

use crate::codec::Codec;
use crate::error::{Error, Result};

thread_local! {
    /// Keyed by parameters and input length: `blosc2_compress_ctx` keeps the block size it
    /// clamped to one input as the request for the next, so a context is only reused for
    /// inputs of the same length (every chunk but the last).
    static COMPRESSOR: RefCell<Option<((CompressParams, usize), ffi::Context)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<(i16, ffi::Context)>> = const { RefCell::new(None) };
}

impl CompressParams {
    /// Parameters for a channel's settings.
    pub(crate) fn new(
        codec: Codec,
        level: u8,
        typesize: usize,
        block_size: usize,
        nthreads: usize,
    ) -> CompressParams {
        CompressParams {
            compcode: codec.blosc_compcode(),
            level,
            typesize: typesize as u8,
            block_size: i32::try_from(block_size).unwrap_or(i32::MAX),
            nthreads: clamp_threads(nthreads),
        }
    }
}

/// c-blosc2 takes at most `i16::MAX` threads; 0 is never passed.
fn clamp_threads(n: usize) -> i16 {
    n.clamp(1, i16::MAX as usize) as i16
}

/// Compress `src` into a complete blosc2 chunk in `dst` (contents replaced).
pub(crate) fn compress(params: CompressParams, src: &[u8], dst: &mut Vec<u8>) -> Result {
    let key = (params, src.len());
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(k, _)| *k != key) {
            *slot = None; // free the old context before making the new one
            *slot = Some((key, ffi::Context::compressor(params)?));
        }
        let (_, ctx) = slot.as_mut().expect("context set above");
        ctx.compress(src, dst)
    })
}

fn with_decompressor<R>(
    nthreads: usize,
    f: impl FnOnce(&mut ffi::Context) -> Result<R>,
) -> Result<R> {
    let nthreads = clamp_threads(nthreads);
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(n, _)| *n != nthreads) {
            *slot = None;
            *slot = Some((nthreads, ffi::Context::decompressor(nthreads)?));
        }
        let (_, ctx) = slot.as_mut().expect("context set above");
        let result = f(ctx);
        if result.is_err() {
            // A failed decode may leave state in the context (buffers, codec state) that a
            // later decode of another crafted chunk could observe: start the next one clean.
            *slot = None;
        }
        result
    })
}

/// Whether this thread holds a decompression context (for tests of its life cycle).
#[cfg(test)]
fn has_decompressor() -> bool {
    DECOMPRESSOR.with_borrow(Option::is_some)
}

/// Decompress a validated blosc2 chunk into `dst` (exactly its uncompressed length).
pub(crate) fn decompress_into(src: &[u8], dst: &mut [u8], nthreads: usize) -> Result {
    with_decompressor(nthreads, |ctx| ctx.decompress(src, dst))
}

/// Decode the items `[start, start + nitems)` of a validated chunk into `dst`.
pub(crate) fn get_items_into(
    src: &[u8],
    start: usize,
    nitems: usize,
    dst: &mut [u8],
    nthreads: usize,
) -> Result {
    // c-blosc2 2.15.2's getitem returns wrong items for a range that crosses a block
    // boundary (it decodes the later block for the whole range), so decode block by block.
    let header = ChunkHeader::parse(src)
        .ok_or_else(|| Error::corrupted("blob shorter than a blosc2 header"))?;
    let typesize = usize::from(header.typesize.max(1));
    let block_items = (header.blocksize as usize / typesize).max(1);
    // The thread count only selects the cached context (getitem decodes on one thread), so
    // alternating with whole-chunk reads does not rebuild the context and its thread pool.
    with_decompressor(nthreads, |ctx| {
        let (mut item, end) = (start, start + nitems);
        let mut out = dst;
        while item < end {
            let stop = ((item / block_items + 1) * block_items).min(end);
            let (part, rest) = std::mem::take(&mut out).split_at_mut((stop - item) * typesize);
            ctx.get_items(src, item, stop - item, part)?;
            out = rest;
            item = stop;
        }
        Ok(())
    })
}

/// The documented fields of a blosc2 chunk header (README_CHUNK_FORMAT), parsed in Rust so
/// no untrusted byte reaches C before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkHeader {
    pub version: u8,
    pub flags: u8,
    pub typesize: u8,
    pub nbytes: u32,
    pub blocksize: u32,
    pub cbytes: u32,
    /// Byte 30: bit 0 = variable-length blocks.
    pub flags2: u8,
    /// Byte 31: bit 0 dictionary, bit 3 lazy chunk, bits 4–6 special value.
    pub blosc2_flags: u8,
}

/// Header length of every chunk this library writes (the blosc2 extended header).
pub(crate) const HEADER_LEN: usize = 32;
/// `flags` bits 0 and 2 both set mark the 32-byte extended (Blosc2) header.
const EXTENDED_HEADER_FLAGS: u8 = 0b101;
/// `flags` bit 1: the payload is stored raw after the header.
pub(crate) const MEMCPYED_FLAG: u8 = 0b10;
/// `flags2` bit 0: variable-length blocks (never written by this library).
const VARIABLE_BLOCKS_FLAG: u8 = 0b1;
/// `blosc2_flags`: dictionary (bit 0), lazy chunk (bit 3), special values (bits 4–6).
const UNSUPPORTED_BLOSC2_FLAGS: u8 = 0b0111_1001;

impl ChunkHeader {
    /// Parse the first 16 bytes; `None` if `chunk` is shorter than a full header.
    pub(crate) fn parse(chunk: &[u8]) -> Option<ChunkHeader> {
        let h = chunk.get(..HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        Some(ChunkHeader {
            version: h[0],
            flags: h[2],
            typesize: h[3],
            nbytes: u32_at(4),
            blocksize: u32_at(8),
            cbytes: u32_at(12),
            flags2: h[30],
            blosc2_flags: h[31],
        })
    }

    /// Check the header (and, for compressed chunks, the block offsets) against what the
    /// table and geometry say the chunk must be, before the chunk is handed to c-blosc2,
    /// which trusts these fields. `chunk` is the whole blosc2 chunk.
    pub(crate) fn check(&self, chunk: &[u8], raw_len: usize, typesize: usize) -> Result {
        let fail = |what: &str| Err(Error::corrupted(format!("blosc2 chunk header: {what}")));
        let payload_len = chunk.len();
        if !(3..=5).contains(&self.version) {
            return fail("unknown format version");
        }
        if self.flags & EXTENDED_HEADER_FLAGS != EXTENDED_HEADER_FLAGS {
            return fail("not an extended (Blosc2) header");
        }
        if self.flags2 & VARIABLE_BLOCKS_FLAG != 0
            || self.blosc2_flags & UNSUPPORTED_BLOSC2_FLAGS != 0
        {
            return fail("variable blocks, a dictionary, a lazy or a special-value chunk");
        }
        if self.typesize as usize != typesize {
            return fail("typesize differs from the channel's element size");
        }
        if self.nbytes as usize != raw_len {
            return fail("uncompressed size differs from the chunk geometry");
        }
        if self.cbytes as usize != payload_len || payload_len > raw_len + MAX_OVERHEAD {
            return fail("compressed size differs from the table entry");
        }
        if self.blocksize == 0 || self.blocksize as usize > raw_len.max(1) {
            return fail("block size out of range");
        }
        if self.flags & MEMCPYED_FLAG != 0 {
            // Raw samples follow the header; c-blosc2 copies them without bounds checks.
            if payload_len != raw_len + HEADER_LEN {
                return fail("stored-raw chunk whose length is not header + samples");
            }
            return Ok(());
        }
        // Every block starts inside the chunk, after the block-offset array.
        let nblocks = raw_len.div_ceil(self.blocksize as usize);
        let body = HEADER_LEN + 4 * nblocks;
        let Some(starts) = chunk.get(HEADER_LEN..body) else {
            return fail("block offsets past the end of the chunk");
        };
        let in_bounds = starts.chunks_exact(4).all(|b| {
            let start = i32::from_le_bytes(b.try_into().expect("4 bytes"));
            usize::try_from(start).is_ok_and(|s| s >= body && s < payload_len)
        });
        if !in_bounds {
            return fail("a block starts outside the chunk");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(codec: Codec, typesize: usize) -> CompressParams {
        CompressParams::new(codec, 9, typesize, 32 * 1024, 1)
    }

    #[test]
    fn a_failed_decode_drops_the_threads_decompression_context() {
        let data = vec![7u8; 100_000];
        let mut chunk = Vec::new();
        compress(params(Codec::Lz4, 1), &data, &mut chunk).unwrap();
        let mut out = vec![0u8; data.len()];
        decompress_into(&chunk, &mut out, 1).unwrap();
        assert!(has_decompressor());
        // The wrong output length fails inside c-blosc2.
        assert!(decompress_into(&chunk, &mut out[..10], 1).is_err());
        assert!(!has_decompressor());
        decompress_into(&chunk, &mut out, 1).unwrap();
        assert_eq!(out, data);
        assert!(has_decompressor());
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<f32> = (0..50_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let bytes: &[u8] = bytemuck::cast_slice(&data);
        for codec in Codec::ALL {
            let mut chunk = Vec::new();
            compress(params(codec, 4), bytes, &mut chunk).unwrap();
            let header = ChunkHeader::parse(&chunk).unwrap();
            header.check(&chunk, bytes.len(), 4).unwrap();
            let mut out = vec![0u8; bytes.len()];
            decompress_into(&chunk, &mut out, 1).unwrap();
            assert_eq!(out, bytes, "{codec}");
            let mut part = vec![0u8; 40];
            get_items_into(&chunk, 1000, 10, &mut part, 1).unwrap();
            assert_eq!(part, bytes[4000..4040]);
            // A range across block boundaries (blocks of 8192 f32 here).
            let mut part = vec![0u8; 4 * 20_000];
            get_items_into(&chunk, 8000, 20_000, &mut part, 1).unwrap();
            assert_eq!(part, bytes[4 * 8000..4 * 28_000], "{codec}");
        }
    }

    #[test]
    fn level_zero_stores_raw_bytes_after_the_header() {
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut chunk = Vec::new();
        compress(
            CompressParams::new(Codec::Lz4, 0, 1, 0, 1),
            &bytes,
            &mut chunk,
        )
        .unwrap();
        assert_eq!(chunk.len(), bytes.len() + HEADER_LEN);
        assert_ne!(ChunkHeader::parse(&chunk).unwrap().flags & MEMCPYED_FLAG, 0);
    }

    #[test]
    fn header_check_rejects_mismatches() {
        let bytes = vec![3u8; 1000];
        let mut chunk = Vec::new();
        compress(params(Codec::Zstd, 2), &bytes, &mut chunk).unwrap();
        let h = ChunkHeader::parse(&chunk).unwrap();
        assert!(h.check(&chunk, 1000, 2).is_ok());
        assert!(h.check(&chunk, 998, 2).is_err());
        assert!(h.check(&chunk[..chunk.len() - 1], 1000, 2).is_err());
        assert!(h.check(&chunk, 1000, 4).is_err());
        assert!(ChunkHeader::parse(&chunk[..31]).is_none());
    }
}
