//! [`AnyChannel`]: a channel handle whose element type is known at run time.
//! [`Channel<T>`](crate::Channel) is a typed wrapper around it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::chunk_codec::{
    Onto, check_len, prepare_chunk, read_chunk, read_chunk_onto, read_chunk_part,
};
use crate::error::{Argument, Error, Result};
use crate::format::{Catalog, ChannelDesc, TableEntry};
use crate::geometry::Geometry;
use crate::io::Backend;
use crate::progress::{NoProgress, Progress, Tracker};
use crate::sample::Dtype;
use crate::settings::{Codec, Settings};
use crate::store::{Access, Snapshot, Store, Txn, WrapBackend, no_wrap};
use crate::threads::{ThreadCount, available_parallelism, chunk_parallelism};

/// A handle to one channel of an open file, standalone or part of an image.
///
/// Handles are cheap to clone and share the file: a write through one is seen by every
/// other handle of the same file at once. Methods take `&self`; writes are serialised
/// inside, reads run in parallel from any number of threads.
///
/// # Which methods can fail
///
/// A channel's element type, size, chunk layout and compression settings are fixed when
/// it is created, so the accessors for them ([`dtype`](Self::dtype),
/// [`geometry`](Self::geometry), [`width`](Self::width), [`height`](Self::height),
/// [`codec`](Self::codec), [`level`](Self::level), [`block_size`](Self::block_size),
/// [`settings`](Self::settings), [`num_chunks`](Self::num_chunks),
/// [`chunk_size`](Self::chunk_size), [`chunk_elems`](Self::chunk_elems),
/// [`uncompressed_size`](Self::uncompressed_size)) cannot fail and answer even after the
/// channel was removed from its image. Per-chunk sizes
/// ([`chunk_size_at`](Self::chunk_size_at), [`chunk_elems_at`](Self::chunk_elems_at))
/// fail only for an index past the end. Everything that reads or writes the chunks or
/// their table ([`get_chunk_bytes`](Self::get_chunk_bytes),
/// [`set_chunk_bytes`](Self::set_chunk_bytes),
/// [`compressed_bytes`](Self::compressed_bytes), [`is_lazy`](Self::is_lazy), …) returns
/// [`Error::ChannelRemoved`] once the channel is gone.
#[derive(Clone)]
pub struct AnyChannel {
    pub(crate) store: Arc<Store>,
    /// The channel's descriptor as created: everything but its table and name, which are
    /// left empty here because they change from commit to commit. Invariant: for a given
    /// id, these fields are the same in every commit of the file.
    desc: Arc<ChannelDesc>,
    threads: ThreadCount,
}

impl fmt::Debug for AnyChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug_as("AnyChannel", f)
    }
}

/// A fresh channel descriptor, checked.
pub(crate) fn new_desc(
    id: u32,
    dtype: Dtype,
    width: usize,
    height: usize,
    default_fill: u64,
    settings: &Settings,
) -> Result<ChannelDesc> {
    settings.validate()?;
    Ok(ChannelDesc {
        id,
        dtype,
        codec: settings.codec,
        level: settings.level,
        block_size: settings.block_size as u32,
        geometry: Geometry::new(width, height, dtype.size(), settings.chunk_size)?,
        default_fill,
        table: None,
        name: String::new(),
    })
}

impl AnyChannel {
    crate::file_methods::file_methods!();

    /// A handle to the channel `desc` describes (as found in a commit of `store`), working
    /// with `threads` threads.
    pub(crate) fn from_desc(store: Arc<Store>, desc: &ChannelDesc, threads: usize) -> AnyChannel {
        AnyChannel {
            store,
            desc: Arc::new(ChannelDesc {
                table: None,
                name: String::new(),
                ..desc.clone()
            }),
            threads: ThreadCount::from(threads),
        }
    }

    /// The channel's id in its file.
    pub(crate) fn id(&self) -> u32 {
        self.desc.id
    }

    /// The immutable part of the channel's descriptor (table and name are left empty).
    pub(crate) fn desc(&self) -> &ChannelDesc {
        &self.desc
    }

