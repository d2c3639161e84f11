//! Chunk views with element coordinates, and batches of chunk writes.

use std::fmt;
use std::marker::PhantomData;

use crate::any_channel::AnyChannel;
use crate::any_image::channel_dtype_mismatch;
use crate::chunk_codec::prepare_chunk;
use crate::error::{Error, Result};
use crate::format::ChannelDesc;
use crate::sample::{Dtype, Sample};
use crate::store::{Store, Txn};
use crate::stored_chunk::{StoredChunk, stage_stored};

/// Scanlines paired with their row numbers, the first being `start_row`.
fn numbered<R>(
    start_row: usize,
    rows: impl ExactSizeIterator<Item = R>,
) -> impl ExactSizeIterator<Item = (usize, R)> {
    rows.enumerate().map(move |(i, row)| (start_row + i, row))
}

/// The read-only accessors [`ChunkRef`] and [`ChunkMut`] share; both hold `index`,
/// `start_row` (the chunk's first row in the channel), `width` and `data` (whole scanlines
/// of `width` elements, row-major).
macro_rules! chunk_read_accessors {
    () => {
        /// Index of the chunk in its channel.
        pub fn index(&self) -> usize {
            self.index
        }
        /// The chunk's elements, row-major.
        pub fn data(&self) -> &[T] {
            self.data
        }
        /// Column of element `i` of this chunk (chunks are whole scanlines).
        pub fn x(&self, i: usize) -> usize {
            i % self.width
        }
        /// Row of element `i` of this chunk in the channel (in elements, for every element
        /// size).
        pub fn y(&self, i: usize) -> usize {
            self.start_row + i / self.width
        }
        /// Width of the channel: the length of every row of the chunk.
        pub fn width(&self) -> usize {
            self.width
        }
        /// The chunk's scanlines with their row numbers in the channel, read-only.
        pub fn rows(&self) -> impl ExactSizeIterator<Item = (usize, &[T])> {
            numbered(self.start_row, self.data.chunks_exact(self.width))
        }
    };
}

/// A decoded chunk, read-only, with the coordinates of its elements.
pub struct ChunkRef<'a, T> {
    index: usize,
    start_row: usize,
    width: usize,
    data: &'a [T],
}

/// A decoded chunk that may be modified; written back if it was borrowed mutably (through
/// [`data_mut`](Self::data_mut), [`rows_mut`](Self::rows_mut) or
/// [`iter_mut_xy`](Self::iter_mut_xy)).
///
/// To write elements by coordinate, iterate with [`rows_mut`](Self::rows_mut) or
/// [`iter_mut_xy`](Self::iter_mut_xy): they hand out the coordinates together with the
/// mutable elements (calling [`x`](Self::x) and [`y`](Self::y) while holding
/// [`data_mut`](Self::data_mut) would borrow the chunk twice).
///
/// ```
/// # fn main() -> compressed_image::Result {
/// use compressed_image::{Channel, Settings};
///
/// let c = Channel::<u16>::zeros(64, 48, Settings::default().chunk_size(64 * 2 * 8))?;
/// c.update_chunks(|chunk| {
///     for (x, y, v) in chunk.iter_mut_xy() {
///         *v = (x + 100 * y) as u16;
///     }
///     Ok(())
/// })?;
/// assert_eq!(c.get_decompressed()?[3 * 64 + 5], 305);
/// # Ok(()) }
/// ```
pub struct ChunkMut<'a, T> {
    index: usize,
    start_row: usize,
    width: usize,
    data: &'a mut [T],
    modified: bool,
}

impl<'a, T> ChunkRef<'a, T> {
    pub(crate) fn new(index: usize, start_row: usize, width: usize, data: &'a [T]) -> Self {
        ChunkRef {
            index,
            start_row,
            width,
            data,
        }
    }
    chunk_read_accessors!();
}

