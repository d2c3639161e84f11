//! Raw c-blosc2 through `blosc2_sys`, with the parameters the crate uses
//! (`src/blosc/ffi.rs`): the baseline the benchmarks compare the crate against. Shared by
//! `benches/core.rs` and `examples/bench_driver.rs` (included by `#[path]`).

use std::ptr::NonNull;
use std::sync::Once;

use blosc2_sys as sys;

/// `blosc2_init` once, from this process's first benchmark setup.
pub fn blosc_init() {
    static INIT: Once = Once::new();
    // SAFETY: `blosc2_init` has no preconditions and returns early once the library is
    // initialised (the crate calls it too). It runs during single-threaded benchmark setup,
    // while no other thread is inside c-blosc2: every crate call made so far has returned.
    INIT.call_once(|| unsafe { sys::blosc2_init() });
}

/// An owned c-blosc2 context; the pointer is non-null and freed once, in `Drop`.
pub struct RawCtx(NonNull<sys::blosc2_context>);

impl Drop for RawCtx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `blosc2_create_*ctx`, is owned by `self` and is not
        // used after this call.
        unsafe { sys::blosc2_free_ctx(self.0.as_ptr()) }
    }
}

impl RawCtx {
    /// A compression context with the crate's default `Settings`: lz4, level 9, 32 KiB
    /// blocks, automatic split, byte shuffle in filter slot 5.
    pub fn compressor(typesize: usize, nthreads: usize) -> RawCtx {
        blosc_init();
        // SAFETY: returns a plain struct of default values; no preconditions.
        let mut cparams = unsafe { sys::blosc2_get_blosc2_cparams_defaults() };
        cparams.compcode = sys::BLOSC_LZ4 as u8;
        cparams.clevel = 9;
        cparams.typesize = typesize as i32;
        cparams.blocksize = 32 * 1024;
        cparams.splitmode = sys::BLOSC_AUTO_SPLIT as i32;
        cparams.filters = [0, 0, 0, 0, 0, sys::BLOSC_SHUFFLE as u8];
        cparams.nthreads = nthreads as i16;
        // SAFETY: `cparams` is fully initialised: the library's defaults (null pointer
        // fields) with plain values set above. The result is checked for null.
        let ptr = unsafe { sys::blosc2_create_cctx(cparams) };
        RawCtx(NonNull::new(ptr).expect("blosc2_create_cctx failed"))
    }

    /// A decompression context with `nthreads` threads.
    pub fn decompressor(nthreads: usize) -> RawCtx {
        blosc_init();
        // SAFETY: returns a plain struct of default values; no preconditions.
        let mut dparams = unsafe { sys::blosc2_get_blosc2_dparams_defaults() };
        dparams.nthreads = nthreads as i16;
        // SAFETY: `dparams` is fully initialised (defaults plus a thread count). The result
        // is checked for null.
        let ptr = unsafe { sys::blosc2_create_dctx(dparams) };
        RawCtx(NonNull::new(ptr).expect("blosc2_create_dctx failed"))
    }

    /// Compress `src` into a new, exactly sized vector.
    pub fn compress(&mut self, src: &[u8]) -> Vec<u8> {
        let cap = src.len() + sys::BLOSC2_MAX_OVERHEAD as usize;
        let mut dst = Vec::<u8>::with_capacity(cap);
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let cap_i32 = i32::try_from(cap).expect("chunk below 2 GiB");
        // SAFETY: the context is live and used by this thread only (`&mut self`); `src` is
        // readable for `src_len` bytes; `dst` has `cap` bytes of spare capacity and c-blosc2
        // writes at most `destsize` bytes; the buffers are distinct allocations.
        let written = unsafe {
            sys::blosc2_compress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                cap_i32,
            )
        };
        assert!(written > 0, "blosc2_compress_ctx returned {written}");
        let written = written as usize;
        assert!(written <= cap);
        // SAFETY: c-blosc2 initialised the first `written` bytes (its return value), and
        // `written <= cap <= dst.capacity()`.
        unsafe { dst.set_len(written) };
        dst
    }

    /// Decompress the blosc2 chunk `src` into `dst` (exactly its uncompressed length).
    pub fn decompress(&mut self, src: &[u8], dst: &mut [u8]) {
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let dst_len = i32::try_from(dst.len()).expect("chunk below 2 GiB");
        // SAFETY: the context is live and used by this thread only (`&mut self`); `src` is a
        // complete chunk produced by `compress` above, readable for `src_len` bytes; `dst` is
        // writable for `dst_len` bytes, which c-blosc2 never exceeds; a shared and an
        // exclusive slice cannot overlap.
        let n = unsafe {
            sys::blosc2_decompress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                src_len,
                dst.as_mut_ptr().cast(),
                dst_len,
            )
        };
        assert_eq!(n, dst_len, "blosc2_decompress_ctx");
    }

    /// Decode items `start .. start + dst.len() / 4` of the f32 chunk `src` into `dst`,
    /// touching only the blocks that hold them (what the crate's `read_rows` calls).
    #[allow(dead_code)] // used by benches/core.rs only
    pub fn get_items_f32(&mut self, src: &[u8], start: usize, dst: &mut [u8]) {
        let src_len = i32::try_from(src.len()).expect("chunk below 2 GiB");
        let dst_len = i32::try_from(dst.len()).expect("chunk below 2 GiB");
        let start = i32::try_from(start).expect("chunk below 2 GiB");
        let nitems = dst_len / 4;
        // SAFETY: as for `decompress`; c-blosc2 checks `start + nitems` against the chunk
        // header's `nbytes` and writes at most `destsize` bytes.
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
        assert_eq!(n, dst_len, "blosc2_getitem_ctx");
    }
}
