//! [`Channel<T>`]: the original library's `channel<T>`, persisted in a file.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;

use crate::any_channel::{AnyChannel, check_data_len};
use crate::chunk_codec::read_chunk;
use crate::chunks::{Batch, ChunkMut, ChunkRef};
use crate::error::{Error, Result};
use crate::region::Region;
use crate::sample::{Sample, fill_bits};
use crate::settings::Settings;
use crate::store::{Access, no_wrap};

/// One image channel of element type `T`: a `width × height` array stored as independently
/// compressed chunks of whole scanlines in a memory-mapped file.
///
/// Constructors without a path ([`new`](Self::new), [`zeros`](Self::zeros),
/// [`full`](Self::full), …) make an anonymous channel: in memory, moved to an unlinked
/// temporary file once it grows past a threshold, so memory stays bounded whatever its size
/// (see [`AnonymousBacking`](crate::AnonymousBacking));
/// [`save_as`](AnyChannel::save_as) keeps a copy. Every introspection and file method of
/// [`AnyChannel`] is available through `Deref`.
#[derive(Clone)]
pub struct Channel<T: Sample> {
    any: AnyChannel,
    _element: PhantomData<fn() -> T>,
}

impl<T: Sample> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.any.debug_as("Channel", f)
    }
}

impl<T: Sample> Deref for Channel<T> {
    type Target = AnyChannel;
    fn deref(&self) -> &AnyChannel {
        &self.any
    }
}

impl<T: Sample> Channel<T> {
    /// Type an untyped handle.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] when the channel holds another element type.
    pub fn try_from_any(any: AnyChannel) -> Result<Channel<T>> {
        let found = any.dtype();
        if found != T::DTYPE {
            return Err(Error::DtypeMismatch {
                expected: T::DTYPE,
                found,
            });
        }
        Ok(Channel::from_any_unchecked(any))
    }

    /// Type a handle whose element type the caller has checked to be `T`.
    pub(crate) fn from_any_unchecked(any: AnyChannel) -> Channel<T> {
        debug_assert_eq!(any.dtype(), T::DTYPE);
        Channel {
            any,
            _element: PhantomData,
        }
    }

    /// The untyped handle.
    pub fn into_any(self) -> AnyChannel {
        self.any
    }

    fn lazy(
        path: Option<&Path>,
        width: usize,
        height: usize,
        fill: T,
        settings: Settings,
    ) -> Result<Channel<T>> {
        let any = AnyChannel::create_with(
            path,
            T::DTYPE,
            width,
            height,
            fill_bits(fill),
            &settings,
            |_| Ok(()),
        )?;
        Ok(Channel::from_any_unchecked(any))
    }

