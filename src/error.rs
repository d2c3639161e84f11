//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::import::ImageFileError;
use crate::sample::Dtype;
use crate::stored_chunk::ChunkProblem;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong. New variants may be added in minor releases.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an I/O error.
    Io(io::Error),
    /// A file could not be opened, created or locked: `source.kind()` tells why
    /// (`NotFound`, `PermissionDenied`, `IsADirectory`, …).
    File {
        /// The file the operation was on (for the writer lock, the `<path>.lock` sidecar).
        path: PathBuf,
        /// What the operating system reported.
        source: io::Error,
    },
    /// An anonymous channel or image could not make or fill its temporary file in `dir`
    /// (see [`AnonymousBacking`](crate::AnonymousBacking)): `source.kind()` tells why
    /// (`NotFound`, `PermissionDenied`, `StorageFull`, …). A store that was moving out of
    /// memory stays there, unchanged and usable.
    TempFile {
        /// The directory of the temporary file.
        dir: PathBuf,
        /// What the operating system reported.
        source: io::Error,
    },
    /// The file is not a compressed-image container (its magic number is wrong).
    NotACompressedImage,
    /// The file was written by a format version this library cannot read.
    UnsupportedVersion {
        /// Major version found in the file.
        major: u16,
        /// Minor version found in the file.
        minor: u16,
    },
    /// Bytes in the file contradict the format; `reason` says which check failed.
    Corrupted {
        /// What was checked and what was found.
        reason: String,
    },
    /// A chunk's stored checksum does not match its bytes. Only this chunk is unreadable.
    ChecksumMismatch {
        /// Index of the channel in the image.
        channel: usize,
        /// Index of the chunk in the channel.
        chunk: usize,
    },
    /// The file holds a different element type than the one asked for.
    DtypeMismatch {
        /// The element type the caller asked for.
        expected: Dtype,
        /// The element type stored in the file.
        found: Dtype,
    },
    /// A channel of an image holds a different element type than the typed handle asked
    /// for (an [`Image<T>`](crate::Image) over a file with channels of several types).
    ChannelDtypeMismatch {
        /// Position of the channel in the image.
        channel: usize,
        /// Its name (empty when the image has no names).
        name: String,
        /// The element type the caller asked for.
        expected: Dtype,
        /// The element type the channel holds.
        found: Dtype,
    },
    /// Another handle, in this or another process, has the file open for writing.
    Locked {
        /// The file that is locked.
        path: PathBuf,
    },
    /// The handle was opened read-only and cannot write.
    ReadOnly,
    /// An earlier I/O error left this handle unable to write. Reopen the file: it opens at
    /// the newest commit that verifies — the last one, unless the failed write tore the slot
    /// page holding the commits made since the last `sync`, which then fall back to it.
    Poisoned,
    /// An argument is outside what the operation accepts.
    InvalidArgument {
        /// Which argument.
        what: Argument,
        /// The value that was given.
        got: String,
        /// What would have been accepted.
        expected: String,
    },
    /// An index is past the end of a sequence.
    IndexOutOfRange {
        /// What was indexed ("chunk", "channel", …).
        what: &'static str,
        /// The index that was given.
        index: usize,
        /// How many items there are.
        len: usize,
    },
    /// An image-wide property was asked for, but its channels hold different values (the
    /// original library's "Channels in image do not all have the same chunk size").
    ChannelsDisagree {
        /// The property ("chunk size", "block size").
        property: &'static str,
    },
    /// No channel has this name.
    UnknownChannelName(String),
    /// The channel behind this handle was removed from its image.
    ChannelRemoved,
    /// This thread already has a batch open on the file; commit or drop it before writing
    /// through another call (waiting would deadlock).
    BatchInProgress,
    /// A [`Progress`](crate::Progress) observer cancelled the operation; what it leaves
    /// behind is said on the method (a cancelled compaction or `save_as` changes no file).
    Cancelled,
    /// An image file (OpenEXR, TIFF, PNG, JPEG) could not be imported or exported; `kind`
    /// says why. A failed import or export leaves no file behind.
    ImageFile {
        /// The image file that was being read or written.
        path: PathBuf,
        /// What went wrong.
        kind: ImageFileError,
    },
    /// A [`StoredChunk`](crate::StoredChunk) was refused: it does not decode, or does not
    /// fit the channel and index it was set as; `problem` says which check failed. Nothing
    /// was committed.
    InvalidStoredChunk {
        /// The check that failed.
        problem: ChunkProblem,
    },
    /// The commit a [`SnapshotId`](crate::SnapshotId) names is not in the file at the
    /// path: the file was compacted or replaced since (or the commit was lost in a power
    /// failure before it was synced). Nothing was read.
    SnapshotUnavailable {
        /// Generation of the commit asked for.
        generation: u64,
        /// Which check failed.
        reason: String,
    },
    /// c-blosc2 reported an error.
    Codec {
        /// The C function that failed.
        call: &'static str,
        /// Its return code.
        code: i32,
    },
}