impl<'a, T> ChunkMut<'a, T> {
    pub(crate) fn new(index: usize, start_row: usize, width: usize, data: &'a mut [T]) -> Self {
        ChunkMut {
            index,
            start_row,
            width,
            data,
            modified: false,
        }
    }
    chunk_read_accessors!();
    /// The chunk's elements for writing; the chunk will be written back.
    pub fn data_mut(&mut self) -> &mut [T] {
        self.modified = true;
        self.data
    }
    /// Whether the chunk will be written back.
    pub fn is_modified(&self) -> bool {
        self.modified
    }
    /// The chunk's scanlines for writing, with their row numbers in the channel; the
    /// chunk will be written back.
    pub fn rows_mut(&mut self) -> impl ExactSizeIterator<Item = (usize, &mut [T])> {
        let (start_row, width) = (self.start_row, self.width);
        numbered(start_row, self.data_mut().chunks_exact_mut(width))
    }
    /// Every element for writing with its column and row in the channel, row-major; the
    /// chunk will be written back.
    pub fn iter_mut_xy(&mut self) -> impl ExactSizeIterator<Item = (usize, usize, &mut T)> {
        let (start_row, width) = (self.start_row, self.width);
        self.data_mut()
            .iter_mut()
            .enumerate()
            .map(move |(i, v)| (i % width, start_row + i / width, v))
    }
}

/// Chunk writes to one channel, committed together by [`commit`](Batch::commit); dropping
/// the batch discards them. Compressed chunks stream to the file as they are set, so a
/// batch holds at most one chunk in memory. While a batch is open, other threads' writes
/// to the same file wait; reads see the last commit.
pub struct Batch<'a, T> {
    txn: Txn<'a>,
    channel: &'a AnyChannel,
    _element: PhantomData<fn(T)>,
}

impl<T: Sample> fmt::Debug for Batch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("channel", self.channel)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Sample> Batch<'a, T> {
    pub(crate) fn new(channel: &'a AnyChannel) -> Result<Self> {
        if !channel.is_writable() {
            return Err(Error::ReadOnly);
        }
        Ok(Batch {
            txn: channel.store.begin()?,
            channel,
            _element: PhantomData,
        })
    }

    /// Stage chunk `index` (checked exactly as [`Channel::set_chunk`](crate::Channel::set_chunk)).
    ///
    /// # Errors
    /// As `set_chunk`; a failed call leaves the batch as it was.
    pub fn set_chunk(&mut self, index: usize, data: &[T]) -> Result {
        self.txn.desc(self.channel.id())?;
        let prepared = prepare_chunk(
            self.channel.desc(),
            index,
            bytemuck::cast_slice(data),
            self.channel.threads(),
        )?;
        self.txn.put(self.channel.id(), index, &prepared)
    }

    /// Stage a chunk compressed elsewhere (checked exactly as
    /// [`AnyChannel::set_stored_chunk`]).
    ///
    /// # Errors
    /// As `set_stored_chunk`; a failed call leaves the batch as it was.
    pub fn set_stored_chunk(&mut self, index: usize, chunk: &StoredChunk) -> Result {
        self.txn.desc(self.channel.id())?;
        stage_stored(&mut self.txn, self.channel.desc(), index, chunk)
    }

    /// Commit every staged chunk at once.
    ///
    /// # Errors
    /// I/O errors, which poison the handle.
    pub fn commit(mut self) -> Result {
        self.txn.allow_write_ahead(self.channel.threads() > 1);
        self.txn.commit()
    }
}

/// Chunk writes to channels of any element type of an [`AnyImage`](crate::AnyImage),
/// committed together by [`commit`](AnyImageBatch::commit) (readers see all of them or
/// none); dropping the batch discards them.
pub struct AnyImageBatch<'a> {
    store: &'a Store,
    txn: Txn<'a>,
    threads: usize,
}

impl fmt::Debug for AnyImageBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let catalog = self.txn.catalog();
        let dtypes: Vec<Dtype> = catalog.channels.iter().map(|c| c.dtype).collect();
        f.debug_struct("AnyImageBatch")
            .field("path", &self.store.path())
            .field("width", &catalog.width)
            .field("height", &catalog.height)
            .field("dtypes", &dtypes)
            .finish_non_exhaustive()
    }
}

impl<'a> AnyImageBatch<'a> {
    pub(crate) fn new(store: &'a Store, threads: usize) -> Result<Self> {
        Ok(AnyImageBatch {
            store,
            txn: store.begin()?,
            threads,
        })
    }