    /// `Debug` output under the type name `name`: what the handle is, not its internals.
    pub(crate) fn debug_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("path", &self.path())
            .field("dtype", &self.dtype())
            .field("width", &self.width())
            .field("height", &self.height())
            .field("num_chunks", &self.num_chunks())
            .finish()
    }

    /// Create a channel file (at `path`, or anonymous) whose chunks all
    /// read as `fill_bits`, then run `init` on it before the file becomes visible.
    pub(crate) fn create_with(
        path: Option<&Path>,
        dtype: Dtype,
        width: usize,
        height: usize,
        fill_bits: u64,
        settings: &Settings,
        init: impl FnOnce(&AnyChannel) -> Result,
    ) -> Result<AnyChannel> {
        let desc = new_desc(0, dtype, width, height, fill_bits, settings)?;
        let catalog = Catalog {
            width,
            height,
            next_channel_id: 1,
            names_present: false,
            meta: None,
            channels: vec![desc],
        };
        let (store, temp) = Store::create(path, &catalog)?;
        let channel = AnyChannel::from_desc(
            Arc::new(store),
            &catalog.channels[0],
            available_parallelism(),
        );
        init(&channel)?;
        channel.store.finish_create(temp)?;
        Ok(channel)
    }

    /// Create a lazy channel file at `path` whose every chunk reads as the element with
    /// raw bits `fill_bits` (little-endian, zero-extended); nothing is compressed.
    ///
    /// # Errors
    /// Invalid geometry or settings; [`Error::Locked`] if another handle writes `path`;
    /// I/O errors.
    pub fn create_full(
        path: impl AsRef<Path>,
        dtype: Dtype,
        width: usize,
        height: usize,
        fill_bits: u64,
        settings: Settings,
    ) -> Result<AnyChannel> {
        AnyChannel::create_with(
            Some(path.as_ref()),
            dtype,
            width,
            height,
            fill_bits,
            &settings,
            |_| Ok(()),
        )
    }

    /// Open a channel file for reading and writing. The file must hold exactly one channel.
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// [`Error::Locked`] when another handle, in this or another process, writes the file;
    /// [`Error::NotACompressedImage`], [`Error::UnsupportedVersion`], [`Error::Corrupted`]
    /// for files this library cannot read; [`Error::InvalidArgument`] for a file of several
    /// channels; I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<AnyChannel> {
        AnyChannel::open_checked(path.as_ref(), Access::ReadWrite, None, no_wrap())
    }

    /// Open a channel file read-only, at its newest commit. Any number of processes may do
    /// this while one writes; [`refresh`](Self::refresh) moves to newer commits.
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// As [`open`](Self::open), except that it is never locked out.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<AnyChannel> {
        AnyChannel::open_checked(path.as_ref(), Access::ReadOnly, None, no_wrap())
    }

    /// Open for writing with every file mutation going through `wrap(file backend)`: the
    /// fault-injection seam for tests. Not needed in normal use. The SIGBUS note of
    /// [`open`](Self::open) applies.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    #[doc(hidden)]
    pub fn open_with_backend(
        path: impl AsRef<Path>,
        wrap: impl Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static,
    ) -> Result<AnyChannel> {
        AnyChannel::open_checked(path.as_ref(), Access::ReadWrite, None, Arc::new(wrap))
    }

    /// Open a channel file read-only at the commit `id` names (taken with
    /// [`snapshot_id`](Self::snapshot_id) from any handle of the file, in any process),
    /// however many commits were made since; the handle stays on that commit. Its chunks
    /// are checksummed as they are first read.
    ///
    /// The SIGBUS note of [`open`](Self::open) applies.
    ///
    /// # Errors
    /// [`Error::SnapshotUnavailable`] when the file no longer holds that commit (it was
    /// compacted or replaced); otherwise as [`open_read_only`](Self::open_read_only).
    pub fn open_snapshot(path: impl AsRef<Path>, id: &crate::SnapshotId) -> Result<AnyChannel> {
        AnyChannel::open_pinned(path.as_ref(), id, None)
    }

    /// [`open_snapshot`](Self::open_snapshot) of a file that must hold one channel of
    /// `dtype`, if given.
    pub(crate) fn open_pinned(
        path: &Path,
        id: &crate::SnapshotId,
        dtype: Option<Dtype>,
    ) -> Result<AnyChannel> {
        let store = Store::open_pinned(path, id, &single_channel(dtype))?;
        Ok(AnyChannel::first_of(Arc::new(store)))
    }

    /// Open a file that must hold exactly one channel (of `dtype`, if given); the checks
    /// run before a read-write open writes anything.
    pub(crate) fn open_checked(
        path: &Path,
        access: Access,
        dtype: Option<Dtype>,
        wrap: Arc<WrapBackend>,
    ) -> Result<AnyChannel> {
        let store = Store::open_with(path, access, &single_channel(dtype), wrap)?;
        Ok(AnyChannel::first_of(Arc::new(store)))
    }

    /// A handle to the only channel of `store`'s current commit.
    fn first_of(store: Arc<Store>) -> AnyChannel {
        let snap = store.snapshot();
        AnyChannel::from_desc(store, &snap.catalog.channels[0], available_parallelism())
    }

    /// The current commit and this channel's position in it.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub(crate) fn view(&self) -> Result<(Arc<Snapshot>, usize)> {
        let snap = self.store.snapshot();
        let pos = snap.position(self.desc.id)?;
        Ok((snap, pos))
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.desc.dtype
    }
    /// Chunk layout.
    pub fn geometry(&self) -> Geometry {
        self.desc.geometry
    }
    /// Width in elements.
    pub fn width(&self) -> usize {
        self.desc.geometry.width()
    }
    /// Height in scanlines.
    pub fn height(&self) -> usize {
        self.desc.geometry.height()
    }
    /// Compression codec.
    pub fn codec(&self) -> Codec {
        self.desc.codec
    }
    /// Compression level (0–9).
    pub fn level(&self) -> u8 {
        self.desc.level
    }

    /// The block size c-blosc2 uses for a full chunk: the requested size capped to the chunk
    /// and rounded down to whole elements, as c-blosc2 does; 0 means c-blosc2 chooses.
    pub fn block_size(&self) -> usize {
        let size = self.desc.dtype.size();
        let block = (self.desc.block_size as usize).min(self.desc.geometry.chunk_bytes());
        if block > size {
            block / size * size
        } else {
            block
        }
    }

    /// The settings this channel was created with (chunk size = the effective nominal one),
    /// for creating a channel like it.
    pub fn settings(&self) -> Settings {
        Settings {
            codec: self.desc.codec,
            level: self.desc.level,
            block_size: self.desc.block_size as usize,
            chunk_size: self.desc.geometry.chunk_bytes(),
        }
    }

    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.desc.geometry.num_chunks()
    }
    /// Nominal chunk size in bytes (every chunk but possibly the last).
    pub fn chunk_size(&self) -> usize {
        self.desc.geometry.chunk_bytes()
    }
    /// Size of chunk `index` in bytes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`].
    pub fn chunk_size_at(&self, index: usize) -> Result<usize> {
        self.desc.geometry.check_index(index)?;
        Ok(self.desc.geometry.chunk_bytes_at(index))
    }
    /// Nominal chunk size in elements.
    pub fn chunk_elems(&self) -> usize {
        self.desc.geometry.chunk_elems()
    }
    /// Elements in chunk `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`].
    pub fn chunk_elems_at(&self, index: usize) -> Result<usize> {
        self.desc.geometry.check_index(index)?;
        Ok(self.desc.geometry.chunk_elems_at(index))
    }
    /// Elements in the channel (`width × height`).
    pub fn uncompressed_size(&self) -> usize {
        self.desc.geometry.num_elems()
    }

    /// Stored bytes: the compressed length of every blob chunk plus one element per lazy
    /// (fill) chunk, as the original library counts.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn compressed_bytes(&self) -> Result<usize> {
        let (snap, pos) = self.view()?;
        let size = self.desc.dtype.size();
        Ok(snap.tables[pos]
            .iter()
            .map(|e| {
                if let TableEntry::Blob { len, .. } = e {
                    len as usize
                } else {
                    size
                }
            })
            .sum())
    }

    /// Whether chunk `index` is lazy (a fill value, not a compressed blob).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ChannelRemoved`].
    pub fn is_lazy(&self, index: usize) -> Result<bool> {
        let (snap, pos) = self.view()?;
        self.desc.geometry.check_index(index)?;
        Ok(!matches!(
            snap.tables[pos].get(index),
            TableEntry::Blob { .. }
        ))
    }

    /// The thread count set on this handle (by default the machine's available
    /// parallelism; an image's channel handles start with the image handle's count).
    ///
    /// It governs two things. Whole-channel operations
    /// ([`decompress_into_bytes`](Self::decompress_into_bytes),
    /// [`Channel::get_decompressed`](crate::Channel::get_decompressed), creating a channel
    /// from data, adding one to an image) work on up to this many chunks at once, each
    /// chunk on one thread of rayon's global pool (so never on more threads than that
    /// pool has). Single-chunk operations ([`get_chunk_bytes`](Self::get_chunk_bytes),
    /// [`set_chunk_bytes`](Self::set_chunk_bytes), row and region reads, batches) pass
    /// the count to c-blosc2, which splits the chunk's blocks among that many threads;
    /// the count c-blosc2 gets is capped at a small multiple of the machine's available
    /// parallelism and at the number of blocks in the chunk, so a large count never
    /// starts more threads than can help. With a count above 1, a single-chunk write
    /// ([`set_chunk_bytes`](Self::set_chunk_bytes), a batch, a region write) also lets one
    /// helper thread prepare the file's pages for the next write like it while the caller
    /// compresses it; with a count of 1 no thread but the caller's touches the file. This
    /// method returns the count as set, not the capped one.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// Set the thread count (at least 1; see [`threads`](Self::threads) for what it
    /// governs) for this handle; clones made before keep their own count. Unlike the
    /// original library's `update_nthreads` this never changes the block size.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0; the count is then unchanged.
    pub fn set_threads(&self, threads: usize) -> Result {
        self.threads.set(threads)
    }

    /// Decompress chunk `index` into `out`, which must be exactly
    /// [`chunk_size_at(index)`](Self::chunk_size_at) bytes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong buffer length;
    /// [`Error::ChecksumMismatch`] or [`Error::Corrupted`] for damaged data;
    /// [`Error::ChannelRemoved`].
    pub fn get_chunk_bytes(&self, index: usize, out: &mut [u8]) -> Result {
        let (snap, pos) = self.view()?;
        read_chunk(&snap, pos, index, out, self.threads())
    }

    /// Replace chunk `index` with `data` (exactly the chunk's bytes) and commit. A chunk
    /// whose elements are all bit-identical is stored as a fill value, not compressed.
    /// Nothing changes unless every check passes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong length;
    /// [`Error::ReadOnly`]; [`Error::Poisoned`]; [`Error::ChannelRemoved`]; I/O errors
    /// (which poison the handle).
    pub fn set_chunk_bytes(&self, index: usize, data: &[u8]) -> Result {
        if !self.store.is_writable() {
            return Err(Error::ReadOnly);
        }
        self.view()?;
        let prepared = prepare_chunk(&self.desc, index, data, self.threads())?;
        let mut txn = self.store.begin()?;
        txn.put(self.desc.id, index, &prepared)?;
        txn.allow_write_ahead(self.threads() > 1);
        txn.commit()
    }

    /// Decompress the whole channel into `out` (exactly `width × height` elements), from one
    /// commit, using [`threads`](Self::threads) threads across chunks.
    ///
    /// # Errors
    /// As [`get_chunk_bytes`](Self::get_chunk_bytes).
    pub fn decompress_into_bytes(&self, out: &mut [u8]) -> Result {
        self.decompress_into_bytes_with_progress(out, &NoProgress)
    }

    /// [`decompress_into_bytes`](Self::decompress_into_bytes), reporting to `progress` the
    /// uncompressed bytes written to `out`, chunk by chunk (from several threads at once).
    /// Cancelled, `out` holds some of the chunks.
    ///
    /// # Errors
    /// As [`decompress_into_bytes`](Self::decompress_into_bytes); [`Error::Cancelled`]
    /// when `progress` cancels.
    pub fn decompress_into_bytes_with_progress(
        &self,
        out: &mut [u8],
        progress: &dyn Progress,
    ) -> Result {
        self.decompress_onto(out, Onto::Any, progress)
    }

    /// [`decompress_into_bytes`](Self::decompress_into_bytes) for an `out` of zero bytes
    /// only (a fresh zeroed allocation): chunks that are fills of zero are skipped.
    pub(crate) fn decompress_into_zeroed_bytes(&self, out: &mut [u8]) -> Result {
        self.decompress_onto(out, Onto::Zeros, &NoProgress)
    }

    fn decompress_onto(&self, out: &mut [u8], onto: Onto, progress: &dyn Progress) -> Result {
        let (snap, pos) = self.view()?;
        check_len(out.len(), self.uncompressed_size() * self.dtype().size())?;
        let tracker = Tracker::start(progress, "decompress", out.len() as u64);
        decompress_channel(&snap, pos, out, onto, self.threads(), &tracker)
    }

    /// Read scanlines `first_row ..` into `out` (a whole number of rows, in bytes),
    /// decoding only the c-blosc2 blocks that hold them, from one commit.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `out` is not whole rows or the rows run past the
    /// channel; as [`get_chunk_bytes`](Self::get_chunk_bytes) for damaged data.
    pub fn read_rows_bytes(&self, first_row: usize, out: &mut [u8]) -> Result {
        let g = self.desc.geometry;
        let row_bytes = g.width() * g.elem_size();
        let rows = out.len() / row_bytes;
        if !out.len().is_multiple_of(row_bytes)
            || first_row
                .checked_add(rows)
                .is_none_or(|end| end > g.height())
        {
            return Err(Error::invalid(
                Argument::RowRange,
                format!("{} bytes from row {first_row}", out.len()),
                format!("whole rows of {row_bytes} bytes within {} rows", g.height()),
            ));
        }
        let (snap, pos) = self.view()?;
        read_rows_unchecked(&snap, pos, first_row, out, self.threads())
    }

    /// Compress every chunk of `data` (the whole channel) in parallel and commit them as one.
    pub(crate) fn write_all_bytes(&self, data: &[u8]) -> Result {
        let g = self.desc.geometry;
        check_len(data.len(), g.num_bytes())?;
        let mut txn = self.store.begin()?;
        let tracker = Tracker::start(&NoProgress, "compress", data.len() as u64);
        write_chunks(&mut txn, &self.desc, data, self.threads(), &tracker)?;
        txn.commit()
    }

    /// Write this channel, as of the current commit and without dead space, to a new
    /// channel file at `path` (replacing any file there). The handle stays on its own file.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle writes `path`; [`Error::ChannelRemoved`]; I/O
    /// errors.
    pub fn save_as(&self, path: impl AsRef<Path>) -> Result {
        self.save_as_with_progress(path, &NoProgress)
    }

    /// [`save_as`](Self::save_as), reporting to `progress` the bytes of compressed chunks
    /// copied. Cancelled, it leaves no new file and any file at `path` as it was.
    ///
    /// # Errors
    /// As [`save_as`](Self::save_as); [`Error::Cancelled`] when `progress` cancels.
    pub fn save_as_with_progress(&self, path: impl AsRef<Path>, progress: &dyn Progress) -> Result {
        self.store
            .save_as(path.as_ref(), Some(self.desc.id), progress)
    }
}

