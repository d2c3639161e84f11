//! [`AnyChannel`]: a channel handle whose element type is known at run time.
//! [`Channel<T>`](crate::Channel) is a typed wrapper around it.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::chunk_codec::{check_len, prepare_chunk, read_chunk, read_chunk_part};
use crate::error::{Error, Result};
use crate::format::{Catalog, ChannelDesc, TableEntry};
use crate::geometry::Geometry;
use crate::io::Backend;
use crate::sample::Dtype;
use crate::settings::{Codec, Settings};
use crate::store::{Access, Snapshot, Store, Txn, WrapBackend, no_wrap};

/// A handle to one channel of an open file, standalone or part of an image.
///
/// Handles are cheap to clone and share the file: a write through one is seen by every
/// other handle of the same file at once. A handle whose channel was removed from its
/// image returns [`Error::ChannelRemoved`]. Methods take `&self`; writes are serialised
/// inside, reads run in parallel from any number of threads.
#[derive(Clone)]
pub struct AnyChannel {
    pub(crate) store: Arc<Store>,
    pub(crate) id: u32,
    threads: usize,
}

/// Default thread count: the machine's parallelism.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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

    pub(crate) fn from_store(store: Arc<Store>, id: u32) -> AnyChannel {
        AnyChannel {
            store,
            id,
            threads: default_threads(),
        }
    }

    /// Create a channel file (at `path`, or an unlinked temporary file) whose chunks all
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
        let channel = AnyChannel::from_store(Arc::new(store), 0);
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
    /// # Errors
    /// [`Error::Locked`] when another handle, in this or another process, writes the file;
    /// [`Error::NotACompressedImage`], [`Error::UnsupportedVersion`], [`Error::Corrupted`]
    /// for files this library cannot read; I/O errors.
    pub fn open(path: impl AsRef<Path>) -> Result<AnyChannel> {
        AnyChannel::open_checked(path.as_ref(), Access::ReadWrite, None, no_wrap())
    }

    /// Open a channel file read-only, at its newest commit. Any number of processes may do
    /// this while one writes; [`refresh`](Self::refresh) moves to newer commits.
    ///
    /// # Errors
    /// As [`open`](Self::open), except that it is never locked out.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<AnyChannel> {
        AnyChannel::open_checked(path.as_ref(), Access::ReadOnly, None, no_wrap())
    }

    /// Open for writing with every file mutation going through `wrap(file backend)`: the
    /// fault-injection seam for tests. Not needed in normal use.
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

    /// Open a file that must hold exactly one channel (of `dtype`, if given); the checks
    /// run before a read-write open writes anything.
    pub(crate) fn open_checked(
        path: &Path,
        access: Access,
        dtype: Option<Dtype>,
        wrap: Arc<WrapBackend>,
    ) -> Result<AnyChannel> {
        let expect = move |catalog: &Catalog| match catalog.channels.as_slice() {
            [only] => match dtype {
                Some(expected) if only.dtype != expected => Err(Error::DtypeMismatch {
                    expected,
                    found: only.dtype,
                }),
                _ => Ok(()),
            },
            channels => Err(Error::invalid(
                "file for a channel",
                format!("an image with {} channels", channels.len()),
                "exactly one channel (open it as an Image)",
            )),
        };
        let store = Store::open_with(path, access, &expect, wrap)?;
        let id = store.snapshot().catalog.channels[0].id;
        Ok(AnyChannel::from_store(Arc::new(store), id))
    }

    /// The current commit and this channel's position in it.
    pub(crate) fn view(&self) -> Result<(Arc<Snapshot>, usize)> {
        let snap = self.store.snapshot();
        let pos = snap.position(self.id)?;
        Ok((snap, pos))
    }

    /// Apply `f` to this channel's descriptor in the current commit.
    fn with_desc<R>(&self, f: impl FnOnce(&ChannelDesc) -> R) -> Result<R> {
        let (snap, pos) = self.view()?;
        Ok(f(&snap.catalog.channels[pos]))
    }

    /// Element type.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`] (likewise for every accessor).
    pub fn dtype(&self) -> Result<Dtype> {
        self.with_desc(|d| d.dtype)
    }
    /// Chunk layout.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn geometry(&self) -> Result<Geometry> {
        self.with_desc(|d| d.geometry)
    }
    /// Width in elements.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn width(&self) -> Result<usize> {
        Ok(self.geometry()?.width())
    }
    /// Height in scanlines.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn height(&self) -> Result<usize> {
        Ok(self.geometry()?.height())
    }
    /// Compression codec.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn codec(&self) -> Result<Codec> {
        self.with_desc(|d| d.codec)
    }
    /// Compression level (0–9).
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn level(&self) -> Result<u8> {
        self.with_desc(|d| d.level)
    }

    /// The block size c-blosc2 uses for a full chunk: the requested size capped to the chunk
    /// and rounded down to whole elements, as c-blosc2 does; 0 means c-blosc2 chooses.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn block_size(&self) -> Result<usize> {
        self.with_desc(|d| {
            let size = d.dtype.size();
            let block = (d.block_size as usize).min(d.geometry.chunk_bytes());
            if block > size {
                block / size * size
            } else {
                block
            }
        })
    }

    /// The settings this channel was created with (chunk size = the effective nominal one),
    /// for creating a channel like it.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn settings(&self) -> Result<Settings> {
        self.with_desc(|d| Settings {
            codec: d.codec,
            level: d.level,
            block_size: d.block_size as usize,
            chunk_size: d.geometry.chunk_bytes(),
        })
    }

    /// Number of chunks.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn num_chunks(&self) -> Result<usize> {
        Ok(self.geometry()?.num_chunks())
    }
    /// Nominal chunk size in bytes (every chunk but possibly the last).
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn chunk_size(&self) -> Result<usize> {
        Ok(self.geometry()?.chunk_bytes())
    }
    /// Size of chunk `index` in bytes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ChannelRemoved`].
    pub fn chunk_size_at(&self, index: usize) -> Result<usize> {
        let g = self.geometry()?;
        g.check_index(index)?;
        Ok(g.chunk_bytes_at(index))
    }
    /// Nominal chunk size in elements.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn chunk_elems(&self) -> Result<usize> {
        Ok(self.geometry()?.chunk_elems())
    }
    /// Elements in chunk `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ChannelRemoved`].
    pub fn chunk_elems_at(&self, index: usize) -> Result<usize> {
        let g = self.geometry()?;
        g.check_index(index)?;
        Ok(g.chunk_elems_at(index))
    }
    /// Elements in the channel (`width × height`).
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn uncompressed_size(&self) -> Result<usize> {
        Ok(self.geometry()?.num_elems())
    }

    /// Stored bytes: the compressed length of every blob chunk plus one element per lazy
    /// (fill) chunk, as the original library counts.
    ///
    /// # Errors
    /// [`Error::ChannelRemoved`].
    pub fn compressed_bytes(&self) -> Result<usize> {
        let (snap, pos) = self.view()?;
        let size = snap.catalog.channels[pos].dtype.size();
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
        snap.catalog.channels[pos].geometry.check_index(index)?;
        Ok(!matches!(
            snap.tables[pos].get(index),
            TableEntry::Blob { .. }
        ))
    }

    /// Threads used by whole-channel operations and inside single chunks.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Set the thread count (at least 1). Unlike the original library this never changes
    /// the block size.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0.
    pub fn set_threads(&mut self, threads: usize) -> Result {
        if threads == 0 {
            return Err(Error::invalid("thread count", 0, "at least 1"));
        }
        self.threads = threads;
        Ok(())
    }

    /// Decompress chunk `index` into `out`, which must be exactly
    /// [`chunk_size_at(index)`](Self::chunk_size_at) bytes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong buffer length;
    /// [`Error::ChecksumMismatch`] or [`Error::Corrupted`] for damaged data.
    pub fn get_chunk_bytes(&self, index: usize, out: &mut [u8]) -> Result {
        let (snap, pos) = self.view()?;
        read_chunk(&snap, pos, index, out, self.threads)
    }

    /// Replace chunk `index` with `data` (exactly the chunk's bytes) and commit. A chunk
    /// whose elements are all bit-identical is stored as a fill value, not compressed.
    /// Nothing changes unless every check passes.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] for a wrong length;
    /// [`Error::ReadOnly`]; [`Error::Poisoned`]; I/O errors (which poison the handle).
    pub fn set_chunk_bytes(&self, index: usize, data: &[u8]) -> Result {
        if !self.store.is_writable() {
            return Err(Error::ReadOnly);
        }
        let prepared = {
            let (snap, pos) = self.view()?;
            prepare_chunk(&snap.catalog.channels[pos], index, data, self.threads)?
        };
        let mut txn = self.store.begin()?;
        txn.put(self.id, index, &prepared)?;
        txn.commit()
    }

    /// Decompress the whole channel into `out` (exactly `width × height` elements), from one
    /// commit, using [`threads`](Self::threads) threads across chunks.
    ///
    /// # Errors
    /// As [`get_chunk_bytes`](Self::get_chunk_bytes).
    pub fn decompress_into_bytes(&self, out: &mut [u8]) -> Result {
        let (snap, pos) = self.view()?;
        let g = snap.catalog.channels[pos].geometry;
        check_len(out.len(), g.num_elems() * g.elem_size())?;
        if self.threads > 1 && g.num_chunks() > 1 {
            out.par_chunks_mut(g.chunk_bytes())
                .enumerate()
                .try_for_each(|(index, part)| read_chunk(&snap, pos, index, part, 1))
        } else {
            out.chunks_mut(g.chunk_bytes())
                .enumerate()
                .try_for_each(|(index, part)| read_chunk(&snap, pos, index, part, self.threads))
        }
    }

    /// Read scanlines `first_row ..` into `out` (a whole number of rows, in bytes),
    /// decoding only the c-blosc2 blocks that hold them, from one commit.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `out` is not whole rows or the rows run past the
    /// channel; as [`get_chunk_bytes`](Self::get_chunk_bytes) for damaged data.
    pub fn read_rows_bytes(&self, first_row: usize, out: &mut [u8]) -> Result {
        let (snap, pos) = self.view()?;
        let g = snap.catalog.channels[pos].geometry;
        let row_bytes = g.width() * g.elem_size();
        let rows = out.len() / row_bytes;
        if !out.len().is_multiple_of(row_bytes)
            || first_row
                .checked_add(rows)
                .is_none_or(|end| end > g.height())
        {
            return Err(Error::invalid(
                "row range",
                format!("{} bytes from row {first_row}", out.len()),
                format!("whole rows of {row_bytes} bytes within {} rows", g.height()),
            ));
        }
        let mut row = first_row;
        for part in split_at_chunks(out, first_row, &g) {
            let index = row / g.rows_per_chunk();
            let start_row = row - g.chunk_start_row(index);
            if start_row == 0 && part.len() == g.chunk_bytes_at(index) {
                read_chunk(&snap, pos, index, part, self.threads)?;
            } else {
                read_chunk_part(&snap, pos, index, start_row * g.width(), part, self.threads)?;
            }
            row += part.len() / row_bytes;
        }
        Ok(())
    }

    /// Compress every chunk of `data` (the whole channel) in parallel and commit them as one.
    pub(crate) fn write_all_bytes(&self, data: &[u8]) -> Result {
        let (snap, pos) = self.view()?;
        let desc = &snap.catalog.channels[pos];
        let g = desc.geometry;
        check_len(data.len(), g.num_elems() * g.elem_size())?;
        let mut txn = self.store.begin()?;
        write_chunks(&mut txn, desc, data, self.threads)?;
        txn.commit()
    }

    /// Write this channel, as of the current commit and without dead space, to a new
    /// channel file at `path` (replacing any file there). The handle stays on its own file.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle writes `path`; I/O errors.
    pub fn save_as(&self, path: impl AsRef<Path>) -> Result {
        self.store.save_as(path.as_ref(), Some(self.id))
    }
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

/// Compress the chunks of `data` on up to `threads` threads and stage them in `txn`, in
/// order. Compression runs on the rayon pool, group by group, while this thread writes the
/// previous group, so the file writes overlap the compression; at most three groups of
/// `threads` compressed chunks are in memory at once.
pub(crate) fn write_chunks(
    txn: &mut Txn<'_>,
    desc: &ChannelDesc,
    data: &[u8],
    threads: usize,
) -> Result {
    let g = desc.geometry;
    let n = g.num_chunks();
    let part = |i: usize| &data[i * g.chunk_bytes()..i * g.chunk_bytes() + g.chunk_bytes_at(i)];
    if threads <= 1 || n == 1 {
        for i in 0..n {
            txn.put(desc.id, i, &prepare_chunk(desc, i, part(i), threads)?)?;
        }
        return Ok(());
    }
    // The transaction holds the writer's lock guard, which must stay on this thread, so the
    // compression moves to a producer thread instead.
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            let indices: Vec<usize> = (0..n).collect();
            for group in indices.chunks(threads) {
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
            }
        }
        Ok(())
    })
}