    /// Stage chunk `index` of the channel at position `channel` from its raw bytes
    /// (checked exactly as [`AnyChannel::set_chunk_bytes`]).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a channel or chunk index; as `set_chunk_bytes`. A
    /// failed call leaves the batch as it was.
    pub fn set_chunk_bytes(&mut self, channel: usize, index: usize, data: &[u8]) -> Result {
        self.stage(channel, None, index, data)
    }

    /// Stage chunk `index` of the channel at position `channel`, which must hold `T`
    /// (checked exactly as [`Channel::set_chunk`](crate::Channel::set_chunk)).
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`] when the channel holds another type; as
    /// [`set_chunk_bytes`](Self::set_chunk_bytes).
    pub fn set_chunk<T: Sample>(&mut self, channel: usize, index: usize, data: &[T]) -> Result {
        self.stage(channel, Some(T::DTYPE), index, bytemuck::cast_slice(data))
    }

    /// Stage a chunk compressed elsewhere as chunk `index` of the channel at position
    /// `channel` (checked exactly as [`AnyChannel::set_stored_chunk`]).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a channel index; as `set_stored_chunk`. A failed call
    /// leaves the batch as it was.
    pub fn set_stored_chunk(
        &mut self,
        channel: usize,
        index: usize,
        chunk: &StoredChunk,
    ) -> Result {
        let desc = self.desc_at(channel)?.clone();
        stage_stored(&mut self.txn, &desc, index, chunk)
    }

    /// The descriptor of the channel at position `channel`, as this batch sees it.
    fn desc_at(&self, channel: usize) -> Result<&ChannelDesc> {
        let channels = &self.txn.catalog().channels;
        channels.get(channel).ok_or(Error::IndexOutOfRange {
            what: "channel",
            index: channel,
            len: channels.len(),
        })
    }

    fn stage(&mut self, channel: usize, dtype: Option<Dtype>, index: usize, data: &[u8]) -> Result {
        let desc = self.desc_at(channel)?;
        if let Some(expected) = dtype
            && desc.dtype != expected
        {
            return Err(channel_dtype_mismatch(
                self.txn.catalog(),
                channel,
                expected,
            ));
        }
        let prepared = prepare_chunk(desc, index, data, self.threads)?;
        let id = desc.id;
        self.txn.put(id, index, &prepared)
    }

    /// Commit every staged chunk at once.
    ///
    /// # Errors
    /// I/O errors, which poison the handle.
    pub fn commit(mut self) -> Result {
        self.txn.allow_write_ahead(self.threads > 1);
        self.txn.commit()
    }
}

/// Chunk writes to several channels of an [`Image`](crate::Image), committed together by
/// [`commit`](ImageBatch::commit) (readers see all of them or none); dropping the batch
/// discards them.
pub struct ImageBatch<'a, T> {
    any: AnyImageBatch<'a>,
    _element: PhantomData<fn(T)>,
}

impl<T: Sample> fmt::Debug for ImageBatch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageBatch")
            .field("dtype", &T::DTYPE)
            .field("batch", &self.any)
            .finish()
    }
}

impl<'a, T: Sample> ImageBatch<'a, T> {
    pub(crate) fn new(any: AnyImageBatch<'a>) -> Self {
        ImageBatch {
            any,
            _element: PhantomData,
        }
    }

    /// Stage chunk `index` of the channel at position `channel` (checked exactly as
    /// [`Channel::set_chunk`](crate::Channel::set_chunk)).
    ///
    /// # Errors
    /// As [`AnyImageBatch::set_chunk`]. A failed call leaves the batch as it was.
    pub fn set_chunk(&mut self, channel: usize, index: usize, data: &[T]) -> Result {
        self.any.set_chunk(channel, index, data)
    }

    /// Stage a chunk compressed elsewhere; see [`AnyImageBatch::set_stored_chunk`].
    ///
    /// # Errors
    /// As [`AnyImageBatch::set_stored_chunk`]. A failed call leaves the batch as it was.
    pub fn set_stored_chunk(
        &mut self,
        channel: usize,
        index: usize,
        chunk: &StoredChunk,
    ) -> Result {
        self.any.set_stored_chunk(channel, index, chunk)
    }

    /// Commit every staged chunk at once.
    ///
    /// # Errors
    /// I/O errors, which poison the handle.
    pub fn commit(self) -> Result {
        self.any.commit()
    }
}