/// The catalog check of a file opened as one channel: exactly one channel, of `dtype` if
/// given.
fn single_channel(dtype: Option<Dtype>) -> impl Fn(&Catalog) -> Result {
    move |catalog: &Catalog| match catalog.channels.as_slice() {
        [only] => match dtype {
            Some(expected) if only.dtype != expected => Err(Error::DtypeMismatch {
                expected,
                found: only.dtype,
            }),
            _ => Ok(()),
        },
        channels => Err(Error::invalid(
            Argument::ChannelFile,
            format!("an image with {} channels", channels.len()),
            "exactly one channel (open it as an Image)",
        )),
    }
}

/// `Ok` when `got` units of data (elements, or bytes of `unit_size`-byte elements) are a
/// whole `width × height` channel.
pub(crate) fn check_data_len(
    got: usize,
    width: usize,
    height: usize,
    unit_size: usize,
    unit: &str,
) -> Result {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(unit_size));
    if expected == Some(got) {
        return Ok(());
    }
    let expected = expected.map_or_else(
        || "width x height (which overflows)".to_string(),
        |n| n.to_string(),
    );
    Err(Error::invalid(
        Argument::DataLength,
        format!("{got} {unit}"),
        format!("{expected} {unit} (width x height)"),
    ))
}

/// Decompress the whole channel at `pos` of `snap` into `out` (exactly its bytes): with
/// several threads and chunks, up to [`chunk_parallelism(threads)`](chunk_parallelism)
/// runs of consecutive chunks at once, one thread each; otherwise chunk by chunk with
/// `threads` c-blosc2 threads inside each. `tracker` advances by each chunk's bytes.
pub(crate) fn decompress_channel(
    snap: &Snapshot,
    pos: usize,
    out: &mut [u8],
    onto: Onto,
    threads: usize,
    tracker: &Tracker,
) -> Result {
    let g = snap.catalog.channels[pos].geometry;
    check_len(out.len(), g.num_bytes())?;
    let n = g.num_chunks();
    let tasks = chunk_parallelism(threads).min(n);
    if tasks > 1 {
        let chunks_per_task = n.div_ceil(tasks);
        out.par_chunks_mut(chunks_per_task * g.chunk_bytes())
            .enumerate()
            .try_for_each(|(task, run)| {
                run.chunks_mut(g.chunk_bytes())
                    .enumerate()
                    .try_for_each(|(i, part)| {
                        let index = task * chunks_per_task + i;
                        read_chunk_onto(snap, pos, index, part, onto, 1)?;
                        tracker.advance_len(part.len())
                    })
            })
    } else {
        out.chunks_mut(g.chunk_bytes())
            .enumerate()
            .try_for_each(|(index, part)| {
                read_chunk_onto(snap, pos, index, part, onto, threads)?;
                tracker.advance_len(part.len())
            })
    }
}

