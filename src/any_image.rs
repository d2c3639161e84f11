//! [`AnyImage`]: an image whose channels may each hold a different element type, known at
//! run time. [`Image<T>`](crate::Image) is a typed wrapper around it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::any_channel::{AnyChannel, check_data_len, decompress_channel, new_desc, write_chunks};
use crate::channel::Channel;
use crate::chunk_codec::Onto;
use crate::chunks::AnyImageBatch;
use crate::error::{Argument, Error, Result};
use crate::format::{Catalog, ChannelDesc};
use crate::geometry::check_size;
use crate::io::Backend;
use crate::progress::{NoProgress, Progress, Tracker};
use crate::region::Region;
use crate::sample::{Dtype, Sample, fill_bits};
use crate::settings::Settings;
use crate::store::{Access, ExpectCatalog, Store, WrapBackend, no_wrap};
use crate::threads::ThreadCount;

/// An image: an ordered list of channels, all `width × height`, each with its own element
/// type and compression settings, with optional channel names and JSON metadata, stored in
/// one file.
///
/// The file format stores the element type per channel, so one file can hold, say, an
/// `f16` colour channel beside a `u32` id channel. [`Image<T>`](crate::Image) is the typed
/// view of an image whose channels all hold `T`; [`inspect`](crate::inspect) tells the
/// types of a file's channels before opening it.
///
/// Channel handles obtained from an image read and write through to it and never dangle:
/// after the channel is removed they return [`Error::ChannelRemoved`]. Names are optional
/// (an image has names for all channels or none), may repeat, and lookup by name takes the
/// first match, as in the original library. Handles are cheap to clone and share the file.
///
/// ```
/// # fn main() -> compressed_image::Result {
/// use compressed_image::{AnyImage, Channel, Dtype, Settings, f16};
///
/// let image = AnyImage::new(4, 2)?;
/// image.add_channel(&[f16::from_f32(0.5); 8], Some("luma"), Settings::default())?;
/// image.add_channel(&[7u32; 8], Some("id"), Settings::default())?;
/// assert_eq!(image.dtypes(), [Dtype::F16, Dtype::U32]);
/// let id = Channel::<u32>::try_from_any(image.channel_by_name("id")?)?;
/// assert_eq!(id.get_decompressed()?, [7; 8]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AnyImage {
    pub(crate) store: Arc<Store>,
    threads: ThreadCount,
}

impl fmt::Debug for AnyImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyImage")
            .field("path", &self.path())
            .field("width", &self.width())
            .field("height", &self.height())
            .field("dtypes", &self.dtypes())
            .finish()
    }
}

/// The error for the channel at `pos` of `catalog` not holding `expected`.
pub(crate) fn channel_dtype_mismatch(catalog: &Catalog, pos: usize, expected: Dtype) -> Error {
    let desc = &catalog.channels[pos];
    Error::ChannelDtypeMismatch {
        channel: pos,
        name: if catalog.names_present {
            desc.name.clone()
        } else {
            String::new()
        },
        expected,
        found: desc.dtype,
    }
}

/// `Ok` when every channel of `catalog` holds `expected`, else the error naming the first
/// that does not.
pub(crate) fn check_dtypes(catalog: &Catalog, expected: Dtype) -> Result {
    match catalog.channels.iter().position(|c| c.dtype != expected) {
        Some(pos) => Err(channel_dtype_mismatch(catalog, pos, expected)),
        None => Ok(()),
    }
}

impl AnyImage {
    crate::file_methods::file_methods!();

    /// A new empty image (at `path`, or anonymous) whose size must be
    /// addressable for elements of `elem_size` bytes.
    pub(crate) fn create_empty(
        path: Option<&Path>,
        width: usize,
        height: usize,
        elem_size: usize,
    ) -> Result<AnyImage> {
        check_size(width, height, elem_size)?;
        let catalog = Catalog {
            width,
            height,
            next_channel_id: 0,
            names_present: false,
            meta: None,
            channels: vec![],
        };
        let (store, temp) = Store::create(path, &catalog)?;
        store.finish_create(temp)?;
        Ok(AnyImage {
            store: Arc::new(store),
            threads: ThreadCount::machine(),
        })
    }