    fn eager(
        path: Option<&Path>,
        data: &[T],
        width: usize,
        height: usize,
        settings: Settings,
    ) -> Result<Channel<T>> {
        check_data_len(data.len(), width, height, 1, "elements")?;
        let bytes = bytemuck::cast_slice(data);
        let any = AnyChannel::create_with(path, T::DTYPE, width, height, 0, &settings, |c| {
            c.write_all_bytes(bytes)
        })?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Compress `data` (`width × height` elements, row-major) into a new anonymous channel,
    /// using every core.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a data length other than `width × height`, a zero
    /// width or height, a chunk size below one scanline or above c-blosc2's 2 GiB limit, a
    /// level above 9; I/O errors.
    pub fn new(data: &[T], width: usize, height: usize, settings: Settings) -> Result<Channel<T>> {
        Channel::eager(None, data, width, height, settings)
    }

    /// A lazy anonymous channel of zeros: no chunk is compressed until it is set.
    ///
    /// # Errors
    /// As [`new`](Self::new), except for the data length.
    pub fn zeros(width: usize, height: usize, settings: Settings) -> Result<Channel<T>> {
        Channel::lazy(None, width, height, T::zeroed(), settings)
    }

    /// A lazy anonymous channel whose every element is `value` (bit for bit: NaN payloads
    /// and −0.0 are kept).
    ///
    /// # Errors
    /// As [`zeros`](Self::zeros).
    pub fn full(width: usize, height: usize, value: T, settings: Settings) -> Result<Channel<T>> {
        Channel::lazy(None, width, height, value, settings)
    }

    /// A lazy channel of zeros with `other`'s size, codec, level, block size and chunk size.
    ///
    /// # Errors
    /// I/O errors.
    pub fn zeros_like(other: &Channel<T>) -> Result<Channel<T>> {
        Channel::full_like(other, T::zeroed())
    }

    /// A lazy channel of `value` with `other`'s size and settings.
    ///
    /// # Errors
    /// I/O errors.
    pub fn full_like(other: &Channel<T>, value: T) -> Result<Channel<T>> {
        Channel::lazy(None, other.width(), other.height(), value, other.settings())
    }

    /// Compress `data` into a new channel file at `path` (replacing any file there once
    /// complete; readers of the old file keep their copy).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Locked`] if another handle writes `path`.
    pub fn create(
        path: impl AsRef<Path>,
        data: &[T],
        width: usize,
        height: usize,
        settings: Settings,
    ) -> Result<Self> {
        Channel::eager(Some(path.as_ref()), data, width, height, settings)
    }

    /// A lazy channel file at `path` whose every element is `value`; nothing is compressed,
    /// so this is instant for any size.
    ///
    /// # Errors
    /// As [`full`](Self::full); [`Error::Locked`] if another handle writes `path`.
    pub fn create_full(
        path: impl AsRef<Path>,
        width: usize,
        height: usize,
        value: T,
        settings: Settings,
    ) -> Result<Self> {
        Channel::lazy(Some(path.as_ref()), width, height, value, settings)
    }

    /// Open a channel file for reading and writing (exclusive writer).
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] when the file holds another element type; otherwise as
    /// [`AnyChannel::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Channel<T>> {
        let any =
            AnyChannel::open_checked(path.as_ref(), Access::ReadWrite, Some(T::DTYPE), no_wrap())?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Open a channel file read-only (any number of processes, beside one writer).
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// As [`open`](Self::open), except [`Error::Locked`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Channel<T>> {
        let any =
            AnyChannel::open_checked(path.as_ref(), Access::ReadOnly, Some(T::DTYPE), no_wrap())?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Open a channel file read-only at the commit `id` names; see
    /// [`AnyChannel::open_snapshot`].
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] when the file holds another element type; otherwise as
    /// [`AnyChannel::open_snapshot`].
    pub fn open_snapshot(path: impl AsRef<Path>, id: &crate::SnapshotId) -> Result<Channel<T>> {
        let any = AnyChannel::open_pinned(path.as_ref(), id, Some(T::DTYPE))?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Decompress chunk `index` into `out`, exactly [`chunk_elems_at(index)`](AnyChannel::chunk_elems_at)
    /// elements, straight from the file mapping. The chunk's checksum is verified first.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong buffer length;
    /// [`Error::ChecksumMismatch`] or [`Error::Corrupted`] for damaged data.
    pub fn get_chunk(&self, index: usize, out: &mut [T]) -> Result {
        self.any
            .get_chunk_bytes(index, bytemuck::cast_slice_mut(out))
    }

    /// Chunk `index` in a new vector.
    ///
    /// # Errors
    /// As [`get_chunk`](Self::get_chunk).
    pub fn get_chunk_vec(&self, index: usize) -> Result<Vec<T>> {
        let mut out = bytemuck::zeroed_vec(self.chunk_elems_at(index)?);
        self.get_chunk(index, &mut out)?;
        Ok(out)
    }

    /// Replace chunk `index` with `data` (exactly its element count, the last chunk
    /// included) and commit. A bitwise-constant chunk is stored as a lazy fill entry.
    ///
    /// # Errors
    /// As [`AnyChannel::set_chunk_bytes`]; the channel is unchanged after any error.
    pub fn set_chunk(&self, index: usize, data: &[T]) -> Result {
        self.any.set_chunk_bytes(index, bytemuck::cast_slice(data))
    }

    /// Read scanlines `first_row ..` into `out` (a whole number of rows), decoding only
    /// the c-blosc2 blocks that hold them.
    ///
    /// # Errors
    /// As [`AnyChannel::read_rows_bytes`].
    pub fn read_rows(&self, first_row: usize, out: &mut [T]) -> Result {
        self.any
            .read_rows_bytes(first_row, bytemuck::cast_slice_mut(out))
    }

    /// The whole channel, decompressed, row-major (`width × height` elements).
    ///
    /// # Errors
    /// As [`get_chunk`](Self::get_chunk).
    pub fn get_decompressed(&self) -> Result<Vec<T>> {
        let mut out = bytemuck::zeroed_vec(self.uncompressed_size());
        self.any
            .decompress_into_zeroed_bytes(bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// Decompress the whole channel into `out` (`width × height` elements).
    ///
    /// # Errors
    /// As [`get_chunk`](Self::get_chunk).
    pub fn decompress_into(&self, out: &mut [T]) -> Result {
        self.any
            .decompress_into_bytes(bytemuck::cast_slice_mut(out))
    }

    /// [`decompress_into`](Self::decompress_into), reporting progress in bytes; see
    /// [`AnyChannel::decompress_into_bytes_with_progress`].
    ///
    /// # Errors
    /// As [`decompress_into`](Self::decompress_into); [`Error::Cancelled`](crate::Error::Cancelled)
    /// when `progress` cancels.
    pub fn decompress_into_with_progress(
        &self,
        out: &mut [T],
        progress: &dyn crate::Progress,
    ) -> Result {
        self.any
            .decompress_into_bytes_with_progress(bytemuck::cast_slice_mut(out), progress)
    }

    /// Start a batch: many chunk writes committed together with one table write.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Poisoned`], [`Error::BatchInProgress`].
    pub fn batch(&self) -> Result<Batch<'_, T>> {
        Batch::new(&self.any)
    }

    /// Read the elements of `region` into `out` (row-major, exactly `region.len()`
    /// elements), from one commit.
    ///
    /// # Errors
    /// As [`AnyChannel::read_region_bytes`].
    pub fn read_region(&self, region: Region, out: &mut [T]) -> Result {
        self.any
            .read_region_bytes(region, bytemuck::cast_slice_mut(out))
    }

    /// The elements of `region` in a new vector.
    ///
    /// # Errors
    /// As [`read_region`](Self::read_region).
    pub fn read_region_vec(&self, region: Region) -> Result<Vec<T>> {
        // A region past the channel is refused before anything this large is allocated.
        let mut out = bytemuck::zeroed_vec(region.len().min(self.uncompressed_size()));
        self.read_region(region, &mut out)?;
        Ok(out)
    }

    /// Overwrite the elements of `region` with `data` (row-major, exactly `region.len()`
    /// elements), reading, changing and storing every chunk the region touches in one
    /// commit.
    ///
    /// # Errors
    /// As [`AnyChannel::write_region_bytes`].
    pub fn write_region(&self, region: Region, data: &[T]) -> Result {
        self.any
            .write_region_bytes(region, bytemuck::cast_slice(data))
    }

    /// Visit every chunk with its element coordinates, read-only, from one commit.
    ///
    /// # Errors
    /// The first error of a read or of `visit`.
    pub fn for_each_chunk(&self, mut visit: impl FnMut(&ChunkRef<'_, T>) -> Result) -> Result {
        let g = self.geometry();
        self.walk_chunks(|index, data| {
            visit(&ChunkRef::new(
                index,
                g.chunk_start_row(index),
                g.width(),
                data,
            ))
        })
    }

    /// Visit every chunk mutably with its element coordinates; chunks the closure modified
    /// (through [`ChunkMut::data_mut`]) are written back, all in one commit. If `visit`
    /// returns an error, nothing is committed. Lazy chunks that are not modified stay lazy.
    ///
    /// # Errors
    /// The first error of a read, of `visit` or of the commit.
    pub fn update_chunks(&self, mut visit: impl FnMut(&mut ChunkMut<'_, T>) -> Result) -> Result {
        let mut batch = self.batch()?;
        let g = self.geometry();
        self.walk_chunks(|index, data| {
            let mut chunk = ChunkMut::new(index, g.chunk_start_row(index), g.width(), data);
            visit(&mut chunk)?;
            if chunk.is_modified() {
                batch.set_chunk(index, data)?;
            }
            Ok(())
        })?;
        batch.commit()
    }

    /// Read every chunk in index order from one commit into one reused buffer and hand
    /// each to `step` with its index; stops at the first error of a read or of `step`.
    fn walk_chunks(&self, mut step: impl FnMut(usize, &mut [T]) -> Result) -> Result {
        let (snap, pos) = self.any.view()?;
        let g = self.geometry();
        let mut buf = bytemuck::zeroed_vec(g.chunk_elems());
        for index in 0..g.num_chunks() {
            let data = &mut buf[..g.chunk_elems_at(index)];
            read_chunk(
                &snap,
                pos,
                index,
                bytemuck::cast_slice_mut(data),
                self.threads(),
            )?;
            step(index, data)?;
        }
        Ok(())
    }
}
