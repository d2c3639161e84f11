//! The only calls into c-blosc2. Every `unsafe` block here states the invariant it relies on.
//!
//! Contexts are owned by [`Context`], created with `nthreads` and parameters fixed, and used
//! by one thread at a time (the type is neither `Send` nor `Sync`; c-blosc2 contexts are
//! mutable state).

use std::ptr::NonNull;
use std::sync::Once;

use blosc2_sys as sys;

use crate::error::{Error, Result};

/// c-blosc2's `BLOSC2_MAX_OVERHEAD`: a compressed chunk is never longer than its input plus this.
pub(crate) const MAX_OVERHEAD: usize = 32;

/// Initialise c-blosc2 once per process. `blosc2_destroy` is never called: a library cannot
/// know whether another part of the process still holds contexts.
fn init() {
    static INIT: Once = Once::new();
    // SAFETY: `blosc2_init` has no preconditions; the `Once` makes it run exactly once,
    // before any context is created (every context constructor calls `init` first).
    INIT.call_once(|| unsafe { sys::blosc2_init() });
}

/// What a compression context is fixed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressParams {
    /// c-blosc2 API codec constant (`BLOSC_LZ4`, …).
    pub compcode: u8,
    /// 0–9.
    pub level: u8,
    /// Element size in bytes (1–255).
    pub typesize: u8,
    /// Forced block size in bytes, 0 = automatic.
    pub block_size: i32,
    /// Threads c-blosc2 may use inside one chunk (≥ 1).
    pub nthreads: i16,
}

/// An owned c-blosc2 context. Invariant: the pointer came from `blosc2_create_*ctx`, is non-null
/// and is freed exactly once, in `Drop`.
pub(crate) struct Context(NonNull<sys::blosc2_context>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer is a live context owned by `self` (type invariant) and is not
        // used after this call.
        unsafe { sys::blosc2_free_ctx(self.0.as_ptr()) }
    }
}

impl Context {
    /// A compression context: byte shuffle, automatic split mode, typesize = element size.
    pub(crate) fn compressor(p: CompressParams) -> Result<Context> {
        init();
        // SAFETY: returns a plain struct of defaults; no preconditions.
        let mut cparams = unsafe { sys::blosc2_get_blosc2_cparams_defaults() };
        cparams.compcode = p.compcode;
        cparams.clevel = p.level;
        cparams.typesize = i32::from(p.typesize);
        cparams.blocksize = p.block_size;
        cparams.nthreads = p.nthreads.max(1);
        cparams.splitmode = sys::BLOSC_AUTO_SPLIT as i32;
        cparams.filters = [0, 0, 0, 0, 0, sys::BLOSC_SHUFFLE as u8];
        // SAFETY: `cparams` is a fully initialised parameter struct (defaults plus plain
        // values; its pointer fields are the defaults' nulls). The result is checked for null.
        let ptr = unsafe { sys::blosc2_create_cctx(cparams) };
        NonNull::new(ptr).map(Context).ok_or(Error::Codec {
            call: "blosc2_create_cctx",
            code: 0,
        })
    }

    /// A decompression context using `nthreads` threads inside one chunk.
    pub(crate) fn decompressor(nthreads: i16) -> Result<Context> {
        init();
        // SAFETY: returns a plain struct of defaults; no preconditions.
        let mut dparams = unsafe { sys::blosc2_get_blosc2_dparams_defaults() };
        dparams.nthreads = nthreads.max(1);
        // SAFETY: `dparams` is fully initialised (defaults plus a thread count).
        let ptr = unsafe { sys::blosc2_create_dctx(dparams) };
        NonNull::new(ptr).map(Context).ok_or(Error::Codec {
            call: "blosc2_create_dctx",
            code: 0,
        })
    }

    /// Compress `src` into `dst`, replacing its contents. The result is a complete blosc2
    /// chunk of at most `src.len() + MAX_OVERHEAD` bytes. `src` must be below 2 GiB (checked).
    pub(crate) fn compress(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result {
        let capacity = src.len() + MAX_OVERHEAD;
        let (src_len, cap) = match (i32::try_from(src.len()), i32::try_from(capacity)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                return Err(Error::invalid(
                    crate::error::Argument::CodecBuffer,
                    src.len(),
                    "below 2 GiB",
                ));
            }
        };
        dst.clear();
        dst.reserve(capacity);
        // SAFETY: the context is live and used by this thread only (`&mut self`); `src` is
        // valid for `src_len` bytes; `dst` has at least `cap` bytes of spare capacity, which
        // c-blosc2 never exceeds (it writes at most `destsize` bytes); the buffers are distinct.
        let written = unsafe {
            sys::blosc2_compress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                cap,
            )
        };
        if written <= 0 {
            // 0 would mean "does not fit", impossible with `src.len() + MAX_OVERHEAD` room.
            return Err(Error::Codec {
                call: "blosc2_compress_ctx",
                code: written,
            });
        }
        let written = written as usize;
        assert!(
            written <= capacity,
            "c-blosc2 reported writing past its buffer"
        );
        // SAFETY: c-blosc2 initialised the first `written` bytes (its return value), and
        // `written <= capacity <= dst.capacity()`.
        unsafe { dst.set_len(written) };
        Ok(())
    }

    /// Decompress the blosc2 chunk `src` into `dst`, which must be exactly its uncompressed
    /// length. The caller has validated `src`'s header against what it expects.
    pub(crate) fn decompress(&mut self, src: &[u8], dst: &mut [u8]) -> Result {
        let (src_len, dst_len) = match (i32::try_from(src.len()), i32::try_from(dst.len())) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                return Err(Error::invalid(
                    crate::error::Argument::CodecBuffer,
                    src.len().max(dst.len()),
                    "below 2 GiB",
                ));
            }
        };
        // SAFETY: the context is live and exclusive to this call; `src` is readable for
        // `src_len` bytes and `dst` writable for `dst_len`; c-blosc2 never writes past
        // `destsize`; the slices cannot overlap (one is shared, one exclusive).
        let n = unsafe {
            sys::blosc2_decompress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                dst_len,
            )
        };
        if n < 0 || n as usize != dst.len() {
            return Err(Error::Codec {
                call: "blosc2_decompress_ctx",
                code: n,
            });
        }
        Ok(())
    }

    /// Decode items `[start, start + dst.len() / typesize)` of the chunk `src` into `dst`,
    /// touching only the blocks that hold them.
    pub(crate) fn get_items(
        &mut self,
        src: &[u8],
        start: usize,
        nitems: usize,
        dst: &mut [u8],
    ) -> Result {
        let conv = (
            i32::try_from(src.len()),
            i32::try_from(start),
            i32::try_from(nitems),
            i32::try_from(dst.len()),
        );
        let (Ok(src_len), Ok(start), Ok(nitems), Ok(dst_len)) = conv else {
            return Err(Error::invalid(
                crate::error::Argument::CodecBuffer,
                start,
                "below 2 GiB",
            ));
        };
        // SAFETY: as for `decompress`; c-blosc2 checks `start + nitems` against the header's
        // `nbytes` and writes at most `destsize` bytes.
        let n = unsafe {
            sys::blosc2_getitem_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                start,
                nitems,
                dst.as_mut_ptr().cast(),
                dst_len,
            )
        };
        if n < 0 || n as usize != dst.len() {
            return Err(Error::Codec {
                call: "blosc2_getitem_ctx",
                code: n,
            });
        }
        Ok(())
    }
}
