//! [`ChunkStorage`]: how each chunk of a channel is kept in the file, for tools that
//! inspect files (`cimg ls`) and for debugging.

use crate::any_channel::AnyChannel;
use crate::error::Result;
use crate::format::TableEntry;

/// How one chunk is stored in a commit (the chunk-table entry of `format/SPEC.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkStorage {
    /// Never written: the chunk reads as the channel's default value, whose raw bits
    /// (little-endian, zero-extended to 64 bits) these are.
    Default {
        /// The default value's bits.
        fill_bits: u64,
    },
    /// A lazy chunk: every element has these raw bits (little-endian, zero-extended).
    Fill {
        /// The value's bits.
        fill_bits: u64,
    },
    /// A compressed c-blosc2 chunk in a record of the file.
    Blob {
        /// File offset of the record header (the chunk follows the 32-byte header).
        offset: u64,
        /// Length of the compressed chunk in bytes.
        compressed_len: usize,
        /// Generation of the commit that wrote it.
        generation: u64,
    },
}

impl AnyChannel {
    /// How every chunk of the channel is stored in the current commit, in chunk order.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`](crate::Error::ChannelRemoved).
    pub fn chunk_storage(&self) -> Result<Vec<ChunkStorage>> {
        let (snap, pos) = self.view()?;
        let default_bits = self.desc().default_fill;
        Ok(snap.tables[pos]
            .iter()
            .map(|entry| match entry {
                TableEntry::Default => ChunkStorage::Default {
                    fill_bits: default_bits,
                },
                TableEntry::Fill { bits, .. } => ChunkStorage::Fill { fill_bits: bits },
                TableEntry::Blob {
                    offset,
                    len,
                    generation,
                    ..
                } => ChunkStorage::Blob {
                    offset,
                    compressed_len: len as usize,
                    generation,
                },
            })
            .collect())
    }
}
