//! [`StoredChunk`]: one chunk compressed away from the writer (on a worker thread or in
//! another process), carried as bytes, and committed by the writer without decompressing
//! it — after every check a reader would make (SPEC §6, §8) has passed.

use std::fmt;

use crate::any_channel::AnyChannel;
use crate::blosc::ChunkHeader;
use crate::chunk_codec::{Prepared, prepare_chunk};
use crate::error::{Error, Result};
use crate::format::{ChannelDesc, LeReader, LeWriter, crc32};
use crate::sample::{Dtype, Sample};
use crate::store;

/// A chunk as the file stores it — a compressed c-blosc2 chunk, or a fill value when every
/// element is bit-identical (SPEC §6 write rule) — together with what it was made for: the
/// channel's element type and geometry and the chunk's index. Made by
/// [`AnyChannel::compress_chunk_bytes`] (or [`Channel::compress_chunk`](crate::Channel::compress_chunk))
/// on any handle, read-only ones included, without the writer's lock; committed by
/// [`AnyChannel::set_stored_chunk`], which refuses it with [`Error::InvalidStoredChunk`]
/// unless it fits the channel exactly and its blosc2 header passes the reader's checks.
///
/// [`to_bytes`](Self::to_bytes) / [`from_bytes`](Self::from_bytes) give a stable encoding
/// (to send it to another process or pickle it): a 48-byte little-endian header, then the
/// payload.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `CICK` |
/// | 4 | 1 | encoding version, 1 |
/// | 5 | 1 | kind: 1 compressed, 2 fill |
/// | 6 | 1 | element type code (SPEC §5.3) |
/// | 7 | 1 | zero |
/// | 8 | 8 | chunk index |
/// | 16 | 8 | channel width |
/// | 24 | 4 | rows per chunk of the channel |
/// | 28 | 4 | rows of this chunk |
/// | 32 | 4 | payload length |
/// | 36 | 4 | CRC-32 of the payload |
/// | 40 | 4 | CRC-32 of bytes 0–39 |
/// | 44 | 4 | zero |
/// | 48 | … | payload: the c-blosc2 chunk, or the fill bits (8 bytes, zero-extended) |
///
/// ```
/// # fn main() -> compressed_image::Result {
/// use compressed_image::{Channel, Settings, StoredChunk};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("c.cimg");
/// let writer = Channel::<f32>::create_full(&path, 64, 32, 0.0, Settings::default().chunk_size(64 * 4 * 8))?;
/// // A worker compresses on a read-only handle and sends the bytes back.
/// let worker = Channel::<f32>::open_read_only(&path)?;
/// let data: Vec<f32> = (0..64 * 8).map(|i| i as f32).collect();
/// let bytes = worker.compress_chunk(2, &data)?.to_bytes();
/// // The writer checks and commits them without decompressing.
/// writer.set_stored_chunk(2, &StoredChunk::from_bytes(&bytes)?)?;
/// assert_eq!(writer.get_chunk_vec(2)?, data);
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredChunk {
    dtype: Dtype,
    index: usize,
    width: usize,
    rows_per_chunk: usize,
    rows: usize,
    content: Content,
    /// CRC-32 of the payload (the blosc2 chunk, or the fill bits as 8 little-endian bytes).
    crc: u32,
}

#[derive(Clone, PartialEq, Eq)]
enum Content {
    Fill(u64),
    Blob(Vec<u8>),
}

impl Content {
    fn payload(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Content::Fill(bits) => bits.to_le_bytes().to_vec().into(),
            Content::Blob(blob) => blob.as_slice().into(),
        }
    }
}

