//! [`ReadOptions`]: what to import from an image file and how to store it.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::sample::{Dtype, Sample};
use crate::settings::Settings;

/// Which channels to import from a file or to export from an image. On import, whatever
/// the order of the request, the image gets them in the order the file presents them (see
/// [`AnyImage::read`](crate::AnyImage::read)); on export, they are written in the order of
/// the request (see [`AnyImage::write`](crate::AnyImage::write)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelSelection {
    /// Every channel (the default).
    #[default]
    All,
    /// The channels with these names; a name given twice imports the channel twice.
    Names(Vec<String>),
    /// The channels at these positions (of the presented order on import, of the image on
    /// export); an index given twice imports the channel twice.
    Indices(Vec<usize>),
}

impl ChannelSelection {
    /// The channels with these names.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> ChannelSelection {
        ChannelSelection::Names(names.into_iter().map(Into::into).collect())
    }

    /// The channels at these positions.
    pub fn indices(indices: impl IntoIterator<Item = usize>) -> ChannelSelection {
        ChannelSelection::Indices(indices.into_iter().collect())
    }
}

/// The `channel_names` and `channel_indices` setters of an options type with a
/// `channels` field, documented by the two strings.
macro_rules! channel_setters {
    ($names_doc:literal, $indices_doc:literal) => {
        #[doc = $names_doc]
        pub fn channel_names<S: Into<String>>(
            mut self,
            names: impl IntoIterator<Item = S>,
        ) -> Self {
            self.channels = $crate::import::ChannelSelection::names(names);
            self
        }

        #[doc = $indices_doc]
        pub fn channel_indices(mut self, indices: impl IntoIterator<Item = usize>) -> Self {
            self.channels = $crate::import::ChannelSelection::indices(indices);
            self
        }
    };
}
pub(crate) use channel_setters;

/// Where the imported image lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Destination {
    /// An anonymous image (in memory; see [`AnonymousBacking`](crate::AnonymousBacking)), the default.
    #[default]
    Anonymous,
    /// An image file at this path. It is written under a temporary name beside the path
    /// and renamed into place only when the import succeeded; a failed import leaves
    /// neither the file nor the temporary behind.
    File(PathBuf),
}

/// What to import from an image file and how to store it: built from
/// [`ReadOptions::default`] with the setters.
///
/// ```
/// use compressed_image::{Codec, Dtype, ReadOptions, Settings};
///
/// let options = ReadOptions::default()
///     .subimage(1)
///     .channel_names(["R", "G", "B"])
///     .dtype(Dtype::F32)
///     .settings(Settings::default().codec(Codec::Zstd).level(5));
/// assert_eq!(options.subimage, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The subimage: an OpenEXR part or a TIFF page (PNG and JPEG files have only 0).
    pub subimage: usize,
    /// The channels to import.
    pub channels: ChannelSelection,
    /// Compression settings of every imported channel (the chunk size is in bytes of the
    /// stored element type).
    pub settings: Settings,
    /// The element type to store every channel as; `None` keeps each channel's type in
    /// the file.
    pub dtype: Option<Dtype>,
    /// Where the image lives.
    pub destination: Destination,
}

impl ReadOptions {
    /// Import the subimage at `index` (an OpenEXR part, a TIFF page).
    pub fn subimage(mut self, index: usize) -> Self {
        self.subimage = index;
        self
    }

    channel_setters!(
        "Import only the channels with these names.",
        "Import only the channels at these positions of the presented order."
    );

    /// Compression settings of every imported channel.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Store every channel as `dtype`, converted as described on
    /// [`AnyImage::read`](crate::AnyImage::read).
    pub fn dtype(mut self, dtype: Dtype) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// Keep each channel's element type from the file (the default).
    pub fn native_dtype(mut self) -> Self {
        self.dtype = None;
        self
    }

    /// Write the image to a file at `path` (see [`Destination::File`]).
    pub fn to_file(mut self, path: impl AsRef<Path>) -> Self {
        self.destination = Destination::File(path.as_ref().to_path_buf());
        self
    }

    /// Make an anonymous image (the default).
    pub fn anonymous(mut self) -> Self {
        self.destination = Destination::Anonymous;
        self
    }
}

/// A chunk of an imported channel, decoded and converted, handed to the post-process
/// callback of [`AnyImage::read_with`](crate::AnyImage::read_with) before it is compressed.
/// Changes made through [`bytes_mut`](Self::bytes_mut) or [`data_mut`](Self::data_mut)
/// are what gets stored.
#[derive(Debug)]
pub struct ImportedChunk<'a> {
    pub(crate) channel: usize,
    pub(crate) file_channel: usize,
    pub(crate) index: usize,
    pub(crate) start_row: usize,
    pub(crate) width: usize,
    pub(crate) dtype: Dtype,
    /// Whole scanlines of `dtype` elements; aligned for `dtype`.
    pub(crate) data: &'a mut [u8],
}

impl ImportedChunk<'_> {
    /// Position of the channel in the imported image.
    pub fn channel(&self) -> usize {
        self.channel
    }
    /// Position of the channel in the file's presented order (what the original library's
    /// post-process callback receives).
    pub fn file_channel(&self) -> usize {
        self.file_channel
    }
    /// Index of the chunk in its channel.
    pub fn index(&self) -> usize {
        self.index
    }
    /// Row of the channel where the chunk starts.
    pub fn start_row(&self) -> usize {
        self.start_row
    }
    /// Width of the channel: the length of each of the chunk's rows.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Element type of the chunk.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
    /// The chunk's elements as little-endian bytes, row-major.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data
    }
    /// The chunk's elements, row-major.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`](crate::Error::DtypeMismatch) when the chunk holds another
    /// element type.
    pub fn data_mut<T: Sample>(&mut self) -> Result<&mut [T]> {
        if T::DTYPE != self.dtype {
            return Err(crate::Error::DtypeMismatch {
                expected: T::DTYPE,
                found: self.dtype,
            });
        }
        Ok(bytemuck::cast_slice_mut(self.data))
    }
}
