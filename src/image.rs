//! [`Image<T>`]: several named channels and JSON metadata in one file.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use crate::any_channel::{AnyChannel, default_threads, new_desc, write_chunks};
use crate::channel::Channel;
use crate::chunk_codec::read_chunk;
use crate::chunks::ImageBatch;
use crate::error::{Error, Result};
use crate::format::Catalog;
use crate::geometry::check_size;
use crate::io::Backend;
use crate::sample::{Sample, fill_bits};
use crate::settings::Settings;
use crate::store::{Access, Store, WrapBackend, no_wrap};

/// An image: an ordered list of channels of element type `T`, all `width × height`, with
/// optional channel names and JSON metadata, stored in one file.
///
/// Channel handles obtained from an image read and write through to it and never dangle:
/// after the channel is removed they return [`Error::ChannelRemoved`]. Names are optional
/// (an image has names for all channels or none), may repeat, and lookup by name takes the
/// first match, as in the original library.
#[derive(Clone)]
pub struct Image<T: Sample> {
    store: Arc<Store>,
    threads: usize,
    _element: PhantomData<fn() -> T>,
}

impl<T: Sample> Image<T> {
    crate::file_methods::file_methods!();

    fn empty(
        path: Option<&Path>,
        width: usize,
        height: usize,
    ) -> Result<(Image<T>, Option<tempfile::TempPath>)> {
        check_size(width, height, T::DTYPE.size())?;
        let catalog = Catalog {
            width,
            height,
            next_channel_id: 0,
            names_present: false,
            meta: None,
            channels: vec![],
        };
        let (store, temp) = Store::create(path, &catalog)?;
        Ok((
            Image {
                store: Arc::new(store),
                threads: default_threads(),
                _element: PhantomData,
            },
            temp,
        ))
    }

    /// A new, empty anonymous image (an unlinked temporary file).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero or overflowing size; I/O errors.
    pub fn new(width: usize, height: usize) -> Result<Image<T>> {
        let (image, temp) = Image::empty(None, width, height)?;
        image.store.finish_create(temp)?;
        Ok(image)
    }

    /// A new, empty image file at `path`.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Locked`] if another handle writes `path`.
    pub fn create(path: impl AsRef<Path>, width: usize, height: usize) -> Result<Image<T>> {
        let (image, temp) = Image::empty(Some(path.as_ref()), width, height)?;
        image.store.finish_create(temp)?;
        Ok(image)
    }

    /// An anonymous image from planar channel data (each `width × height` elements) with
    /// optional names (none, or one per channel), as the original constructor.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a names count other than 0 or the channel count, a
    /// wrong data length or invalid settings; I/O errors.
    pub fn from_channels(
        channels: &[&[T]],
        width: usize,
        height: usize,
        names: &[&str],
        settings: Settings,
    ) -> Result<Image<T>> {
        if !names.is_empty() && names.len() != channels.len() {
            return Err(Error::invalid(
                "channel names",
                names.len(),
                format!("0 or {} names", channels.len()),
            ));
        }
        let image = Image::new(width, height)?;
        for (i, data) in channels.iter().enumerate() {
            image.add_channel(data, names.get(i).copied(), settings)?;
        }
        Ok(image)
    }