/// Why a [`StoredChunk`] was refused ([`Error::InvalidStoredChunk`]). New kinds may be added
/// in minor releases.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkProblem {
    /// The bytes are not an encoded stored chunk: `what` names the first field that is
    /// wrong (magic, kind, element type code, a reserved byte, a length).
    Malformed {
        /// The field.
        what: &'static str,
    },
    /// An encoding version this library does not read.
    UnsupportedVersion(u8),
    /// The header's CRC-32 does not match its bytes (damaged in transit).
    HeaderChecksum,
    /// The payload's CRC-32 does not match the one carried with it.
    Checksum {
        /// The CRC-32 carried with the chunk.
        expected: u32,
        /// The CRC-32 of the payload.
        found: u32,
    },
    /// It was made for another element type.
    Dtype {
        /// The channel's element type.
        expected: Dtype,
        /// The chunk's.
        found: Dtype,
    },
    /// It was made for another chunk index.
    Index {
        /// The index it is being set as.
        expected: usize,
        /// The index it was made for.
        found: usize,
    },
    /// It was made for another geometry: `(width, rows per chunk, rows of this chunk)`.
    Geometry {
        /// The channel's.
        expected: (usize, usize, usize),
        /// The chunk's.
        found: (usize, usize, usize),
    },
    /// Fill bits above the element's width are set.
    FillBits(u64),
    /// The c-blosc2 chunk fails a check every reader makes before decoding (SPEC §8 step
    /// 4: versions, header flags, typesize, uncompressed and compressed sizes, block
    /// offsets).
    BloscHeader(String),
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkProblem::Malformed { what } => write!(f, "not an encoded stored chunk ({what})"),
            ChunkProblem::UnsupportedVersion(v) => write!(f, "unsupported encoding version {v}"),
            ChunkProblem::HeaderChecksum => f.write_str("its header fails its checksum"),
            ChunkProblem::Checksum { expected, found } => write!(
                f,
                "its payload's CRC-32 is {found:08x}, the chunk carries {expected:08x}"
            ),
            ChunkProblem::Dtype { expected, found } => {
                write!(f, "made for {found} elements, the channel holds {expected}")
            }
            ChunkProblem::Index { expected, found } => {
                write!(f, "made for chunk {found}, set as chunk {expected}")
            }
            ChunkProblem::Geometry { expected, found } => write!(
                f,
                "made for (width, rows per chunk, rows) {found:?}, the channel has {expected:?}"
            ),
            ChunkProblem::FillBits(bits) => {
                write!(f, "fill bits {bits:#x} set above the element's width")
            }
            ChunkProblem::BloscHeader(reason) => write!(f, "{reason}"),
        }
    }
}

fn refuse(problem: ChunkProblem) -> Error {
    Error::InvalidStoredChunk { problem }
}

fn malformed(what: &'static str) -> Error {
    refuse(ChunkProblem::Malformed { what })
}

const MAGIC: [u8; 4] = *b"CICK";
const VERSION: u8 = 1;
const KIND_BLOB: u8 = 1;
const KIND_FILL: u8 = 2;
/// Bytes of the encoded header; the header CRC covers the bytes before [`HEADER_CRC_AT`].
const HEADER_LEN: usize = 48;
const HEADER_CRC_AT: usize = 40;

impl fmt::Debug for StoredChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("StoredChunk");
        s.field("dtype", &self.dtype)
            .field("index", &self.index)
            .field("width", &self.width)
            .field("rows_per_chunk", &self.rows_per_chunk)
            .field("rows", &self.rows);
        match &self.content {
            Content::Fill(bits) => s.field("fill_bits", bits),
            Content::Blob(blob) => s.field("compressed_len", &blob.len()),
        };
        s.field("crc", &self.crc).finish()
    }
}

impl StoredChunk {
    /// Chunk `index` of the channel `desc` describes, from exactly its bytes.
    fn compress(desc: &ChannelDesc, index: usize, data: &[u8], threads: usize) -> Result<Self> {
        let content = match prepare_chunk(desc, index, data, threads)? {
            Prepared::Fill(bits) => Content::Fill(bits),
            Prepared::Blob(blob) => Content::Blob(blob),
        };
        let g = &desc.geometry;
        Ok(StoredChunk {
            dtype: desc.dtype,
            index,
            width: g.width(),
            rows_per_chunk: g.rows_per_chunk(),
            rows: g.chunk_rows(index),
            crc: crc32(&content.payload()),
            content,
        })
    }

    /// Index of the chunk it was made for.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Element type of the channel it was made for.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The fill value's raw bits (little-endian, zero-extended) when every element of the
    /// chunk is bit-identical; `None` for a compressed chunk.
    pub fn fill_bits(&self) -> Option<u64> {
        match self.content {
            Content::Fill(bits) => Some(bits),
            Content::Blob(_) => None,
        }
    }