    /// A new image (at `path`, or anonymous: see [`AnonymousBacking`]) with lazy channels of the
    /// given types and names, all with `settings`, whose first commit is still to be made:
    /// a named file stays under a temporary name (dropped with the returned `TempPath` if
    /// the caller fails) until [`Store::finish_create`] gives it its name.
    pub(crate) fn create_staged(
        path: Option<&Path>,
        width: usize,
        height: usize,
        channels: &[(Dtype, &str)],
        settings: &Settings,
    ) -> Result<(AnyImage, Option<tempfile::TempPath>)> {
        check_size(width, height, 1)?;
        let descs = channels
            .iter()
            .zip(0u32..)
            .map(|(&(dtype, name), id)| {
                let mut desc = new_desc(id, dtype, width, height, 0, settings)?;
                desc.name = name.to_string();
                Ok(desc)
            })
            .collect::<Result<Vec<ChannelDesc>>>()?;
        let catalog = Catalog {
            width,
            height,
            next_channel_id: descs.len() as u32,
            names_present: true,
            meta: None,
            channels: descs,
        };
        let (store, temp) = Store::create(path, &catalog)?;
        let image = AnyImage {
            store: Arc::new(store),
            threads: ThreadCount::machine(),
        };
        Ok((image, temp))
    }

    /// A new, empty anonymous image (in memory; see [`AnonymousBacking`](crate::AnonymousBacking)).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero or overflowing size; I/O errors.
    pub fn new(width: usize, height: usize) -> Result<AnyImage> {
        AnyImage::create_empty(None, width, height, 1)
    }

    /// A new, empty image file at `path` (replacing any file there once complete).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Locked`] if another handle writes `path`.
    pub fn create(path: impl AsRef<Path>, width: usize, height: usize) -> Result<AnyImage> {
        AnyImage::create_empty(Some(path.as_ref()), width, height, 1)
    }

    /// Open an image file (any channel types) for reading and writing (exclusive writer).
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// As [`AnyChannel::open`], except that any number of channels is accepted.
    pub fn open(path: impl AsRef<Path>) -> Result<AnyImage> {
        AnyImage::open_expecting(path.as_ref(), Access::ReadWrite, &|_| Ok(()), no_wrap())
    }

