//! Safe c-blosc2 chunk codec: compress, decompress into caller memory, header checks.
//!
//! One compression and one decompression context per thread, created on first use and
//! reused while the parameters stay the same, so no call allocates a context and no
//! context is shared between threads. c-blosc2 reads `BLOSC_*` environment variables when
//! it creates a context and lets them override the parameters set here; keep them unset.
//!
//! Whatever thread count a caller asks for, a chunk gets at most one c-blosc2 thread per
//! block and at most [`max_chunk_threads`] (a few per core): c-blosc2 starts a context's
//! whole thread pool at once, so an unchecked request could exhaust the process's threads.

// The c-blosc2 calls are one of the two modules allowed `unsafe` (crate root).
#[allow(unsafe_code)]
mod ffi;

use std::cell::RefCell;

pub(crate) use ffi::{CompressParams, MAX_OVERHEAD};

use crate::error::{Error, Result};
use crate::settings::Codec;

thread_local! {
    /// Keyed by parameters and input length: `blosc2_compress_ctx` keeps the block size it
    /// clamped to one input as the request for the next, so a context is only reused for
    /// inputs of the same length (every chunk but the last).
    static COMPRESSORS: RefCell<Contexts<(CompressParams, usize)>> = const { RefCell::new(Contexts::new()) };
    /// Keyed by thread count, which depends on the chunk's block count.
    static DECOMPRESSORS: RefCell<Contexts<i16>> = const { RefCell::new(Contexts::new()) };
}

/// The contexts one OS thread keeps of one kind, most recently used first. More than one,
/// because callers alternate: a channel's full chunks and its shorter last chunk need
/// different compression contexts, and a short chunk with fewer blocks than threads gets a
/// smaller decompression context; with a single slot each alternation would free a context
/// (and its thread pool) and build another, which costs more than decoding a small chunk.
struct Contexts<K> {
    entries: Vec<(K, ffi::Context)>,
}

/// Contexts kept per OS thread and kind. Each may hold a c-blosc2 thread pool of at most
/// [`max_chunk_threads`] threads.
const CONTEXTS_PER_THREAD: usize = 3;

impl<K: PartialEq + Copy> Contexts<K> {
    const fn new() -> Contexts<K> {
        Contexts {
            entries: Vec::new(),
        }
    }

    /// The context for `key`, made by `make` if none is kept; it becomes the most recently
    /// used one.
    fn get_or_make(
        &mut self,
        key: K,
        make: impl FnOnce() -> Result<ffi::Context>,
    ) -> Result<&mut ffi::Context> {
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => self.entries[..=i].rotate_right(1),
            None => {
                if self.entries.len() == CONTEXTS_PER_THREAD {
                    self.entries.pop(); // free the least recently used before making another
                }
                let context = make()?;
                self.entries.insert(0, (key, context));
            }
        }
        Ok(&mut self.entries[0].1)
    }

    /// Free the most recently used context.
    fn drop_newest(&mut self) {
        if !self.entries.is_empty() {
            self.entries.remove(0);
        }
    }

    #[cfg(test)]
    fn contains(&self, key: K) -> bool {
        self.entries.iter().any(|(k, _)| *k == key)
    }
}

impl CompressParams {
    /// Parameters for a channel's settings; `nthreads` is the caller's request, capped per
    /// chunk by [`compress`].
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
            nthreads: chunk_threads(nthreads, usize::MAX),
        }
    }
}

/// c-blosc2 threads per available core at most: more only add thread start-up and
/// contention (c-blosc2 starts a context's whole thread pool for the first multi-block
/// chunk it processes, and keeps it while the context lives).
const THREADS_PER_CORE: usize = 4;

/// The most threads c-blosc2 is given for one chunk: [`THREADS_PER_CORE`] × the machine's
/// available parallelism.
pub(crate) fn max_chunk_threads() -> usize {
    THREADS_PER_CORE * crate::threads::available_parallelism()
}

/// The threads c-blosc2 gets for a chunk of `nblocks` blocks when `requested` are asked for:
/// at least 1, at most one per block (c-blosc2 hands each thread whole blocks, so more would
/// idle) and at most [`max_chunk_threads`], whatever the request — a request of 40,000 must
/// not start 40,000 threads.
fn chunk_threads(requested: usize, nblocks: usize) -> i16 {
    let cap = nblocks.min(max_chunk_threads()).min(i16::MAX as usize);
    requested.clamp(1, cap.max(1)) as i16
}

/// Blocks c-blosc2 splits a `len`-byte input into with a `block_size` request (0 =
/// automatic, which c-blosc2 sizes itself: then no bound is known here).
fn blocks_of(len: usize, block_size: i32) -> usize {
    match usize::try_from(block_size) {
        Ok(block) if block > 0 => len.div_ceil(block).max(1),
        _ => usize::MAX,
    }
}

/// Compress `src` into a complete blosc2 chunk in `dst` (contents replaced), on at most one
/// thread per block of `src` and at most [`max_chunk_threads`] threads.
pub(crate) fn compress(params: CompressParams, src: &[u8], dst: &mut Vec<u8>) -> Result {
    let nblocks = blocks_of(src.len(), params.block_size);
    let params = CompressParams {
        nthreads: chunk_threads(params.nthreads as usize, nblocks),
        ..params
    };
    COMPRESSORS.with_borrow_mut(|contexts| {
        contexts
            .get_or_make((params, src.len()), || ffi::Context::compressor(params))?
            .compress(src, dst)
    })
}