/// Read rows `first_row ..` of the channel at `pos` into `out`, which the caller checked
/// to be whole rows within the channel; only the c-blosc2 blocks holding them are decoded.
pub(crate) fn read_rows_unchecked(
    snap: &Snapshot,
    pos: usize,
    first_row: usize,
    out: &mut [u8],
    threads: usize,
) -> Result {
    let g = snap.catalog.channels[pos].geometry;
    let row_bytes = g.width() * g.elem_size();
    let mut row = first_row;
    for part in split_at_chunks(out, first_row, &g) {
        let index = row / g.rows_per_chunk();
        let start_row = row - g.chunk_start_row(index);
        if start_row == 0 && part.len() == g.chunk_bytes_at(index) {
            read_chunk(snap, pos, index, part, threads)?;
        } else {
            read_chunk_part(snap, pos, index, start_row * g.width(), part, threads)?;
        }
        row += part.len() / row_bytes;
    }
    Ok(())
}

/// Split `out` (rows from `first_row`) where chunk boundaries fall.
fn split_at_chunks<'b>(mut out: &'b mut [u8], first_row: usize, g: &Geometry) -> Vec<&'b mut [u8]> {
    let row_bytes = g.width() * g.elem_size();
    let mut parts = Vec::new();
    let mut row = first_row;
    while !out.is_empty() {
        let rows_left_in_chunk = g.rows_per_chunk() - row % g.rows_per_chunk();
        let take = (rows_left_in_chunk * row_bytes).min(out.len());
        let (head, tail) = std::mem::take(&mut out).split_at_mut(take);
        parts.push(head);
        out = tail;
        row += take / row_bytes;
    }
    parts
}