    /// Open an image file for reading and writing (exclusive writer).
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] if a channel holds another element type; otherwise as
    /// [`AnyChannel::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadWrite, no_wrap())
    }

    /// Open an image file read-only (any number of processes, beside one writer).
    ///
    /// # Errors
    /// As [`open`](Self::open), except [`Error::Locked`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadOnly, no_wrap())
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
    ) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadWrite, Arc::new(wrap))
    }

    fn open_as(path: &Path, access: Access, wrap: Arc<WrapBackend>) -> Result<Image<T>> {
        let expect = |catalog: &Catalog| match catalog.channels.iter().find(|c| c.dtype != T::DTYPE)
        {
            Some(c) => Err(Error::DtypeMismatch {
                expected: T::DTYPE,
                found: c.dtype,
            }),
            None => Ok(()),
        };
        let store = Store::open_with(path, access, &expect, wrap)?;
        if let Some(c) = store
            .snapshot()
            .catalog
            .channels
            .iter()
            .find(|c| c.dtype != T::DTYPE)
        {
            return Err(Error::DtypeMismatch {
                expected: T::DTYPE,
                found: c.dtype,
            });
        }
        Ok(Image {
            store: Arc::new(store),
            threads: default_threads(),
            _element: PhantomData,
        })
    }

    fn handle(&self, id: u32) -> Channel<T> {
        let mut any = AnyChannel::from_store(self.store.clone(), id);
        any.set_threads(self.threads)
            .expect("image thread count is at least 1");
        Channel::try_from_any(any).expect("image channels have the image's element type")
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

    fn add(
        &self,
        name: Option<&str>,
        fill: T,
        settings: Settings,
        data: Option<&[T]>,
    ) -> Result<Channel<T>> {
        let mut txn = self.store.begin()?;
        let (w, h, id) = (
            txn.catalog().width,
            txn.catalog().height,
            txn.catalog().next_channel_id,
        );
        let mut desc = new_desc(id, T::DTYPE, w, h, fill_bits(fill), &settings)?;
        if let Some(data) = data
            && data.len() != w * h
        {
            return Err(Error::invalid(
                "data length",
                data.len(),
                format!("{} elements (width x height)", w * h),
            ));
        }
        desc.name = name.unwrap_or_default().to_string();
        let catalog = txn.catalog_mut();
        catalog.next_channel_id = id
            .checked_add(1)
            .ok_or_else(|| Error::invalid("channel count", id, "fewer"))?;
        catalog.names_present |= name.is_some();
        catalog.channels.push(desc.clone());
        if let Some(data) = data {
            write_chunks(&mut txn, &desc, bytemuck::cast_slice(data), self.threads)?;
        }
        txn.commit()?;
        Ok(self.handle(id))
    }

    /// Compress `data` (`width × height` elements) as a new last channel.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong length or invalid settings;
    /// [`Error::ReadOnly`]; I/O errors.
    pub fn add_channel(
        &self,
        data: &[T],
        name: Option<&str>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        self.add(name, T::zeroed(), settings, Some(data))
    }

    /// Add a lazy channel whose every element is `value` (nothing is compressed).
    ///
    /// # Errors
    /// As [`add_channel`](Self::add_channel).
    pub fn add_lazy_channel(
        &self,
        value: T,
        name: Option<&str>,
        settings: Settings,
    ) -> Result<Channel<T>> {
        self.add(name, value, settings, None)
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

    /// The channel at `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`].
    pub fn channel(&self, index: usize) -> Result<Channel<T>> {
        let snap = self.store.snapshot();
        let len = snap.catalog.channels.len();
        let desc = snap
            .catalog
            .channels
            .get(index)
            .ok_or(Error::IndexOutOfRange {
                what: "channel",
                index,
                len,
            })?;
        Ok(self.handle(desc.id))
    }

    /// The first channel named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownChannelName`].
    pub fn channel_by_name(&self, name: &str) -> Result<Channel<T>> {
        self.channel(self.channel_index(name)?)
    }

    /// Every channel, in order.
    pub fn channels(&self) -> Vec<Channel<T>> {
        self.store
            .snapshot()
            .catalog
            .channels
            .iter()
            .map(|c| self.handle(c.id))
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
                "channel names",
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

    /// Start a batch of chunk writes across channels, committed as one.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Poisoned`], [`Error::BatchInProgress`].
    pub fn batch(&self) -> Result<ImageBatch<'_, T>> {
        Ok(ImageBatch::new(self.store.begin()?, self.threads))
    }

    /// Every channel decompressed, in order, all from one commit.
    ///
    /// # Errors
    /// As [`Channel::get_chunk`].
    pub fn get_decompressed(&self) -> Result<Vec<Vec<T>>> {
        let snap = self.store.snapshot();
        let (w, h) = (snap.catalog.width, snap.catalog.height);
        (0..snap.catalog.channels.len())
            .map(|pos| {
                let mut out = crate::io::large_zeroed_vec(w * h);
                let g = snap.catalog.channels[pos].geometry;
                for (index, part) in out.chunks_mut(g.chunk_elems()).enumerate() {
                    read_chunk(
                        &snap,
                        pos,
                        index,
                        bytemuck::cast_slice_mut(part),
                        self.threads,
                    )?;
                }
                Ok(out)
            })
            .collect()
    }

    /// Uncompressed bytes over stored bytes, over all channels (1.0 for an empty image).
    ///
    /// # Errors
    /// As [`AnyChannel::compressed_bytes`].
    pub fn compression_ratio(&self) -> Result<f64> {
        let (mut raw, mut stored) = (0usize, 0usize);
        for c in self.channels() {
            raw += c.uncompressed_size()? * T::DTYPE.size();
            stored += c.compressed_bytes()?;
        }
        Ok(if stored == 0 {
            1.0
        } else {
            raw as f64 / stored as f64
        })
    }

    fn common(
        &self,
        what: &'static str,
        f: impl Fn(&Channel<T>) -> Result<usize>,
    ) -> Result<usize> {
        let values: Vec<usize> = self.channels().iter().map(f).collect::<Result<_>>()?;
        match values.split_first() {
            None => Ok(0),
            Some((first, rest)) if rest.iter().all(|v| v == first) => Ok(*first),
            Some(_) => Err(Error::invalid(
                what,
                "channels that differ",
                "the same value in every channel",
            )),
        }
    }

    /// The nominal chunk size shared by all channels (0 without channels).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when channels differ.
    pub fn chunk_size(&self) -> Result<usize> {
        self.common("chunk size", |c| c.chunk_size())
    }

    /// The block size shared by all channels (0 without channels).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when channels differ.
    pub fn block_size(&self) -> Result<usize> {
        self.common("block size", |c| c.block_size())
    }

    /// Set the thread count for this handle and the channel handles it hands out.
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

    /// Write the image as of the current commit, without dead space, to `path`.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle writes `path`; I/O errors.
    pub fn save_as(&self, path: impl AsRef<Path>) -> Result {
        self.store.save_as(path.as_ref(), None)
    }
}
