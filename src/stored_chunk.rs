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
    made: Made,
    content: Content,
}

/// What a stored chunk was made for, and its payload's CRC-32.
///
/// Invariant: `crc` is the CRC-32 of the payload it travels with, in every [`StoredChunk`]
/// and [`ChunkRef`]: computed from the payload when compressing, checked against it when
/// decoding bytes, and never changed after (the fields are private and nothing mutates
/// them). The checks before a commit and the store rely on it instead of reading the
/// payload again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Made {
    dtype: Dtype,
    index: usize,
    width: usize,
    rows_per_chunk: usize,
    rows: usize,
    /// CRC-32 of the payload (the blosc2 chunk, or the fill bits as 8 little-endian bytes).
    crc: u32,
}

#[derive(Clone, PartialEq, Eq)]
enum Content {
    Fill(u64),
    Blob(Vec<u8>),
}

/// A stored chunk with its payload borrowed (from the encoded bytes, or from a
/// [`StoredChunk`]): what is checked and committed.
#[derive(Clone, Copy)]
struct ChunkRef<'a> {
    made: Made,
    content: store::StoredChunk<'a>,
}

/// The bytes a CRC-32 of `content` covers.
fn payload<'a>(content: &store::StoredChunk<'a>) -> std::borrow::Cow<'a, [u8]> {
    match *content {
        store::StoredChunk::Fill(bits) => bits.to_le_bytes().to_vec().into(),
        store::StoredChunk::Blob(blob) => blob.into(),
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
        let m = &self.made;
        let mut s = f.debug_struct("StoredChunk");
        s.field("dtype", &m.dtype)
            .field("index", &m.index)
            .field("width", &m.width)
            .field("rows_per_chunk", &m.rows_per_chunk)
            .field("rows", &m.rows);
        match &self.content {
            Content::Fill(bits) => s.field("fill_bits", bits),
            Content::Blob(blob) => s.field("compressed_len", &blob.len()),
        };
        s.field("crc", &m.crc).finish()
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
        let made = Made {
            dtype: desc.dtype,
            index,
            width: g.width(),
            rows_per_chunk: g.rows_per_chunk(),
            rows: g.chunk_rows(index),
            crc: 0,
        };
        let crc = crc32(&payload(&content_ref(&content)));
        Ok(StoredChunk {
            made: Made { crc, ..made },
            content,
        })
    }

    /// The chunk with its payload borrowed.
    fn as_ref(&self) -> ChunkRef<'_> {
        ChunkRef {
            made: self.made,
            content: content_ref(&self.content),
        }
    }

    /// Index of the chunk it was made for.
    pub fn index(&self) -> usize {
        self.made.index
    }

    /// Element type of the channel it was made for.
    pub fn dtype(&self) -> Dtype {
        self.made.dtype
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
        self.made.crc
    }

    /// The chunk's uncompressed length in bytes.
    pub fn raw_len(&self) -> usize {
        self.made.rows * self.made.width * self.made.dtype.size()
    }

    /// The stable encoding (see the type's documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let m = &self.made;
        let payload = payload(&content_ref(&self.content));
        let kind = match self.content {
            Content::Blob(_) => KIND_BLOB,
            Content::Fill(_) => KIND_FILL,
        };
        let mut w = LeWriter(Vec::with_capacity(HEADER_LEN + payload.len()));
        w.bytes(&MAGIC)
            .u8(VERSION)
            .u8(kind)
            .u8(m.dtype.code())
            .u8(0);
        w.u64(m.index as u64).u64(m.width as u64);
        // Geometry bounds these (SPEC §5.2): rows per chunk and chunk count fit a u32.
        w.u32(m.rows_per_chunk as u32).u32(m.rows as u32);
        // A blosc2 chunk is below 2 GiB (SPEC §5.2).
        w.u32(payload.len() as u32).u32(m.crc);
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
        let chunk = ChunkRef::parse(bytes)?;
        let content = match chunk.content {
            store::StoredChunk::Fill(bits) => Content::Fill(bits),
            store::StoredChunk::Blob(blob) => Content::Blob(blob.to_vec()),
        };
        Ok(StoredChunk {
            made: chunk.made,
            content,
        })
    }
}