    /// The c-blosc2 chunk; `None` for a fill value.
    pub fn compressed(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Blob(blob) => Some(blob),
            Content::Fill(_) => None,
        }
    }

    /// CRC-32 of the payload (the c-blosc2 chunk, or the fill bits as 8 little-endian
    /// bytes), as carried with the chunk.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The chunk's uncompressed length in bytes.
    pub fn raw_len(&self) -> usize {
        self.rows * self.width * self.dtype.size()
    }

    /// The stable encoding (see the type's documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = self.content.payload();
        let kind = match self.content {
            Content::Blob(_) => KIND_BLOB,
            Content::Fill(_) => KIND_FILL,
        };
        let mut w = LeWriter(Vec::with_capacity(HEADER_LEN + payload.len()));
        w.bytes(&MAGIC)
            .u8(VERSION)
            .u8(kind)
            .u8(self.dtype.code())
            .u8(0);
        w.u64(self.index as u64).u64(self.width as u64);
        // Geometry bounds these (SPEC §5.2): rows per chunk and chunk count fit a u32.
        w.u32(self.rows_per_chunk as u32).u32(self.rows as u32);
        // A blosc2 chunk is below 2 GiB (SPEC §5.2).
        w.u32(payload.len() as u32).u32(self.crc);
        let header_crc = crc32(&w.0[..HEADER_CRC_AT]);
        w.u32(header_crc).u32(0);
        w.bytes(&payload);
        w.0
    }

    /// Decode [`to_bytes`](Self::to_bytes)' encoding, checking its structure and both
    /// CRCs. Whether it fits a channel is checked when it is set.
    ///
    /// # Errors
    /// [`Error::InvalidStoredChunk`] saying what is wrong; never panics, whatever the
    /// bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredChunk> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or_else(|| malformed("shorter than the 48-byte header"))?;
        if header[..4] != MAGIC {
            return Err(malformed("magic"));
        }
        if header[4] != VERSION {
            return Err(refuse(ChunkProblem::UnsupportedVersion(header[4])));
        }
        let mut r = LeReader::new(&header[HEADER_CRC_AT..]);
        if r.u32() != crc32(&header[..HEADER_CRC_AT]) {
            return Err(refuse(ChunkProblem::HeaderChecksum));
        }
        if header[7] != 0 || r.u32() != 0 {
            return Err(malformed("reserved bytes"));
        }
        let dtype = Dtype::from_code(header[6]).ok_or_else(|| malformed("element type code"))?;
        let mut r = LeReader::new(&header[8..HEADER_CRC_AT]);
        let (index, width) = (r.u64(), r.u64());
        let (rows_per_chunk, rows) = (r.u32() as usize, r.u32() as usize);
        let (payload_len, crc) = (r.u32() as usize, r.u32());
        let payload = &bytes[HEADER_LEN..];
        if payload.len() != payload_len {
            return Err(malformed("payload length"));
        }
        let found = crc32(payload);
        if found != crc {
            return Err(refuse(ChunkProblem::Checksum {
                expected: crc,
                found,
            }));
        }
        let content = match header[5] {
            KIND_BLOB => Content::Blob(payload.to_vec()),
            KIND_FILL => {
                let bits = payload
                    .try_into()
                    .map_err(|_| malformed("fill payload length"))?;
                Content::Fill(u64::from_le_bytes(bits))
            }
            _ => return Err(malformed("kind")),
        };
        let to_usize = |v: u64, what: &'static str| usize::try_from(v).map_err(|_| malformed(what));
        let (index, width) = (to_usize(index, "chunk index")?, to_usize(width, "width")?);
        // `raw_len` must be computable: the product is compared with the channel's later.
        rows.checked_mul(width)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| malformed("chunk size"))?;
        Ok(StoredChunk {
            dtype,
            index,
            width,
            rows_per_chunk,
            rows,
            content,
            crc,
        })
    }

    /// `Ok` when this chunk may be committed as chunk `index` of the channel `desc`
    /// describes: made for exactly that channel layout and index, its payload matching its
    /// CRC, and its content passing every check a reader makes before decoding (SPEC §6
    /// fill rules, §8 step 4).
    fn check_for(&self, desc: &ChannelDesc, index: usize) -> Result {
        let g = &desc.geometry;
        g.check_index(index)?;
        if self.dtype != desc.dtype {
            return Err(refuse(ChunkProblem::Dtype {
                expected: desc.dtype,
                found: self.dtype,
            }));
        }
        if self.index != index {
            return Err(refuse(ChunkProblem::Index {
                expected: index,
                found: self.index,
            }));
        }
        let expected = (g.width(), g.rows_per_chunk(), g.chunk_rows(index));
        let found = (self.width, self.rows_per_chunk, self.rows);
        if found != expected {
            return Err(refuse(ChunkProblem::Geometry { expected, found }));
        }
        let payload = self.content.payload();
        let crc = crc32(&payload);
        if crc != self.crc {
            return Err(refuse(ChunkProblem::Checksum {
                expected: self.crc,
                found: crc,
            }));
        }
        let size = desc.dtype.size();
        match &self.content {
            Content::Fill(bits) => {
                if size < 8 && bits >> (8 * size) != 0 {
                    return Err(refuse(ChunkProblem::FillBits(*bits)));
                }
            }
            Content::Blob(blob) => {
                let header = ChunkHeader::parse(blob).ok_or_else(|| {
                    refuse(ChunkProblem::BloscHeader(
                        "shorter than a blosc2 header".into(),
                    ))
                })?;
                header
                    .check(blob, g.chunk_bytes_at(index), size)
                    .map_err(|e| {
                        refuse(ChunkProblem::BloscHeader(match e {
                            Error::Corrupted { reason } => reason,
                            other => other.to_string(),
                        }))
                    })?;
            }
        }
        Ok(())
    }

    /// The chunk as the store takes it.
    fn as_stored(&self) -> store::StoredChunk<'_> {
        match &self.content {
            Content::Fill(bits) => store::StoredChunk::Fill(*bits),
            Content::Blob(blob) => store::StoredChunk::Blob(blob),
        }
    }
}

