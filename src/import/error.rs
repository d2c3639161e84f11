//! [`ImageFileError`]: why an image file could not be imported or exported.

use std::fmt;
use std::io;
use std::path::Path;

/// Why an image file could not be imported or exported: the `kind` of
/// [`Error::ImageFile`](crate::Error::ImageFile). New kinds may be added in minor releases.
#[derive(Debug)]
#[non_exhaustive]
pub enum ImageFileError {
    /// The file starts like none of the formats this library reads (OpenEXR, TIFF, PNG,
    /// JPEG).
    UnknownFormat,
    /// The file uses a compression method this library cannot decode (its name, as the
    /// format calls it).
    UnsupportedCompression(String),
    /// The OpenEXR part holds deep data (several samples per pixel), which has no
    /// representation as channels.
    DeepData,
    /// An OpenEXR channel is subsampled (stored at a lower resolution, like the chroma of a
    /// luminance/chroma image), as OpenImageIO also refuses.
    Subsampled {
        /// The subsampled channel's name.
        channel: String,
    },
    /// The requested subimage (OpenEXR part, TIFF page) does not exist.
    BadSubimage {
        /// The subimage that was asked for.
        index: usize,
        /// How many subimages the file has.
        count: usize,
    },
    /// No channel of the file has this name.
    NoSuchChannel(String),
    /// A channel index past the file's channels (on import).
    ChannelIndexOutOfRange {
        /// The index that was asked for.
        index: usize,
        /// How many channels the file has.
        count: usize,
    },
    /// The image is too large to import: a scanline of one channel would not fit a chunk,
    /// the size overflows, or a block the decoder must hold whole (a TIFF strip or tile
    /// above 1 GiB, a band of rows above 4 GiB) is too large.
    TooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
    },
    /// The file is valid but uses a feature this library does not import (which one).
    Unsupported(String),
    /// The file is damaged, truncated or inconsistent: the decoder's message.
    Decode(String),
    /// Reading or writing the file failed.
    Io(io::Error),
    /// The file name's extension names no format this library writes (the extension,
    /// empty when there is none); see [`ImageFormat`](crate::ImageFormat).
    UnknownExtension(String),
    /// An export would write no channel: none was selected, or the image has none.
    NoChannels,
    /// Two exported channels would have the same name, which OpenEXR does not allow.
    DuplicateChannel(String),
    /// The encoder refused the image: its message.
    Encode(String),
}

impl fmt::Display for ImageFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageFileError::UnknownFormat => {
                f.write_str("not an OpenEXR, TIFF, PNG or JPEG file (unknown signature)")
            }
            ImageFileError::UnsupportedCompression(name) => {
                write!(f, "unsupported compression {name:?}")
            }
            ImageFileError::DeepData => f.write_str("deep data cannot be imported as channels"),
            ImageFileError::Subsampled { channel } => {
                write!(
                    f,
                    "subsampled channels are not supported (channel {channel:?})"
                )
            }
            ImageFileError::BadSubimage { index, count } => {
                write!(f, "there is no subimage {index} (the file has {count})")
            }
            ImageFileError::NoSuchChannel(name) => write!(f, "no channel named {name:?}"),
            ImageFileError::ChannelIndexOutOfRange { index, count } => {
                write!(
                    f,
                    "channel index {index} is out of range (the file has {count})"
                )
            }
            ImageFileError::TooLarge { width, height } => {
                write!(f, "the image is too large to import ({width} x {height})")
            }
            ImageFileError::Unsupported(what) => write!(f, "unsupported: {what}"),
            ImageFileError::Decode(message) => write!(f, "cannot decode: {message}"),
            ImageFileError::Io(e) => write!(f, "I/O error: {e}"),
            ImageFileError::UnknownExtension(ext) => write!(
                f,
                "cannot tell the format from the extension {ext:?} (exr, tif, tiff and png are written)"
            ),
            ImageFileError::NoChannels => f.write_str("no channels to write"),
            ImageFileError::DuplicateChannel(name) => {
                write!(f, "two channels would be named {name:?}")
            }
            ImageFileError::Encode(message) => write!(f, "cannot encode: {message}"),
        }
    }
}

impl std::error::Error for ImageFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImageFileError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ImageFileError {
    fn from(e: io::Error) -> Self {
        // A file that ends early is damaged, not an I/O failure.
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImageFileError::Decode(format!("unexpected end of file ({e})"))
        } else {
            ImageFileError::Io(e)
        }
    }
}

/// `Result` of the format readers, whose errors the import attaches the path to.
pub(crate) type FileResult<T = ()> = std::result::Result<T, ImageFileError>;

/// Attaches `path` to a reader's or writer's error: `result.map_err(in_file(path))`.
pub(crate) fn in_file(path: &Path) -> impl Fn(ImageFileError) -> crate::Error + Copy + '_ {
    move |kind| crate::Error::ImageFile {
        path: path.to_path_buf(),
        kind,
    }
}
