//! Image channels stored as independently compressed c-blosc2 chunks of whole scanlines,
//! persisted in one crash-safe, memory-mapped file.
//!
//! A [`Channel<T>`] is a `width × height` array of `T` split into chunks of whole
//! scanlines; each chunk is a standard c-blosc2 chunk or a lazy fill value. An [`Image<T>`]
//! is several named channels plus JSON metadata in one file; an [`AnyImage`] is the same
//! with an element type per channel (say `f16` colour beside `u32` ids), and
//! [`AnyChannel`] a channel whose type is known at run time. Reads decompress straight
//! from the file mapping into the caller's buffer; every write appends and commits
//! copy-on-write, so a crash never loses a committed chunk and readers in other processes
//! always see one consistent commit. The byte layout is specified in `format/SPEC.md`.
//!
//! ```
//! use compressed_image::{Channel, Settings};
//!
//! # fn main() -> compressed_image::Result {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("mask.cimg");
//! // A 4096 × 4096 f32 channel of zeros: lazy, nothing is compressed or allocated.
//! let mask = Channel::<f32>::create_full(&path, 4096, 4096, 0.0, Settings::default())?;
//! let mut chunk = vec![0.0f32; mask.chunk_elems_at(3)?];
//! chunk.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32);
//! mask.set_chunk(3, &chunk)?; // compressed, appended and committed
//! mask.sync()?; // durable
//!
//! // Another process (or thread) reads a consistent snapshot.
//! let reader = Channel::<f32>::open_read_only(&path)?;
//! let mut out = vec![0.0f32; reader.chunk_elems_at(3)?];
//! reader.get_chunk(3, &mut out)?;
//! assert_eq!(out, chunk);
//! # Ok(()) }
//! ```
//!
//! # Mapping from the original library
//!
//! | compressed-image (C++ / Python) | this crate |
//! |---|---|
//! | `channel<T>(data, w, h, codec, level, block, chunk)` | [`Channel::new`] (anonymous), [`Channel::create`] (file), with [`Settings`] |
//! | `zeros`, `full`, `zeros_like`, `full_like` | same names; [`Channel::create_full`] for a file |
//! | `get_chunk(buffer, i)` / `set_chunk(buffer, i)` | [`Channel::get_chunk`]`(i, &mut buf)` / [`Channel::set_chunk`]`(i, &buf)` |
//! | `get_decompressed()` | [`Channel::get_decompressed`], [`Channel::decompress_into`] |
//! | `chunk_size()`, `chunk_size(i)`, `chunk_elems()`, `chunk_elems(i)` | [`AnyChannel::chunk_size`], [`AnyChannel::chunk_size_at`], [`AnyChannel::chunk_elems`], [`AnyChannel::chunk_elems_at`] |
//! | `compression()`, `compression_level()`, `block_size()` | [`AnyChannel::codec`], [`AnyChannel::level`], [`AnyChannel::block_size`] |
//! | `compressed_bytes()`, `uncompressed_size()` (elements), `num_chunks()` | same names |
//! | `update_nthreads(n, block)` | [`AnyChannel::set_threads`] (never changes the block size; 0 is an error) |
//! | iterating `chunk_span`s with `x(i)`, `y(i)` | [`Channel::update_chunks`], [`Channel::for_each_chunk`] with [`ChunkMut::rows_mut`], [`ChunkMut::iter_mut_xy`] |
//! | `image<T>` (channels, names, metadata) | [`Image`]; [`AnyImage`] for channels of different types |
//! | `image<T>::read(path, [postprocess,] subimage, channels…)` (through OpenImageIO) | [`Image::read`], [`AnyImage::read`] (each channel's own type), [`AnyImage::read_with`] (post-process), with [`ReadOptions`]: OpenEXR, TIFF, PNG, JPEG |
//! | Python `Image.dtype_from_file(path)`, `Image.dtypes_from_file(path)` | [`AnyImage::read_info`] ([`ImageFileInfo::dtypes`]: one per channel) |
//! | — | [`AnyImage::write`] with [`WriteOptions`]: OpenEXR, TIFF and PNG export; [`AnyImage::preview`]: PNG thumbnails |
//! | — | [`Channel::read_region`], [`Channel::write_region`]; `ndarray` views with the `ndarray` feature |
//! | — | files: `create`/`open`/`open_read_only`, [`AnyChannel::refresh`], [`AnyChannel::sync`], [`AnyChannel::save_as`], [`AnyChannel::stats`], [`Channel::batch`] |
//! | — | [`StoredChunk`]: a chunk compressed on any handle ([`AnyChannel::compress_chunk_bytes`], [`Channel::compress_chunk`]), even read-only or in another process, and committed by the writer without decompressing ([`AnyChannel::set_stored_chunk`], [`AnyChannel::set_stored_chunks`], [`Batch::set_stored_chunk`]) |
//! | — | [`SnapshotId`]: the commit a handle reads ([`AnyChannel::snapshot_id`]), opened again in any process however many commits follow ([`AnyImage::open_snapshot`], [`Channel::open_snapshot`], …) |
//! | — | [`Progress`] observers (progress and cancellation) on compaction, `save_as`, `verify`, whole-channel decompression, adding a channel from data and image-file import, export and preview: the `*_with_progress` methods |
//!
//! # Deviations from the original, on purpose
//!
//! - Width or height 0, a level above 9, a thread count of 0, a chunk above c-blosc2's
//!   2 GiB limit and an out-of-range index are errors (the original crashes, clamps or
//!   reads out of bounds).
//! - `set_chunk` checks the exact length of every chunk, the last included, *before*
//!   changing anything.
//! - The chunk size is capped to the channel size, as the original documentation promises,
//!   and a chunk size below one scanline gives one scanline per chunk (the original fails).
//! - A `set_chunk` whose elements are bitwise identical is stored as a lazy fill entry.
//! - Element coordinates `x(i)`, `y(i)` are right for every element size.
//! - Image channel handles never dangle: after removal, reads and writes return
//!   [`Error::ChannelRemoved`] (the channel's fixed properties still answer).
//! - Names: a names count other than 0 or the channel count is an error, not a printed
//!   warning; naming a channel in an unnamed image names the others `""` instead of
//!   dropping the name.
//! - [`AnyImage::compression_ratio`] is bytes over bytes.
//! - [`AnyImage::read`] decodes OpenEXR, TIFF, PNG and JPEG itself, where the original goes
//!   through OpenImageIO: pixels are stored as the file holds them (OpenImageIO premultiplies
//!   unassociated alpha by default), OpenEXR attributes keep their OpenEXR names, and
//!   luminance/chroma OpenEXR, palette and CMYK TIFF files are refused with a typed
//!   error; channel order, names and conversions follow OpenImageIO.
//!
//! # Durability and processes
//!
//! Each write commits at once: handles sharing the writer's open file (its clones, and
//! channel handles taken from the same image) see it immediately; every other handle, a
//! separate read-only open in this process or any handle in another process, after
//! [`refresh`](AnyChannel::refresh). A killed process loses nothing committed. Commits survive power loss once [`sync`](AnyChannel::sync) returns (dropping
//! a read-write handle of a named file syncs); a power loss before that opens at an earlier
//! complete commit. [`Durability::Immediate`] syncs every commit. One process writes a file
//! at a time (a second writer gets [`Error::Locked`]); any number read.
//!
//! # Anonymous channels and images
//!
//! Handles made without a path ([`Channel::new`], [`Channel::zeros`], [`Image::new`], …)
//! use the same format in a file nobody names. By default that file is in memory (a memfd
//! on Linux), as the original library keeps its chunks in RAM: copy-on-write rewrites then
//! cost no disk write-back, which under load from other processes on the same disk made a
//! `set_chunk` loop several times slower in an unlinked temporary file. Once a store's
//! bytes would pass a threshold (an eighth of the RAM by default) it moves to an unlinked
//! temporary file, so memory stays bounded; readers in other threads are not disturbed.
//! [`AnonymousBacking`] chooses this per process or per handle
//! ([`AnyChannel::set_anonymous_backing`]); [`Stats::in_memory`] tells where a store is.
//! Superseded chunks count until a [`compact`](AnyChannel::compact)ion, which puts a
//! store back in memory if its live bytes fit.
//!
//! # Safety model
//!
//! Reads form slices over a shared read-only mapping, but only over bytes of a validated
//! commit, which no writer following the protocol ever changes, and the file never
//! shrinks in place. Every offset, length and checksum is verified before a byte is used,
//! so a damaged or hostile file gives an error, not undefined behaviour (a chunk's CRC-32
//! on its first read through a handle, or on every read with
//! [`ChecksumPolicy::EveryRead`]). What remains is noted on each `open*` function: a
//! program outside the protocol that truncates or overwrites a mapped file can make a
//! read fault with SIGBUS. Checksums catch accidents, not forgery: the bundled c-blosc2
//! has known out-of-bounds reads on crafted chunks, so decode files from untrusted
//! sources in a sandbox. `unsafe` lives in two files, the mapping and the c-blosc2 FFI;
//! the crate denies `unsafe_code` everywhere else.
//!
//! # It is not
//!
//! A multi-writer store, an async API, or a tiled format (chunks are whole scanlines).
//! Network file systems are unsupported for concurrent use. Big-endian hosts are not
//! supported yet.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// `unsafe` is allowed in exactly two modules: `io::mmap` (the file mapping) and `blosc::ffi`
// (the c-blosc2 calls).
#![deny(unsafe_code)]