/// Check `chunk` for chunk `index` of `desc` and stage it in `txn` (the batch forms).
pub(crate) fn stage_stored(
    txn: &mut store::Txn<'_>,
    desc: &ChannelDesc,
    index: usize,
    chunk: &StoredChunk,
) -> Result {
    chunk.check_for(desc, index)?;
    txn.put(desc.id, index, chunk.as_stored())
}

impl AnyChannel {
    /// Compress chunk `index` from `data` (exactly [`chunk_size_at(index)`](Self::chunk_size_at)
    /// bytes) with the channel's settings, without writing anything: on any handle,
    /// read-only ones included, and without the writer's lock, so workers can compress in
    /// parallel while one writer commits with [`set_stored_chunk`](Self::set_stored_chunk).
    /// A bitwise-constant chunk becomes a fill value, as [`set_chunk_bytes`](Self::set_chunk_bytes)
    /// stores it.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong length.
    pub fn compress_chunk_bytes(&self, index: usize, data: &[u8]) -> Result<StoredChunk> {
        StoredChunk::compress(self.desc(), index, data, self.threads())
    }

    /// Commit `chunk` as chunk `index` (exactly as [`set_chunk_bytes`](Self::set_chunk_bytes)
    /// does, without compressing or decompressing), once it passes every check: made for
    /// this channel's element type and geometry and for chunk `index`, its payload matching
    /// its CRC-32, and its blosc2 header passing the reader's checks (SPEC §8), so nothing a
    /// reader would refuse is ever committed.
    ///
    /// # Errors
    /// [`Error::InvalidStoredChunk`] saying which check failed; [`Error::IndexOutOfRange`];
    /// as [`set_chunk_bytes`](Self::set_chunk_bytes). Nothing changes on any error.
    pub fn set_stored_chunk(&self, index: usize, chunk: &StoredChunk) -> Result {
        self.set_stored_chunks([(index, chunk)])
    }

    /// [`set_stored_chunk`](Self::set_stored_chunk) from the encoded bytes
    /// ([`StoredChunk::to_bytes`]).
    ///
    /// # Errors
    /// As [`StoredChunk::from_bytes`] and [`set_stored_chunk`](Self::set_stored_chunk).
    pub fn set_stored_chunk_bytes(&self, index: usize, bytes: &[u8]) -> Result {
        self.set_stored_chunk(index, &StoredChunk::from_bytes(bytes)?)
    }

    /// Commit several stored chunks, `(index, chunk)`, as one commit (readers see all of
    /// them or none); every chunk is checked before anything is written. A later chunk for
    /// the same index replaces an earlier one.
    ///
    /// # Errors
    /// As [`set_stored_chunk`](Self::set_stored_chunk); nothing changes on any error.
    pub fn set_stored_chunks<'c>(
        &self,
        chunks: impl IntoIterator<Item = (usize, &'c StoredChunk)>,
    ) -> Result {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        self.view()?;
        let chunks: Vec<(usize, &StoredChunk)> = chunks.into_iter().collect();
        for &(index, chunk) in &chunks {
            chunk.check_for(self.desc(), index)?;
        }
        let mut txn = self.store.begin()?;
        for (index, chunk) in chunks {
            txn.put(self.id(), index, chunk.as_stored())?;
        }
        txn.allow_write_ahead(self.threads() > 1);
        txn.commit()
    }
}

impl<T: Sample> crate::Channel<T> {
    /// Compress chunk `index` from `data` (exactly [`chunk_elems_at(index)`](AnyChannel::chunk_elems_at)
    /// elements) without writing anything; see [`AnyChannel::compress_chunk_bytes`].
    ///
    /// # Errors
    /// As [`AnyChannel::compress_chunk_bytes`].
    pub fn compress_chunk(&self, index: usize, data: &[T]) -> Result<StoredChunk> {
        self.compress_chunk_bytes(index, bytemuck::cast_slice(data))
    }
}
