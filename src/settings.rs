//! Compression settings of a channel: codec, level and block size.

use std::fmt;

use crate::error::{Error, Result};

/// Default requested chunk size in bytes (4 MiB), as in the original library.
pub const DEFAULT_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Default blosc2 block size in bytes (32 KiB), as in the original library.
pub const DEFAULT_BLOCK_SIZE: usize = 32 * 1024;
/// Default compression level.
pub const DEFAULT_LEVEL: u8 = 9;
/// Largest block size c-blosc2 accepts (`BLOSC2_MAXBLOCKSIZE`).
pub const MAX_BLOCK_SIZE: usize = 536_866_816;

/// The compressor inside each blosc2 chunk. The discriminants are the file's codec codes
/// and, for the first four, the original library's `Codec` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// BloscLZ.
    Blosclz = 0,
    /// LZ4 (the default).
    #[default]
    Lz4 = 1,
    /// LZ4 high compression.
    Lz4hc = 2,
    /// Zstandard. c-blosc2 turns levels 1–8 into zstd levels `2 × level − 1` (1, 3, …, 15)
    /// and level 9 into zstd's maximum, 22, so the default level 9 is very slow with zstd: a
    /// 3 MB `f32` channel took 11.3 s to compress at level 9 and 0.28 s at level 8. The
    /// original library passes its level to c-blosc2 the same way, so this is kept; choose
    /// level 8 or lower unless the last bytes of size matter.
    Zstd = 3,
    /// zlib (zlib-ng). Not in the original library.
    Zlib = 4,
}

impl Codec {
    /// Every codec, in code order.
    pub const ALL: [Codec; 5] = [
        Codec::Blosclz,
        Codec::Lz4,
        Codec::Lz4hc,
        Codec::Zstd,
        Codec::Zlib,
    ];

    /// The file code of this codec.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The codec a file code stands for, if any.
    pub fn from_code(code: u8) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The c-blosc2 API constant (`BLOSC_BLOSCLZ`, …) for this codec.
    pub(crate) const fn blosc_compcode(self) -> u8 {
        match self {
            Codec::Blosclz => 0,
            Codec::Lz4 => 1,
            Codec::Lz4hc => 2,
            Codec::Zlib => 4,
            Codec::Zstd => 5,
        }
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Blosclz => "blosclz",
            Codec::Lz4 => "lz4",
            Codec::Lz4hc => "lz4hc",
            Codec::Zstd => "zstd",
            Codec::Zlib => "zlib",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a channel compresses its chunks and how large the chunks are.
///
/// Built with [`Settings::default`] (lz4, level 9, 32 KiB blocks, 4 MiB chunks — the
/// original library's defaults) and the setters; checked by [`Settings::validate`] when a
/// channel is created. With [`Codec::Zstd`] the default level 9 means zstd's slowest level,
/// 22: about 40 times slower than level 8 (see [`Codec::Zstd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Compressor.
    pub codec: Codec,
    /// Compression level, 0 (store raw) to 9.
    pub level: u8,
    /// Requested blosc2 block size in bytes; 0 lets blosc2 choose.
    pub block_size: usize,
    /// Requested chunk size in bytes; rounded down to whole scanlines, at least one (a
    /// scanline wider than the request makes a chunk of its own), and capped to the channel
    /// size (see [`crate::Geometry`]).
    pub chunk_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            codec: Codec::Lz4,
            level: DEFAULT_LEVEL,
            block_size: DEFAULT_BLOCK_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl Settings {
    /// Set the codec.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// Set the compression level (0–9).
    pub fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }
    /// Set the requested block size in bytes (0 = automatic).
    pub fn block_size(mut self, block_size: usize) -> Self {
        self.block_size = block_size;
        self
    }
    /// Set the requested chunk size in bytes.
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Check the codec settings (the chunk size is checked against the geometry).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a level above 9 or a block size above c-blosc2's
    /// limit.
    pub fn validate(&self) -> Result {
        check_level(self.level)?;
        if self.block_size > MAX_BLOCK_SIZE {
            return Err(Error::invalid(
                crate::error::Argument::BlockSize,
                self.block_size,
                format!("at most {MAX_BLOCK_SIZE} bytes"),
            ));
        }
        Ok(())
    }
}

/// Levels run from 0 to 9; anything else is an error, never a silent clamp.
pub(crate) fn check_level(level: u8) -> Result {
    if level > 9 {
        return Err(Error::invalid(
            crate::error::Argument::CompressionLevel,
            level,
            "0 to 9",
        ));
    }
    Ok(())
}