/// Compress the chunks of `data` on up to [`chunk_parallelism(threads)`](chunk_parallelism)
/// threads and stage them in `txn`, in order. Compression runs on the rayon pool, group
/// by group, while this thread writes the previous group, so the file writes overlap the
/// compression; at most three groups of that many compressed chunks are in memory at once.
/// `tracker` advances by each chunk's uncompressed bytes as it is staged.
pub(crate) fn write_chunks(
    txn: &mut Txn<'_>,
    desc: &ChannelDesc,
    data: &[u8],
    threads: usize,
    tracker: &Tracker,
) -> Result {
    let g = desc.geometry;
    let n = g.num_chunks();
    let part = |i: usize| &data[i * g.chunk_bytes()..i * g.chunk_bytes() + g.chunk_bytes_at(i)];
    let group_len = chunk_parallelism(threads);
    if group_len <= 1 || n == 1 {
        for i in 0..n {
            txn.put(desc.id, i, &prepare_chunk(desc, i, part(i), threads)?)?;
            tracker.advance_len(part(i).len())?;
        }
        return Ok(());
    }
    // The transaction holds the writer's lock guard, which must stay on this thread, so the
    // compression moves to a producer thread instead.
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            let indices: Vec<usize> = (0..n).collect();
            for group in indices.chunks(group_len) {
                let prepared: Vec<_> = group
                    .par_iter()
                    .map(|&i| (i, prepare_chunk(desc, i, part(i), 1)))
                    .collect();
                if send.send(prepared).is_err() {
                    return; // the writer stopped at an error
                }
            }
        });
        for group in receive {
            for (i, prepared) in group {
                txn.put(desc.id, i, &prepared?)?;
                tracker.advance_len(part(i).len())?;
            }
        }
        Ok(())
    })
}
