//! Chunk views with element coordinates, and batches of chunk writes.

use std::marker::PhantomData;

use crate::any_channel::AnyChannel;
use crate::chunk_codec::prepare_chunk;
use crate::error::Result;
use crate::sample::Sample;
use crate::store::Txn;

/// A decoded chunk, read-only, with the coordinates of its elements.
pub struct ChunkRef<'a, T> {
    index: usize,
    start_row: usize,
    width: usize,
    data: &'a [T],
}

/// A decoded chunk that may be modified; written back if [`data_mut`](Self::data_mut) was
/// called.
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
    /// Row of element `i` of this chunk in the channel (in elements, for every element size).
    pub fn y(&self, i: usize) -> usize {
        self.start_row + i / self.width
    }
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
    /// Index of the chunk in its channel.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The chunk's elements, row-major.
    pub fn data(&self) -> &[T] {
        self.data
    }
    /// The chunk's elements for writing; the chunk will be written back.
    pub fn data_mut(&mut self) -> &mut [T] {
        self.modified = true;
        self.data
    }
    /// Whether the chunk will be written back.
    pub fn is_modified(&self) -> bool {
        self.modified
    }
    /// Column of element `i` of this chunk.
    pub fn x(&self, i: usize) -> usize {
        i % self.width
    }
    /// Row of element `i` of this chunk in the channel.
    pub fn y(&self, i: usize) -> usize {
        self.start_row + i / self.width
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

impl<'a, T: Sample> Batch<'a, T> {
    pub(crate) fn new(channel: &'a AnyChannel) -> Result<Self> {
        if !channel.is_writable() {
            return Err(crate::Error::ReadOnly);
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
        let desc = self.txn.desc(self.channel.id)?.clone();
        let prepared = prepare_chunk(
            &desc,
            index,
            bytemuck::cast_slice(data),
            self.channel.threads(),
        )?;
        self.txn.put(self.channel.id, index, &prepared)
    }

    /// Commit every staged chunk at once.
    ///
    /// # Errors
    /// I/O errors, which poison the handle.
    pub fn commit(self) -> Result {
        self.txn.commit()
    }
}

/// Chunk writes to several channels of an [`Image`](crate::Image), committed together by
/// [`commit`](ImageBatch::commit) (readers see all of them or none); dropping the batch
/// discards them.
pub struct ImageBatch<'a, T> {
    txn: Txn<'a>,
    threads: usize,
    _element: PhantomData<fn(T)>,
}

impl<'a, T: Sample> ImageBatch<'a, T> {
    pub(crate) fn new(txn: Txn<'a>, threads: usize) -> Self {
        ImageBatch {
            txn,
            threads,
            _element: PhantomData,
        }
    }

    /// Stage chunk `index` of the channel at position `channel` (checked exactly as
    /// [`Channel::set_chunk`](crate::Channel::set_chunk)).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`](crate::Error::IndexOutOfRange) for a channel or chunk
    /// index; as `set_chunk`. A failed call leaves the batch as it was.
    pub fn set_chunk(&mut self, channel: usize, index: usize, data: &[T]) -> Result {
        let channels = &self.txn.catalog().channels;
        let len = channels.len();
        let desc = channels.get(channel).ok_or(crate::Error::IndexOutOfRange {
            what: "channel",
            index: channel,
            len,
        })?;
        let prepared = prepare_chunk(desc, index, bytemuck::cast_slice(data), self.threads)?;
        let id = desc.id;
        self.txn.put(id, index, &prepared)
    }

    /// Commit every staged chunk at once.
    ///
    /// # Errors
    /// I/O errors, which poison the handle.
    pub fn commit(self) -> Result {
        self.txn.commit()
    }
}