    /// Open an image file read-only, at its newest commit (any number of processes,
    /// beside one writer); [`refresh`](Self::refresh) moves to newer commits.
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// As [`open`](Self::open), except [`Error::Locked`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<AnyImage> {
        AnyImage::open_expecting(path.as_ref(), Access::ReadOnly, &|_| Ok(()), no_wrap())
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
    ) -> Result<AnyImage> {
        AnyImage::open_expecting(
            path.as_ref(),
            Access::ReadWrite,
            &|_| Ok(()),
            Arc::new(wrap),
        )
    }

    /// Open an image file read-only at the commit `id` names (taken with
    /// [`snapshot_id`](Self::snapshot_id) from any handle of the file, in any process),
    /// however many commits were made since; the handle stays on that commit. Its chunks
    /// are checksummed as they are first read.
    ///
    /// The SIGBUS note of [`open`](Self::open) applies.
    ///
    /// # Errors
    /// [`Error::SnapshotUnavailable`] when the file no longer holds that commit (it was
    /// compacted or replaced); otherwise as [`open_read_only`](Self::open_read_only).
    pub fn open_snapshot(path: impl AsRef<Path>, id: &crate::SnapshotId) -> Result<AnyImage> {
        AnyImage::open_pinned(path.as_ref(), id, &|_| Ok(()))
    }

    /// [`open_snapshot`](Self::open_snapshot), running `expect` on the commit's catalog.
    pub(crate) fn open_pinned(
        path: &Path,
        id: &crate::SnapshotId,
        expect: &ExpectCatalog,
    ) -> Result<AnyImage> {
        Ok(AnyImage {
            store: Arc::new(Store::open_pinned(path, id, expect)?),
            threads: ThreadCount::machine(),
        })
    }

    /// Open `path`, running `expect` on its catalog before a read-write open writes.
    pub(crate) fn open_expecting(
        path: &Path,
        access: Access,
        expect: &ExpectCatalog,
        wrap: Arc<WrapBackend>,
    ) -> Result<AnyImage> {
        Ok(AnyImage {
            store: Arc::new(Store::open_with(path, access, expect, wrap)?),
            threads: ThreadCount::machine(),
        })
    }

    /// Width of every channel.
    pub fn width(&self) -> usize {
        self.store.snapshot().catalog.width
    }
    /// Height of every channel.
    pub fn height(&self) -> usize {
        self.store.snapshot().catalog.height
    }
    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.store.snapshot().catalog.channels.len()
    }
    /// The element type of every channel, in order.
    pub fn dtypes(&self) -> Vec<Dtype> {
        let snap = self.store.snapshot();
        snap.catalog.channels.iter().map(|c| c.dtype).collect()
    }

    /// A handle to the channel `desc` describes, with this handle's thread count.
    fn handle(&self, desc: &ChannelDesc) -> AnyChannel {
        AnyChannel::from_desc(self.store.clone(), desc, self.threads())
    }

    /// The channel at `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`].
    pub fn channel(&self, index: usize) -> Result<AnyChannel> {
        let snap = self.store.snapshot();
        let channels = &snap.catalog.channels;
        let desc = channels.get(index).ok_or(Error::IndexOutOfRange {
            what: "channel",
            index,
            len: channels.len(),
        })?;
        Ok(self.handle(desc))
    }

    /// The first channel named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownChannelName`].
    pub fn channel_by_name(&self, name: &str) -> Result<AnyChannel> {
        self.channel(self.channel_index(name)?)
    }

    /// Every channel, in order.
    pub fn channels(&self) -> Vec<AnyChannel> {
        let snap = self.store.snapshot();
        snap.catalog
            .channels
            .iter()
            .map(|c| self.handle(c))
            .collect()
    }

    /// Index of the first channel named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownChannelName`] (also when the image has no names).
    pub fn channel_index(&self, name: &str) -> Result<usize> {
        let snap = self.store.snapshot();
        snap.catalog
            .channels
            .iter()
            .position(|c| snap.catalog.names_present && c.name == name)
            .ok_or_else(|| Error::UnknownChannelName(name.to_string()))
    }

    /// Channel names in order; empty when the image has no names.
    pub fn channel_names(&self) -> Vec<String> {
        let snap = self.store.snapshot();
        if !snap.catalog.names_present {
            return Vec::new();
        }
        snap.catalog
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Name every channel (exactly one name per channel).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a count other than the channel count;
    /// [`Error::ReadOnly`]; I/O errors.
    pub fn set_channel_names(&self, names: &[&str]) -> Result {
        let mut txn = self.store.begin()?;
        let len = txn.catalog().channels.len();
        if names.len() != len {
            return Err(Error::invalid(
                Argument::ChannelNames,
                names.len(),
                format!("{len} names, one per channel"),
            ));
        }
        let catalog = txn.catalog_mut();
        catalog.names_present = true;
        for (c, name) in catalog.channels.iter_mut().zip(names) {
            c.name = name.to_string();
        }
        txn.commit()
    }

    /// The image metadata; JSON null when none was set.
    pub fn metadata(&self) -> serde_json::Value {
        (*self.store.snapshot().metadata).clone()
    }

    /// Replace the image metadata (any JSON value; null removes it).
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; I/O errors.
    pub fn set_metadata(&self, metadata: serde_json::Value) -> Result {
        let mut txn = self.store.begin()?;
        txn.set_metadata(metadata);
        txn.commit()
    }

    /// Add a channel of `dtype` as the new last one: lazy with every element's bits
    /// `fill_bits`, or compressed from `data` (checked to be the whole channel), reporting
    /// to its observer.
    fn add(
        &self,
        dtype: Dtype,
        name: Option<&str>,
        fill_bits: u64,
        settings: &Settings,
        data: Option<(&[u8], &dyn Progress)>,
    ) -> Result<AnyChannel> {
        let mut txn = self.store.begin()?;
        let (width, height, id) = {
            let c = txn.catalog();
            (c.width, c.height, c.next_channel_id)
        };
        let mut desc = new_desc(id, dtype, width, height, fill_bits, settings)?;
        if let Some((data, _)) = data {
            check_data_len(data.len(), width, height, dtype.size(), "bytes")?;
        }
        desc.name = name.unwrap_or_default().to_string();
        let catalog = txn.catalog_mut();
        catalog.next_channel_id = id
            .checked_add(1)
            .ok_or_else(|| Error::invalid(Argument::ChannelCount, id, "fewer"))?;
        catalog.names_present |= name.is_some();
        catalog.channels.push(desc.clone());
        if let Some((data, progress)) = data {
            let tracker = Tracker::start(progress, "compress", data.len() as u64);
            write_chunks(&mut txn, &desc, data, self.threads(), &tracker)?;
        }
        txn.commit()?;
        Ok(self.handle(&desc))
    }

    /// Compress `data` (`width × height` elements of `dtype`, as little-endian bytes) as a
    /// new last channel.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong length or invalid settings;
    /// [`Error::ReadOnly`]; I/O errors.
    pub fn add_channel_bytes(
        &self,
        dtype: Dtype,
        data: &[u8],
        name: Option<&str>,
        settings: Settings,
    ) -> Result<AnyChannel> {
        self.add_channel_bytes_with_progress(dtype, data, name, settings, &NoProgress)
    }

    /// [`add_channel_bytes`](Self::add_channel_bytes), reporting to `progress` the bytes of
    /// `data` compressed and written. Cancelled, the image is left without the channel.
    ///
    /// # Errors
    /// As [`add_channel_bytes`](Self::add_channel_bytes); [`Error::Cancelled`] when
    /// `progress` cancels.
    pub fn add_channel_bytes_with_progress(
        &self,
        dtype: Dtype,
        data: &[u8],
        name: Option<&str>,
        settings: Settings,
        progress: &dyn Progress,
    ) -> Result<AnyChannel> {
        self.add(dtype, name, 0, &settings, Some((data, progress)))
    }

    /// Add a lazy channel of `dtype` whose every element has the raw bits `fill_bits`
    /// (little-endian, zero-extended); nothing is compressed.
    ///
    /// # Errors
    /// As [`add_channel_bytes`](Self::add_channel_bytes).
    pub fn add_lazy_channel_bits(
        &self,
        dtype: Dtype,
        fill_bits: u64,
        name: Option<&str>,
        settings: Settings,
    ) -> Result<AnyChannel> {
        self.add(dtype, name, fill_bits, &settings, None)
    }

    /// Compress `data` (`width × height` elements) as a new last channel of type `T`.
    ///
    /// # Errors
    /// As [`add_channel_bytes`](Self::add_channel_bytes).
    pub fn add_channel<T: Sample>(
        &self,
        data: &[T],
        name: Option<&str>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        check_data_len(data.len(), self.width(), self.height(), 1, "elements")?;
        let any = self.add_channel_bytes(T::DTYPE, bytemuck::cast_slice(data), name, settings)?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Add a lazy channel of type `T` whose every element is `value` (nothing is
    /// compressed).
    ///
    /// # Errors
    /// As [`add_channel_bytes`](Self::add_channel_bytes).
    pub fn add_lazy_channel<T: Sample>(
        &self,
        value: T,
        name: Option<&str>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        let any = self.add_lazy_channel_bits(T::DTYPE, fill_bits(value), name, settings)?;
        Ok(Channel::from_any_unchecked(any))
    }

    /// Remove the channel at `index`; its handles return [`Error::ChannelRemoved`] from now on.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::ReadOnly`]; I/O errors.
    pub fn remove_channel(&self, index: usize) -> Result {
        let mut txn = self.store.begin()?;
        let len = txn.catalog().channels.len();
        if index >= len {
            return Err(Error::IndexOutOfRange {
                what: "channel",
                index,
                len,
            });
        }
        txn.catalog_mut().channels.remove(index);
        txn.commit()
    }

    /// Remove the first channel named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownChannelName`]; as [`remove_channel`](Self::remove_channel).
    pub fn remove_channel_by_name(&self, name: &str) -> Result {
        self.remove_channel(self.channel_index(name)?)
    }

    /// Start a batch of chunk writes across channels of any type, committed as one.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Poisoned`], [`Error::BatchInProgress`].
    pub fn batch(&self) -> Result<AnyImageBatch<'_>> {
        AnyImageBatch::new(&self.store, self.threads())
    }

    /// Every channel decompressed, in order, all from one commit: the little-endian bytes
    /// of each channel's elements.
    ///
    /// # Errors
    /// As [`AnyChannel::get_chunk_bytes`].
    pub fn get_decompressed_bytes(&self) -> Result<Vec<Vec<u8>>> {
        self.get_decompressed_bytes_with_progress(&NoProgress)
    }

    /// [`get_decompressed_bytes`](Self::get_decompressed_bytes), reporting to `progress`
    /// the uncompressed bytes of every channel as they are decoded (from several threads
    /// at once).
    ///
    /// # Errors
    /// As [`get_decompressed_bytes`](Self::get_decompressed_bytes); [`Error::Cancelled`]
    /// when `progress` cancels.
    pub fn get_decompressed_bytes_with_progress(
        &self,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<u8>>> {
        self.decompress_all(None, progress)
    }

    /// Every channel decompressed from one commit into vectors of `E`, after checking that
    /// every channel holds `dtype` (when given; `E` must then be its type, else `u8`).
    pub(crate) fn decompress_all<E: bytemuck::Pod>(
        &self,
        dtype: Option<Dtype>,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<E>>> {
        let snap = self.store.snapshot();
        if let Some(expected) = dtype {
            check_dtypes(&snap.catalog, expected)?;
        }
        let total = (snap.catalog.channels.iter())
            .map(|c| c.geometry.num_bytes() as u64)
            .sum();
        let tracker = Tracker::start(progress, "decompress", total);
        (0..snap.catalog.channels.len())
            .map(|pos| {
                let g = snap.catalog.channels[pos].geometry;
                let len = g.num_bytes() / std::mem::size_of::<E>();
                let mut out = bytemuck::zeroed_vec::<E>(len);
                decompress_channel(
                    &snap,
                    pos,
                    bytemuck::cast_slice_mut(&mut out),
                    Onto::Zeros,
                    self.threads(),
                    &tracker,
                )?;
                Ok(out)
            })
            .collect()
    }

    /// Read `region` of the channel at `channel`; see [`AnyChannel::read_region_bytes`].
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for the channel; as [`AnyChannel::read_region_bytes`].
    pub fn read_region_bytes(&self, channel: usize, region: Region, out: &mut [u8]) -> Result {
        self.channel(channel)?.read_region_bytes(region, out)
    }

    /// Write `region` of the channel at `channel` in one commit; see
    /// [`AnyChannel::write_region_bytes`].
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for the channel; as [`AnyChannel::write_region_bytes`].
    pub fn write_region_bytes(&self, channel: usize, region: Region, data: &[u8]) -> Result {
        self.channel(channel)?.write_region_bytes(region, data)
    }

    /// Uncompressed bytes over stored bytes, over all channels (1.0 for an empty image).
    ///
    /// # Errors
    /// As [`AnyChannel::compressed_bytes`].
    pub fn compression_ratio(&self) -> Result<f64> {
        let (mut raw, mut stored) = (0usize, 0usize);
        for c in self.channels() {
            raw += c.uncompressed_size() * c.dtype().size();
            stored += c.compressed_bytes()?;
        }
        Ok(if stored == 0 {
            1.0
        } else {
            raw as f64 / stored as f64
        })
    }

    /// The value of `property` shared by every channel (0 without channels).
    fn common(
        &self,
        property: &'static str,
        value: impl Fn(&AnyChannel) -> usize,
    ) -> Result<usize> {
        let values: Vec<usize> = self.channels().iter().map(value).collect();
        match values.split_first() {
            None => Ok(0),
            Some((first, rest)) if rest.iter().all(|v| v == first) => Ok(*first),
            Some(_) => Err(Error::ChannelsDisagree { property }),
        }
    }

    /// The nominal chunk size in bytes shared by all channels (0 without channels).
    ///
    /// # Errors
    /// [`Error::ChannelsDisagree`] when channels differ.
    pub fn chunk_size(&self) -> Result<usize> {
        self.common("chunk size", AnyChannel::chunk_size)
    }

    /// The block size shared by all channels (0 without channels).
    ///
    /// # Errors
    /// [`Error::ChannelsDisagree`] when channels differ.
    pub fn block_size(&self) -> Result<usize> {
        self.common("block size", AnyChannel::block_size)
    }

    /// The thread count of this handle, which the channel handles it hands out start with;
    /// see [`AnyChannel::threads`] for what it governs. Whole-image reads decode each
    /// channel with it.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// Set the thread count (at least 1) for this handle and the channel handles it hands
    /// out from now on; clones made before keep their own count.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0; the count is then unchanged.
    pub fn set_threads(&self, threads: usize) -> Result {
        self.threads.set(threads)
    }

    /// Write the image as of the current commit, without dead space, to `path`.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle writes `path`; I/O errors.
    pub fn save_as(&self, path: impl AsRef<Path>) -> Result {
        self.save_as_with_progress(path, &NoProgress)
    }

    /// [`save_as`](Self::save_as), reporting to `progress` the bytes of compressed chunks
    /// copied. Cancelled, it leaves no new file and any file at `path` as it was.
    ///
    /// # Errors
    /// As [`save_as`](Self::save_as); [`Error::Cancelled`] when `progress` cancels.
    pub fn save_as_with_progress(&self, path: impl AsRef<Path>, progress: &dyn Progress) -> Result {
        self.store.save_as(path.as_ref(), None, progress)
    }
}