/// Run `f` with this thread's decompression context for `src` (a validated chunk), made for
/// the threads [`chunk_threads`] allows for `src`'s blocks.
fn with_decompressor<R>(
    src: &[u8],
    nthreads: usize,
    f: impl FnOnce(&mut ffi::Context) -> Result<R>,
) -> Result<R> {
    let nblocks = ChunkHeader::parse(src).map_or(1, |h| h.nblocks());
    let nthreads = chunk_threads(nthreads, nblocks);
    DECOMPRESSORS.with_borrow_mut(|contexts| {
        let result = f(contexts.get_or_make(nthreads, || ffi::Context::decompressor(nthreads))?);
        if result.is_err() {
            // A failed decode may leave state in the context (buffers, codec state) that a
            // later decode of another crafted chunk could observe: start the next one clean.
            contexts.drop_newest();
        }
        result
    })
}

/// Whether this thread holds a decompression context for `nthreads` threads (for tests of
/// its life cycle).
#[cfg(test)]
fn has_decompressor(nthreads: i16) -> bool {
    DECOMPRESSORS.with_borrow(|contexts| contexts.contains(nthreads))
}

/// Decompress a validated blosc2 chunk into `dst` (exactly its uncompressed length), on at
/// most one thread per block and at most [`max_chunk_threads`] threads.
pub(crate) fn decompress_into(src: &[u8], dst: &mut [u8], nthreads: usize) -> Result {
    with_decompressor(src, nthreads, |ctx| ctx.decompress(src, dst))
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
    with_decompressor(src, nthreads, |ctx| {
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

    /// Blocks the chunk is split into (1 for a header that claims a zero block size).
    pub(crate) fn nblocks(&self) -> usize {
        (self.nbytes as usize)
            .div_ceil(self.blocksize.max(1) as usize)
            .max(1)
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
        let nblocks = self.nblocks();
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
        assert!(has_decompressor(1));
        // The wrong output length fails inside c-blosc2.
        assert!(decompress_into(&chunk, &mut out[..10], 1).is_err());
        assert!(!has_decompressor(1));
        decompress_into(&chunk, &mut out, 1).unwrap();
        assert_eq!(out, data);
        assert!(has_decompressor(1));
    }

    #[test]
    fn alternating_thread_counts_keep_a_context_for_each() {
        let data: Vec<u8> = (0u32..1 << 18).map(|i| (i / 5 % 251) as u8).collect();
        let mut chunk = Vec::new();
        compress(
            CompressParams::new(Codec::Lz4, 5, 1, 4096, 1),
            &data,
            &mut chunk,
        )
        .unwrap();
        let mut out = vec![0u8; data.len()];
        for threads in [1, 2, 1, 2] {
            decompress_into(&chunk, &mut out, threads).unwrap();
            assert_eq!(out, data);
        }
        assert!(has_decompressor(1) && has_decompressor(2));
        // A fourth kind of context evicts the least recently used one only.
        for threads in [3, 4] {
            decompress_into(&chunk, &mut out, threads).unwrap();
        }
        assert!(!has_decompressor(1) && has_decompressor(2) && has_decompressor(4));
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
    fn chunk_threads_are_capped_by_blocks_and_cores() {
        assert_eq!(
            chunk_threads(40_000, usize::MAX) as usize,
            max_chunk_threads()
        );
        assert_eq!(chunk_threads(40_000, 3), 3);
        assert_eq!(chunk_threads(2, 3), 2);
        assert_eq!(chunk_threads(0, 3), 1);
        assert_eq!(chunk_threads(8, 0), 1);
        assert_eq!(blocks_of(10_000, 4096), 3);
        assert_eq!(blocks_of(10_000, 0), usize::MAX);
    }

    /// `Threads:` of /proc/self/status: the threads of this process right now.
    #[cfg(target_os = "linux")]
    fn process_threads() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_huge_thread_request_starts_only_a_few_threads_per_core() {
        let before = process_threads();
        // 4 MiB in 4 KiB blocks: 1024 blocks, compressible, so both directions run blocks in
        // parallel and the block count alone would allow 1024 threads.
        let data: Vec<u8> = (0u32..4 << 20).map(|i| (i / 7 % 256) as u8).collect();
        let mut chunk = Vec::new();
        let params = CompressParams::new(Codec::Lz4, 5, 1, 4096, 40_000);
        compress(params, &data, &mut chunk).unwrap();
        let after_compress = process_threads();
        let mut out = vec![0u8; data.len()];
        decompress_into(&chunk, &mut out, 40_000).unwrap();
        let after_decompress = process_threads();
        assert_eq!(out, data);
        // Each context keeps its pool; other tests of this binary may start a few threads too.
        let bound = before + 2 * max_chunk_threads() + 32;
        assert!(
            after_compress <= bound && after_decompress <= bound,
            "{before} threads grew to {after_compress} compressing and {after_decompress} \
             decompressing (bound {bound})"
        );
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