/// `content` borrowed.
fn content_ref(content: &Content) -> store::StoredChunk<'_> {
    match content {
        Content::Fill(bits) => store::StoredChunk::Fill(*bits),
        Content::Blob(blob) => store::StoredChunk::Blob(blob),
    }
}

impl<'a> ChunkRef<'a> {
    /// [`StoredChunk::from_bytes`] without copying the payload.
    fn parse(bytes: &'a [u8]) -> Result<ChunkRef<'a>> {
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
            KIND_BLOB => store::StoredChunk::Blob(payload),
            KIND_FILL => {
                let bits = payload
                    .try_into()
                    .map_err(|_| malformed("fill payload length"))?;
                store::StoredChunk::Fill(u64::from_le_bytes(bits))
            }
            _ => return Err(malformed("kind")),
        };
        let to_usize = |v: u64, what: &'static str| usize::try_from(v).map_err(|_| malformed(what));
        let (index, width) = (to_usize(index, "chunk index")?, to_usize(width, "width")?);
        // `raw_len` must be computable: the product is compared with the channel's later.
        rows.checked_mul(width)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| malformed("chunk size"))?;
        Ok(ChunkRef {
            made: Made {
                dtype,
                index,
                width,
                rows_per_chunk,
                rows,
                crc,
            },
            content,
        })
    }

    /// `Ok` when this chunk may be committed as chunk `index` of the channel `desc`
    /// describes: made for exactly that channel layout and index, and its content passing
    /// every check a reader makes before decoding (SPEC §6 fill rules, §8 step 4). Its
    /// payload matches its CRC by the invariant of [`Made`].
    fn check_for(&self, desc: &ChannelDesc, index: usize) -> Result {
        let (m, g) = (&self.made, &desc.geometry);
        g.check_index(index)?;
        if m.dtype != desc.dtype {
            return Err(refuse(ChunkProblem::Dtype {
                expected: desc.dtype,
                found: m.dtype,
            }));
        }
        if m.index != index {
            return Err(refuse(ChunkProblem::Index {
                expected: index,
                found: m.index,
            }));
        }
        let expected = (g.width(), g.rows_per_chunk(), g.chunk_rows(index));
        let found = (m.width, m.rows_per_chunk, m.rows);
        if found != expected {
            return Err(refuse(ChunkProblem::Geometry { expected, found }));
        }
        let size = desc.dtype.size();
        match self.content {
            store::StoredChunk::Fill(bits) => {
                if size < 8 && bits >> (8 * size) != 0 {
                    return Err(refuse(ChunkProblem::FillBits(bits)));
                }
            }
            store::StoredChunk::Blob(blob) => {
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

    /// Stage the chunk, already checked for chunk `index` of `desc`, in `txn`. The store
    /// records the CRC the chunk carries: a payload damaged in memory after it was checked
    /// is then caught by the first read, where a CRC computed now would vouch for it.
    fn stage_checked(self, txn: &mut store::Txn<'_>, desc: &ChannelDesc, index: usize) -> Result {
        match self.content {
            store::StoredChunk::Fill(bits) => {
                txn.put(desc.id, index, store::StoredChunk::Fill(bits))
            }
            store::StoredChunk::Blob(blob) => {
                txn.put_blob_with_crc(desc.id, index, blob, self.made.crc)
            }
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
    let chunk = chunk.as_ref();
    chunk.check_for(desc, index)?;
    chunk.stage_checked(txn, desc, index)
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
        self.commit_stored(vec![(index, ChunkRef::parse(bytes)?)])
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
        self.commit_stored(chunks.into_iter().map(|(i, c)| (i, c.as_ref())).collect())
    }

    /// Check every chunk of `chunks`, then commit them all at once.
    fn commit_stored(&self, chunks: Vec<(usize, ChunkRef<'_>)>) -> Result {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        self.view()?;
        for (index, chunk) in &chunks {
            chunk.check_for(self.desc(), *index)?;
        }
        let mut txn = self.store.begin()?;
        for (index, chunk) in chunks {
            chunk.stage_checked(&mut txn, self.desc(), index)?;
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