// Writer locks (`flock`), positioned reads and writes (`FileExt`), inode checks and file
// permissions use Unix APIs.
#[cfg(not(unix))]
compile_error!("compressed-image supports Unix targets only (Linux, macOS, the BSDs)");

#[cfg(target_endian = "big")]
compile_error!(
    "compressed-image stores little-endian elements and does not support big-endian hosts yet"
);

mod any_channel;
mod any_image;
mod blosc;
mod channel;
mod chunk_codec;
mod chunk_storage;
mod chunks;
mod error;
mod export;
mod file_methods;
mod format;
mod geometry;
mod image;
mod import;
mod info;
mod io;
#[cfg(feature = "ndarray")]
mod ndarray_views;
mod progress;
mod region;
mod sample;
mod settings;
mod snapshot_id;
mod store;
mod stored_chunk;
mod threads;

pub use any_channel::AnyChannel;
pub use any_image::AnyImage;
pub use channel::Channel;
pub use chunk_storage::ChunkStorage;
pub use chunks::{AnyImageBatch, Batch, ChunkMut, ChunkRef, ImageBatch};
pub use error::{Argument, Error, Result};
pub use export::{
    DEFAULT_PREVIEW_SIZE, ExrCompression, ImageFormat, PreviewOptions, SampleDepth,
    TiffCompression, Transfer, WriteOptions,
};
pub use format::{FORMAT_MAJOR, FORMAT_MINOR};
pub use geometry::{Geometry, MAX_CHUNK_BYTES};
pub use half::f16;
pub use image::Image;
pub use import::{
    ChannelSelection, Destination, ImageFileError, ImageFileInfo, ImportedChunk, ReadOptions,
};
pub use info::{ChannelInfo, FileInfo, inspect};
pub use io::Backend;
#[cfg(feature = "ndarray")]
pub use ndarray;
pub use progress::{NoProgress, Progress};
pub use region::Region;
pub use sample::{Dtype, Sample};
/// The `serde_json` this crate's metadata uses, so callers need no matching version.
pub use serde_json;
pub use settings::{Codec, DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, Settings};
pub use snapshot_id::SnapshotId;
pub use store::{
    AnonymousBacking, AutoCompact, ChecksumPolicy, Compaction, Durability, Stats, Verification,
    WrapBackend,
};
pub use stored_chunk::{ChunkProblem, StoredChunk};
