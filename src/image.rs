//! [`Image<T>`]: the typed view of an [`AnyImage`] whose channels all hold `T`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::any_image::{AnyImage, channel_dtype_mismatch, check_dtypes};
use crate::channel::Channel;
use crate::chunks::ImageBatch;
use crate::error::{Argument, Error, Result};
use crate::format::Catalog;
use crate::io::Backend;
use crate::region::Region;
use crate::sample::Sample;
use crate::settings::Settings;
use crate::store::{Access, WrapBackend, no_wrap};

/// An image whose channels all hold elements of type `T`: several channels of one size,
/// with optional names and JSON metadata, in one file — the original library's `image<T>`.
///
/// `Image<T>` is a typed handle over an [`AnyImage`]: every untyped method (names,
/// metadata, removal, file methods, thread count, …) is available through `Deref`, and
/// the methods here add and hand out channels as [`Channel<T>`]. Convert with
/// [`try_from_any`](Self::try_from_any) and `AnyImage::from`.
///
/// Opening a file whose channels hold another type is an
/// [`Error::ChannelDtypeMismatch`] naming the first such channel. The file can still gain
/// a channel of another type through an [`AnyImage`] handle of the same file (or another
/// process); the typed methods here then return that error for it rather than mistype it.
///
/// Channel handles obtained from an image read and write through to it and never dangle:
/// after the channel is removed they return [`Error::ChannelRemoved`].
pub struct Image<T: Sample> {
    any: AnyImage,
    _element: PhantomData<fn() -> T>,
}

impl<T: Sample> Clone for Image<T> {
    fn clone(&self) -> Self {
        Image::from_any_unchecked(self.any.clone())
    }
}

impl<T: Sample> fmt::Debug for Image<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path())
            .field("dtype", &T::DTYPE)
            .field("width", &self.width())
            .field("height", &self.height())
            .field("num_channels", &self.num_channels())
            .finish()
    }
}

impl<T: Sample> Deref for Image<T> {
    type Target = AnyImage;
    fn deref(&self) -> &AnyImage {
        &self.any
    }
}

impl<T: Sample> From<Image<T>> for AnyImage {
    fn from(image: Image<T>) -> AnyImage {
        image.any
    }
}

impl<T: Sample> Image<T> {
    fn from_any_unchecked(any: AnyImage) -> Image<T> {
        Image {
            any,
            _element: PhantomData,
        }
    }

    /// Type an untyped handle.
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`] naming the first channel that holds another type.
    pub fn try_from_any(any: AnyImage) -> Result<Image<T>> {
        check_dtypes(&any.store.snapshot().catalog, T::DTYPE)?;
        Ok(Image::from_any_unchecked(any))
    }

    /// The untyped handle.
    pub fn into_any(self) -> AnyImage {
        self.any
    }

    /// A new, empty anonymous image (in memory; see [`AnonymousBacking`](crate::AnonymousBacking)).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero or overflowing size; I/O errors.
    pub fn new(width: usize, height: usize) -> Result<Image<T>> {
        AnyImage::create_empty(None, width, height, T::DTYPE.size()).map(Image::from_any_unchecked)
    }

    /// A new, empty image file at `path`.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::Locked`] if another handle writes `path`.
    pub fn create(path: impl AsRef<Path>, width: usize, height: usize) -> Result<Image<T>> {
        AnyImage::create_empty(Some(path.as_ref()), width, height, T::DTYPE.size())
            .map(Image::from_any_unchecked)
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
                Argument::ChannelNames,
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
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`] if a channel holds another element type (checked
    /// before anything is written); otherwise as [`AnyImage::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadWrite, no_wrap())
    }

    /// Open an image file read-only (any number of processes, beside one writer).
    ///
    /// The file is memory-mapped. A program outside this library's protocol that
    /// truncates or overwrites the file while it is open can make a read fault with
    /// SIGBUS; writers following the protocol never do.
    ///
    /// # Errors
    /// As [`open`](Self::open), except [`Error::Locked`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadOnly, no_wrap())
    }

    /// Open an image file read-only at the commit `id` names; see
    /// [`AnyImage::open_snapshot`].
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`] if a channel holds another element type; otherwise
    /// as [`AnyImage::open_snapshot`].
    pub fn open_snapshot(path: impl AsRef<Path>, id: &crate::SnapshotId) -> Result<Image<T>> {
        let expect = |catalog: &Catalog| check_dtypes(catalog, T::DTYPE);
        AnyImage::open_pinned(path.as_ref(), id, &expect).map(Image::from_any_unchecked)
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
    ) -> Result<Image<T>> {
        Image::open_as(path.as_ref(), Access::ReadWrite, Arc::new(wrap))
    }

    fn open_as(path: &Path, access: Access, wrap: Arc<WrapBackend>) -> Result<Image<T>> {
        let expect = |catalog: &Catalog| check_dtypes(catalog, T::DTYPE);
        AnyImage::open_expecting(path, access, &expect, wrap).map(Image::from_any_unchecked)
    }

    /// The typed handle of the channel at `pos` of the current commit.
    fn typed(&self, pos: usize) -> Result<Channel<T>> {
        let any = self.any.channel(pos)?;
        if any.dtype() != T::DTYPE {
            return Err(channel_dtype_mismatch(
                &self.any.store.snapshot().catalog,
                pos,
                T::DTYPE,
            ));
        }
        Ok(Channel::from_any_unchecked(any))
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
        self.any.add_channel(data, name, settings)
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
        self.any.add_lazy_channel(value, name, settings)
    }

    /// The channel at `index`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::ChannelDtypeMismatch`] for a channel of
    /// another type.
    pub fn channel(&self, index: usize) -> Result<Channel<T>> {
        self.typed(index)
    }

    /// The first channel named `name`.
    ///
    /// # Errors
    /// [`Error::UnknownChannelName`]; [`Error::ChannelDtypeMismatch`].
    pub fn channel_by_name(&self, name: &str) -> Result<Channel<T>> {
        self.typed(self.channel_index(name)?)
    }

    /// Every channel, in order.
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`] when a channel holds another type.
    pub fn channels(&self) -> Result<Vec<Channel<T>>> {
        let snap = self.any.store.snapshot();
        check_dtypes(&snap.catalog, T::DTYPE)?;
        Ok(self
            .any
            .channels()
            .into_iter()
            .map(Channel::from_any_unchecked)
            .collect())
    }

    /// Start a batch of chunk writes across channels, committed as one.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Poisoned`], [`Error::BatchInProgress`].
    pub fn batch(&self) -> Result<ImageBatch<'_, T>> {
        Ok(ImageBatch::new(self.any.batch()?))
    }

    /// Every channel decompressed, in order, all from one commit.
    ///
    /// # Errors
    /// [`Error::ChannelDtypeMismatch`]; as [`Channel::get_chunk`].
    pub fn get_decompressed(&self) -> Result<Vec<Vec<T>>> {
        self.any.decompress_all(Some(T::DTYPE), &crate::NoProgress)
    }

    /// Read `region` of the channel at `channel`; see [`Channel::read_region`].
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ChannelDtypeMismatch`] for the channel; as
    /// [`Channel::read_region`].
    pub fn read_region(&self, channel: usize, region: Region, out: &mut [T]) -> Result {
        self.typed(channel)?.read_region(region, out)
    }

    /// Write `region` of the channel at `channel` in one commit; see
    /// [`Channel::write_region`].
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ChannelDtypeMismatch`] for the channel; as
    /// [`Channel::write_region`].
    pub fn write_region(&self, channel: usize, region: Region, data: &[T]) -> Result {
        self.typed(channel)?.write_region(region, data)
    }
}
