//! Fuzz harness shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and by the
//! replay test `tests/fuzz_corpus.rs`, which `#[path]`-include this module.
//!
//! Every entry point takes the raw fuzzer input and must return normally for every input:
//! a panic (a failed check of a library contract, or a panic inside the library) or an
//! abort is a finding. Inputs are decoded by [`Input`], a small byte cursor, rather than
//! with the `arbitrary` crate, so that `cargo test` of the main crate (which does not
//! depend on `arbitrary`) decodes the committed seeds exactly as the fuzzer does.

#![allow(dead_code, unused_imports)]

/// The shared test kit (format parser and patchers, RNG, fault backend, image model).
#[path = "../../tests/common/mod.rs"]
pub mod common;
pub mod import;
pub mod mutate;
pub mod ops;
pub mod read;

use std::path::{Path, PathBuf};

pub use import::import_file;
pub use mutate::open_mutated;
pub use ops::ops_faults;
pub use read::open_read;

/// A cursor over fuzzer bytes. Reads past the end yield zeros, so every input decodes.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte, or 0 past the end.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A value in `0..n` (`n >= 1`) from one byte.
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }

    /// Up to `max` bytes: a length byte, then that many bytes (fewer at the end).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}

/// Elements from their little-endian bytes (`bytes.len()` a multiple of the size).
pub fn from_bytes<T: compressed_image::Sample>(bytes: &[u8]) -> Vec<T> {
    let mut out = vec![T::zeroed(); bytes.len() / std::mem::size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    out
}

/// Whether known findings (listed in `fuzz/README.md`) fail the run instead of being
/// tolerated: set the environment variable `CIMG_FUZZ_STRICT` to any value.
pub fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("CIMG_FUZZ_STRICT").is_some())
}

/// Bytes of output buffers one input may make the harness allocate (hostile files may
/// declare channels of gigabytes; the library itself must cope, but the harness does not
/// try to decompress them).
pub const BUDGET: usize = 16 << 20;

/// A fresh private directory for one run, in `/dev/shm` when it exists (no disk I/O),
/// removed when dropped.
pub fn run_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base: PathBuf = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("cimg-fuzz-")
        .tempdir_in(base)
        .expect("temporary directory for a fuzz run")
}

/// Deterministic bytes for chunk contents: incompressible noise or, when `seed` is even,
/// a compressible ramp.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    if seed.is_multiple_of(2) {
        return (0..n).map(|i| (i / 3) as u8 ^ (seed >> 8) as u8).collect();
    }
    common::rng::noise(seed, n)
}