/// Which argument an [`Error::InvalidArgument`] is about: a typed kind, so that code
/// telling errors apart never depends on the wording of a message. New kinds may be added
/// in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Argument {
    /// Width and height of a channel or image (zero, or too large to address).
    ChannelSize,
    /// The requested chunk size: below one scanline, or above c-blosc2's 2 GiB limit once
    /// aligned to scanlines.
    ChunkSize,
    /// The number of chunks a channel would need (more than a chunk table can hold).
    ChunkCount,
    /// The requested c-blosc2 block size.
    BlockSize,
    /// The compression level.
    CompressionLevel,
    /// A thread count.
    ThreadCount,
    /// The length of the data given for a new channel.
    DataLength,
    /// The length of a caller's buffer for a chunk or a whole channel.
    BufferLength,
    /// A range of scanlines.
    RowRange,
    /// A rectangular region `(x, y, width, height)` and its buffer.
    Region,
    /// The number of channel names.
    ChannelNames,
    /// The number of channels in an image.
    ChannelCount,
    /// A file opened as a single channel that holds another number of channels.
    ChannelFile,
    /// A buffer handed to c-blosc2 (its sizes are 32-bit).
    CodecBuffer,
    /// A record too large for the file format's 32-bit lengths.
    RecordLength,
    /// An [`AnonymousBacking`](crate::AnonymousBacking) for a handle that is not anonymous.
    AnonymousBacking,
    /// An element type that does not fit the operation.
    Dtype,
    /// The longest side of a preview.
    PreviewSize,
    /// The encoding of a [`SnapshotId`](crate::SnapshotId).
    SnapshotId,
}

impl Argument {
    /// Whether the error is about how a channel splits into chunks (chunk size or count):
    /// the cases the original library reports as a runtime error rather than a bad value.
    pub fn is_chunk_geometry(self) -> bool {
        matches!(self, Argument::ChunkSize | Argument::ChunkCount)
    }

    /// Lower-case description, as used in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Argument::ChannelSize => "channel size",
            Argument::ChunkSize => "chunk size",
            Argument::ChunkCount => "chunk count",
            Argument::BlockSize => "block size",
            Argument::CompressionLevel => "compression level",
            Argument::ThreadCount => "thread count",
            Argument::DataLength => "data length",
            Argument::BufferLength => "buffer length",
            Argument::RowRange => "row range",
            Argument::Region => "region",
            Argument::ChannelNames => "channel names",
            Argument::ChannelCount => "channel count",
            Argument::ChannelFile => "file for a channel",
            Argument::CodecBuffer => "c-blosc2 buffer",
            Argument::RecordLength => "record length",
            Argument::AnonymousBacking => "anonymous backing",
            Argument::Dtype => "element type",
            Argument::PreviewSize => "preview size",
            Argument::SnapshotId => "snapshot id",
        }
    }
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid(
        what: Argument,
        got: impl fmt::Display,
        expected: impl fmt::Display,
    ) -> Self {
        Error::InvalidArgument {
            what,
            got: got.to_string(),
            expected: expected.to_string(),
        }
    }

    /// Shorthand for [`Error::Corrupted`].
    pub(crate) fn corrupted(reason: impl Into<String>) -> Self {
        Error::Corrupted {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::File { path, source } => write!(f, "{}: {source}", path.display()),
            Error::TempFile { dir, source } => write!(
                f,
                "temporary file in {} for an anonymous store: {source}",
                dir.display()
            ),
            Error::NotACompressedImage => f.write_str("not a compressed-image file (wrong magic number)"),
            Error::UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported format version {major}.{minor} (this library reads major version {})",
                crate::format::FORMAT_MAJOR
            ),
            Error::Corrupted { reason } => write!(f, "corrupted file: {reason}"),
            Error::ChecksumMismatch { channel, chunk } => {
                write!(f, "checksum mismatch in channel {channel}, chunk {chunk}")
            }
            Error::DtypeMismatch { expected, found } => {
                write!(f, "element type mismatch: expected {expected}, the file holds {found}")
            }
            Error::ChannelDtypeMismatch {
                channel,
                name,
                expected,
                found,
            } => write!(
                f,
                "element type mismatch: expected {expected}, channel {channel} ({name:?}) holds {found}"
            ),
            Error::Locked { path } => {
                write!(f, "{} is locked: another handle has it open for writing", path.display())
            }
            Error::ReadOnly => f.write_str("the handle is read-only"),
            Error::Poisoned => f.write_str(
                "an earlier I/O error poisoned this handle; reopen the file to continue from the last commit",
            ),
            Error::InvalidArgument { what, got, expected } => {
                write!(f, "invalid {what}: got {got}, expected {expected}")
            }
            Error::IndexOutOfRange { what, index, len } => {
                write!(f, "{what} index {index} is out of range (there are {len})")
            }
            Error::ChannelsDisagree { property } => write!(
                f,
                "the channels of the image do not all have the same {property}"
            ),
            Error::UnknownChannelName(name) => write!(f, "unknown channel name {name:?}"),
            Error::ChannelRemoved => f.write_str("the channel was removed from its image"),
            Error::BatchInProgress => {
                f.write_str("this thread has a batch open on the file; commit or drop it first")
            }
            Error::Cancelled => f.write_str("the operation was cancelled"),
            Error::ImageFile { path, kind } => write!(f, "{}: {kind}", path.display()),
            Error::InvalidStoredChunk { problem } => write!(f, "stored chunk refused: {problem}"),
            Error::SnapshotUnavailable { generation, reason } => write!(
                f,
                "the commit of generation {generation} is no longer in the file ({reason})"
            ),
            Error::Codec { call, code } => write!(f, "c-blosc2 call {call} failed with code {code}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::File { source: e, .. } | Error::TempFile { source: e, .. } => {
                Some(e)
            }
            Error::ImageFile { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
